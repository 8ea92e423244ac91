//! What the payload needs to know about the machine, found the way Linux
//! finds it: through the EFI system table and ACPI when the DT holds only
//! `/chosen` (Hotstub's hand-off), else from the full DT (QEMU's direct
//! kernel boot, used to check the payload itself against QEMU's PSCI).
//!
//! All parsing is safe, bounds-checked code over byte slices obtained from
//! a [`Phys`] reader, which only hands out ranges it knows to be memory.

use fdt::Fdt;

/// Reads guest-physical memory.
pub trait Phys {
    /// `len` bytes at `addr`, or `None` when the range is not known memory.
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// MPIDR affinity fields.
    pub mpidr: u64,
    /// May be brought up (MADT GICC Enabled, or DT status okay).
    pub enabled: bool,
    /// Present but not enabled, may be enabled later (MADT GICC Online
    /// Capable).
    pub online_capable: bool,
}

pub const MAX_CPUS: usize = 64;

/// Where the description came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Acpi,
    DeviceTree,
}

#[derive(Clone, Debug)]
pub struct Machine {
    pub source: Source,
    pub conduit: Conduit,
    /// PL011 base: SPCR, the DT's `arm,pl011`, or QEMU virt's 0x09000000.
    pub uart: u64,
    pub cpus: [Cpu; MAX_CPUS],
    pub ncpus: usize,
    /// GICv3 distributor and redistributor range, when the GIC is a v3.
    pub gicv3: Option<(u64, u64)>,
    /// The resident firmware's memory (EFI memory map), if marked: its
    /// first region, and up to [`MORE_REGIONS`] further ones of that type
    /// (Hotstub at EL2 keeps its data, an arena for its stacks and tables,
    /// and a fallback stack, apart).
    pub firmware: Option<(u64, u64)>,
    pub firmware_more: [Option<(u64, u64)>; MORE_REGIONS],
    /// The kernel command line (DT `/chosen` `bootargs`).
    pub bootargs: [u8; 256],
    pub bootargs_len: usize,
}

impl Machine {
    fn new(source: Source, conduit: Conduit) -> Self {
        Machine {
            source,
            conduit,
            uart: QEMU_VIRT_PL011,
            cpus: [Cpu::default(); MAX_CPUS],
            ncpus: 0,
            gicv3: None,
            firmware: None,
            firmware_more: [None; MORE_REGIONS],
            bootargs: [0; 256],
            bootargs_len: 0,
        }
    }

    pub fn cpus(&self) -> &[Cpu] {
        &self.cpus[..self.ncpus]
    }

    fn push_cpu(&mut self, cpu: Cpu) -> Result<(), &'static str> {
        let slot = self
            .cpus
            .get_mut(self.ncpus)
            .ok_or("more CPUs than the payload handles")?;
        *slot = cpu;
        self.ncpus += 1;
        Ok(())
    }

    pub fn has_arg(&self, word: &str) -> bool {
        self.bootargs[..self.bootargs_len]
            .split(|&b| b == b' ')
            .any(|w| w == word.as_bytes())
    }

    fn set_bootargs(&mut self, s: &str) {
        let n = s.len().min(self.bootargs.len());
        self.bootargs[..n].copy_from_slice(&s.as_bytes()[..n]);
        self.bootargs_len = n;
    }
}

/// QEMU virt's PL011 (hw/arm/virt.c `base_memmap[VIRT_UART]`), used only
/// when neither SPCR nor the DT names a console, so that errors are seen.
pub const QEMU_VIRT_PL011: u64 = 0x0900_0000;

