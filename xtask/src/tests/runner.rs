//! Running the matrix: the files all cases share (`Env`), one VM run of a
//! case against its expectation, the parallel worker pool and the summary.

use super::case::{mib, Case, Expect, InitrdSel, KernelSel, QemuSel};
use super::checks::{bad_dmesg_lines, check_boot};
use super::protocol::{psci_summary, split_boots};
use super::tpm::Swtpm;
use crate::assets::{self, DiskImage, Flavor, Guest};
use crate::build::{self, Arch};
use crate::control::Control;
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{self, md5_file, root, step, target_dir, Context, Result};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Files shared by all cases, prepared once.
pub(super) type BootDisks =
    BTreeMap<(&'static str, Flavor, DiskImage), std::result::Result<PathBuf, String>>;

pub(super) struct Env {
    pub(super) firmware: Firmware,
    pub(super) logs: PathBuf,
    /// Per arch: guest assets, or why they are unavailable.
    pub(super) guests: BTreeMap<(&'static str, Flavor), std::result::Result<Arc<Guest>, String>>,
    /// Per arch: firmware image, or why it is unavailable.
    pub(super) images: BTreeMap<&'static str, std::result::Result<PathBuf, String>>,
    pub(super) disk: PathBuf,
    pub(super) disk_md5: String,
    /// The boot disks the selected cases use, or why one is unavailable.
    pub(super) boot_disks: BootDisks,
    pub(super) random_kernel: PathBuf,
    pub(super) psci_payload: std::result::Result<PathBuf, String>,
    /// Debian unstable's QEMU when a selected case needs it, or why it is
    /// unavailable (those cases are then skipped).
    pub(super) newest: Option<std::result::Result<crate::qemu::newest::Newest, String>>,
}

/// On the command line exactly when it came through
/// `opt/org.hotstub/cmdline`.
pub(super) const FWCFG_CMDLINE_MARK: &str = "hotstub.fwcfg_cmdline=1";

/// Test disk: 4 MiB with known content; the guest prints its md5.
const DISK_SIZE: usize = 4 << 20;
/// The drive id of the test disk when a case has it as a spare
/// (`Case::spare_disk`).
pub(super) const SPARE_DRIVE: &str = "hp0";

pub(super) fn prepare_files(dir: &Path) -> Result<(PathBuf, String, PathBuf)> {
    std::fs::create_dir_all(dir).ctx("mkdir test assets")?;
    let disk = dir.join("disk.raw");
    // Seeded from the clock: each run reads different content, so a stale
    // or cached result cannot pass.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    std::fs::write(&disk, util::pseudo_random(DISK_SIZE, seed)).ctx("write disk image")?;
    let md5 = md5_file(&disk)?;
    let rk = dir.join("random-kernel.bin");
    std::fs::write(&rk, util::pseudo_random(2 << 20, seed ^ 0x5eed)).ctx("write random kernel")?;
    Ok((disk, md5, rk))
}

fn huge_initrd(dir: &Path, mib: u64) -> Result<PathBuf> {
    let p = dir.join(format!("huge-initrd-{mib}M.img"));
    let f = std::fs::File::create(&p).ctx("create sparse initrd")?;
    f.set_len(mib << 20).ctx("size sparse initrd")?;
    Ok(p)
}

/// Builds the arm64 PSCI test payload (the PSCI and vCPU policy checks): the
/// workspace crate `psci-payload` in tests/psci-payload, a bare-metal
/// program with a Linux Image header, linked at 0. Its PT_LOAD segments laid
/// out from the lowest address form the Image. It prints `PSCI-TEST:
/// <check>: PASS|FAIL|SKIP (...)` lines, `PSCI-TEST: error: ...` on anything
/// unexpected, then `PSCI-TEST: summary: N passed, M failed, K skipped`,
/// then calls SYSTEM_OFF.
pub(super) fn build_psci_payload() -> Result<PathBuf> {
    let manifest = root().join("tests").join("psci-payload").join("Cargo.toml");
    if !manifest.is_file() {
        return Err(format!(
            "PSCI test payload not written yet ({} missing)",
            manifest.display()
        ));
    }
    let target = Arch::Aarch64.rust_target();
    build::ensure_rust_targets(&[Arch::Aarch64])?;
    util::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root())
            .args([
                "build",
                "--release",
                "--target",
                target,
                "--bin",
                "psci-payload",
            ])
            .arg("--manifest-path")
            .arg(&manifest),
    )?;
    let elf = target_dir()
        .join(target)
        .join("release")
        .join("psci-payload");
    let img = build::flatten_low(&std::fs::read(&elf).ctx(format!("read {}", elf.display()))?)?;
    // arm64 Image magic at 56 (Documentation/arch/arm64/booting.rst).
    if img.get(56..60) != Some(b"ARM\x64") {
        return Err(format!(
            "{} does not start with an arm64 Image header",
            elf.display()
        ));
    }
    let out = target_dir().join("firmware").join("psci-payload.Image");
    util::write_atomic(&out, &img)?;
    Ok(out)
}

