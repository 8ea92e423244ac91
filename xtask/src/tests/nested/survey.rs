//! One boot of L2 under cloud-hypervisor (CH) per firmware, nested as the
//! CH cases are, for `compare --vmm cloud-hypervisor` (what Linux saw,
//! through the test init's command channel) and `bench --vmm
//! cloud-hypervisor` (time to init). The firmwares:
//!
//! - Hotstub as `--firmware`, the kernel from the disk;
//! - EDK2's CloudHv build (Debian unstable's `cloudhv-efi-x86-64`, x86
//!   only) as CH's PVH `--kernel`, running GRUB from the same disk's ESP;
//! - CH's direct kernel boot of the same kernel and initramfs.
//!
//! The disk is the suite's Debian-style one with a standalone GRUB on its
//! ESP (`assets::grub`, as `bench --disk` makes it); its entry's command
//! line is the Debian layout's plus `quiet` and the command channel, as
//! direct boot's is.

use super::l1::{self, L1Files, L2Payload};
use super::steps::L2_BOOT_SECS;
use super::{ch_bins, ch_firmware, ChBins, L2Boot, NestedCase};
use crate::assets::{self, grub, DiskImage, Flavor, Guest};
use crate::build::{self, Arch};
use crate::compare::{print_table, Probe, PROBES};
use crate::qemu::newest::Newest;
use crate::tests::protocol::fields;
use crate::util::{step, target_dir, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What boots L2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChFirmware {
    Hotstub,
    Edk2CloudHv,
    Direct,
}

impl ChFirmware {
    pub fn label(self) -> &'static str {
        match self {
            ChFirmware::Hotstub => "Hotstub",
            ChFirmware::Edk2CloudHv => "EDK2 CloudHv+GRUB",
            ChFirmware::Direct => "CH direct boot",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            ChFirmware::Hotstub => "hotstub",
            ChFirmware::Edk2CloudHv => "edk2",
            ChFirmware::Direct => "direct",
        }
    }

    /// The firmwares on `arch`: EDK2 CloudHv is built for x86 only.
    pub fn on(arch: Arch) -> &'static [ChFirmware] {
        match arch {
            Arch::X86_64 => &[
                ChFirmware::Hotstub,
                ChFirmware::Edk2CloudHv,
                ChFirmware::Direct,
            ],
            Arch::Aarch64 => &[ChFirmware::Hotstub, ChFirmware::Direct],
        }
    }
}

/// Debian unstable's EDK2 CloudHv package and its image (README.Debian:
/// a PVH ELF for CH's `--kernel`).
const CLOUDHV_PKG: &str = "cloudhv-efi-x86-64";
const CLOUDHV_FD: &str = "usr/share/cloudhv-efi-x86-64/CLOUDHV.fd";

/// L2's machine: 2 vCPUs (x86: up to 4, so that the possible CPUs show)
/// and 1 GiB.
fn cpus(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "boot=2,max=4",
        // CH has no vCPU hotplug on arm64.
        Arch::Aarch64 => "boot=2",
    }
}

/// What every boot of one arch shares.
pub struct ChSetup {
    arch: Arch,
    bins: ChBins,
    guest: Guest,
    modules: PathBuf,
    l1_image: PathBuf,
    disk: PathBuf,
    edk2: Option<PathBuf>,
    /// An empty file for the L1 initramfs's spare disk slot.
    spare: PathBuf,
    /// Debian unstable's QEMU for L1, when it can be had (`setup`).
    qemu: Option<Newest>,
}

impl ChSetup {
    /// The QEMU L1 runs on, for the output.
    pub fn qemu_label(&self) -> String {
        match &self.qemu {
            Some(q) => format!("QEMU {} (Debian unstable)", q.version),
            None => "the host's QEMU".into(),
        }
    }
}

