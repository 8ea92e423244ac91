//! The runtime vCPU policy across resets (issue 19 items 2 and 3): what the
//! host changed over the channel survives a guest reboot and a QMP
//! `system_reset`, a new QEMU process starts from `enabled-cpus`, every
//! boot announces itself on the channel, and a change a reset interrupts
//! gets its `error:` line. `-smp 4`, `enabled-cpus=0-1`, the init's
//! watcher onlining what appears, the control client connected before
//! the vCPUs start (`Case::control_at_start`).

use super::super::case::Case;
use super::cpuhp::{
    change_say, connect, expect_guest, expect_status, present_when_added, wait_online, ANSWER,
};
use super::STEP;
use crate::control::Control;
use crate::qemu::Vm;
use crate::util::{step, Result};
use std::time::Instant;

/// The lines up to and including the next `event: boot ...` (events the
/// client already set aside first).
fn boot_lines(ctl: &mut Control) -> Result<Vec<String>> {
    let mut lines: Vec<String> = ctl.events.drain(..).collect();
    while !lines.iter().any(|l| l.starts_with("event: boot ")) {
        lines.push(ctl.line(STEP).map_err(|e| format!("no boot event: {e}"))?);
    }
    for l in &lines {
        step(format!("channel: {l}"));
    }
    Ok(lines)
}

/// The boot event must be `event: boot possible=0-3 <rest>`.
fn expect_boot_event(lines: &[String], rest: &str) -> Result<()> {
    let want = format!("event: boot possible=0-3 {rest}");
    match lines.iter().find(|l| l.starts_with("event: boot ")) {
        Some(l) if *l == want => Ok(()),
        l => Err(format!("boot event `{l:?}`, expected `{want}`")),
    }
}

/// After a reset: Linux boots again with `set` enabled and online from the
/// start, the firmware's status agrees.
fn expect_rebooted(vm: &mut Vm, ctl: &mut Control, set: &str, added: bool) -> Result<()> {
    vm.wait_prefix("HOTSTUB: init reached", STEP)
        .map_err(|e| format!("no boot after the reset: {e}"))?;
    expect_guest(vm, set, added)?;
    vm.wait_prefix("HOTSTUB: ready", STEP)?;
    wait_online(ctl, set, set)
}

fn guest_reboot(vm: &mut Vm) -> Result<Instant> {
    vm.send_serial("HOTSTUB-CMD reboot reboot -f\n")?;
    Ok(Instant::now())
}

fn system_reset(vm: &mut Vm) -> Result<Instant> {
    vm.qmp
        .as_mut()
        .ok_or("no QMP")?
        .execute("system_reset", None)?;
    Ok(Instant::now())
}

/// The cold start's event, then both kinds of change across both kinds of
/// reset: `disable 1` + `enable 2`, guest `reboot -f` -> 0,2; `enable 1`,
/// `enable 3`, `disable 2`, QMP `system_reset` -> 0-1,3. (Neither set is
/// `enabled-cpus`, so a fallback cannot pass.)
pub(in super::super) fn scenario_policy_across_resets(vm: &mut Vm, _c: &Case) -> Result<()> {
    let added = present_when_added(vm)?;
    let mut ctl = connect(vm)?;
    let lines = boot_lines(&mut ctl)?;
    expect_boot_event(&lines, "enabled=0-1 online=0 policy=enabled-cpus")?;
    expect_status(&mut ctl, "0-1", "0-1")?;

    change_say(&mut ctl, "disable 1")?;
    expect_guest(vm, "0", added)?;
    change_say(&mut ctl, "enable 2")?;
    expect_guest(vm, "0,2", added)?;
    let t = guest_reboot(vm)?;
    let lines = boot_lines(&mut ctl)?;
    expect_boot_event(&lines, "enabled=0,2 online=0 policy=saved")?;
    expect_rebooted(vm, &mut ctl, "0,2", added)?;
    step(format!(
        "guest reboot kept enabled=0,2 (Linux ready {:.1}s after it)",
        t.elapsed().as_secs_f64()
    ));

    change_say(&mut ctl, "enable 1")?;
    change_say(&mut ctl, "enable 3")?;
    expect_guest(vm, "0-3", added)?;
    change_say(&mut ctl, "disable 2")?;
    expect_guest(vm, "0-1,3", added)?;
    let t = system_reset(vm)?;
    let lines = boot_lines(&mut ctl)?;
    expect_boot_event(&lines, "enabled=0-1,3 online=0 policy=saved")?;
    expect_rebooted(vm, &mut ctl, "0-1,3", added)?;
    step(format!(
        "system_reset kept enabled=0-1,3 (Linux ready {:.1}s after it)",
        t.elapsed().as_secs_f64()
    ));
    if let Some(l) = lines.iter().find(|l| !l.starts_with("event: boot ")) {
        return Err(format!("unexpected channel line at the resets: `{l}`"));
    }
    Ok(())
}

/// QMP `system_reset` right after `disable 3` was answered `ok`, before
/// Linux can finish: the next boot answers the waiting command with its
/// `error:` line and reports 3 still enabled, and Linux has it online. When
/// Linux wins the race (`done` before the reset), the attempt is repeated.
pub(in super::super) fn scenario_reset_mid_change(vm: &mut Vm, _c: &Case) -> Result<()> {
    let added = present_when_added(vm)?;
    let mut ctl = connect(vm)?;
    let lines = boot_lines(&mut ctl)?;
    expect_boot_event(&lines, "enabled=0-1 online=0 policy=enabled-cpus")?;
    for attempt in 1..=3 {
        change_say(&mut ctl, "enable 3")?;
        expect_guest(vm, "0-1,3", added)?;
        wait_online(&mut ctl, "0-1,3", "0-1,3")?;
        let a = ctl.command("disable 3", ANSWER)?;
        if a != "ok possible=0-3 enabled=0-1,3 online=0-1,3 pending=disable:3" {
            return Err(format!("`disable 3` answered `{a}`"));
        }
        system_reset(vm)?;
        let id = ctl.last_id().to_string();
        let lines = boot_lines(&mut ctl)?;
        if lines.contains(&format!("@{id} event: disable 3 done")) {
            step(format!(
                "attempt {attempt}: Linux finished before the reset"
            ));
            expect_boot_event(&lines, "enabled=0-1 online=0 policy=saved")?;
            expect_rebooted(vm, &mut ctl, "0-1", added)?;
            continue;
        }
        let want = format!("@{id} error: disable 3: interrupted by a reset; 3 stays enabled");
        if lines.first() != Some(&want) {
            return Err(format!(
                "lines at the reset {lines:?}, expected `{want}` first"
            ));
        }
        expect_boot_event(&lines, "enabled=0-1,3 online=0 policy=saved")?;
        expect_rebooted(vm, &mut ctl, "0-1,3", added)?;
        step(format!("attempt {attempt}: `{want}`"));
        // Nothing is left in flight: the next change runs.
        change_say(&mut ctl, "disable 3")?;
        expect_guest(vm, "0-1", added)?;
        return expect_status(&mut ctl, "0-1", "0-1");
    }
    Err("Linux finished `disable 3` before every reset".into())
}
