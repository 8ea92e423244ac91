//! Loading what the VMM hands over for Linux through fw_cfg: the kernel,
//! the initrd and the command line (QEMU `-kernel`, `-initrd`, `-append`;
//! fw_cfg.rst). Where each goes is the architecture's choice; this module
//! reads the sizes, bounds them and copies the data.

use super::pipeline::Result;
use crate::platform::fw_cfg::{key, FwCfg, Transport};
use alloc::vec::Vec;

/// The kernel's size; an error naming the QEMU option when there is none.
pub fn kernel_size<T: Transport>(fw: &mut FwCfg<T>, image: &str) -> Result<u64> {
    match fw.read_u32(key::KERNEL_SIZE) {
        0 => Err(crate::err!("no kernel: start QEMU with -kernel <{image}>")),
        n => Ok(u64::from(n)),
    }
}

/// The initrd's size, 0 when there is none.
pub fn initrd_size<T: Transport>(fw: &mut FwCfg<T>) -> u64 {
    u64::from(fw.read_u32(key::INITRD_SIZE))
}

/// Reads the first `buf.len()` bytes of the kernel (its header).
pub fn kernel_head<T: Transport>(fw: &mut FwCfg<T>, buf: &mut [u8]) -> Result<()> {
    fw.read(key::KERNEL_DATA, buf)
        .map_err(|e| crate::err!("reading the kernel header: {e}"))
}

/// Copies the whole kernel to `dst` (exactly its size).
pub fn load_kernel<T: Transport>(fw: &mut FwCfg<T>, dst: &mut [u8]) -> Result<()> {
    fw.read(key::KERNEL_DATA, dst)
        .map_err(|e| crate::err!("loading the kernel: {e}"))
}

/// Copies the whole initrd to `dst` (exactly its size).
pub fn load_initrd<T: Transport>(fw: &mut FwCfg<T>, dst: &mut [u8]) -> Result<()> {
    fw.read(key::INITRD_DATA, dst)
        .map_err(|e| crate::err!("loading the initrd: {e}"))
}

/// The command line without its terminating NUL. `limit` is the most bytes
/// the kernel takes, NUL included; a longer one is an error rather than
/// silently cut.
pub fn cmdline<T: Transport>(fw: &mut FwCfg<T>, limit: usize) -> Result<Vec<u8>> {
    let size = fw.read_u32(key::CMDLINE_SIZE) as usize;
    if size > limit {
        crate::bail!(
            "kernel command line of {size} bytes exceeds the kernel's limit of {}",
            limit.saturating_sub(1)
        );
    }
    let mut buf = alloc::vec![0u8; size];
    fw.read(key::CMDLINE_DATA, &mut buf)
        .map_err(|e| crate::err!("reading the command line: {e}"))?;
    // QEMU counts the terminating NUL in CMDLINE_SIZE.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf.truncate(end);
    Ok(buf)
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
        assert_eq!(cmdline(&mut f, 6).unwrap(), b"a=1 b");
        assert!(cmdline(&mut f, 5).is_err(), "6 bytes over a limit of 5");
        let mut none = fw(&[]);
        assert_eq!(cmdline(&mut none, 2048).unwrap(), b"");
    }

    #[test]
    fn kernel_and_initrd_sizes() {
        let mut f = fw(&[]);
        assert!(kernel_size(&mut f, "Image").is_err(), "no -kernel");
        assert_eq!(initrd_size(&mut f), 0);
        let k = 4096u32.to_le_bytes();
        let mut f = fw(&[(key::KERNEL_SIZE, &k), (key::INITRD_SIZE, &k)]);
        assert_eq!(kernel_size(&mut f, "Image").unwrap(), 4096);
        assert_eq!(initrd_size(&mut f), 4096);
    }
}