/// Prepares `arch`'s boots; `Ok(Err(why))` when the CH binaries are
/// missing (the caller reports it skipped).
pub fn setup(arch: Arch) -> Result<std::result::Result<ChSetup, String>> {
    let bins = match ch_bins(arch) {
        Ok(b) => b,
        Err(why) => return Ok(Err(why)),
    };
    crate::qemu::ensure_qemu(arch)?;
    crate::host::ensure(&[], grub::GRUB_PACKAGES)?;
    let l1_image = build::build(arch, false)?;
    let guest = assets::guest(arch, Flavor::Lts)?;
    let modules = assets::nested_modules(arch, Flavor::Lts, &guest.kernel)?;
    let dir = target_dir().join("ch-survey").join(arch.name());
    let cmdline = format!("{} quiet hotstub.action=cmd", assets::debian_cmdline(arch));
    let (disk, _) = grub::grub_disk(arch, &guest, &cmdline, &dir)?;
    let edk2 = match arch {
        Arch::X86_64 => {
            let root = target_dir().join("ch-survey").join(CLOUDHV_PKG);
            let fd = root.join(CLOUDHV_FD);
            if !fd.is_file() {
                crate::unstable::fetch_unpacked(CLOUDHV_PKG, &root)?;
            }
            Some(fd)
        }
        Arch::Aarch64 => None,
    };
    // L1 runs on Debian unstable's QEMU where it can be had: the host's
    // QEMU 10.0 aborted (`tcg_handle_interrupt: assertion failed:
    // (bql_locked())`) in each of four L1 boots while L2 ran EDK2 CloudHv
    // and GRUB; 11.1 aborts too (`cpu_interrupt`, same assertion) but in
    // about half of them (`QEMU_CRASH_TRIES`). Every firmware runs on the
    // same QEMU.
    let qemu = match crate::qemu::newest::ensure() {
        Ok(q) => Some(q),
        Err(e) => {
            step(format!(
                "no Debian unstable QEMU ({e}); L1 runs on the host's QEMU, which may abort under EDK2 CloudHv"
            ));
            None
        }
    };
    let spare = dir.join("spare.raw");
    std::fs::write(&spare, b"").map_err(|e| format!("write {}: {e}", spare.display()))?;
    Ok(Ok(ChSetup {
        arch,
        bins,
        guest,
        modules,
        l1_image,
        disk,
        edk2,
        spare,
        qemu,
    }))
}

/// What one boot showed.
pub struct ChBoot {
    /// Host seconds from CH's start to L2's init (nested under TCG: only
    /// the ratios between firmwares mean anything).
    pub to_init: f64,
    /// L2's kernel clock at its init: the kernel's share of `to_init`.
    pub uptime: f64,
    /// The probes' answers.
    pub answers: Vec<String>,
    /// `cloud-hypervisor --version`.
    pub version: String,
    /// Runs QEMU aborted in before this one (`boot`).
    pub qemu_crashes: usize,
}

/// How often a boot is tried when QEMU (L0) itself aborts: QEMU's TCG
/// fails `assertion failed: (bql_locked())` at times while L2's EDK2
/// CloudHv and GRUB run (`setup`; QEMU 11.1.3: 6 aborts in 10 EDK2
/// boots, none in the Hotstub and direct ones), a QEMU bug that says
/// nothing about the firmware under test.
const QEMU_CRASH_TRIES: usize = 5;

/// Boots L2 under `fw` (`run` numbers the log), asks the probes and powers
/// L2 off; a run QEMU aborted in is tried again, its log kept as
/// `<log>.qemu-crash-N.log`, and counted in `ChBoot::qemu_crashes`.
pub fn boot(s: &ChSetup, fw: ChFirmware, probes: &[&str], run: usize) -> Result<ChBoot> {
    let log =
        target_dir()
            .join("ch-survey")
            .join(format!("{}-{}-{run}.log", s.arch.name(), fw.slug()));
    let mut crashes = 0;
    loop {
        match boot_once(s, fw, probes, &log) {
            Err(e) if crashes + 1 < QEMU_CRASH_TRIES && qemu_aborted(&log) => {
                crashes += 1;
                let keep = log.with_extension(format!("qemu-crash-{crashes}.log"));
                let _ = std::fs::rename(&log, &keep);
                step(format!(
                    "{}: QEMU aborted ({e}); trying again, log kept as {}",
                    fw.label(),
                    keep.display()
                ));
            }
            r => {
                return r.map(|mut b| {
                    b.qemu_crashes = crashes;
                    b
                })
            }
        }
    }
}

