//! The partition table: GPT (UEFI 2.10, chapter 5.3), with its backup
//! header at the disk's last sector when the primary is damaged, or an MBR
//! with its extended partitions on old images.
//!
//! gpt_disk_io reads the GPT structures; it validates nothing, so the
//! checks the UEFI spec asks of a loader (signature, header CRC, MyLBA,
//! entry array CRC, everything inside the disk) are here.

use super::{BlockDevice, Error, SECTOR};
use alloc::vec;
use alloc::vec::Vec;
use gpt_disk_io::gpt_disk_types::{
    BlockSize, GptHeader, GptPartitionEntryArray, GptPartitionType, Lba,
};
use gpt_disk_io::{BlockIo, Disk};

/// One partition, by Linux's numbering (vda1 is 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub first: u64,
    pub sectors: u64,
    /// An EFI system partition (GPT type, or MBR type 0xef).
    pub esp: bool,
}

/// UEFI 2.10 5.3.2: the header as defined is 92 bytes; nothing writes a
/// longer one, and the crate's CRC covers exactly these.
const HEADER_SIZE: u32 = 92;
/// UEFI 2.10 5.3.3: entries are 128 * 2^n bytes. More than 64 KiB of
/// entries (512 of 128 bytes; tools write 128) is not a disk a VM has.
const MAX_ARRAY: u64 = 64 * 1024;
/// MBR (UEFI 2.10 5.2.1): four 16-byte entries at 446, signature at 510.
const MBR_ENTRIES: usize = 446;
const MBR_PROTECTIVE: u8 = 0xee;
const MBR_ESP: u8 = 0xef;
/// Logical partitions followed along the extended chain; the chain is a
/// linked list on disk, so a loop in it must not hang the walk.
const MAX_LOGICAL: u32 = 64;

/// The disk's partitions, in table order (unused GPT slots skipped).
pub fn partitions(dev: &mut dyn BlockDevice) -> Result<Vec<Partition>, Error> {
    let total = dev.sectors();
    if total < 2 {
        return Err(Error::NoPartitionTable);
    }
    let mut mbr = [0u8; SECTOR];
    dev.read_sectors(0, &mut mbr)?;
    let mut lba1 = [0u8; SECTOR];
    dev.read_sectors(1, &mut lba1)?;
    let protective = mbr[510..512] == [0x55, 0xaa]
        && (0..4).any(|i| mbr[MBR_ENTRIES + 16 * i + 4] == MBR_PROTECTIVE);
    if &lba1[..8] == b"EFI PART" || protective {
        return gpt(dev, total);
    }
    mbr_partitions(dev, &mbr, total)
}

fn gpt(dev: &mut dyn BlockDevice, total: u64) -> Result<Vec<Partition>, Error> {
    let mut disk = Disk::new(Io(dev)).map_err(|_| Error::CorruptGpt("unreadable"))?;
    let mut buf = [0u8; SECTOR];
    let primary = disk
        .read_primary_gpt_header(&mut buf)
        .map_err(|_| Error::CorruptGpt("primary header unreadable"));
    let why = match primary.and_then(|h| entries(&mut disk, &h, 1, total)) {
        Ok(p) => return Ok(p),
        Err(Error::CorruptGpt(why)) => why,
        Err(e) => return Err(e),
    };
    // UEFI 2.10 5.3.2: a bad primary is replaced by the backup in the
    // disk's last sector, when that one is valid.
    let backup = disk
        .read_secondary_gpt_header(&mut buf)
        .map_err(|_| Error::CorruptGpt(why));
    backup
        .and_then(|h| entries(&mut disk, &h, total - 1, total))
        .map_err(|_| Error::CorruptGpt(why))
}

/// Checks one header (found at `at`) and reads its entry array.
fn entries(
    disk: &mut Disk<Io>,
    h: &GptHeader,
    at: u64,
    total: u64,
) -> Result<Vec<Partition>, Error> {
    if !h.is_signature_valid() {
        return Err(Error::CorruptGpt("no header signature"));
    }
    if h.header_size.to_u32() != HEADER_SIZE {
        return Err(Error::CorruptGpt("unsupported header size"));
    }
    if h.header_crc32 != h.calculate_header_crc32() {
        return Err(Error::CorruptGpt("header CRC mismatch"));
    }
    if h.my_lba.to_u64() != at {
        return Err(Error::CorruptGpt("header in the wrong place"));
    }
    let layout = h
        .get_partition_entry_array_layout()
        .map_err(|_| Error::CorruptGpt("bad partition entry size"))?;
    let entry_size = u64::from(layout.entry_size.to_u32());
    let bytes = entry_size * u64::from(layout.num_entries);
    let start = layout.start_lba.to_u64();
    let blocks = bytes.div_ceil(SECTOR as u64);
    if bytes > MAX_ARRAY || entry_size < 128 {
        return Err(Error::CorruptGpt("partition entry array too large"));
    }
    if start < 2 || start.checked_add(blocks).is_none_or(|e| e > total) {
        return Err(Error::CorruptGpt("partition entry array outside the disk"));
    }
    let mut storage = vec![0u8; (blocks as usize) * SECTOR];
    let array = disk
        .read_gpt_partition_entry_array(layout, &mut storage)
        .map_err(|_| Error::CorruptGpt("partition entry array unreadable"))?;
    if array.calculate_crc32() != h.partition_entry_array_crc32 {
        return Err(Error::CorruptGpt("partition entry array CRC mismatch"));
    }
    collect(&array, layout.num_entries, total)
}

