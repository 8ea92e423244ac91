//! Platform discovery from the device tree QEMU's arm `virt` machine hands
//! the firmware (the `/chosen`-only DT for Linux is `boot::stub_dt`).
//!
//! Parsing uses the `fdt` crate, which trusts the blob's structure: it
//! indexes past the end on a property or block that overruns, panics on
//! names that are not UTF-8, on NOP tokens between properties, on nodes
//! nested more than 63 deep and on `#address-cells` shorter than a cell,
//! and recurses without end through `/aliases` when the root is unnamed.
//! [`check_structure`] therefore walks the whole blob first and refuses
//! anything the crate could trip on, so `parse` returns an [`Error`] for
//! every input (the fuzz target `dt` holds it to that). Everything this
//! module reads itself (cells of `interrupts`, `ranges`, `interrupt-map`,
//! ...) is bounds-checked and reported as an [`Error`] too.
//!
//! Binding facts come from the Linux DT bindings
//! (`Documentation/devicetree/bindings/`: `interrupt-controller/arm,gic*.yaml`,
//! `timer/arm,arch_timer.yaml`, `pci/host-generic-pci.yaml`,
//! `arm/psci.yaml`) and the IEEE 1275 PCI bus binding for `ranges` and
//! `interrupt-map` cell layout.
//!
//! One cohesive thing, kept in one file although it is long: the reader of
//! one VMM's DT, node kind by node kind, over the binding facts above (its
//! tests are in `dt/tests.rs`).

use crate::psci::Conduit;
use alloc::vec::Vec;
use core::fmt;

use fdt::node::FdtNode;
use fdt::Fdt;

/// The magic number at the start of every flattened device tree
/// (Devicetree Specification v0.4, 5.2).
pub const FDT_MAGIC: u32 = 0xd00d_feed;

/// GIC interrupt specifier cell 0: SPI or PPI (arm,gic binding).
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// INTID of SPI 0 and PPI 0 (GIC architecture: SGIs 0-15, PPIs 16-31, SPIs 32+).
pub const SPI_BASE: u32 = 32;
const PPI_BASE: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The blob is not a device tree (bad magic or truncated header).
    NotFdt,
    /// A required node is missing.
    Missing(&'static str),
    /// A node or property has a shape this firmware does not understand.
    Malformed(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::NotFdt => f.write_str("no valid device tree"),
            Error::Missing(what) => write!(f, "device tree lacks {what}"),
            Error::Malformed(what) => write!(f, "device tree has a malformed {what}"),
        }
    }
}

/// The interrupt controller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GicInfo {
    /// 2 or 3.
    pub version: u8,
    pub gicd: u64,
    /// GICv3 redistributor regions (base, length), in DT order.
    pub gicr: Vec<(u64, u64)>,
    /// GICv2 CPU interface (also present on GICv3 with legacy support).
    pub gicc: Option<u64>,
    /// Virtual CPU interface and hypervisor control interface, when the
    /// machine offers virtualization.
    pub gich: Option<u64>,
    pub gicv: Option<u64>,
    /// GICv3 ITS translater frame.
    pub its: Option<u64>,
    /// GICv2m MSI frame: base, and (first SPI INTID, SPI count) when the DT
    /// overrides the frame's own MSI_TYPER (QEMU does not: the MADT's GIC
    /// MSI frame entry then says "use MSI_TYPER").
    pub v2m: Option<(u64, Option<(u32, u32)>)>,
    /// Virtual GIC maintenance interrupt (INTID).
    pub maint_irq: Option<u32>,
}

/// The generic ECAM PCIe host bridge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcieInfo {
    pub ecam_base: u64,
    pub ecam_size: u64,
    pub bus_start: u8,
    pub bus_end: u8,
    /// Windows as (CPU address, PCI address, size).
    pub io: Option<(u64, u64, u64)>,
    pub mmio32: Option<(u64, u64, u64)>,
    pub mmio64: Option<(u64, u64, u64)>,
    /// Legacy interrupt routing expanded to every device number on bus 0:
    /// (device, pin 0 = INTA, INTID).
    pub prt: Vec<(u8, u8, u32)>,
}

