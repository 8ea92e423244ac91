//! The scenarios: what runs after a case has booted and passed the standard
//! checks, driving QMP and the guest's command channel (powerdown through
//! acpid, x86 vCPU hotplug, the arm64 vCPU policy and cpu1 online cycles).

use super::case::Case;
use super::protocol::fields;
use super::runner::SPARE_DRIVE;
use crate::json::Json;
use crate::qemu::{obj, Vm};
use crate::util::{md5_file, step, Result};
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(60);

/// Waits for the guest's CPU watcher to report `key=want`.
fn wait_cpus(vm: &mut Vm, key: &str, want: &str) -> Result<String> {
    let pat = format!(" {key}={want} ");
    vm.wait_line(&format!("cpus {key}={want}"), STEP, move |l| {
        l.starts_with("HOTSTUB: cpus ") && format!("{l} ").contains(&pat)
    })
}

/// arm64 power button: QMP system_powerdown -> GED -> power button -> acpid
/// -> poweroff.
pub(super) fn scenario_powerdown(vm: &mut Vm, _c: &Case) -> Result<()> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute("system_powerdown", None)?;
    vm.wait_prefix("HOTSTUB: acpid power button", Duration::from_secs(30))
        .map_err(|e| format!("power button event did not reach acpid: {e}"))?;
    match vm.wait_exit(Duration::from_secs(30))? {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!("QEMU exit status {s}")),
        None => Err("acpid ran poweroff but QEMU did not exit".into()),
    }
}

/// QMP `query-hotpluggable-cpus` entries not plugged yet, in id order.
fn unplugged_cpus(vm: &mut Vm) -> Result<Vec<Json>> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let r = q.execute("query-hotpluggable-cpus", None)?;
    let mut v: Vec<Json> = r
        .as_arr()
        .iter()
        .filter(|e| e.get("qom-path").is_none())
        .cloned()
        .collect();
    let key = |e: &Json| {
        let p = e.get("props");
        ["socket-id", "die-id", "core-id", "thread-id"]
            .map(|k| p.and_then(|p| p.get(k)).and_then(Json::as_i64).unwrap_or(0))
    };
    v.sort_by_key(key);
    Ok(v)
}

fn device_add_cpu(vm: &mut Vm, slot: &Json, id: &str) -> Result<()> {
    let driver = slot
        .get("type")
        .and_then(Json::as_str)
        .ok_or("slot without type")?;
    let mut args = vec![
        ("driver".to_string(), Json::Str(driver.into())),
        ("id".to_string(), Json::Str(id.into())),
    ];
    for (k, v) in slot.get("props").map(|p| p.as_obj()).unwrap_or(&[]) {
        args.push((k.clone(), v.clone()));
    }
    vm.qmp
        .as_mut()
        .ok_or("no QMP")?
        .execute("device_add", Some(Json::Obj(args)))?;
    Ok(())
}

/// Whether QEMU still has device `id` in a hotpluggable vCPU slot.
fn cpu_plugged(vm: &mut Vm, id: &str) -> Result<bool> {
    let path = format!("/machine/peripheral/{id}");
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let r = q.execute("query-hotpluggable-cpus", None)?;
    Ok(r.as_arr()
        .iter()
        .any(|c| c.get("qom-path").and_then(Json::as_str) == Some(path.as_str())))
}

/// `device_del` of a vCPU and proof that QEMU deleted it: a DEVICE_DELETED
/// event for the vCPU or for a device inside it (QEMU 10 under TCG reports
/// the vCPU's own deletion late, but its local APIC child's as soon as the
/// vCPU is unrealized), and the slot showing up empty in
/// `query-hotpluggable-cpus`.
fn device_del(vm: &mut Vm, id: &str) -> Result<()> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute("device_del", Some(obj(&[("id", Json::Str(id.into()))])))?;
    let idc = id.to_string();
    let prefix = format!("/machine/peripheral/{id}/");
    let r = q.wait_event(&format!("DEVICE_DELETED {id}"), STEP, move |e| {
        let d = e.get("data");
        e.get("event").and_then(Json::as_str) == Some("DEVICE_DELETED")
            && (d.and_then(|d| d.get("device")).and_then(Json::as_str) == Some(idc.as_str())
                || d.and_then(|d| d.get("path"))
                    .and_then(Json::as_str)
                    .is_some_and(|p| p.starts_with(&prefix)))
    });
    let plugged = cpu_plugged(vm, id).unwrap_or(true);
    match (r, plugged) {
        (Ok(_), false) => Ok(()),
        (Ok(ev), true) => Err(format!("QEMU sent {ev} but still lists {id} as plugged")),
        (Err(e), true) => Err(format!(
            "{e}; QEMU still has the vCPU plugged (the guest did not eject it through _EJ0)"
        )),
        (Err(e), false) => Err(format!(
            "{e}; QEMU no longer lists the vCPU, yet sent no event"
        )),
    }
}

