//! The constant AML of QEMU's `pc` machine (i440FX host, PIIX3 ISA bridge
//! at 00:01.0, PIIX4 PM at 00:01.3), built on the host like the rest of
//! this folder: the `_PRT` of the root bus through the PCI interrupt link
//! devices, the link devices themselves, and the ISA bridge's PIRQ route
//! registers they read and write.
//!
//! Why links, not fixed GSIs: on PIIX a PCI interrupt reaches the I/O
//! APIC only through the ISA IRQ its PIRQ route register names (QEMU
//! hw/isa/piix.c piix_set_pci_irq_level: the PIRQ drives the ISA IRQ
//! line, which feeds the I/O APIC input of the same number), so the GSI
//! is whatever the route register holds. Link devices (ACPI 6.5 6.2.13,
//! PNP0C0F) let Linux read and set that register, and describe the
//! line as QEMU drives it (level, active high, as the MADT overrides for
//! IRQs 5, 9, 10 and 11 say), which is what SeaBIOS and QEMU's own tables
//! give Linux on this machine.

use super::dsdt_aml::concat;
use super::{path, routing, to_bytes};
use acpi_tables::aml;
use acpi_tables::Aml;

/// The link devices by PIRQ (A-D), then the one for the PM function's SCI.
const LINKS: [&str; 4] = ["LNKA", "LNKB", "LNKC", "LNKD"];

/// The IRQs a PIRQ may be routed to: the ones QEMU's own `pc` tables
/// offer (hw/i386/acpi-build.c build_link_dev: 5, 10, 11).
const PIRQ_IRQS: [u32; 3] = [5, 10, 11];
/// The SCI's IRQ (QEMU hw/acpi/piix4.c, sci_int 9).
const SCI_IRQ: u32 = 9;

/// Extended Interrupt descriptor (ACPI 6.5 6.4.3.6): tag 0x89, length,
/// flags (consumer, level, active high, shared: bits 0 and 3), count,
/// then the IRQs. One descriptor with every IRQ: Linux reads only the
/// first descriptor of a link's `_PRS` (drivers/acpi/pci_link.c
/// acpi_pci_link_check_possible). The first IRQ sits at byte 5, where
/// `_SRS` and IQCR find it.
struct ExtIrq(Vec<u32>);

impl Aml for ExtIrq {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.byte(0x89);
        sink.word(2 + 4 * self.0.len() as u16);
        sink.byte(0x09);
        sink.byte(self.0.len() as u8);
        for irq in &self.0 {
            sink.dword(*irq);
        }
    }
}

/// `Name (_PRT, ..)` of the root bus (ACPI 6.5 6.2.13): each slot's INTx
/// to its link device, the link's `_CRS` giving the IRQ.
pub fn prt() -> Vec<u8> {
    let entries: Vec<(u32, u8, aml::Path)> = routing::pc()
        .map(|(d, pin, link)| {
            let name = LINKS.get(usize::from(link)).copied().unwrap_or("LNKS");
            ((u32::from(d) << 16) | 0xffff, pin, path(name))
        })
        .collect();
    let pkgs: Vec<aml::Package> = entries
        .iter()
        .map(|(addr, pin, link)| aml::Package::new(vec![addr, pin, link, &aml::ZERO]))
        .collect();
    let all: Vec<&dyn Aml> = pkgs.iter().map(|p| p as &dyn Aml).collect();
    to_bytes(&aml::Name::new("_PRT".into(), &aml::Package::new(all)))
}

/// What the ISA bridge's device holds besides its ISA devices: its
/// `_ADR` (00:01.0) and the PIRQ route registers PIRQRCA-D at PCI config
/// 0x60-0x63 as fields PRQ0-3 (PIIX3 datasheet 2.2.9; QEMU hw/isa/piix.c
/// PIIX_PIRQCA). Bit 7 of each disables the route.
pub fn isa_head() -> Vec<u8> {
    let adr = aml::Name::new("_ADR".into(), &0x0001_0000u32);
    let region = aml::OpRegion::new("P40C".into(), aml::OpRegionSpace::PCIConfig, &0x60u8, &4u8);
    let field = aml::Field::new(
        "P40C".into(),
        aml::FieldAccessType::Byte,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::Preserve,
        (b'0'..=b'3')
            .map(|i| aml::FieldEntry::Named([b'P', b'R', b'Q', i], 8))
            .collect(),
    );
    concat(&[&adr, &region, &field])
}

