//! Virtio block disks on PCI (an ECAM host bridge: q35's MMCONFIG, virt's
//! generic PCIe; or pc's i440FX through configuration ports) and on
//! virtio-mmio (virt, x86 microvm), read through the
//! `virtio-drivers` crate: it keeps the virtqueue, the transports and the
//! feature negotiation, so the firmware only finds the devices, gives
//! their BARs addresses and lends it DMA memory.
//!
//! A disk is reset when it is dropped (the crate's transports do that),
//! and a PCI function gets memory decoding and bus mastering switched off
//! again, so Linux finds the device as a firmware that never used it would
//! leave it, only with BARs inside the window the ACPI tables describe.

use super::pci::{self, Bridges};
use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ptr::NonNull;
use hotstub::boot::from_disk::Candidate;
use hotstub::disk::ahead::{ReadAhead, AHEAD};
use hotstub::disk::{self, BlockDevice};
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::bus::{
    BarInfo, Cam, Command, ConfigurationAccess, DeviceFunction, MemoryBarType, MmioCam, PciRoot,
};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// DMA memory for the virtqueues: the firmware heap, identity-mapped
/// (physical = virtual) on both architectures. QEMU's devices are
/// cache-coherent (TCG writes guest RAM directly; under KVM the host's
/// cacheable writes are coherent with the guest's write-back mapping), so
/// no cache maintenance is needed around a transfer.
pub struct DmaHal;

// SAFETY: dma_alloc returns zeroed, page-aligned heap memory that nothing
// else uses until dma_dealloc frees it; every address handed to the device
// is the identity-mapped physical address of the buffer or MMIO region.
unsafe impl Hal for DmaHal {
    fn dma_alloc(pages: usize, _: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Ok(layout) = Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE) else {
            return (0, NonNull::dangling());
        };
        // SAFETY: the layout has a non-zero size (the crate asks for whole
        // pages, at least one).
        match NonNull::new(unsafe { alloc_zeroed(layout) }) {
            Some(p) => (p.as_ptr() as PhysAddr, p),
            // Physical address 0 tells the crate the allocation failed.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap();
        // SAFETY: `vaddr` came from dma_alloc with this many pages (the
        // crate's contract for dma_dealloc).
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_: PhysAddr, _: NonNull<[u8]>, _: BufferDirection) {}
}

/// How the disk code reaches a host bridge's configuration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// ECAM at this base (bus 0).
    Ecam(u64),
    /// Configuration mechanism #1's ports (pc).
    #[cfg(target_arch = "x86_64")]
    Ports,
}

/// A host bridge reached through [`Config`].
pub type PciHost = pci::PciHost<Config>;

/// One opened virtio-blk device.
pub struct Disk {
    blk: Option<VirtIOBlk<DmaHal, SomeTransport<'static>>>,
    /// Where it is, for the console: "pci 00:03.0", "mmio 0xa003e00".
    pub name: String,
    /// The PCI function whose decoding is switched off again afterwards.
    pci: Option<PciFunction>,
}

/// Where a PCI disk is, and what is put back when it is dropped.
struct PciFunction {
    config: Config,
    df: DeviceFunction,
    /// Behind a bridge: its BARs as found (the bridges closing after it
    /// would leave addresses that no window forwards), and the bridges,
    /// put back when their last disk is gone.
    behind: Option<([u32; 6], Rc<Bridges<AnyCam>>)>,
}

/// Bytes per request: large enough that a kernel loads in a few dozen
/// requests, small enough for any device's segment limits.
const CHUNK: usize = 1 << 20;

impl Disk {
    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.blk.as_ref().map_or(0, |b| b.capacity())
    }

    /// Reads whole sectors from `lba` into `buf` (a multiple of 512 bytes).
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), virtio_drivers::Error> {
        let blk = self.blk.as_mut().ok_or(virtio_drivers::Error::NotReady)?;
        if !buf.len().is_multiple_of(SECTOR_SIZE) {
            return Err(virtio_drivers::Error::InvalidParam);
        }
        for (i, chunk) in buf.chunks_mut(CHUNK).enumerate() {
            let at = lba + (i * CHUNK / SECTOR_SIZE) as u64;
            blk.read_blocks(at as usize, chunk)?;
        }
        Ok(())
    }
}