/// A step's outcome: Ok with a note for its PASS line, or why it failed.
pub(super) type Outcome = std::result::Result<String, String>;

/// Every step's outcome, in the order recorded, and the steps skipped with
/// the reason; each is printed as it comes.
#[derive(Default)]
pub(super) struct Results(Vec<(String, Outcome)>, Vec<(String, String)>);

impl Results {
    /// A step that could not run for a reason outside the project (no
    /// network for the newest QEMU): neither passed nor failed.
    pub(super) fn skip(&mut self, name: &str, why: &str) {
        println!("SKIP {name}: {why}");
        self.1.push((name.to_string(), why.to_string()));
    }

    pub(super) fn record(&mut self, name: &str, r: Outcome) {
        match &r {
            Ok(note) => println!(
                "PASS {name}{}",
                if note.is_empty() {
                    String::new()
                } else {
                    format!(" ({note})")
                }
            ),
            Err(e) => println!("FAIL {name}: {e}"),
        }
        self.0.push((name.to_string(), r));
    }

    /// Prints the failures and the totals, overall and per guest kernel
    /// (`case_flavor`: the kernel of each VM case); returns the exit code.
    pub(super) fn summary(
        &self,
        t0: Instant,
        env: &Env,
        case_flavor: &BTreeMap<String, Flavor>,
        case_qemu: &BTreeMap<String, QemuSel>,
    ) -> i32 {
        let results = &self.0;
        let mut kernel_versions: BTreeMap<Flavor, String> = BTreeMap::new();
        for ((_, f), g) in &env.guests {
            let v = g.as_ref().map(|g| g.kernel.version.clone());
            let e = kernel_versions.entry(*f).or_insert_with(|| match f {
                Flavor::Lts => "6.12 (bookworm-backports)".into(),
                Flavor::Newest => "newest (Debian unstable)".into(),
            });
            if let Ok(v) = v {
                e.push_str(&format!(" {v}"));
            }
        }
        let passed = results.iter().filter(|(_, r)| r.is_ok()).count();
        let failed = results.len() - passed;
        if failed > 0 {
            println!("\nfailures:");
            for (n, r) in results {
                if let Err(e) = r {
                    println!("  {n}: {}", e.lines().next().unwrap_or(""));
                }
            }
        }
        println!("\n(total {:.0}s)", t0.elapsed().as_secs_f64());
        // Per guest kernel: the Linux VM runs of each (firmware-error and
        // payload cases boot no Linux and count under the default kernel).
        for (f, ver) in &kernel_versions {
            let mine: Vec<&(String, Outcome)> = results
                .iter()
                .filter(|(n, _)| case_flavor.get(n) == Some(f))
                .collect();
            let ok = mine.iter().filter(|(_, r)| r.is_ok()).count();
            println!("kernel {ver}: {ok} passed, {} failed", mine.len() - ok);
        }
        // Per QEMU, with the version each ran.
        let mut qemus: Vec<QemuSel> = case_qemu.values().copied().collect();
        qemus.sort();
        qemus.dedup();
        for q in qemus {
            let label = match (q, &env.newest) {
                (QemuSel::Host, _) => format!("{} (host)", crate::host::qemu_versions()),
                (QemuSel::Newest, Some(Ok(n))) => {
                    format!("{} (Debian unstable, root {})", n.version, n.root.display())
                }
                (QemuSel::Newest, _) => "newest (Debian unstable, not available)".into(),
            };
            let mine: Vec<&(String, Outcome)> = results
                .iter()
                .filter(|(n, _)| case_qemu.get(n) == Some(&q))
                .collect();
            let ok = mine.iter().filter(|(_, r)| r.is_ok()).count();
            let skipped = self
                .1
                .iter()
                .filter(|(n, _)| case_qemu.get(n) == Some(&q))
                .count();
            println!(
                "QEMU {label}: {ok} passed, {} failed{}",
                mine.len() - ok,
                if skipped > 0 {
                    format!(", {skipped} skipped")
                } else {
                    String::new()
                }
            );
        }
        let skipped = self.1.len();
        if skipped > 0 {
            println!("{passed} passed, {failed} failed, {skipped} skipped");
        } else {
            println!("{passed} passed, {failed} failed");
        }
        if failed == 0 {
            0
        } else {
            1
        }
    }
}