/// The secure-world power controls of `virt,secure=on` (gpio-poweroff and
/// gpio-restart on the secure PL061), kept for the EL3 firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureGpio {
    pub base: u64,
    pub poweroff_pin: Option<u32>,
    pub restart_pin: Option<u32>,
}

/// Everything the firmware learns from the DT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Board {
    /// Usable (non-secure) RAM as (base, size), sorted by base, disjoint,
    /// none wrapping the address space.
    pub memory: Vec<(u64, u64)>,
    /// MPIDR values from the `reg` of each `/cpus/cpu@*`, in DT order.
    pub cpus: Vec<u64>,
    pub gic: GicInfo,
    /// Architected timer INTIDs in binding order: secure physical,
    /// non-secure physical, virtual, hypervisor physical.
    pub timer_irqs: [u32; 4],
    /// The fifth timer interrupt, the EL2 virtual timer, where listed.
    pub timer_el2_virt: Option<u32>,
    pub pmu_irq: Option<u32>,
    /// PL011: base, INTID.
    pub uart: Option<(u64, u32)>,
    /// PL031: base, INTID.
    pub rtc: Option<(u64, u32)>,
    /// A TPM's TIS registers (QEMU `tpm-tis-device`): base, size.
    pub tpm: Option<(u64, u64)>,
    pub fw_cfg: Option<u64>,
    /// virtio-mmio transports: base, size, INTID.
    pub virtio_mmio: Vec<(u64, u64, u32)>,
    pub pcie: Option<PcieInfo>,
    /// `None` when the DT has no PSCI node: the firmware is at EL3 and is
    /// itself the PSCI implementation.
    /// The arm,psci binding's `method`.
    pub psci: Option<Conduit>,
    /// QEMU only describes the power-button GPIO keys when it did not create
    /// the ACPI GED instead (see [`Board::qemu_acpi_ged`]).
    pub has_gpio_keys: bool,
    pub secure_gpio: Option<SecureGpio>,
    /// The secure-only PL011 (QEMU virt `secure=on` with a second
    /// `-serial`): base, INTID. The EL3 firmware's control channel.
    pub secure_uart: Option<(u64, u32)>,
    /// `/chosen` entropy to hand on to Linux.
    pub rng_seed: Option<Vec<u8>>,
    pub kaslr_seed: Option<u64>,
    /// Root `compatible` includes QEMU's "linux,dummy-virt".
    pub qemu_virt: bool,
}

/// QEMU `virt` places its ACPI GED at this fixed address with SPI 9 and puts
/// no node for it in the DT (hw/arm/virt.c: `base_memmap[VIRT_ACPI_GED]`,
/// `a15irqmap[VIRT_ACPI_GED]`; verified with QEMU 10.0's `dumpdtb`, which
/// lists neither a GED nor, in that case, the `gpio-keys` node).
pub const QEMU_VIRT_GED: (u64, u32) = (0x0908_0000, SPI_BASE + 9);

impl Board {
    /// Returns the GED QEMU creates for an ACPI guest. QEMU creates it (and
    /// then leaves out the PL061 `gpio-keys` power button) exactly when the
    /// machine is `virt`, a firmware is loaded and ACPI is enabled; the last
    /// condition is visible to the firmware as QEMU exporting its own ACPI
    /// tables over fw_cfg (`acpi_tables_offered`).
    pub fn qemu_acpi_ged(&self, acpi_tables_offered: bool) -> Option<(u64, u32)> {
        (self.qemu_virt && !self.has_gpio_keys && acpi_tables_offered).then_some(QEMU_VIRT_GED)
    }

    /// Total RAM in bytes.
    pub fn ram_size(&self) -> u64 {
        self.memory.iter().map(|m| m.1).sum()
    }
}

