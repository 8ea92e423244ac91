//! Measured boot seen from outside (issue 24): boots with swtpm, reads
//! the event log Linux exposes (`binary_bios_measurements`) and the PCRs
//! it reports in sysfs over the guest's command channel, replays the log
//! here and runs Debian's `tpm2_eventlog` on it; boots again with one
//! byte of the command line changed and with another initrd file to see
//! which PCRs move; and boots with a TPM whose swtpm died and with none.

use super::case::{Case, InitrdSel};
use super::checks::check_boot;
use super::runner::{log_path, vm_config, Env};
use crate::build::Arch;
use crate::qemu::Vm;
use crate::util::{target_dir, Context, Result};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A software TPM for one VM; the process ends with the value.
pub(super) struct Swtpm(std::process::Child);

impl Swtpm {
    /// Starts swtpm (TPM 2.0) with its state in `dir` and returns it with
    /// the QEMU arguments that attach it.
    pub(super) fn start(dir: &Path, arch: Arch) -> Result<(Swtpm, Vec<String>)> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).ctx("mkdir swtpm state")?;
        let sock = dir.join("sock");
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", sock.display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .ctx("cannot start swtpm (Debian package swtpm)")?;
        let t = Instant::now();
        while !sock.exists() {
            if t.elapsed() > Duration::from_secs(10) {
                return Err("swtpm did not create its socket".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "-chardev".to_string(),
            format!("socket,id=chrtpm,path={}", sock.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            // The ISA TIS on q35, the sysbus one on virt.
            match arch {
                Arch::X86_64 => "tpm-tis,tpmdev=tpm0".into(),
                Arch::Aarch64 => "tpm-tis-device,tpmdev=tpm0".into(),
            },
        ];
        Ok((Swtpm(child), args.to_vec()))
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The guest's initramfs with 512 zero bytes behind it, which Linux's
/// unpacker skips (init/initramfs.c): another initrd file, the same boot.
pub(super) fn padded_initrd(src: &Path, arch: Arch) -> Result<PathBuf> {
    let dir = target_dir().join("test-assets");
    std::fs::create_dir_all(&dir).ctx("mkdir test-assets")?;
    let out = dir.join(format!("initrd-padded-{}", arch.name()));
    let mut bytes = std::fs::read(src).ctx("read the guest initramfs")?;
    bytes.resize(bytes.len() + 512, 0);
    std::fs::write(&out, bytes).ctx("write the padded initramfs")?;
    Ok(out)
}

/// How the VM gets its TPM.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tpm {
    On,
    /// swtpm is killed after QEMU connected and before the firmware runs.
    Dead,
    Absent,
}

/// PCR values by (bank, index), as sysfs names the banks.
type Pcrs = BTreeMap<(String, u32), Vec<u8>>;

/// What one boot left.
struct Reading {
    /// The event log Linux exposes; empty without one.
    log: Vec<u8>,
    pcrs: Pcrs,
    lines: Vec<String>,
}

/// The PCRs the checks compare: the firmware's 0-7 and the boot
/// loader's 8 and 9.
const PCRS: std::ops::RangeInclusive<u32> = 0..=9;

/// A VM booted to the guest's command loop, its TPM as `tpm` says, the
/// standard checks passed.
struct Booted {
    vm: Vm,
    lines: Vec<String>,
    deadline: Instant,
    _swtpm: Option<Swtpm>,
}

impl Booted {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Waits for the guest's command loop.
    fn ready(&mut self) -> Result<()> {
        let left = self.left();
        self.vm.wait_prefix("HOTSTUB: init reached", left)?;
        self.vm.wait_prefix("HOTSTUB: ready", self.left())?;
        self.lines = self.vm.lines();
        Ok(())
    }

    /// The event log and PCRs as Linux has them.
    fn read(&mut self) -> Result<Reading> {
        let step = Duration::from_secs(60);
        let (rc, out) = self.vm.guest_cmd(
            "mount -t securityfs securityfs /sys/kernel/security 2>/dev/null; \
             od -An -tx1 -v /sys/kernel/security/tpm0/binary_bios_measurements",
            step,
        )?;
        if rc != 0 {
            return Err("Linux exposes no binary_bios_measurements".into());
        }
        let log = hex(&out.concat())?;
        let (_, out) = self.vm.guest_cmd(
            "cd /sys/class/tpm/tpm0 && for b in pcr-*; do for i in 0 1 2 3 4 5 6 7 8 9; \
             do echo ${b#pcr-} $i $(cat $b/$i); done; done",
            step,
        )?;
        let mut pcrs = Pcrs::new();
        for l in out {
            let w: Vec<&str> = l.split_whitespace().collect();
            if let [bank, i, v] = w[..] {
                let i = i.parse().map_err(|_| format!("PCR line `{l}`"))?;
                pcrs.insert((bank.to_string(), i), hex(v)?);
            }
        }
        if pcrs.is_empty() {
            return Err("Linux lists no PCRs in /sys/class/tpm/tpm0".into());
        }
        Ok(Reading {
            log,
            pcrs,
            lines: self.lines.clone(),
        })
    }

    fn power_off(mut self) -> Result<Vec<String>> {
        self.vm.send_serial("HOTSTUB-CMD 0 poweroff -f\n")?;
        match self
            .vm
            .wait_exit(self.left().min(Duration::from_secs(30)))?
        {
            Some(s) if s.success() => Ok(self.lines),
            Some(s) => Err(format!("QEMU exit status {s}")),
            None => Err("guest did not power off".into()),
        }
    }
}

fn start(c: &Case, env: &Env, tpm: Tpm) -> Result<Booted> {
    let mut cfg = vm_config(c, env)?;
    let log = log_path(env, c);
    let mut swtpm = None;
    if tpm != Tpm::Absent {
        let (t, args) = Swtpm::start(&log.with_extension("swtpm"), c.arch)?;
        cfg.extra.extend(args);
        swtpm = Some(t);
    }
    if tpm == Tpm::Dead {
        cfg.extra.push("-S".into());
    }
    let mut vm = Vm::spawn(&cfg, &log, true)?;
    if tpm == Tpm::Dead {
        // QEMU has connected (it probes swtpm at start-up); the socket dies
        // before the first guest instruction.
        drop(swtpm.take());
        std::thread::sleep(Duration::from_millis(300));
        vm.qmp.as_mut().ok_or("no QMP")?.execute("cont", None)?;
    }
    let mut b = Booted {
        vm,
        lines: Vec::new(),
        deadline: Instant::now() + c.timeout,
        _swtpm: swtpm,
    };
    b.ready()?;
    check_boot(c, env, &b.lines, &log)?;
    Ok(b)
}

/// One boot: the log and PCRs with a TPM, the console lines either way.
fn boot(c: &Case, env: &Env, tpm: Tpm) -> Result<Reading> {
    let mut b = start(c, env, tpm)?;
    let r = match tpm {
        Tpm::On => b.read()?,
        _ => Reading {
            log: Vec::new(),
            pcrs: Pcrs::new(),
            lines: b.lines.clone(),
        },
    };
    b.power_off()?;
    Ok(r)
}

fn hex(s: &str) -> Result<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| "bad hex".into()))
        .collect()
}

