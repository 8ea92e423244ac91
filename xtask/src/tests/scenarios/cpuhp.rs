//! Runtime arm64 vCPU hotplug at EL3 through the firmware's control
//! channel (`-smp 4`, `enabled-cpus=0-1`, the init onlining every vCPU that
//! appears): enable and disable vCPUs, bad input on the channel, and many
//! cycles of one vCPU.

use super::super::case::Case;
use super::super::checks::present_only_when_added;
use super::STEP;
use crate::control::Control;
use crate::qemu::Vm;
use crate::util::{step, Result};
use std::time::{Duration, Instant};

pub(super) const ANSWER: Duration = Duration::from_secs(10);

pub(super) fn connect(vm: &mut Vm) -> Result<Control> {
    if let Some(c) = vm.control_client.take() {
        return Ok(c);
    }
    let path = vm
        .control
        .clone()
        .ok_or("the case has no control channel")?;
    Control::connect(&path, Duration::from_secs(10))
}

/// `cmd` must be answered `ok` and end with `event: <cmd> done`; returns
/// how long that took.
fn change(ctl: &mut Control, cmd: &str) -> Result<Duration> {
    let t = Instant::now();
    ctl.change(cmd, ANSWER, STEP)?;
    Ok(t.elapsed())
}

/// [`change`], saying how long it took.
pub(super) fn change_say(ctl: &mut Control, cmd: &str) -> Result<()> {
    let d = change(ctl, cmd)?;
    step(format!("{cmd}: done in {:.2}s", d.as_secs_f64()));
    Ok(())
}

pub(super) fn expect_status(ctl: &mut Control, enabled: &str, online: &str) -> Result<()> {
    expect_status_of(ctl, "0-3", enabled, online)
}

fn expect_status_of(ctl: &mut Control, possible: &str, enabled: &str, online: &str) -> Result<()> {
    let want = format!("ok possible={possible} enabled={enabled} online={online}");
    let a = ctl.command("status", ANSWER)?;
    if a != want {
        return Err(format!("status: `{a}`, expected `{want}`"));
    }
    Ok(())
}

/// Linux's sysfs must agree: online and enabled as given, present the
/// whole possible set on 6.x and what was hot-added on 7.x (the present
/// rule of the fresh-machine issue). Linux changes them one after the other
/// (offline, then eject), so this waits for the init's watcher to show all.
pub(super) fn expect_guest(vm: &mut Vm, set: &str, added: bool) -> Result<()> {
    expect_guest_of(vm, "0-3", set, added)
}

fn expect_guest_of(vm: &mut Vm, possible: &str, set: &str, added: bool) -> Result<()> {
    let present = if added { set } else { possible };
    let want = [
        format!(" present={present} "),
        format!(" online={set} "),
        format!(" enabled={set} "),
    ];
    let what = format!("cpus present={present} online={set} enabled={set}");
    vm.wait_line(&what, STEP, move |l| {
        l.starts_with("HOTSTUB: cpus ") && want.iter().all(|w| format!("{l} ").contains(w))
    })?;
    Ok(())
}

/// Whether the guest kernel follows the present-when-added rule (asked
/// before any change: a command's output is read past the watcher's lines).
pub(super) fn present_when_added(vm: &mut Vm) -> Result<bool> {
    let (_, uname) = vm.guest_cmd("uname -r", STEP)?;
    Ok(present_only_when_added(
        uname.first().map_or("", String::as_str),
    ))
}

