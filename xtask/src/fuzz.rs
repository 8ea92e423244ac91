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
//! (read by a 60-byte boot ROM, [`X86_DUMP_ROM`] / [`ARM_DUMP_ROM`], that
//! copies fw_cfg items to a debug port), the setup headers of the matrix's
//! kernels (cached by `cargo xtask assets`), and small synthetic inputs.

use crate::build::Arch;
use crate::util::{have, output, root, step, write_atomic, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The targets, as named in fuzz/Cargo.toml.
pub const TARGETS: &[&str] = &[
    "dt",
    "fw_cfg_dir",
    "e820",
    "bzimage",
    "arm64_image",
    "cpulist",
    "memhp_slots",
    "memhp_tables",
    "pcihp_tables",
    "vmm_tables",
    "smbios_anchor",
    "hotplug_channel",
];

/// How long `cargo xtask test` runs each target.
pub const TEST_SECONDS: u64 = 20;

/// Bumped when the seed generator changes, so old corpora are re-seeded.
const SEED_VERSION: &str = "2";

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

fn corpus_dir(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}

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
pub fn ensure_nightly() -> Result<()> {
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
pub fn prepare() -> Result<()> {
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
pub fn run_target(target: &str, seconds: Option<u64>, runs: Option<u64>) -> Result<RunStats> {
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

// ---- seeds -----------------------------------------------------------------

/// Writes every seed; `force` regenerates them even if the corpus is
/// already seeded. Returns one summary line per target.
pub fn seed(force: bool) -> Result<Vec<String>> {
    let stamp = fuzz_dir().join("corpus/.seeded");
    if !force && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == SEED_VERSION) {
        return Ok(Vec::new());
    }
    let mut s = Seeds::default();
    synthetic(&mut s);
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

#[derive(Default)]
struct Seeds {
    /// (target, file name, contents, source).
    files: Vec<(&'static str, String, Vec<u8>, &'static str)>,
    notes: Vec<String>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, name: &str, data: Vec<u8>, source: &'static str) {
        self.files.push((target, name.to_string(), data, source));
    }
}

fn qemu_available(arch: Arch) -> Result<()> {
    crate::qemu::ensure_qemu(arch)
}

fn le16(v: u16) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Small inputs for the targets whose framing or rarely-seen paths no real
/// input covers.
fn synthetic(s: &mut Seeds) {
    const SRC: &str = "synthetic";
    // CPU lists: le16 possible CPUs, then the list (the matrix's policies
    // and the documented error cases).
    for (i, (possible, list)) in [
        (4u16, "0-1"),
        (4, "0-1,3"),
        (4, "0-x"),
        (8, "0,2-3,5\n"),
        (288, "0-287"),
        (16, " 0-3,8-11\0"),
        (4, "01"),
        (4, "1-0"),
        (4, "0,0"),
        (2, "99999999999999999999999"),
    ]
    .iter()
    .enumerate()
    {
        s.add(
            "cpulist",
            &format!("synthetic-{i}"),
            cat(&[&le16(*possible), list.as_bytes()]),
            SRC,
        );
    }
    // The hotplug channel: commands, guest writes, PSCI calls and time.
    for (i, cmds) in [
        &b"status\nenable 2\n"[..],
        b"enable 2-3\ndisable 3\nhelp\n",
        b"disable 0\nfrob\n\xff\n",
    ]
    .iter()
    .enumerate()
    {
        let mut v = vec![4u8, 0, cmds.len() as u8];
        v.extend_from_slice(cmds);
        // _OST success for vCPU 2 (slot 2, OST byte 3: valid), CPU_ON 2,
        // time passes.
        v.extend_from_slice(&[1, 2 * 8 + 7, 0x80, 2, 2, 4, 10]);
        s.add("hotplug_channel", &format!("synthetic-{i}"), v, SRC);
    }
    // Memory hotplug slot probes: status byte, then one answer per slot.
    for n in [0usize, 1, 2, 16, 255, 256] {
        let mut v = vec![0u8];
        v.extend(std::iter::repeat_n(0xff, n));
        v.push(0);
        s.add("memhp_slots", &format!("synthetic-{n}-slots"), v, SRC);
    }
    s.add("memhp_slots", "synthetic-no-block", vec![0xff, 0xff], SRC);
    s.add("memhp_slots", "synthetic-garbage", vec![0, 0xff, 0x12], SRC);
    // e820: RAM below and above 4 GiB with a reserved hole.
    let e = |a: u64, l: u64, t: u32| cat(&[&a.to_le_bytes(), &l.to_le_bytes(), &t.to_le_bytes()]);
    s.add(
        "e820",
        "synthetic-high-ram",
        cat(&[
            &e(0, 0x8000_0000, 1),
            &e(0x1_0000_0000, 0x8000_0000, 1),
            &e(0xfeff_c000, 0x4000, 2),
            &e(0x7fff_0000, 0x1_0000, 3),
        ]),
        SRC,
    );
    // SMBIOS entry points: le64 table address, then the anchor.
    let mut sm3 = vec![0u8; 24];
    sm3[..5].copy_from_slice(b"_SM3_");
    sm3[6] = 24;
    sm3[7] = 3;
    s.add(
        "smbios_anchor",
        "synthetic-sm3",
        cat(&[&0xf_1000u64.to_le_bytes(), &sm3]),
        SRC,
    );
    let mut sm = vec![0u8; 31];
    sm[..4].copy_from_slice(b"_SM_");
    sm[5] = 31;
    sm[0x10..0x15].copy_from_slice(b"_DMI_");
    s.add(
        "smbios_anchor",
        "synthetic-sm21",
        cat(&[&0xf_1000u64.to_le_bytes(), &sm]),
        SRC,
    );
    // arm64 Image headers: le64 file size, le64 lowest base, the header.
    let mut img = vec![0u8; 64];
    img[16..24].copy_from_slice(&0x300_0000u64.to_le_bytes());
    img[24..32].copy_from_slice(&0xau64.to_le_bytes());
    img[56..60].copy_from_slice(b"ARM\x64");
    let sizes = cat(&[&0x200_0000u64.to_le_bytes(), &0x4010_0000u64.to_le_bytes()]);
    s.add("arm64_image", "synthetic-image", cat(&[&sizes, &img]), SRC);
    let mut gz = vec![0u8; 64];
    gz[..2].copy_from_slice(&[0x1f, 0x8b]);
    s.add("arm64_image", "synthetic-gzip", cat(&[&sizes, &gz]), SRC);
    let mut zboot = vec![0u8; 64];
    zboot[4..8].copy_from_slice(b"zimg");
    s.add(
        "arm64_image",
        "synthetic-zboot",
        cat(&[&sizes, &zboot]),
        SRC,
    );
    // A 6.12-like bzImage setup header: le64 floor, le64 kernel size, setup.
    let mut setup = vec![0u8; 0x1000];
    setup[0x1f1] = 7;
    setup[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    setup[0x200..0x202].copy_from_slice(&[0xeb, 0x6a]);
    setup[0x202..0x206].copy_from_slice(b"HdrS");
    setup[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    setup[0x211] = 1;
    setup[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    setup[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    setup[0x234] = 1;
    setup[0x236..0x238].copy_from_slice(&3u16.to_le_bytes());
    setup[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    setup[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
    setup[0x260..0x264].copy_from_slice(&0x300_0000u32.to_le_bytes());
    let bz_sizes = cat(&[&0x40_0000u64.to_le_bytes(), &0x100_0000u64.to_le_bytes()]);
    s.add("bzimage", "synthetic-setup", cat(&[&bz_sizes, &setup]), SRC);
    // fw_cfg directory of two files.
    let mut dir = 2u32.to_be_bytes().to_vec();
    for (name, key, size) in [
        ("etc/e820", 0x20u16, 40u32),
        ("opt/org.hotstub/enabled-cpus", 0x21, 3),
    ] {
        let mut ent = [0u8; 64];
        ent[..4].copy_from_slice(&size.to_be_bytes());
        ent[4..6].copy_from_slice(&key.to_be_bytes());
        ent[8..8 + name.len()].copy_from_slice(name.as_bytes());
        dir.extend_from_slice(&ent);
    }
    s.add("fw_cfg_dir", "synthetic-two-files", dir, SRC);
}

/// The matrix's kernels: those cached under target/assets/<arch>/kernel-*/,
/// fetched first (as `cargo xtask assets` does) when none are.
fn kernel_headers(s: &mut Seeds) {
    if !kernel_headers_cached(s) {
        for arch in Arch::ALL {
            for f in crate::assets::Flavor::ALL {
                if let Err(e) = crate::assets::kernel(arch, f) {
                    s.notes
                        .push(format!("no {} {} kernel: {e}", arch.name(), f.name()));
                }
            }
        }
        if !kernel_headers_cached(s) {
            s.notes.push(
                "no kernels under target/assets (`cargo xtask assets` fetches them): \
                 kernel header seeds are synthetic only"
                    .into(),
            );
        }
    }
}

fn kernel_headers_cached(s: &mut Seeds) -> bool {
    const SRC: &str = "matrix kernels";
    let mut found = 0;
    for arch in ["x86_64", "aarch64"] {
        let dir = crate::util::target_dir().join("assets").join(arch);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kernel-") && !n.starts_with("kernel-current"))
                    && p.is_dir()
            })
            .collect();
        dirs.sort();
        for d in dirs {
            let version = d
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace("kernel-", "");
            for (file, x86) in [("bzImage", true), ("Image", false)] {
                let path = d.join(file);
                let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
                    continue;
                };
                let Ok(head) = crate::util::read_head(&path, 0x10000) else {
                    continue;
                };
                found += 1;
                if x86 {
                    // The setup part: (setup_sects + 1) * 512 bytes, 0 meaning 4.
                    let sects = match head.get(0x1f1).copied().unwrap_or(0) {
                        0 => 4,
                        n => usize::from(n),
                    };
                    let setup = &head[..((sects + 1) * 512).min(head.len())];
                    let sizes = cat(&[
                        &0x40_0000u64.to_le_bytes(),
                        &(len - setup.len() as u64).to_le_bytes(),
                    ]);
                    s.add(
                        "bzimage",
                        &format!("linux-{version}"),
                        cat(&[&sizes, setup]),
                        SRC,
                    );
                }
                let sizes = cat(&[&len.to_le_bytes(), &0x4010_0000u64.to_le_bytes()]);
                let n = head.len().min(4096);
                s.add(
                    "arm64_image",
                    &format!("linux-{version}-{file}"),
                    cat(&[&sizes, &head[..n]]),
                    SRC,
                );
            }
        }
    }
    found > 0
}

/// The `virt` machines of the test matrix (and a few of its variants):
/// name, machine options, -smp, -m.
const DT_MACHINES: &[(&str, &str, &str, &str)] = &[
    ("gicv3-smp1-512M", "gic-version=3", "1", "512M"),
    ("gicv3-smp4-5G", "gic-version=3", "4", "5G"),
    ("gicv3-smp8-2G", "gic-version=3", "8", "2G"),
    ("gicv2-smp1-2G", "gic-version=2", "1", "2G"),
    ("gicv2-smp4-512M", "gic-version=2", "4", "512M"),
    (
        "gicv2-el2-smp8-512M",
        "gic-version=2,virtualization=on",
        "8",
        "512M",
    ),
    ("el2-smp4-2G", "gic-version=3,virtualization=on", "4", "2G"),
    ("el2-smp8-5G", "gic-version=3,virtualization=on", "8", "5G"),
    (
        "el3-smp4-512M",
        "gic-version=3,secure=on,virtualization=on",
        "4",
        "512M",
    ),
    ("secure-smp1-2G", "gic-version=3,secure=on", "1", "2G"),
    (
        "gicv3-smp4-slots",
        "gic-version=3",
        "4",
        "1G,slots=2,maxmem=4G",
    ),
    ("smmuv3-smp2-1G", "gic-version=3,iommu=smmuv3", "2", "1G"),
    (
        "topology-2s2c2t",
        "gic-version=3",
        "8,sockets=2,cores=2,threads=2",
        "1G",
    ),
];

fn scratch() -> Result<PathBuf> {
    let d = crate::util::target_dir().join("fuzz-seeds");
    std::fs::create_dir_all(&d).ctx(format!("mkdir {}", d.display()))?;
    Ok(d)
}

fn qemu_base(program: &str) -> Command {
    let mut c = Command::new(program);
    c.args(["-display", "none", "-nodefaults", "-accel", "tcg"]);
    c.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    c
}

/// Runs QEMU to its exit, failing after `limit`.
fn run_qemu(mut c: Command, limit: Duration) -> Result<()> {
    let mut child = c.spawn().ctx("cannot start QEMU")?;
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().ctx("wait for QEMU")? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            // The dump ROMs exit through isa-debug-exit (status 1) or
            // semihosting (0).
            return match st.code() {
                Some(0 | 1) => Ok(()),
                _ => Err(format!("QEMU exited with {st}: {}", err.trim())),
            };
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("QEMU did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A DT cut to its blocks: QEMU pads its blob to 1 MiB.
fn pack_dtb(mut b: Vec<u8>) -> Option<Vec<u8>> {
    let word = |b: &[u8], i: usize| {
        b.get(4 * i..4 * i + 4)
            .map(|w| u32::from_be_bytes(w.try_into().unwrap()) as usize)
    };
    if word(&b, 0)? != 0xd00d_feed {
        return None;
    }
    // Blocks: memory reservations (up to the terminating zero entry),
    // structure, strings.
    let (rsv, st, st_len, str_off, str_len) = (
        word(&b, 4)?,
        word(&b, 2)?,
        word(&b, 9)?,
        word(&b, 3)?,
        word(&b, 8)?,
    );
    let mut rsv_end = rsv;
    while b.get(rsv_end..rsv_end + 16)?.iter().any(|&x| x != 0) {
        rsv_end += 16;
    }
    let end = (rsv_end + 16).max(st + st_len).max(str_off + str_len);
    b.truncate(end);
    b[4..8].copy_from_slice(&(end as u32).to_be_bytes());
    Some(b)
}

fn dtbs(s: &mut Seeds) -> Result<()> {
    let dir = scratch()?;
    for (name, opts, smp, mem) in DT_MACHINES {
        let path = dir.join(format!("{name}.dtb"));
        let _ = std::fs::remove_file(&path);
        let mut c = qemu_base("qemu-system-aarch64");
        c.arg("-M")
            .arg(format!("virt,{opts},dumpdtb={}", path.display()))
            .args(["-cpu", "max", "-smp", smp, "-m", mem, "-bios", "/dev/null"]);
        run_qemu(c, Duration::from_secs(60)).map_err(|e| format!("dumpdtb for {name}: {e}"))?;
        let blob = std::fs::read(&path).ctx(format!("read {}", path.display()))?;
        let packed = pack_dtb(blob).ok_or(format!("QEMU's DT for {name} has no FDT header"))?;
        s.add("dt", &format!("qemu-{name}.dtb"), packed, "QEMU dumpdtb");
    }
    Ok(())
}

/// A 16-bit x86 boot ROM (64 KiB, at 0xf0000 in real mode) that copies
/// fw_cfg items to the isa-debugcon port 0x402 and exits through
/// isa-debug-exit (port 0xf4). At 0x100 it reads a table of (le16 key,
/// le32 length) entries ended by key 0xffff; the reset vector jumps to 0.
///
/// ```text
///   cli; mov ax,0xf000; mov ds,ax; cld; mov si,0x100
/// next:  lodsw; cmp ax,0xffff; je done; mov dx,0x510; out dx,ax
///        lodsw; mov cx,ax; lodsw; mov bx,ax
/// inner: mov ax,bx; or ax,cx; jz next
///        mov dx,0x511; in al,dx; mov dx,0x402; out dx,al
///        sub cx,1; sbb bx,0; jmp inner
/// done:  mov al,0; out 0xf4,al; hlt; jmp $-1
/// ```
const X86_DUMP_ROM: &[u8] = &[
    0xfa, 0xb8, 0x00, 0xf0, 0x8e, 0xd8, 0xfc, 0xbe, 0x00, 0x01, 0xad, 0x83, 0xf8, 0xff, 0x74, 0x20,
    0xba, 0x10, 0x05, 0xef, 0xad, 0x89, 0xc1, 0xad, 0x89, 0xc3, 0x89, 0xd8, 0x09, 0xc8, 0x74, 0xea,
    0xba, 0x11, 0x05, 0xec, 0xba, 0x02, 0x04, 0xee, 0x83, 0xe9, 0x01, 0x83, 0xdb, 0x00, 0xeb, 0xea,
    0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd,
];

fn x86_rom(items: &[(u16, u32)]) -> Vec<u8> {
    let mut rom = vec![0u8; 0x10000];
    rom[..X86_DUMP_ROM.len()].copy_from_slice(X86_DUMP_ROM);
    let mut t = 0x100;
    for &(key, len) in items.iter().chain(&[(0xffff, 0)]) {
        rom[t..t + 2].copy_from_slice(&key.to_le_bytes());
        rom[t + 2..t + 6].copy_from_slice(&len.to_le_bytes());
        t += 6;
    }
    // Reset vector: jmp far 0xf000:0000.
    rom[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    rom
}

/// An aarch64 flash image for `virt` that copies fw_cfg items (MMIO at
/// 0x0902_0000) to the PL011 at 0x0900_0000 and exits through
/// semihosting SYS_EXIT. At 0x70 it reads (le32 key, le32 length)
/// entries ended by key 0xffff.
///
/// ```text
///   mov x0,#0x09020000; mov x1,#0x09000000; mov w7,#0x301; str w7,[x1,#0x30]
///   adr x2,table
/// next:  ldr w3,[x2]; ldr w5,[x2,#4]; add x2,x2,#8; mov w9,#0xffff; cmp w3,w9
///        b.eq done; rev16 w4,w3; strh w4,[x0,#8]
/// inner: cbz w5,next; ldrb w6,[x0]; strb w6,[x1]; sub w5,w5,#1; b inner
/// done:  mov x0,#0x18; adr x1,exitblock; hlt #0xf000; 1: wfi; b 1b
/// exitblock: .quad 0x20026, 0
/// ```
const ARM_DUMP_ROM: &[u32] = &[
    0xd2a12040, 0xd2a12001, 0x52806027, 0xb9003027, 0x10000302, 0xb9400043, 0xb9400445, 0x91002042,
    0x529fffe9, 0x6b09007f, 0x54000100, 0x5ac00464, 0x79001004, 0x34ffff05, 0x39400006, 0x39000026,
    0x510004a5, 0x17fffffc, 0xd2800300, 0x100000a1, 0xd45e0000, 0xd503207f, 0x17ffffff, 0xd503201f,
    0x00020026, 0x00000000, 0x00000000, 0x00000000,
];

fn arm_rom(items: &[(u16, u32)]) -> Vec<u8> {
    let mut rom: Vec<u8> = ARM_DUMP_ROM.iter().flat_map(|w| w.to_le_bytes()).collect();
    for &(key, len) in items.iter().chain(&[(0xffff, 0)]) {
        rom.extend_from_slice(&u32::from(key).to_le_bytes());
        rom.extend_from_slice(&len.to_le_bytes());
    }
    rom.resize(0x10000, 0);
    rom
}

/// Key FILE_DIR (QEMU docs/specs/fw_cfg.rst) and the bytes read of it.
const FILE_DIR: u16 = 0x19;
const DIR_READ: u32 = 4 + 64 * 1024;

/// Reads fw_cfg `items` from a VM running the dump ROM. `arm`: virt, else
/// q35; `args`: the machine's options.
fn dump_items(arm: bool, args: &[&str], items: &[(u16, u32)], tag: &str) -> Result<Vec<u8>> {
    let dir = scratch()?;
    let rom_path = dir.join(format!("{tag}.rom"));
    let out = dir.join(format!("{tag}.out"));
    let _ = std::fs::remove_file(&out);
    let rom = if arm { arm_rom(items) } else { x86_rom(items) };
    std::fs::write(&rom_path, rom).ctx(format!("write {}", rom_path.display()))?;
    let mut c;
    if arm {
        c = qemu_base("qemu-system-aarch64");
        c.args([
            "-cpu",
            "max",
            "-semihosting-config",
            "enable=on,target=native",
        ])
        .arg("-chardev")
        .arg(format!("file,id=out,path={}", out.display()))
        .args(["-serial", "chardev:out"]);
    } else {
        c = qemu_base("qemu-system-x86_64");
        c.args(["-cpu", "max"])
            .arg("-chardev")
            .arg(format!("file,id=out,path={}", out.display()))
            .args(["-device", "isa-debugcon,iobase=0x402,chardev=out"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    }
    c.arg("-bios").arg(&rom_path).args(args);
    run_qemu(c, Duration::from_secs(120)).map_err(|e| format!("fw_cfg dump {tag}: {e}"))?;
    let data = std::fs::read(&out).ctx(format!("read {}", out.display()))?;
    let want: usize = items.iter().map(|i| i.1 as usize).sum();
    if data.len() != want {
        return Err(format!(
            "fw_cfg dump {tag}: got {} bytes, expected {want}",
            data.len()
        ));
    }
    Ok(data)
}

/// The files QEMU serves that the targets read, by fw_cfg name.
struct FwCfgDump {
    dir: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
}

impl FwCfgDump {
    fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.0 == name)
            .map(|f| f.1.as_slice())
    }
}

const WANTED_FILES: &[&str] = &[
    "etc/e820",
    "etc/acpi/tables",
    "etc/table-loader",
    "etc/acpi/rsdp",
    "etc/smbios/smbios-anchor",
];

/// Two runs of the dump ROM: the directory, then the files named in it.
fn dump_fw_cfg(arm: bool, args: &[&str], tag: &str) -> Result<FwCfgDump> {
    let raw = dump_items(arm, args, &[(FILE_DIR, DIR_READ)], &format!("{tag}-dir"))?;
    let count = u32::from_be_bytes(raw[..4].try_into().unwrap()) as usize;
    let dir = raw[..(4 + 64 * count).min(raw.len())].to_vec();
    let mut want: Vec<(String, u16, u32)> = Vec::new();
    for e in dir[4..].chunks_exact(64) {
        let name_end = e[8..].iter().position(|&b| b == 0).unwrap_or(56);
        let name = String::from_utf8_lossy(&e[8..8 + name_end]).into_owned();
        if WANTED_FILES.contains(&name.as_str()) {
            let size = u32::from_be_bytes(e[..4].try_into().unwrap());
            let key = u16::from_be_bytes([e[4], e[5]]);
            want.push((name, key, size));
        }
    }
    let items: Vec<(u16, u32)> = want.iter().map(|w| (w.1, w.2)).collect();
    let data = dump_items(arm, args, &items, &format!("{tag}-files"))?;
    let mut files = Vec::new();
    let mut at = 0;
    for (name, _, size) in want {
        files.push((name, data[at..at + size as usize].to_vec()));
        at += size as usize;
    }
    Ok(FwCfgDump { dir, files })
}

/// Adds the seeds one machine's fw_cfg yields. `virt`: the table list of
/// `acpi::vmm::VIRT` (framing byte 1), else q35's.
fn add_fw_cfg_seeds(s: &mut Seeds, d: &FwCfgDump, name: &str, virt: bool) {
    const SRC: &str = "QEMU fw_cfg";
    s.add("fw_cfg_dir", &format!("qemu-{name}"), d.dir.clone(), SRC);
    if let Some(e) = d.file("etc/e820") {
        s.add("e820", &format!("qemu-{name}"), e.to_vec(), SRC);
    }
    if let Some(t) = d.file("etc/acpi/tables") {
        // QEMU pads the blob with zeros to 128 KiB steps; the tables end
        // where the padding starts (kept 4-byte aligned).
        let end = t.iter().rposition(|&b| b != 0).map_or(0, |i| (i + 4) & !3);
        let t = &t[..end.min(t.len())];
        s.add("memhp_tables", &format!("qemu-{name}"), t.to_vec(), SRC);
        if !virt {
            s.add("pcihp_tables", &format!("qemu-{name}"), t.to_vec(), SRC);
        }
        if let Some(l) = d.file("etc/table-loader") {
            // Framing: loader entry count, list selector, loader, tables.
            let n = (l.len() / 128).min(255);
            let v = cat(&[&[n as u8, u8::from(virt)], &l[..n * 128], t]);
            s.add("vmm_tables", &format!("qemu-{name}"), v, SRC);
        }
    }
    if let Some(a) = d.file("etc/smbios/smbios-anchor") {
        let v = cat(&[&0xf_1000u64.to_le_bytes(), a]);
        s.add("smbios_anchor", &format!("qemu-{name}"), v, SRC);
    }
}

/// q35 machines of the matrix: plain, CPU hotplug, DIMM slots, NUMA, the
/// IOMMUs, and PCIe root ports under ACPI PCI hotplug.
const Q35_MACHINES: &[(&str, &str)] = &[
    ("q35-smp2-512M", "-M q35 -smp 2 -m 512M"),
    ("q35-smp4-4G", "-M q35 -smp 4 -m 4G"),
    ("q35-maxcpus12", "-M q35 -smp 1,maxcpus=12 -m 512M"),
    ("q35-dimm-slots", "-M q35 -smp 2 -m 1G,slots=2,maxmem=4G"),
    (
        "q35-numa",
        "-M q35 -smp 2,sockets=2 -m 1G \
         -object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=512M \
         -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 \
         -numa dist,src=0,dst=1,val=21",
    ),
    (
        "q35-intel-iommu",
        "-M q35,kernel-irqchip=split -smp 2 -m 1G -device intel-iommu,intremap=on",
    ),
    (
        "q35-virtio-iommu",
        "-M q35 -smp 2 -m 1G -device virtio-iommu-pci",
    ),
    (
        "q35-root-ports",
        "-M q35 -smp 2 -m 1G -device pcie-root-port,id=rp0,chassis=1,slot=1 \
         -device pcie-root-port,id=rp1,chassis=2,slot=2,addr=0x3.0x1 \
         -device pcie-pci-bridge,id=br0,bus=rp1",
    ),
];

/// virt machines whose tables the firmware reads: DIMM slots (memory
/// hotplug), NUMA, the PPTT topology, the IORT of the SMMUv3.
const VIRT_MACHINES: &[(&str, &str)] = &[
    ("virt-gicv3-smp2", "-M virt,gic-version=3 -smp 2 -m 512M"),
    (
        "virt-dimm-slots",
        "-M virt,gic-version=3 -smp 2 -m 1G,slots=2,maxmem=4G",
    ),
    (
        "virt-topology",
        "-M virt,gic-version=3 -smp 8,sockets=2,cores=2,threads=2 -m 1G",
    ),
    (
        "virt-smmuv3",
        "-M virt,gic-version=3,iommu=smmuv3 -smp 2 -m 1G",
    ),
    (
        "virt-numa",
        "-M virt,gic-version=3 -smp 2,sockets=2 -m 1G \
         -object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=512M \
         -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1",
    ),
];

fn fw_cfg_dumps_x86(s: &mut Seeds) -> Result<()> {
    for (name, args) in Q35_MACHINES {
        let args: Vec<&str> = args.split_whitespace().collect();
        let d = dump_fw_cfg(false, &args, name)?;
        add_fw_cfg_seeds(s, &d, name, false);
    }
    Ok(())
}

fn fw_cfg_dumps_arm(s: &mut Seeds) -> Result<()> {
    for (name, args) in VIRT_MACHINES {
        let args: Vec<&str> = args.split_whitespace().collect();
        let d = dump_fw_cfg(true, &args, name)?;
        add_fw_cfg_seeds(s, &d, name, true);
    }
    Ok(())
}

// ---- cargo xtask test ----------------------------------------------------------

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
