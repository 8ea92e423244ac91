use super::*;
use crate::platform::cpus::{CpuModel, Vcpu};
use crate::psci::{self, ids, Outcome, Platform, Policy};
use alloc::string::String;
use alloc::vec::Vec;

const FREQ: u64 = 1000;
const RAM: (u64, u64) = (0x4000_0000, 0x1000_0000);

impl Shared for Vec<u8> {
    fn get(&self, off: usize) -> u8 {
        self[off]
    }
    fn set(&mut self, off: usize, v: u8) {
        self[off] = v;
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

/// `-smp 4` with `enabled-cpus=0-1`, as in the acceptance test.
struct Vm {
    states: CpuStates,
    shared: Vec<u8>,
    ctl: Controller,
    out: String,
    now: u64,
}

impl Vm {
    fn new() -> Self {
        let model = CpuModel::new(
            (0..4)
                .map(|i| Vcpu {
                    uid: i,
                    hw_id: i as u64,
                    enabled: i < 2,
                })
                .collect(),
        );
        let states = CpuStates::new(&model, 0).unwrap();
        let mut shared = alloc::vec![0xaa; 4 * SLOT];
        init_shared(&states, &mut shared);
        let mut vm = Vm {
            states,
            shared,
            ctl: Controller::new(FREQ, 20),
            out: String::new(),
            now: 0,
        };
        vm.cpu_on(1);
        vm
    }

    /// Sends `line` and returns the answer lines.
    fn send(&mut self, line: &str) -> (String, bool) {
        self.out.clear();
        let raise = self.ctl.input(
            line.as_bytes(),
            &mut self.states,
            &mut self.shared,
            self.now,
            &mut self.out,
        );
        (core::mem::take(&mut self.out), raise)
    }

    fn poll(&mut self) -> String {
        self.ctl
            .poll(&mut self.states, &mut self.shared, self.now, &mut self.out);
        core::mem::take(&mut self.out)
    }

    fn psci(&mut self, caller: u64, regs: [u64; 4]) -> Outcome {
        let policy = Policy::new(&[RAM]);
        psci::handle(&mut self.states, &policy, caller, regs, &Fake)
    }

    fn cpu_on(&mut self, i: usize) -> i64 {
        let r = self.psci(0, [ids::CPU_ON_64 as u64, i as u64, RAM.0, 0]);
        let Outcome::Return(v) = r else {
            panic!("{r:?}")
        };
        if v[0] == 0 {
            assert!(self.states.started(i).is_some());
        }
        v[0] as i64
    }

    fn cpu_off(&mut self, i: usize) {
        assert_eq!(
            self.psci(i as u64, [ids::CPU_OFF as u64, 0, 0, 0]),
            Outcome::CpuOff
        );
        assert!(self.states.stopped(i));
    }

    fn slot(&self, i: usize, off: usize) -> u8 {
        self.shared[i * SLOT + off]
    }

    /// What Linux's AML does: `_EVT` takes the notify code.
    fn evt(&mut self, i: usize) -> u8 {
        core::mem::take(&mut self.shared[i * SLOT + NTF])
    }

    fn ost(&mut self, i: usize, event: u32, status: u32) {
        let v = OST_VALID | status << 16 | event;
        self.shared[i * SLOT + OST..i * SLOT + OST + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn ej0(&mut self, i: usize) {
        self.shared[i * SLOT + STA] = 0;
        self.shared[i * SLOT + EJ] = 1;
    }
}

#[test]
fn enable_then_disable_through_linux() {
    let mut vm = Vm::new();
    assert_eq!(
        vm.send("status\n").0,
        "ok possible=0-3 enabled=0-1 online=0-1\n"
    );
    assert_eq!(vm.cpu_on(2), ids::ret::DENIED as i64);

    let (out, raise) = vm.send("enable 2\n");
    assert_eq!(
        out,
        "ok possible=0-3 enabled=0-2 online=0-1 pending=enable:2\n"
    );
    assert!(raise);
    assert_eq!((vm.slot(2, STA), vm.evt(2)), (1, DEVICE_CHECK));
    assert_eq!(vm.poll(), "");
    vm.ost(2, 1, 0);
    assert_eq!(vm.poll(), "event: enable 2 done\n");
    assert_eq!(vm.cpu_on(2), 0);
    assert_eq!(
        vm.send("status\n").0,
        "ok possible=0-3 enabled=0-2 online=0-2\n"
    );

    let (out, raise) = vm.send("disable 2\n");
    assert!(raise);
    assert_eq!(
        out,
        "ok possible=0-3 enabled=0-2 online=0-2 pending=disable:2\n"
    );
    assert_eq!(vm.evt(2), EJECT_REQUEST);
    vm.ost(2, 3, OST_IN_PROGRESS);
    assert_eq!(vm.poll(), "");
    vm.cpu_off(2);
    // A poll between `_EJ0`'s two stores leaves the STA it cleared alone
    // (Linux reads _STA right after).
    vm.shared[2 * SLOT + STA] = 0;
    assert_eq!(vm.poll(), "");
    assert_eq!(vm.slot(2, STA), 0);
    vm.ej0(2);
    // Disabled at once (Linux reads _STA right after _EJ0), done at
    // Linux's closing _OST.
    assert_eq!(vm.poll(), "");
    assert_eq!(vm.slot(2, STA), 0);
    assert_eq!(vm.cpu_on(2), ids::ret::DENIED as i64);
    assert!(vm
        .send("enable 2\n")
        .0
        .starts_with("error: busy: disable 2 "));
    vm.ost(2, 3, 0);
    assert_eq!(vm.poll(), "event: disable 2 done\n");
    assert_eq!(vm.slot(2, STA), 0);
    assert_eq!(vm.cpu_on(2), ids::ret::DENIED as i64);
    assert_eq!(
        vm.send("status\n").0,
        "ok possible=0-3 enabled=0-1 online=0-1\n"
    );
}

#[test]
fn refusals_timeouts_and_no_ops() {
    let mut vm = Vm::new();
    // No-op enable: answered, nothing for Linux.
    assert_eq!(
        vm.send("enable 0-1\n"),
        ("ok possible=0-3 enabled=0-1 online=0-1\n".into(), false)
    );
    // Linux refuses the eject (a busy CPU): stays enabled and online.
    assert!(vm.send("disable 1\n").1);
    vm.ost(1, 3, 1);
    assert_eq!(
        vm.poll(),
        "error: disable 1: Linux refused (_OST status 0x1)\n"
    );
    assert!(vm.states.enabled(1));
    assert_eq!(vm.slot(1, STA), 1);
    // No answer at all: the enable is taken back after the timeout.
    assert!(vm.send("enable 3\n").1);
    assert!(vm
        .send("enable 2\n")
        .0
        .starts_with("error: busy: enable 3 "));
    assert!(vm.send("status\n").0.ends_with("pending=enable:3\n"));
    vm.now = 19 * FREQ;
    assert_eq!(vm.poll(), "");
    vm.now = 20 * FREQ;
    assert_eq!(
        vm.poll(),
        "error: enable 3: no answer from Linux within 20 s; 3 stays disabled\n"
    );
    assert!(!vm.states.enabled(3));
    assert_eq!(vm.slot(3, STA), 0);
    assert!(!vm.ctl.busy());
}

#[test]
fn a_lying_guest_cannot_disable_or_enable() {
    let mut vm = Vm::new();
    assert!(vm.send("disable 1\n").1);
    // `_EJ0` without CPU_OFF: ignored, the copy restored.
    vm.ej0(1);
    assert_eq!(vm.poll(), "");
    assert_eq!((vm.slot(1, STA), vm.slot(1, EJ)), (1, 0));
    assert!(vm.states.enabled(1));
    // Writing STA of a disabled vCPU changes nothing for PSCI.
    vm.shared[3 * SLOT + STA] = 1;
    assert_eq!(vm.cpu_on(3), ids::ret::DENIED as i64);
}

#[test]
fn bad_input_gets_one_error_line_each() {
    let mut vm = Vm::new();
    let cases: &[(&[u8], &str)] = &[
        (b"frobnicate 2\n", "error: unknown command 'frobnicate'"),
        (b"enable\n", "error: enable needs a CPU list"),
        (b"enable 4\n", "error: "),
        (b"enable 2-x\n", "error: "),
        (b"disable 0\n", "error: cpu 0 is the boot vCPU"),
        (b"disable 0-1\n", "error: cpu 0 is the boot vCPU"),
        (b"status now\n", "error: status takes no argument"),
        (
            b"\xff\x00garbage\n",
            "error: byte 0xff is not printable ASCII",
        ),
    ];
    for (line, want) in cases {
        vm.out.clear();
        let raise = vm
            .ctl
            .input(line, &mut vm.states, &mut vm.shared, 0, &mut vm.out);
        assert!(!raise);
        assert!(vm.out.starts_with(want), "{line:?}: {}", vm.out);
        assert_eq!(vm.out.lines().count(), 1);
    }
    let long = alloc::format!("enable {}\n", "1,".repeat(100));
    assert_eq!(vm.send(&long).0, "error: line longer than 120 bytes\n");
    // Blank lines are ignored, and the channel still works; split input
    // is joined, CR LF is fine.
    assert_eq!(vm.send("\n\r\n").0, "");
    assert_eq!(vm.send("sta").0, "");
    assert_eq!(
        vm.send("tus\r\n").0,
        "ok possible=0-3 enabled=0-1 online=0-1\n"
    );
    assert!(!vm.ctl.busy());
}

#[test]
fn eject_without_closing_ost_ends_after_the_grace_time() {
    let mut vm = Vm::new();
    assert!(vm.send("disable 1\n").1);
    vm.cpu_off(1);
    vm.ej0(1);
    assert_eq!(vm.poll(), "");
    vm.now = 2 * FREQ - 1;
    assert_eq!(vm.poll(), "");
    vm.now = 2 * FREQ;
    assert_eq!(vm.poll(), "event: disable 1 done\n");
    assert!(!vm.states.enabled(1));
}

#[test]
fn many_cycles_stay_consistent() {
    let mut vm = Vm::new();
    for _ in 0..100 {
        assert!(vm.send("enable 3\n").1);
        assert_eq!(vm.evt(3), DEVICE_CHECK);
        vm.ost(3, 1, 0);
        assert_eq!(vm.poll(), "event: enable 3 done\n");
        assert_eq!(vm.cpu_on(3), 0);
        assert!(vm.send("disable 3\n").1);
        assert_eq!(vm.evt(3), EJECT_REQUEST);
        vm.cpu_off(3);
        vm.ej0(3);
        vm.ost(3, 3, 0);
        assert_eq!(vm.poll(), "event: disable 3 done\n");
    }
    assert_eq!(
        vm.send("status\n").0,
        "ok possible=0-3 enabled=0-1 online=0-1\n"
    );
}

#[test]
fn cpu_sets_print_as_lists() {
    let mut s = CpuSet::none(8);
    assert_eq!(alloc::format!("{s}"), "none");
    for i in [0, 1, 2, 4, 6, 7] {
        s.set(i, true);
    }
    assert_eq!(alloc::format!("{s}"), "0-2,4,6-7");
}
