//! The tests' oracles, test-only (`#[cfg(test)]`), never in the firmware
//! image: what the firmware's tables are checked against.
//!
//! - this file: the AML helpers as they were written with the `acpi_tables`
//!   builders before the firmware had its own AML writer (`acpi::emit`),
//!   for the reference DSDTs;
//! - `x86.rs`, `arm.rs`: those reference DSDTs, which the byte-for-byte
//!   tests compare the firmware's with (modules `acpi::x86::oracle` and
//!   `acpi::arm::oracle`, declared there to read their private constants);
//! - `testutil.rs`: reads built tables as an OS does and runs `iasl -d`.

use super::{to_bytes, Error, PrtEntry};
use acpi_tables::aml;
use acpi_tables::Aml;
use acpi_tables::AmlSink;
use alloc::vec::Vec;

/// AML opcodes the crate has no type for (ACPI 6.5 20.2.5): emitted as the
/// opcode followed by the operands in order.
/// Already-serialized AML as a child object.
pub(crate) struct RawAml(pub Vec<u8>);
impl Aml for RawAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

pub(crate) mod op {
    pub const LAND: &[u8] = &[0x90];
}

/// An AML expression made of a fixed opcode and operands (see [`op`]).
pub(crate) struct Op<'a> {
    code: &'static [u8],
    args: Vec<&'a dyn Aml>,
}

impl<'a> Op<'a> {
    pub fn new(code: &'static [u8], args: Vec<&'a dyn Aml>) -> Self {
        Op { code, args }
    }
}

impl Aml for Op<'_> {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(self.code);
        for a in &self.args {
            a.to_aml_bytes(sink);
        }
    }
}

/// Short IRQ descriptor without flags (edge, active-high, exclusive: the
/// ISA default), ACPI 6.5 6.4.2.1: tag 0x22, 16-bit IRQ mask.
pub(crate) struct IrqNoFlags(pub u8);

impl Aml for IrqNoFlags {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.byte(0x22);
        sink.word(1u16 << (self.0 & 15));
    }
}

/// `_PRT` package (ACPI 6.5 6.2.13) with direct GSIs: each entry is
/// {address = device << 16 | 0xffff (any function), pin, source 0, GSI}.
pub(crate) fn prt_package(prt: &[PrtEntry]) -> Result<aml::PackageBuilder, Error> {
    // NumElements of a Package is one byte (ACPI 6.5 20.2.5.4 DefPackage).
    if prt.len() > 255 {
        return Err(Error::Invalid("more than 255 _PRT entries"));
    }
    let mut pkg = aml::PackageBuilder::new();
    for e in prt {
        if e.pin > 3 || e.device > 31 {
            return Err(Error::Invalid("_PRT entry with bad device or pin"));
        }
        let addr = (u32::from(e.device) << 16) | 0xffff;
        pkg.add_element(&aml::Package::new(alloc::vec![
            &addr,
            &e.pin,
            &aml::ZERO,
            &e.gsi
        ]));
    }
    Ok(pkg)
}

