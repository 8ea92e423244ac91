//! The seed corpora: what each source yields, gathered and written out
//! per target.

mod corpus;
mod disk;
mod fixtures;
mod kernels;
mod qemu;
mod synthetic;

use super::targets::{corpus_dir, fuzz_dir, TARGETS};
use crate::build::Arch;
use crate::util::{write_atomic, Result};
use corpus::Seeds;
use kernels::kernel_headers;
use qemu::{dtbs, fw_cfg_dumps_arm, fw_cfg_dumps_x86};
use synthetic::synthetic;

/// Bumped when the seed generator changes, so old corpora are re-seeded.
const SEED_VERSION: &str = "6";

/// Writes every seed; `force` regenerates them even if the corpus is
/// already seeded. Returns one summary line per target.
pub fn seed(force: bool) -> Result<Vec<String>> {
    let stamp = fuzz_dir().join("corpus/.seeded");
    if !force && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == SEED_VERSION) {
        return Ok(Vec::new());
    }
    let mut s = Seeds::default();
    synthetic(&mut s);
    fixtures::cloud_hypervisor(&mut s);
    disk::disks(&mut s);
    kernel_headers(&mut s);
    // A seed source that cannot be had is a note, not a failure: the
    // targets still run on what the others gave.
    match qemu_available(Arch::Aarch64) {
        Ok(()) => {
            if let Err(e) = dtbs(&mut s) {
                s.notes.push(format!("no DT seeds from QEMU: {e}"));
            }
            if let Err(e) = fw_cfg_dumps_arm(&mut s) {
                s.notes.push(format!("no virt fw_cfg seeds: {e}"));
            }
        }
        Err(e) => s.notes.push(format!(
            "no QEMU for aarch64 ({e}): no DT or virt fw_cfg seeds"
        )),
    }
    match qemu_available(Arch::X86_64) {
        Ok(()) => {
            if let Err(e) = fw_cfg_dumps_x86(&mut s) {
                s.notes.push(format!("no q35 fw_cfg seeds: {e}"));
            }
        }
        Err(e) => s
            .notes
            .push(format!("no QEMU for x86_64 ({e}): no q35 fw_cfg seeds")),
    }
    let mut lines = Vec::new();
    for t in TARGETS {
        let dir = corpus_dir(t);
        let mut n = 0;
        let mut sources: Vec<&str> = Vec::new();
        for (target, name, data, source) in &s.files {
            if target == t {
                write_atomic(&dir.join(name), data)?;
                n += 1;
                if !sources.contains(source) {
                    sources.push(source);
                }
            }
        }
        lines.push(format!("{t}: {n} seeds ({})", sources.join(", ")));
    }
    lines.extend(s.notes.iter().map(|n| format!("note: {n}")));
    write_atomic(&stamp, SEED_VERSION.as_bytes())?;
    Ok(lines)
}

fn qemu_available(arch: Arch) -> Result<()> {
    crate::qemu::ensure_qemu(arch)
}
