//! The host's control channel at EL3 (runtime vCPU hotplug, README
//! "Runtime vCPU hotplug"): the secure-only PL011 the DT names, its
//! receive interrupt taken at EL3 as a secure Group 0 interrupt, the
//! firmware's GED interrupt raised towards Linux, and the secure physical
//! timer that polls Linux's answers while a change is in flight. The
//! protocol and the state machine are `hotstub::resident::hotplug`'s.
//!
//! Nothing here is reachable from the normal world: the UART is only in the
//! secure address space (QEMU virt `secure=on`), its interrupt is Group 0
//! (a normal-world write to the GIC cannot touch it), and the policy lives
//! in the PSCI state in secure RAM.
//!
//! The policy also outlives a reset: the last page of the secure RAM holds
//! `hotplug::record`, rewritten before every answer goes out and read by
//! the next boot's description (`boot::machine::Virt::restore_policy`)
//! before the tables are built. QEMU resets devices, not RAM contents, and
//! maps a new process's RAM zeroed: a reset keeps the page, a cold start
//! finds no record.

use alloc::string::String;
use core::arch::asm;
use core::fmt::Write;
use core::ptr::{read_volatile, write_volatile};

use hotstub::acpi::cpuhp::CpuHotplug;
use hotstub::resident::hotplug::record::{self, Found, Record};
use hotstub::resident::hotplug::{self, Controller, Shared, SLOT};

use super::super::{hw, psci_glue};
use super::gic;

/// Linux's answers are polled at 100 Hz while a change is in flight.
const POLL_HZ: u64 = 100;
/// How long Linux may take to finish a change: under TCG on a loaded host a
/// hot-add takes a few seconds at most.
const TIMEOUT_S: u64 = 30;

/// PL011 registers (PL011 TRM 3.2): data, flags (RXFE bit 4, TXFF bit 5),
/// line control, control, interrupt mask, interrupt clear.
const DR: u64 = 0x000;
const FR: u64 = 0x018;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IMSC: u64 = 0x038;
const ICR: u64 = 0x044;

struct Uart(u64);

impl Uart {
    fn reg(&self, off: u64) -> *mut u32 {
        (self.0 + off) as *mut u32
    }

    fn read(&self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        // SAFETY: registers of the secure PL011 the DT names. The interrupt
        // is cleared before the FIFO is drained, not after: a byte that
        // arrives in between then raises it again instead of waiting,
        // unseen, for the next one.
        unsafe {
            write_volatile(self.reg(ICR), 0x7ff);
            while n < buf.len() && read_volatile(self.reg(FR)) & (1 << 4) == 0 {
                buf[n] = read_volatile(self.reg(DR)) as u8;
                n += 1;
            }
        }
        n
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: registers of the secure PL011 the DT names.
            unsafe {
                while read_volatile(self.reg(FR)) & (1 << 5) != 0 {}
                write_volatile(self.reg(DR), b as u32);
            }
        }
        Ok(())
    }
}

/// The shared block in normal-world RAM (identity mapped at EL3).
struct Block {
    base: u64,
    len: usize,
}

impl Shared for Block {
    fn get(&self, off: usize) -> u8 {
        if off >= self.len {
            return 0;
        }
        // SAFETY: inside the block the firmware reserved for this.
        unsafe { read_volatile((self.base + off as u64) as *const u8) }
    }
    fn set(&mut self, off: usize, v: u8) {
        if off < self.len {
            // SAFETY: inside the block the firmware reserved for this.
            unsafe { write_volatile((self.base + off as u64) as *mut u8, v) }
        }
    }
}

/// The bytes at the record's place (`record::place`), at boot.
pub fn read_record(at: u64) -> Record {
    let mut record = Record([0; record::SIZE]);
    for (i, v) in record.0.iter_mut().enumerate() {
        // SAFETY: the last page of the secure RAM the DT describes, which
        // the resident firmware below it never reaches (`el3::enter`);
        // Device memory in the boot map, so byte reads only.
        *v = unsafe { read_volatile((at + i as u64) as *const u8) };
    }
    record
}

/// Rewrites the record at `at` (at every answer: cheaper in image size than
/// keeping a copy to compare with); `crc` ties it to the possible vCPUs.
fn keep(ctl: &Controller, at: u64, crc: u32) {
    let Some(r) = psci_glue::with_states(|s| ctl.record(s, crc)) else {
        return;
    };
    for (i, v) in r.0.iter().enumerate() {
        // SAFETY: the record's page in secure RAM (`read_record`), Normal
        // memory in the resident map.
        unsafe { write_volatile((at + i as u64) as *mut u8, *v) };
    }
    // A reset drops what the caches hold: the next boot reads memory.
    super::super::mmu::clean_to_poc(at, record::SIZE as u64);
}

struct Channel {
    ctl: Controller,
    uart: Uart,
    uart_intid: u32,
    block: Block,
    gicd: u64,
    ged_intid: u32,
    /// Where the policy record goes and its vCPUs' CRC (`record::Found`).
    kept: Option<(u64, u32)>,
}

