//! The one way the aarch64 firmware stops: the fatal report and power-off,
//! used by the boot flow and by the resident firmware alike. It lives
//! apart from `mod.rs` so that the files below the boot flow (EL2, EL3,
//! the vectors) reach it without importing their parent.

use hotstub::boot::pipeline;
use hotstub::psci::Conduit;

use super::hw;

/// The conduit to QEMU's PSCI once the DT is read (None: there is none,
/// as at EL3).
pub static CONDUIT: spin::Once<Option<Conduit>> = spin::Once::new();

/// The conduit to QEMU's PSCI: what the DT says, else (before the DT is
/// read) QEMU's rule: SMC when the firmware has EL2, HVC when it runs at
/// EL1 (hw/arm/virt.c).
fn conduit() -> Option<Conduit> {
    match CONDUIT.get() {
        Some(c) => *c,
        None => match hw::current_el() {
            1 => Some(Conduit::Hvc),
            2 => Some(Conduit::Smc),
            _ => None,
        },
    }
}

/// At EL3 the secure GPIO's power-off line.
pub static SECURE_POWEROFF: hw::GpioLine = hw::GpioLine::new();

/// Powers the machine off; never returns.
pub fn power_off() -> ! {
    if let Some(c) = conduit() {
        hw::smccc(c, hotstub::psci::ids::SYSTEM_OFF, 0, 0, 0);
    }
    SECURE_POWEROFF.raise();
    // SYSTEM_OFF and the power-off line do not return; at EL3 with no
    // power-off line in the DT there is nothing left but to stop.
    hw::halt()
}

/// The resident firmware's fatal path (after the boot flow has ended):
/// the same one-line error, then off.
pub fn fatal(msg: &str) -> ! {
    pipeline::report(&msg);
    power_off()
}

/// An exception before the resident firmware runs (at EL1, always).
pub fn boot_exception(index: u64) -> ! {
    let (esr, elr, far) = hw::fault_registers();
    // Vector groups of 4 (Arm ARM D1.10.2): current EL with SP_EL0, current
    // EL with SP_ELx, lower EL AArch64, lower EL AArch32; within each,
    // synchronous, IRQ, FIQ, SError.
    const KIND: [&str; 4] = hw::EXCEPTION_KIND;
    pipeline::report(&format_args!(
        "unexpected {} exception at EL{} (vector {index}): ESR={esr:#x} ELR={elr:#x} FAR={far:#x}",
        KIND[(index & 3) as usize],
        hw::current_el()
    ));
    power_off()
}
