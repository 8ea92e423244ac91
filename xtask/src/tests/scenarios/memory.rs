//! Memory scenarios: pc-dimm hotplug (also into a NUMA node) and virtio-mem.

use super::*;

/// The guest's MemTotal in KiB.
fn memtotal_kib(vm: &mut Vm) -> Result<u64> {
    // Memory hotplug makes the kernel log to the console, which would split
    // the answer's line: quiet the console first.
    let (_, out) = vm.guest_cmd(
        "dmesg -n 1; awk '/^MemTotal:/ {print $2}' /proc/meminfo",
        STEP,
    )?;
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
pub(in crate::tests) fn scenario_dimm_hotplug(vm: &mut Vm, _c: &Case) -> Result<()> {
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
pub(in crate::tests) fn scenario_virtio_mem(vm: &mut Vm, _c: &Case) -> Result<()> {
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

/// NUMA DIMM hotplug: a 512 MiB pc-dimm plugged with `node=0` lands in
/// Linux's node 0, whose MemTotal grows by it. QEMU's SRAT gives the whole
/// hotplug range to the last node (1), so only the slot's _PXM can put it
/// in node 0.
pub(in crate::tests) fn scenario_dimm_numa(vm: &mut Vm, _c: &Case) -> Result<()> {
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
