//! `cargo xtask test`: static checks, host unit tests, the image build and
//! the QEMU boot matrix (the table of `Case`s in `matrix/`, one module per feature).
//!
//! The guest side speaks the protocol of tests/guest/init (see
//! tests/guest/README.md): marker lines starting with `HOTSTUB:` and
//! delimited dumps of the ACPI tables and the kernel log.
//!
//! - `case`: what a case is (`Case`, `Expect`, the kernel/initrd selectors);
//! - `matrix`: the cases;
//! - `runner`: shared files, one VM run per case, the worker pool, summary;
//! - `protocol`: parsing the guest's marker lines;
//! - `checks`: the standard checks on a boot's log;
//! - `scenarios`: QMP and guest-command drivers run after boot;
//! - `swtpm`: the software TPM a case may have;
//! - `libvirt`: the cases run through virsh and a private libvirtd.

mod case;
mod checks;
mod libvirt;
mod matrix;
mod nested;
mod noacpi;
mod protocol;
mod pvh;
mod runner;
mod scenarios;
mod tpm;

use crate::assets::{self, Flavor};
use crate::build::{self, Arch};
use crate::qemu::Firmware;
use crate::util::{self, root, step, target_dir, Result};
use case::{Case, KernelSel, QemuSel};
use runner::{build_psci_payload, prepare_files, run_cases, Env, Results};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

pub struct Options {
    pub filter: Option<String>,
    pub jobs: usize,
    pub firmware: Firmware,
    pub static_checks: bool,
    /// `--soak`: the soak cases with these counts instead of the matrix.
    pub soak: Option<SoakCounts>,
}

pub use matrix::soak::{Counts as SoakCounts, FULL as SOAK_FULL};
pub use nested::survey as ch_survey;

/// The static checks and host tests: (name, cargo arguments). The fuzz
/// targets' short runs (`fuzz-<target>`, `crate::fuzz::test_runs`) follow
/// them.
fn static_checks() -> Vec<(&'static str, Vec<String>)> {
    let mut s: Vec<(&str, Vec<String>)> = vec![
        ("fmt", vec!["fmt".into(), "--all".into(), "--check".into()]),
        (
            "clippy-host",
            "clippy --workspace --all-targets -- -D warnings"
                .split(' ')
                .map(String::from)
                .collect(),
        ),
    ];
    for a in Arch::ALL {
        let name = match a {
            Arch::X86_64 => "clippy-x86_64",
            Arch::Aarch64 => "clippy-aarch64",
        };
        s.push((
            name,
            format!(
                "clippy -p hotstub --target {} -- -D warnings",
                a.rust_target()
            )
            .split(' ')
            .map(String::from)
            .collect(),
        ));
    }
    // The PSCI test payload is bare-metal arm64 code too.
    if root().join("tests/psci-payload/Cargo.toml").is_file() {
        s.push((
            "clippy-psci-payload",
            format!(
                "clippy -p psci-payload --target {} -- -D warnings",
                Arch::Aarch64.rust_target()
            )
            .split(' ')
            .map(String::from)
            .collect(),
        ));
    }
    // The initramfs's virtual clock reader is built for both firmware
    // targets (a static Linux program, tests/guest/vclock).
    for a in Arch::ALL {
        s.push((
            match a {
                Arch::X86_64 => "clippy-vclock-x86_64",
                Arch::Aarch64 => "clippy-vclock-aarch64",
            },
            format!(
                "clippy -p guest-vclock --target {} -- -D warnings",
                a.rust_target()
            )
            .split(' ')
            .map(String::from)
            .collect(),
        ));
    }
    s.push(("unit-tests", vec!["test".into(), "--workspace".into()]));
    s
}

