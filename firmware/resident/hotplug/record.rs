//! The runtime policy across resets: a record the EL3 firmware keeps in
//! secure RAM, which a reset of the machine (guest reboot through PSCI
//! SYSTEM_RESET, QMP `system_reset`) leaves as it was and which a new QEMU
//! process starts zeroed. The next boot takes its enabled set instead of
//! `enabled-cpus` when the record is whole and was written for the same
//! possible vCPUs, and reports a change a reset interrupted.
//!
//! ```text
//! off size (little-endian)
//!   0   8  magic "HSTBPOL1"
//!   8   2  possible vCPUs n, 1..=MAX_CPUS
//!  10   1  change in flight: 0 none, 1 enable, 2 disable
//!  11   1  its request id's length, 0..=ID_MAX
//!  12   4  CRC-32 of the possible vCPUs' MPIDRs (u64 each, DT order)
//!  16  16  the request id
//!  32  64  enabled vCPUs, bit i % 8 of byte i / 8
//!  96  64  the change's vCPUs still waiting for Linux
//! 160   4  CRC-32 (IEEE, as EFI's) of bytes 0..160
//! ```
//!
//! The enabled set is what holds if the change in flight never ends: its
//! waiting vCPUs as they were before it (a reset leaves no Linux to finish
//! it, and the firmware never enables or disables a vCPU on a change Linux
//! did not complete).
//!
//! The record is kept as bytes, encoded and checked in place: this runs in
//! the size-bound image on every channel interrupt.

use super::{valid_id, Kind, Tag, ID_MAX};
use crate::boot::efi::crc32_update;
use crate::platform::cpulist::{CpuSet, BOOT_CPU};
use crate::platform::cpus::CpuModel;
use crate::resident::PAGE;

pub const MAGIC: [u8; 8] = *b"HSTBPOL1";
/// QEMU virt's most vCPUs (GICv3, hw/arm/virt.c `virt_max_cpus`).
pub const MAX_CPUS: usize = 512;
const SET: usize = MAX_CPUS / 8;
const ID: usize = 16;
const ENABLED: usize = 32;
const WAITING: usize = ENABLED + SET;
const BODY: usize = WAITING + SET;
pub const SIZE: usize = BODY + 4;

/// What [`Record::check`] says of a place with no record (a cold start).
pub const NONE: &str = "enabled-cpus";

/// A record, whole or not (see [`Record::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record(pub [u8; SIZE]);

/// CRC-32 of the possible vCPUs' MPIDRs, which ties a record to them.
pub fn possible_crc(mpidrs: impl Iterator<Item = u64>) -> u32 {
    !mpidrs.fold(!0, |c, m| crc32_update(c, &m.to_le_bytes()))
}

fn bit(b: &[u8], i: usize) -> bool {
    b.get(i / 8).is_some_and(|&v| v & (1 << (i % 8)) != 0)
}

fn set_bit(b: &mut [u8], i: usize) {
    b[i / 8] |= 1 << (i % 8);
}