/// Reads the big-endian u32 cells of a property value.
fn cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Combines `n` (1 or 2) big-endian cells into a number.
fn read_cells(c: &[u32], what: &'static str) -> Result<u64, Error> {
    match *c {
        [a] => Ok(a as u64),
        [a, b] => Ok(((a as u64) << 32) | b as u64),
        _ => Err(Error::Malformed(what)),
    }
}

fn prop_u32(node: FdtNode, name: &str) -> Option<u32> {
    let v = node.property(name)?.value;
    (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

fn prop_str<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let v = node.property(name)?.value;
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    core::str::from_utf8(v).ok()
}

fn is_compatible(node: FdtNode, with: &str) -> bool {
    node.compatible()
        .map(|c| c.all().any(|s| s == with))
        .unwrap_or(false)
}

/// The properties the discovery loop looks at on every node, gathered in
/// one pass over the node (each `FdtNode::property` lookup re-walks the
/// node's property list, which is slow under TCG).
struct Summary<'a> {
    compatible: &'a [u8],
    status: Option<&'a str>,
    device_type: Option<&'a str>,
    secure_status: Option<&'a str>,
}

impl<'a> Summary<'a> {
    fn of(node: FdtNode<'_, 'a>) -> Self {
        let mut s = Summary {
            compatible: &[],
            status: None,
            device_type: None,
            secure_status: None,
        };
        let text = |v: &'a [u8]| core::str::from_utf8(v.strip_suffix(&[0]).unwrap_or(v)).ok();
        for p in node.properties() {
            match p.name {
                "compatible" => s.compatible = p.value,
                "status" => s.status = text(p.value),
                "device_type" => s.device_type = text(p.value),
                "secure-status" => s.secure_status = text(p.value),
                _ => {}
            }
        }
        s
    }

    fn is(&self, with: &str) -> bool {
        self.compatible
            .split(|&b| b == 0)
            .any(|c| c == with.as_bytes())
    }

    fn enabled(&self) -> bool {
        status_okay(self.status)
    }
}

/// Nodes with `status` other than "okay"/"ok" are absent for the normal
/// world (DT spec 0.4, 2.3.4); no `status` means okay.
fn status_okay(status: Option<&str>) -> bool {
    matches!(status, None | Some("okay") | Some("ok"))
}

fn enabled(node: FdtNode) -> bool {
    status_okay(prop_str(node, "status"))
}

/// `reg` entries as (address, size) with the parent's cell sizes (at most 2
/// each, as on every 64-bit platform bus).
fn regs(node: FdtNode, what: &'static str) -> Result<Vec<(u64, u64)>, Error> {
    let raw = node.raw_reg().ok_or(Error::Malformed(what))?;
    let mut out = Vec::new();
    for r in raw {
        let a: Vec<u32> = cells(r.address).collect();
        let s: Vec<u32> = cells(r.size).collect();
        let size = if s.is_empty() {
            0
        } else {
            read_cells(&s, what)?
        };
        out.push((read_cells(&a, what)?, size));
    }
    if out.is_empty() {
        return Err(Error::Malformed(what));
    }
    Ok(out)
}

/// Converts one 3-cell GIC interrupt specifier to an INTID.
fn gic_intid(spec: &[u32], what: &'static str) -> Result<u32, Error> {
    match *spec {
        [GIC_SPI, n, _] if n < 988 => Ok(SPI_BASE + n),
        [GIC_PPI, n, _] if n < 16 => Ok(PPI_BASE + n),
        _ => Err(Error::Malformed(what)),
    }
}

/// The INTIDs of a node's `interrupts`, assuming the 3-cell GIC specifier
/// (checked once against the GIC's `#interrupt-cells`).
fn interrupts(node: FdtNode, what: &'static str) -> Result<Vec<u32>, Error> {
    let v = node
        .property("interrupts")
        .ok_or(Error::Malformed(what))?
        .value;
    if v.is_empty() || v.len() % 12 != 0 {
        return Err(Error::Malformed(what));
    }
    let c: Vec<u32> = cells(v).collect();
    c.chunks_exact(3).map(|s| gic_intid(s, what)).collect()
}

