//! Linux arm64 `Image` header (Linux `Documentation/arch/arm64/booting.rst`,
//! "Call the kernel image"):
//!
//! ```text
//! u32 code0; u32 code1; u64 text_offset; u64 image_size; u64 flags;
//! u64 res2; u64 res3; u64 res4; u32 magic = "ARM\x64"; u32 res5;
//! ```
//! all little-endian.

use core::fmt;

/// Bytes of the header that this module reads.
pub const HEADER_LEN: usize = 64;
const MAGIC_OFFSET: usize = 56;
const MAGIC: &[u8; 4] = b"ARM\x64";
/// The Image must be placed this far into a 2 MiB aligned region
/// (booting.rst: "at text_offset bytes from a 2MB aligned base address").
pub const BASE_ALIGN: u64 = 2 << 20;
/// booting.rst: before Linux 3.17 image_size is 0 and text_offset is 0x80000
/// but the size is unknown; such kernels need this much headroom at least.
const LEGACY_TEXT_OFFSET: u64 = 0x80000;

/// x86 boot protocol signature "HdrS" at 0x202 (Linux
/// `Documentation/arch/x86/boot.rst`), to name the mistake precisely.
const X86_HDRS_OFFSET: usize = 0x202;
const X86_HDRS: &[u8; 4] = b"HdrS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header.
    TooShort,
    /// An x86 bzImage was given.
    X86BzImage,
    /// A compressed (EFI zboot or gzip) image; the firmware needs the raw Image.
    Compressed,
    /// No arm64 magic.
    BadMagic,
    /// The image declares big-endian (flags bit 0), which this firmware
    /// running little-endian cannot enter.
    BigEndian,
    /// text_offset or image_size do not make sense.
    BadLayout,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Error::TooShort => "kernel is too short to be an arm64 Image",
            Error::X86BzImage => "kernel is an x86 bzImage, not an arm64 Image",
            Error::Compressed => "kernel is compressed; pass the uncompressed arm64 Image",
            Error::BadMagic => "kernel is not an arm64 Image (no ARM\\x64 magic at offset 56)",
            Error::BigEndian => "kernel is a big-endian arm64 Image",
            Error::BadLayout => "arm64 Image header has an invalid text_offset/image_size",
        })
    }
}

/// The validated header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub text_offset: u64,
    /// Bytes the kernel occupies from its load address, bss included.
    pub image_size: u64,
    pub flags: u64,
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

impl Header {
    /// Validates the first bytes of a kernel. `file_size` is the size of the
    /// whole file, which `image_size` must cover.
    pub fn parse(head: &[u8], file_size: u64) -> Result<Header, Error> {
        if head.len() >= X86_HDRS_OFFSET + 4
            && &head[X86_HDRS_OFFSET..X86_HDRS_OFFSET + 4] == X86_HDRS
        {
            return Err(Error::X86BzImage);
        }
        if head.len() < HEADER_LEN || file_size < HEADER_LEN as u64 {
            return Err(Error::TooShort);
        }
        if &head[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
            // gzip magic (RFC 1952), and the EFI zboot "zimg" tag at 4
            // (Linux drivers/firmware/efi/libstub/zboot-header.S).
            if head[0..2] == [0x1f, 0x8b] || &head[4..8] == b"zimg" {
                return Err(Error::Compressed);
            }
            return Err(Error::BadMagic);
        }
        let text_offset = le64(head, 8);
        let image_size = le64(head, 16);
        let flags = le64(head, 24);
        if flags & 1 != 0 {
            return Err(Error::BigEndian);
        }
        let (text_offset, image_size) = if image_size == 0 {
            // Pre-3.17 kernels: booting.rst says to assume text_offset 0x80000.
            (LEGACY_TEXT_OFFSET, file_size)
        } else {
            (text_offset, image_size)
        };
        if text_offset >= BASE_ALIGN || text_offset % 4096 != 0 || image_size < file_size {
            return Err(Error::BadLayout);
        }
        Ok(Header {
            text_offset,
            image_size,
            flags,
        })
    }

    /// The load address for an Image whose 2 MiB aligned base is at or above
    /// `min_base`.
    pub fn load_address(&self, min_base: u64) -> Option<u64> {
        let base = min_base.checked_add(BASE_ALIGN - 1)? & !(BASE_ALIGN - 1);
        base.checked_add(self.text_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text_offset: u64, image_size: u64, flags: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&0x9100_0000u32.to_le_bytes());
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[56..60].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn accepts_modern_image() {
        let h = Header::parse(&image(0, 0x300_0000, 0xa), 0x200_0000).unwrap();
        assert_eq!((h.text_offset, h.image_size, h.flags), (0, 0x300_0000, 0xa));
        assert_eq!(h.load_address(0x4010_0000), Some(0x4020_0000));
        assert_eq!(h.load_address(0x4020_0000), Some(0x4020_0000));
    }

    #[test]
    fn legacy_image_gets_default_offset() {
        let h = Header::parse(&image(0, 0, 0), 0x10_0000).unwrap();
        assert_eq!((h.text_offset, h.image_size), (0x80000, 0x10_0000));
        assert_eq!(h.load_address(0x4000_0001), Some(0x4028_0000));
    }

    #[test]
    fn rejects_bad_inputs() {
        assert_eq!(Header::parse(&[0; 10], 10), Err(Error::TooShort));
        // Deterministic "random" bytes.
        let mut r = [0u8; 4096];
        let mut x = 0x1234_5678u32;
        for b in r.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        assert_eq!(Header::parse(&r, 4096), Err(Error::BadMagic));
        let mut bz = [0u8; 1024];
        bz[0x1fe] = 0x55;
        bz[0x1ff] = 0xaa;
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(Header::parse(&bz, 1 << 20), Err(Error::X86BzImage));
        let mut gz = [0u8; 64];
        gz[0] = 0x1f;
        gz[1] = 0x8b;
        assert_eq!(Header::parse(&gz, 64), Err(Error::Compressed));
        assert_eq!(
            Header::parse(&image(0, 0x1000, 1), 0x1000),
            Err(Error::BigEndian)
        );
        // image_size smaller than the file, or misaligned offsets.
        assert_eq!(
            Header::parse(&image(0, 0x1000, 0), 0x2000),
            Err(Error::BadLayout)
        );
        assert_eq!(
            Header::parse(&image(0x123, 0x1000, 0), 0x1000),
            Err(Error::BadLayout)
        );
        assert_eq!(
            Header::parse(&image(BASE_ALIGN, 0x1000, 0), 0x1000),
            Err(Error::BadLayout)
        );
    }
}
