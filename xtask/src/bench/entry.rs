//! The guest instructions from reset to the kernel's first one, counted
//! by a TCG plugin (x86 for every contender; arm64 Hotstub's cold and warm
//! boots in `warm`).

use crate::qemu::{Vm, VmConfig};
use crate::util::{root, step, target_dir, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Builds the TCG plugin that counts guest instructions to the kernel's
/// first one (xtask/plugins/entry_insns.c says how).
pub(super) fn entry_plugin() -> Result<PathBuf> {
    crate::host::ensure(&[], &["gcc"])?;
    let out = target_dir().join("bench-plugins").join("entry_insns.so");
    std::fs::create_dir_all(out.parent().unwrap()).ctx("mkdir target/bench-plugins")?;
    step("building the instruction-count plugin (xtask/plugins/entry_insns.c)");
    crate::util::run(
        Command::new("gcc")
            .args([
                "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
            ])
            .arg(&out)
            .arg(root().join("xtask/plugins/entry_insns.c")),
    )?;
    Ok(out)
}

/// Where x86 Linux gets control: a BIOS-style firmware (SeaBIOS, qboot)
/// jumps to the real-mode setup code at offset 0x200 (boot.rst "Running
/// the Kernel"), which QEMU's -kernel puts at 0x10000 for boot protocol
/// 2.02 and later (hw/i386/x86-common.c x86_load_linux, `real_addr`);
/// Hotstub jumps to the 64-bit entry, 0x200 into the protected-mode
/// kernel, which it places at the header's pref_address (boot.rst, field
/// at 0x258).
pub(super) fn x86_entries(bzimage: &Path) -> Result<[u64; 2]> {
    let head = crate::util::read_head(bzimage, 0x260)?;
    let pref = head
        .get(0x258..0x260)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .ok_or(format!("{} is too short for a bzImage", bzimage.display()))?;
    Ok([0x10200, pref + 0x200])
}

/// One boot with the plugin: the instructions to the kernel's first one.
pub(super) fn count_entry(
    cfg: &VmConfig,
    plugin: &Path,
    entries: [u64; 2],
    log: &Path,
) -> Result<u64> {
    let args = format!("addr={:#x},addr={:#x}", entries[0], entries[1]);
    count_with(cfg, plugin, &args, log, Duration::from_secs(120)).map(|r| r.0)
}

/// One boot with the plugin and its arguments `args` (entry_insns.c says
/// which): the count it prints, and the console's lines.
pub(super) fn count_with(
    cfg: &VmConfig,
    plugin: &Path,
    args: &str,
    log: &Path,
    timeout: Duration,
) -> Result<(u64, Vec<String>)> {
    let mut cfg = cfg.clone();
    cfg.extra.extend([
        "-plugin".to_string(),
        format!("{},{args}", plugin.display()),
    ]);
    let mut vm = Vm::spawn(&cfg, log, false)?;
    let line = vm.wait_prefix("hotstub-entry-insns ", timeout)?;
    vm.kill();
    let n = line
        .trim()
        .strip_prefix("hotstub-entry-insns ")
        .and_then(|n| n.parse().ok())
        .ok_or(format!("cannot read the plugin's line `{line}`"))?;
    Ok((n, vm.lines()))
}