fn first_irq(node: FdtNode, what: &'static str) -> Result<u32, Error> {
    Ok(interrupts(node, what)?[0])
}

/// Structure block tokens (Devicetree Specification v0.4, 5.4.1).
pub(crate) const FDT_BEGIN_NODE: u32 = 1;
pub(crate) const FDT_END_NODE: u32 = 2;
pub(crate) const FDT_PROP: u32 = 3;
pub(crate) const FDT_END: u32 = 9;

/// Deepest node nesting accepted (the root is depth 1). The `fdt` crate
/// keeps 63 levels; QEMU's trees are 4 deep.
const MAX_DEPTH: usize = 32;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let c = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// The NUL-terminated UTF-8 string at the start of `b`, and its length.
fn c_str(b: &[u8]) -> Option<&str> {
    let end = b.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&b[..end]).ok()
}

/// Checks that `blob` is a flattened device tree whose every part the
/// `fdt` crate reads lies inside it and is well formed (DT spec v0.4,
/// chapter 5): the header's blocks within `totalsize`, one unnamed root
/// node, every node and property name a NUL-terminated UTF-8 string,
/// every property inside the structure block with its name inside the
/// strings block, `#address-cells`/`#size-cells` exactly one cell, the
/// nesting at most [`MAX_DEPTH`], and FDT_END after the root. NOP tokens,
/// which QEMU never writes and the crate skips only in some places, are
/// refused too.
pub fn check_structure(blob: &[u8]) -> Result<(), Error> {
    let hdr = |i: usize| be32(blob, 4 * i).ok_or(Error::NotFdt);
    if hdr(0)? != FDT_MAGIC {
        return Err(Error::NotFdt);
    }
    let total = hdr(1)? as usize;
    if total > blob.len() || total < 40 {
        return Err(Error::NotFdt);
    }
    let block = |off: u32, size: u32| {
        let (off, size) = (off as usize, size as usize);
        off.checked_add(size)
            .filter(|&end| off >= 40 && end <= total)
            .map(|end| &blob[off..end])
            .ok_or(Error::NotFdt)
    };
    let structure = block(hdr(2)?, hdr(9)?)?;
    let strings = block(hdr(3)?, hdr(8)?)?;

    let bad = Error::Malformed("structure block");
    let token = |at: usize| be32(structure, at).ok_or(Error::Malformed("structure block"));
    let mut at = 0;
    let mut depth = 0usize;
    loop {
        match token(at)? {
            FDT_BEGIN_NODE => {
                let name = c_str(structure.get(at + 4..).ok_or(bad.clone())?).ok_or(bad.clone())?;
                // The root, and only the root, has the empty name.
                if (depth == 0) != name.is_empty() {
                    return Err(bad);
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::Malformed("device tree nesting"));
                }
                at += 4 + (name.len() + 1).next_multiple_of(4);
                // Properties come before the node's children.
                while token(at)? == FDT_PROP {
                    let len = token(at + 4)? as usize;
                    let name_off = token(at + 8)? as usize;
                    let value = at
                        .checked_add(12)
                        .and_then(|v| Some(v..v.checked_add(len)?))
                        .and_then(|r| structure.get(r))
                        .ok_or(bad.clone())?;
                    let name = c_str(strings.get(name_off..).ok_or(bad.clone())?)
                        .ok_or(Error::Malformed("property name"))?;
                    if matches!(name, "#address-cells" | "#size-cells") && value.len() != 4 {
                        return Err(Error::Malformed("#address-cells/#size-cells"));
                    }
                    at += 12 + len.next_multiple_of(4);
                }
            }
            FDT_END_NODE => {
                depth = depth.checked_sub(1).ok_or(bad.clone())?;
                at += 4;
            }
            FDT_END if depth == 0 && at > 0 => return Ok(()),
            _ => return Err(bad),
        }
        if depth == 0 && token(at)? != FDT_END {
            return Err(bad);
        }
    }
}