/// EFI_SYSTEM_TABLE signature "IBI SYST" (UEFI 2.10, 4.3.1).
const EFI_SYSTEM_TABLE_SIGNATURE: u64 = 0x5453_5953_2049_4249;
/// EFI_ACPI_20_TABLE_GUID 8868e871-e4f1-11d3-bc22-0080c73c8881 in its
/// in-memory byte order (UEFI 2.10, 4.6.1).
const ACPI_20_GUID: [u8; 16] = [
    0x71, 0xe8, 0x68, 0x88, 0xf1, 0xe4, 0xd3, 0x11, 0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81,
];
/// EFI memory types (UEFI 2.10, 7.2.3): the resident firmware marks itself
/// EfiRuntimeServicesCode, or EfiReservedMemoryType.
const EFI_RESERVED: u32 = 0;
const EFI_RUNTIME_SERVICES_CODE: u32 = 5;
const EFI_PAGE: u64 = 4096;
/// Resident firmware regions probed beyond the first.
pub const MORE_REGIONS: usize = 4;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// One EFI memory descriptor (UEFI 2.10, EFI_MEMORY_DESCRIPTOR): type at
/// 0, PhysicalStart at 8, NumberOfPages at 24.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemDesc {
    pub ty: u32,
    pub base: u64,
    pub size: u64,
}

/// The EFI memory map as handed over in `/chosen`.
#[derive(Clone, Copy, Debug)]
pub struct MemMap<'a> {
    bytes: &'a [u8],
    desc_size: usize,
}

impl<'a> MemMap<'a> {
    pub fn new(bytes: &'a [u8], desc_size: usize) -> Result<Self, &'static str> {
        if desc_size < 40 || !desc_size.is_multiple_of(8) || !bytes.len().is_multiple_of(desc_size)
        {
            return Err("EFI memory map: bad descriptor size");
        }
        Ok(MemMap { bytes, desc_size })
    }

    pub fn iter(&self) -> impl Iterator<Item = MemDesc> + 'a {
        let d = self.desc_size;
        self.bytes.chunks_exact(d).filter_map(|c| {
            Some(MemDesc {
                ty: u32_at(c, 0)?,
                base: u64_at(c, 8)?,
                size: u64_at(c, 24)?.checked_mul(EFI_PAGE)?,
            })
        })
    }

    /// Whether `[addr, addr + len)` lies inside one descriptor.
    pub fn covers(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        self.iter()
            .any(|d| d.base <= addr && d.base.checked_add(d.size).is_some_and(|e| end <= e))
    }

    /// The resident firmware: the first EfiRuntimeServicesCode region, else
    /// the first EfiReservedMemoryType region.
    pub fn firmware(&self) -> Option<(u64, u64)> {
        self.firmware_regions().next()
    }

    /// Every region of the type [`MemMap::firmware`] picks, in map order.
    pub fn firmware_regions(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let has = |ty| self.iter().any(|d| d.ty == ty && d.size > 0);
        let ty = if has(EFI_RUNTIME_SERVICES_CODE) {
            EFI_RUNTIME_SERVICES_CODE
        } else {
            EFI_RESERVED
        };
        self.iter()
            .filter(move |d| d.ty == ty && d.size > 0)
            .map(|d| (d.base, d.size))
    }
}

/// Finds the ACPI 2.0 RSDP through the EFI system table at `st`.
pub fn rsdp_from_efi(mem: &dyn Phys, st: u64) -> Result<u64, &'static str> {
    // EFI_SYSTEM_TABLE (UEFI 2.10, 4.3.1): header signature at 0,
    // HeaderSize at 12, NumberOfTableEntries at 104, ConfigurationTable at 112.
    let t = mem.read(st, 120).ok_or("EFI system table not in memory")?;
    if u64_at(t, 0) != Some(EFI_SYSTEM_TABLE_SIGNATURE) {
        return Err("EFI system table: bad signature");
    }
    let n = u64_at(t, 104).ok_or("EFI system table truncated")?;
    let cfg = u64_at(t, 112).ok_or("EFI system table truncated")?;
    if n > 256 {
        return Err("EFI system table: implausible configuration table count");
    }
    // EFI_CONFIGURATION_TABLE: 16-byte GUID, then the table pointer.
    let entries = mem
        .read(cfg, n as usize * 24)
        .ok_or("EFI configuration table not in memory")?;
    entries
        .chunks_exact(24)
        .find(|e| e[..16] == ACPI_20_GUID)
        .and_then(|e| u64_at(e, 16))
        .ok_or("no ACPI 2.0 table in the EFI configuration table")
}

fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |a, &x| a.wrapping_add(x)) == 0
}

/// A checked ACPI table: header (signature, length, checksum) valid.
fn table(mem: &dyn Phys, addr: u64) -> Result<&[u8], &'static str> {
    let head = mem.read(addr, 36).ok_or("ACPI table not in memory")?;
    let len = u32_at(head, 4).ok_or("ACPI table truncated")? as usize;
    if !(36..=1 << 20).contains(&len) {
        return Err("ACPI table: bad length");
    }
    let t = mem.read(addr, len).ok_or("ACPI table not in memory")?;
    if !checksum_ok(t) {
        return Err("ACPI table: bad checksum");
    }
    Ok(t)
}

/// The tables the payload uses, by address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    pub facp: Option<u64>,
    pub apic: Option<u64>,
    pub spcr: Option<u64>,
}

/// RSDP (ACPI 6.5, 5.2.5.3) -> XSDT (5.2.8) -> the tables.
pub fn tables(mem: &dyn Phys, rsdp: u64) -> Result<Tables, &'static str> {
    let r = mem.read(rsdp, 36).ok_or("RSDP not in memory")?;
    if &r[..8] != b"RSD PTR " || r[15] < 2 {
        return Err("RSDP: bad signature or revision");
    }
    if !checksum_ok(&r[..20]) || !checksum_ok(r) {
        return Err("RSDP: bad checksum");
    }
    let xsdt = table(mem, u64_at(r, 24).ok_or("RSDP truncated")?)?;
    if &xsdt[..4] != b"XSDT" {
        return Err("XSDT: bad signature");
    }
    let mut found = Tables::default();
    for e in xsdt[36..].chunks_exact(8) {
        let addr = u64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
        let t = table(mem, addr)?;
        let slot = match &t[..4] {
            b"FACP" => &mut found.facp,
            b"APIC" => &mut found.apic,
            b"SPCR" => &mut found.spcr,
            _ => continue,
        };
        slot.get_or_insert(addr);
    }
    Ok(found)
}

/// FADT ARM_BOOT_ARCH (ACPI 6.5, table 5.9, offset 129): bit 0 PSCI
/// compliant, bit 1 PSCI uses HVC.
pub fn conduit_from_fadt(fadt: &[u8]) -> Result<Conduit, &'static str> {
    let flags = u16_at(fadt, 129).ok_or("FADT too short for ARM boot flags")?;
    if flags & 1 == 0 {
        return Err("FADT: not PSCI compliant");
    }
    Ok(if flags & 2 != 0 {
        Conduit::Hvc
    } else {
        Conduit::Smc
    })
}

/// SPCR (Microsoft SPCR spec): Base Address GAS at 40, its address at 44.
pub fn uart_from_spcr(spcr: &[u8]) -> Option<u64> {
    u64_at(spcr, 44).filter(|&a| a != 0)
}

