//! `cargo xtask fuzz`: the libFuzzer targets in `fuzz/` (one per parser of
//! VMM, host and guest input in the firmware library), their seed corpora
//! and the runs.
//!
//! The fuzz build needs a nightly toolchain (`cargo fuzz` passes the
//! sanitizer-coverage flags only nightly accepts); the normal build stays
//! on the pinned stable one. Targets are built without a sanitizer: the
//! library is safe Rust (`deny(unsafe_code)`), so bounds checks, overflow
//! checks and debug assertions (all on) catch what ASan would, at a third
//! of the speed.
//!
//! Seeds are generated, never committed (`fuzz/corpus/` is ignored): the
//! device trees QEMU builds for the test matrix's `virt` machines
//! (`dumpdtb`), the fw_cfg directory, `etc/e820`, ACPI tables,
//! table-loader script and SMBIOS entry point QEMU serves on q35 and virt
//! (read by a 60-byte boot ROM, `X86_DUMP_ROM` / `ARM_DUMP_ROM` in
//! `seeds::qemu`, that copies fw_cfg items to a debug port), the setup headers of the matrix's
//! kernels (cached by `cargo xtask assets`), and small synthetic inputs.
//!
//! `targets` names the targets and their directories, `runner` builds and
//! runs them, `seeds` writes the corpora; this module is the command.

mod runner;
mod seeds;
mod targets;

use crate::util::{step, Result};
use runner::{prepare, run_target, RunStats};
use seeds::seed;
pub use targets::{TARGETS, TEST_SECONDS};

/// The short runs of `cargo xtask test`: each of `targets` for
/// [`TEST_SECONDS`], two at a time, as ("fuzz-<target>", outcome).
pub fn test_runs(targets: &[&str]) -> Vec<(String, Result<String>)> {
    let name = |t: &str| format!("fuzz-{t}");
    if targets.is_empty() {
        return Vec::new();
    }
    let ready = seed(false)
        .map(|lines| lines.iter().for_each(|l| step(format!("fuzz seeds: {l}"))))
        .and_then(|_| prepare());
    if let Err(e) = ready {
        return targets.iter().map(|t| (name(t), Err(e.clone()))).collect();
    }
    targets
        .iter()
        .zip(run_all(targets, Some(TEST_SECONDS), None, 2))
        .map(|(t, r)| {
            let r = r.and_then(|s| match &s.failure {
                None => Ok(s.line()),
                Some(f) => Err(format!("{f} (after {})", s.line())),
            });
            (name(t), r)
        })
        .collect()
}

// ---- the command -------------------------------------------------------------

pub struct Options {
    pub target: Option<String>,
    pub seconds: Option<u64>,
    pub runs: Option<u64>,
    pub seed_only: bool,
    pub jobs: usize,
}

/// Runs `targets` with up to `jobs` at once; results in target order.
pub fn run_all(
    targets: &[&str],
    seconds: Option<u64>,
    runs: Option<u64>,
    jobs: usize,
) -> Vec<Result<RunStats>> {
    let queue = std::sync::Mutex::new(targets.iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| loop {
                let next = {
                    let mut q = queue.lock().unwrap();
                    (!q.is_empty()).then(|| q.remove(0))
                };
                let Some((i, t)) = next else { break };
                let r = run_target(t, seconds, runs);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by_key(|(i, _)| *i);
    r.into_iter().map(|(_, r)| r).collect()
}

pub fn cmd(o: Options) -> Result<i32> {
    let targets: Vec<&str> = match &o.target {
        Some(t) => {
            let t = TARGETS.iter().find(|x| **x == t.as_str()).ok_or(format!(
                "unknown fuzz target `{t}` (targets: {})",
                TARGETS.join(", ")
            ))?;
            vec![*t]
        }
        None => TARGETS.to_vec(),
    };
    for l in seed(o.seed_only)? {
        step(format!("seeds: {l}"));
    }
    if o.seed_only {
        return Ok(0);
    }
    prepare()?;
    let seconds = match (o.seconds, o.runs) {
        (None, None) => Some(60),
        (s, _) => s,
    };
    let mut failed = 0;
    for r in run_all(&targets, seconds, o.runs, o.jobs) {
        match r {
            Ok(s) => match &s.failure {
                None => println!("PASS fuzz-{}: {}", s.target, s.line()),
                Some(f) => {
                    failed += 1;
                    println!("FAIL fuzz-{}: {f} (after {})", s.target, s.line());
                }
            },
            Err(e) => {
                failed += 1;
                println!("FAIL fuzz: {e}");
            }
        }
    }
    println!(
        "{} passed, {failed} failed",
        targets.len() - failed.min(targets.len())
    );
    Ok(i32::from(failed > 0))
}
