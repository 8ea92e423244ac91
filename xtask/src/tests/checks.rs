//! The standard checks on a Linux boot's serial log: firmware banner, the
//! guest's CPUs and memory, ACPI mode and tables (through iasl), the kernel
//! log and the virtio disk.

use super::case::{Case, KernelSel};
use super::protocol::{fields, marker, section, table_dumps};
use super::runner::Env;
use crate::build::Arch;
use crate::qemu::Firmware;
use crate::util::{Context, Result};
use std::path::Path;
use std::process::Command;

/// Kernel log checks: lines that mean the firmware gave Linux something
/// wrong, on x86 and arm64 alike.
const BAD_DMESG: &[&str] = &[
    "ACPI Error",
    "ACPI BIOS Error",
    "ACPI Warning",
    "Firmware Bug",
    "FW_BUG",
    // _STA still enabled right after _EJ0 (drivers/acpi/scan.c
    // acpi_scan_hot_remove): the eject did not take.
    "Eject incomplete",
];

/// Kernel log checks: splats, matched as whole words: "loops_per_jiffy"
/// must not count as "Oops".
const SPLATS: &[&str] = &["WARNING:", "BUG:", "Oops", "Kernel panic", "Call trace:"];

/// Whether `line` contains `word` with no letter, digit or underscore
/// directly before or after it.
fn has_word(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// The kernel log lines that fail a test (`BAD_DMESG`, `SPLATS`, and on
/// arm64 EFI errors).
pub(super) fn bad_dmesg_lines(lines: &[String], arch: Arch) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            BAD_DMESG.iter().any(|p| l.contains(p))
                || SPLATS.iter().any(|w| has_word(l, w))
                || (arch == Arch::Aarch64 && is_efi_error(l))
        })
        .cloned()
        .collect()
}

/// Kernel log checks on arm64: an EFI complaint, `efi:.*(error|Error|fail)`.
fn is_efi_error(l: &str) -> bool {
    match l.find("efi:") {
        Some(i) => {
            let rest = &l[i..];
            rest.contains("error") || rest.contains("Error") || rest.contains("fail")
        }
        None => false,
    }
}

/// Lowest MemTotal accepted for `mem_mib` of configured RAM.
///
/// Linux never counts all of RAM in MemTotal: it subtracts its own image
/// and early allocations (about 40-50 MiB for the Debian cloud kernels),
/// `struct page` for every 4 KiB page (64 bytes each: 1.6 %), and once RAM
/// extends above 4 GiB a 64 MiB swiotlb bounce buffer. Measured with
/// SeaBIOS and QEMU's direct boot: 512 MiB -> 463-471 MiB, 4 GiB (x86) ->
/// 3921 MiB, 5 GiB (arm) -> 4923 MiB. The allowance, 64 MiB + 3 % (+ 64 MiB
/// above 3 GiB), covers that with some margin for the firmware's own
/// reservations, yet a lost region is caught: on the 4 GiB q35 run the RAM
/// above 4 GiB is 2 GiB, on the 5 GiB virt run 2 GiB sit above 4 GiB.
pub(super) fn min_memtotal_kib(mem_mib: u64) -> u64 {
    let mut allow = 64 + mem_mib * 3 / 100;
    if mem_mib > 3072 {
        allow += 64;
    }
    (mem_mib - allow) * 1024
}

/// Whether the kernel `version` ("7.2.13+deb14-cloud-arm64") shows an
/// online-capable vCPU as present only once it is hot-added: Linux 7.x
/// does (commit f9a82544c717), 6.12 counts it present from boot.
pub(super) fn present_only_when_added(version: &str) -> bool {
    version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m >= 7)
}

