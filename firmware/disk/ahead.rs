//! A read-ahead window in front of a disk. ext4-view asks for 32 KiB at a
//! time (its block cache reads 8 blocks), and each request is a
//! notification the VMM handles: nested under TCG, cloud-hypervisor took
//! 2-3 ms a request whatever its size, so the suite's 35 MiB arm64 Image
//! in 32 KiB requests spent over 3 s there. Small reads are served from
//! one window read at their first sector; large ones go straight through.

use super::{BlockDevice, Error, SECTOR};
use alloc::vec::Vec;

/// The window's size: 8 of ext4-view's reads, cutting the requests 8-fold,
/// yet small enough for the arm64 firmware's heap beside ext4-view's
/// cache (a quarter of it).
pub const AHEAD: usize = 256 << 10;

pub struct ReadAhead<D> {
    dev: D,
    size: usize,
    /// The window: its first sector and bytes.
    window: Option<(u64, Vec<u8>)>,
}

impl<D: BlockDevice> ReadAhead<D> {
    /// `size`: the window's bytes, a multiple of [`SECTOR`].
    pub fn new(dev: D, size: usize) -> ReadAhead<D> {
        ReadAhead {
            dev,
            size: size / SECTOR * SECTOR,
            window: None,
        }
    }

    /// Serves `buf` from the window, reading the window at `lba` first
    /// when it misses; false when the heap has no room for a window or the
    /// disk ends before `buf` does (the caller reads directly then).
    fn read_windowed(&mut self, lba: u64, buf: &mut [u8]) -> Result<bool, Error> {
        let sectors = (buf.len() / SECTOR) as u64;
        let hit = |w: &(u64, Vec<u8>)| {
            let end = w.0 + (w.1.len() / SECTOR) as u64;
            lba >= w.0 && lba.checked_add(sectors).is_some_and(|e| e <= end)
        };
        if !self.window.as_ref().is_some_and(hit) {
            let left = self.dev.sectors().saturating_sub(lba);
            let len = usize::try_from(left)
                .map_or(self.size, |l| l.saturating_mul(SECTOR).min(self.size));
            if len < buf.len() {
                return Ok(false);
            }
            // The last window's buffer, reused.
            let mut data = self.window.take().map(|w| w.1).unwrap_or_default();
            data.clear();
            if data.try_reserve_exact(len).is_err() {
                return Ok(false);
            }
            data.resize(len, 0);
            self.dev.read_sectors(lba, &mut data)?;
            self.window = Some((lba, data));
        }
        let Some((first, data)) = &self.window else {
            return Ok(false);
        };
        let at = (lba - first) as usize * SECTOR;
        buf.copy_from_slice(&data[at..at + buf.len()]);
        Ok(true)
    }
}

impl<D: BlockDevice> BlockDevice for ReadAhead<D> {
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        if buf.len() < self.size && self.read_windowed(lba, buf)? {
            return Ok(());
        }
        self.dev.read_sectors(lba, buf)
    }

    fn sectors(&self) -> u64 {
        self.dev.sectors()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;

    /// A disk whose sector n holds bytes n as u8, counting its reads.
    struct Counting {
        sectors: u64,
        reads: Vec<(u64, usize)>,
    }

    impl BlockDevice for Counting {
        fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
            assert!(
                lba + (buf.len() / SECTOR) as u64 <= self.sectors,
                "past the end"
            );
            self.reads.push((lba, buf.len()));
            for (i, s) in buf.chunks_mut(SECTOR).enumerate() {
                s.fill((lba + i as u64) as u8);
            }
            Ok(())
        }
        fn sectors(&self) -> u64 {
            self.sectors
        }
    }

    fn disk(sectors: u64) -> ReadAhead<Counting> {
        let dev = Counting {
            sectors,
            reads: Vec::new(),
        };
        ReadAhead::new(dev, 8 * SECTOR)
    }

    #[test]
    fn sequential_small_reads_take_one_request_per_window() {
        let mut d = disk(100);
        let mut buf = vec![0u8; 2 * SECTOR];
        for lba in (10..26).step_by(2) {
            d.read_sectors(lba, &mut buf).unwrap();
            assert_eq!((buf[0], buf[SECTOR]), (lba as u8, lba as u8 + 1));
        }
        assert_eq!(d.dev.reads, [(10, 8 * SECTOR), (18, 8 * SECTOR)]);
        // Backwards inside the window: no request.
        d.read_sectors(20, &mut buf).unwrap();
        assert_eq!(buf[0], 20);
        assert_eq!(d.dev.reads.len(), 2);
    }

    #[test]
    fn large_reads_go_straight_through() {
        let mut d = disk(100);
        let mut buf = vec![0u8; 8 * SECTOR];
        d.read_sectors(3, &mut buf).unwrap();
        assert_eq!(d.dev.reads, [(3, 8 * SECTOR)]);
        assert_eq!(buf[7 * SECTOR], 10);
    }

    #[test]
    fn the_window_stops_at_the_disk_end() {
        let mut d = disk(12);
        let mut buf = vec![0u8; SECTOR];
        d.read_sectors(9, &mut buf).unwrap();
        assert_eq!(d.dev.reads, [(9, 3 * SECTOR)]);
        d.read_sectors(11, &mut buf).unwrap();
        assert_eq!((buf[0], d.dev.reads.len()), (11, 1));
        // A read that reaches past the end is the device's to refuse.
        let mut two = vec![0u8; 2 * SECTOR];
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            let _ = d.read_sectors(11, &mut two);
        }));
        assert!(r.is_err(), "passed to the device as asked");
    }
}