impl BlockDevice for Disk {
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), disk::Error> {
        self.read(lba, buf).map_err(|e| disk::Error::Io {
            lba,
            why: match e {
                virtio_drivers::Error::IoError => "the device reports an I/O error",
                virtio_drivers::Error::Unsupported => "the device does not support reads",
                _ => "virtio-blk request failed",
            },
        })
    }

    fn sectors(&self) -> u64 {
        Disk::sectors(self)
    }
}

/// The disks as the boot's choice takes them, in the order found, each
/// behind a read-ahead window (`disk::ahead` says why).
pub fn candidates(disks: Vec<Disk>) -> Vec<Candidate> {
    disks
        .into_iter()
        .map(|d| Candidate {
            name: d.name.clone(),
            dev: Rc::new(RefCell::new(ReadAhead::new(d, AHEAD))),
        })
        .collect()
}

impl Drop for Disk {
    fn drop(&mut self) {
        // The transport resets the device first, then decoding goes off.
        self.blk = None;
        if let Some(f) = self.pci.take() {
            // SAFETY: the configuration space of the host bridge the disk
            // was found on; the scan has ended, and the bridges' view only
            // writes when they are dropped below.
            let mut root = PciRoot::new(unsafe { cam(f.config) });
            root.set_command(f.df, Command::empty());
            if let Some((bars, bridges)) = f.behind {
                // SAFETY: as above.
                let mut cam = unsafe { cam(f.config) };
                for (reg, v) in BARS.step_by(4).zip(bars) {
                    cam.write_word(f.df, reg, v);
                }
                drop(bridges);
            }
        }
    }
}

/// A host bridge's configuration space, whichever way it is reached.
enum AnyCam {
    Ecam(MmioCam<'static>),
    #[cfg(target_arch = "x86_64")]
    Ports(super::x86_64::pci_ports::PortCam),
}

impl ConfigurationAccess for AnyCam {
    fn read_word(&self, df: DeviceFunction, register_offset: u8) -> u32 {
        match self {
            AnyCam::Ecam(c) => c.read_word(df, register_offset),
            #[cfg(target_arch = "x86_64")]
            AnyCam::Ports(c) => c.read_word(df, register_offset),
        }
    }

    fn write_word(&mut self, df: DeviceFunction, register_offset: u8, data: u32) {
        match self {
            AnyCam::Ecam(c) => c.write_word(df, register_offset, data),
            #[cfg(target_arch = "x86_64")]
            AnyCam::Ports(c) => c.write_word(df, register_offset, data),
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        match self {
            // SAFETY: the crate's contract, passed on.
            AnyCam::Ecam(c) => AnyCam::Ecam(unsafe { c.unsafe_clone() }),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            AnyCam::Ports(c) => AnyCam::Ports(unsafe { c.unsafe_clone() }),
        }
    }
}

/// The configuration access `config` names.
///
/// # Safety
/// An ECAM base must be a mapped ECAM region of a host bridge, and no
/// other view of that configuration space may be alive.
unsafe fn cam(config: Config) -> AnyCam {
    match config {
        // SAFETY: the caller's contract; only buses the bridge decodes are
        // touched (`pci_disks` keeps to `buses`).
        Config::Ecam(base) => AnyCam::Ecam(unsafe { MmioCam::new(base as *mut u8, Cam::Ecam) }),
        #[cfg(target_arch = "x86_64")]
        Config::Ports => AnyCam::Ports(super::x86_64::pci_ports::PortCam),
    }
}

/// PCI BAR registers: offsets 0x10 to 0x24 of the configuration header
/// (PCI Local Bus 3.0 6.2.5.1); a size probe writes all ones.
const BARS: core::ops::Range<u8> = 0x10..0x28;
const PROBE: u32 = 0xffff_ffff;

/// ECAM access that restores a 64-bit BAR's low half before its high
/// half. The crate sizes a 64-bit BAR low half first, then the high half,
/// restores the high half and only then the low one; cloud-hypervisor
/// takes the high half's write as the BAR's new address (its
/// `detect_bar_reprogramming`), with the low half still holding the
/// probe's all-ones, and moves the BAR there. Writing the low half back
/// first makes that write a no-op, as Linux's order does. QEMU sees the
/// same final values.
struct SizingCam {
    cam: AnyCam,
    /// The last BAR register read, with its value: the original a probe
    /// overwrites.
    last_read: Cell<Option<(DeviceFunction, u8, u32)>>,
    /// Low halves whose probe is not restored yet, with their originals.
    probed: [Option<(DeviceFunction, u8, u32)>; 2],
}

impl SizingCam {
    fn new(cam: AnyCam) -> SizingCam {
        SizingCam {
            cam,
            last_read: Cell::new(None),
            probed: [None; 2],
        }
    }
}

impl ConfigurationAccess for SizingCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        let v = self.cam.read_word(df, offset);
        if BARS.contains(&offset) {
            self.last_read.set(Some((df, offset, v)));
        }
        v
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        if !BARS.contains(&offset) {
            return self.cam.write_word(df, offset, data);
        }
        if data == PROBE {
            if let Some(orig) = self.last_read.get().filter(|r| r.0 == df && r.1 == offset) {
                if let Some(slot) = self.probed.iter_mut().find(|p| p.is_none()) {
                    *slot = Some(orig);
                }
            }
        } else {
            for p in &mut self.probed {
                match *p {
                    // The high half's restore: the low half first.
                    Some((d, o, v)) if d == df && o + 4 == offset => {
                        self.cam.write_word(d, o, v);
                        *p = None;
                    }
                    Some((d, o, _)) if d == df && o == offset => *p = None,
                    _ => {}
                }
            }
        }
        self.cam.write_word(df, offset, data)
    }