/// Runs the VM cases, `jobs` at a time, recording each as it ends.
/// Failures of TCG that no guest or firmware input explains: a case
/// that dies of one runs again (`Case::crash_retries` times, once unless
/// the case says otherwise), and its result counts the crashes.
/// `iotlb_to_section`: QEMU 10.0's TCG aborts in system/physmem.c when a
/// vCPU still uses a TLB entry of a PCI BAR that a hot-unplug has just
/// removed; seen in about one of 15 runs of the ACPI PCI hotplug cases.
/// The other two are Linux's boot-time check that the timer interrupt
/// arrives through the IO-APIC (arch/x86/kernel/apic/io_apic.c
/// `check_timer`), which panics when a loaded host lets TCG's timer ticks
/// come late: seen once in a full run on 2 cores (`intel-iommu`), and the
/// same boot passed on its own. A firmware fault there (a wrong IRQ0
/// override, say) fails every run, the retry too.
const QEMU_CRASHES: &[&str] = &[
    "iotlb_to_section: Assertion",
    "timer doesn't work through Interrupt-remapped IO-APIC",
    "IO-APIC + timer doesn't work!",
];

/// The QEMU crash in a case's serial log (QEMU's stderr is copied there).
fn qemu_crash(log: &Path) -> Option<&'static str> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    QEMU_CRASHES.iter().copied().find(|c| text.contains(c))
}

pub(super) fn run_cases(cases: Vec<Case>, env: &Arc<Env>, jobs: usize, results: &mut Results) {
    // Cases on a QEMU that could not be fetched are skipped, with the
    // reason, never run against another QEMU.
    let (cases, skipped): (Vec<Case>, Vec<Case>) = cases
        .into_iter()
        .partition(|c| c.qemu == QemuSel::Host || matches!(env.newest, Some(Ok(_))));
    for c in skipped {
        let why = match &env.newest {
            Some(Err(e)) => e.lines().next().unwrap_or("").to_string(),
            _ => "Debian unstable's QEMU was not prepared".into(),
        };
        results.skip(&c.name, &format!("no Debian unstable QEMU: {why}"));
    }
    step(format!(
        "running {} VM tests, {} at a time; serial logs in {}",
        cases.len(),
        jobs.max(1),
        env.logs.display()
    ));
    let queue = Arc::new(Mutex::new(cases.into_iter().collect::<VecDeque<Case>>()));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut workers = Vec::new();
    for _ in 0..jobs.max(1) {
        let q = queue.clone();
        let env = env.clone();
        let tx = tx.clone();
        workers.push(std::thread::spawn(move || loop {
            let Some(c) = q.lock().unwrap().pop_front() else {
                break;
            };
            let t = Instant::now();
            let log = env.logs.join(format!("{}.log", c.name.replace('/', "-")));
            let mut r = run_case(&c, &env);
            let mut crashes: Vec<String> = Vec::new();
            let mut runs = 1;
            while let (Err(e), Some(crash)) = (&r, qemu_crash(&log)) {
                let e = e.lines().next().unwrap_or("");
                crashes.push(format!("{crash} ({e})"));
                if crashes.len() > c.crash_retries as usize {
                    break;
                }
                let kept = log.with_extension(format!("qemu-crash-{runs}.log"));
                let _ = std::fs::rename(&log, &kept);
                step(format!(
                    "{}: known TCG failure ({crash}: {e}); running it once more (log of run {runs}: {})",
                    c.name,
                    kept.display()
                ));
                runs += 1;
                r = run_case(&c, &env);
            }
            let again = match crashes.len() {
                0 => String::new(),
                n => format!(
                    ", known TCG failure in {n} of {runs} runs: {}",
                    crashes.join("; ")
                ),
            };
            let secs = t.elapsed().as_secs_f64();
            let r = match r {
                Ok(n) => Ok(if n.is_empty() {
                    format!("{secs:.1}s{again}")
                } else {
                    format!("{secs:.1}s, {n}{again}")
                }),
                Err(e) => Err(format!("{e} [{secs:.1}s{again}, log {}]", log.display())),
            };
            let _ = tx.send((c.name.clone(), r));
        }));
    }
    drop(tx);
    for (name, r) in rx {
        results.record(&name, r);
    }
    for w in workers {
        let _ = w.join();
    }
}

