//! Device scenarios: guest-side checks, PCI hotplug of a disk, pvpanic.

use super::*;

/// Runs the case's guest commands; each must print what it expects.
pub(in crate::tests) fn scenario_guest_checks(vm: &mut Vm, c: &Case) -> Result<()> {
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
pub(in crate::tests) const HOTPLUG_PORT: &str = "rp1";
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

/// The host file behind the spare drive, as QEMU names it (QMP
/// `query-block`).
pub(super) fn spare_drive_file(vm: &mut Vm) -> Result<String> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let blocks = q.execute("query-block", None)?;
    blocks
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .find(|b| b.get("device").and_then(Value::as_str) == Some(SPARE_DRIVE))
        .and_then(|b| b.get("inserted"))
        .and_then(|i| i.get("file"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("QEMU has no drive {SPARE_DRIVE} with a file"))
}

/// The md5 of the host file behind the spare drive.
fn spare_drive_md5(vm: &mut Vm) -> Result<String> {
    md5_file(std::path::Path::new(&spare_drive_file(vm)?))
}

/// PCI hotplug: after the case's guest checks (which hotplug driver has the
/// ports), a virtio-blk disk on the spare drive is hot-added into
/// the root port; the guest finds a new disk and reads it back (its md5 is
/// the host file's); `device_del` takes it out again (QEMU sends
/// DEVICE_DELETED once the guest has released the slot, and the disk is
/// gone in the guest).
pub(in crate::tests) fn scenario_pci_hotplug(vm: &mut Vm, c: &Case) -> Result<()> {
    pci_hotplug_into(vm, c, HOTPLUG_PORT)
}

/// The same into a slot of `pc`'s root bus (QEMU names it `pci.0`).
pub(in crate::tests) fn scenario_pci_hotplug_bus0(vm: &mut Vm, c: &Case) -> Result<()> {
    pci_hotplug_into(vm, c, "pci.0")
}

/// A virtio-blk disk hot-added on `bus`, read back, removed.
fn pci_hotplug_into(vm: &mut Vm, c: &Case, bus: &str) -> Result<()> {
    scenario_guest_checks(vm, c)?;
    let want = spare_drive_md5(vm)?;
    pci_add_remove(vm, bus, &want)
}

/// One PCI hotplug cycle of [`scenario_pci_hotplug`]: the disk added on
/// `bus` reads back `want` (its md5), then goes again.
pub(super) fn pci_add_remove(vm: &mut Vm, bus: &str, want: &str) -> Result<()> {
    let list = "ls /sys/block";
    let (_, before) = vm.guest_cmd(list, STEP)?;
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute(
        "device_add",
        Some(json!({
            "driver": "virtio-blk-pci",
            "id": HOTPLUG_DISK,
            "bus": bus,
            "drive": SPARE_DRIVE,
        })),
    )?;
    let disk = poll_guest(
        vm,
        &format!("no new disk after device_add on bus {bus}"),
        list,
        |now| {
            now.iter()
                .find(|d| d.starts_with("vd") && !before.contains(d))
                .cloned()
        },
    )?;
    let (rc, out) = vm.guest_cmd(&md5_when_live(&format!("/dev/{disk}")), STEP)?;
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
    q.execute("device_del", Some(json!({ "id": HOTPLUG_DISK })))?;
    q.wait_event(&format!("DEVICE_DELETED {HOTPLUG_DISK}"), STEP, |e| {
        e.get("event").and_then(Value::as_str) == Some("DEVICE_DELETED")
            && e.get("data")
                .and_then(|d| d.get("device"))
                .and_then(Value::as_str)
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

/// pvpanic: the driver (loaded by the init) binds the firmware's device,
/// then the guest panics on purpose (sysrq c);
/// the driver's write to the pvpanic port reaches QEMU, which reports
/// GUEST_PANICKED on QMP. The VM is then stopped.
pub(in crate::tests) fn scenario_pvpanic(vm: &mut Vm, _c: &Case) -> Result<()> {
    let (rc, out) = vm.guest_cmd(
        "ls /sys/bus/platform/drivers/pvpanic-mmio | grep -c QEMU0001",
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
        e.get("event").and_then(Value::as_str) == Some("GUEST_PANICKED")
    })?;
    vm.kill();
    Ok(())
}