fn digest(bank: &str, parts: &[&[u8]]) -> Option<Vec<u8>> {
    fn run<H: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut h = H::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().to_vec()
    }
    Some(match bank {
        "sha1" => run::<Sha1>(parts),
        "sha256" => run::<Sha256>(parts),
        "sha384" => run::<Sha384>(parts),
        "sha512" => run::<Sha512>(parts),
        _ => return None,
    })
}

/// TPM_ALG_ID to sysfs bank name (TCG Algorithm Registry).
fn bank(id: u16) -> Option<&'static str> {
    Some(match id {
        0x04 => "sha1",
        0x0b => "sha256",
        0x0c => "sha384",
        0x0d => "sha512",
        _ => return None,
    })
}

/// One TCG_PCR_EVENT2: PCR, type, event data.
struct Event {
    pcr: u32,
    data: Vec<u8>,
}

/// Replays a crypto-agile log (TCG PC Client Firmware Profile 10.2):
/// the Spec ID event's banks, then every record's digests extended into
/// its PCR from zero. Independent of the firmware's writer.
fn replay(log: &[u8]) -> Result<(Pcrs, Vec<Event>)> {
    let get = |o: usize, n: usize| log.get(o..o + n).ok_or("event log truncated");
    let u32_at = |o: usize| get(o, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let u16_at = |o: usize| get(o, 2).map(|b| u16::from_le_bytes(b.try_into().unwrap()));
    if get(32, 16)? != b"Spec ID Event03\0" {
        return Err("the log does not start with the Spec ID event".into());
    }
    let mut sizes = BTreeMap::new();
    for i in 0..u32_at(56)? as usize {
        let id = u16_at(60 + 4 * i)?;
        sizes.insert(id, u16_at(62 + 4 * i)? as usize);
    }
    let mut pcrs = Pcrs::new();
    let mut events = Vec::new();
    let mut o = 32 + u32_at(28)? as usize;
    while o + 12 <= log.len() && u32_at(o + 8)? != 0 {
        let (pcr, ty, count) = (u32_at(o)?, u32_at(o + 4)?, u32_at(o + 8)?);
        let mut p = o + 12;
        for _ in 0..count {
            let id = u16_at(p)?;
            let n = *sizes
                .get(&id)
                .ok_or("a digest of a bank the Spec ID lacks")?;
            let name = bank(id).ok_or("unknown bank")?;
            let d = get(p + 2, n)?;
            // EV_NO_ACTION (3) is logged, never extended.
            if ty != 3 {
                let cur = pcrs
                    .entry((name.to_string(), pcr))
                    .or_insert_with(|| vec![0; n]);
                *cur = digest(name, &[cur, d]).unwrap();
            }
            p += 2 + n;
        }
        let len = u32_at(p)? as usize;
        events.push(Event {
            pcr,
            data: get(p + 4, len)?.to_vec(),
        });
        o = p + 4 + len;
    }
    Ok((pcrs, events))
}

/// The log replays to the PCRs Linux read, for every bank and PCR 0-9;
/// `tpm2_eventlog` parses it. Returns the events.
fn check_replay(c: &Case, env: &Env, r: &Reading) -> Result<Vec<Event>> {
    let (replayed, events) = replay(&r.log)?;
    for ((bank, i), v) in &r.pcrs {
        if !PCRS.contains(i) {
            continue;
        }
        let want = replayed
            .get(&(bank.clone(), *i))
            .cloned()
            .unwrap_or_else(|| vec![0; v.len()]);
        if &want != v {
            return Err(format!(
                "{bank} PCR {i}: the log replays to a different value"
            ));
        }
    }
    let file = log_path(env, c).with_extension("eventlog");
    std::fs::write(&file, &r.log).ctx("write the event log")?;
    let out = Command::new("tpm2_eventlog")
        .arg(&file)
        .output()
        .ctx("cannot run tpm2_eventlog (Debian package tpm2-tools)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("ERROR") {
        return Err(format!("tpm2_eventlog: {}", stderr.trim()));
    }
    Ok(events)
}

/// Which of PCRs 0-9 differ between two boots, in any bank.
fn moved(a: &Reading, b: &Reading) -> Vec<u32> {
    PCRS.filter(|&i| {
        a.pcrs
            .iter()
            .any(|((bank, j), v)| *j == i && b.pcrs.get(&(bank.clone(), i)) != Some(v))
    })
    .collect()
}

fn variant(c: &Case, tag: &str, f: impl FnOnce(&mut Case)) -> Case {
    let mut v = c.clone();
    v.name = format!("{}-{tag}", c.name);
    f(&mut v);
    v
}

/// The case's command line carries this word; the variant changes its
/// last byte.
pub(super) const MARK: &str = "tpmtest=a";

/// Replay and `tpm2_eventlog` on a -kernel boot; one byte more of the
/// command line moves PCR 8 alone, another initrd file PCR 9 alone.
pub(super) fn measured_boot(c: &Case, env: &Env) -> Result<String> {
    let base = boot(c, env, Tpm::On)?;
    let events = check_replay(c, env, &base)?;
    let cmdline = variant(c, "cmdline", |v| {
        v.append = c.append.replace(MARK, "tpmtest=b")
    });
    let r = boot(&cmdline, env, Tpm::On)?;
    check_replay(&cmdline, env, &r)?;
    if moved(&base, &r) != [8] {
        return Err(format!(
            "a command line byte moved PCRs {:?}, not 8 alone",
            moved(&base, &r)
        ));
    }
    let initrd = variant(c, "initrd", |v| v.initrd = InitrdSel::Padded);
    let r = boot(&initrd, env, Tpm::On)?;
    check_replay(&initrd, env, &r)?;
    if moved(&base, &r) != [9] {
        return Err(format!(
            "another initrd moved PCRs {:?}, not 9 alone",
            moved(&base, &r)
        ));
    }
    let banks: std::collections::BTreeSet<&str> = base.pcrs.keys().map(|k| k.0.as_str()).collect();
    Ok(format!(
        "{} events replay to PCRs 0-9 in {}; cmdline -> PCR 8, initrd -> PCR 9",
        events.len(),
        banks.into_iter().collect::<Vec<_>>().join(" ")
    ))
}

/// One boot: replay; from a disk also the boot configuration in PCR 9.
pub(super) fn measured_once(c: &Case, env: &Env) -> Result<String> {
    let r = boot(c, env, Tpm::On)?;
    let events = check_replay(c, env, &r)?;
    if c.boot_disk.is_none() {
        return Ok(format!("{} events replay", events.len()));
    }
    let config = events
        .iter()
        .find(|e| e.pcr == 9 && (e.data.ends_with(b".cfg\0") || e.data.ends_with(b".conf\0")))
        .ok_or("no boot configuration event in PCR 9")?;
    Ok(format!(
        "{} events replay; PCR 9 has {}",
        events.len(),
        String::from_utf8_lossy(&config.data).trim_end_matches('\0')
    ))
}

/// A guest reboot (`reboot -f`, a reset QEMU passes to swtpm): the
/// second boot measures afresh into a reset TPM, to the same PCRs.
pub(super) fn measured_reboot(c: &Case, env: &Env) -> Result<String> {
    let mut b = start(c, env, Tpm::On)?;
    let first = b.read()?;
    check_replay(c, env, &first)?;
    b.vm.send_serial("HOTSTUB-CMD 0 reboot -f\n")?;
    b.ready()?;
    let second = b.read()?;
    let events = check_replay(c, env, &second)?;
    let lines = b.power_off()?;
    let on = lines
        .iter()
        .filter(|l| l.contains("measured boot on"))
        .count();
    if on != 2
        || !tpm_lines_of(&lines)
            .iter()
            .all(|l| l.contains("measured boot on"))
    {
        return Err(format!(
            "want measured boot on in both boots, got {:?}",
            tpm_lines_of(&lines)
        ));
    }
    if first.pcrs != second.pcrs {
        return Err("the second boot's PCRs differ from the first's".into());
    }
    Ok(format!(
        "{} events replay after the reset too, same PCRs",
        events.len()
    ))
}

fn tpm_lines_of(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.contains("measured boot"))
        .collect()
}