/// Parses the DT QEMU `virt` (or a VMM following its layout) provides.
pub fn parse(blob: &[u8]) -> Result<Board, Error> {
    check_structure(blob)?;
    let fdt = Fdt::new(blob).map_err(|_| Error::NotFdt)?;
    let mut p = Board::default();

    let root = fdt.find_node("/").ok_or(Error::Missing("a root node"))?;
    p.qemu_virt = is_compatible(root, "linux,dummy-virt");

    // The GIC first: every other interrupt specifier is decoded against it.
    let gic = fdt
        .all_nodes()
        .find(|n| {
            is_compatible(*n, "arm,gic-v3")
                || is_compatible(*n, "arm,cortex-a15-gic")
                || is_compatible(*n, "arm,gic-400")
        })
        .ok_or(Error::Missing("a GICv2 or GICv3 interrupt controller"))?;
    if gic.interrupt_cells() != Some(3) {
        return Err(Error::Malformed("GIC #interrupt-cells"));
    }
    p.gic = parse_gic(gic)?;

    // The platform bus's (base, size), once seen (it precedes its children).
    let mut platform_bus: Option<(u64, u64)> = None;
    for node in fdt.all_nodes() {
        let n = Summary::of(node);
        if !n.enabled() {
            // Secure-only devices carry status = "disabled" plus
            // secure-status = "okay" (QEMU virt with secure=on).
            if n.is("arm,pl061") && n.secure_status == Some("okay") {
                p.secure_gpio = Some(SecureGpio {
                    base: regs(node, "secure GPIO reg")?[0].0,
                    poweroff_pin: None,
                    restart_pin: None,
                });
            }
            if n.is("arm,pl011") && n.secure_status == Some("okay") {
                p.secure_uart = Some((
                    regs(node, "secure PL011 reg")?[0].0,
                    first_irq(node, "secure PL011 interrupts")?,
                ));
            }
            continue;
        }
        if n.device_type == Some("memory") {
            for (base, size) in regs(node, "memory reg")? {
                if size > 0 {
                    p.memory.push((base, size));
                }
            }
        } else if n.device_type == Some("cpu") {
            let r = node
                .property("reg")
                .ok_or(Error::Malformed("cpu reg"))?
                .value;
            let c: Vec<u32> = cells(r).collect();
            p.cpus.push(read_cells(&c, "cpu reg")?);
        } else if n.is("arm,armv8-timer") || n.is("arm,armv7-timer") {
            let irqs = interrupts(node, "timer interrupts")?;
            if irqs.len() < 4 {
                return Err(Error::Malformed("timer interrupts"));
            }
            p.timer_irqs.copy_from_slice(&irqs[..4]);
            p.timer_el2_virt = irqs.get(4).copied();
        } else if n.is("arm,armv8-pmuv3") {
            p.pmu_irq = Some(first_irq(node, "PMU interrupts")?);
        } else if n.is("arm,pl011") {
            // The first UART is the console; QEMU lists it first and names
            // it in /chosen stdout-path.
            if p.uart.is_none() {
                p.uart = Some((
                    regs(node, "PL011 reg")?[0].0,
                    first_irq(node, "PL011 interrupts")?,
                ));
            }
        } else if n.is("arm,pl031") {
            p.rtc = Some((
                regs(node, "PL031 reg")?[0].0,
                first_irq(node, "PL031 interrupts")?,
            ));
        } else if n.is("qemu,platform") {
            // QEMU's platform bus (hw/arm/sysbus-fdt.c): `ranges` = <child
            // 0, parent address (2 cells), size>; dynamic sysbus devices
            // (the TPM) sit below it at offsets.
            if let Some(r) = node.property("ranges") {
                let c: Vec<u32> = cells(r.value).collect();
                if let [0, hi, lo, size] = c[..] {
                    platform_bus = Some(((u64::from(hi) << 32) | u64::from(lo), u64::from(size)));
                }
            }
        } else if n.is("tcg,tpm-tis-mmio") {
            let (off, size) = regs(node, "TPM reg")?[0];
            p.tpm = Some(match platform_bus {
                Some((base, len)) if off.checked_add(size).is_some_and(|e| e <= len) => {
                    (base + off, size)
                }
                _ => (off, size),
            });
        } else if n.is("qemu,fw-cfg-mmio") {
            p.fw_cfg = Some(regs(node, "fw_cfg reg")?[0].0);
        } else if n.is("virtio,mmio") {
            let (base, size) = regs(node, "virtio-mmio reg")?[0];
            p.virtio_mmio
                .push((base, size, first_irq(node, "virtio-mmio interrupts")?));
        } else if n.is("pci-host-ecam-generic") {
            p.pcie = Some(parse_pcie(&fdt, node)?);
        } else if n.is("arm,psci-0.2") || n.is("arm,psci") {
            p.psci = match prop_str(node, "method") {
                Some("hvc") => Some(Conduit::Hvc),
                Some("smc") => Some(Conduit::Smc),
                _ => return Err(Error::Malformed("PSCI method")),
            };
        } else if n.is("gpio-keys") {
            p.has_gpio_keys = true;
        } else if node.name == "chosen" {
            if let Some(v) = node.property("rng-seed") {
                p.rng_seed = Some(v.value.to_vec());
            }
            if let Some(v) = node.property("kaslr-seed") {
                let c: Vec<u32> = cells(v.value).collect();
                p.kaslr_seed = read_cells(&c, "kaslr-seed").ok();
            }
        }
    }

    // gpio-poweroff / gpio-restart point at the secure PL061 by phandle.
    if let Some(sg) = p.secure_gpio.as_mut() {
        for node in fdt.all_nodes() {
            let poweroff = is_compatible(node, "gpio-poweroff");
            if !poweroff && !is_compatible(node, "gpio-restart") {
                continue;
            }
            let g: Vec<u32> = node
                .property("gpios")
                .map(|p| cells(p.value).collect())
                .unwrap_or_default();
            let target = g.first().and_then(|ph| fdt.find_phandle(*ph));
            let on_secure_gpio = target
                .and_then(|t| regs(t, "GPIO reg").ok())
                .is_some_and(|r| r[0].0 == sg.base);
            if let (true, Some(pin)) = (on_secure_gpio, g.get(1)) {
                if poweroff {
                    sg.poweroff_pin = Some(*pin);
                } else {
                    sg.restart_pin = Some(*pin);
                }
            }
        }
    }

    if p.memory.is_empty() {
        return Err(Error::Missing("memory"));
    }
    if p.cpus.is_empty() {
        return Err(Error::Missing("CPUs"));
    }
    if p.timer_irqs == [0; 4] {
        return Err(Error::Missing("the architected timer"));
    }
    super::sort_small(&mut p.memory);
    // RAM is used as [base, base + size) throughout (MMU maps, stage 2,
    // the EFI memory map): no range may wrap or overlap another.
    let mut end = 0u64;
    for (i, &(base, size)) in p.memory.iter().enumerate() {
        if (i > 0 && base < end) || base.checked_add(size).is_none() {
            return Err(Error::Malformed("memory reg (wrapping or overlapping RAM)"));
        }
        end = base + size;
    }
    Ok(p)
}

