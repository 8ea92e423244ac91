//! Which QEMU x86 board this is, told by the PCI host bridge at 00:00.0
//! (and, where none answers, by microvm's first virtio-mmio transport),
//! and how each board is stopped after the fatal error line: the board's
//! own power-off where it has one, then a reset (which QEMU's `-no-reboot`
//! turns into an exit), so a refused machine never hangs. `q35`, `pc` and
//! `microvm` are booted; the others are told apart to refuse them clearly
//! and stop them.

/// Vendor/device IDs of the host bridges QEMU's PC boards have (QEMU
/// hw/pci-host/q35.c MCH, hw/pci-host/i440fx.c).
const INTEL: u32 = 0x8086;
const Q35_MCH: u32 = 0x29c0;
const I440FX: u32 = 0x1237;
/// cloud-hypervisor's PCIe host bridge (CH pci/src/bus.rs
/// DEVICE_ID_INTEL_VIRT_PCIE_HOST), reached through the same ports.
const CH_HOST: u32 = 0x0d57;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// `q35`: Q35 MCH with the ICH9 LPC bridge.
    Q35,
    /// `pc` (QEMU's default): i440FX with PIIX3 and the PIIX4 PM function.
    I440fx,
    /// `microvm`: no PCI configuration mechanism #1 (its optional PCIe is
    /// ECAM-only, hw/i386/microvm.c), virtio-mmio transports instead.
    Microvm,
    /// Nothing answers PCI configuration mechanism #1 and there is no
    /// virtio-mmio transport: `isapc`.
    NoPci,
    /// cloud-hypervisor (its PVH `--firmware` entry): told from QEMU by
    /// this bridge, since a CH build with its `fw_cfg` feature answers
    /// fw_cfg like QEMU.
    CloudHypervisor,
    /// Another host bridge: vendor ID in the low half, device ID high.
    Other(u32),
}

impl Board {
    /// The board from the dword at config offset 0 of 00:00.0; an absent
    /// function reads all ones (PCI Local Bus 3.0 6.2.1). Only then is
    /// `mmio_magic` called, for the first word of microvm's first
    /// virtio-mmio transport.
    pub fn identify(id: u32, mmio_magic: impl FnOnce() -> u32) -> Board {
        match id {
            _ if id == Q35_MCH << 16 | INTEL => Board::Q35,
            _ if id == I440FX << 16 | INTEL => Board::I440fx,
            _ if id == CH_HOST << 16 | INTEL => Board::CloudHypervisor,
            u32::MAX if mmio_magic() == VIRTIO_MMIO_MAGIC => Board::Microvm,
            u32::MAX => Board::NoPci,
            _ => Board::Other(id),
        }
    }

    /// How to stop this board, best first; the firmware tries each in
    /// turn and halts only if all return. `i8042`: a keyboard controller
    /// answers at port 0x64.
    pub fn stops(self, i8042: bool) -> impl Iterator<Item = Stop> {
        let power_off = match self {
            Board::Q35 => Some(Stop::Ich9S5),
            Board::I440fx => Some(Stop::Piix4S5),
            // microvm with ACPI (its default) has the GED's sleep
            // register; with acpi=off nothing decodes that address and
            // the write is dropped.
            Board::Microvm => Some(Stop::GedS5),
            // isapc has no power-off; an unknown chipset: no register of
            // its is touched. cloud-hypervisor's S5 register comes from
            // its FADT (`stop::on_cloud_hypervisor`).
            Board::NoPci | Board::CloudHypervisor | Board::Other(_) => None,
        };
        power_off
            .into_iter()
            .chain(i8042.then_some(Stop::KbcReset))
            .chain([Stop::TripleFault])
    }
}

/// One way to stop the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// S5 through ICH9's PM1a_CNT (PM block at PMBASE, enabled at entry).
    Ich9S5,
    /// S5 through the PIIX4 PM function's PM1a_CNT, after enabling its
    /// I/O space.
    Piix4S5,
    /// S5 through the hardware-reduced ACPI sleep control register of
    /// microvm's Generic Event Device.
    GedS5,
    /// The keyboard controller's reset command.
    KbcReset,
    /// An exception with an empty IDT: a triple fault, which resets any
    /// x86 machine (Intel SDM vol. 3 6.15, #DF).
    TripleFault,
}

/// ACPI PM1x_CNT: SLP_TYP bits 12:10, SLP_EN bit 13 (ACPI 6.5 4.8.3.2.1).
/// QEMU powers off on SLP_EN with SLP_TYP 0 (hw/acpi/core.c
/// acpi_pm1_cnt_write: "soft power off"), on ICH9 and PIIX4 alike.
pub const PM1_CNT_S5: u16 = 1 << 13;