/// MADT (ACPI 6.5, 5.2.12): GICC entries (type 0xB: Flags at 12 with bit 0
/// Enabled and bit 3 Online Capable, MPIDR at 68), the GICD (type 0xC:
/// base at 8, GIC version at 20) and GICR ranges (type 0xE: base at 4,
/// length at 12).
pub fn madt_into(madt: &[u8], m: &mut Machine) -> Result<(), &'static str> {
    let mut off = 44;
    let mut gicd = None;
    let mut gicr = None;
    while off < madt.len() {
        let e = madt.get(off..off + 2).ok_or("MADT: truncated entry")?;
        let len = e[1] as usize;
        let e = madt
            .get(off..off + len)
            .ok_or("MADT: entry overruns the table")?;
        if len < 2 {
            return Err("MADT: zero-length entry");
        }
        match e[0] {
            0x0b => {
                let flags = u32_at(e, 12).ok_or("MADT: short GICC")?;
                let mpidr = u64_at(e, 68).ok_or("MADT: short GICC")?;
                m.push_cpu(Cpu {
                    mpidr,
                    enabled: flags & 1 != 0,
                    online_capable: flags & 8 != 0,
                })?;
            }
            0x0c => {
                let base = u64_at(e, 8).ok_or("MADT: short GICD")?;
                let version = *e.get(20).ok_or("MADT: short GICD")?;
                gicd = Some((base, version));
            }
            0x0e if gicr.is_none() => {
                gicr = Some(u64_at(e, 4).ok_or("MADT: short GICR")?);
            }
            _ => {}
        }
        off += len;
    }
    if let (Some((d, 3 | 4)), Some(r)) = (gicd, gicr) {
        m.gicv3 = Some((d, r));
    }
    Ok(())
}

/// The machine from the EFI system table and ACPI (Hotstub's hand-off).
pub fn from_acpi(
    mem: &dyn Phys,
    st: u64,
    map: &MemMap,
    bootargs: Option<&str>,
) -> Result<Machine, &'static str> {
    let rsdp = rsdp_from_efi(mem, st)?;
    let t = tables(mem, rsdp)?;
    let fadt = table(mem, t.facp.ok_or("no FADT")?)?;
    let mut m = Machine::new(Source::Acpi, conduit_from_fadt(fadt)?);
    if let Some(a) = t.spcr {
        if let Some(u) = uart_from_spcr(table(mem, a)?) {
            m.uart = u;
        }
    }
    madt_into(table(mem, t.apic.ok_or("no MADT")?)?, &mut m)?;
    m.firmware = map.firmware();
    for (slot, r) in m
        .firmware_more
        .iter_mut()
        .zip(map.firmware_regions().skip(1))
    {
        *slot = Some(r);
    }
    if let Some(b) = bootargs {
        m.set_bootargs(b);
    }
    Ok(m)
}

/// `/chosen` `bootargs` (`Fdt::chosen` panics without a `/chosen`).
pub fn bootargs<'a>(fdt: &Fdt<'a>) -> Option<&'a str> {
    fdt.find_node("/chosen")?.property("bootargs")?.as_str()
}

