//! Platform discovery from the device tree QEMU's arm `virt` machine hands
//! the firmware (the `/chosen`-only DT for Linux is `boot::stub_dt`).
//!
//! Parsing uses the firmware's own reader (`walk.rs`), bounds-checked
//! throughout. [`check_structure`] walks the whole blob first and refuses
//! anything malformed (overrunning blocks, names that are not UTF-8, NOP
//! tokens, nesting beyond `structure::MAX_DEPTH`, `#address-cells`
//! shorter than a cell), so `parse` returns an [`Error`] for every input
//! with one reason (the fuzz target `dt` holds it to that). Everything this
//! module reads itself (cells of `interrupts`, `ranges`, `interrupt-map`,
//! ...) is bounds-checked and reported as an [`Error`] too.
//!
//! Binding facts come from the Linux DT bindings
//! (`Documentation/devicetree/bindings/`: `interrupt-controller/arm,gic*.yaml`,
//! `timer/arm,arch_timer.yaml`, `pci/host-generic-pci.yaml`,
//! `arm/psci.yaml`) and the IEEE 1275 PCI bus binding for `ranges` and
//! `interrupt-map` cell layout.
//!
//! The files of `dt/`, by concern: `structure.rs` vets the blob before it
//! is read, `walk.rs` reads nodes and properties; `props.rs` reads cells, `reg`, `status` and interrupt
//! specifiers; `gic.rs` and `pcie.rs` parse the two nodes with layouts of
//! their own (the PCIe one with its `ranges` and `interrupt-map`). This
//! file holds what callers see: the [`Board`] model and [`parse`], which
//! walks the nodes once and fills it (tests in `dt/tests.rs`).

use crate::psci::Conduit;
use alloc::vec::Vec;
use core::fmt;

mod gic;
mod pcie;
mod props;
mod structure;
mod walk;

pub use structure::check_structure;
pub(crate) use structure::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_PROP};

use props::{
    cells, cells_number, compat, first_irq, first_reg, interrupts, is_compatible, prop_str, regs,
    Summary,
};

/// The magic number at the start of every flattened device tree
/// (Devicetree Specification v0.4, 5.2).
pub const FDT_MAGIC: u32 = 0xd00d_feed;

/// INTID of SPI 0 (GIC architecture: SGIs 0-15, PPIs 16-31, SPIs 32+).
pub const SPI_BASE: u32 = 32;

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
    /// The secure-only RAM (QEMU virt `secure=on`, hw/arm/virt.c
    /// `create_secure_ram`): base, size. Never in [`Board::memory`]; the
    /// EL3 firmware moves into it, read here once with the rest of the DT.
    pub secure_ram: Option<(u64, u64)>,
    /// `/chosen` entropy to hand on to Linux.
    pub rng_seed: Option<Vec<u8>>,
    /// `/chosen` `bootargs` (UTF-8, NULs dropped): cloud-hypervisor puts
    /// its `earlycon=` there even for a firmware.
    pub bootargs: Option<alloc::string::String>,
    pub kaslr_seed: Option<u64>,
    /// Root `compatible` includes QEMU's "linux,dummy-virt".
    pub qemu_virt: bool,
    /// A "qemu,platform" node: QEMU virt's platform bus, which virt always
    /// creates (hw/arm/virt.c `create_platform_bus`; its node from
    /// hw/arm/sysbus-fdt.c, seen in QEMU 10.0's `dumpdtb`).
    /// cloud-hypervisor's DT has none.
    pub qemu_platform_bus: bool,
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