static CHANNEL: spin::Once<spin::Mutex<Channel>> = spin::Once::new();

/// The channel is set up (and FIQs must be routed to EL3).
pub fn active() -> bool {
    CHANNEL.get().is_some()
}

/// Takes the secure UART (`uart`: base, INTID) and its interrupt for the
/// channel, routed to `boot_mpidr`, and writes the shared block from the
/// policy; with the boot's policy record (`saved`), announces the boot and
/// keeps the record from now on.
///
/// # Safety
/// `uart` must be the DT's secure PL011 and `gicd` its GICv3 distributor,
/// set up by `gic::init`, both mapped as Device memory; `h.block` the
/// reserved shared block.
pub unsafe fn init(
    h: CpuHotplug,
    uart: (u64, u32),
    gicd: u64,
    boot_mpidr: u64,
    cpus: usize,
    saved: Option<&Found>,
) {
    let mut u = Uart(uart.0);
    // SAFETY: the secure PL011's registers (caller's contract): 8 bits with
    // FIFOs, UART, TX and RX on, receive and receive-timeout interrupts.
    unsafe {
        write_volatile(u.reg(LCR_H), 0x70);
        write_volatile(u.reg(CR), 0x301);
        write_volatile(u.reg(ICR), 0x7ff);
        write_volatile(u.reg(IMSC), (1 << 4) | (1 << 6));
        gic::secure_spi(gicd, uart.1, boot_mpidr);
    }
    let mut block = Block {
        base: h.block,
        len: cpus * SLOT,
    };
    psci_glue::with_states(|s| hotplug::init_shared(s, &mut block));
    let (_, freq) = hw::counter();
    let ctl = Controller::new(freq, TIMEOUT_S);
    if let Some(f) = saved {
        psci_glue::with_states(|s| hotplug::announce(s, f.saved(), &mut u));
        // The change a reset interrupted is answered: no longer in flight.
        keep(&ctl, f.at, f.crc);
    }
    CHANNEL.call_once(|| {
        spin::Mutex::new(Channel {
            ctl,
            uart: u,
            uart_intid: uart.1,
            block,
            gicd,
            ged_intid: h.intid,
            kept: saved.map(|f| (f.at, f.crc)),
        })
    });
}

/// Sends what the controller answered once the record holds the state the
/// answer reports: a reset right after the host read `ok ... pending=...`
/// finds the change in flight (and the next boot answers it), one right
/// after `event: ... done` finds it done.
fn answer(ctl: &Controller, kept: Option<(u64, u32)>, uart: &mut Uart, out: &str) {
    if let Some((at, crc)) = kept {
        keep(ctl, at, crc);
    }
    let _ = uart.write_str(out);
}

/// A Group 0 interrupt (not the wake-up SGI) was acknowledged on this CPU:
/// serve the channel. Runs at EL3 with interrupts masked, from the FIQ
/// vector or a parked CPU's loop.
fn handle(intid: u32) {
    let Some(ch) = CHANNEL.get() else { return };
    let mut guard = ch.lock();
    let Channel {
        ctl,
        uart,
        uart_intid,
        block,
        gicd,
        ged_intid,
        kept,
    } = &mut *guard;
    let (now, freq) = hw::counter();
    let kept = *kept;
    if intid == *uart_intid {
        let mut buf = [0u8; 64];
        loop {
            let n = uart.read(&mut buf);
            if n == 0 {
                break;
            }
            let mut out = String::new();
            if psci_glue::with_states(|s| ctl.input(&buf[..n], s, block, now, &mut out)) {
                // SAFETY: the distributor (init's contract); a Non-secure
                // SPI Linux owns, made pending after the block is written.
                unsafe { gic::pend_spi(*gicd, *ged_intid) };
            }
            answer(ctl, kept, uart, &out);
        }
    }
    if ctl.busy() {
        let mut out = String::new();
        psci_glue::with_states(|s| ctl.poll(s, block, now, &mut out));
        answer(ctl, kept, uart, &out);
    }
    let arm = ctl.busy();
    // SAFETY: this CPU's secure physical timer, which only this module uses:
    // re-armed for the next poll or stopped (either clears its interrupt).
    unsafe {
        if arm {
            asm!("msr S3_7_C14_C2_0, {}", "msr S3_7_C14_C2_1, {}", "isb",
                 in(reg) freq / POLL_HZ, in(reg) 1u64, options(nostack));
        } else {
            asm!("msr S3_7_C14_C2_1, xzr", "isb", options(nostack));
        }
    }
}

/// Takes every pending Group 0 interrupt on this CPU: the channel's go to
/// `handle`, the wake-up SGI is only acknowledged.
pub fn serve_group0() {
    loop {
        let i = gic::ack0();
        if i >= 1020 {
            break;
        }
        if i != gic::WAKE_SGI {
            handle(i);
        }
        gic::eoi0(i);
    }
}