/// The machine from a full DT (QEMU direct boot): `/psci` `method`, the
/// `/cpus` `reg` values, the PL011 and a GICv3.
pub fn from_dt(fdt: &Fdt) -> Result<Machine, &'static str> {
    let psci = fdt
        .find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        .ok_or("DT: no PSCI node")?;
    let conduit = match psci.property("method").and_then(|p| p.as_str()) {
        Some("hvc") => Conduit::Hvc,
        Some("smc") => Conduit::Smc,
        _ => return Err("DT: PSCI method is neither hvc nor smc"),
    };
    let mut m = Machine::new(Source::DeviceTree, conduit);
    // By hand rather than with `Fdt::cpus`, which panics on a missing
    // `/cpus` or `reg`.
    let cpus = fdt.find_node("/cpus").ok_or("DT: no /cpus")?;
    for cpu in cpus
        .children()
        .filter(|n| n.name == "cpu" || n.name.starts_with("cpu@"))
    {
        let status = cpu.property("status").and_then(|p| p.as_str());
        let enabled = matches!(status, None | Some("okay") | Some("ok"));
        let mpidr = cpu
            .property("reg")
            .and_then(|p| p.as_usize())
            .ok_or("DT: cpu node without a usable reg")?;
        m.push_cpu(Cpu {
            mpidr: mpidr as u64,
            enabled,
            online_capable: false,
        })?;
    }
    // The first PL011 the normal world may use: with `secure=on` QEMU lists
    // the secure UART first, with status "disabled" (hw/arm/virt.c).
    if let Some(u) = fdt
        .all_nodes()
        .filter(|n| {
            n.compatible()
                .is_some_and(|c| c.all().any(|c| c == "arm,pl011"))
        })
        .filter(|n| {
            matches!(
                n.property("status").and_then(|p| p.as_str()),
                None | Some("okay") | Some("ok")
            )
        })
        .find_map(|n| n.reg()?.next())
    {
        m.uart = u.starting_address as u64;
    }
    if let Some(gic) = fdt.find_compatible(&["arm,gic-v3"]) {
        let mut regs = gic.reg().into_iter().flatten();
        if let (Some(d), Some(r)) = (regs.next(), regs.next()) {
            m.gicv3 = Some((d.starting_address as u64, r.starting_address as u64));
        }
    }
    if let Some(b) = bootargs(fdt) {
        m.set_bootargs(b);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest memory for tests: one buffer at a base address.
    struct Ram {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Phys for Ram {
        fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
            let off = usize::try_from(addr.checked_sub(self.base)?).ok()?;
            self.bytes.get(off..off.checked_add(len)?)
        }
    }

    impl Ram {
        fn put(&mut self, addr: u64, data: &[u8]) {
            let off = (addr - self.base) as usize;
            self.bytes[off..off + data.len()].copy_from_slice(data);
        }
    }

    fn sdt(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 36];
        t[..4].copy_from_slice(sig);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t[8] = 6;
        let sum = t.iter().fold(0u8, |a, &x| a.wrapping_add(x));
        t[9] = 0u8.wrapping_sub(sum);
        t
    }

    fn gicc(mpidr: u64, flags: u32) -> Vec<u8> {
        let mut e = vec![0u8; 80];
        e[0] = 0xb;
        e[1] = 80;
        e[12..16].copy_from_slice(&flags.to_le_bytes());
        e[68..76].copy_from_slice(&mpidr.to_le_bytes());
        e
    }

    /// A hand-off as Hotstub writes it: system table, configuration table,
    /// RSDP, XSDT, FADT (HVC), MADT with two enabled and two online-capable
    /// GICCs, SPCR.
    fn handoff(fadt_flags: u16) -> (Ram, u64) {
        let base = 0x4000_0000;
        let mut ram = Ram {
            base,
            bytes: vec![0; 0x4000],
        };
        let st = base;
        let cfg = base + 0x100;
        let rsdp = base + 0x200;
        let xsdt = base + 0x300;
        let facp = base + 0x400;
        let apic = base + 0x600;
        let spcr = base + 0x900;

        let mut t = vec![0u8; 120];
        t[..8].copy_from_slice(&EFI_SYSTEM_TABLE_SIGNATURE.to_le_bytes());
        t[104..112].copy_from_slice(&2u64.to_le_bytes());
        t[112..120].copy_from_slice(&cfg.to_le_bytes());
        ram.put(st, &t);
        let mut c = vec![0xeeu8; 24];
        c.extend_from_slice(&ACPI_20_GUID);
        c.extend_from_slice(&rsdp.to_le_bytes());
        ram.put(cfg, &c);

        let mut r = vec![0u8; 36];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[15] = 2;
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&xsdt.to_le_bytes());
        let s: u8 = r[..20].iter().fold(0, |a, &x| a.wrapping_add(x));
        r[8] = 0u8.wrapping_sub(s);
        let s: u8 = r.iter().fold(0, |a, &x| a.wrapping_add(x));
        r[32] = 0u8.wrapping_sub(s);
        ram.put(rsdp, &r);

        let mut body = Vec::new();
        for a in [facp, apic, spcr] {
            body.extend_from_slice(&a.to_le_bytes());
        }
        ram.put(xsdt, &sdt(b"XSDT", &body));

        let mut f = vec![0u8; 276 - 36];
        f[129 - 36..131 - 36].copy_from_slice(&fadt_flags.to_le_bytes());
        ram.put(facp, &sdt(b"FACP", &f));

        let mut m = vec![0u8; 8];
        for (mpidr, flags) in [(0, 1), (1, 1), (2, 8), (3, 8)] {
            m.extend(gicc(mpidr, flags));
        }
        let mut d = vec![0u8; 24];
        d[0] = 0xc;
        d[1] = 24;
        d[8..16].copy_from_slice(&0x0800_0000u64.to_le_bytes());
        d[20] = 3;
        m.extend(d);
        let mut r = vec![0u8; 16];
        r[0] = 0xe;
        r[1] = 16;
        r[4..12].copy_from_slice(&0x080a_0000u64.to_le_bytes());
        m.extend(r);
        ram.put(apic, &sdt(b"APIC", &m));

        let mut s = vec![0u8; 80 - 36];
        s[44 - 36..52 - 36].copy_from_slice(&0x0900_0000u64.to_le_bytes());
        ram.put(spcr, &sdt(b"SPCR", &s));
        (ram, st)
    }

    fn memmap_bytes(entries: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut b = Vec::new();
        for &(ty, base, pages) in entries {
            let mut d = vec![0u8; 48];
            d[..4].copy_from_slice(&ty.to_le_bytes());
            d[8..16].copy_from_slice(&base.to_le_bytes());
            d[24..32].copy_from_slice(&pages.to_le_bytes());
            b.extend(d);
        }
        b
    }

    #[test]
    fn parses_a_hotstub_handoff() {
        let (ram, st) = handoff(0b11);
        let mm = memmap_bytes(&[
            (7, 0x4000_0000, 16),
            (5, 0x4010_0000, 4),
            (7, 0x4010_4000, 8),
            (5, 0x4010_c000, 2),
            (0, 0x5000_0000, 1),
        ]);
        let map = MemMap::new(&mm, 48).unwrap();
        let m = from_acpi(&ram, st, &map, Some("a psci-test.resident")).unwrap();
        assert_eq!(m.conduit, Conduit::Hvc);
        assert_eq!(m.uart, 0x0900_0000);
        assert_eq!(m.gicv3, Some((0x0800_0000, 0x080a_0000)));
        let enabled: Vec<_> = m
            .cpus()
            .iter()
            .map(|c| (c.mpidr, c.enabled, c.online_capable))
            .collect();
        assert_eq!(
            enabled,
            [
                (0, true, false),
                (1, true, false),
                (2, false, true),
                (3, false, true)
            ]
        );
        assert_eq!(m.firmware, Some((0x4010_0000, 0x4000)));
        assert_eq!(
            m.firmware_more,
            [Some((0x4010_c000, 0x2000)), None, None, None]
        );
        assert!(m.has_arg("psci-test.resident") && !m.has_arg("psci-test"));
        assert!(map.covers(0x4000_0000, 0x10000) && !map.covers(0x4000_0000, 0x10001));
        assert_eq!(
            conduit_from_fadt(ram.read(0x4000_0400, 276).unwrap()).unwrap(),
            Conduit::Hvc
        );
    }

    #[test]
    fn smc_and_bad_tables() {
        let (ram, st) = handoff(0b01);
        let mm = memmap_bytes(&[(0, 0x5000_0000, 1)]);
        let map = MemMap::new(&mm, 48).unwrap();
        let m = from_acpi(&ram, st, &map, None).unwrap();
        assert_eq!(m.conduit, Conduit::Smc);
        assert_eq!(m.firmware, Some((0x5000_0000, 0x1000)));
        assert_eq!(m.firmware_more, [None; MORE_REGIONS]);

        let (ram, st) = handoff(0b10);
        assert_eq!(
            from_acpi(&ram, st, &map, None).err(),
            Some("FADT: not PSCI compliant")
        );

        let (mut ram, st) = handoff(1);
        ram.bytes[0x600 + 40] ^= 1; // MADT checksum
        assert_eq!(
            from_acpi(&ram, st, &map, None).err(),
            Some("ACPI table: bad checksum")
        );

        let (mut ram, st) = handoff(1);
        ram.bytes[0] ^= 1;
        assert!(from_acpi(&ram, st, &map, None).is_err());
        assert!(from_acpi(&ram, 0x1000, &map, None).is_err());

        assert!(MemMap::new(&mm, 20).is_err());
        assert!(MemMap::new(&mm[..47], 48).is_err());
    }

    /// A DT shaped like QEMU virt's with `secure=on`: the secure UART,
    /// disabled for the normal world, comes before the normal one.
    fn qemu_like_dt(method: &str) -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let n = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "x psci-test.resident")
            .unwrap();
        w.end_node(n).unwrap();
        for (addr, status) in [(0x0904_0000u64, "disabled"), (0x0900_0000, "okay")] {
            let n = w.begin_node(&format!("pl011@{addr:x}")).unwrap();
            w.property_string_list(
                "compatible",
                vec!["arm,pl011".into(), "arm,primecell".into()],
            )
            .unwrap();
            w.property_array_u64("reg", &[addr, 0x1000]).unwrap();
            w.property_string("status", status).unwrap();
            w.end_node(n).unwrap();
        }
        let n = w.begin_node("intc@8000000").unwrap();
        w.property_string("compatible", "arm,gic-v3").unwrap();
        w.property_array_u64("reg", &[0x0800_0000, 0x1_0000, 0x080a_0000, 0xf6_0000])
            .unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("psci").unwrap();
        w.property_string_list(
            "compatible",
            vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()],
        )
        .unwrap();
        w.property_string("method", method).unwrap();
        w.end_node(n).unwrap();
        let cpus = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        for i in 0..3u32 {
            let n = w.begin_node(&format!("cpu@{i}")).unwrap();
            w.property_string("device_type", "cpu").unwrap();
            w.property_u32("reg", i).unwrap();
            if i == 2 {
                w.property_string("status", "disabled").unwrap();
            }
            w.end_node(n).unwrap();
        }
        w.end_node(cpus).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn parses_a_qemu_device_tree() {
        let blob = qemu_like_dt("smc");
        let fdt = Fdt::new(&blob).unwrap();
        let m = from_dt(&fdt).unwrap();
        assert_eq!(m.source, Source::DeviceTree);
        assert_eq!(m.conduit, Conduit::Smc);
        assert_eq!(m.uart, 0x0900_0000, "the normal-world PL011");
        assert_eq!(m.gicv3, Some((0x0800_0000, 0x080a_0000)));
        let cpus: Vec<_> = m.cpus().iter().map(|c| (c.mpidr, c.enabled)).collect();
        assert_eq!(cpus, [(0, true), (1, true), (2, false)]);
        assert!(m.has_arg("psci-test.resident"));
        assert_eq!(m.firmware, None);

        let blob = qemu_like_dt("hvc");
        assert_eq!(
            from_dt(&Fdt::new(&blob).unwrap()).unwrap().conduit,
            Conduit::Hvc
        );
        let blob = qemu_like_dt("psci");
        assert!(from_dt(&Fdt::new(&blob).unwrap()).is_err());
    }

    #[test]
    fn truncated_tables_never_panic() {
        let (ram, st) = handoff(1);
        let mm = memmap_bytes(&[(7, 0x4000_0000, 16)]);
        let map = MemMap::new(&mm, 48).unwrap();
        for cut in 0..0x1000 {
            let r = Ram {
                base: ram.base,
                bytes: ram.bytes[..cut].to_vec(),
            };
            let _ = from_acpi(&r, st, &map, None);
        }
        // Every single-byte corruption of the tables, too.
        for i in 0..0xa00 {
            let mut r = Ram {
                base: ram.base,
                bytes: ram.bytes.clone(),
            };
            r.bytes[i] = r.bytes[i].wrapping_add(0x5a);
            let _ = from_acpi(&r, st, &map, None);
        }
    }
}