fn count_cpus_fast(vm: &mut Vm) -> Result<usize> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    Ok(q.execute("query-cpus-fast", None)?.as_arr().len())
}

/// x86 vCPU hotplug: plug vCPUs 1..3 (the init onlines them), then unplug
/// vCPU 3 (the add/remove cycles are `scenario_x86_hotplug_cycles`).
pub(super) fn scenario_x86_hotplug(vm: &mut Vm, _c: &Case) -> Result<()> {
    let slots = unplugged_cpus(vm)?;
    if slots.len() != 3 {
        return Err(format!(
            "QEMU offers {} unplugged vCPU slots, expected 3",
            slots.len()
        ));
    }
    for (i, s) in slots.iter().enumerate() {
        let n = i + 1;
        device_add_cpu(vm, s, &format!("cpu{n}"))?;
        wait_cpus(vm, "online", &format!("0-{n}"))
            .map_err(|e| format!("after device_add cpu{n}: {e}"))?;
    }
    expect_cpus_fast(vm, 4, "after plugging cpu1-3")?;
    device_del(vm, "cpu3")?;
    wait_cpus(vm, "online", "0-2").map_err(|e| format!("after device_del cpu3: {e}"))?;
    wait_cpus_field(vm, "present", "0-2")?;
    expect_cpus_fast(vm, 3, "after unplugging cpu3")
}

fn expect_cpus_fast(vm: &mut Vm, want: usize, when: &str) -> Result<()> {
    let n = count_cpus_fast(vm)?;
    if n != want {
        return Err(format!(
            "{when}: query-cpus-fast lists {n} vCPUs, expected {want}"
        ));
    }
    Ok(())
}

/// The last `cpus` line must show `key=want` (it is printed on change).
fn wait_cpus_field(vm: &mut Vm, key: &str, want: &str) -> Result<()> {
    let last = vm
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.starts_with("HOTSTUB: cpus "))
        .unwrap_or_default();
    if fields(&last).get(key).map(String::as_str) != Some(want) {
        return Err(format!("guest reports `{last}`, expected {key}={want}"));
    }
    Ok(())
}

/// x86 vCPU hotplug cycles: ten add/remove cycles of one vCPU.
pub(super) fn scenario_x86_hotplug_cycles(vm: &mut Vm, _c: &Case) -> Result<()> {
    let slots = unplugged_cpus(vm)?;
    let slot = slots.first().cloned().ok_or("QEMU offers no vCPU slot")?;
    for cycle in 1..=10 {
        device_add_cpu(vm, &slot, "cpu1").map_err(|e| format!("cycle {cycle}: {e}"))?;
        wait_cpus(vm, "online", "0-1")
            .map_err(|e| format!("cycle {cycle} after device_add: {e}"))?;
        expect_cpus_fast(vm, 2, &format!("cycle {cycle} after device_add"))?;
        device_del(vm, "cpu1").map_err(|e| format!("cycle {cycle}: {e}"))?;
        wait_cpus(vm, "online", "0").map_err(|e| format!("cycle {cycle} after device_del: {e}"))?;
        expect_cpus_fast(vm, 1, &format!("cycle {cycle} after device_del"))?;
    }
    Ok(())
}