/// Drops the kernel's reports about CPUs it runs without having
/// registered them. Linux 6.x makes every online-capable vCPU present and
/// brings all present vCPUs up at boot; when PSCI lets a disabled one start
/// (QEMU's PSCI at EL1 knows no policy, and there the firmware is gone),
/// the CPU's topology and cache sysfs nodes have no device to hang from:
/// a WARNING at fs/sysfs/group.c from `topology_add_dev` and a duplicate
/// `/devices/cache` from `cacheinfo_cpu_online`. Only those two reports go;
/// any other splat stays and fails the test.
fn strip_unregistered_cpu_splats(d: &[String]) -> Vec<String> {
    const KNOWN_FRAMES: &[&str] = &["topology_add_dev", "cacheinfo_cpu_online"];
    let frame = |l: &str| l.split_once("] ").is_some_and(|(_, r)| r.starts_with(' '));
    let mut out = Vec::new();
    let mut i = 0;
    while i < d.len() {
        let l = &d[i];
        if has_word(l, "WARNING:") && l.contains(" at fs/sysfs/group.c:") {
            // The whole report, through its end marker.
            let end = d[i..]
                .iter()
                .position(|x| x.contains("---[ end trace"))
                .map_or(d.len(), |e| i + e + 1);
            let known = d[i..end]
                .iter()
                .any(|x| KNOWN_FRAMES.iter().any(|f| x.contains(f)));
            if known {
                i = end;
                continue;
            }
        }
        if l.contains("Call trace:") {
            let frames: Vec<&String> = d[i + 1..].iter().take_while(|x| frame(x)).collect();
            if frames
                .iter()
                .any(|x| KNOWN_FRAMES.iter().any(|f| x.contains(f)))
            {
                i += 1 + frames.len();
                continue;
            }
        }
        out.push(l.clone());
        i += 1;
    }
    out
}

/// Whether the kernel log shows KVM initialised (arch/arm64/kvm/arm.c:
/// "kvm [1]: VHE mode initialized successfully", or "Hyp nVHE mode ...").
fn kvm_initialised(dmesg: &[String]) -> bool {
    dmesg
        .iter()
        .any(|l| l.contains("kvm [") && l.contains("mode initialized successfully"))
}

