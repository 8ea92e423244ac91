//! Where the kernel, the initrd and the command line come from, behind
//! one interface ([`Source`]) the architectures' load steps read through.
//! The machine description names the source ([`From`]); fw_cfg is the one
//! QEMU's `-kernel`, `-initrd` and `-append` fill (fw_cfg.rst). Where each
//! item goes in RAM is the architecture's choice; a source reports sizes,
//! bounds them and copies the data.

use super::pipeline::Result;
use crate::platform::fw_cfg::{key, FwCfg, Transport};
use alloc::vec::Vec;

/// Where the machine's payload is. A payload the VMM already placed in RAM
/// is the next source (docs/design.md, "Entry paths").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// QEMU's fw_cfg kernel, initrd and command line items.
    FwCfg,
    /// A kernel a distribution installed on a disk, found through its boot
    /// configuration (`crate::disk::find`) and read by
    /// `crate::disk::DiskPayload`; used when fw_cfg has no kernel.
    Disk,
}

/// A payload source.
pub trait Source {
    /// The kernel's size; an error saying how to provide one when there is
    /// none. `image` names the kernel's format for that message.
    fn kernel_size(&mut self, image: &str) -> Result<u64>;
    /// Reads the first `buf.len()` bytes of the kernel (its header).
    fn kernel_head(&mut self, buf: &mut [u8]) -> Result<()>;
    /// Copies the whole kernel to `dst` (exactly its size).
    fn load_kernel(&mut self, dst: &mut [u8]) -> Result<()>;
    /// The initrd's size, 0 when there is none.
    fn initrd_size(&mut self) -> u64;
    /// Copies the whole initrd to `dst` (exactly its size).
    fn load_initrd(&mut self, dst: &mut [u8]) -> Result<()>;
    /// The command line without its terminating NUL. `limit` is the most
    /// bytes the kernel takes, NUL included; a longer one is an error
    /// rather than silently cut.
    fn cmdline(&mut self, limit: usize) -> Result<Vec<u8>>;
}

impl<T: Transport> Source for FwCfg<T> {
    fn kernel_size(&mut self, image: &str) -> Result<u64> {
        match self.read_u32(key::KERNEL_SIZE) {
            0 => Err(crate::err!("no kernel: start QEMU with -kernel <{image}>")),
            n => Ok(u64::from(n)),
        }
    }

    fn kernel_head(&mut self, buf: &mut [u8]) -> Result<()> {
        self.read(key::KERNEL_DATA, buf)
            .map_err(|e| crate::err!("reading the kernel header: {e}"))
    }

    fn load_kernel(&mut self, dst: &mut [u8]) -> Result<()> {
        self.read(key::KERNEL_DATA, dst)
            .map_err(|e| crate::err!("loading the kernel: {e}"))
    }

    fn initrd_size(&mut self) -> u64 {
        u64::from(self.read_u32(key::INITRD_SIZE))
    }

    fn load_initrd(&mut self, dst: &mut [u8]) -> Result<()> {
        self.read(key::INITRD_DATA, dst)
            .map_err(|e| crate::err!("loading the initrd: {e}"))
    }

    fn cmdline(&mut self, limit: usize) -> Result<Vec<u8>> {
        let size = self.read_u32(key::CMDLINE_SIZE) as usize;
        if size > limit {
            crate::bail!(
                "kernel command line of {size} bytes exceeds the kernel's limit of {}",
                limit.saturating_sub(1)
            );
        }
        let mut buf = alloc::vec![0u8; size];
        self.read(key::CMDLINE_DATA, &mut buf)
            .map_err(|e| crate::err!("reading the command line: {e}"))?;
        // QEMU counts the terminating NUL in CMDLINE_SIZE.
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        buf.truncate(end);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::fw_cfg::testing::Fake;

    fn fw(items: &[(u16, &[u8])]) -> FwCfg<Fake> {
        FwCfg::probe(Fake::with(items)).unwrap()
    }

    #[test]
    fn command_line_ends_at_its_nul_and_respects_the_limit() {
        let size = 6u32.to_le_bytes();
        let mut f = fw(&[(key::CMDLINE_SIZE, &size), (key::CMDLINE_DATA, b"a=1 b\0")]);
        assert_eq!(f.cmdline(6).unwrap(), b"a=1 b");
        assert!(f.cmdline(5).is_err(), "6 bytes over a limit of 5");
        let mut none = fw(&[]);
        assert_eq!(none.cmdline(2048).unwrap(), b"");
    }

    #[test]
    fn kernel_and_initrd_sizes() {
        let mut f = fw(&[]);
        assert!(f.kernel_size("Image").is_err(), "no -kernel");
        assert_eq!(f.initrd_size(), 0);
        let k = 4096u32.to_le_bytes();
        let mut f = fw(&[(key::KERNEL_SIZE, &k), (key::INITRD_SIZE, &k)]);
        assert_eq!(f.kernel_size("Image").unwrap(), 4096);
        assert_eq!(f.initrd_size(), 4096);
    }
}
