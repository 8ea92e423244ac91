//! The end of every x86 fatal path: the board's own power-off, then a
//! reset, in the order `platform::x86_board` gives for the board found.

use super::io::*;
use super::q35;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use hotstub::platform::x86_board::{self as board, Board, Stop};

/// cloud-hypervisor's ACPI shutdown device: I/O port 0x600, where writing
/// SLP_TYP 5 with SLP_EN (5 << 2 | 1 << 5) powers off (cloud-hypervisor
/// devices/src/acpi.rs, AcpiShutdownDevice; its FADT's sleep control
/// register). Used until CH's FADT is checked. Kept here, not with the CH
/// boot (`ch.rs`, in the disk code a `-bios` boot may not have loaded),
/// because every fatal path reads it.
const CH_SLEEP_PORT: u64 = 0x600;
const CH_S5: u8 = 5 << 2 | 1 << 5;
static ON_CH: AtomicBool = AtomicBool::new(false);
/// The sleep control register (an I/O port, or memory with bit 63 set)
/// and its S5 value.
static SLEEP_REG: AtomicU64 = AtomicU64::new(CH_SLEEP_PORT);
static SLEEP_VALUE: AtomicU8 = AtomicU8::new(CH_S5);
const MEMORY_SPACE: u64 = 1 << 63;

/// The firmware runs on cloud-hypervisor: its sleep register stops it.
pub fn on_cloud_hypervisor() {
    ON_CH.store(true, Ordering::Relaxed);
}

/// The sleep control register the VMM's FADT names, and its S5 value.
pub fn set_sleep_register(io_space: bool, address: u64, s5: u8) {
    let reg = if io_space {
        address
    } else {
        address | MEMORY_SPACE
    };
    SLEEP_REG.store(reg, Ordering::Relaxed);
    SLEEP_VALUE.store(s5, Ordering::Relaxed);
}

/// On cloud-hypervisor, S5 through the sleep control register; returns if
/// the VMM did not stop (or this is not CH).
pub fn stop_cloud_hypervisor() {
    if !ON_CH.load(Ordering::Relaxed) {
        return;
    }
    let reg = SLEEP_REG.load(Ordering::Relaxed);
    let v = SLEEP_VALUE.load(Ordering::Relaxed);
    if reg & MEMORY_SPACE != 0 {
        mmio_write8(reg & !MEMORY_SPACE, v);
    } else {
        outb(reg as u16, v);
    }
    settle();
}

/// The board, from the host bridge at 00:00.0 (or microvm's first
/// virtio-mmio transport where there is none).
pub fn identify() -> Board {
    Board::identify(pci_read32(bdf(0, 0, 0), 0), || {
        mmio_read32(board::MICROVM_VIRTIO_MMIO)
    })
}

/// Tries every way this board has to stop; returns only if none worked.
pub fn stop() {
    for s in identify().stops(q35::has_i8042()) {
        match s {
            // PMBASE was enabled at entry (q35::enable_pm).
            Stop::Ich9S5 => outw(q35::PM1_CNT, board::PM1_CNT_S5),
            Stop::Piix4S5 => {
                let (dev, func) = board::PIIX4_PM_DEV;
                let pm = bdf(0, dev, func);
                // Same base as on q35: both leave 0x600 free for it.
                pci_write32(pm, board::PIIX4_PMBA, u32::from(q35::PM_BASE));
                pci_write8(pm, board::PIIX4_PMREGMISC, board::PIIX4_PMIOSE);
                outw(q35::PM1_CNT, board::PM1_CNT_S5);
            }
            Stop::GedS5 => mmio_write8(board::MICROVM_GED_SLEEP_CTL, board::GED_SLEEP_CTL_S5),
            Stop::KbcReset => outb(board::KBC_CMD_PORT, board::KBC_RESET),
            Stop::TripleFault => triple_fault(),
        }
        settle();
    }
}

/// QEMU acts on a power-off or reset request from its main loop while
/// this vCPU runs on; a short wait keeps the next, harsher step from
/// racing the one already taken.
fn settle() {
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
}

/// Any exception with an empty IDT escalates to a triple fault, which
/// resets the machine (Intel SDM vol. 3 6.15, interrupt 8; QEMU requests a
/// system reset, an exit under `-no-reboot`).
fn triple_fault() {
    use x86_64::structures::DescriptorTablePointer;
    let empty = DescriptorTablePointer {
        limit: 0,
        base: x86_64::VirtAddr::zero(),
    };
    // SAFETY: deliberately unrecoverable: nothing runs after the fault but
    // the machine's reset; no memory is touched.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("int3", options(nomem, nostack));
    }
}