fn parse_gic(gic: FdtNode) -> Result<GicInfo, Error> {
    let mut g = GicInfo::default();
    let reg = regs(gic, "GIC reg")?;
    if is_compatible(gic, "arm,gic-v3") {
        g.version = 3;
        // reg: GICD, then #redistributor-regions GICR regions, then the
        // optional GICC, GICH, GICV (arm,gic-v3 binding).
        let nr = prop_u32(gic, "#redistributor-regions").unwrap_or(1) as usize;
        if nr == 0 || reg.len() < 1 + nr {
            return Err(Error::Malformed("GICv3 reg"));
        }
        g.gicd = reg[0].0;
        g.gicr = reg[1..1 + nr].to_vec();
        g.gicc = reg.get(1 + nr).map(|r| r.0);
        g.gich = reg.get(2 + nr).map(|r| r.0);
        g.gicv = reg.get(3 + nr).map(|r| r.0);
        for child in gic.children() {
            if is_compatible(child, "arm,gic-v3-its") && enabled(child) {
                g.its = Some(regs(child, "ITS reg")?[0].0);
            }
        }
    } else {
        g.version = 2;
        // reg: GICD, GICC, then GICH and GICV with virtualization (arm,gic binding).
        if reg.len() < 2 {
            return Err(Error::Malformed("GICv2 reg"));
        }
        g.gicd = reg[0].0;
        g.gicc = Some(reg[1].0);
        g.gich = reg.get(2).map(|r| r.0);
        g.gicv = reg.get(3).map(|r| r.0);
        for child in gic.children() {
            if is_compatible(child, "arm,gic-v2m-frame") && enabled(child) {
                let base = regs(child, "GICv2m reg")?[0].0;
                let spis = match (
                    prop_u32(child, "arm,msi-base-spi"),
                    prop_u32(child, "arm,msi-num-spis"),
                ) {
                    (Some(b), Some(n)) => Some((b, n)),
                    (None, None) => None,
                    _ => return Err(Error::Malformed("GICv2m SPI range")),
                };
                g.v2m = Some((base, spis));
            }
        }
    }
    if gic.property("interrupts").is_some() {
        g.maint_irq = Some(first_irq(gic, "GIC maintenance interrupt")?);
    }
    Ok(g)
}