pub fn run(o: Options) -> Result<i32> {
    let t0 = Instant::now();
    let filter = o.filter.clone().unwrap_or_default();
    let cases = match o.soak {
        Some(n) => matrix::soak::cases(n, "soak", true),
        None => matrix::matrix(),
    };
    let mut selected: Vec<Case> = cases
        .into_iter()
        .filter(|c| c.selected_by(&filter))
        .collect();
    // The libvirt cases run after the matrix, against one libvirtd.
    let mut libvirt_cases: Vec<Case> = match o.soak {
        Some(_) => Vec::new(),
        None => libvirt::cases()
            .into_iter()
            .filter(|c| c.selected_by(&filter))
            .collect(),
    };
    let mut results = Results::default();

    // Host packages and tool versions: without them no VM test can work.
    let tools = crate::host::ensure_suite();
    let tools_ok = tools.is_ok();
    results.record("host-tools", tools.map(|_| crate::host::summary()));

    // Static checks and host tests (skipped when filtering for VM cases).
    if o.static_checks {
        let _ = build::ensure_rust_targets(&Arch::ALL);
        for (name, args) in static_checks() {
            if !name.contains(&filter) && o.filter.is_some() {
                continue;
            }
            let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            c.current_dir(root()).args(&args);
            let r = util::run(&mut c).map(|_| String::new());
            results.record(name, r);
        }
        // The fuzz targets, a short run each on their corpus.
        let fuzz: Vec<&str> = crate::fuzz::TARGETS
            .iter()
            .copied()
            .filter(|t| o.filter.is_none() || format!("fuzz-{t}").contains(&filter))
            .collect();
        for (name, r) in crate::fuzz::test_runs(&fuzz) {
            results.record(&name, r);
        }
    }

    if !tools_ok && !selected.is_empty() {
        step(format!(
            "skipping the {} VM tests: the host tools above are missing or too old",
            selected.len()
        ));
        selected.clear();
        libvirt_cases.clear();
    }

    // Images and guest assets for the arches the selected cases use.
    let mut arches: Vec<Arch> = Vec::new();
    for c in selected.iter().chain(&libvirt_cases) {
        if !arches.contains(&c.arch) {
            arches.push(c.arch);
        }
    }
    let mut images = BTreeMap::new();
    let mut guests = BTreeMap::new();
    for a in &arches {
        if let Err(e) = crate::qemu::ensure_qemu(*a) {
            results.record(&format!("qemu-{}", a.name()), Err(e));
        }
        if o.firmware == Firmware::Hotstub {
            let r = build::build(*a, false);
            results.record(
                &format!("build-{}", a.name()),
                r.as_ref()
                    .map(|p| format!("{} bytes", build::image_size(p).unwrap_or(0)))
                    .map_err(|e| e.clone()),
            );
            images.insert(a.name(), r);
        } else {
            step(format!(
                "NOTE: using {} instead of Hotstub for {}",
                o.firmware.label(*a),
                a.name()
            ));
            images.insert(a.name(), Ok(PathBuf::new()));
        }
        let mut flavors: Vec<Flavor> = selected
            .iter()
            .chain(&libvirt_cases)
            .filter(|c| c.arch == *a)
            .map(|c| c.flavor)
            .collect();
        flavors.sort();
        flavors.dedup();
        for f in flavors {
            let g = assets::guest(*a, f).map(Arc::new);
            results.record(
                &format!("assets-{}-{}", a.name(), f.name()),
                g.as_ref()
                    .map(|g| format!("kernel {}", g.kernel.version))
                    .map_err(|e| e.clone()),
            );
            guests.insert((a.name(), f), g);
        }
    }
    let logs = target_dir().join("test-logs");
    let files = target_dir().join("test-assets");
    let (disk, disk_md5, random_kernel) = prepare_files(&files)?;
    let psci_payload = if selected.iter().any(|c| c.kernel == KernelSel::PsciPayload) {
        build_psci_payload()
    } else {
        Err("not needed".into())
    };
    // Debian unstable's QEMU, made once and cached under target/.
    let newest = selected
        .iter()
        .any(|c| c.qemu == QemuSel::Newest)
        .then(crate::qemu::newest::ensure);
    match &newest {
        Some(Ok(n)) => results.record(
            "qemu-newest",
            Ok(format!("QEMU {} in {}", n.version, n.root.display())),
        ),
        Some(Err(e)) => results.skip("qemu-newest", e),
        None => {}
    }
    let mut boot_disks = runner::BootDisks::new();
    for c in &selected {
        let Some((image, _)) = c.boot_disk else {
            continue;
        };
        let key = (c.arch.name(), c.flavor, image);
        if boot_disks.contains_key(&key) {
            continue;
        }
        let r = match guests.get(&(c.arch.name(), c.flavor)) {
            Some(Ok(g)) => assets::disk_image(c.arch, g, image),
            _ => Err("no guest assets".into()),
        };
        boot_disks.insert(key, r);
    }
    let env = Arc::new(Env {
        firmware: o.firmware,
        logs,
        guests,
        images,
        disk,
        disk_md5,
        boot_disks,
        random_kernel,
        psci_payload,
        newest,
    });

    let case_flavor: BTreeMap<String, Flavor> = selected
        .iter()
        .chain(&libvirt_cases)
        .map(|c| (c.name.clone(), c.flavor))
        .collect();
    let case_qemu: BTreeMap<String, QemuSel> = selected
        .iter()
        .chain(&libvirt_cases)
        .map(|c| (c.name.clone(), c.qemu))
        .collect();
    let tools_ok_for_vms = tools_ok && o.firmware == Firmware::Hotstub;
    run_cases(selected, &env, o.jobs, &mut results);
    if tools_ok_for_vms {
        libvirt::run(&libvirt_cases, &env, &mut results);
    } else {
        for c in &libvirt_cases {
            results.skip(&c.name, "host tools missing, or not testing Hotstub");
        }
    }
    // `cargo xtask compare` on one NUMA + topology + IOMMU machine per arch:
    // Hotstub and the default firmware on QEMU's tables must agree.
    for (name, m) in compare_machines() {
        if !name.contains(&filter) || !tools_ok_for_vms || o.soak.is_some() {
            continue;
        }
        let r = crate::compare::compare(&m).and_then(|d| {
            if d.is_empty() {
                Ok("both firmwares agree".to_string())
            } else {
                Err(d.join("; "))
            }
        });
        results.record(name, r);
    }
    // The cloud-hypervisor cases, nested under QEMU (`nested`).
    let ch_cases: Vec<nested::NestedCase> = nested::cases()
        .into_iter()
        .filter(|c| c.selected_by(&filter))
        .collect();
    if tools_ok_for_vms {
        nested::run(&ch_cases, &filter, &env.disk, &env.disk_md5, &mut results);
    } else {
        for c in &ch_cases {
            results.skip(&c.name, "host tools missing, or not testing Hotstub");
        }
    }
    Ok(results.summary(t0, &env, &case_flavor, &case_qemu))
}