    unsafe fn unsafe_clone(&self) -> Self {
        // SAFETY: the caller's contract (read-only use), passed on.
        SizingCam::new(unsafe { self.cam.unsafe_clone() })
    }
}

/// Every virtio-blk function under `host`, in bus order, with BARs
/// assigned and decoding on. Through ECAM the walk reaches functions
/// behind root ports and bridges too (`pci::walk`); through pc's ports
/// only the root bus is searched.
///
/// # Safety
/// An ECAM `host.config` must be the mapped ECAM region of the host
/// bridge; its window must be free MMIO space of that bridge.
pub unsafe fn pci_disks(host: &mut PciHost, out: &mut Vec<Disk>) {
    let bridges = matches!(host.config, Config::Ecam(_));
    // SAFETY: the caller's contract.
    unsafe { open_disks(host, bridges, assign_bars, out) }
}

/// [`pci_disks`] on a VMM that placed the BARs itself (cloud-hypervisor,
/// whose 64-bit BARs must stay in its 64-bit window): they are kept, and
/// `reach(address, size)` makes each memory BAR addressable (false: it
/// cannot, and the function is skipped). Root bus only.
///
/// # Safety
/// `ecam` must be the mapped ECAM region of a host bridge decoding
/// `buses` buses, and `reach` must map what it says it does.
pub unsafe fn placed_pci_disks(
    ecam: u64,
    buses: u16,
    mut reach: impl FnMut(u64, u64) -> bool,
    out: &mut Vec<Disk>,
) {
    let place = |root: &mut PciRoot<SizingCam>, df, _: &mut PciHost| {
        for bar in root.bars(df).ok()?.iter().flatten() {
            if let BarInfo::Memory { address, size, .. } = bar {
                if *address == 0 || !reach(*address, *size) {
                    return None;
                }
            }
        }
        Some(())
    };
    // Nothing is taken from the window: the BARs stay put.
    let mut host = PciHost {
        config: Config::Ecam(ecam),
        buses,
        next: 0,
        end: 0,
    };
    // SAFETY: the caller's contract.
    unsafe { open_disks(&mut host, false, place, out) }
}

