//! The runtime vCPU hotplug control channel (`resident::hotplug`): what the
//! host sends over the secure UART, interleaved with what a guest's AML
//! writes into the shared block and with PSCI calls. Input: byte 0 the
//! number of possible vCPUs (1-16), then records: 0x00 len bytes: channel
//! input (request ids, CAN resyncs and partial lines included; time since
//! the last input decides the idle drop); 0x01 off val: a guest write to
//! the block; 0x02 cpu: CPU_ON; 0x03 cpu: CPU_OFF; 0x04 ticks: time passes
//! (and the firmware polls); 0x05 x: a reset: the saved record must pass
//! its check and bring back the policy; 0x06 x SIZE bytes: a record as
//! found in secure RAM, checked.
#![no_main]

use hotstub::platform::cpus::{CpuModel, Vcpu};
use hotstub::psci::{self, ids, CpuStates, Outcome, Platform, Policy, Power};
use hotstub::resident::hotplug::record::{self, Record};
use hotstub::resident::hotplug::{self, Controller, Shared, SLOT};
use libfuzzer_sys::fuzz_target;

struct Block(Vec<u8>);
impl Shared for Block {
    fn get(&self, off: usize) -> u8 {
        self.0.get(off).copied().unwrap_or(0)
    }
    fn set(&mut self, off: usize, v: u8) {
        if let Some(b) = self.0.get_mut(off) {
            *b = v;
        }
    }
}

struct Fake;
impl Platform for Fake {
    fn standby_states(&self) -> &[u32] {
        &[]
    }
    fn cpu_on(&self, _: usize, _: u64) -> Result<(), i32> {
        Ok(())
    }
    fn cpu_standby(&self, _: u32) {}
    fn cpu_off(&self, _: usize) -> ! {
        unreachable!()
    }
    fn system_off(&self) -> ! {
        unreachable!()
    }
    fn system_reset(&self) -> ! {
        unreachable!()
    }
}

const RAM: (u64, u64) = (0x4000_0000, 0x1000_0000);

fuzz_target!(|data: &[u8]| {
    let Some((&n, mut rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16) + 1;
    let model = CpuModel::new(
        (0..n)
            .map(|i| Vcpu {
                uid: i as u32,
                hw_id: i as u64,
                enabled: i < 2,
            })
            .collect(),
    );
    let mut states = CpuStates::new(&model, 0).unwrap();
    let mut block = Block(vec![0; n * SLOT]);
    hotplug::init_shared(&states, &mut block);
    let mut ctl = Controller::new(1000, 20);
    let policy = Policy::new(&[RAM]);
    let mut now = 0u64;
    let mut out = String::new();
    while let [op, a, tail @ ..] = rest {
        rest = tail;
        let before: Vec<bool> = (0..n).map(|i| states.enabled(i)).collect();
        match op % 7 {
            0 => {
                let len = usize::from(*a).min(rest.len());
                let (bytes, tail) = rest.split_at(len);
                rest = tail;
                out.clear();
                ctl.input(bytes, &mut states, &mut block, now, &mut out);
                // Every answer is one of the documented kinds, printable,
                // behind the request id if the command had one.
                for l in out.lines() {
                    let l = match l.strip_prefix('@') {
                        Some(t) => {
                            let (id, rest) = t.split_once(' ').expect(l);
                            assert!((1..=16).contains(&id.len()), "{l}");
                            rest
                        }
                        None => l,
                    };
                    assert!(
                        l.starts_with("ok") || l.starts_with("error: ") || l.starts_with("event: "),
                        "{l}"
                    );
                    assert!(
                        l.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
                        "{l:?}"
                    );
                }
                // A command disables nothing by itself, and never the boot vCPU.
                for i in 0..n {
                    assert!(!before[i] || states.enabled(i));
                }
            }
            1 => {
                let Some((&v, tail)) = rest.split_first() else {
                    return;
                };
                rest = tail;
                block.set(usize::from(*a) % (n * SLOT), v);
            }
            2 | 3 => {
                let cpu = usize::from(*a) % n;
                let on = op % 7 == 2;
                let regs = if on {
                    [ids::CPU_ON_64 as u64, cpu as u64, RAM.0, 0]
                } else {
                    [ids::CPU_OFF as u64, 0, 0, 0]
                };
                let r = psci::handle(
                    &mut states,
                    &policy,
                    if on { 0 } else { cpu as u64 },
                    regs,
                    &Fake,
                );
                match r {
                    Outcome::Return(v) if on && v[0] == 0 => {
                        // Only an enabled vCPU starts.
                        assert!(states.enabled(cpu));
                        states.started(cpu);
                    }
                    Outcome::CpuOff => {
                        states.stopped(cpu);
                    }
                    _ => {}
                }
            }
            5 => {
                // What a reset keeps passes its check and is the policy
                // with the change in flight undone.
                let crc = record::possible_crc(0..n as u64);
                let r = ctl.record(&states, crc).unwrap();
                assert_eq!(r.check(n, crc), Ok(()));
                let pending = r.pending(n);
                for i in 0..n {
                    let undone = pending.as_ref().is_some_and(|p| p.2.contains(i));
                    assert!(undone || r.enabled(i) == states.enabled(i));
                }
                if *a & 1 == 1 {
                    let mut out = String::new();
                    hotplug::announce(&states, Ok(&r), &mut out);
                    assert!(out.lines().last().unwrap().starts_with("event: boot "));
                }
            }
            6 => {
                let mut r = Record([0; record::SIZE]);
                let len = record::SIZE.min(rest.len());
                r.0[..len].copy_from_slice(&rest[..len]);
                rest = &rest[len..];
                let crc = record::possible_crc(0..n as u64);
                if r.check(n, crc).is_ok() {
                    assert!(r.enabled(0));
                    let mut out = String::new();
                    hotplug::announce(&states, Ok(&r), &mut out);
                    assert!(out.bytes().all(|b| b == b'\n' || b == b' ' || b.is_ascii_graphic()));
                }
            }
            _ => {
                now += u64::from(*a) * 50;
                out.clear();
                ctl.poll(&mut states, &mut block, now, &mut out);
                // Only an off vCPU is ever disabled by a change.
                for i in 0..n {
                    if before[i] && !states.enabled(i) {
                        assert_eq!(states.power(i), Some(Power::Off), "{out}");
                    }
                }
            }
        }
        // The boot vCPU stays enabled.
        assert!(states.enabled(0));
    }
});