/// Hardware-reduced sleep control register: SLP_TYP bits 4:2, SLP_EN bit 5
/// (ACPI 6.5 4.8.3.7). QEMU's GED powers off on SLP_EN with SLP_TYP 5
/// (include/hw/acpi/generic_event_device.h ACPI_GED_SLP_TYP_S5,
/// ACPI_GED_SLP_EN; hw/acpi/generic_event_device.c ged_regs_write).
pub const GED_SLEEP_CTL_S5: u8 = 5 << 2 | 1 << 5;

/// microvm's virtio-mmio transports: 512 bytes each from 0xfeb00000
/// (include/hw/i386/microvm.h VIRTIO_MMIO_BASE; hw/i386/microvm.c
/// creates them whatever is plugged in), each starting with the magic
/// "virt" (virtio 1.2 4.2.2, MagicValue 0x74726976).
pub const MICROVM_VIRTIO_MMIO: u64 = 0xfeb0_0000;
pub const VIRTIO_MMIO_SIZE: u64 = 512;
pub const VIRTIO_MMIO_MAGIC: u32 = 0x7472_6976;

/// microvm's GED register block: GED_MMIO_BASE 0xfea00000 + 0x200
/// (include/hw/i386/microvm.h GED_MMIO_BASE_REGS); the sleep control
/// register is its first byte (ACPI_GED_REG_SLEEP_CTL 0).
pub const MICROVM_GED_SLEEP_CTL: u64 = 0xfea0_0200;

/// PIIX4 PM function 00:01.3, the ISA bridge's function 3 (QEMU
/// hw/isa/piix.c, devfn + 3): PMBA at config 0x40
/// (I/O base, bits 15:6) and PMREGMISC at 0x80, whose bit 0 (PMIOSE)
/// enables the block (PIIX4 datasheet 3.4.2; QEMU hw/acpi/piix4.c
/// pm_io_space_update). PM1a_CNT is at PMBA + 4 (hw/acpi/core.c
/// acpi_pm1_cnt_init).
pub const PIIX4_PM_DEV: (u8, u8) = (1, 3);
pub const PIIX4_PMBA: u8 = 0x40;
pub const PIIX4_PMREGMISC: u8 = 0x80;
pub const PIIX4_PMIOSE: u8 = 1;

/// i8042 command port and its "pulse reset line" command (QEMU
/// hw/input/pckbd.c KBD_CCMD_RESET, which requests a system reset).
pub const KBC_CMD_PORT: u16 = 0x64;
pub const KBC_RESET: u8 = 0xfe;

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn boards_from_host_bridge_ids() {
        let no_mmio = || 0;
        let mmio = || VIRTIO_MMIO_MAGIC;
        assert_eq!(Board::identify(0x29c0_8086, mmio), Board::Q35);
        assert_eq!(Board::identify(0x1237_8086, mmio), Board::I440fx);
        assert_eq!(
            Board::identify(0x0d57_8086, no_mmio),
            Board::CloudHypervisor
        );
        assert_eq!(Board::identify(0xffff_ffff, no_mmio), Board::NoPci);
        assert_eq!(Board::identify(0xffff_ffff, mmio), Board::Microvm);
        // QEMU's generic PCIe host bridge (Red Hat 1b36:0008).
        assert_eq!(
            Board::identify(0x0008_1b36, mmio),
            Board::Other(0x0008_1b36)
        );
        // A board with PCI is never probed for the transport.
        Board::identify(0x29c0_8086, || panic!("probed"));
    }

    fn stops(b: Board, i8042: bool) -> Vec<Stop> {
        b.stops(i8042).collect()
    }

    #[test]
    fn each_board_powers_off_its_way_then_resets() {
        use Stop::*;
        assert_eq!(stops(Board::Q35, true), [Ich9S5, KbcReset, TripleFault]);
        assert_eq!(stops(Board::I440fx, false), [Piix4S5, TripleFault]);
        assert_eq!(stops(Board::Microvm, false), [GedS5, TripleFault]);
        assert_eq!(stops(Board::Microvm, true), [GedS5, KbcReset, TripleFault]);
        assert_eq!(stops(Board::NoPci, true), [KbcReset, TripleFault]);
        assert_eq!(stops(Board::Other(0x0008_1b36), false), [TripleFault]);
    }

    #[test]
    fn every_sequence_ends_in_a_reset() {
        for b in [
            Board::Q35,
            Board::I440fx,
            Board::Microvm,
            Board::NoPci,
            Board::Other(0),
        ] {
            for i8042 in [false, true] {
                assert_eq!(b.stops(i8042).last(), Some(Stop::TripleFault));
            }
        }
    }

    #[test]
    fn register_values_match_the_specs() {
        // SLP_TYP 0 with SLP_EN: 0x2000.
        assert_eq!(PM1_CNT_S5, 0x2000);
        // SLP_TYP 5 << 2 = 0x14, SLP_EN 0x20.
        assert_eq!(GED_SLEEP_CTL_S5, 0x34);
    }
}