pub(in super::super) fn scenario_cpu_hotplug(vm: &mut Vm, _c: &Case) -> Result<()> {
    let added = present_when_added(vm)?;
    let mut ctl = connect(vm)?;
    expect_status(&mut ctl, "0-1", "0-1")?;
    change_say(&mut ctl, "enable 2")?;
    expect_guest(vm, "0-2", added)?;
    expect_status(&mut ctl, "0-2", "0-2")?;
    change_say(&mut ctl, "enable 3")?;
    expect_guest(vm, "0-3", added)?;
    expect_status(&mut ctl, "0-3", "0-3")?;
    // Enabling an enabled vCPU changes nothing.
    let a = ctl.command("enable 3", ANSWER)?;
    if a != "ok possible=0-3 enabled=0-3 online=0-3" {
        return Err(format!("`enable 3` again answered `{a}`"));
    }
    change_say(&mut ctl, "disable 3")?;
    expect_guest(vm, "0-2", added)?;
    expect_status(&mut ctl, "0-2", "0-2")?;
    let (rc, out) = vm.guest_cmd("echo 1 > /sys/devices/system/cpu/cpu3/online", STEP)?;
    if rc == 0 {
        return Err("cpu3 came online after `disable 3`".into());
    }
    step(format!(
        "cpu3 online after disable: refused ({})",
        out.join(" ")
    ));

    // Bad input: one error line each, nothing changes, the channel and the
    // guest keep working.
    let long = format!("enable {}\n", "2,".repeat(100));
    let bad: [(&[u8], &str); 6] = [
        (b"\xff\xfe\x01zz\n", "error: byte 0xff"),
        (long.as_bytes(), "error: line longer than"),
        (b"frobnicate 2\n", "error: unknown command 'frobnicate'"),
        (b"enable 7\n", "error: CPU list: CPU 7 does not exist"),
        (b"disable 1-9\n", "error: CPU list: CPU 9 does not exist"),
        (b"disable 0\n", "error: cpu 0 is the boot vCPU"),
    ];
    for (input, want) in bad {
        ctl.send_raw(input)?;
        let a = ctl.answer(ANSWER)?;
        if !a.starts_with(want) {
            return Err(format!(
                "{:?} answered `{a}`, expected `{want}...`",
                String::from_utf8_lossy(input)
            ));
        }
    }
    expect_status(&mut ctl, "0-2", "0-2")?;
    let (rc, _) = vm.guest_cmd("cat /sys/devices/system/cpu/online", STEP)?;
    if rc != 0 {
        return Err("the guest stopped answering after bad channel input".into());
    }
    if !ctl.events.is_empty() {
        return Err(format!("unexpected channel lines: {:?}", ctl.events));
    }
    Ok(())
}

