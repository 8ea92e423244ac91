//! Building the targets with the nightly toolchain and running one of
//! them under libFuzzer.

use super::targets::{corpus_dir, fuzz_dir};
use crate::util::{have, output, step, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

fn binary(target: &str) -> PathBuf {
    fuzz_dir()
        .join("target/x86_64-unknown-linux-gnu/release")
        .join(target)
}

/// `rustup run nightly <program>`, with the outer (pinned) cargo's
/// environment removed so the nightly toolchain is the one that builds.
fn nightly(program: &str) -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", program]);
    for v in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
        "CARGO",
        "CARGO_TARGET_DIR",
    ] {
        c.env_remove(v);
    }
    c.current_dir(fuzz_dir());
    c
}

/// Checks that a nightly toolchain is installed, saying how to get one.
fn ensure_nightly() -> Result<()> {
    const HOW: &str = "the fuzz build needs a nightly Rust toolchain (cargo fuzz uses \
                       nightly-only compiler flags); install it with \
                       `rustup toolchain install nightly`";
    if !have("rustup") {
        return Err(format!("rustup not found: {HOW}"));
    }
    let list = output(Command::new("rustup").args(["toolchain", "list"]))?;
    if !list.lines().any(|l| l.starts_with("nightly")) {
        return Err(format!("no nightly toolchain installed: {HOW}"));
    }
    Ok(())
}

/// Installs cargo-fuzz (`cargo install`) when it is missing.
fn ensure_cargo_fuzz() -> Result<()> {
    let present = nightly("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    step("cargo-fuzz is not installed: installing it (cargo install cargo-fuzz)");
    crate::util::run(nightly("cargo").args(["install", "--locked", "cargo-fuzz"]))
        .map_err(|e| format!("installing cargo-fuzz failed: {e}"))
}

/// Nightly, cargo-fuzz and the built targets.
pub(super) fn prepare() -> Result<()> {
    ensure_nightly()?;
    ensure_cargo_fuzz()?;
    crate::util::run(nightly("cargo").args([
        "fuzz",
        "build",
        "--release",
        "--debug-assertions",
        "--sanitizer",
        "none",
    ]))
}

/// What one libFuzzer run did.
pub struct RunStats {
    pub target: String,
    pub executions: u64,
    pub exec_per_sec: u64,
    pub corpus: usize,
    pub seconds: f64,
    /// The failure libFuzzer reported (crash, hang, out of memory), with
    /// the input it saved.
    pub failure: Option<String>,
}

impl RunStats {
    pub fn line(&self) -> String {
        format!(
            "{} executions in {:.0} s ({} exec/s), corpus {} inputs",
            self.executions, self.seconds, self.exec_per_sec, self.corpus
        )
    }
}

fn stat(log: &str, name: &str) -> Option<u64> {
    log.lines()
        .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs one (built) target on its corpus for `seconds` and/or `runs`
/// executions. The full libFuzzer log goes to target/fuzz-logs/<target>.log.
pub(super) fn run_target(
    target: &str,
    seconds: Option<u64>,
    runs: Option<u64>,
) -> Result<RunStats> {
    let corpus = corpus_dir(target);
    std::fs::create_dir_all(&corpus).ctx(format!("mkdir {}", corpus.display()))?;
    let artifacts = fuzz_dir().join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts).ctx(format!("mkdir {}", artifacts.display()))?;
    let logs = crate::util::target_dir().join("fuzz-logs");
    std::fs::create_dir_all(&logs).ctx(format!("mkdir {}", logs.display()))?;
    let log_path = logs.join(format!("{target}.log"));
    let bin = binary(target);
    if !bin.is_file() {
        return Err(format!("{} is not built", bin.display()));
    }
    let mut c = Command::new(&bin);
    c.arg(&corpus)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        // A single input running this long is a hang.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1");
    if let Some(s) = seconds {
        c.arg(format!("-max_total_time={s}"));
    }
    if let Some(r) = runs {
        c.arg(format!("-runs={r}"));
    }
    let log = std::fs::File::create(&log_path).ctx(format!("create {}", log_path.display()))?;
    c.stdout(log.try_clone().ctx("dup log")?).stderr(log);
    step(format!(
        "fuzz {target}: {} (log {})",
        crate::util::render(&c),
        log_path.display()
    ));
    let t0 = Instant::now();
    let status = c.status().ctx(format!("cannot start {}", bin.display()))?;
    let seconds = t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap_or_default()).into_owned();
    let failure = (!status.success()).then(|| failure_of(&text, status));
    let corpus_len = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
    Ok(RunStats {
        target: target.to_string(),
        executions: stat(&text, "number_of_executed_units").unwrap_or(0),
        exec_per_sec: stat(&text, "average_exec_per_sec").unwrap_or(0),
        corpus: corpus_len,
        seconds,
        failure,
    })
}

/// One line on what went wrong in a failed libFuzzer run.
fn failure_of(log: &str, status: std::process::ExitStatus) -> String {
    let find = |p: &str| log.lines().find(|l| l.contains(p)).map(str::trim);
    let kind = if let Some(l) = find("panicked at") {
        let msg = log
            .lines()
            .skip_while(|l| !l.contains("panicked at"))
            .nth(1)
            .unwrap_or("")
            .trim();
        format!("{l} {msg}")
    } else if let Some(l) = find("ERROR: libFuzzer: timeout") {
        format!("hang: {l}")
    } else if let Some(l) = find("ERROR: libFuzzer:") {
        l.to_string()
    } else {
        format!("libFuzzer exited with {status}")
    };
    match find("Test unit written to") {
        Some(a) => format!("{kind}; {a}"),
        None => kind,
    }
}