fn collect(array: &GptPartitionEntryArray, n: u32, total: u64) -> Result<Vec<Partition>, Error> {
    let mut out = Vec::new();
    for i in 0..n {
        let Some(e) = array.get_partition_entry(i) else {
            break;
        };
        if !e.is_used() {
            continue;
        }
        let (first, last) = (e.starting_lba.to_u64(), e.ending_lba.to_u64());
        if first > last || last >= total {
            return Err(Error::CorruptGpt("a partition lies outside the disk"));
        }
        let ty = e.partition_type_guid;
        out.push(Partition {
            number: i + 1,
            first,
            sectors: last - first + 1,
            esp: ty == GptPartitionType::EFI_SYSTEM,
        });
    }
    Ok(out)
}

fn mbr_partitions(
    dev: &mut dyn BlockDevice,
    mbr: &[u8; SECTOR],
    total: u64,
) -> Result<Vec<Partition>, Error> {
    if mbr[510..512] != [0x55, 0xaa] {
        return Err(Error::NoPartitionTable);
    }
    let mut out = Vec::new();
    let mut extended = None;
    for (i, e) in mbr[MBR_ENTRIES..510].chunks_exact(16).enumerate() {
        let Some((ty, first, sectors)) = mbr_entry(e, 0, total)? else {
            continue;
        };
        if matches!(ty, 0x05 | 0x0f | 0x85) {
            extended = extended.or(Some((first, sectors)));
        } else {
            out.push(Partition {
                number: i as u32 + 1,
                first,
                sectors,
                esp: ty == MBR_ESP,
            });
        }
    }
    // Each EBR's second entry points at the next EBR, relative to the
    // extended partition's start (the first entry to its own sector).
    if let Some((ext_first, ext_sectors)) = extended {
        let mut ebr_at = ext_first;
        let mut ebr = [0u8; SECTOR];
        for n in 0..MAX_LOGICAL {
            dev.read_sectors(ebr_at, &mut ebr)?;
            if ebr[510..512] != [0x55, 0xaa] {
                return Err(Error::CorruptMbr("extended boot record without signature"));
            }
            if let Some((ty, first, sectors)) = mbr_entry(&ebr[446..462], ebr_at, total)? {
                out.push(Partition {
                    number: 5 + n,
                    first,
                    sectors,
                    esp: ty == MBR_ESP,
                });
            }
            match mbr_entry(&ebr[462..478], ext_first, total)? {
                Some((_, next, _)) if next > ebr_at && next < ext_first + ext_sectors => {
                    ebr_at = next
                }
                _ => break,
            }
        }
    }
    if out.is_empty() {
        return Err(Error::NoPartitionTable);
    }
    Ok(out)
}

/// One MBR entry relative to `base`: its type, first sector and size, or
/// `None` for an empty slot.
fn mbr_entry(e: &[u8], base: u64, total: u64) -> Result<Option<(u8, u64, u64)>, Error> {
    let ty = e[4];
    let first = base + u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]]));
    let sectors = u64::from(u32::from_le_bytes([e[12], e[13], e[14], e[15]]));
    if ty == 0 || sectors == 0 {
        return Ok(None);
    }
    if e[0] & 0x7f != 0 {
        return Err(Error::CorruptMbr("bad boot indicator"));
    }
    if first == 0 || first + sectors > total {
        return Err(Error::CorruptMbr("a partition lies outside the disk"));
    }
    Ok(Some((ty, first, sectors)))
}

/// gpt_disk_io's view of the device: 512-byte blocks, read-only.
struct Io<'a>(&'a mut dyn BlockDevice);

impl BlockIo for Io<'_> {
    type Error = Error;

    fn block_size(&self) -> BlockSize {
        BlockSize::BS_512
    }

    fn num_blocks(&mut self) -> Result<u64, Error> {
        Ok(self.0.sectors())
    }

    fn read_blocks(&mut self, start: Lba, dst: &mut [u8]) -> Result<(), Error> {
        let n = (dst.len() / SECTOR) as u64;
        if start
            .to_u64()
            .checked_add(n)
            .is_none_or(|e| e > self.0.sectors())
        {
            return Err(Error::OutOfRange {
                what: "a GPT structure",
            });
        }
        self.0.read_sectors(start.to_u64(), dst)
    }

    fn write_blocks(&mut self, _: Lba, _: &[u8]) -> Result<(), Error> {
        Err(Error::BadBuffer)
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}
