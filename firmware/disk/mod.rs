//! Booting what a distribution installed on a disk: the partition table
//! (GPT, or MBR on old images), the file systems boot files live on
//! (ext2/3/4, FAT for EFI system partitions), the boot configurations
//! that name the kernel (Boot Loader Spec entries, GRUB's `grub.cfg`,
//! `extlinux.conf`) and a [`payload::Source`](crate::boot::payload::Source)
//! that streams the chosen kernel and initrds from the disk.
//!
//! Everything here parses what a disk says, so it is bounds-checked and
//! fuzzed (`disk_part`, `disk_fat`, `disk_ext4`, `boot_entries`): a corrupt
//! or hostile disk gets an [`Error`], never a panic or an endless walk.
//! The hardware side (the virtio-blk driver) implements [`BlockDevice`].
//!
//! Which configuration wins (README, "Booting from a disk"): Boot Loader
//! Spec entries first, then GRUB's default entry, then `extlinux.conf`.

pub mod ahead;
pub mod conf;
mod error;
mod fat;
mod find;
mod part;
mod payload;
mod volume;

pub use error::Error;
pub use part::{partitions, Partition};
pub use payload::DiskPayload;

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

/// Bytes per sector the library reads in (virtio-blk's unit, and the
/// logical block size GPT and MBR are laid out in on every disk QEMU and
/// cloud-hypervisor expose).
pub const SECTOR: usize = 512;

/// A disk the firmware can read.
pub trait BlockDevice {
    /// Reads `buf.len() / SECTOR` sectors from `lba` on. `buf.len()` is a
    /// multiple of [`SECTOR`]; a read past [`sectors`](Self::sectors) is
    /// never asked for.
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// The disk's size in sectors.
    fn sectors(&self) -> u64;
}

/// A disk the library's readers share. ext4-view keeps its reader as a
/// `Box<dyn Ext4Read>`, which must be `'static`, so the readers hold the
/// device through a counted reference rather than a borrow; the caller
/// keeps its own clone.
pub type Disk = Rc<RefCell<dyn BlockDevice>>;

/// Which disk, partition and entry to boot: the fw_cfg file
/// `opt/org.hotstub/boot`, parsed by [`Choice::parse`]. Grammar:
///
/// ```text
/// choice    = [ "disk" DISK "/" ] [ PARTITION ] [ ":" ENTRY ]
///           | ENTRY
/// DISK      = decimal, 0 = the first disk in bus order
/// PARTITION = decimal, 1 = the first partition (Linux's vda1)
/// ENTRY     = a BLS entry's file name (with or without ".conf") or title,
///             a GRUB menuentry's title or id (--id / $menuentry_id_option),
///             or an extlinux label; matched exactly
/// ```
///
/// So `2` is partition 2, `:Debian GNU/Linux` and `Debian GNU/Linux` the
/// entry of that title anywhere, `disk1/2:fedora-6.8` both. Without a
/// partition every partition is searched; without an entry the
/// configuration's default is booted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The disk's index in bus order; the hardware side applies it.
    pub disk: Option<u32>,
    /// The partition's number (1-based).
    pub partition: Option<u32>,
    /// The entry, by id, file name, title or label.
    pub entry: Option<&'a str>,
}

impl<'a> Choice<'a> {
    /// Parses the text of `opt/org.hotstub/boot` (surrounding white space
    /// and a trailing NUL ignored); empty text is the default choice.
    pub fn parse(text: &'a str) -> Result<Choice<'a>, Error> {
        let t = text.trim_end_matches('\0').trim();
        let mut c = Choice::default();
        let mut rest = t;
        if let Some(r) = t.strip_prefix("disk") {
            if let Some((n, r)) = r.split_once('/') {
                c.disk = Some(number(n).ok_or(Error::BadChoice)?);
                rest = r;
            }
        }
        let (part, entry) = match rest.split_once(':') {
            Some((p, e)) if p.is_empty() || number(p).is_some() => (p, Some(e)),
            _ if number(rest).is_some() => (rest, None),
            _ => ("", Some(rest)),
        };
        if !part.is_empty() {
            c.partition = Some(number(part).filter(|&n| n > 0).ok_or(Error::BadChoice)?);
        }
        c.entry = entry.filter(|e| !e.is_empty());
        Ok(c)
    }
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A file on one of the disk's partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileRef {
    part: part::Partition,
    path: String,
    size: u64,
}

/// What was found: which partition and entry (for the console's one line,
/// see its `Display`) and the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The partition holding the configuration (1-based, Linux's vdaN).
    pub partition: u32,
    /// The entry's title, label or file name.
    pub entry: String,
    /// Which configuration named it: "bls", "grub" or "extlinux".
    pub kind: &'static str,
    /// The entry's kernel command line (its `options`, GRUB `linux`
    /// arguments or `append`).
    pub cmdline: String,
    /// The configuration file that named the entry: its path on the
    /// partition and its text, for measured boot.
    pub config: (String, String),
    kernel: FileRef,
    initrds: Vec<FileRef>,
}

impl Found {
    /// The kernel's path on its partition.
    pub fn kernel_path(&self) -> &str {
        &self.kernel.path
    }

    /// The kernel's size in bytes (never 0: [`find`] refuses an empty one).
    pub fn kernel_size(&self) -> u64 {
        self.kernel.size
    }

    /// The initrds' paths, in load order.
    pub fn initrd_paths(&self) -> impl Iterator<Item = &str> {
        self.initrds.iter().map(|f| f.path.as_str())
    }
}

/// `partition 2, grub entry "Debian GNU/Linux": /boot/vmlinuz-6.1.0-18-amd64`
impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "partition {}, {} entry \"{}\": {}",
            self.partition, self.kind, self.entry, self.kernel.path
        )
    }
}

/// Finds the kernel to boot on `dev`: the partitions, then on each (or on
/// the chosen one) the boot configurations in the order the module doc
/// gives, then the entry the choice names or the configuration's default.
/// Checks that the kernel and initrds exist and the kernel is not empty.
pub fn find(dev: &Disk, choice: &Choice) -> Result<Found, Error> {
    find::find(dev, choice)
}

#[cfg(test)]
mod tests;
