//! PCI interrupt routing on q35, one source read from two sides:
//! - the build script (`firmware/build/main.rs`, through `#[path]`) turns it
//!   into the constant `_PRT` the firmware embeds: emitting its 128
//!   packages at run time was most of the x86 firmware's instructions
//!   before the kernel;
//! - the library's tests build their reference `_PRT` from it
//!   (`acpi/oracle/x86.rs`), so both sides stay one table.
//!
//! The firmware itself carries only the bytes; keep this file free of
//! `crate::` paths, which the build script does not have.

/// QEMU's ICH9 model wires INTx of every root-bus slot to PIRQ E-H, rotated
/// by slot ((slot + pin) % 4 + 4, hw/isa/lpc_ich9.c ich9_lpc_initfn), and
/// PIRQ A-H reach I/O APIC inputs 16-23: (device, pin, GSI) for each slot
/// and pin.
pub fn q35() -> impl Iterator<Item = (u8, u8, u32)> {
    (0..32u8).flat_map(|device| {
        (0..4u8).map(move |pin| {
            (
                device,
                pin,
                16 + (u32::from(device) + u32::from(pin)) % 4 + 4,
            )
        })
    })
}

/// QEMU's PIIX3 wires INTx of root-bus slot `d` to PIRQ (d - 1 + pin) % 4
/// (hw/isa/piix.c pci_slot_get_pirq); the PM function's INTA (slot 1,
/// pin 0) is its SCI instead, link 4 (hw/i386/acpi-build.c build_prt):
/// (device, pin, link) with links 0-3 the PIRQs A-D.
pub fn pc() -> impl Iterator<Item = (u8, u8, u8)> {
    (0..32u8).flat_map(|device| {
        (0..4u8).map(move |pin| {
            let link = if device == 1 && pin == 0 {
                4
            } else {
                (device + 3 + pin) % 4
            };
            (device, pin, link)
        })
    })
}
