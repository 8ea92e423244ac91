//! The walk that reaches PCI functions behind PCIe root ports and PCI
//! bridges, over any configuration access.
//!
//! QEMU leaves every bridge as reset (no bus numbers, windows closed) for
//! a `-bios` firmware, so nothing behind one answers until a firmware
//! numbers the buses and opens the windows. The walk does that depth
//! first (bus numbers in the order Linux would give them), and its
//! [`Bridges`] puts every bridge back as it found it when the last disk
//! behind one is gone: Linux then numbers and sizes the buses itself, as
//! it does without disk boot, and PCI hotplug into the ports sees the same
//! machine either way.

use alloc::vec::Vec;
use virtio_drivers::transport::pci::bus::{
    Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType, PciRoot,
};

/// A PCI host bridge's configuration space and the 32-bit window BARs are
/// placed in (PCI address = CPU address, as on q35, pc and virt).
pub struct PciHost<T> {
    pub config: T,
    /// How many buses its configuration space decodes.
    pub buses: u16,
    /// The free part of the 32-bit memory window, `[next, end)`.
    pub next: u64,
    pub end: u64,
}

impl<T> PciHost<T> {
    /// `size` bytes, aligned to their size (BARs are powers of two).
    pub fn take(&mut self, size: u64) -> Option<u64> {
        let at = self.next.checked_next_multiple_of(size.max(16))?;
        let end = at.checked_add(size)?;
        (end <= self.end).then(|| {
            self.next = end;
            at
        })
    }
}

// Type 1 (bridge) header registers (PCI-to-PCI Bridge Architecture 1.2,
// 3.2): bus numbers, then the I/O, memory and prefetchable windows.
const COMMAND: u8 = 0x04;
const BUSES: u8 = 0x18;
const IO_WINDOW: u8 = 0x1c;
const MEM_WINDOW: u8 = 0x20;
const PREF_WINDOW: u8 = 0x24;
const PREF_BASE_HI: u8 = 0x28;
const PREF_LIMIT_HI: u8 = 0x2c;
/// The registers a bridge gets back as found.
const SAVED: [u8; 7] = [
    COMMAND,
    BUSES,
    IO_WINDOW,
    MEM_WINDOW,
    PREF_WINDOW,
    PREF_BASE_HI,
    PREF_LIMIT_HI,
];
/// Memory windows are in 1 MiB units (bridge spec 3.2.5.8).
const WINDOW_UNIT: u64 = 1 << 20;
/// Bridges nested deeper are not entered: the walk recurses, and this
/// bounds its stack (QEMU machines nest two or three).
const MAX_DEPTH: u32 = 16;
/// Header type register and its bit 7, a multi-function device (PCI Local
/// Bus 3.0, 6.2.1).
const HEADER_TYPE: u8 = 0x0c;
const MULTI_FUNCTION: u32 = 1 << 23;

/// Whether `df` is to be looked at: functions past 0 only of a
/// multi-function device. cloud-hypervisor answers every function number
/// of a single-function device with function 0's registers (PCI 3.0,
/// 6.2.1 lets a device ignore the function number), and opening one
/// device eight times leaves only the last one's queue.
pub fn is_function(cam: &impl ConfigurationAccess, df: DeviceFunction) -> bool {
    let f0 = DeviceFunction { function: 0, ..df };
    df.function == 0 || cam.read_word(f0, HEADER_TYPE) & MULTI_FUNCTION != 0
}

/// The bridges the walk set up, put back as found when dropped (deepest
/// first).
pub struct Bridges<C: ConfigurationAccess> {
    cam: C,
    saved: Vec<(DeviceFunction, [u32; SAVED.len()])>,
}

impl<C: ConfigurationAccess> Drop for Bridges<C> {
    fn drop(&mut self) {
        for (df, regs) in self.saved.iter().rev() {
            // Decoding off first, then the windows and bus numbers back.
            self.cam.write_word(*df, COMMAND, regs[0] & 0xffff);
            for (&reg, &v) in SAVED.iter().zip(regs).skip(1).rev() {
                // The I/O window's upper half is the secondary status,
                // whose bits a write of one clears.
                let v = if reg == IO_WINDOW { v & 0xffff } else { v };
                self.cam.write_word(*df, reg, v);
            }
        }
    }
}

