//! PCI configuration mechanism #1 (ports 0xcf8/0xcfc, PCI Local Bus 3.0
//! 3.2.2.3.2) for the disk code (`arch::virtio`) on `pc`, whose i440FX has
//! no ECAM.

use super::io::{bdf, pci_read32, pci_write32};
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

/// The host bridge's configuration space through the two ports.
pub struct PortCam;

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, register_offset: u8) -> u32 {
        pci_read32(bdf(df.bus, df.device, df.function), register_offset)
    }

    fn write_word(&mut self, df: DeviceFunction, register_offset: u8, data: u32) {
        pci_write32(bdf(df.bus, df.device, df.function), register_offset, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}