/// The standard checks on one boot's serial log. Returns a short note.
/// Vendor, version and release date of the SMBIOS BIOS Information (type
/// 0, DSP0134 7.1: string numbers at 0x04, 0x05 and 0x08) in the hex of
/// the structure table's start, as the guest init prints it.
fn bios_information(hex: &str) -> Option<(String, String, String)> {
    let b: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let mut at = 0;
    while at + 4 <= b.len() {
        let len = usize::from(b[at + 1]);
        let strings_end =
            (at + len..b.len().saturating_sub(1)).find(|&i| b[i] == 0 && b[i + 1] == 0)?;
        let strings: Vec<String> = b[at + len..strings_end]
            .split(|&c| c == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        if b[at] == 0 && len > 8 {
            let s = |i: usize| match usize::from(b[at + i]) {
                0 => String::new(),
                n => strings.get(n - 1).cloned().unwrap_or_default(),
            };
            return Some((s(4), s(5), s(8)));
        }
        at = strings_end + 2;
    }
    None
}

pub(super) fn check_boot(c: &Case, env: &Env, lines: &[String], log: &Path) -> Result<String> {
    let mut errs: Vec<String> = Vec::new();
    let hotstub = c.firmware_of(env.firmware) == Firmware::Hotstub;
    if hotstub {
        let banner = lines.iter().find(|l| l.starts_with("Hotstub "));
        match banner {
            None => errs.push("no firmware banner (`Hotstub <version> <arch>`)".into()),
            Some(b) if !b.contains(c.arch.name()) => {
                errs.push(format!("banner `{b}` does not name the arch"))
            }
            _ => {}
        }
        if !lines.iter().any(|l| l.contains("ms in firmware")) {
            errs.push("no `ms in firmware` line".into());
        }
        if let Some(e) = lines.iter().find(|l| l.starts_with("hotstub: error:")) {
            errs.push(format!("firmware error: {e}"));
        }
        // SMBIOS type 0 names the firmware (boot/smbios.rs).
        let want = ("Hotstub".to_string(), env!("CARGO_PKG_VERSION").to_string());
        match marker(lines, "dmi ").and_then(bios_information) {
            Some((vendor, version, _)) if (vendor.clone(), version.clone()) == want => {}
            got => errs.push(format!(
                "SMBIOS BIOS information {got:?}, expected vendor {} version {}",
                want.0, want.1
            )),
        }
    }
    if marker(lines, "init reached").is_none() {
        return Err("init not reached".into());
    }
    // The init could not load a module it was asked for (tests/guest/init
    // load_mod).
    for l in lines.iter().filter(|l| {
        l.starts_with("HOTSTUB: insmod ")
            || (l.starts_with("HOTSTUB: module ") && l.ends_with(" missing"))
    }) {
        errs.push(l.trim_start_matches("HOTSTUB: ").to_string());
    }
    let cmdline = marker(lines, "cmdline=").unwrap_or("").to_string();
    // CPUs.
    let kernel_version = env.guests[&(c.arch.name(), c.flavor)]
        .as_ref()
        .map(|g| g.kernel.version.clone())
        .unwrap_or_default();
    let present = match &c.cpus.present_when_added {
        Some(p) if present_only_when_added(&kernel_version) => Some(p.clone()),
        _ => c.cpus.present.clone(),
    };
    match marker(lines, "cpus ") {
        None => errs.push("no cpus line".into()),
        Some(s) => {
            let f = fields(s);
            for (k, want) in [
                ("possible", &c.cpus.possible),
                ("present", &present),
                ("online", &c.cpus.online),
                ("enabled", &c.cpus.enabled),
            ] {
                if let Some(w) = want {
                    let got = f.get(k).map(String::as_str).unwrap_or("?");
                    if got != w {
                        errs.push(format!("cpus {k}={got}, expected {w}"));
                    }
                }
            }
        }
    }
    // Memory.
    let mem = marker(lines, "memtotal_kb=").and_then(|s| s.trim().parse::<u64>().ok());
    let mem_note = match mem {
        None => {
            errs.push("no memtotal line".into());
            String::new()
        }
        Some(kb) => {
            let min = min_memtotal_kib(c.mem_mib).saturating_sub(c.mem_slack_mib * 1024);
            if kb < min || kb > c.mem_mib * 1024 {
                errs.push(format!(
                    "MemTotal {} MiB outside [{} MiB, {} MiB] for {} MiB configured",
                    kb / 1024,
                    min / 1024,
                    c.mem_mib,
                    c.mem_mib
                ));
            }
            format!("MemTotal {} MiB", kb / 1024)
        }
    };
    // ACPI tables.
    let required: &[&str] = match (c.arch, c.machine.contains("gic-version=2")) {
        // microvm's are QEMU's: hardware-reduced ACPI, no FACS, no HPET
        // and no MCFG (its PCIe host's ECAM is in its DSDT).
        (Arch::X86_64, _) if crate::qemu::is_microvm(&c.machine) => &["APIC", "DSDT", "FACP"],
        // i440FX has no MMCONFIG, so no MCFG.
        (Arch::X86_64, _) if i440fx(&c.machine) => &["APIC", "DSDT", "FACP", "FACS", "HPET"],
        (Arch::X86_64, _) => &["APIC", "DSDT", "FACP", "FACS", "HPET", "MCFG"],
        (Arch::Aarch64, false) => &["FACP", "APIC", "GTDT", "SPCR", "DSDT", "MCFG", "IORT"],
        (Arch::Aarch64, true) => &["FACP", "APIC", "GTDT", "SPCR", "DSDT", "MCFG"],
    };
    let acpi = marker(lines, "acpi=").unwrap_or("no");
    let no_acpi = no_acpi(&c.machine);
    let mut disk = c.disk;
    let mut notes: Vec<String> = Vec::new();
    if no_acpi {
        if acpi.starts_with("yes") {
            errs.push("Linux is in ACPI mode on a machine without ACPI".into());
        }
    } else if !acpi.starts_with("yes") {
        errs.push("Linux is not in ACPI mode (/sys/firmware/acpi/tables missing)".into());
    } else {
        let have: Vec<&str> = acpi
            .split_once("tables=")
            .map(|(_, t)| t.split_whitespace().collect())
            .unwrap_or_default();
        let missing: Vec<&&str> = required.iter().filter(|t| !have.contains(t)).collect();
        if !missing.is_empty() {
            errs.push(format!("ACPI tables missing: {missing:?} (have {have:?})"));
        }
    }
    if c.arch == Arch::Aarch64 {
        // ACPI mode without a full DT: Linux unflattens no DT in ACPI mode,
        // and a stub DT may only hold /chosen.
        let dt = marker(lines, "devicetree=").unwrap_or("?");
        let extra: Vec<&str> = dt
            .split_whitespace()
            .filter(|n| {
                !matches!(
                    *n,
                    "none" | "chosen" | "name" | "#address-cells" | "#size-cells"
                )
            })
            .collect();
        if !extra.is_empty() {
            errs.push(format!(
                "kernel used a full device tree (/proc/device-tree has {extra:?})"
            ));
        }
        for bad in ["acpi=", "console="] {
            if cmdline.split_whitespace().any(|w| w.starts_with(bad)) {
                errs.push(format!("kernel command line has `{bad}`: {cmdline}"));
            }
        }
    }
    // Kernel log.
    let dmesg = section(lines, "HOTSTUB-DMESG-BEGIN", "HOTSTUB-DMESG-END");
    match dmesg {
        None => errs.push("no kernel log dump".into()),
        Some(d) => {
            let d = if c.unenforced_policy && !present_only_when_added(&kernel_version) {
                strip_unregistered_cpu_splats(&d)
            } else {
                d
            };
            let d = if no_acpi {
                super::noacpi::strip_no_rsdp(d)
            } else {
                d
            };
            let bad = bad_dmesg_lines(&d, c.arch);
            if !bad.is_empty() {
                errs.push(format!("kernel log: {}", bad.join(" | ")));
            }
            if no_acpi {
                let config = match c.kernel {
                    KernelSel::Generic => crate::assets::generic_kernel(c.arch).map(|k| k.config),
                    _ => env.guests[&(c.arch.name(), c.flavor)]
                        .as_ref()
                        .map(|g| g.kernel.image.with_file_name("config"))
                        .map_err(|e| e.to_string()),
                };
                let what = super::noacpi::check(c, config.ok(), lines, &d, &mut errs);
                disk &= what.disk;
                notes.push(what.note);
            }
            if c.kvm && !kvm_initialised(&d) {
                let kvm: Vec<&String> = d.iter().filter(|l| l.contains("kvm")).collect();
                errs.push(format!(
                    "KVM not initialised in the guest (kvm lines: {kvm:?})"
                ));
            }
        }
    }
    // Tables through iasl.
    let tdir = log.with_extension("").join("tables");
    match check_tables(lines, &tdir) {
        Ok(0) if !no_acpi => errs.push("no ACPI table dumped".into()),
        Ok(n) if no_acpi && n > 0 => errs.push(format!("{n} ACPI tables without ACPI")),
        Ok(_) => {}
        Err(e) => errs.push(e),
    }
    // Booted from a disk: with its entry's command line and the fw_cfg
    // file's keys appended; with -kernel, neither.
    if let Some((image, _)) = c.boot_disk {
        let layout = marker(lines, "disk_layout=");
        let fwcfg = has_word(&cmdline, super::runner::FWCFG_CMDLINE_MARK);
        if c.kernel == KernelSel::None {
            if layout != Some(image.name()) {
                errs.push(format!(
                    "booted without the {} disk's command line (layout {layout:?})",
                    image.name()
                ));
            }
            if !fwcfg {
                errs.push("opt/org.hotstub/cmdline did not reach /proc/cmdline".into());
            }
        } else if layout.is_some() || fwcfg {
            errs.push("-kernel given, yet the disk's command line was used".into());
        }
    }
    // Disk.
    if disk {
        match marker(lines, "disk md5=") {
            None => errs.push("guest did not read the virtio disk".into()),
            Some(s) => {
                let got = s.split_whitespace().next().unwrap_or("");
                if got != env.disk_md5 {
                    errs.push(format!("virtio disk md5 {got} != host {}", env.disk_md5));
                }
            }
        }
    }
    if errs.is_empty() {
        notes.insert(0, mem_note);
        notes.retain(|n| !n.is_empty());
        Ok(notes.join(", "))
    } else {
        Err(errs.join("; "))
    }
}

/// Decodes every dumped table, verifies length and checksum, writes
/// NAME.dat and runs `iasl -d` on it. Returns the number of tables.
pub(super) fn check_tables(lines: &[String], dir: &Path) -> Result<usize> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).ctx("mkdir tables dir")?;
    let mut errs = Vec::new();
    let dumps = table_dumps(lines);
    for t in &dumps {
        let name = &t.name;
        let Some(bytes) = &t.bytes else {
            errs.push(format!("{name}: garbled hex dump"));
            continue;
        };
        if bytes.len() != t.size {
            errs.push(format!(
                "{name}: dump has {} bytes, sysfs said {}",
                bytes.len(),
                t.size
            ));
            continue;
        }
        if let Err(e) = check_table_bytes(name, bytes) {
            errs.push(e);
        }
        let f = dir.join(format!("{name}.dat"));
        std::fs::write(&f, bytes).ctx("write table")?;
        if let Err(e) = iasl(&f) {
            errs.push(e);
        }
    }
    if errs.is_empty() {
        Ok(dumps.len())
    } else {
        Err(errs.join("; "))
    }
}

