// Shared by disk_fat and disk_ext4: the input is one file system, laid
// on a disk behind a one-partition MBR; the whole search runs on it and a
// found payload is read.

use hotstub::boot::payload::Source;
use hotstub::disk::{find, BlockDevice, Choice, DiskPayload, Error, SECTOR};
use std::cell::RefCell;
use std::rc::Rc;

struct Mem(Vec<u8>);

impl BlockDevice for Mem {
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

/// Payloads larger than this are not loaded (the buffer would be the
/// fuzzer's memory, not the firmware's).
const MAX_LOAD: u64 = 1 << 20;

pub fn run(fs: &[u8], ty: u8) {
    let sectors = fs.len().div_ceil(SECTOR).max(1);
    let mut img = vec![0u8; (1 + sectors) * SECTOR];
    img[SECTOR..SECTOR + fs.len()].copy_from_slice(fs);
    img[446 + 4] = ty;
    img[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    img[446 + 12..446 + 16].copy_from_slice(&(sectors as u32).to_le_bytes());
    img[510] = 0x55;
    img[511] = 0xaa;
    let dev: hotstub::disk::Disk = Rc::new(RefCell::new(Mem(img)));
    let Ok(found) = find(&dev, &Choice::default()) else {
        return;
    };
    // find's promises: a partition that exists and a kernel that is not
    // empty, whose messages fit one line.
    assert_eq!(found.partition, 1);
    assert!(found.kernel_size() > 0);
    assert!(!found.to_string().contains('\n') || found.entry.contains('\n'));
    let mut p = DiskPayload::new(dev, found, Some("console=ttyS0".into()));
    let k = p.kernel_size("Image").unwrap();
    if k <= MAX_LOAD {
        let mut buf = vec![0u8; k as usize];
        let _ = p.load_kernel(&mut buf);
    }
    let i = p.initrd_size();
    if i <= MAX_LOAD {
        let mut buf = vec![0u8; i as usize];
        let _ = p.load_initrd(&mut buf);
    }
    if let Ok(c) = p.cmdline(1 << 16) {
        assert!(c.ends_with(b"console=ttyS0"));
    }
}