/// Whether QEMU itself failed an assertion in the run logged at `log`.
fn qemu_aborted(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|l| {
        l.lines()
            .any(|x| x.contains("[qemu stderr]") && x.contains("assertion failed"))
    })
}

fn boot_once(s: &ChSetup, fw: ChFirmware, probes: &[&str], log: &Path) -> Result<ChBoot> {
    let arch = s.arch;
    let (boot, l2) = match fw {
        ChFirmware::Direct => (
            L2Boot::Direct(""),
            L2Payload::Direct {
                kernel: s.guest.kernel.image.clone(),
                initrd: s.guest.initrd.clone(),
                disk: Some(s.disk.clone()),
            },
        ),
        ChFirmware::Hotstub => (
            L2Boot::HotstubDisk(DiskImage::Debian),
            L2Payload::Disk {
                firmware: ch_firmware(arch),
                disk: s.disk.clone(),
            },
        ),
        ChFirmware::Edk2CloudHv => (
            L2Boot::HotstubDisk(DiskImage::Debian),
            L2Payload::Edk2 {
                firmware: s.edk2.clone().ok_or("EDK2 CloudHv is x86 only")?,
                disk: s.disk.clone(),
            },
        ),
    };
    let c = NestedCase {
        name: format!("{}/ch-survey-{}", arch.name(), fw.slug()),
        arch,
        boot,
        cpus: cpus(arch),
        memory: "size=1G",
        mem_mib: 1024,
        online: "0-1",
        acpi_tables: None,
        steps: Vec::new(),
        pending: None,
        refused: None,
        probes: true,
        fw_cfg: None,
    };
    let files = L1Files {
        guest: &s.guest,
        modules: &s.modules,
        bins: &s.bins,
        l2: &l2,
        spare_disk: &s.spare,
        qemu_root: s.qemu.as_ref().map(|q| q.root.clone()),
    };
    let mut r = l1::start(&c, &files, &s.l1_image, log)?;
    let out = (|| {
        let init = r
            .wait_mark("l2 init", "HOTSTUB: init reached", L2_BOOT_SECS)
            .map_err(|e| format!("{} did not boot L2: {e}", fw.label()))?;
        r.vm.wait_prefix("HOTSTUB: ready", Duration::from_secs(L2_BOOT_SECS))?;
        let mut answers = Vec::new();
        for p in probes {
            let (_, lines) = r.vm.guest_cmd(p, Duration::from_secs(60))?;
            answers.push(lines.join(" ").trim().to_string());
        }
        r.vm.send_serial("HOTSTUB-CMD 0 poweroff -f\n")?;
        let exit = r.wait_either("NESTED: ch exited", "NESTED: error:", 60)?;
        if !exit.starts_with("NESTED: ch exited rc=0") {
            return Err(format!("{exit}: {}", r.ch_log().join(" | ")));
        }
        let at = |w: &str| r.marks.iter().find(|(m, _)| *m == w).map(|(_, t)| *t);
        let lines = r.vm.lines();
        Ok(ChBoot {
            to_init: at("l2 init").unwrap_or(0.0) - at("ch started").unwrap_or(0.0),
            uptime: fields(&init)
                .get("uptime")
                .and_then(|u| u.parse().ok())
                .unwrap_or(0.0),
            answers,
            version: lines
                .iter()
                .find_map(|l| l.strip_prefix("NESTED: ch version "))
                .unwrap_or("?")
                .to_string(),
            qemu_crashes: 0,
        })
    })();
    let _ = r.vm.wait_exit(Duration::from_secs(30));
    r.vm.kill();
    l1::cleanup(log);
    out.map_err(|e| format!("{e} (log {})", log.display()))
}

