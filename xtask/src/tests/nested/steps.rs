//! A nested case from CH's start to L1's power-off: L2's boot and its
//! checks, the case's steps (ch-remote in L1, what L2 must then show),
//! L2's power-off ending CH and L1.

use super::super::checks::{bad_dmesg_lines, check_tables, min_memtotal_kib};
use super::super::protocol::{fields, marker, section};
use super::super::runner::FWCFG_CMDLINE_MARK;
use super::l1::L1Run;
use super::{L2Boot, NestedCase};
use crate::util::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// One step after L2's `HOTSTUB: ready`.
#[derive(Clone, Copy, Debug)]
pub(in super::super) enum Step {
    /// `ch-remote <args>` in L1; must exit 0.
    ChRemote(&'static str),
    /// A line of L2 starting with the first string and containing each
    /// word of the second (e.g. the CPU watcher's `HOTSTUB: cpus` line).
    L2Line(&'static str, &'static str),
    /// An L2 shell command (the test init's command channel), repeated
    /// until it exits 0 with the text in its output; `{md5}` in either
    /// stands for the test disk's md5.
    L2Until(&'static str, &'static str),
}

/// How long a step may take: CH's hotplug and L2's answer, nested under
/// TCG on a loaded host.
const STEP_SECS: u64 = 90;

/// L2's boot to init: about 11 s (x86) and 6 s (arm64) measured, several
/// times that under load.
pub(super) const L2_BOOT_SECS: u64 = 400;

pub(super) fn drive(c: &NestedCase, run: &mut L1Run, md5: &str, log: &Path) -> Result<String> {
    if let Some(why) = c.refused {
        return refused(run, why);
    }
    let cmd = c.uses_cmd();
    let init = run.wait_mark("l2 init", "HOTSTUB: init reached", L2_BOOT_SECS)?;
    let end = if cmd {
        "HOTSTUB: ready"
    } else {
        "HOTSTUB: poweroff"
    };
    run.vm.wait_prefix(end, Duration::from_secs(L2_BOOT_SECS))?;
    let lines = run.vm.lines();
    let mut note = check_l2(c, &lines, log)?;
    for s in &c.steps {
        let t = Instant::now();
        step(run, *s, md5).map_err(|e| format!("{s:?}: {e}"))?;
        crate::util::step(format!(
            "  {}: {s:?} {:.1}s",
            c.name,
            t.elapsed().as_secs_f64()
        ));
    }
    if cmd {
        let (_, out) = run.vm.guest_cmd("dmesg", Duration::from_secs(60))?;
        let bad = bad_dmesg_lines(&out, c.arch);
        if !bad.is_empty() {
            return Err(format!(
                "L2 kernel log after the steps: {}",
                bad.join(" | ")
            ));
        }
        run.vm.send_serial("HOTSTUB-CMD 0 poweroff -f\n")?;
    }
    let exit = run
        .wait_either("NESTED: ch exited", "NESTED: error:", 60)
        .map_err(|e| format!("after L2's poweroff: {e}"))?;
    if !exit.starts_with("NESTED: ch exited rc=0") {
        return Err(format!("{exit}: {}", run.ch_log().join(" | ")));
    }
    match run.vm.wait_exit(Duration::from_secs(30))? {
        None => return Err("L1 did not power off after CH exited".into()),
        Some(s) if !s.success() => return Err(format!("QEMU exit status {s}")),
        Some(_) => {}
    }
    let l2_uptime = fields(&init).get("uptime").cloned().unwrap_or_default();
    let at = |w: &str| run.marks.iter().find(|(m, _)| *m == w).map(|(_, t)| *t);
    if let (Some(l1), Some(ch), Some(l2)) = (at("l1 init"), at("ch started"), at("l2 init")) {
        note = format!(
            "L1 init at {l1:.0}s, CH at {ch:.0}s, L2 init {:.1}s later (L2 uptime {l2_uptime}s), {note}",
            l2 - ch
        );
    }
    if !c.steps.is_empty() {
        note.push_str(&format!(", {} steps", c.steps.len()));
    }
    let version = lines
        .iter()
        .find_map(|l| l.strip_prefix("NESTED: ch version "))
        .unwrap_or("?");
    Ok(format!("{note}; {version}"))
}

fn step(run: &mut L1Run, s: Step, md5: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(STEP_SECS);
    match s {
        Step::ChRemote(args) => run.ch_remote(args).map(|_| ()),
        Step::L2Line(prefix, words) => {
            let (p, w) = (prefix.to_string(), words.to_string());
            run.vm
                .wait_line(
                    &format!("`{prefix}` with `{words}`"),
                    Duration::from_secs(STEP_SECS),
                    move |l| l.starts_with(&p) && w.split_whitespace().all(|x| l.contains(x)),
                )
                .map(|_| ())
        }
        Step::L2Until(cmd, want) => {
            let (cmd, want) = (cmd.replace("{md5}", md5), want.replace("{md5}", md5));
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let (rc, out) = run.vm.guest_cmd(&cmd, left.max(Duration::from_secs(5)))?;
                if rc == 0 && out.iter().any(|l| l.contains(&want)) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "`{cmd}` exited {rc} without `{want}`: {}",
                        out.join(" | ")
                    ));
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
}

/// The checks on L2's boot: the firmware's lines (Hotstub cases), CPUs,
/// memory, ACPI or device tree, the kernel log, the tables through iasl,
/// the disk's command line.
fn check_l2(c: &NestedCase, lines: &[String], log: &Path) -> Result<String> {
    let mut errs: Vec<String> = Vec::new();
    if let L2Boot::HotstubDisk(image) = c.boot {
        if !lines.iter().any(|l| l.starts_with("Hotstub ")) {
            errs.push("no firmware banner (`Hotstub <version> <arch>`)".into());
        }
        if marker(lines, "disk_layout=") != Some(image.name()) {
            errs.push(format!("booted without the {} disk's entry", image.name()));
        }
    }
    if let Some(e) = lines.iter().find(|l| l.starts_with("hotstub: error:")) {
        errs.push(format!("firmware error: {e}"));
    }
    if c.fw_cfg.is_some() {
        errs.extend(check_fw_cfg(lines));
    }
    match marker(lines, "cpus ") {
        Some(s) if fields(s).get("online").map(String::as_str) == Some(c.online) => {}
        got => errs.push(format!("cpus {got:?}, expected online={}", c.online)),
    }
    let mem = marker(lines, "memtotal_kb=").and_then(|s| s.trim().parse::<u64>().ok());
    let note = match mem {
        Some(kb) if kb >= min_memtotal_kib(c.mem_mib) && kb <= c.mem_mib * 1024 => {
            format!("MemTotal {} MiB", kb / 1024)
        }
        got => {
            errs.push(format!(
                "MemTotal {got:?} KiB outside the bounds for {} MiB",
                c.mem_mib
            ));
            String::new()
        }
    };
    let acpi = marker(lines, "acpi=").unwrap_or("?");
    match c.acpi_tables {
        Some(want) => {
            let have: Vec<&str> = acpi
                .split_once("tables=")
                .map(|(_, t)| t.split_whitespace().collect())
                .unwrap_or_default();
            let missing: Vec<&&str> = want.iter().filter(|t| !have.contains(t)).collect();
            if !acpi.starts_with("yes") || !missing.is_empty() {
                errs.push(format!("ACPI tables missing {missing:?} (acpi={acpi})"));
            }
            let tdir = log.with_extension("").join("tables");
            if let Err(e) = check_tables(lines, &tdir) {
                errs.push(e);
            }
        }
        None if !acpi.starts_with("no") => {
            errs.push(format!("expected the device tree, got acpi={acpi}"))
        }
        None => {}
    }
    match section(lines, "HOTSTUB-DMESG-BEGIN", "HOTSTUB-DMESG-END") {
        // The disk's command line has no hotstub.dump=1, and no `quiet`:
        // the kernel's log is on the console up to the init.
        None if matches!(c.boot, L2Boot::HotstubDisk(_)) => {
            let upto = lines
                .iter()
                .position(|l| l.starts_with("HOTSTUB: init reached"))
                .unwrap_or(lines.len());
            let bad = bad_dmesg_lines(&lines[..upto], c.arch);
            if !bad.is_empty() {
                errs.push(format!("L2 kernel log: {}", bad.join(" | ")));
            }
        }
        None => errs.push("no kernel log dump".into()),
        Some(d) => {
            let bad = bad_dmesg_lines(&d, c.arch);
            if !bad.is_empty() {
                errs.push(format!("L2 kernel log: {}", bad.join(" | ")));
            }
        }
    }
    if errs.is_empty() {
        Ok(note)
    } else {
        Err(errs.join("; "))
    }
}

/// What `ch-hotstub-fw-cfg`'s files (`cases::fw_cfg_files`) must have
/// done: Hotstub found CH's fw_cfg, booted the entry `opt/org.hotstub/boot`
/// names (the recovery entry, which adds `single`), and appended
/// `opt/org.hotstub/cmdline` (the harness's mark).
fn check_fw_cfg(lines: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    let said = |p: &str| lines.iter().find(|l| l.to_ascii_lowercase().starts_with(p));
    if said("hotstub: cloud-hypervisor's fw_cfg:").is_none() {
        errs.push("Hotstub did not report CH's fw_cfg".into());
    }
    match said("hotstub: booting disk0") {
        Some(l) if l.contains("(recovery mode)") => {}
        l => errs.push(format!(
            "opt/org.hotstub/boot's recovery entry not booted: {l:?}"
        )),
    }
    let cmdline = marker(lines, "cmdline=").unwrap_or("");
    for w in [FWCFG_CMDLINE_MARK, "single"] {
        if !cmdline.split_whitespace().any(|x| x == w) {
            errs.push(format!("L2's command line lacks `{w}`: {cmdline}"));
        }
    }
    errs
}

/// A case Hotstub must refuse: its one error line (containing `why`) on
/// L2's serial, then CH exits with status 0 (the firmware's orderly stop
/// reached CH as a shutdown) and L1 powers off.
fn refused(run: &mut L1Run, why: &str) -> Result<String> {
    let line = run
        .wait_either("hotstub: error:", "HOTSTUB: init reached", L2_BOOT_SECS)
        .map_err(|e| format!("no error line: {e}"))?;
    if !line.starts_with("hotstub: error:") || !line.contains(why) {
        return Err(format!("expected an error line with `{why}`, got `{line}`"));
    }
    let t = Instant::now();
    let exit = run
        .wait_either("NESTED: ch exited", "NESTED: error:", 60)
        .map_err(|e| format!("after the error line: {e}"))?;
    if !exit.starts_with("NESTED: ch exited rc=0") {
        return Err(format!("{exit}: {}", run.ch_log().join(" | ")));
    }
    match run.vm.wait_exit(Duration::from_secs(30))? {
        None => Err("L1 did not power off after CH exited".into()),
        Some(s) if !s.success() => Err(format!("QEMU exit status {s}")),
        Some(_) => Ok(format!(
            "refused: `{line}`; CH exited {:.1}s later",
            t.elapsed().as_secs_f64()
        )),
    }
}
