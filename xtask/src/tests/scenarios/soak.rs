//! The soak (issue 19 item 4): many hotplug cycles in one boot, counted by
//! `Case::cycles`. arm64 at EL3: vCPUs disabled and enabled again over the
//! control channel while every online vCPU and every host core is busy and
//! two clients take turns on the channel. x86 q35: pc-dimm and PCI add and
//! remove cycles.

use super::super::case::Case;
use super::super::checks::bad_dmesg_lines;
use super::cpuhp::ANSWER;
use super::devices::{pci_add_remove, spare_drive_file, HOTPLUG_PORT};
use super::memory::{memtotal_kib, plug_dimm, wait_memtotal, SYSTEM};
use super::SPARE_DRIVE;
use super::STEP;
use crate::build::Arch;
use crate::control::Control;
use crate::qemu::Vm;
use crate::util::{md5_file, step, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spins a thread on every host core while alive: the host under load.
struct HostLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl HostLoad {
    fn start() -> HostLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        HostLoad { stop, threads }
    }

    fn cores(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for HostLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One of the two channel clients. QEMU's socket chardev serves one
/// connection at a time (a second one waits unanswered until the first
/// closes), so taking turns means that each turn is a connection of its
/// own: connect and resynchronise, commands with this client's request
/// ids, close.
struct Client {
    name: &'static str,
    sent: u32,
}

impl Client {
    fn turn<T>(&mut self, path: &Path, f: impl FnOnce(&mut Control) -> Result<T>) -> Result<T> {
        let ctl = Control::connect(path, Duration::from_secs(10))?;
        let mut ctl = ctl.with_ids(self.name, self.sent);
        let r = f(&mut ctl);
        self.sent = ctl.ids_sent();
        if let (Ok(_), Some(l)) = (&r, ctl.events.first()) {
            return Err(format!("client {}: unexpected line `{l}`", self.name));
        }
        r
    }
}

/// `cmd` answered `ok ... pending=` and ended by its `event: ... done`:
/// the time from sending it to that line.
fn change(ctl: &mut Control, cmd: &str) -> Result<Duration> {
    let t = Instant::now();
    ctl.change(cmd, ANSWER, STEP)?;
    Ok(t.elapsed())
}

fn expect_status(ctl: &mut Control, all: &str, enabled: &str, online: &str) -> Result<()> {
    let want = format!("ok possible={all} enabled={enabled} online={online}");
    let a = ctl.command("status", ANSWER)?;
    if a != want {
        return Err(format!("status: `{a}`, expected `{want}`"));
    }
    Ok(())
}

/// A CPU list as Linux and the channel write it (`0-3,5,7`).
fn cpu_list(cpus: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// Median and worst of `d`, in seconds.
fn median_worst(d: &mut [Duration]) -> (f64, f64) {
    d.sort();
    let med = d.get(d.len() / 2).copied().unwrap_or_default();
    let worst = d.last().copied().unwrap_or_default();
    (med.as_secs_f64(), worst.as_secs_f64())
}

/// The kernel log since the last look (`dmesg -c`), checked for error and
/// splat lines; returns how many lines it had. The console is quiet during
/// the soak (a kernel line printed into a command's answer would cut it),
/// so the ring buffer is read often enough that it cannot wrap.
fn kernel_log_clean(vm: &mut Vm, arch: Arch, when: &str) -> Result<usize> {
    let (rc, out) = vm.guest_cmd("dmesg -c", STEP)?;
    if rc != 0 {
        return Err(format!("dmesg -c failed: {}", out.join(" ")));
    }
    let bad = bad_dmesg_lines(&out, arch);
    if !bad.is_empty() {
        return Err(format!("kernel log {when}: {}", bad.join(" | ")));
    }
    Ok(out.len())
}

/// Guest busy loops, one per vCPU of `-smp 8`: whichever vCPUs are online,
/// each has one to run. At nice 19 (`renice`: the initramfs's busybox has no
/// `nice`), so the init's command loop still gets its turn. `$0` names them
/// for the count (nor has it `ps` or `pgrep`; the pattern does not match
/// its own command line).
const BUSY_LOOPS: usize = 8;
const BUSY: &str = "for i in 1 2 3 4 5 6 7 8; do sh -c 'renice -n 19 -p $$ >/dev/null; while :; do :; done' soakbusy </dev/null >/dev/null 2>&1 & done";
const BUSY_COUNT: &str = "grep -l 'soak[b]usy' /proc/[0-9]*/cmdline | wc -l";

fn expect_busy(vm: &mut Vm, when: &str) -> Result<()> {
    let (_, out) = vm.guest_cmd(BUSY_COUNT, STEP)?;
    if out.first().map(String::as_str) != Some(&BUSY_LOOPS.to_string()) {
        return Err(format!(
            "{when}: {out:?} guest busy loops running, expected {BUSY_LOOPS}"
        ));
    }
    Ok(())
}

/// arm64 EL3, `-smp 8`, `enabled-cpus=0-1`: each cycle takes the next of
/// vCPUs 2-7 (2, 3, ... 7, 2, ...), enables it (the harness onlines it in
/// Linux) and disables it again (Linux offlines and ejects it), with every
/// online vCPU and every host core busy throughout. Two clients take turns
/// on the channel: one enables, the other checks `status`, disables and
/// checks `status` again, the first checks `status` once more; the next
/// cycle starts with the other one. Each change must end in its `done`,
/// Linux's sysfs must follow (online and enabled exactly 0-1 and the
/// vCPU), no kernel line may report an error or a splat, and at the end
/// `status` must match sysfs.
///
/// One vCPU at a time, not all eight up: with eight busy vCPUs under TCG
/// on the loaded 2-core host, Linux's stop_machine for an offline waited
/// on starved vCPU threads (soft lockups of 22 s) until a `disable` passed
/// the firmware's 30 s.
pub(in super::super) fn scenario_vcpu_soak(vm: &mut Vm, c: &Case) -> Result<()> {
    let path = vm
        .control
        .clone()
        .ok_or("the case has no control channel")?;
    let n: u32 = c.smp.parse().map_err(|_| "soak needs a plain -smp N")?;
    let all = cpu_list(&(0..n).collect::<Vec<u32>>());
    let toggled: Vec<u32> = (2..n).collect();
    let mut clients = [
        Client {
            name: "soakA",
            sent: 0,
        },
        Client {
            name: "soakB",
            sent: 0,
        },
    ];
    vm.guest_cmd("dmesg -n 1", STEP)?;
    let mut klines = kernel_log_clean(vm, c.arch, "before the soak")?;
    let (rc, out) = vm.guest_cmd(BUSY, STEP)?;
    if rc != 0 {
        return Err(format!("guest busy loops: {}", out.join(" ")));
    }
    expect_busy(vm, "before the soak")?;
    let load = HostLoad::start();
    step(format!(
        "soak: {BUSY_LOOPS} guest busy loops, {} host cores busy; {} cycles",
        load.cores(),
        c.cycles
    ));
    let sysfs = "cd /sys/devices/system/cpu && echo $(cat online) $(cat enabled)";
    let t0 = Instant::now();
    let (mut disables, mut enables, mut cycles) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..c.cycles {
        let cpu = toggled[i as usize % toggled.len()];
        let ctx = |e: String| format!("cycle {} (vCPU {cpu}): {e}", i + 1);
        let up = cpu_list(&[0, 1, cpu]);
        let (x, y) = (i as usize % 2, (i as usize + 1) % 2);
        let t = Instant::now();
        let d = clients[x]
            .turn(&path, |ctl| change(ctl, &format!("enable {cpu}")))
            .map_err(ctx)?;
        enables.push(d);
        let (rc, out) = vm.guest_cmd(
            &format!("echo 1 > /sys/devices/system/cpu/cpu{cpu}/online && {sysfs}"),
            STEP,
        )?;
        let want = format!("{up} {up}");
        if rc != 0 || out.first() != Some(&want) {
            return Err(ctx(format!(
                "after onlining: sysfs online/enabled {out:?} (rc {rc}), expected `{want}`"
            )));
        }
        let d = clients[y]
            .turn(&path, |ctl| {
                expect_status(ctl, &all, &up, &up)?;
                let d = change(ctl, &format!("disable {cpu}"))?;
                expect_status(ctl, &all, "0-1", "0-1")?;
                Ok(d)
            })
            .map_err(ctx)?;
        disables.push(d);
        clients[x]
            .turn(&path, |ctl| expect_status(ctl, &all, "0-1", "0-1"))
            .map_err(ctx)?;
        cycles.push(t.elapsed());
        if (i + 1) % 25 == 0 || i + 1 == c.cycles {
            klines += kernel_log_clean(vm, c.arch, &format!("by cycle {}", i + 1))?;
        }
        if (i + 1) % 50 == 0 {
            let (med, worst) = median_worst(&mut cycles.clone());
            step(format!(
                "soak: {}/{} cycles in {:.0}s (cycle median {med:.2}s, worst {worst:.2}s)",
                i + 1,
                c.cycles,
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    let total = t0.elapsed();
    expect_busy(vm, "at the end")?;
    let (_, loadavg) = vm.guest_cmd("cat /proc/loadavg", STEP)?;
    drop(load);
    // The end: the firmware's view is Linux's.
    let (_, out) = vm.guest_cmd(sysfs, STEP)?;
    let linux = out.first().cloned().unwrap_or_default();
    let (on, en) = linux.split_once(' ').unwrap_or(("?", "?"));
    let status = clients[0].turn(&path, |ctl| ctl.command("status", ANSWER))?;
    let want = format!("ok possible={all} enabled={en} online={on}");
    if status != want || en != "0-1" {
        return Err(format!(
            "at the end: status `{status}`, Linux `{want}`, expected 0-1"
        ));
    }
    let (dm, dw) = median_worst(&mut disables);
    let (em, ew) = median_worst(&mut enables);
    let (cm, cw) = median_worst(&mut cycles);
    let sent: u32 = clients.iter().map(|c| c.sent).sum();
    let figures = format!(
        "{} cycles of vCPUs {} in {:.0}s; cycle median {cm:.2}s worst {cw:.2}s; \
         enable->done median {em:.2}s worst {ew:.2}s; disable->done median {dm:.2}s \
         worst {dw:.2}s; {sent} commands from 2 clients in {} turns; {BUSY_LOOPS} guest \
         busy loops (loadavg {}); {klines} kernel lines, none bad",
        c.cycles,
        cpu_list(&toggled),
        total.as_secs_f64(),
        3 * c.cycles + 1,
        loadavg.join(" ")
    );
    step(format!("soak: {figures}; end `{status}`"));
    vm.report.push(figures);
    Ok(())
}

/// x86 q35: `Case::cycles` pc-dimm add/remove cycles. The 256 MiB DIMM
/// (two of Linux's 128 MiB x86 memory blocks) must show up in MemTotal and
/// in the Movable zone (`memhp_default_state=online_movable`), and leave
/// both as they were after `device_del` (DEVICE_DELETED: Linux offlined
/// and ejected it); its RAM backend is deleted each time, so the cycles
/// reuse the same names.
pub(in super::super) fn scenario_dimm_soak(vm: &mut Vm, c: &Case) -> Result<()> {
    const DIMM_KIB: u64 = 256 << 10;
    const SLACK_KIB: u64 = 16 << 10;
    const ID: &str = "soakdimm";
    let movable = "awk '/^Node/ {m = ($4 == \"Movable\")} m && $1 == \"managed\" {s += $2} END {print s * 4}' /proc/zoneinfo";
    let movable_kib = |vm: &mut Vm| -> Result<u64> {
        let (_, out) = vm.guest_cmd(movable, STEP)?;
        out.first()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("no Movable zone size: {out:?}"))
    };
    let before = memtotal_kib(vm, SYSTEM)?;
    let movable_before = movable_kib(vm)?;
    let t0 = Instant::now();
    let mut times = Vec::new();
    for i in 1..=c.cycles {
        let ctx = |e: String| format!("DIMM cycle {i}: {e}");
        let t = Instant::now();
        plug_dimm(vm, ID, DIMM_KIB, None).map_err(ctx)?;
        wait_memtotal(vm, SYSTEM, "did not grow by the DIMM", |kb| {
            kb + SLACK_KIB >= before + DIMM_KIB && kb <= before + DIMM_KIB
        })
        .map_err(ctx)?;
        let m = movable_kib(vm)?;
        if m < movable_before + DIMM_KIB {
            return Err(ctx(format!(
                "Movable zone {} MiB, expected {} MiB more than {} MiB",
                m / 1024,
                DIMM_KIB / 1024,
                movable_before / 1024
            )));
        }
        let q = vm.qmp.as_mut().ok_or("no QMP")?;
        q.events.clear();
        q.execute("device_del", Some(json!({ "id": ID })))?;
        q.wait_event("DEVICE_DELETED", STEP, |e| {
            e.get("event").and_then(Value::as_str) == Some("DEVICE_DELETED")
                && e.get("data")
                    .and_then(|d| d.get("device"))
                    .and_then(Value::as_str)
                    == Some(ID)
        })
        .map_err(|e| ctx(format!("{e} (the guest did not offline and eject it)")))?;
        q.execute("object-del", Some(json!({ "id": format!("{ID}-ram") })))
            .map_err(ctx)?;
        wait_memtotal(vm, SYSTEM, "did not shrink back", |kb| {
            kb <= before + SLACK_KIB
        })
        .map_err(ctx)?;
        let m = movable_kib(vm)?;
        if m != movable_before {
            return Err(ctx(format!(
                "Movable zone {} KiB after the unplug, {} KiB before",
                m, movable_before
            )));
        }
        times.push(t.elapsed());
        if i % 10 == 0 {
            step(format!(
                "soak: {i}/{} DIMM cycles in {:.0}s",
                c.cycles,
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    let (med, worst) = median_worst(&mut times);
    let figures = format!(
        "{} DIMM cycles of {} MiB (online movable) in {:.0}s; cycle median {med:.2}s worst {worst:.2}s",
        c.cycles,
        DIMM_KIB / 1024,
        t0.elapsed().as_secs_f64()
    );
    step(format!("soak: {figures}"));
    vm.report.push(figures);
    Ok(())
}

/// Whether QEMU has the spare drive, as a `-drive` or a block node.
fn spare_present(vm: &mut Vm) -> Result<bool> {
    let q = vm.qmp.as_mut().ok_or("no QMP")?;
    let named = |v: &Value, key: &str| {
        v.as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .any(|b| b.get(key).and_then(Value::as_str) == Some(SPARE_DRIVE))
    };
    let drives = q.execute("query-block", None)?;
    let nodes = q.execute("query-named-block-nodes", None)?;
    Ok(named(&drives, "device") || named(&nodes, "node-name"))
}

/// x86 q35: `Case::cycles` add/remove cycles of a virtio-blk disk in a
/// pcie-root-port (the PCI hotplug scenario's cycle: the disk reads back
/// the host file's md5, then `device_del` and the disk gone). QEMU deletes
/// a `-drive` with the device it backs, so from the second cycle on the
/// file comes back as a block node of the same name (`blockdev-add`),
/// which stays.
pub(in super::super) fn scenario_pci_soak(vm: &mut Vm, c: &Case) -> Result<()> {
    super::scenario_guest_checks(vm, c)?;
    let file = spare_drive_file(vm)?;
    let want = md5_file(Path::new(&file))?;
    let t0 = Instant::now();
    let mut times = Vec::new();
    for i in 1..=c.cycles {
        let ctx = |e: String| format!("PCI cycle {i}: {e}");
        let t = Instant::now();
        if !spare_present(vm)? {
            vm.qmp
                .as_mut()
                .ok_or("no QMP")?
                .execute(
                    "blockdev-add",
                    Some(json!({
                        "driver": "raw",
                        "node-name": SPARE_DRIVE,
                        "read-only": true,
                        "file": { "driver": "file", "filename": file, "read-only": true },
                    })),
                )
                .map_err(ctx)?;
        }
        vm.qmp.as_mut().ok_or("no QMP")?.events.clear();
        pci_add_remove(vm, HOTPLUG_PORT, &want).map_err(ctx)?;
        times.push(t.elapsed());
    }
    let (med, worst) = median_worst(&mut times);
    let figures = format!(
        "{} PCI cycles in {:.0}s; cycle median {med:.2}s worst {worst:.2}s",
        c.cycles,
        t0.elapsed().as_secs_f64()
    );
    step(format!("soak: {figures}"));
    vm.report.push(figures);
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn cpu_lists_as_linux_writes_them() {
        assert_eq!(cpu_list(&[0, 1, 2, 3, 4, 5, 6, 7]), "0-7");
        assert_eq!(cpu_list(&[0, 1, 3, 5, 6, 7]), "0-1,3,5-7");
        assert_eq!(cpu_list(&[0, 2]), "0,2");
        assert_eq!(cpu_list(&[]), "");
    }

    #[test]
    fn median_and_worst() {
        let s = Duration::from_secs;
        assert_eq!(median_worst(&mut [s(3), s(1), s(2)]), (2.0, 3.0));
        assert_eq!(median_worst(&mut []), (0.0, 0.0));
    }
}