/// Header sanity: signature matches, length matches, checksum (all tables
/// but FACS, which has none) sums to zero (ACPI 6.5, 5.2.6 and 5.2.10).
fn check_table_bytes(name: &str, b: &[u8]) -> Result<()> {
    // sysfs names repeated tables SSDT1, SSDT2, ...: the signature is the
    // first four characters.
    let sig = name.get(..4).unwrap_or(name);
    if b.len() < 8 || &b[..4] != sig.as_bytes() {
        return Err(format!(
            "{name}: signature {:?} does not match",
            String::from_utf8_lossy(&b[..4.min(b.len())])
        ));
    }
    let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if len != b.len() {
        return Err(format!("{name}: header length {len} != {} bytes", b.len()));
    }
    if sig != "FACS" {
        let sum = b.iter().fold(0u8, |a, x| a.wrapping_add(*x));
        if sum != 0 {
            return Err(format!(
                "{name}: checksum does not sum to zero ({sum:#04x})"
            ));
        }
    }
    Ok(())
}

fn iasl(f: &Path) -> Result<()> {
    let out = Command::new("iasl")
        .arg("-d")
        .arg(f.file_name().unwrap())
        .current_dir(f.parent().unwrap())
        .output()
        .ctx("cannot run iasl (install acpica-tools)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(f.with_extension("iasl.txt"), &text).ctx("write iasl log")?;
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
    if !out.status.success() || !errors.is_empty() {
        return Err(format!(
            "iasl -d {} failed ({}): {}",
            f.file_name().unwrap().to_string_lossy(),
            out.status,
            errors.join(" | ")
        ));
    }
    Ok(())
}

/// Whether a QEMU x86 machine name is an i440FX one: `pc` (QEMU's
/// default) and its versioned types `pc-i440fx-*` (`pc-q35-*` are q35).
pub(super) fn i440fx(machine: &str) -> bool {
    let name = machine.split(',').next().unwrap_or("");
    name == "pc" || name.starts_with("pc-i440fx")
}

/// A machine started without ACPI (`-M microvm,acpi=off`).
fn no_acpi(machine: &str) -> bool {
    machine.split(',').any(|o| o == "acpi=off")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn memtotal_tolerance_catches_lost_high_ram() {
        // Measured MemTotal values (see min_memtotal_kib) pass...
        assert!(463 * 1024 >= min_memtotal_kib(512));
        assert!(3921 * 1024 >= min_memtotal_kib(4096));
        assert!(4923 * 1024 >= min_memtotal_kib(5120));
        // ...losing the 2 GiB above 4 GiB does not.
        assert!(2048 * 1024 < min_memtotal_kib(4096));
        assert!(3072 * 1024 < min_memtotal_kib(5120));
    }

    #[test]
    fn splats_are_whole_words() {
        let bad = |l: &str| !bad_dmesg_lines(&[l.to_string()], Arch::X86_64).is_empty();
        assert!(bad("[    1.0] WARNING: CPU: 0 PID: 1 at kernel/foo.c:12"));
        assert!(bad("[    1.0] BUG: kernel NULL pointer dereference"));
        assert!(bad("[    1.0] Oops: 0000 [#1] SMP"));
        assert!(bad("[    1.0] Internal error: Oops: 96000004"));
        assert!(bad("[    1.0] Kernel panic - not syncing: VFS"));
        assert!(bad("[    1.0] Call trace:"));
        assert!(!bad("[    0.0] Calibrating delay loop (skipped), value calculated using timer frequency.. loops_per_jiffy"));
        assert!(!bad("[    0.0] Oopsie_count=0 DEBUG: fine"));
        assert!(!bad("[    0.0] CONFIG_BUG:y xBUG: no"));
    }

    #[test]
    fn only_the_unregistered_cpu_reports_are_dropped() {
        let log: Vec<String> = [
            "[    1.52] WARNING: CPU: 3 PID: 1 at fs/sysfs/group.c:128 internal_create_group+0x3b8/0x4a8",
            "[    1.53] Call trace:",
            "[    1.54]  internal_create_group+0x3b8/0x4a8",
            "[    1.54]  topology_add_dev+0x24/0x38",
            "[    1.54] ---[ end trace 0000000000000000 ]---",
            "[    1.55] sysfs: cannot create duplicate filename '/devices/cache'",
            "[    1.55] Call trace:",
            "[    1.55]  sysfs_warn_dup+0x6c/0x90",
            "[    1.55]  cacheinfo_cpu_online+0xc4/0x318",
            "[    1.56] WARNING: CPU: 0 PID: 1 at drivers/foo.c:1 foo+0x0/0x8",
            "[    1.57] Call trace:",
            "[    1.57]  foo+0x0/0x8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let left = strip_unregistered_cpu_splats(&log);
        let bad = bad_dmesg_lines(&left, Arch::Aarch64);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("drivers/foo.c"));
        assert!(bad[1].contains("Call trace:"));
    }

    #[test]
    fn kernel_rules() {
        assert!(!present_only_when_added("6.12.57+deb12-cloud-arm64"));
        assert!(present_only_when_added("7.2.13+deb14-cloud-arm64"));
        assert!(!present_only_when_added(""));
        assert!(kvm_initialised(&[
            "[    1.2] kvm [1]: VHE mode initialized successfully".into()
        ]));
        assert!(kvm_initialised(&[
            "kvm [1]: Hyp nVHE mode initialized successfully".into()
        ]));
        assert!(!kvm_initialised(
            &["kvm [1]: HYP mode not available".into()]
        ));
    }

    #[test]
    fn bios_information_from_the_table_hex() {
        // Type 1 first (no strings), then type 0 with three strings.
        let mut t = vec![1u8, 4, 0, 1, 0, 0];
        let mut t0 = vec![0u8; 0x18];
        t0[1] = 0x18;
        (t0[4], t0[5], t0[8]) = (1, 2, 3);
        t.extend(t0);
        t.extend(b"Hotstub\x000.1.0\x0012/07/2026\0\0");
        let hex: String = t.iter().map(|b| format!("{b:02x}")).collect();
        let got = bios_information(&hex).unwrap();
        assert_eq!(got, ("Hotstub".into(), "0.1.0".into(), "12/07/2026".into()));
        assert_eq!(bios_information("none"), None);
        assert_eq!(bios_information(&hex[..40]), None, "cut short");
    }

    #[test]
    fn efi_error_pattern() {
        assert!(is_efi_error("[ 0.0] efi: Failed to map: error -22"));
        assert!(is_efi_error("efi: memory map fail"));
        assert!(!is_efi_error("[ 0.0] efi: EFI v2.7 by EDK II"));
        assert!(!is_efi_error("error: not efi related"));
    }

    #[test]
    fn table_header_checks() {
        let mut t = b"MCFG\x10\0\0\0abcdefgh".to_vec();
        let sum = t.iter().fold(0u8, |a, x| a.wrapping_add(*x));
        t[9] = t[9].wrapping_sub(sum);
        assert!(check_table_bytes("MCFG", &t).is_ok());
        t[12] ^= 1;
        assert!(check_table_bytes("MCFG", &t)
            .unwrap_err()
            .contains("checksum"));
        assert!(check_table_bytes("APIC", &t)
            .unwrap_err()
            .contains("signature"));
        let mut s = t.clone();
        s[..4].copy_from_slice(b"SSDT");
        s[12] ^= 1;
        let sum = s.iter().fold(0u8, |a, x| a.wrapping_add(*x));
        s[9] = s[9].wrapping_sub(sum);
        assert!(check_table_bytes("SSDT2", &s).is_ok());
    }
}
