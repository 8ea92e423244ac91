//! The one error type of disk boot: each variant prints one line starting
//! with `disk:`, naming the file or structure and what is wrong with it.

use alloc::string::String;
use core::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The device failed a read; `why` is the driver's word.
    Io { lba: u64, why: &'static str },
    /// A structure pointed past the end of the disk or its partition.
    OutOfRange { what: &'static str },
    /// Neither a GPT nor an MBR with partitions.
    NoPartitionTable,
    /// Neither GPT header is valid (the primary's fault is named).
    CorruptGpt(&'static str),
    /// The MBR's partition entries make no sense.
    CorruptMbr(&'static str),
    /// `opt/org.hotstub/boot` is not of the documented grammar.
    BadChoice,
    /// The chosen partition does not exist.
    NoSuchPartition(u32),
    /// A FAT file system is damaged.
    Fat(&'static str),
    /// ext4-view refused the file system or a file (its message).
    Ext4(String),
    /// A boot configuration file says something the reader cannot use.
    Config { file: String, why: String },
    /// No partition holds a BLS entry, grub.cfg or extlinux.conf.
    NoBootConfig,
    /// The chosen entry is in no configuration.
    NoSuchEntry(String),
    /// A configuration names a file that is not there.
    Missing {
        what: &'static str,
        path: String,
        partition: u32,
    },
    /// The kernel file is empty.
    EmptyKernel(String),
    /// A file is larger than its use allows (configuration files are read
    /// into memory, so they are capped).
    TooLarge { path: String, limit: usize },
    /// A read into a buffer of the wrong size (the caller's mistake).
    BadBuffer,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("disk: ")?;
        match self {
            Error::Io { lba, why } => write!(f, "read error at sector {lba}: {why}"),
            Error::OutOfRange { what } => write!(f, "{what} lies past the end of the disk"),
            Error::NoPartitionTable => f.write_str("no partition table (neither GPT nor MBR)"),
            Error::CorruptGpt(why) => write!(f, "corrupt GPT: {why}, and no valid backup"),
            Error::CorruptMbr(why) => write!(f, "corrupt MBR: {why}"),
            Error::BadChoice => f.write_str(
                "opt/org.hotstub/boot is not [diskN/][PARTITION][:ENTRY] or an entry name",
            ),
            Error::NoSuchPartition(n) => write!(f, "there is no partition {n}"),
            Error::Fat(why) => write!(f, "corrupt FAT file system: {why}"),
            Error::Ext4(why) => write!(f, "ext4: {why}"),
            Error::Config { file, why } => write!(f, "{file}: {why}"),
            Error::NoBootConfig => f.write_str(
                "no boot configuration (loader/entries/*.conf, grub/grub.cfg, extlinux.conf)",
            ),
            Error::NoSuchEntry(e) => write!(f, "no boot entry named \"{e}\""),
            Error::Missing {
                what,
                path,
                partition,
            } => write!(f, "{what} {path} not found on partition {partition}"),
            Error::EmptyKernel(path) => write!(f, "kernel {path} is empty (0 bytes)"),
            Error::TooLarge { path, limit } => {
                write!(f, "{path} is larger than the {limit} bytes it may have")
            }
            Error::BadBuffer => f.write_str("read into a buffer of the wrong size"),
        }
    }
}