/// Under `\_SB`: IQST and IQCR, shared by the links, LNKA-D over the
/// route registers and LNKS, the SCI's fixed link.
pub fn links() -> Vec<u8> {
    // IQST (reg): _STA of a link: present, functioning, and enabled
    // unless bit 7 disables the route (ACPI 6.5 6.3.7).
    let disabled = aml::And::new(&aml::ZERO, &0x80u8, &aml::Arg(0));
    let off = aml::Return::new(&0x09u8);
    let if_off = aml::If::new(&disabled, vec![&off]);
    let on = aml::Return::new(&0x0bu8);
    let iqst = aml::Method::new("IQST".into(), 1, false, vec![&if_off, &on]);

    // IQCR (reg): _CRS of a link, the routed IRQ (none when disabled).
    let none = ExtIrq(vec![0]);
    let tmpl = aml::ResourceTemplate::new(vec![&none]);
    let prr0 = aml::Name::new("PRR0".into(), &tmpl);
    let prri = path("PRRI");
    let prr0_ref = path("PRR0");
    let field = aml::CreateDWordField::new(&prri, &prr0_ref, &5u8);
    let routed = aml::LessThan::new(&aml::Arg(0), &0x80u8);
    let set = aml::Store::new(&prri, &aml::Arg(0));
    let if_routed = aml::If::new(&routed, vec![&set]);
    let ret = aml::Return::new(&prr0_ref);
    let iqcr = aml::Method::new(
        "IQCR".into(),
        1,
        true,
        vec![&prr0, &field, &if_routed, &ret],
    );

    let pirq_irqs = ExtIrq(PIRQ_IRQS.to_vec());
    let possible = aml::ResourceTemplate::new(vec![&pirq_irqs]);
    let devs: Vec<Vec<u8>> = LINKS
        .iter()
        .enumerate()
        .map(|(i, name)| link(name, i as u8, &possible))
        .collect();

    // LNKS: the PM function's INTA is its SCI, IRQ 9, fixed.
    let sci_irq = ExtIrq(vec![SCI_IRQ]);
    let sci = aml::ResourceTemplate::new(vec![&sci_irq]);
    let hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C0F"));
    let uid = aml::Name::new("_UID".into(), &4u8);
    let prs = aml::Name::new("_PRS".into(), &sci);
    let sta = aml::Name::new("_STA".into(), &0x0bu8);
    let prs_ref = path("_PRS");
    let crs_ret = aml::Return::new(&prs_ref);
    let crs = aml::Method::new("_CRS".into(), 0, false, vec![&crs_ret]);
    let srs = aml::Method::new("_SRS".into(), 1, false, vec![]);
    let lnks = aml::Device::new("LNKS".into(), vec![&hid, &uid, &prs, &sta, &crs, &srs]);

    let mut out = concat(&[&iqst, &iqcr]);
    for d in devs {
        out.extend(d);
    }
    lnks.to_aml_bytes(&mut out);
    out
}

/// One PIRQ's link device over its route register PRQ`i` (in the ISA
/// bridge: `\_SB.PCI0.ISA_.PRQi`).
fn link(name: &str, i: u8, possible: &aml::ResourceTemplate) -> Vec<u8> {
    let reg = path(&format!("\\_SB_.PCI0.ISA_.PRQ{i}"));
    let hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C0F"));
    let uid = aml::Name::new("_UID".into(), &i);
    let prs = aml::Name::new("_PRS".into(), possible);
    let sta_call = aml::MethodCall::new("IQST".into(), vec![&reg]);
    let sta_ret = aml::Return::new(&sta_call);
    let sta = aml::Method::new("_STA".into(), 0, false, vec![&sta_ret]);
    let dis_or = aml::Or::new(&reg, &reg, &0x80u8);
    let dis = aml::Method::new("_DIS".into(), 0, false, vec![&dis_or]);
    let crs_call = aml::MethodCall::new("IQCR".into(), vec![&reg]);
    let crs_ret = aml::Return::new(&crs_call);
    let crs = aml::Method::new("_CRS".into(), 0, false, vec![&crs_ret]);
    let prri = path("PRRI");
    let field = aml::CreateDWordField::new(&prri, &aml::Arg(0), &5u8);
    let set = aml::Store::new(&reg, &prri);
    let srs = aml::Method::new("_SRS".into(), 1, false, vec![&field, &set]);
    to_bytes(&aml::Device::new(
        name.into(),
        vec![&hid, &uid, &prs, &sta, &dis, &crs, &srs],
    ))
}