/// Opens the virtio-blk functions that `place` gives addressable BARs:
/// on bus 0, or with `bridges` on every bus the walk reaches.
///
/// # Safety
/// As for [`pci_disks`].
unsafe fn open_disks(
    host: &mut PciHost,
    bridges: bool,
    mut place: impl FnMut(&mut PciRoot<SizingCam>, DeviceFunction, &mut PciHost) -> Option<()>,
    out: &mut Vec<Disk>,
) {
    let config = host.config;
    if host.buses == 0 {
        return;
    }
    // SAFETY: the caller's contract (three views of one configuration
    // space: the root's, the header reads' and the walk's, which never
    // access it at the same time).
    let (mut root, headers) = unsafe { (PciRoot::new(SizingCam::new(cam(config))), cam(config)) };
    let mut found = Vec::new();
    let mut take = |df: DeviceFunction, info: &_, host: &mut PciHost| {
        if virtio_device_type(info) != Some(DeviceType::Block) {
            return;
        }
        let bars = [0u8, 1, 2, 3, 4, 5].map(|i| headers.read_word(df, BARS.start + 4 * i));
        match place(&mut root, df, host) {
            Some(()) => found.push((df, bars)),
            None => hotstub::println!(
                "hotstub: warning: pci {:02x}:{:02x}.{}: no room for its BARs, skipped",
                df.bus,
                df.device,
                df.function
            ),
        }
    };
    let walked = if bridges {
        // SAFETY: as above.
        Some(Rc::new(pci::walk(unsafe { cam(config) }, host, take)))
    } else {
        // SAFETY: as above; the clone only reads.
        let bus0 = PciRoot::new(unsafe { cam(config) });
        for (df, info) in bus0.enumerate_bus(0) {
            if pci::is_function(&headers, df) {
                take(df, &info, host);
            }
        }
        None
    };
    for (df, bars) in found {
        let name = format!("pci {:02x}:{:02x}.{}", df.bus, df.device, df.function);
        // Decoding and bus mastering on, for the crate's transport to
        // find its BARs and the device to reach its queues.
        root.set_command(df, Command::MEMORY_SPACE | Command::BUS_MASTER);
        let disk = PciTransport::new::<DmaHal, _>(&mut root, df)
            .map_err(|e| format!("{e}"))
            .and_then(|t| VirtIOBlk::new(SomeTransport::from(t)).map_err(|e| format!("{e}")));
        let pci = PciFunction {
            config,
            df,
            behind: walked
                .as_ref()
                .filter(|_| df.bus != 0)
                .map(|b| (bars, b.clone())),
        };
        match disk {
            Ok(blk) => out.push(Disk {
                blk: Some(blk),
                name,
                pci: Some(pci),
            }),
            Err(e) => {
                // Dropping it puts the function (and its bridges) back.
                drop(Disk {
                    blk: None,
                    name: String::new(),
                    pci: Some(pci),
                });
                hotstub::println!("hotstub: warning: {name}: {e}, skipped");
            }
        }
    }
}

/// Gives every memory BAR of `df` an address in the window: QEMU leaves
/// them unassigned for a `-bios` firmware on q35, pc and virt alike. 64-bit
/// BARs go below 4 GiB too (the 64-bit window is out of the firmware's
/// reach on virt). I/O BARs (a transitional device's legacy interface)
/// stay off; the crate uses the modern interface only.
fn assign_bars(
    root: &mut PciRoot<SizingCam>,
    df: DeviceFunction,
    host: &mut PciHost,
) -> Option<()> {
    let bars = root.bars(df).ok()?;
    for (i, bar) in bars.iter().enumerate() {
        let Some(BarInfo::Memory {
            address_type, size, ..
        }) = bar
        else {
            continue;
        };
        match address_type {
            MemoryBarType::Width32 => root.set_bar_32(df, i as u8, host.take(*size)? as u32),
            MemoryBarType::Width64 => root.set_bar_64(df, i as u8, host.take(*size)?),
            MemoryBarType::Below1MiB => {}
        }
    }
    Some(())
}

/// The virtio-blk devices among virtio-mmio transports `(base, size)`, in
/// the given order (virt: the DT's; microvm: the command line's); empty
/// transports answer device ID 0 and are passed over.
///
/// # Safety
/// Each `(base, size)` must be a mapped virtio-mmio register window.
pub unsafe fn mmio_disks(windows: impl Iterator<Item = (u64, u64)>, out: &mut Vec<Disk>) {
    for (base, size) in windows {
        let Some(header) = NonNull::new(base as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: the caller's contract.
        let Ok(t) = (unsafe { MmioTransport::new(header, size as usize) }) else {
            continue;
        };
        if t.device_type() != DeviceType::Block {
            continue;
        }
        let name = format!("mmio {base:#x}");
        match VirtIOBlk::new(SomeTransport::from(t)) {
            Ok(blk) => out.push(Disk {
                blk: Some(blk),
                name,
                pci: None,
            }),
            Err(e) => hotstub::println!("hotstub: warning: {name}: {e}, skipped"),
        }
    }
}