/// PCI `phys.hi` space code (IEEE 1275 PCI binding, bits 24-25).
const PCI_SPACE_IO: u32 = 1;
const PCI_SPACE_MEM32: u32 = 2;
const PCI_SPACE_MEM64: u32 = 3;

fn parse_pcie(fdt: &Fdt, node: FdtNode) -> Result<PcieInfo, Error> {
    let mut pci = PcieInfo::default();
    let (base, size) = regs(node, "PCIe reg")?[0];
    pci.ecam_base = base;
    pci.ecam_size = size;
    match node
        .property("bus-range")
        .map(|p| cells(p.value).collect::<Vec<_>>())
        .as_deref()
    {
        Some(&[a, b]) if a <= b && b <= 255 => {
            pci.bus_start = a as u8;
            pci.bus_end = b as u8;
        }
        // Without bus-range the ECAM size says how many buses decode (1 MiB each).
        None => pci.bus_end = ((size >> 20).clamp(1, 256) - 1) as u8,
        _ => return Err(Error::Malformed("PCIe bus-range")),
    }

    // ranges: child address (3 cells), parent address (root's
    // #address-cells), size (the bridge's #size-cells).
    let parent_ac = fdt
        .find_node("/")
        .map(|r| r.cell_sizes().address_cells)
        .unwrap_or(2);
    let child = node.cell_sizes();
    if child.address_cells != 3 || child.size_cells == 0 || child.size_cells > 2 {
        return Err(Error::Malformed("PCIe #address-cells/#size-cells"));
    }
    let ranges: Vec<u32> = node
        .property("ranges")
        .map(|p| cells(p.value).collect())
        .ok_or(Error::Missing("PCIe ranges"))?;
    let stride = 3 + parent_ac + child.size_cells;
    if !ranges.len().is_multiple_of(stride) {
        return Err(Error::Malformed("PCIe ranges"));
    }
    for r in ranges.chunks_exact(stride) {
        let pci_addr = ((r[1] as u64) << 32) | r[2] as u64;
        let cpu = read_cells(&r[3..3 + parent_ac], "PCIe ranges")?;
        let len = read_cells(&r[3 + parent_ac..], "PCIe ranges")?;
        let w = Some((cpu, pci_addr, len));
        match (r[0] >> 24) & 3 {
            PCI_SPACE_IO => pci.io = w,
            PCI_SPACE_MEM32 => pci.mmio32 = w,
            PCI_SPACE_MEM64 => pci.mmio64 = w,
            _ => return Err(Error::Malformed("PCIe ranges space code")),
        }
    }

    pci.prt = parse_interrupt_map(fdt, node)?;
    Ok(pci)
}