/// arm64 vCPU policy with enabled-cpus=0-1: cpu2 cannot be onlined (PSCI
/// DENIED), cleanly and quickly; cpu1 cycles work.
pub(super) fn scenario_arm_disabled_cpus(vm: &mut Vm, _c: &Case) -> Result<()> {
    let (_, before) = vm.guest_cmd("dmesg", STEP)?;
    let t = Instant::now();
    let (rc, out) = vm.guest_cmd(
        "echo 1 > /sys/devices/system/cpu/cpu2/online",
        Duration::from_secs(30),
    )?;
    if rc == 0 {
        return Err("writing 1 to cpu2/online succeeded for a disabled vCPU".into());
    }
    step(format!(
        "cpu2 online refused in {:.1}s: {}",
        t.elapsed().as_secs_f64(),
        out.join(" ")
    ));
    // "Cleanly": the refusal leaves no complaint in the kernel log
    // (Linux 6.11+ treats PSCI DENIED as a quiet "not now").
    let (_, after) = vm.guest_cmd("dmesg", STEP)?;
    let noisy: Vec<&String> = after
        .iter()
        .skip(before.len())
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            ["error", "fail", "bug", "warning", "timed out", "stuck"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    if !noisy.is_empty() {
        return Err(format!(
            "refusing cpu2 logged: {}",
            noisy
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    let (_, out) = vm.guest_cmd("cat /sys/devices/system/cpu/online", STEP)?;
    if out.first().map(String::as_str) != Some("0-1") {
        return Err(format!("online after refused cpu2: {out:?}"));
    }
    cpu1_cycles_expect(vm, "0-1")
}

fn cpu1_cycles_expect(vm: &mut Vm, want: &str) -> Result<()> {
    for i in 0..10 {
        for v in ["0", "1"] {
            let (rc, out) = vm.guest_cmd(
                &format!("echo {v} > /sys/devices/system/cpu/cpu1/online"),
                STEP,
            )?;
            if rc != 0 {
                return Err(format!(
                    "cycle {i}: writing {v} to cpu1/online failed: {}",
                    out.join(" ")
                ));
            }
        }
    }
    let (_, out) = vm.guest_cmd("cat /sys/devices/system/cpu/online", STEP)?;
    if out.first().map(String::as_str) != Some(want) {
        return Err(format!(
            "online CPUs after ten cpu1 cycles: {out:?}, expected {want}"
        ));
    }
    Ok(())
}

/// arm64 without a vCPU policy: all online (checked at boot), cpu1 cycles
/// work; with EL2 handed to Linux its KVM device exists.
pub(super) fn scenario_arm_cpu1_cycles(vm: &mut Vm, c: &Case) -> Result<()> {
    if c.kvm {
        let (rc, out) = vm.guest_cmd("test -c /dev/kvm && ls -l /dev/kvm", STEP)?;
        if rc != 0 {
            return Err(format!("no /dev/kvm in the guest: {}", out.join(" ")));
        }
    }
    cpu1_cycles_expect(vm, "0-3")
}

/// The guest's MemTotal in KiB.
fn memtotal_kib(vm: &mut Vm) -> Result<u64> {
    let (_, out) = vm.guest_cmd("awk '/^MemTotal:/ {print $2}' /proc/meminfo", STEP)?;
    out.first()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("no MemTotal from the guest: {out:?}"))
}

/// Polls MemTotal until `ok` holds (the kernel adds and removes memory
/// blocks asynchronously to the ACPI event).
fn wait_memtotal(vm: &mut Vm, what: &str, ok: impl Fn(u64) -> bool) -> Result<u64> {
    let t = Instant::now();
    loop {
        let kb = memtotal_kib(vm)?;
        if ok(kb) {
            return Ok(kb);
        }
        if t.elapsed() > STEP {
            return Err(format!("MemTotal {} MiB: {what}", kb / 1024));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// DIMM hotplug: a 1 GiB pc-dimm is plugged (MemTotal grows by it, the
/// guest's struct pages for it aside), then unplugged (QEMU emits
/// DEVICE_DELETED once the guest has offlined and ejected it; MemTotal is
/// back where it was).
pub(super) fn scenario_dimm_hotplug(vm: &mut Vm, _c: &Case) -> Result<()> {
    const DIMM_KIB: u64 = 1 << 20;
    // The memory map of 1 GiB (16 MiB of struct pages) may come out of the
    // DIMM or out of boot memory; allow that and a little more.
    const SLACK_KIB: u64 = 32 << 10;
    let before = memtotal_kib(vm)?;
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute(
        "object-add",
        Some(obj(&[
            ("qom-type", Json::Str("memory-backend-ram".into())),
            ("id", Json::Str("mem1".into())),
            ("size", Json::Num((DIMM_KIB * 1024) as f64)),
        ])),
    )?;
    q.execute(
        "device_add",
        Some(obj(&[
            ("driver", Json::Str("pc-dimm".into())),
            ("id", Json::Str("dimm1".into())),
            ("memdev", Json::Str("mem1".into())),
        ])),
    )?;
    let grown = wait_memtotal(vm, "did not grow by the 1 GiB DIMM", |kb| {
        kb + SLACK_KIB >= before + DIMM_KIB
    })?;
    if grown > before + DIMM_KIB {
        return Err(format!(
            "MemTotal grew by {} MiB for a 1 GiB DIMM",
            (grown - before) / 1024
        ));
    }
    step(format!(
        "DIMM plugged: MemTotal {} -> {} MiB",
        before / 1024,
        grown / 1024
    ));
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute(
        "device_del",
        Some(obj(&[("id", Json::Str("dimm1".into()))])),
    )?;
    q.wait_event("DEVICE_DELETED dimm1", STEP, |e| {
        e.get("event").and_then(Json::as_str) == Some("DEVICE_DELETED")
            && e.get("data")
                .and_then(|d| d.get("device"))
                .and_then(Json::as_str)
                == Some("dimm1")
    })
    .map_err(|e| format!("{e} (the guest did not offline and eject the DIMM)"))?;
    let after = wait_memtotal(vm, "did not shrink back after the unplug", |kb| {
        kb <= before + SLACK_KIB
    })?;
    step(format!("DIMM unplugged: MemTotal {} MiB", after / 1024));
    Ok(())
}

/// virtio-mem: the guest loads the driver, then QMP's `requested-size`
/// grows the device by 512 MiB (MemTotal follows) and shrinks it to 0
/// again (MemTotal back, the device reports nothing plugged).
pub(super) fn scenario_virtio_mem(vm: &mut Vm, _c: &Case) -> Result<()> {
    const GROW_KIB: u64 = 512 << 10;
    const SLACK_KIB: u64 = 16 << 10;
    let (rc, out) = vm.guest_cmd(
        "for m in $(cat /lib/modules/hotstub/virtio_mem.deps); do \
         [ -d /sys/module/$m ] || insmod /lib/modules/hotstub/$m.ko || exit 1; done",
        STEP,
    )?;
    if rc != 0 {
        return Err(format!("loading virtio_mem failed: {}", out.join(" ")));
    }
    let before = memtotal_kib(vm)?;
    let set = |vm: &mut Vm, bytes: u64| -> Result<()> {
        let q = vm.qmp.as_mut().ok_or("no QMP")?;
        q.execute(
            "qom-set",
            Some(obj(&[
                ("path", Json::Str("/machine/peripheral/vmem0".into())),
                ("property", Json::Str("requested-size".into())),
                ("value", Json::Num(bytes as f64)),
            ])),
        )?;
        Ok(())
    };
    set(vm, GROW_KIB * 1024)?;
    let grown = wait_memtotal(vm, "did not grow by the 512 MiB requested", |kb| {
        kb + SLACK_KIB >= before + GROW_KIB
    })?;
    if grown > before + GROW_KIB {
        return Err(format!(
            "MemTotal grew by {} MiB for 512 MiB requested",
            (grown - before) / 1024
        ));
    }
    step(format!(
        "virtio-mem grown: MemTotal {} -> {} MiB",
        before / 1024,
        grown / 1024
    ));
    set(vm, 0)?;
    let after = wait_memtotal(vm, "did not shrink back to the boot memory", |kb| {
        kb <= before + SLACK_KIB
    })?;
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let size = q.execute(
        "qom-get",
        Some(obj(&[
            ("path", Json::Str("/machine/peripheral/vmem0".into())),
            ("property", Json::Str("size".into())),
        ])),
    )?;
    if size.as_i64() != Some(0) {
        return Err(format!("virtio-mem still has {size:?} bytes plugged"));
    }
    step(format!("virtio-mem shrunk: MemTotal {} MiB", after / 1024));
    Ok(())
}

/// Runs the case's guest commands; each must print what it expects.
pub(super) fn scenario_guest_checks(vm: &mut Vm, c: &Case) -> Result<()> {
    let mut errs = Vec::new();
    for (cmd, want) in &c.guest_checks {
        let (rc, out) = vm.guest_cmd(cmd, STEP)?;
        let got = out.join(" ");
        if rc != 0 || got.trim() != *want {
            errs.push(format!(
                "`{cmd}` printed `{}` (rc {rc}), expected `{want}`",
                got.trim()
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// The root port the PCI hotplug cases give the machine
/// (`-device pcie-root-port,id=rp1,...`), and the id of the disk added
/// into it.
pub(super) const HOTPLUG_PORT: &str = "rp1";
const HOTPLUG_DISK: &str = "hpdisk";

/// Runs `cmd` in the guest until its output satisfies `done` (which
/// returns what the caller wants from it), for at most a step.
fn poll_guest<T>(
    vm: &mut Vm,
    what: &str,
    cmd: &str,
    done: impl Fn(&[String]) -> Option<T>,
) -> Result<T> {
    let t = Instant::now();
    loop {
        let (_, out) = vm.guest_cmd(cmd, STEP)?;
        if let Some(v) = done(&out) {
            return Ok(v);
        }
        if t.elapsed() > STEP {
            return Err(format!("{what} (guest shows {})", out.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The md5 of the host file behind the spare drive, as QEMU names it
/// (QMP `query-block`).
fn spare_drive_md5(vm: &mut Vm) -> Result<String> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let blocks = q.execute("query-block", None)?;
    let file = blocks
        .as_arr()
        .iter()
        .find(|b| b.get("device").and_then(Json::as_str) == Some(SPARE_DRIVE))
        .and_then(|b| b.get("inserted"))
        .and_then(|i| i.get("file"))
        .and_then(Json::as_str)
        .ok_or_else(|| format!("QEMU has no drive {SPARE_DRIVE} with a file"))?;
    md5_file(std::path::Path::new(file))
}

/// PCI hotplug: a virtio-blk disk on the spare drive is hot-added into
/// the root port; the guest finds a new disk and reads it back (its md5 is
/// the host file's); `device_del` takes it out again (QEMU sends
/// DEVICE_DELETED once the guest has released the slot, and the disk is
/// gone in the guest).
pub(super) fn scenario_pci_hotplug(vm: &mut Vm, _c: &Case) -> Result<()> {
    let want = spare_drive_md5(vm)?;
    // The init's module directory and dependency lists (tests/guest/README.md).
    let (rc, out) = vm.guest_cmd(
        "for m in $(cat /lib/modules/hotstub/virtio_blk.deps); do \
         [ -d /sys/module/$m ] || insmod /lib/modules/hotstub/$m.ko || exit 1; done",
        STEP,
    )?;
    if rc != 0 {
        return Err(format!("loading virtio_blk failed: {}", out.join(" ")));
    }
    let list = "ls /sys/block";
    let (_, before) = vm.guest_cmd(list, STEP)?;
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute(
        "device_add",
        Some(obj(&[
            ("driver", Json::Str("virtio-blk-pci".into())),
            ("id", Json::Str(HOTPLUG_DISK.into())),
            ("bus", Json::Str(HOTPLUG_PORT.into())),
            ("drive", Json::Str(SPARE_DRIVE.into())),
        ])),
    )?;
    let disk = poll_guest(
        vm,
        "no new disk after device_add into the root port",
        list,
        |now| {
            now.iter()
                .find(|d| d.starts_with("vd") && !before.contains(d))
                .cloned()
        },
    )?;
    let (rc, out) = vm.guest_cmd(&format!("md5sum /dev/{disk}"), STEP)?;
    let got = out
        .first()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    if rc != 0 || got != want {
        return Err(format!(
            "hot-added /dev/{disk}: md5 `{}`, host file {want}",
            out.join(" ")
        ));
    }
    step(format!("hot-added disk /dev/{disk} reads back (md5 {got})"));
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute(
        "device_del",
        Some(obj(&[("id", Json::Str(HOTPLUG_DISK.into()))])),
    )?;
    q.wait_event(&format!("DEVICE_DELETED {HOTPLUG_DISK}"), STEP, |e| {
        e.get("event").and_then(Json::as_str) == Some("DEVICE_DELETED")
            && e.get("data")
                .and_then(|d| d.get("device"))
                .and_then(Json::as_str)
                == Some(HOTPLUG_DISK)
    })
    .map_err(|e| format!("{e} (the guest did not release the slot)"))?;
    poll_guest(
        vm,
        &format!("/dev/{disk} still there after DEVICE_DELETED"),
        list,
        |now| (!now.contains(&disk)).then_some(()),
    )?;
    step(format!("disk removed: /dev/{disk} gone"));
    Ok(())
}

/// pvpanic: the guest loads the driver, then panics on purpose (sysrq c);
/// the driver's write to the pvpanic port reaches QEMU, which reports
/// GUEST_PANICKED on QMP. The VM is then stopped.
pub(super) fn scenario_pvpanic(vm: &mut Vm, _c: &Case) -> Result<()> {
    let (rc, out) = vm.guest_cmd(
        "for m in $(cat /lib/modules/hotstub/pvpanic_mmio.deps); do \
         [ -d /sys/module/$m ] || insmod /lib/modules/hotstub/$m.ko || exit 1; done; \
         ls /sys/bus/platform/drivers/pvpanic-mmio | grep -c QEMU0001",
        STEP,
    )?;
    if rc != 0 || out.first().map(String::as_str) != Some("1") {
        return Err(format!(
            "the pvpanic driver did not bind the firmware's QEMU0001 device: {}",
            out.join(" ")
        ));
    }
    // The command never answers: the guest dies on it.
    vm.send_serial("HOTSTUB-CMD 90 echo c > /proc/sysrq-trigger\n")?;
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.wait_event("GUEST_PANICKED", STEP, |e| {
        e.get("event").and_then(Json::as_str) == Some("GUEST_PANICKED")
    })?;
    vm.kill();
    Ok(())
}

/// NUMA DIMM hotplug: a 512 MiB pc-dimm plugged with `node=0` lands in
/// Linux's node 0, whose MemTotal grows by it. QEMU's SRAT gives the whole
/// hotplug range to the last node (1), so only the slot's _PXM can put it
/// in node 0.
pub(super) fn scenario_dimm_numa(vm: &mut Vm, _c: &Case) -> Result<()> {
    const DIMM_KIB: u64 = 512 << 10;
    const SLACK_KIB: u64 = 16 << 10;
    let node0 = |vm: &mut Vm| -> Result<u64> {
        let (_, out) = vm.guest_cmd(
            "awk '/MemTotal/ {print $4}' /sys/devices/system/node/node0/meminfo",
            STEP,
        )?;
        out.first()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("no node0 MemTotal: {out:?}"))
    };
    // Kernel messages on the console would split the answers' lines.
    vm.guest_cmd("dmesg -n 1", STEP)?;
    let before = node0(vm)?;
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute(
        "object-add",
        Some(obj(&[
            ("qom-type", Json::Str("memory-backend-ram".into())),
            ("id", Json::Str("memn1".into())),
            ("size", Json::Num((DIMM_KIB * 1024) as f64)),
        ])),
    )?;
    q.execute(
        "device_add",
        Some(obj(&[
            ("driver", Json::Str("pc-dimm".into())),
            ("id", Json::Str("dimmn1".into())),
            ("memdev", Json::Str("memn1".into())),
            ("node", Json::Num(0.0)),
        ])),
    )?;
    let t = Instant::now();
    loop {
        let kb = node0(vm)?;
        if kb + SLACK_KIB >= before + DIMM_KIB {
            step(format!(
                "node 0: MemTotal {} -> {} MiB",
                before / 1024,
                kb / 1024
            ));
            return Ok(());
        }
        if t.elapsed() > STEP {
            return Err(format!(
                "node 0 MemTotal {} MiB did not grow by the DIMM plugged there",
                kb / 1024
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
