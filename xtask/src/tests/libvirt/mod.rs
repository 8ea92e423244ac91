//! The libvirt cases: Hotstub as a libvirt user would run it, through
//! `virsh` against a libvirtd of the suite's own (`daemon`), with the
//! host's QEMU (the one the suite checked) as the domain's emulator.
//!
//! - `x86_64/libvirt`: q35 with `<loader type='rom'>`, booted to the test
//!   init (`hotstub.action=cmd`), the standard checks on its report, then
//!   `virsh setvcpus --live` adds a vCPU that the init's watcher onlines,
//!   and `virsh attach-disk` hot-adds the test disk on a root port, which
//!   the guest reads back (md5), and `virsh detach-disk` takes it away
//!   again (the guest's /dev/vda goes); then the kernel log checks and the
//!   power-off, after which libvirt must say `shut off (shutdown)`.
//! - `aarch64/libvirt`: virt with `<acpi/>` and the pflash copy of the image
//!   (`build::pflash_path`) as a stateless loader, booted to the init and
//!   powered off, with the standard checks.
//!
//! The console is a `<serial type='unix'>` QEMU listens on: each domain
//! starts paused, the harness attaches, then resumes it, so no output is
//! lost. libvirt comes from bookworm-backports (`host::ensure_libvirt`);
//! when it cannot be installed (no network, not root) the cases are
//! SKIPPED with the reason.

mod daemon;
mod domain;

use super::case::{Case, CpuExpect, Expect};
use super::checks::{bad_dmesg_lines, check_boot};
use super::matrix::make::case;
use super::protocol::md5_when_live;
use super::runner::{Env, Results};
use crate::build::{self, Arch};
use crate::qemu::Vm;
use crate::util::{Context, Result};
use daemon::Daemon;
use domain::Domain;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A step in the guest (hotplug to online, a disk to read).
const STEP: Duration = Duration::from_secs(60);

fn never(_: &Case, _: &Env) -> Result<String> {
    Err("libvirt cases run through tests::libvirt::run".into())
}

/// The cases (their `Case` carries what the standard checks expect).
pub(in super::super) fn cases() -> Vec<Case> {
    let mut x86 = case(Arch::X86_64, "libvirt", "q35", 2, 512);
    x86.smp = "1,maxcpus=2".into();
    x86.action = "cmd";
    x86.disk = false;
    x86.append = "hotstub.autoonline=1 hotstub.modules=virtio_blk".into();
    x86.cpus = CpuExpect {
        possible: Some("0-1".into()),
        present: Some("0".into()),
        present_when_added: None,
        online: Some("0".into()),
        enabled: Some("0".into()),
    };
    x86.timeout = Duration::from_secs(240);
    x86.expect = Expect::Own(never);
    let mut arm = case(Arch::Aarch64, "libvirt", "virt", 2, 512);
    arm.disk = false;
    arm.timeout = Duration::from_secs(240);
    arm.expect = Expect::Own(never);
    vec![x86, arm]
}

/// Runs the selected libvirt cases against one private libvirtd, recording
/// each; all are SKIPPED when libvirt is not available and cannot be
/// installed.
pub(in super::super) fn run(selected: &[Case], env: &Env, results: &mut Results) {
    if selected.is_empty() {
        return;
    }
    // Without libvirt the cases cannot run (SKIP); a libvirt that is there
    // but whose daemon does not start fails them.
    let version = match crate::host::ensure_libvirt() {
        Ok(v) => v,
        Err(e) => {
            let why = e.lines().next().unwrap_or("").to_string();
            for c in selected {
                results.skip(&c.name, &format!("no libvirt: {why}"));
            }
            return;
        }
    };
    let mut daemon = match Daemon::start() {
        Ok(d) => d,
        Err(e) => {
            for c in selected {
                results.record(&c.name, Err(e.clone()));
            }
            return;
        }
    };
    for c in selected {
        let t = Instant::now();
        let log = env.logs.join(format!("{}.log", c.name.replace('/', "-")));
        let name = format!("hotstub-test-{}", c.arch.name());
        let r = run_case(c, env, &daemon, &name, &log)
            .map(|note| {
                format!(
                    "{:.1}s, {version} ({}), {note}",
                    t.elapsed().as_secs_f64(),
                    daemon.version
                )
            })
            .map_err(|e| {
                format!(
                    "{e} [{:.1}s, console {}, QEMU log {}]",
                    t.elapsed().as_secs_f64(),
                    log.display(),
                    daemon.qemu_log(&name).display()
                )
            });
        let _ = daemon.virsh(&["destroy", &name]);
        let _ = daemon.virsh(&["undefine", &name]);
        results.record(&c.name, r);
    }
    daemon.stop();
}