/// Expands `interrupt-map`/`interrupt-map-mask` into one routing entry per
/// device number and pin on the root bus, as an ACPI `_PRT` needs them.
fn parse_interrupt_map(fdt: &Fdt, node: FdtNode) -> Result<Vec<(u8, u8, u32)>, Error> {
    let Some(map) = node.property("interrupt-map") else {
        return Ok(Vec::new());
    };
    let map: Vec<u32> = cells(map.value).collect();
    let mask: Vec<u32> = node
        .property("interrupt-map-mask")
        .map(|p| cells(p.value).collect())
        .unwrap_or_else(|| alloc::vec![!0u32; 4]);
    if mask.len() != 4 {
        return Err(Error::Malformed("PCIe interrupt-map-mask"));
    }
    // Entries: child unit address (3) + child specifier (1), parent
    // phandle, parent unit address (#address-cells of the parent, which may
    // be absent = 0) + parent specifier (#interrupt-cells of the parent).
    let mut entries = Vec::new();
    let mut parents: Vec<(u32, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < map.len() {
        let head = map
            .get(i..i + 5)
            .ok_or(Error::Malformed("PCIe interrupt-map"))?;
        // Every entry names the same GIC in practice: look each phandle up
        // once (a lookup walks the whole tree).
        let (pac, pic) = match parents.iter().find(|p| p.0 == head[4]) {
            Some(&(_, pac, pic)) => (pac, pic),
            None => {
                let parent = fdt
                    .find_phandle(head[4])
                    .ok_or(Error::Malformed("PCIe interrupt-map parent"))?;
                let pac = prop_u32(parent, "#address-cells").unwrap_or(0) as usize;
                let pic = parent
                    .interrupt_cells()
                    .ok_or(Error::Malformed("PCIe interrupt-map parent"))?;
                parents.push((head[4], pac, pic));
                (pac, pic)
            }
        };
        if pic != 3 {
            return Err(Error::Malformed("PCIe interrupt-map parent"));
        }
        let spec = map
            .get(i + 5 + pac..i + 5 + pac + pic)
            .ok_or(Error::Malformed("PCIe interrupt-map"))?;
        entries.push((head[0], head[3], gic_intid(spec, "PCIe interrupt-map")?));
        i += 5 + pac + pic;
    }

    let mut prt = Vec::new();
    for dev in 0u32..32 {
        for pin in 1u32..=4 {
            let hi = (dev << 11) & mask[0];
            let p = pin & mask[3];
            if let Some(e) = entries.iter().find(|e| e.0 == hi && e.1 == p) {
                prt.push((dev as u8, (pin - 1) as u8, e.2));
            }
        }
    }
    Ok(prt)
}

/// Returns the blob at the start of `mem` if it starts with the DT magic,
/// cut to the header's `totalsize`.
pub fn blob_at(mem: &[u8]) -> Option<&[u8]> {
    let magic = u32::from_be_bytes(mem.get(0..4)?.try_into().ok()?);
    let size = u32::from_be_bytes(mem.get(4..8)?.try_into().ok()?) as usize;
    (magic == FDT_MAGIC && size >= 40).then(|| mem.get(..size))?
}

#[cfg(test)]
pub(crate) mod tests;