impl Record {
    /// The record of `n` possible vCPUs (`crc`: their [`possible_crc`])
    /// where `enabled(i)` says which are enabled, with the change in
    /// flight; `None` beyond [`MAX_CPUS`].
    pub fn new(
        n: usize,
        enabled: impl Fn(usize) -> bool,
        pending: Option<(Kind, Tag, &CpuSet)>,
        crc: u32,
    ) -> Option<Record> {
        if n > MAX_CPUS {
            return None;
        }
        let mut b = [0u8; SIZE];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&(n as u16).to_le_bytes());
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        for i in (0..n).filter(|&i| enabled(i)) {
            set_bit(&mut b[ENABLED..], i);
        }
        if let Some((kind, tag, waiting)) = pending {
            b[10] = 1 + (kind == Kind::Disable) as u8;
            let id = tag.as_bytes();
            b[11] = id.len() as u8;
            b[ID..ID + id.len()].copy_from_slice(id);
            for i in (0..n).filter(|&i| waiting.contains(i)) {
                set_bit(&mut b[WAITING..], i);
            }
        }
        let sum = !crc32_update(!0, &b[..BODY]);
        b[BODY..].copy_from_slice(&sum.to_le_bytes());
        Some(Record(b))
    }

    /// Whole and written for `n` possible vCPUs whose [`possible_crc`] is
    /// `crc`; else the policy taken instead and why, as the boot event
    /// prints it (no record at all: a cold start).
    pub fn check(&self, n: usize, crc: u32) -> Result<(), &'static str> {
        let b = &self.0;
        let word = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if b[..8] != MAGIC {
            return Err(NONE);
        }
        if word(BODY) != !crc32_update(!0, &b[..BODY]) {
            return Err("enabled-cpus (record: checksum)");
        }
        if usize::from(u16::from_le_bytes([b[8], b[9]])) != n || word(12) != crc {
            return Err("enabled-cpus (record: other vCPUs)");
        }
        if (n..MAX_CPUS).any(|i| bit(&b[ENABLED..WAITING], i) || bit(&b[WAITING..BODY], i)) {
            return Err("enabled-cpus (record: vCPU beyond the possible ones)");
        }
        if !self.enabled(BOOT_CPU) {
            return Err("enabled-cpus (record: boot vCPU disabled)");
        }
        if b[10] > 2 {
            return Err("enabled-cpus (record: change kind)");
        }
        let len = usize::from(b[11]);
        if len > ID_MAX || !(len == 0 || valid_id(&b[ID..ID + len])) {
            return Err("enabled-cpus (record: request id)");
        }
        Ok(())
    }

    /// Whether vCPU `i` is enabled (in a checked record).
    pub fn enabled(&self, i: usize) -> bool {
        bit(&self.0[ENABLED..WAITING], i)
    }

    /// The change a reset interrupted: its kind, id and waiting vCPUs (of
    /// `n`; in a checked record).
    pub fn pending(&self, n: usize) -> Option<(Kind, Tag, CpuSet)> {
        let b = &self.0;
        let kind = match b[10] {
            1 => Kind::Enable,
            2 => Kind::Disable,
            _ => return None,
        };
        let tag = Tag::new(&b[ID..ID + usize::from(b[11]).min(ID_MAX)]).unwrap_or_default();
        let mut waiting = CpuSet::none(n);
        for i in 0..n {
            waiting.set(i, bit(&b[WAITING..BODY], i));
        }
        Some((kind, tag, waiting))
    }
}

/// The record's place in the secure RAM `(base, size)`: its last page, as
/// far from the resident firmware at its base as it can be (`el3::enter`
/// refuses a secure RAM that leaves the firmware no room below it). None
/// when the secure RAM is not whole pages.
pub fn place(secure: (u64, u64)) -> Option<u64> {
    let (base, size) = secure;
    (base.is_multiple_of(PAGE) && size.is_multiple_of(PAGE) && size >= PAGE)
        .then(|| base + size - PAGE)
}

/// What a boot found in the record's place and made of it; the channel
/// announces it and writes the next records there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The record's address ([`place`]).
    pub at: u64,
    /// The possible vCPUs' [`possible_crc`], for the records to come.
    pub crc: u32,
    /// The bytes as read.
    pub record: Record,
    /// Whether they were taken ([`Record::check`]).
    pub check: Result<(), &'static str>,
}

impl Found {
    /// At boot, before anything reads the policy: checks `record`, read at
    /// `at`, against `model`'s possible vCPUs and, when it is whole, makes
    /// its enabled set the policy instead of `enabled-cpus`.
    pub fn restore(at: u64, record: Record, model: &mut CpuModel) -> Found {
        let crc = possible_crc(model.iter().map(|v| v.hw_id));
        let check = record.check(model.len(), crc);
        if check.is_ok() {
            let mut set = CpuSet::none(model.len());
            for i in 0..model.len() {
                set.set(i, record.enabled(i));
            }
            // Same length by construction.
            set.apply(model);
        }
        Found {
            at,
            crc,
            record,
            check,
        }
    }

    /// The record taken, or why none was (as [`super::announce`] takes it).
    pub fn saved(&self) -> Result<&Record, &'static str> {
        self.check.map(|()| &self.record)
    }
}