/// The machines of the compare runs: two sockets of two cores and an
/// IOMMU, and on x86 two NUMA nodes. arm has no NUMA here because EDK2,
/// loaded with -bios, hands Linux 64 MiB of flash-backed RAM at 0x04000000
/// that QEMU's SRAT does not cover, and Linux then falls back to one node
/// ("NUMA: no nodes coverage for 64MB"): the two would differ for EDK2's
/// sake, not Hotstub's (Hotstub's own NUMA test is aarch64/numa-2-nodes).
fn compare_machines() -> Vec<(&'static str, crate::compare::Machine)> {
    let mut numa = matrix::two_numa_nodes(["0-1", "2-3"], "");
    numa.extend(["-numa".into(), "dist,src=0,dst=1,val=21".into()]);
    let numa_pc = numa.clone();
    let mut x86 = numa;
    x86.extend(["-device".to_string(), "intel-iommu".to_string()]);
    vec![
        (
            "compare-x86_64",
            crate::compare::Machine {
                arch: Arch::X86_64,
                machine: None,
                smp: Some("4,sockets=2,cores=2".into()),
                extra: x86,
            },
        ),
        // pc: the same NUMA and topology; no IOMMU (intel-iommu needs
        // q35).
        (
            "compare-x86_64-pc",
            crate::compare::Machine {
                arch: Arch::X86_64,
                machine: Some("pc".into()),
                smp: Some("4,sockets=2,cores=2".into()),
                extra: numa_pc,
            },
        ),
        (
            "compare-aarch64",
            crate::compare::Machine {
                arch: Arch::Aarch64,
                machine: Some("virt,gic-version=3,iommu=smmuv3".into()),
                smp: Some("4,sockets=2,cores=2".into()),
                extra: Vec::new(),
            },
        ),
    ]
}