/// The PCI host bridge `_OSC` (PCI Firmware Specification 3.3 4.5): for the
/// PCI UUID it grants the OS native control of what QEMU's PCIe hardware
/// implements (native hotplug, PME, AER, PCIe capability structure; control
/// DWORD bits 0, 2, 3, 4), masking the rest and saying so in the status
/// DWORD; other UUIDs are answered "unrecognized UUID". Without
/// `native_hotplug` bit 0 is kept: the VMM hotplugs through ACPI (as QEMU's
/// own q35 `_OSC` does while its ACPI PCI hotplug is on,
/// hw/i386/acpi-build.c build_q35_osc_method).
pub(crate) fn pci_osc(native_hotplug: bool) -> Vec<u8> {
    // Bits of the first (status) DWORD, ACPI 6.5 6.2.12.
    const UNRECOGNIZED_UUID: u8 = 1 << 2;
    const UNRECOGNIZED_REVISION: u8 = 1 << 3;
    const CAPABILITIES_MASKED: u8 = 1 << 4;
    // Control DWORD bit 0: PCI Express Native Hot Plug control.
    const NATIVE_HOTPLUG: u8 = 1 << 0;
    const GRANTABLE_ALL: u8 = 0x1d;
    let grantable = if native_hotplug {
        GRANTABLE_ALL
    } else {
        GRANTABLE_ALL & !NATIVE_HOTPLUG
    };

    let cdw1 = aml::Path::new("CDW1");
    let cdw2 = aml::Path::new("CDW2");
    let cdw3 = aml::Path::new("CDW3");
    const PCI_HOST_BRIDGE: [u8; 16] = guid(b"33DB4D5B-1FF7-401C-9657-7441C03DD766");
    let uuid = aml::BufferData::new(PCI_HOST_BRIDGE.to_vec());
    let mk_cdw1 = aml::CreateDWordField::new(&cdw1, &aml::Arg(3), &aml::ZERO);
    let mk_cdw2 = aml::CreateDWordField::new(&cdw2, &aml::Arg(3), &4u8);
    let mk_cdw3 = aml::CreateDWordField::new(&cdw3, &aml::Arg(3), &8u8);
    let is_pci = aml::Equal::new(&aml::Arg(0), &uuid);
    let granted = aml::And::new(&aml::Local(0), &cdw3, &grantable);
    let bad_rev = aml::NotEqual::new(&aml::Arg(1), &aml::ONE);
    let set_bad_rev = aml::Or::new(&cdw1, &cdw1, &UNRECOGNIZED_REVISION);
    let if_bad_rev = aml::If::new(&bad_rev, alloc::vec![&set_bad_rev]);
    let masked = aml::NotEqual::new(&cdw3, &aml::Local(0));
    let set_masked = aml::Or::new(&cdw1, &cdw1, &CAPABILITIES_MASKED);
    let if_masked = aml::If::new(&masked, alloc::vec![&set_masked]);
    let store_granted = aml::Store::new(&cdw3, &aml::Local(0));
    let if_pci = aml::If::new(
        &is_pci,
        alloc::vec![
            &mk_cdw2,
            &mk_cdw3,
            &granted,
            &if_bad_rev,
            &if_masked,
            &store_granted
        ],
    );
    let set_bad_uuid = aml::Or::new(&cdw1, &cdw1, &UNRECOGNIZED_UUID);
    let else_other = aml::Else::new(alloc::vec![&set_bad_uuid]);
    let ret = aml::Return::new(&aml::Arg(3));
    to_bytes(&aml::Method::new(
        "_OSC".into(),
        4,
        false,
        alloc::vec![&mk_cdw1, &if_pci, &else_other, &ret],
    ))
}

/// A Device object from its name and already-serialized children (the
/// crate's `Device` only takes `&dyn Aml` children).
pub(crate) fn raw_device(name: &str, children: Vec<u8>) -> Vec<u8> {
    struct Raw(Vec<u8>);
    impl Aml for Raw {
        fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
            sink.vec(&self.0);
        }
    }
    to_bytes(&aml::Device::new(name.into(), alloc::vec![&Raw(children)]))
}

/// Processor device name for a UID: "C" + three hex digits.
pub(crate) fn cpu_name(uid: u32) -> Result<alloc::string::String, Error> {
    if uid > 0xfff {
        return Err(Error::Invalid("processor UID above 0xfff"));
    }
    Ok(alloc::format!("C{uid:03X}"))
}

/// The GPE/GED handler's call: deliver pending DIMM events.
pub fn scan_call() -> aml::MethodCall<'static> {
    aml::MethodCall::new("\\_SB_.MHPC.MSCN".into(), alloc::vec![])
}

/// A UUID as ToUUID lays it out in AML (ACPI 6.5 19.6.142: the first
/// three fields little-endian, the rest in order).
pub(crate) const fn guid(s: &[u8; 36]) -> [u8; 16] {
    const fn hex(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    const fn at(s: &[u8; 36], i: usize) -> u8 {
        (hex(s[i]) << 4) | hex(s[i + 1])
    }
    // Source offsets of bytes 0..16 in "aabbccdd-eeff-gghh-iijj-kkllmmnnoopp".
    const ORDER: [usize; 16] = [6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = at(s, ORDER[i]);
        i += 1;
    }
    out
}

pub(crate) mod testutil;
