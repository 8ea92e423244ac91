//! `cargo xtask compare [--arch A] [-- QEMU args]`: boots one machine under
//! Hotstub and under the firmware QEMU uses by default (SeaBIOS on x86,
//! EDK2 on arm), each on QEMU's own tables for the latter, and prints side
//! by side what Linux saw. A user runs it to see what switching costs or
//! gains; the test suite runs it on a NUMA + topology + IOMMU machine and
//! requires the two to agree on every row marked as one that must.

use crate::assets::{self, Flavor};
use crate::build::{self, Arch};
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{step, target_dir, Result};
use std::time::Duration;

/// One row: what it is, the guest command that reports it, and whether
/// the two firmwares must agree on it (memory and the table list differ
/// by design: each firmware reserves its own memory and has its own set of
/// tables).
#[derive(Clone, Copy)]
pub struct Probe {
    pub what: &'static str,
    pub cmd: &'static str,
    pub must_agree: bool,
}

pub const PROBES: &[Probe] = &[
    Probe {
        what: "CPUs possible",
        cmd: "cat /sys/devices/system/cpu/possible",
        must_agree: true,
    },
    Probe {
        what: "CPUs present",
        cmd: "cat /sys/devices/system/cpu/present",
        must_agree: true,
    },
    Probe {
        what: "CPUs online",
        cmd: "cat /sys/devices/system/cpu/online",
        must_agree: true,
    },
    Probe {
        what: "cpu0 thread siblings",
        cmd: "cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list",
        must_agree: true,
    },
    Probe {
        what: "cpu0 package CPUs",
        cmd: "cat /sys/devices/system/cpu/cpu0/topology/package_cpus_list",
        must_agree: true,
    },
    Probe {
        what: "packages",
        cmd: "cat /sys/devices/system/cpu/cpu*/topology/physical_package_id | sort -u | wc -l",
        must_agree: true,
    },
    Probe {
        what: "NUMA nodes",
        cmd: "cat /sys/devices/system/node/online",
        must_agree: true,
    },
    Probe {
        what: "CPUs per node",
        cmd: "for n in /sys/devices/system/node/node*; do echo ${n##*/}:$(cat $n/cpulist); done | xargs",
        must_agree: true,
    },
    Probe {
        what: "node distances",
        cmd: "cat /sys/devices/system/node/node*/distance | xargs",
        must_agree: true,
    },
    Probe {
        what: "IOMMUs",
        cmd: "ls /sys/class/iommu | xargs",
        must_agree: true,
    },
    Probe {
        what: "TPMs",
        cmd: "ls /sys/class/tpm 2>/dev/null | xargs",
        must_agree: true,
    },
    // Measured boot: whether Linux got an event log, and its size (SeaBIOS
    // and EDK2 log different events, so only presence must agree, and only
    // when the machine has a TPM).
    Probe {
        what: "TPM event log",
        cmd: "mount -t securityfs securityfs /sys/kernel/security 2>/dev/null; \
              f=/sys/kernel/security/tpm0/binary_bios_measurements; \
              if [ -e $f ]; then echo present, $(cat $f | wc -c) bytes; else echo none; fi",
        must_agree: false,
    },
    Probe {
        what: "MemTotal MiB",
        cmd: "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo",
        must_agree: false,
    },
    Probe {
        what: "ACPI tables",
        cmd: "ls /sys/firmware/acpi/tables | grep -v -e dynamic -e data | xargs",
        must_agree: false,
    },
    Probe {
        what: "ACPI devices bound",
        cmd: "ls -d /sys/bus/acpi/drivers/*/*:* 2>/dev/null | awk -F/ '{split($7, a, \":\"); print $6 \"=\" a[1]}' | sort -u | xargs",
        must_agree: false,
    },
];

