//! The end of every x86 fatal path: the board's own power-off, then a
//! reset, in the order `platform::x86_board` gives for the board found.

use super::io::*;
use super::q35;
use hotstub::platform::x86_board::{self as board, Board, Stop};

/// The board, from the host bridge at 00:00.0.
pub fn identify() -> Board {
    Board::from_host_bridge(pci_read32(bdf(0, 0, 0), 0))
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
