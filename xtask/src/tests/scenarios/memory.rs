//! Memory scenarios: pc-dimm hotplug (also into a NUMA node) and virtio-mem.

use super::*;

/// Where a MemTotal is read: the meminfo file and the awk field of the
/// number (the system's, or one NUMA node's).
pub(super) type Meminfo = (&'static str, u8);
pub(super) const SYSTEM: Meminfo = ("/proc/meminfo", 2);
const NODE0: Meminfo = ("/sys/devices/system/node/node0/meminfo", 4);

/// The guest's MemTotal in KiB, from `src`.
pub(super) fn memtotal_kib(vm: &mut Vm, src: Meminfo) -> Result<u64> {
    // Memory hotplug makes the kernel log to the console, which would split
    // the answer's line: quiet the console first.
    let (file, field) = src;
    let (_, out) = vm.guest_cmd(
        &format!("dmesg -n 1; awk '/MemTotal:/ {{print ${field}}}' {file}"),
        STEP,
    )?;
    out.first()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("no MemTotal in {file}: {out:?}"))
}

/// Polls MemTotal until `ok` holds (the kernel adds and removes memory
/// blocks asynchronously to the ACPI event).
pub(super) fn wait_memtotal(
    vm: &mut Vm,
    src: Meminfo,
    what: &str,
    ok: impl Fn(u64) -> bool,
) -> Result<u64> {
    let t = Instant::now();
    loop {
        let kb = memtotal_kib(vm, src)?;
        if ok(kb) {
            return Ok(kb);
        }
        if t.elapsed() > STEP {
            return Err(format!("MemTotal {} MiB in {}: {what}", kb / 1024, src.0));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Plugs a pc-dimm `id` of `kib` KiB on a new RAM backend, in NUMA `node`
/// when given.
pub(super) fn plug_dimm(vm: &mut Vm, id: &str, kib: u64, node: Option<u32>) -> Result<()> {
    let mem = format!("{id}-ram");
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute(
        "object-add",
        Some(json!({
            "qom-type": "memory-backend-ram",
            "id": mem,
            "size": kib * 1024,
        })),
    )?;
    let mut args = json!({ "driver": "pc-dimm", "id": id, "memdev": mem });
    if let Some(n) = node {
        args["node"] = json!(n);
    }
    q.execute("device_add", Some(args))?;
    Ok(())
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
    let before = memtotal_kib(vm, SYSTEM)?;
    plug_dimm(vm, "dimm1", DIMM_KIB, None)?;
    let grown = wait_memtotal(vm, SYSTEM, "did not grow by the 1 GiB DIMM", |kb| {
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
    q.execute("device_del", Some(json!({ "id": "dimm1" })))?;
    q.wait_event("DEVICE_DELETED dimm1", STEP, |e| {
        e.get("event").and_then(Value::as_str) == Some("DEVICE_DELETED")
            && e.get("data")
                .and_then(|d| d.get("device"))
                .and_then(Value::as_str)
                == Some("dimm1")
    })
    .map_err(|e| format!("{e} (the guest did not offline and eject the DIMM)"))?;
    let after = wait_memtotal(vm, SYSTEM, "did not shrink back after the unplug", |kb| {
        kb <= before + SLACK_KIB
    })?;
    step(format!("DIMM unplugged: MemTotal {} MiB", after / 1024));
    Ok(())
}

/// virtio-mem: with the driver loaded by the init, QMP's `requested-size`
/// grows the device by 512 MiB (MemTotal follows) and shrinks it to 0
/// again (MemTotal back, the device reports nothing plugged).
pub(in crate::tests) fn scenario_virtio_mem(vm: &mut Vm, _c: &Case) -> Result<()> {
    const GROW_KIB: u64 = 512 << 10;
    const SLACK_KIB: u64 = 16 << 10;
    let before = memtotal_kib(vm, SYSTEM)?;
    let set = |vm: &mut Vm, bytes: u64| -> Result<()> {
        let q = vm.qmp.as_mut().ok_or("no QMP")?;
        q.execute(
            "qom-set",
            Some(json!({
                "path": "/machine/peripheral/vmem0",
                "property": "requested-size",
                "value": bytes,
            })),
        )?;
        Ok(())
    };
    set(vm, GROW_KIB * 1024)?;
    let grown = wait_memtotal(vm, SYSTEM, "did not grow by the 512 MiB requested", |kb| {
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
    let after = wait_memtotal(vm, SYSTEM, "did not shrink back to the boot memory", |kb| {
        kb <= before + SLACK_KIB
    })?;
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let size = q.execute(
        "qom-get",
        Some(json!({
            "path": "/machine/peripheral/vmem0",
            "property": "size",
        })),
    )?;
    if size.as_i64() != Some(0) {
        return Err(format!("virtio-mem still has {size} bytes plugged"));
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
    let before = memtotal_kib(vm, NODE0)?;
    plug_dimm(vm, "dimmn1", DIMM_KIB, Some(0))?;
    let kb = wait_memtotal(vm, NODE0, "did not grow by the DIMM plugged there", |kb| {
        kb + SLACK_KIB >= before + DIMM_KIB
    })?;
    step(format!(
        "node 0: MemTotal {} -> {} MiB",
        before / 1024,
        kb / 1024
    ));
    Ok(())
}