pub(super) fn log_path(env: &Env, c: &Case) -> PathBuf {
    env.logs.join(format!("{}.log", c.name.replace('/', "-")))
}

pub(super) fn vm_config(c: &Case, env: &Env) -> Result<VmConfig> {
    let mut firmware = c.firmware_of(env.firmware);
    if c.arch == Arch::X86_64 && firmware == Firmware::Edk2 {
        firmware = Firmware::QemuDefault;
    }
    if c.arch == Arch::Aarch64 && firmware == Firmware::Qboot {
        firmware = Firmware::QemuDefault;
    }
    if firmware == Firmware::Hotstub {
        env.images[c.arch.name()].as_ref().map_err(|e| {
            format!(
                "no firmware image for {}: {}",
                c.arch.name(),
                e.lines().next().unwrap_or("")
            )
        })?;
    }
    let guest = env.guests[&(c.arch.name(), c.flavor)]
        .as_ref()
        .map_err(|e| format!("no guest assets: {e}"))?;
    let mut cfg = VmConfig::new(c.arch, firmware);
    cfg.machine = c.machine.clone();
    cfg.accel = c.accel.into();
    cfg.smp = c.smp.clone();
    cfg.memory = format!("{}{}", mib(c.mem_mib), c.mem_opts);
    cfg.kernel = match c.kernel {
        KernelSel::Guest => Some(guest.kernel.image.clone()),
        KernelSel::None => None,
        KernelSel::Random => Some(env.random_kernel.clone()),
        KernelSel::ForeignArch => {
            let other = env
                .guests
                .get(&(Arch::X86_64.name(), Flavor::Lts))
                .and_then(|g| g.as_ref().ok().cloned());
            match other {
                Some(g) => Some(g.kernel.image.clone()),
                None => Some(assets::kernel(Arch::X86_64, Flavor::Lts)?.image),
            }
        }
        KernelSel::PsciPayload => Some(
            env.psci_payload
                .clone()
                .map_err(|e| format!("PSCI payload unavailable: {e}"))?,
        ),
        KernelSel::Generic => Some(assets::generic_kernel(c.arch)?.image),
    };
    cfg.initrd = match c.initrd {
        InitrdSel::Guest => Some(guest.initrd.clone()),
        InitrdSel::None => None,
        InitrdSel::Huge(m) => Some(huge_initrd(&target_dir().join("test-assets"), m)?),
        InitrdSel::Padded => Some(super::tpm::padded_initrd(&guest.initrd, c.arch)?),
    };
    if c.kernel != KernelSel::None || c.boot_disk.is_some() {
        let mut append = Vec::new();
        if c.arch == Arch::X86_64 {
            append.push("console=ttyS0".to_string());
        }
        // arm64 deliberately has no console=: the SPCR table must provide it.
        append.push(format!("hotstub.action={}", c.action));
        append.push("hotstub.dump=1".into());
        if c.disk {
            append.push("hotstub.disk=1".into());
        }
        if !c.append.is_empty() {
            append.push(c.append.clone());
        }
        if c.kernel != KernelSel::None {
            cfg.append = Some(append.join(" "));
        } else {
            // QEMU refuses -append without -kernel: the keys go where the
            // firmware appends them to the disk entry's command line. The
            // disk's own entry has the console on x86.
            append.retain(|a| a != "console=ttyS0");
            append.push(FWCFG_CMDLINE_MARK.into());
            cfg.extra.extend([
                "-fw_cfg".into(),
                format!(
                    "name=opt/org.hotstub/cmdline,string={}",
                    append.join(" ").replace(',', ",,")
                ),
            ]);
        }
    }
    if c.disk {
        cfg.extra.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id=d0,format=raw,readonly=on",
                env.disk.display()
            ),
            "-device".into(),
            format!("{},drive=d0", crate::qemu::virtio_blk_device(&c.machine)),
        ]);
    }
    if c.spare_disk {
        cfg.extra.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id={SPARE_DRIVE},format=raw,readonly=on",
                env.disk.display()
            ),
        ]);
    }
    cfg.extra.extend(c.extra.iter().cloned());
    // After the case's own arguments: the boot disk may sit on a root
    // port or bridge they create.
    if let Some((image, device)) = c.boot_disk {
        let path = env.boot_disks[&(c.arch.name(), c.flavor, image)]
            .as_ref()
            .map_err(|e| format!("no boot disk {}: {e}", image.name()))?;
        cfg.extra.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id=boot,format=raw,readonly=on",
                path.display()
            ),
            "-device".into(),
            format!("{device},drive=boot"),
        ]);
    }
    if c.qemu == QemuSel::Newest {
        match &env.newest {
            Some(Ok(n)) => cfg.root = Some(n.root.clone()),
            _ => return Err("Debian unstable's QEMU is not available".into()),
        }
    }
    if c.pvh {
        super::pvh::qemu_config(&mut cfg)?;
    }
    Ok(cfg)
}

