//! Intel MultiProcessor Specification 1.4 tables, for a machine without
//! ACPI (QEMU's `microvm,acpi=off`): Linux finds its vCPUs, its I/O APIC
//! and how the ISA interrupts reach it there (arch/x86/kernel/mpparse.c)
//! when no RSDP is found. One ISA bus, one I/O APIC; every ISA IRQ but
//! the cascade (2) goes to the pin of its number, IRQ0 to pin 2 where the
//! VMM routes the PIT there. The vCPUs' APIC IDs come from the boot
//! vCPU's CPUID topology leaves ([`apic_ids`]).

use alloc::vec::Vec;
use core::fmt;

/// Signatures of the floating pointer structure and the configuration
/// table header (MP 1.4 4.1, 4.2).
const FLOATING_SIG: &[u8; 4] = b"_MP_";
const TABLE_SIG: &[u8; 4] = b"PCMP";
/// Specification revision 1.4 (MP 1.4 4.1, 4.2: 04h).
const SPEC_REV: u8 = 4;
/// Sizes: floating pointer 16 bytes (its length field counts 16-byte
/// units), header 44, processor entry 20, the other entries 8 (MP 1.4
/// 4.1-4.3).
pub const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const CPU_LEN: usize = 20;
/// Entry types (MP 1.4 4.3).
const ENTRY_CPU: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INT: u8 = 3;
const ENTRY_LOCAL_INT: u8 = 4;
/// Processor flags: EN bit 0, BP bit 1 (MP 1.4 4.3.1).
const CPU_EN: u8 = 1;
const CPU_BP: u8 = 2;
/// I/O APIC flags: EN bit 0 (MP 1.4 4.3.3).
const IOAPIC_EN: u8 = 1;
/// Interrupt types INT, NMI, ExtINT (MP 1.4 4.3.4); flags 0 mean
/// "conforms to the bus" (edge, active high on ISA).
const INT: u8 = 0;
const NMI: u8 = 1;
const EXT_INT: u8 = 3;
/// Local interrupt entries that name every local APIC (MP 1.4 4.3.5).
const ALL_LAPICS: u8 = 0xff;
/// The ISA bus's type string, padded to six bytes (MP 1.4 4.3.2).
const ISA: &[u8; 6] = b"ISA   ";
/// ISA IRQs 0-15; IRQ2 is the 8259 cascade, which no device raises.
const ISA_IRQS: u8 = 16;
const CASCADE: u8 = 2;
/// xAPIC ID 0xff is the broadcast address; an MP table holds 8-bit IDs.
const APIC_ID_MAX: u32 = 0xfe;

/// One vCPU as the processor entry gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    pub apic_id: u8,
    pub boot: bool,
}

/// The I/O APIC as it reports itself (ID register bits 27:24, version
/// register bits 7:0 and its highest redirection entry, bits 23:16;
/// 82093AA datasheet 3.2.1-3.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub version: u8,
    pub pins: u8,
    pub addr: u32,
}

/// What the table describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub cpus: Vec<Cpu>,
    /// Where every vCPU's local APIC is (the header carries it).
    pub lapic_addr: u32,
    /// Local APIC version register, bits 7:0 (Intel SDM vol. 3 11.4.8).
    pub lapic_version: u8,
    /// CPUID leaf 1 EAX (stepping, model, family) and EDX (features), as
    /// the processor entries carry them (MP 1.4 4.3.1).
    pub signature: u32,
    pub features: u32,
    pub ioapic: IoApic,
    /// ISA IRQ0 (the PIT) arrives at I/O APIC pin 2, not 0.
    pub irq0_to_pin2: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    NoCpu,
    /// A vCPU's APIC ID does not fit an 8-bit xAPIC ID.
    ApicId(u32),
    DuplicateApicId(u8),
    NoBootCpu,
    /// The I/O APIC has fewer pins than the ISA IRQs need.
    IoApicPins(u8),
    /// The table outgrows its 16-bit length field.
    TooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::NoCpu => f.write_str("no vCPU"),
            Error::ApicId(id) => write!(f, "APIC ID {id:#x} does not fit an MP table"),
            Error::DuplicateApicId(id) => write!(f, "APIC ID {id:#x} twice"),
            Error::NoBootCpu => f.write_str("the boot vCPU is not among the vCPUs"),
            Error::IoApicPins(n) => write!(f, "the I/O APIC has {n} pins, ISA needs 16"),
            Error::TooLarge => f.write_str("MP table too large"),
        }
    }
}