/// What one firmware's boot showed: the answer to each probe.
fn survey(m: &Machine, fw: Firmware) -> Result<Vec<String>> {
    let (arch, extra) = (m.arch, &m.extra);
    let guest = assets::guest(arch, Flavor::Lts)?;
    let mut cfg = VmConfig::new(arch, fw);
    cfg.kernel = Some(guest.kernel.image.clone());
    cfg.initrd = Some(guest.initrd.clone());
    let console = if arch == Arch::X86_64 {
        "console=ttyS0 "
    } else {
        ""
    };
    // arm64's Debian kernel has tpm_tis as a module.
    let tpm = if extra.iter().any(|a| a.contains("tpm-tis-device")) {
        " hotstub.modules=tpm_tis"
    } else {
        ""
    };
    cfg.append = Some(format!("{console}hotstub.action=cmd{tpm}"));
    cfg.memory = "1G".into();
    if let Some(mach) = &m.machine {
        cfg.machine = mach.clone();
    }
    if let Some(smp) = &m.smp {
        cfg.smp = smp.clone();
    }
    cfg.extra = extra.to_vec();
    let log = target_dir().join("compare").join(format!(
        "{}-{}.log",
        arch.name(),
        fw.label(arch).replace(' ', "-")
    ));
    let mut vm = Vm::spawn(&cfg, &log, false)?;
    // EDK2 under TCG takes a while before Linux starts.
    vm.wait_prefix("HOTSTUB: ready", Duration::from_secs(300))
        .map_err(|e| format!("{} did not boot the guest: {e}", fw.label(arch)))?;
    let mut out = Vec::new();
    for p in PROBES {
        let (_, lines) = vm.guest_cmd(p.cmd, Duration::from_secs(60))?;
        out.push(lines.join(" ").trim().to_string());
    }
    vm.kill();
    Ok(out)
}

/// Runs both firmwares and prints the table. Returns the rows that must
/// agree and do not.
/// The machine to compare on.
pub struct Machine {
    pub arch: Arch,
    /// `-M` (default: the suite's q35 / virt,gic-version=3).
    pub machine: Option<String>,
    pub smp: Option<String>,
    /// Further QEMU arguments.
    pub extra: Vec<String>,
}

pub fn compare(m: &Machine) -> Result<Vec<String>> {
    let arch = m.arch;
    crate::qemu::ensure_qemu(arch)?;
    build::build(arch, false)?;
    let other = match arch {
        Arch::X86_64 => Firmware::QemuDefault,
        Arch::Aarch64 => Firmware::Edk2,
    };
    step(format!(
        "booting the machine under Hotstub and under {}",
        other.label(arch)
    ));
    let a = survey(m, Firmware::Hotstub)?;
    let b = survey(m, other)?;
    let label = other.label(arch);
    Ok(print_table(
        &["Hotstub", label],
        &PROBES.iter().collect::<Vec<_>>(),
        &[a, b],
    ))
}

/// Prints one column per firmware (`labels`, the first the reference) and
/// a row per probe; returns the must-agree rows where a column differs
/// from the first.
pub fn print_table(labels: &[&str], probes: &[&Probe], cols: &[Vec<String>]) -> Vec<String> {
    let w = probes.iter().map(|p| p.what.len()).max().unwrap_or(10);
    print!("{:w$} ", "");
    for l in labels {
        print!(" {l:30} ");
    }
    println!();
    let mut differ = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let first = &cols[0][i];
        let odd: Vec<usize> = (1..cols.len()).filter(|&c| cols[c][i] != *first).collect();
        let mark = if odd.is_empty() {
            " "
        } else if p.must_agree {
            for &c in &odd {
                differ.push(format!(
                    "{}: {} `{first}`, {} `{}`",
                    p.what, labels[0], labels[c], cols[c][i]
                ));
            }
            "!"
        } else {
            "~"
        };
        print!("{mark}{:w$} ", p.what);
        for c in cols {
            print!(" {:30} ", c[i]);
        }
        println!();
    }
    println!("(! = differs where the two must agree, ~ = differs by design)");
    differ
}