/// Waits until the firmware sees `online` (PSCI: the init onlined it).
pub(super) fn wait_online(ctl: &mut Control, enabled: &str, online: &str) -> Result<()> {
    let t = Instant::now();
    loop {
        match expect_status(ctl, enabled, online) {
            Ok(()) => return Ok(()),
            Err(e) if t.elapsed() > STEP => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

pub(in super::super) fn scenario_cpu_hotplug_cycles(vm: &mut Vm, _c: &Case) -> Result<()> {
    let added = present_when_added(vm)?;
    let mut ctl = connect(vm)?;
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 1..=100 {
        let ctx = |e: String| format!("cycle {i}: {e}");
        let mut took = change(&mut ctl, "enable 2").map_err(ctx)?;
        // The case runs without the init's watcher (it would miss a vCPU
        // that comes and goes between two of its looks): online it here.
        let (rc, out) = vm.guest_cmd("echo 1 > /sys/devices/system/cpu/cpu2/online", STEP)?;
        if rc != 0 {
            return Err(ctx(format!("cpu2 does not come online: {}", out.join(" "))));
        }
        wait_online(&mut ctl, "0-2", "0-2").map_err(ctx)?;
        took += change(&mut ctl, "disable 2").map_err(ctx)?;
        slowest = slowest.max(took);
        expect_status(&mut ctl, "0-1", "0-1").map_err(ctx)?;
    }
    step(format!(
        "100 enable/disable cycles in {:.0}s (slowest cycle's changes {:.2}s)",
        t.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    ));
    expect_status(&mut ctl, "0-1", "0-1")?;
    // The watcher's latest line.
    let (_, out) = vm.guest_cmd(
        "cd /sys/devices/system/cpu && echo $(cat present) $(cat online) $(cat enabled)",
        STEP,
    )?;
    let want = format!("{} 0-1 0-1", if added { "0-1" } else { "0-3" });
    if out.first().map(String::as_str) != Some(want.as_str()) {
        return Err(format!(
            "sysfs present/online/enabled {out:?}, expected {want}"
        ));
    }
    Ok(())
}

/// The issue's dead clients, each followed at once by a client that must
/// get the right answer: one that sent garbage, an overlong line, bad
/// commands and half a line and left without reading, and one killed
/// halfway through a command. A plain client without the resync byte still
/// works after the idle time.
pub(in super::super) fn scenario_channel_resync(vm: &mut Vm, _c: &Case) -> Result<()> {
    let path = vm
        .control
        .clone()
        .ok_or("the case has no control channel")?;
    let status = "ok possible=0-3 enabled=0-1 online=0-1";
    let mut dead = Control::connect_raw(&path, Duration::from_secs(10))?;
    let mut junk = vec![0xff, 0xfe, 0x00, 0x1b, 0x80, b'\n', 0x07];
    junk.extend(std::iter::repeat_n(b'x', 5000));
    junk.extend(b"\nenable 99\ndisable 0\nfrobnicate\n");
    junk.extend(std::iter::repeat_n(b'x', 25));
    dead.send_raw(&junk)?;
    std::thread::sleep(Duration::from_secs(2));
    drop(dead);
    let next = |what: &str| -> Result<()> {
        let t = Instant::now();
        let mut c = Control::connect(&path, Duration::from_secs(10))?;
        let a = c.command("status", ANSWER)?;
        if a != status {
            return Err(format!("{what}: status answered `{a}`"));
        }
        step(format!(
            "{what}: the next client's status answered in {:.2}s",
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    };
    next("after the dead client")?;
    // Killed mid-line: the half command must neither run nor stick.
    for half in ["enable 2", "@9 disable 1", "stat"] {
        let mut k = Control::connect_raw(&path, Duration::from_secs(10))?;
        k.send_raw(half.as_bytes())?;
        drop(k);
        next(&format!("after a client killed in `{half}`"))?;
    }
    // socat-style: no resync byte, no id; the idle time drops the rest.
    let mut k = Control::connect_raw(&path, Duration::from_secs(10))?;
    k.send_raw(b"disable 1")?;
    drop(k);
    std::thread::sleep(Duration::from_millis(1500));
    let mut plain = Control::connect_raw(&path, Duration::from_secs(10))?;
    plain.send_raw(b"status\n")?;
    let a = plain.answer(ANSWER)?;
    if a != status {
        return Err(format!("a plain client after the idle time got `{a}`"));
    }
    // The guest saw nothing of it.
    let (_, out) = vm.guest_cmd("cat /sys/devices/system/cpu/online", STEP)?;
    if out.first().map(String::as_str) != Some("0-1") {
        return Err(format!("online vCPUs after the dead clients: {out:?}"));
    }
    Ok(())
}

/// `-smp 256` with 0-3 enabled: vCPU 200's redistributor lies in QEMU
/// virt's second (high) region. `enable 200` must bring it up in Linux
/// (the init's watcher onlines it), which finds its redistributor there
/// through the MADT's second GICR structure; `disable 200` takes it back.
pub(in super::super) fn scenario_high_redist_hotplug(vm: &mut Vm, _c: &Case) -> Result<()> {
    let added = present_when_added(vm)?;
    let mut ctl = connect(vm)?;
    let all = "0-255";
    expect_status_of(&mut ctl, all, "0-3", "0-3")?;
    change_say(&mut ctl, "enable 200")?;
    expect_guest_of(vm, all, "0-3,200", added)?;
    expect_status_of(&mut ctl, all, "0-3,200", "0-3,200")?;
    let (_, out) = vm.guest_cmd("dmesg | grep 'CPU200: found redistributor'", STEP)?;
    let line = out.join(" ");
    if !line.contains("region 1:") {
        return Err(format!("cpu200's redistributor not in region 1: `{line}`"));
    }
    step(line);
    change_say(&mut ctl, "disable 200")?;
    expect_guest_of(vm, all, "0-3", added)?;
    expect_status_of(&mut ctl, all, "0-3", "0-3")
}