/// The QEMU binary on PATH, the one `host::check_versions` checked.
fn emulator(arch: Arch) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(arch.qemu()))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{} not on PATH", arch.qemu()))
}

/// The kernel command line: the init's keys as `runner` gives them, with
/// the case's own.
fn cmdline(c: &Case) -> String {
    let mut s = format!("hotstub.action={} hotstub.dump=1", c.action);
    if c.arch == Arch::X86_64 {
        s.insert_str(0, "console=ttyS0 ");
    }
    if !c.append.is_empty() {
        s = format!("{s} {}", c.append);
    }
    s
}

fn run_case(c: &Case, env: &Env, daemon: &Daemon, name: &str, log: &Path) -> Result<String> {
    let guest = match env.guests.get(&(c.arch.name(), c.flavor)) {
        Some(Ok(g)) => g.clone(),
        Some(Err(e)) => return Err(format!("no guest assets: {e}")),
        None => return Err("guest assets were not prepared".into()),
    };
    match env.images.get(c.arch.name()) {
        Some(Ok(_)) => {}
        Some(Err(e)) => return Err(format!("no firmware image: {e}")),
        None => return Err("firmware image was not built".into()),
    }
    let firmware = match c.arch {
        Arch::X86_64 => c.arch.image_path(),
        Arch::Aarch64 => build::pflash_path(),
    };
    let console = daemon.dir().join(format!("{name}.console"));
    let xml_path = daemon.dir().join(format!("{name}.xml"));
    let line = cmdline(c);
    let (cur, max) = match c.smp.split_once(",maxcpus=") {
        Some((a, b)) => (a.parse().unwrap_or(1), b.parse().unwrap_or(1)),
        None => {
            let n = c.smp.parse().unwrap_or(1);
            (n, n)
        }
    };
    let qemu = emulator(c.arch)?;
    let xml = Domain {
        name,
        arch: c.arch,
        firmware: &firmware,
        kernel: &guest.kernel.image,
        initrd: &guest.initrd,
        cmdline: &line,
        vcpus: (cur, max),
        mem_mib: c.mem_mib,
        console: &console,
        emulator: &qemu,
    }
    .xml();
    std::fs::write(&xml_path, xml).ctx("write domain XML")?;
    let xml_arg = xml_path.display().to_string();
    daemon.virsh(&["define", &xml_arg])?;
    daemon.virsh(&["start", "--paused", name])?;
    let mut vm = Vm::attach_console(&console, log, Duration::from_secs(10))?;
    daemon.virsh(&["resume", name])?;
    let t0 = Instant::now();
    let deadline = t0 + c.timeout;
    let left = |d: Instant| d.saturating_duration_since(Instant::now());
    vm.wait_prefix("HOTSTUB: init reached", left(deadline))?;
    let mut notes = Vec::new();
    if c.action == "cmd" {
        vm.wait_prefix("HOTSTUB: ready", left(deadline))?;
        notes.push(format!("ready after {:.1}s", t0.elapsed().as_secs_f64()));
        notes.push(check_boot(c, env, &vm.lines(), log)?);
        notes.extend(x86_hotplug(&mut vm, daemon, name, env)?);
        let (_, out) = vm.guest_cmd("dmesg", Duration::from_secs(30))?;
        let bad = bad_dmesg_lines(&out, c.arch);
        if !bad.is_empty() {
            return Err(format!("kernel log after hotplug: {}", bad.join(" | ")));
        }
        vm.send_serial("HOTSTUB-CMD 0 poweroff -f\n")?;
    } else {
        vm.wait_prefix("HOTSTUB: poweroff", left(deadline))?;
        notes.push(format!("init after {:.1}s", t0.elapsed().as_secs_f64()));
    }
    if vm
        .wait_exit(left(deadline).min(Duration::from_secs(30)))?
        .is_none()
    {
        return Err("the guest's poweroff did not end QEMU (console still open)".into());
    }
    if c.action != "cmd" {
        notes.push(check_boot(c, env, &vm.lines(), log)?);
    }
    // The console closes when QEMU exits; libvirt must have seen the
    // guest's own power-off.
    let t = Instant::now();
    loop {
        let st = daemon.virsh(&["domstate", "--reason", name])?;
        let st = st.trim();
        if st == "shut off (shutdown)" {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!("libvirt says `{st}` after the guest's power-off"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    notes.retain(|n| !n.is_empty());
    Ok(notes.join(", "))
}

/// `virsh setvcpus --live` to 2, then `virsh attach-disk` of the test
/// disk as vda, read back in the guest, then `detach-disk`; returns the
/// timings.
fn x86_hotplug(vm: &mut Vm, daemon: &Daemon, name: &str, env: &Env) -> Result<Vec<String>> {
    let t = Instant::now();
    daemon.virsh(&["setvcpus", name, "2", "--live"])?;
    vm.wait_line("cpus online=0-1", STEP, |l| {
        l.starts_with("HOTSTUB: cpus ") && format!("{l} ").contains(" online=0-1 ")
    })
    .map_err(|e| format!("after virsh setvcpus 2 --live: {e}"))?;
    let live = daemon.virsh(&["vcpucount", name, "--live", "--current"])?;
    if live.trim() != "2" {
        return Err(format!("virsh vcpucount --live says {}", live.trim()));
    }
    let vcpu = format!("setvcpus to cpu1 online {:.1}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let disk = env.disk.display().to_string();
    daemon.virsh(&[
        "attach-disk",
        name,
        &disk,
        "vda",
        "--targetbus",
        "virtio",
        "--mode",
        "readonly",
        "--live",
    ])?;
    let (rc, out) = vm.guest_cmd(&md5_when_live("/dev/vda"), STEP)?;
    let got = out
        .iter()
        .find_map(|l| l.split_whitespace().next().filter(|w| w.len() == 32))
        .unwrap_or("");
    if rc != 0 || got != env.disk_md5 {
        return Err(format!(
            "attached disk read back as `{}` (rc {rc}), expected md5 {}",
            out.join(" | "),
            env.disk_md5
        ));
    }
    let disk = format!("attach-disk to md5 {:.1}s", t.elapsed().as_secs_f64());
    // And both away again: libvirt returns once QEMU reports the device
    // deleted (or says the request was sent, when the guest is slower).
    let t = Instant::now();
    daemon.virsh(&["detach-disk", name, "vda", "--live"])?;
    let (_, out) = vm.guest_cmd(
        "for i in $(seq 150); do test -b /dev/vda || { echo gone; break; }; sleep 0.2; done",
        STEP,
    )?;
    if !out.iter().any(|l| l.trim() == "gone") {
        return Err("/dev/vda still there 30 s after virsh detach-disk".into());
    }
    let undisk = format!("detach-disk to gone {:.1}s", t.elapsed().as_secs_f64());
    // No `setvcpus 1 --live`: Linux ejects the vCPU and QEMU 10.0 (TCG)
    // empties its slot, but sends DEVICE_DELETED only for the vCPU's local
    // APIC, never for the vCPU device (none within 90 s), so libvirt times
    // out after 5 s ("vcpu unplug request timed out") and keeps counting
    // it; see README "libvirt".
    Ok(vec![vcpu, disk, undisk])
}
