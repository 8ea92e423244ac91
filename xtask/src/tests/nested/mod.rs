//! The cloud-hypervisor (CH) cases, run nested: an L1 Linux under QEMU TCG
//! with KVM on emulated virtualization extensions (x86 q35 `-cpu max`
//! gives SVM with nested paging; arm64 virt with `virtualization=on`
//! enters Linux at EL2), booted by Hotstub like every other case; CH runs
//! inside L1 and boots L2, whose test init (tests/guest/init) reports over
//! CH's serial port, which L1 relays to its own console
//! (tests/guest/nested-init).
//!
//! CH is not packaged: its binaries come from `HOTSTUB_CLOUD_HYPERVISOR`
//! (`<dir>/<arch>/cloud-hypervisor` and `ch-remote`); without them a case
//! is reported SKIPPED with the reason.
//!
//! - `cases`: the table of cases (what L2 boots, what CH is given, the
//!   steps after boot);
//! - `l1`: the L1 initramfs and VM, and commands run in L1;
//! - `steps`: hotplug steps and the checks on L2's boot;
//! - `survey`: one boot of L2 under each of CH's firmwares, for
//!   `compare --vmm cloud-hypervisor` and `bench --vmm cloud-hypervisor`.

mod cases;
mod l1;
mod steps;
pub mod survey;

use super::runner::Results;
use crate::assets::{self, DiskImage, Flavor};
use crate::build::{self, Arch};
use crate::util::{target_dir, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(super) use cases::cases;

/// The variable that names the CH binaries' directory.
pub(super) const CH_ENV: &str = "HOTSTUB_CLOUD_HYPERVISOR";
/// The variable that names a second directory laid out the same, built
/// with CH's non-default `fw_cfg` feature, for the cases that give Hotstub
/// fw_cfg files (`NestedCase::fw_cfg`); without it those cases take
/// `CH_ENV`'s binaries when they have fw_cfg.
pub(super) const CH_FW_CFG_ENV: &str = "HOTSTUB_CLOUD_HYPERVISOR_FW_CFG";

/// fw_cfg files CH hands Hotstub (`--fw-cfg-config ...,items=[...]`), as
/// (name, content) for the guest kernel of this version.
pub(super) type FwCfgFiles = fn(kernel_version: &str) -> Vec<(&'static str, String)>;

/// What L2 boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum L2Boot {
    /// CH's direct kernel boot (`--kernel --initramfs --cmdline`) of the
    /// suite's kernel and test initramfs, with this extra command line.
    Direct(&'static str),
    /// Hotstub as CH's `--firmware`, the kernel and command line from this
    /// disk (`--disk`).
    HotstubDisk(DiskImage),
}

/// One nested case.
#[derive(Clone)]
pub(super) struct NestedCase {
    pub name: String,
    pub arch: Arch,
    pub boot: L2Boot,
    /// CH's `--cpus` and `--memory` values.
    pub cpus: &'static str,
    pub memory: &'static str,
    /// L2's MiB of RAM at boot (the MemTotal check).
    pub mem_mib: u64,
    /// Expected `/sys/devices/system/cpu/online` at L2's init.
    pub online: &'static str,
    /// The ACPI tables L2 must list, or None: L2 runs on the device tree
    /// (`acpi=no`).
    pub acpi_tables: Option<&'static [&'static str]>,
    /// Steps after L2's `HOTSTUB: ready` (the init's `cmd` action: the
    /// harness asks for it under direct boot; under Hotstub the disk's
    /// entry must, `DiskImage::DebianCmd`).
    pub steps: Vec<steps::Step>,
    /// Waiting for something the project has not merged yet (the reason,
    /// and how to enable it): reported SKIPPED unless `--filter` names
    /// the case in full.
    pub pending: Option<&'static str>,
    /// Hotstub must refuse to boot: its one `hotstub: error:` line
    /// contains this text, and its power-off ends CH (exit status 0).
    pub refused: Option<&'static str>,
    /// L2's init keeps its command channel though the case has no steps
    /// (the probes of `compare --vmm cloud-hypervisor`).
    pub probes: bool,
    /// CH's fw_cfg device with these files: the case needs a CH built
    /// with its `fw_cfg` feature (`ch_fw_cfg_bins`) and checks that Hotstub
    /// read them (`steps::check_fw_cfg`).
    pub fw_cfg: Option<FwCfgFiles>,
}

impl NestedCase {
    /// Whether `--filter` (empty: none) selects the case (a pending one is
    /// then listed as skipped unless named in full: `held_back`).
    pub(super) fn selected_by(&self, filter: &str) -> bool {
        self.name.contains(filter)
    }

    /// Whether L2's init runs its command channel (`hotstub.action=cmd`)
    /// rather than powering off after its report.
    pub(super) fn uses_cmd(&self) -> bool {
        match self.boot {
            L2Boot::Direct(_) => self.probes || !self.steps.is_empty(),
            L2Boot::HotstubDisk(d) => d == DiskImage::DebianCmd,
        }
    }

    /// Why a selected case is only listed (SKIP): it is pending and
    /// `--filter` did not name it in full (with or without `<arch>/`).
    fn held_back(&self, filter: &str) -> Option<&'static str> {
        let short = self.name.split_once('/').map_or("", |(_, s)| s);
        match self.pending {
            Some(why) if filter != self.name && filter != short => Some(why),
            _ => None,
        }
    }
}

/// The CH binaries for one arch.
pub(super) struct ChBins {
    pub ch: PathBuf,
    pub remote: PathBuf,
}