/// What CH's firmwares show beside the rows of QEMU's compare: the PCI
/// functions (address, vendor and device IDs) Linux enumerated, and the
/// ACPI devices whose physical device has a driver on any bus (under CH
/// none binds an ACPI-bus driver, the row QEMU's compare has: the GED is
/// a platform device, the CPUs and PCI slots are on their own buses), as
/// `<name without its instance>=<driver>`.
const CH_EXTRA: &[Probe] = &[
    Probe {
        what: "PCI functions",
        cmd: "for d in /sys/bus/pci/devices/*; do echo ${d##*/}=$(cut -c3- $d/vendor):$(cut -c3- $d/device); done | xargs",
        must_agree: true,
    },
    Probe {
        what: "ACPI devices driven",
        cmd: "for n in /sys/bus/acpi/devices/*/physical_node; do d=$(readlink $n/driver); [ -n \"$d\" ] || continue; a=${n%/physical_node}; a=${a##*/}; echo ${a%%:*}=${d##*/}; done | sort -u | xargs",
        must_agree: true,
    },
];

/// The rows under CH on `arch`: QEMU's compare's and `CH_EXTRA`. On x86
/// every firmware hands Linux CH's own ACPI tables, so the ACPI devices
/// must agree too (the table list may not: a firmware may add its own);
/// on arm64 CH's direct boot gives Linux the device tree instead, so the
/// ACPI rows differ by design there.
fn ch_probes(arch: Arch) -> Vec<Probe> {
    let acpi = |p: &Probe| p.what.starts_with("ACPI devices");
    PROBES
        .iter()
        .chain(CH_EXTRA)
        .map(|p| Probe {
            must_agree: match arch {
                Arch::X86_64 => p.must_agree || acpi(p),
                Arch::Aarch64 => p.must_agree && !acpi(p),
            },
            ..*p
        })
        .collect()
}

/// `compare --vmm cloud-hypervisor`: every firmware on `arch`, Hotstub
/// first; returns the must-agree rows that differ, or Err when CH is
/// missing (with the reason, which the caller prints as a skip).
pub fn compare(arch: Arch) -> Result<std::result::Result<Vec<String>, String>> {
    let s = match setup(arch)? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let probes = ch_probes(arch);
    let cmds: Vec<&str> = probes.iter().map(|p| p.cmd).collect();
    let mut cols = Vec::new();
    let mut version = String::new();
    let mut crashed = Vec::new();
    for &fw in ChFirmware::on(arch) {
        step(format!(
            "{}: booting L2 under CH with {}",
            arch.name(),
            fw.label()
        ));
        let b = boot(&s, fw, &cmds, 0)?;
        if b.qemu_crashes > 0 {
            crashed.push(format!("{} {}", fw.label(), b.qemu_crashes));
        }
        version = b.version;
        cols.push(b.answers);
    }
    println!(
        "cloud-hypervisor: {version} (nested: L1 on {}, TCG)",
        s.qemu_label()
    );
    if !crashed.is_empty() {
        println!(
            "QEMU aborted and the boot was run again: {}",
            crashed.join(", ")
        );
    }
    let labels: Vec<&str> = ChFirmware::on(arch).iter().map(|f| f.label()).collect();
    Ok(Ok(print_table(
        &labels,
        &probes.iter().collect::<Vec<_>>(),
        &cols,
    )))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn ch_rows_keep_qemus_and_add_pci() {
        let p = ch_probes(Arch::X86_64);
        assert_eq!(p.len(), PROBES.len() + CH_EXTRA.len());
        assert!(p
            .iter()
            .any(|p| p.what == "ACPI devices bound" && p.must_agree));
        assert!(p.iter().any(|p| p.what == "PCI functions" && p.must_agree));
        let arm = ch_probes(Arch::Aarch64);
        assert!(arm
            .iter()
            .all(|p| !p.what.starts_with("ACPI devices") || !p.must_agree));
        assert!(p.iter().any(|p| p.what == "MemTotal MiB" && !p.must_agree));
        assert_eq!(ChFirmware::on(Arch::Aarch64).len(), 2);
        assert_eq!(ChFirmware::on(Arch::X86_64)[0], ChFirmware::Hotstub);
    }
}
