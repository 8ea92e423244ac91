//! The constructors the matrix is written with: a case with the usual
//! defaults, a case that must fail in the firmware, and QEMU arguments
//! several groups share.

use crate::assets::Flavor;
use crate::build::Arch;
use crate::tests::case::{Case, CpuExpect, Expect, InitrdSel, KernelSel, QemuSel};
use std::time::Duration;

pub(in crate::tests) fn case(
    arch: Arch,
    name: &str,
    machine: &str,
    smp: u32,
    mem_mib: u64,
) -> Case {
    let all = format!("0-{}", smp - 1);
    let all = if smp == 1 { "0".to_string() } else { all };
    Case {
        name: format!("{}/{name}", arch.name()),
        arch,
        machine: machine.into(),
        accel: "tcg",
        smp: smp.to_string(),
        mem_mib,
        mem_opts: String::new(),
        kernel: KernelSel::Guest,
        flavor: Flavor::Lts,
        qemu: QemuSel::Host,
        initrd: InitrdSel::Guest,
        append: String::new(),
        action: "poweroff",
        disk: true,
        boot_disk: None,
        spare_disk: false,
        pvh: false,
        mem_slack_mib: 0,
        extra: Vec::new(),
        expect: Expect::Boot,
        cpus: CpuExpect {
            possible: Some(all.clone()),
            present: Some(all.clone()),
            present_when_added: None,
            online: Some(all.clone()),
            enabled: Some(all),
        },
        timeout: Duration::from_secs(120),
        kvm: false,
        unenforced_policy: false,
        guest_checks: Vec::new(),
        tpm: false,
        control: false,
        control_at_start: false,
        opt_in: false,
        firmware: None,
        crash_retries: 1,
        cycles: 0,
    }
}

pub(super) fn bad(arch: Arch, name: &str, kernel: KernelSel, initrd: InitrdSel) -> Case {
    let machine = crate::qemu::default_machine(arch);
    let mut c = case(arch, name, machine, 1, 512);
    c.kernel = kernel;
    c.initrd = initrd;
    c.disk = false;
    c.expect = Expect::FirmwareError("");
    c.timeout = Duration::from_secs(60);
    c
}

/// A machine (or CPU) the firmware refuses, booted as a user would try it
/// (kernel and initrd given): the error line that names the reason, and
/// QEMU gone within 10 s of its start. `-no-reboot` turns the reset that
/// boards without a power-off get into an exit.
pub(super) fn bad_machine(arch: Arch, name: &str, machine: &str, error: &'static str) -> Case {
    let mut c = bad(arch, name, KernelSel::Guest, InitrdSel::Guest);
    c.machine = machine.into();
    c.expect = Expect::FirmwareError(error);
    c.timeout = Duration::from_secs(10);
    c.extra = vec!["-no-reboot".into()];
    c
}

pub(super) fn with<F: FnOnce(&mut Case)>(mut c: Case, f: F) -> Case {
    f(&mut c);
    c
}

/// The arm64 vCPU policy channel: the fw_cfg file
/// `opt/org.hotstub/enabled-cpus` with a CPU list.
pub(super) fn enabled_cpus_fw_cfg(list: &str) -> Vec<String> {
    vec![
        "-fw_cfg".into(),
        format!("name=opt/org.hotstub/enabled-cpus,string={list}"),
    ]
}

/// QEMU arguments for two NUMA nodes of 512 MiB; `cpus` gives each node's
/// CPU list and `node_opt` is appended to each `-numa node` (e.g.
/// `,initiator=N` for HMAT, with `{}` standing for the node).
pub(in crate::tests) fn two_numa_nodes(cpus: [&str; 2], node_opt: &str) -> Vec<String> {
    let mut v = Vec::new();
    for n in 0..2 {
        v.push("-object".into());
        v.push(format!("memory-backend-ram,id=m{n},size=512M"));
    }
    for (n, c) in cpus.iter().enumerate() {
        v.push("-numa".into());
        v.push(format!(
            "node,nodeid={n},cpus={c},memdev=m{n}{}",
            node_opt.replace("{}", &n.to_string())
        ));
    }
    v
}
