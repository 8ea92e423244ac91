//! The runtime vCPU hotplug latency at EL3.

use super::boot::median;
use crate::assets;
use crate::build::Arch;
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{target_dir, Result};
use std::time::Duration;

/// Runtime vCPU hotplug at EL3 (README "Runtime vCPU hotplug on arm64"):
/// wall time from `enable 2` on the control channel to Linux's answer
/// (`event: enable 2 done`, the vCPU registered) and to the vCPU online
/// (the init's `echo 1 > cpu2/online` returned), and from `disable 2` to
/// ejected (`event: disable 2 done`). `cycles` rounds in one boot, medians.
pub(super) fn hotplug_latency(cycles: usize) -> Result<()> {
    let arch = Arch::Aarch64;
    let guest = assets::guest(arch, assets::Flavor::Lts)?;
    let mut cfg = VmConfig::new(arch, Firmware::Hotstub);
    cfg.machine = "virt,gic-version=3,secure=on,virtualization=on".into();
    cfg.smp = "4".into();
    cfg.kernel = Some(guest.kernel.image.clone());
    cfg.initrd = Some(guest.initrd.clone());
    cfg.append = Some("quiet hotstub.action=cmd".into());
    let dir = target_dir().join("bench-logs");
    let log = dir.join("aarch64-cpu-hotplug.log");
    let sock = dir.join("aarch64-cpu-hotplug.ctl");
    let _ = std::fs::remove_file(&sock);
    cfg.extra = [
        "-fw_cfg",
        "name=opt/org.hotstub/enabled-cpus,string=0-1",
        "-chardev",
        &format!("socket,id=ctl,path={},server=on,wait=off", sock.display()),
        "-serial",
        "chardev:ctl",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let step_t = Duration::from_secs(60);
    let r = (|| -> Result<[Vec<f64>; 3]> {
        let mut vm = Vm::spawn(&cfg, &log, false)?;
        vm.wait_prefix("HOTSTUB: ready", Duration::from_secs(300))?;
        let mut ctl = crate::control::Control::connect(&sock, Duration::from_secs(10))?;
        let mut t: [Vec<f64>; 3] = Default::default();
        for _ in 0..cycles {
            let t0 = std::time::Instant::now();
            ctl.change("enable 2", step_t, step_t)?;
            t[0].push(t0.elapsed().as_secs_f64());
            let (rc, out) = vm.guest_cmd("echo 1 > /sys/devices/system/cpu/cpu2/online", step_t)?;
            if rc != 0 {
                return Err(format!("cpu2 did not come online: {}", out.join(" ")));
            }
            t[1].push(t0.elapsed().as_secs_f64());
            let t0 = std::time::Instant::now();
            ctl.change("disable 2", step_t, step_t)?;
            t[2].push(t0.elapsed().as_secs_f64());
        }
        vm.kill();
        Ok(t)
    })();
    println!("\nRuntime vCPU hotplug at EL3 (6.12, wall time under TCG, median of {cycles}):");
    match r {
        Ok(t) => {
            let ms = |v: &[f64]| {
                median(v)
                    .map(|m| format!("{:.1} ms", m * 1e3))
                    .unwrap_or_default()
            };
            println!(
                "  enable 2 -> Linux registered it (event: done)  {}",
                ms(&t[0])
            );
            println!(
                "  enable 2 -> cpu2 online in Linux                {}",
                ms(&t[1])
            );
            println!(
                "  disable 2 -> Linux offlined and ejected it      {}",
                ms(&t[2])
            );
        }
        Err(e) => println!("  failed: {e} (log {})", log.display()),
    }
    Ok(())
}
