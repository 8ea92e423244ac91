//! One boot, timed: to the guest's init on the host's clock, or under
//! icount on the guest's own virtual clock.

use crate::qemu::{Vm, VmConfig};
use crate::util::Result;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Wall,
    Icount,
}

pub(super) fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One boot's numbers, in seconds.
#[derive(Default)]
pub(super) struct Sample {
    /// Wall mode: host time to init; icount: virtual time to init.
    pub(super) init: f64,
    /// Wall mode: host time minus the guest's uptime at init; icount:
    /// virtual time at which the kernel's clock read 0.
    pub(super) pre: Option<f64>,
    /// What Hotstub itself reports (`Hotstub: N ms in firmware`).
    pub(super) own: Option<f64>,
}

/// The guest's `HOTSTUB: vclock [ <printk s>] hotstub-vclock count=<n>
/// hz=<n>` line as (virtual s since the machine started, the kernel's
/// clock in s at the same point). hz=0 is x86's TSC, which QEMU's TCG
/// counts in virtual ns (target/i386 `cpu_get_tsc`).
fn parse_vclock(line: &str) -> Option<(f64, f64)> {
    let (stamp, rest) = line.split_once('[')?.1.split_once(']')?;
    let kclock: f64 = stamp.trim().parse().ok()?;
    let field = |k: &str| -> Option<u64> {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
    };
    let (count, hz) = (field("count=")?, field("hz=")?);
    let secs = if hz == 0 {
        count as f64 / 1e9
    } else {
        count as f64 / hz as f64
    };
    Some((secs, kclock))
}

/// `Hotstub: 2.297 ms in firmware, starting Linux` as seconds.
pub(super) fn parse_own(lines: &[String]) -> Option<f64> {
    lines.iter().find_map(|l| {
        let ms = l
            .strip_prefix("Hotstub: ")?
            .split_once(" ms in firmware")?
            .0;
        ms.parse::<f64>().ok().map(|m| m / 1000.0)
    })
}

pub(super) fn boot(cfg: &VmConfig, log: &std::path::Path, mode: Mode) -> Result<Sample> {
    boot_within(cfg, log, mode, Duration::from_secs(300))
}

/// [`boot`] with another timeout per wait (EDK2 under icount on a loaded
/// host takes minutes of host time).
pub(super) fn boot_within(
    cfg: &VmConfig,
    log: &std::path::Path,
    mode: Mode,
    timeout: Duration,
) -> Result<Sample> {
    let mut vm = Vm::spawn(cfg, log, false)?;
    let line = vm.wait_prefix("HOTSTUB: init reached", timeout)?;
    let wall = vm.started.elapsed().as_secs_f64();
    let mut s = Sample::default();
    match mode {
        Mode::Wall => {
            vm.kill();
            // The kernel's own clock at init: wall time minus this is what
            // QEMU start-up and the firmware took.
            let up = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("uptime="))
                .and_then(|u| u.parse::<f64>().ok());
            s.init = wall;
            s.pre = up.map(|u| (wall - u).max(0.0));
        }
        Mode::Icount => {
            let v = vm.wait_prefix("HOTSTUB: vclock", timeout)?;
            vm.kill();
            let (init, kclock) =
                parse_vclock(&v).ok_or(format!("cannot read the guest's clock line `{v}`"))?;
            s.init = init;
            s.pre = Some(init - kclock);
        }
    }
    s.own = parse_own(&vm.lines());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vclock_line() {
        let l = "HOTSTUB: vclock [    1.812282] hotstub-vclock count=2408683594 hz=0";
        let (t, k) = parse_vclock(l).unwrap();
        assert!((t - 2.408683594).abs() < 1e-12 && (k - 1.812282).abs() < 1e-12);
        let l = "HOTSTUB: vclock [    2.5] hotstub-vclock count=6250000000 hz=1000000000";
        assert_eq!(parse_vclock(l), Some((6.25, 2.5)));
        assert_eq!(parse_vclock("HOTSTUB: vclock "), None);
    }

    #[test]
    fn own_time() {
        let l = vec!["Hotstub: 2.297 ms in firmware, starting Linux".to_string()];
        assert_eq!(parse_own(&l), Some(0.002297));
    }
}
