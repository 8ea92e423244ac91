//! The partition table reader (`disk::partitions`: GPT with its backup,
//! MBR with extended partitions). Input: the disk's bytes (cut to whole
//! sectors).
#![no_main]

use hotstub::disk::{partitions, BlockDevice, Error, SECTOR};
use libfuzzer_sys::fuzz_target;

struct Mem<'a>(&'a [u8]);

impl BlockDevice for Mem<'_> {
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        assert_eq!(buf.len() % SECTOR, 0, "reads are whole sectors");
        let at = lba as usize * SECTOR;
        let src = self.0.get(at..at + buf.len());
        buf.copy_from_slice(src.expect("no read past the disk's end"));
        Ok(())
    }
    fn sectors(&self) -> u64 {
        (self.0.len() / SECTOR) as u64
    }
}

fuzz_target!(|data: &[u8]| {
    let disk = &data[..data.len() / SECTOR * SECTOR];
    let total = (disk.len() / SECTOR) as u64;
    if let Ok(parts) = partitions(&mut Mem(disk)) {
        // What the readers rely on: every partition inside the disk,
        // not empty, and numbered once.
        for (i, p) in parts.iter().enumerate() {
            assert!(p.sectors > 0 && p.first > 0);
            assert!(p.first + p.sectors <= total);
            assert!(parts[..i].iter().all(|q| q.number != p.number));
        }
    }
});