/// Lines the firmware printed about measured boot.
fn tpm_lines(r: &Reading) -> Vec<&String> {
    r.lines
        .iter()
        .filter(|l| l.contains("measured boot"))
        .collect()
}

/// swtpm gone before the firmware runs: one warning, the boot goes on.
pub(super) fn tpm_dead(c: &Case, env: &Env) -> Result<String> {
    let r = boot(c, env, Tpm::Dead)?;
    match tpm_lines(&r)[..] {
        [l] if l.starts_with("hotstub: warning: TPM:") && l.ends_with("measured boot is off") => {
            Ok(l.to_string())
        }
        ref other => Err(format!("want one warning line, got {other:?}")),
    }
}

/// No TPM: nothing said about measured boot.
pub(super) fn tpm_absent(c: &Case, env: &Env) -> Result<String> {
    let r = boot(c, env, Tpm::Absent)?;
    match tpm_lines(&r)[..] {
        [] => Ok("silent".into()),
        ref other => Err(format!("without a TPM the firmware said {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_extends_each_bank_from_zero() {
        // Spec ID with sha256; one EV_NO_ACTION and one EV_IPL into PCR 8.
        let mut log = vec![0u8; 32];
        log[4] = 3;
        let spec_len = 16 + 12 + 4 + 1;
        log[28..32].copy_from_slice(&(spec_len as u32).to_le_bytes());
        log.extend_from_slice(b"Spec ID Event03\0");
        log.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 0x0b, 0, 32, 0, 0]);
        let d = digest("sha256", &[b"x"]).unwrap();
        for ty in [3u32, 13] {
            log.extend_from_slice(&8u32.to_le_bytes());
            log.extend_from_slice(&ty.to_le_bytes());
            log.extend_from_slice(&1u32.to_le_bytes());
            log.extend_from_slice(&[0x0b, 0]);
            log.extend_from_slice(&d);
            log.extend_from_slice(&1u32.to_le_bytes());
            log.push(b'x');
        }
        log.resize(log.len() + 64, 0);
        let (pcrs, events) = replay(&log).unwrap();
        assert_eq!(events.len(), 2);
        let want = digest("sha256", &[&[0; 32], &d]).unwrap();
        assert_eq!(pcrs[&("sha256".to_string(), 8)], want);
        assert_eq!(pcrs.len(), 1);
        assert!(replay(&log[..100]).is_err(), "a record cut short");
    }
}
