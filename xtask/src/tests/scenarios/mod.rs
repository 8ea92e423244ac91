//! The scenarios: what runs after a case has booted and passed the standard
//! checks, driving QMP and the guest's command channel (powerdown through
//! acpid, x86 vCPU hotplug, the arm64 vCPU policy and cpu1 online cycles).

use super::case::Case;
use super::protocol::{fields, md5_when_live};
use super::runner::SPARE_DRIVE;
use crate::qemu::Vm;
use crate::util::{md5_file, step, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

mod cpuhp;
mod devices;
mod memory;
mod persist;
mod soak;

pub(super) use cpuhp::{
    scenario_channel_resync, scenario_cpu_hotplug, scenario_cpu_hotplug_cycles,
    scenario_high_redist_hotplug,
};
pub(super) use devices::{
    scenario_guest_checks, scenario_pci_hotplug, scenario_pci_hotplug_bus0, scenario_pvpanic,
    HOTPLUG_PORT,
};
pub(super) use memory::{scenario_dimm_hotplug, scenario_dimm_numa, scenario_virtio_mem};
pub(super) use persist::{scenario_policy_across_resets, scenario_reset_mid_change};
pub(super) use soak::{scenario_dimm_soak, scenario_pci_soak, scenario_vcpu_soak};

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
fn unplugged_cpus(vm: &mut Vm) -> Result<Vec<Value>> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let r = q.execute("query-hotpluggable-cpus", None)?;
    let mut v: Vec<Value> = r
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|e| e.get("qom-path").is_none())
        .cloned()
        .collect();
    let key = |e: &Value| {
        let p = e.get("props");
        ["socket-id", "die-id", "core-id", "thread-id"].map(|k| {
            p.and_then(|p| p.get(k))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        })
    };
    v.sort_by_key(key);
    Ok(v)
}

fn device_add_cpu(vm: &mut Vm, slot: &Value, id: &str) -> Result<()> {
    let driver = slot
        .get("type")
        .and_then(Value::as_str)
        .ok_or("slot without type")?;
    // The slot's props (socket-id, core-id, ...) name where the vCPU goes.
    let mut args = slot
        .get("props")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    args.insert("driver".into(), json!(driver));
    args.insert("id".into(), json!(id));
    vm.qmp
        .as_mut()
        .ok_or("no QMP")?
        .execute("device_add", Some(Value::Object(args)))?;
    Ok(())
}

/// Whether QEMU still has device `id` in a hotpluggable vCPU slot.
fn cpu_plugged(vm: &mut Vm, id: &str) -> Result<bool> {
    let path = format!("/machine/peripheral/{id}");
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let r = q.execute("query-hotpluggable-cpus", None)?;
    Ok(r.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .any(|c| c.get("qom-path").and_then(Value::as_str) == Some(path.as_str())))
}

/// `device_del` of a vCPU and proof that QEMU deleted it: a DEVICE_DELETED
/// event for the vCPU or for a device inside it (QEMU 10 under TCG reports
/// the vCPU's own deletion late, but its local APIC child's as soon as the
/// vCPU is unrealized), and the slot showing up empty in
/// `query-hotpluggable-cpus`.
fn device_del(vm: &mut Vm, id: &str) -> Result<()> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    q.execute("device_del", Some(json!({ "id": id })))?;
    let idc = id.to_string();
    let prefix = format!("/machine/peripheral/{id}/");
    let r = q.wait_event(&format!("DEVICE_DELETED {id}"), STEP, move |e| {
        let d = e.get("data");
        e.get("event").and_then(Value::as_str) == Some("DEVICE_DELETED")
            && (d.and_then(|d| d.get("device")).and_then(Value::as_str) == Some(idc.as_str())
                || d.and_then(|d| d.get("path"))
                    .and_then(Value::as_str)
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
    Ok(q.execute("query-cpus-fast", None)?
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .len())
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
    // Read from sysfs, not from the init's watcher: its 200 ms looks miss
    // an unplug and plug that fall between two of them (about 0.15 s of
    // guest time apart), and then it neither onlines the vCPU again nor
    // prints a new line.
    let cpu1 = "/sys/devices/system/cpu/cpu1/online";
    let online = format!("[ \"$(cat {cpu1})\" = 1 ] || echo 1 > {cpu1}");
    for cycle in 1..=10 {
        device_add_cpu(vm, &slot, "cpu1").map_err(|e| format!("cycle {cycle}: {e}"))?;
        sysfs_cpus(vm, "present", "0-1")
            .map_err(|e| format!("cycle {cycle} after device_add: {e}"))?;
        let (rc, out) = vm.guest_cmd(&online, STEP)?;
        if rc != 0 {
            return Err(format!("cycle {cycle}: onlining cpu1: {out:?}"));
        }
        sysfs_cpus(vm, "online", "0-1")
            .map_err(|e| format!("cycle {cycle} after device_add: {e}"))?;
        expect_cpus_fast(vm, 2, &format!("cycle {cycle} after device_add"))?;
        device_del(vm, "cpu1").map_err(|e| format!("cycle {cycle}: {e}"))?;
        sysfs_cpus(vm, "present", "0")
            .map_err(|e| format!("cycle {cycle} after device_del: {e}"))?;
        sysfs_cpus(vm, "online", "0")
            .map_err(|e| format!("cycle {cycle} after device_del: {e}"))?;
        expect_cpus_fast(vm, 1, &format!("cycle {cycle} after device_del"))?;
    }
    Ok(())
}

/// Waits until `/sys/devices/system/cpu/<mask>` reads `want`.
fn sysfs_cpus(vm: &mut Vm, mask: &str, want: &str) -> Result<()> {
    let t = Instant::now();
    let cmd = format!("cat /sys/devices/system/cpu/{mask}");
    loop {
        let (_, out) = vm.guest_cmd(&cmd, STEP)?;
        if out.first().map(String::as_str) == Some(want) {
            return Ok(());
        }
        if t.elapsed() > STEP {
            return Err(format!("{mask} is {out:?} after {STEP:?}, expected {want}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// x86 past 512 vCPUs: plug the vCPU of the last slot (the highest APIC
/// ID, 1023 with `maxcpus=1024`), which the init's watcher onlines, and
/// check its APIC ID in the guest.
pub(super) fn scenario_x86_hotplug_high(vm: &mut Vm, _c: &Case) -> Result<()> {
    let slots = unplugged_cpus(vm)?;
    let slot = slots.last().cloned().ok_or("QEMU offers no vCPU slot")?;
    device_add_cpu(vm, &slot, "cpuhigh")?;
    // Which logical CPU Linux makes of it is its choice (6.12 keeps the
    // MADT's order: cpu1023); any second online one will do.
    vm.wait_line("cpus online=0,<n>", STEP, |l| {
        l.starts_with("HOTSTUB: cpus ")
            && l.split_whitespace()
                .any(|w| w.starts_with("online=0,") || w.starts_with("online=0-1"))
    })
    .map_err(|e| format!("after device_add: {e}"))?;
    expect_cpus_fast(vm, 2, "after device_add")?;
    let (_, out) = vm.guest_cmd("grep ^apicid /proc/cpuinfo", STEP)?;
    let ids: Vec<u64> = out
        .iter()
        .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
        .collect();
    match ids.as_slice() {
        [0, high] if *high > 512 => Ok(()),
        _ => Err(format!(
            "APIC IDs of the online vCPUs: {ids:?}, expected 0 and one above 512"
        )),
    }
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