/// The APIC IDs of vCPUs 0..`count`, QEMU's numbering: index `i` split
/// into thread, core (and module, die) digits, each at the shift the
/// CPUID extended topology leaf (0x1F, else 0xB) gives for its level
/// (Intel SDM vol. 2 CPUID 0BH/1FH: EAX[4:0] the shift to the next level,
/// EBX[15:0] the logical processors up to that level). `levels` lists
/// (shift, logical processors) from the thread level up; without any the
/// IDs are 0..count. The last digit (the package) takes what is left.
pub fn apic_ids(count: u32, levels: &[(u32, u32)]) -> Vec<u32> {
    (0..count)
        .map(|i| {
            let (mut id, mut rest, mut shift, mut below) = (0u32, i, 0u32, 1u32);
            for &(next_shift, logical) in levels {
                let per = (logical / below).max(1);
                id |= (rest % per).checked_shl(shift).unwrap_or(0);
                rest /= per;
                shift = next_shift;
                below = logical.max(below);
            }
            id | rest.checked_shl(shift).unwrap_or(u32::MAX)
        })
        .collect()
}

/// The vCPUs as processor entries: each ID checked to fit, none twice,
/// the boot vCPU among them.
pub fn cpus(ids: &[u32], boot_id: u32) -> Result<Vec<Cpu>, Error> {
    let mut out: Vec<Cpu> = Vec::with_capacity(ids.len());
    for &id in ids {
        let apic_id = u8::try_from(id)
            .ok()
            .filter(|&a| u32::from(a) <= APIC_ID_MAX)
            .ok_or(Error::ApicId(id))?;
        if out.iter().any(|c| c.apic_id == apic_id) {
            return Err(Error::DuplicateApicId(apic_id));
        }
        out.push(Cpu {
            apic_id,
            boot: id == boot_id,
        });
    }
    if out.is_empty() {
        return Err(Error::NoCpu);
    }
    if !out.iter().any(|c| c.boot) {
        return Err(Error::NoBootCpu);
    }
    Ok(out)
}

/// The configuration table, to be placed at `table_addr`, and the
/// floating pointer structure that points at it.
pub fn build(c: &Config, table_addr: u32) -> Result<([u8; FLOATING_LEN], Vec<u8>), Error> {
    if c.cpus.is_empty() {
        return Err(Error::NoCpu);
    }
    if c.ioapic.pins < ISA_IRQS {
        return Err(Error::IoApicPins(c.ioapic.pins));
    }
    let mut t = Vec::with_capacity(HEADER_LEN + CPU_LEN * c.cpus.len() + 8 * 20);
    t.resize(HEADER_LEN, 0);
    let mut entries = 0usize;
    for cpu in &c.cpus {
        t.extend_from_slice(&[
            ENTRY_CPU,
            cpu.apic_id,
            c.lapic_version,
            CPU_EN | if cpu.boot { CPU_BP } else { 0 },
        ]);
        t.extend_from_slice(&c.signature.to_le_bytes());
        t.extend_from_slice(&c.features.to_le_bytes());
        t.extend_from_slice(&[0; 8]);
        entries += 1;
    }
    let bus = 0u8;
    t.extend_from_slice(&[ENTRY_BUS, bus]);
    t.extend_from_slice(ISA);
    let io = c.ioapic;
    t.extend_from_slice(&[ENTRY_IOAPIC, io.id, io.version, IOAPIC_EN]);
    t.extend_from_slice(&io.addr.to_le_bytes());
    entries += 2;
    for irq in (0..ISA_IRQS).filter(|&i| i != CASCADE) {
        let pin = if irq == 0 && c.irq0_to_pin2 {
            CASCADE
        } else {
            irq
        };
        t.extend_from_slice(&[ENTRY_IO_INT, INT, 0, 0, bus, irq, io.id, pin]);
        entries += 1;
    }
    // The 8259's output on LINT0 (virtual wire mode) and NMI on LINT1 of
    // every local APIC, as MP 1.4's default configurations wire them.
    for (kind, lint) in [(EXT_INT, 0), (NMI, 1)] {
        t.extend_from_slice(&[ENTRY_LOCAL_INT, kind, 0, 0, bus, 0, ALL_LAPICS, lint]);
        entries += 1;
    }
    let len = u16::try_from(t.len()).map_err(|_| Error::TooLarge)?;
    let entries = u16::try_from(entries).map_err(|_| Error::TooLarge)?;
    t[0..4].copy_from_slice(TABLE_SIG);
    t[4..6].copy_from_slice(&len.to_le_bytes());
    t[6] = SPEC_REV;
    t[8..16].copy_from_slice(b"HOTSTUB ");
    t[16..28].copy_from_slice(b"MICROVM     ");
    t[34..36].copy_from_slice(&entries.to_le_bytes());
    t[36..40].copy_from_slice(&c.lapic_addr.to_le_bytes());
    t[7] = checksum(&t);

    let mut f = [0u8; FLOATING_LEN];
    f[0..4].copy_from_slice(FLOATING_SIG);
    f[4..8].copy_from_slice(&table_addr.to_le_bytes());
    f[8] = 1;
    f[9] = SPEC_REV;
    // Feature bytes 0: a configuration table is present (no default
    // configuration), virtual wire mode (no IMCR; MP 1.4 4.1).
    f[10] = checksum(&f);
    Ok((f, t))
}

/// The byte that makes `b` sum to 0 modulo 256 (MP 1.4 4.1, 4.2).
fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(crate::acpi::byte_sum(b))
}

#[cfg(test)]
mod tests;
