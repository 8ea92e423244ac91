//! The kernel, initrds and command line of a found entry, streamed from
//! the disk into the caller's buffers.

use super::volume::Volume;
use super::{Disk, Error, FileRef, Found};
use crate::boot::payload::Source;
use crate::boot::pipeline::Result;
use alloc::string::String;
use alloc::vec::Vec;

/// The payload found on a disk, read straight into the caller's buffers:
/// a kernel is ~10 MB and the firmware's heap is small, so only the
/// configuration files (with a size limit) are ever read into memory.
pub struct DiskPayload {
    dev: Disk,
    found: Found,
    extra_cmdline: Option<String>,
    /// The file system last read, by partition number.
    open: Option<(u32, Volume)>,
}

/// GRUB places each initrd but the last at a 4-byte boundary
/// (grub-core/loader/linux.c, ALIGN_UP(size, 4)), so concatenated newc
/// archives stay aligned.
const INITRD_ALIGN: u64 = 4;

impl DiskPayload {
    /// `extra_cmdline` is `opt/org.hotstub/cmdline`, appended to the
    /// entry's command line.
    pub fn new(dev: Disk, found: Found, extra_cmdline: Option<String>) -> DiskPayload {
        DiskPayload {
            dev,
            found,
            extra_cmdline,
            open: None,
        }
    }

    fn read(
        &mut self,
        f: &FileRef,
        offset: u64,
        dst: &mut [u8],
    ) -> core::result::Result<(), Error> {
        if offset
            .checked_add(dst.len() as u64)
            .is_none_or(|e| e > f.size)
        {
            return Err(Error::BadBuffer);
        }
        if self.open.as_ref().is_none_or(|(n, _)| *n != f.part.number) {
            self.open = None;
            let v = Volume::open(&self.dev, &f.part)?.ok_or(Error::NoBootConfig)?;
            self.open = Some((f.part.number, v));
        }
        match &mut self.open {
            Some((_, v)) => v.read_at(&f.path, offset, dst),
            None => Err(Error::NoBootConfig),
        }
    }

    /// What is being booted.
    pub fn found(&self) -> &Found {
        &self.found
    }

    /// Reads `dst.len()` bytes of the kernel file from `offset` on (x86
    /// reads the bzImage's setup part and the rest separately).
    pub fn kernel_at(&mut self, offset: u64, dst: &mut [u8]) -> core::result::Result<(), Error> {
        let k = self.found.kernel.clone();
        self.read(&k, offset, dst)
    }

    /// The initrds' total size as loaded: each but the last padded to 4
    /// bytes, as GRUB concatenates them (newc cpio archives stay aligned).
    pub fn initrds_size(&self) -> u64 {
        let n = self.found.initrds.len();
        self.found
            .initrds
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i + 1 < n {
                    f.size.next_multiple_of(INITRD_ALIGN)
                } else {
                    f.size
                }
            })
            .sum()
    }

    /// Copies the initrds one after another into `dst` (exactly
    /// [`initrds_size`](Self::initrds_size) bytes), the gaps zeroed.
    pub fn initrds_into(&mut self, dst: &mut [u8]) -> core::result::Result<(), Error> {
        if dst.len() as u64 != self.initrds_size() {
            return Err(Error::BadBuffer);
        }
        let mut at = 0usize;
        for f in self.found.initrds.clone() {
            let end = at + f.size as usize;
            self.read(&f, 0, &mut dst[at..end])?;
            let next = (end as u64).next_multiple_of(INITRD_ALIGN) as usize;
            let next = next.min(dst.len());
            dst[end..next].fill(0);
            at = next;
        }
        Ok(())
    }

    /// The entry's command line, then `extra_cmdline` after a space.
    pub fn cmdline_text(&self) -> String {
        let mut s = self.found.cmdline.clone();
        if let Some(extra) = self.extra_cmdline.as_deref().filter(|e| !e.is_empty()) {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(extra);
        }
        s
    }
}

impl Source for DiskPayload {
    fn kernel_size(&mut self, _image: &str) -> Result<u64> {
        Ok(self.found.kernel.size)
    }

    fn kernel_head(&mut self, buf: &mut [u8]) -> Result<()> {
        Ok(self.kernel_at(0, buf)?)
    }

    fn load_kernel(&mut self, dst: &mut [u8]) -> Result<()> {
        if dst.len() as u64 != self.found.kernel.size {
            return Err(Error::BadBuffer.into());
        }
        Ok(self.kernel_at(0, dst)?)
    }

    fn initrd_size(&mut self) -> u64 {
        self.initrds_size()
    }

    fn load_initrd(&mut self, dst: &mut [u8]) -> Result<()> {
        Ok(self.initrds_into(dst)?)
    }

    fn cmdline(&mut self, limit: usize) -> Result<Vec<u8>> {
        let s = self.cmdline_text();
        if s.len() >= limit {
            crate::bail!(
                "kernel command line of {} bytes exceeds the kernel's limit of {}",
                s.len(),
                limit.saturating_sub(1)
            );
        }
        Ok(s.into_bytes())
    }
}