fn needs_qmp(c: &Case) -> bool {
    matches!(c.expect, Expect::Scenario(_))
}

/// Runs one case; Ok carries a short note for the PASS line.
fn run_case(c: &Case, env: &Env) -> Result<String> {
    if let Expect::Own(run) = c.expect {
        return run(c, env);
    }
    let mut cfg = vm_config(c, env)?;
    let log = log_path(env, c);
    let _tpm = if c.tpm {
        let (t, args) = Swtpm::start(&log.with_extension("swtpm"), c.arch)?;
        cfg.extra.extend(args);
        Some(t)
    } else {
        None
    };
    let control = c.control.then(|| log.with_extension("ctl"));
    if let Some(path) = &control {
        let _ = std::fs::remove_file(path);
        cfg.extra.extend([
            "-chardev".into(),
            format!("socket,id=ctl,path={},server=on,wait=off", path.display()),
            "-serial".into(),
            "chardev:ctl".into(),
        ]);
        if c.control_at_start {
            cfg.extra.push("-S".into());
        }
    }
    let mut vm = Vm::spawn(&cfg, &log, needs_qmp(c))?;
    vm.control = control;
    let deadline = Instant::now() + c.timeout;
    let left = |d: Instant| d.saturating_duration_since(Instant::now());
    let hotstub = c.firmware_of(env.firmware) == Firmware::Hotstub;
    let result = (|| -> Result<String> {
        if let (true, Some(path)) = (c.control_at_start, vm.control.clone()) {
            vm.control_client = Some(Control::connect(&path, Duration::from_secs(10))?);
            vm.qmp.as_mut().ok_or("no QMP")?.execute("cont", None)?;
        }
        match &c.expect {
            Expect::FirmwareError(want) => {
                let l = vm.wait_line("a `hotstub: error:` line", left(deadline), |l| {
                    l.starts_with("hotstub: error:") || l.starts_with("HOTSTUB: init reached")
                })?;
                if l.starts_with("HOTSTUB") {
                    return Err("Linux booted although the input is bad".into());
                }
                if !l.contains(want) {
                    return Err(format!("error line `{l}` does not say `{want}`"));
                }
                let st = vm.wait_exit(left(deadline))?;
                match st {
                    None => Err(format!(
                        "printed `{l}` but QEMU did not exit within {}s (hang)",
                        c.timeout.as_secs()
                    )),
                    Some(_) => Ok(l),
                }
            }
            Expect::Reboot => {
                vm.wait_prefix("HOTSTUB: init reached", left(deadline))?;
                vm.wait_prefix("HOTSTUB: reboot", left(deadline))?;
                vm.wait_prefix("HOTSTUB: init reached", left(deadline))
                    .map_err(|e| format!("no second boot after reboot -f: {e}"))?;
                if hotstub {
                    let banners = vm
                        .lines()
                        .iter()
                        .filter(|l| l.starts_with("Hotstub "))
                        .count();
                    if banners < 2 {
                        return Err(format!("firmware banner seen {banners} times, expected 2"));
                    }
                }
                vm.kill();
                let lines = vm.lines();
                let first_boot = split_boots(&lines).into_iter().next().unwrap_or_default();
                check_boot(c, env, &first_boot, &log)?;
                Ok("second boot seen".into())
            }
            Expect::Boot => {
                vm.wait_prefix("HOTSTUB: init reached", left(deadline))?;
                vm.wait_prefix("HOTSTUB: poweroff", left(deadline))?;
                let st = vm.wait_exit(left(deadline).min(Duration::from_secs(30)))?;
                let lines = vm.lines();
                let note = check_boot(c, env, &lines, &log)?;
                match st {
                    None => Err("`poweroff -f` did not end QEMU".into()),
                    Some(s) if !s.success() => Err(format!("QEMU exit status {s} after poweroff")),
                    Some(_) => Ok(note),
                }
            }
            Expect::BootHalts => {
                vm.wait_prefix("HOTSTUB: init reached", left(deadline))?;
                vm.wait_prefix("HOTSTUB: poweroff", left(deadline))?;
                // kernel/reboot.c: "Power off not available: System halted
                // instead" (no power-off handler), "System halted".
                let l = vm.wait_line(
                    "Linux's halt line",
                    left(deadline).min(Duration::from_secs(30)),
                    |l| l.contains("reboot: ") && l.contains("System halted"),
                )?;
                vm.kill();
                let lines = vm.lines();
                let note = check_boot(c, env, &lines, &log)?;
                Ok(format!("{note}, `{}`", l.trim()))
            }
            Expect::Scenario(f) => {
                vm.wait_prefix("HOTSTUB: init reached", left(deadline))?;
                vm.wait_prefix("HOTSTUB: ready", left(deadline))?;
                let lines = vm.lines();
                let note = check_boot(c, env, &lines, &log)?;
                f(&mut vm, c)?;
                if vm.wait_exit(Duration::ZERO)?.is_none() {
                    if c.action == "cmd" {
                        // Kernel log after the scenario: no errors either.
                        let (_, out) = vm.guest_cmd("dmesg", Duration::from_secs(30))?;
                        let bad = bad_dmesg_lines(&out, c.arch);
                        if !bad.is_empty() {
                            return Err(format!(
                                "kernel log after the scenario: {}",
                                bad.join(" | ")
                            ));
                        }
                        vm.send_serial("HOTSTUB-CMD 0 poweroff -f\n")?;
                    }
                    match vm.wait_exit(left(deadline).min(Duration::from_secs(30)))? {
                        None => return Err("guest did not power off at the end".into()),
                        Some(s) if !s.success() => return Err(format!("QEMU exit status {s}")),
                        Some(_) => {}
                    }
                }
                let mut note = vec![note];
                note.append(&mut vm.report);
                note.retain(|n| !n.is_empty());
                Ok(note.join(", "))
            }
            Expect::Own(_) => Err("the case runs its own VMs".into()),
            Expect::PsciPayload(required) => {
                let l = vm.wait_prefix("PSCI-TEST: summary:", left(deadline))?;
                let lines = vm.lines();
                let bad: Vec<&str> = lines
                    .iter()
                    .filter(|l| {
                        l.starts_with("PSCI-TEST: ")
                            && (l.contains(": FAIL") || l.starts_with("PSCI-TEST: error:"))
                    })
                    .map(String::as_str)
                    .collect();
                let counts = psci_summary(&l);
                let ok = matches!(counts, Some((p, 0, _)) if p > 0);
                if !bad.is_empty() || !ok {
                    return Err(format!("{l}; {}", bad.join(" | ")));
                }
                let missing: Vec<&str> = required
                    .iter()
                    .filter(|r| {
                        !lines.iter().any(|l| {
                            l.starts_with(**r) && !l.contains(": FAIL") && !l.contains(": SKIP")
                        })
                    })
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    return Err(format!("{l}; missing: {}", missing.join(" | ")));
                }
                if vm
                    .wait_exit(left(deadline).min(Duration::from_secs(30)))?
                    .is_none()
                {
                    return Err("payload's SYSTEM_OFF did not end QEMU".into());
                }
                Ok(l.trim_start_matches("PSCI-TEST: summary: ").to_string())
            }
        }
    })();
    vm.kill();
    result
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn qemu_crash_is_told_from_a_guest_failure() {
        let dir = std::env::temp_dir().join(format!("hotstub-crash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("case.log");
        std::fs::write(&log, "HOTSTUB: ready\n[qemu stderr] qemu-system-x86_64: system/physmem.c:2678: iotlb_to_section: Assertion `section_index < d->map.sections_nb' failed.\n").unwrap();
        assert_eq!(qemu_crash(&log), Some("iotlb_to_section: Assertion"));
        std::fs::write(&log, "HOTSTUB: ready\nKernel panic - not syncing\n").unwrap();
        assert_eq!(qemu_crash(&log), None);
        assert_eq!(qemu_crash(&dir.join("missing.log")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