/// Walks the hierarchy under bus 0 of `cam` depth first, giving every
/// bridge the next free bus number, and calls `found` for each function
/// that is not a bridge, in that order; `found` may take BAR space from
/// `host`, and each bridge's memory window is then made to cover what was
/// taken behind it.
pub fn walk<C: ConfigurationAccess, T>(
    cam: C,
    host: &mut PciHost<T>,
    mut found: impl FnMut(DeviceFunction, &DeviceFunctionInfo, &mut PciHost<T>),
) -> Bridges<C> {
    let mut w = Walk {
        buses: host.buses.min(256),
        last_bus: 0,
        bridges: Bridges {
            cam,
            saved: Vec::new(),
        },
    };
    w.bus(0, 0, host, &mut found);
    w.bridges
}

struct Walk<C: ConfigurationAccess> {
    buses: u16,
    /// The highest bus number given so far.
    last_bus: u8,
    bridges: Bridges<C>,
}

type Found<'a, T> = dyn FnMut(DeviceFunction, &DeviceFunctionInfo, &mut PciHost<T>) + 'a;

impl<C: ConfigurationAccess> Walk<C> {
    fn cam(&mut self) -> &mut C {
        &mut self.bridges.cam
    }

    fn bus<T>(&mut self, bus: u8, depth: u32, host: &mut PciHost<T>, found: &mut Found<T>) {
        // SAFETY: the clone only reads, and is gone before the walk
        // writes again.
        let root = PciRoot::new(unsafe { self.bridges.cam.unsafe_clone() });
        let functions: Vec<_> = root
            .enumerate_bus(bus)
            .filter(|(df, _)| is_function(&self.bridges.cam, *df))
            .collect();
        drop(root);
        for (df, info) in functions {
            match info.header_type {
                HeaderType::PciPciBridge => self.bridge(df, depth, host, found),
                HeaderType::Standard => found(df, &info, host),
                _ => {}
            }
        }
    }

    /// Numbers the bus behind bridge `df`, walks it and opens the bridge's
    /// memory window over what its functions took.
    fn bridge<T>(
        &mut self,
        df: DeviceFunction,
        depth: u32,
        host: &mut PciHost<T>,
        found: &mut Found<T>,
    ) {
        let secondary = self.last_bus.checked_add(1);
        let Some(secondary) = secondary.filter(|&s| depth < MAX_DEPTH && u16::from(s) < self.buses)
        else {
            hotstub::println!(
                "hotstub: warning: pci {df}: bridge not searched (no bus number left or nested too deep)"
            );
            return;
        };
        let regs = SAVED.map(|r| self.bridges.cam.read_word(df, r));
        self.bridges.saved.push((df, regs));
        self.last_bus = secondary;
        // Primary, secondary and, while its buses are walked, every
        // number above as subordinate.
        let buses = |sub: u8| u32::from(df.bus) | u32::from(secondary) << 8 | u32::from(sub) << 16;
        let cam = self.cam();
        cam.write_word(df, BUSES, buses(0xff));
        // I/O and prefetchable windows closed (base above limit): the
        // firmware's BARs all go in the memory window.
        cam.write_word(df, IO_WINDOW, 0x00f0);
        cam.write_word(df, PREF_WINDOW, 0x0000_fff0);
        cam.write_word(df, PREF_BASE_HI, 0);
        cam.write_word(df, PREF_LIMIT_HI, 0);
        let before = host.next;
        let start = before.next_multiple_of(WINDOW_UNIT);
        host.next = start;
        self.bus(secondary, depth + 1, host, found);
        let last = self.last_bus;
        let cam = self.cam();
        cam.write_word(df, BUSES, buses(last));
        if host.next == start {
            host.next = before;
            cam.write_word(df, MEM_WINDOW, 0x0000_fff0);
            return;
        }
        let end = host.next.next_multiple_of(WINDOW_UNIT).min(host.end);
        host.next = end;
        // Base and limit hold address bits 31:20 in bits 15:4.
        let base = (start >> 16) as u32 & 0xfff0;
        let limit = ((end - 1) >> 16) as u32 & 0xfff0;
        cam.write_word(df, MEM_WINDOW, base | limit << 16);
        // Forwarding both ways: memory cycles down, the disk's DMA up.
        let cmd = cam.read_word(df, COMMAND) & 0xffff;
        let on = (Command::MEMORY_SPACE | Command::BUS_MASTER).bits() as u32;
        cam.write_word(df, COMMAND, cmd | on);
    }
}
