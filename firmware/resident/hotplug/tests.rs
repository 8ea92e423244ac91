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
fn a_disable_linux_finishes_after_the_timeout_is_reported() {
    let mut vm = Vm::new();
    assert!(vm.send("disable 1\n").1);
    vm.now = 20 * FREQ;
    assert_eq!(
        vm.poll(),
        "error: disable 1: no answer from Linux within 20 s; 1 stays enabled\n"
    );
    assert!(vm.states.enabled(1));
    // Linux gets there after all: offline, then `_EJ0`.
    vm.cpu_off(1);
    vm.ej0(1);
    assert_eq!(
        vm.poll(),
        "event: disable 1 done late, after its error line\n"
    );
    assert!(!vm.states.enabled(1));
    assert_eq!(vm.slot(1, STA), 0);
    assert_eq!(vm.cpu_on(1), ids::ret::DENIED as i64);
    assert!(vm
        .send("status\n")
        .0
        .starts_with("ok possible=0-3 enabled=0 "));
    // Once only; and a guest's own eject of another vCPU changes nothing.
    assert_eq!(vm.poll(), "");
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

#[test]
fn replies_echo_the_request_id() {
    let mut vm = Vm::new();
    assert_eq!(
        vm.send("@7 status\n").0,
        "@7 ok possible=0-3 enabled=0-1 online=0-1\n"
    );
    let (out, raise) = vm.send("@a.B-9_z enable 2\n");
    assert!(raise);
    assert_eq!(
        out,
        "@a.B-9_z ok possible=0-3 enabled=0-2 online=0-1 pending=enable:2\n"
    );
    // The closing event goes to the change's id, whatever asked since.
    assert!(vm.send("@8 disable 3\n").0.starts_with("@8 ok "));
    assert!(vm.send("@9 enable 3\n").0.starts_with("@9 error: busy: "));
    vm.ost(2, 1, 0);
    assert_eq!(vm.poll(), "@a.B-9_z event: enable 2 done\n");
    // Without an id, as before; errors echo it too.
    assert!(vm.send("status\n").0.starts_with("ok "));
    assert_eq!(
        vm.send("@1 frobnicate\n").0,
        "@1 error: unknown command 'frobnicate' (commands: enable, disable, status, help)\n"
    );
    assert_eq!(
        vm.send("@1\n").0,
        "@1 error: no command after the request id\n"
    );
    for bad in ["@ status\n", "@x/y status\n", "@12345678901234567 status\n"] {
        let out = vm.send(bad).0;
        assert!(out.starts_with("error: a request id is @"), "{bad}: {out}");
    }
    assert!(vm
        .send("@1234567890123456 help\n")
        .0
        .starts_with("@1234567890123456 ok "));
}

#[test]
fn a_dead_clients_partial_line_is_dropped() {
    let mut vm = Vm::new();
    // CAN drops a partial line, an overlong one too, without an answer.
    assert_eq!(vm.send("disable 1").0, "");
    assert_eq!(
        vm.send("\x18status\n").0,
        "ok possible=0-3 enabled=0-1 online=0-1\n"
    );
    assert!(!vm.ctl.busy());
    assert_eq!(vm.send(&"x".repeat(5000)).0, "");
    assert_eq!(
        vm.send("\x18@2 status\n").0,
        "@2 ok possible=0-3 enabled=0-1 online=0-1\n"
    );
    // The dead client: garbage, a 5,000-byte line, bad commands,
    // a partial line; the next client a second later is not glued to it.
    let mut junk = alloc::vec![0xffu8, 0x00, 0x1b, b'\n'];
    junk.extend(core::iter::repeat_n(b'x', 5000));
    junk.extend(b"\nenable 99\ndisable 0\nfrobnicate\nxxxxxxxxxx");
    vm.out.clear();
    vm.ctl
        .input(&junk, &mut vm.states, &mut vm.shared, vm.now, &mut vm.out);
    assert_eq!(vm.out.lines().count(), 5, "{}", vm.out);
    assert!(vm.out.lines().all(|l| l.starts_with("error: ")));
    vm.now += FREQ * IDLE_MS / 1000 - 1;
    assert_eq!(vm.send("x").0, "", "still the same line");
    vm.now += FREQ * IDLE_MS / 1000;
    assert_eq!(
        vm.send("status\n").0,
        "ok possible=0-3 enabled=0-1 online=0-1\n"
    );
    vm.send("enable");
    vm.now += FREQ * IDLE_MS / 1000;
    assert_eq!(vm.send(&"y".repeat(200)).0, "");
    vm.now += FREQ * IDLE_MS / 1000;
    assert_eq!(vm.send("help\n").0.lines().count(), 1);
    assert!(!vm.ctl.busy());
}

fn boot_lines(found: Result<&record::Record, &str>) -> String {
    let vm = Vm::new();
    let mut out = String::new();
    announce(&vm.states, found, &mut out);
    out
}

const CRC: fn() -> u32 = || record::possible_crc(0..4);

#[test]
fn the_policy_is_saved_with_the_change_in_flight() {
    let mut vm = Vm::new();
    let rec = |vm: &Vm| vm.ctl.record(&vm.states, CRC()).unwrap();
    let enabled = |r: &record::Record| (0..4).filter(|&i| r.enabled(i)).collect::<Vec<_>>();
    assert_eq!(rec(&vm).check(4, CRC()), Ok(()));
    assert_eq!(enabled(&rec(&vm)), [0, 1]);
    assert_eq!(rec(&vm).pending(4), None);
    // An enable in flight is saved as not done: a reset leaves 3 disabled.
    vm.send("@5 enable 3\n");
    let r = rec(&vm);
    assert_eq!(r.check(4, CRC()), Ok(()));
    assert_eq!(enabled(&r), [0, 1]);
    assert_eq!(
        boot_lines(Ok(&r)),
        "@5 error: enable 3: interrupted by a reset; 3 stays disabled\n\
         event: boot possible=0-3 enabled=0-1 online=0-1 policy=saved\n"
    );
    vm.ost(3, 1, 0);
    vm.poll();
    assert_eq!(enabled(&rec(&vm)), [0, 1, 3]);
    assert_eq!(rec(&vm).pending(4), None);
    // A disable in flight: 2 stays enabled, even once ejected and off.
    vm.send("enable 2\n");
    vm.ost(2, 1, 0);
    vm.poll();
    vm.cpu_on(2);
    vm.send("disable 2\n");
    vm.cpu_off(2);
    vm.ej0(2);
    vm.poll();
    assert!(!vm.states.enabled(2));
    let r = rec(&vm);
    assert_eq!(enabled(&r), [0, 1, 2, 3]);
    assert_eq!(
        boot_lines(Ok(&r)),
        "error: disable 2: interrupted by a reset; 2 stays enabled\n\
         event: boot possible=0-3 enabled=0-1 online=0-1 policy=saved\n"
    );
}

#[test]
fn a_record_that_fails_its_check_is_not_used() {
    let vm = Vm::new();
    let good = vm.ctl.record(&vm.states, CRC()).unwrap();
    let why = |r: &record::Record, n, crc| r.check(n, crc).unwrap_err();
    let zero = record::Record([0; record::SIZE]);
    assert_eq!(why(&zero, 4, CRC()), record::NONE);
    let mut b = good;
    b.0[40] ^= 4;
    assert_eq!(why(&b, 4, CRC()), "enabled-cpus (record: checksum)");
    assert_eq!(why(&good, 5, CRC()), "enabled-cpus (record: other vCPUs)");
    let other = record::possible_crc(1..5);
    assert_eq!(why(&good, 4, other), "enabled-cpus (record: other vCPUs)");
    // Well-formed but impossible: re-sealed with a valid checksum.
    let reseal = |f: &dyn Fn(&mut [u8; record::SIZE])| {
        let mut b = good;
        f(&mut b.0);
        let sum = crate::boot::efi::crc32(&b.0[..record::SIZE - 4]);
        b.0[record::SIZE - 4..].copy_from_slice(&sum.to_le_bytes());
        b.check(4, CRC()).err().unwrap_or("ok")
    };
    assert_eq!(reseal(&|_| {}), "ok");
    assert!(reseal(&|b| b[32] = 0b10).ends_with("boot vCPU disabled)"));
    assert!(reseal(&|b| b[32] = 0b10001).ends_with("beyond the possible ones)"));
    assert!(reseal(&|b| b[97] = 1).ends_with("beyond the possible ones)"));
    assert!(reseal(&|b| b[10] = 3).ends_with("change kind)"));
    assert!(reseal(&|b| (b[11], b[16]) = (1, b' ')).ends_with("request id)"));
    assert!(reseal(&|b| b[11] = 17).ends_with("request id)"));
    assert!(reseal(&|b| b[11] = 255).ends_with("request id)"));
    assert_eq!(reseal(&|b| (b[10], b[11], b[16]) = (2, 1, b'q')), "ok");
    assert_eq!(
        boot_lines(Err(record::NONE)),
        "event: boot possible=0-3 enabled=0-1 online=0-1 policy=enabled-cpus\n"
    );
    assert_eq!(
        boot_lines(Err(why(&b, 4, CRC()))),
        "event: boot possible=0-3 enabled=0-1 online=0-1 policy=enabled-cpus (record: checksum)\n"
    );
    assert_eq!(record::Record::new(513, |_| true, None, 0), None);
}