/// The CH binaries for `arch` from `HOTSTUB_CLOUD_HYPERVISOR`, or why
/// there are none (the reason of the SKIP line).
pub(super) fn ch_bins(arch: Arch) -> std::result::Result<ChBins, String> {
    let dir = std::env::var_os(CH_ENV).ok_or_else(|| {
        format!(
            "{CH_ENV} is not set (a directory with <arch>/cloud-hypervisor and \
             <arch>/ch-remote, static builds; README \"cloud-hypervisor\")"
        )
    })?;
    ch_bins_in(Path::new(&dir), arch)
}

fn ch_bins_in(dir: &Path, arch: Arch) -> std::result::Result<ChBins, String> {
    let d = dir.join(arch.name());
    let bins = ChBins {
        ch: d.join("cloud-hypervisor"),
        remote: d.join("ch-remote"),
    };
    for p in [&bins.ch, &bins.remote] {
        if !p.is_file() {
            return Err(format!("{CH_ENV}: no {}", p.display()));
        }
    }
    Ok(bins)
}

/// The CH binaries with fw_cfg for `arch`: `CH_FW_CFG_ENV`'s when it is
/// set, else `CH_ENV`'s; either must have been built with CH's `fw_cfg`
/// feature, or the reason names the variable to set.
pub(super) fn ch_fw_cfg_bins(arch: Arch) -> std::result::Result<ChBins, String> {
    let (var, bins) = match std::env::var_os(CH_FW_CFG_ENV) {
        Some(dir) => (CH_FW_CFG_ENV, ch_bins_in(Path::new(&dir), arch)?),
        None => (CH_ENV, ch_bins(arch)?),
    };
    if has_fw_cfg(&bins.ch)? {
        Ok(bins)
    } else {
        Err(format!(
            "{var}: {} has no fw_cfg (built without CH's `fw_cfg` feature); \
             set {CH_FW_CFG_ENV} to a build with it (README \"cloud-hypervisor\")",
            bins.ch.display()
        ))
    }
}

/// Whether a CH binary was built with its `fw_cfg` feature: only then
/// does it define the `--fw-cfg-config` option (CH cloud-hypervisor/src/
/// main.rs), whose name is then in the binary. Read, not run, so that an
/// arm64 binary is told on an x86 host too.
fn has_fw_cfg(ch: &Path) -> std::result::Result<bool, String> {
    let bytes = std::fs::read(ch).map_err(|e| format!("read {}: {e}", ch.display()))?;
    let opt = b"fw-cfg-config";
    Ok(bytes.windows(opt.len()).any(|w| w == opt))
}

/// The Hotstub file CH loads with `--firmware` (issue 21): an ELF with
/// the Xen PVH note on x86, the raw image on arm64.
pub(super) fn ch_firmware(arch: Arch) -> PathBuf {
    match arch {
        Arch::X86_64 => target_dir().join("firmware").join("hotstub-x86_64.elf"),
        Arch::Aarch64 => arch.image_path(),
    }
}

/// Runs the selected nested cases one at a time (each L1 is 3 GiB and 2
/// busy vCPUs), recording each; `disk_md5` is the test disk's (`disk`).
pub(super) fn run(
    selected: &[NestedCase],
    filter: &str,
    disk: &Path,
    disk_md5: &str,
    results: &mut Results,
) {
    for c in selected {
        if let Some(why) = c.held_back(filter) {
            results.skip(&c.name, &format!("pending: {why}"));
            continue;
        }
        let bins = match c.fw_cfg {
            None => ch_bins(c.arch),
            Some(_) => ch_fw_cfg_bins(c.arch),
        };
        let bins = match bins {
            Ok(b) => b,
            Err(why) => {
                results.skip(&c.name, &why);
                continue;
            }
        };
        let t = Instant::now();
        let log = target_dir()
            .join("test-logs")
            .join(format!("{}.log", c.name.replace('/', "-")));
        let r = run_case(c, &bins, disk, disk_md5, &log)
            .map_err(|e| {
                format!(
                    "{e} [{:.1}s, log {}]",
                    t.elapsed().as_secs_f64(),
                    log.display()
                )
            })
            .map(|n| format!("{:.1}s, {n}", t.elapsed().as_secs_f64()));
        results.record(&c.name, r);
    }
}

fn run_case(
    c: &NestedCase,
    bins: &ChBins,
    disk: &Path,
    disk_md5: &str,
    log: &Path,
) -> Result<String> {
    crate::qemu::ensure_qemu(c.arch)?;
    let guest = assets::guest(c.arch, Flavor::Lts)?;
    let l1_image = build::build(c.arch, false)?;
    let l2 = match c.boot {
        L2Boot::Direct(_) => l1::L2Payload::Direct {
            kernel: guest.kernel.image.clone(),
            initrd: guest.initrd.clone(),
            disk: None,
        },
        L2Boot::HotstubDisk(image) => {
            let fw = ch_firmware(c.arch);
            if !fw.is_file() {
                return Err(format!(
                    "no {} (the CH entry of Hotstub, issue 21)",
                    fw.display()
                ));
            }
            l1::L2Payload::Disk {
                firmware: fw,
                disk: assets::disk_image(c.arch, &guest, image)?,
            }
        }
    };
    let modules = assets::nested_modules(c.arch, Flavor::Lts, &guest.kernel)?;
    let files = l1::L1Files {
        guest: &guest,
        modules: &modules,
        bins,
        l2: &l2,
        spare_disk: disk,
        qemu_root: None,
    };
    let mut run = l1::start(c, &files, &l1_image, log)?;
    let r = steps::drive(c, &mut run, disk_md5, log);
    run.vm.kill();
    l1::cleanup(log);
    r
}