/// Parses the DT QEMU `virt` (or a VMM following its layout) provides.
pub fn parse(blob: &[u8]) -> Result<Board, Error> {
    check_structure(blob)?;
    let mut memo = Vec::new();
    let fdt = walk::Tree::new(blob, &mut memo)?;
    let mut p = Board::default();

    let root = fdt.root().ok_or(Error::Missing("a root node"))?;
    p.qemu_virt = is_compatible(root, "linux,dummy-virt");

    // One walk over the nodes; what needs another node (the GIC that
    // interrupt specifiers are decoded against, a phandle's target) is
    // kept and read after it.
    let mut gic = None;
    let mut pcie_nodes = Vec::new();
    let mut secure_gpio = None;
    let mut gpio_power = Vec::new();
    // The platform bus's (base, size), once seen (it precedes its children).
    let mut platform_bus: Option<(u64, u64)> = None;
    for node in fdt.nodes() {
        let n = Summary::of(node);
        if gic.is_none() && n.is(compat::GIC_V3 | compat::GIC_A15 | compat::GIC_400) {
            gic = Some(node);
        }
        // gpio-poweroff / gpio-restart point at the secure PL061 by phandle.
        let poweroff = n.is(compat::GPIO_POWEROFF);
        if poweroff || n.is(compat::GPIO_RESTART) {
            gpio_power.push((poweroff, node));
        }
        if !n.enabled() {
            // Secure-only devices carry status = "disabled" plus
            // secure-status = "okay" (QEMU virt with secure=on).
            let secure = n.secure_status == Some(b"okay");
            if n.is(compat::PL061) && secure {
                p.secure_gpio = Some(SecureGpio {
                    base: first_reg(node, "secure GPIO reg")?.0,
                    poweroff_pin: None,
                    restart_pin: None,
                });
                secure_gpio = Some(node);
            }
            // Its first `reg` range, as QEMU writes one; a range of size 0
            // (no #size-cells) holds nothing to move into. It is used as
            // [base, base + size) like RAM, so it may not wrap either.
            if n.device_type == Some(b"memory") && secure && p.secure_ram.is_none() {
                let (base, size) = first_reg(node, "secure memory reg")?;
                if base.checked_add(size).is_none() {
                    return Err(Error::Malformed("secure memory reg"));
                }
                p.secure_ram = (size > 0).then_some((base, size));
            }
            if n.is(compat::PL011) && secure {
                p.secure_uart = Some((
                    first_reg(node, "secure PL011 reg")?.0,
                    first_irq(node, "secure PL011 interrupts")?,
                ));
            }
            continue;
        }
        if n.device_type == Some(b"memory") {
            for (base, size) in regs(node, "memory reg")? {
                if size > 0 {
                    p.memory.push((base, size));
                }
            }
        } else if n.device_type == Some(b"cpu") {
            let r = node.info.reg.ok_or(Error::Malformed("cpu reg"))?;
            p.cpus.push(cells_number(r, "cpu reg")?);
        } else if n.is(compat::TIMER_V8 | compat::TIMER_V7) {
            let irqs = interrupts(node, "timer interrupts")?;
            if irqs.len() < 4 {
                return Err(Error::Malformed("timer interrupts"));
            }
            p.timer_irqs.copy_from_slice(&irqs[..4]);
            p.timer_el2_virt = irqs.get(4).copied();
        } else if n.is(compat::PMU) {
            p.pmu_irq = Some(first_irq(node, "PMU interrupts")?);
        } else if n.is(compat::PL011) {
            // The first UART is the console; QEMU lists it first and names
            // it in /chosen stdout-path.
            if p.uart.is_none() {
                p.uart = Some((
                    first_reg(node, "PL011 reg")?.0,
                    first_irq(node, "PL011 interrupts")?,
                ));
            }
        } else if n.is(compat::PL031) {
            p.rtc = Some((
                first_reg(node, "PL031 reg")?.0,
                first_irq(node, "PL031 interrupts")?,
            ));
        } else if n.is(compat::PLATFORM_BUS) {
            p.qemu_platform_bus = true;
            // QEMU's platform bus (hw/arm/sysbus-fdt.c): `ranges` = <child
            // 0, parent address (2 cells), size>; dynamic sysbus devices
            // (the TPM) sit below it at offsets.
            if let Some(r) = node.property("ranges") {
                let c: Vec<u32> = cells(r.value).collect();
                if let [0, hi, lo, size] = c[..] {
                    platform_bus = Some(((u64::from(hi) << 32) | u64::from(lo), u64::from(size)));
                }
            }
        } else if n.is(compat::TPM) {
            let (off, size) = first_reg(node, "TPM reg")?;
            p.tpm = Some(match platform_bus {
                Some((base, len)) if off.checked_add(size).is_some_and(|e| e <= len) => {
                    (base + off, size)
                }
                _ => (off, size),
            });
        } else if n.is(compat::FW_CFG) {
            p.fw_cfg = Some(first_reg(node, "fw_cfg reg")?.0);
        } else if n.is(compat::VIRTIO_MMIO) {
            let (base, size) = first_reg(node, "virtio-mmio reg")?;
            p.virtio_mmio
                .push((base, size, first_irq(node, "virtio-mmio interrupts")?));
        } else if n.is(compat::PCIE) {
            pcie_nodes.push(node);
        } else if n.is(compat::PSCI_02 | compat::PSCI) {
            p.psci = match prop_str(node, "method") {
                Some("hvc") => Some(Conduit::Hvc),
                Some("smc") => Some(Conduit::Smc),
                _ => return Err(Error::Malformed("PSCI method")),
            };
        } else if n.is(compat::GPIO_KEYS) {
            p.has_gpio_keys = true;
        } else if node.name == b"chosen" {
            if let Some(v) = node.property("bootargs") {
                p.bootargs = core::str::from_utf8(v.value)
                    .ok()
                    .map(|t| t.trim_end_matches('\0').trim().into())
                    .filter(|t: &alloc::string::String| !t.is_empty());
            }
            if let Some(v) = node.property("rng-seed") {
                p.rng_seed = Some(v.value.to_vec());
            }
            if let Some(v) = node.property("kaslr-seed") {
                p.kaslr_seed = cells_number(v.value, "kaslr-seed").ok();
            }
        }
    }

    let gic = gic.ok_or(Error::Missing("a GICv2 or GICv3 interrupt controller"))?;
    if gic.interrupt_cells() != Some(3) {
        return Err(Error::Malformed("GIC #interrupt-cells"));
    }
    p.gic = gic::parse(gic)?;
    for node in pcie_nodes {
        p.pcie = Some(pcie::parse(&fdt, node, gic)?);
    }

    // Phandles are unique (Devicetree Specification v0.4, 2.3.3): the
    // secure PL061, when named, needs no lookup.
    let by_phandle = |ph: u32| match secure_gpio {
        Some(g) if g.info.phandle == Some(ph) => Some(g),
        _ => fdt.find_phandle(ph),
    };
    if let Some(sg) = p.secure_gpio.as_mut() {
        for (poweroff, node) in gpio_power {
            let g: Vec<u32> = node
                .property("gpios")
                .map(|p| cells(p.value).collect())
                .unwrap_or_default();
            let target = g.first().and_then(|ph| by_phandle(*ph));
            let on_secure_gpio = target
                .and_then(|t| first_reg(t, "GPIO reg").ok())
                .is_some_and(|r| r.0 == sg.base);
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

/// Returns the blob at the start of `mem` if it starts with the DT magic,
/// cut to the header's `totalsize`.
pub fn blob_at(mem: &[u8]) -> Option<&[u8]> {
    let magic = u32::from_be_bytes(mem.get(0..4)?.try_into().ok()?);
    let size = u32::from_be_bytes(mem.get(4..8)?.try_into().ok()?) as usize;
    (magic == FDT_MAGIC && size >= 40).then(|| mem.get(..size))?
}

#[cfg(test)]
pub(crate) mod tests;
