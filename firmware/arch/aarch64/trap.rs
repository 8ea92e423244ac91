//! Where the vectors (`vectors.rs`) land in Rust: an expected trap goes to
//! the handler of the EL the firmware runs at (`el2.rs`, `el3.rs`), any
//! other exception to the one fatal report. This is the only file that
//! knows both ELs' handlers; nothing in `arch/aarch64` but the vectors'
//! symbols reaches it.

use super::vectors::Frame;
use super::{cpu, el2, el3, hw, psci_glue};

/// An expected trap from the lower EL: at EL3 an SMC or (kind 1) a Group 0
/// FIQ; at EL2 an HVC, SMC or stage-2 abort. Anything else is unexpected.
#[no_mangle]
extern "C" fn hotstub_sync(f: &mut Frame, kind: u64) {
    match (hw::current_el(), kind) {
        (3, _) => el3::sync(f, kind),
        (2, 0) => el2::sync(f),
        _ => hotstub_unexpected(8 + 2 * kind),
    }
}

/// Any other exception (`index`: the vector, Arm ARM D1.3.1 order): the
/// resident firmware's per-CPU report once it runs below the kernel, the
/// boot report before.
#[no_mangle]
extern "C" fn hotstub_unexpected(index: u64) -> ! {
    let el = hw::current_el();
    if el == 1 || !psci_glue::is_set_up() {
        super::stop::boot_exception(index)
    }
    let (esr, elr, far) = hw::fault_registers();
    // Below EL3 sit EL2 and EL1; below EL2 only EL1.
    let (here, lower) = if el == 2 {
        ("EL2", "EL1")
    } else {
        ("EL3", "a lower EL")
    };
    let (from, mode) = [
        (here, " (SP_EL0)"),
        (here, ""),
        (lower, " (AArch64)"),
        (lower, " (AArch32)"),
    ][(index >> 2) as usize & 3];
    let kind = hw::EXCEPTION_KIND[(index & 3) as usize];
    let hpfar = if el == 2 { cpu::hpfar() } else { 0 };
    psci_glue::unexpected(
        &format_args!("{kind} exception from {from}{mode}"),
        esr,
        elr,
        far,
        hpfar,
    )
}
