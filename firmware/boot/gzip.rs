//! gzip (RFC 1952) kernels: Debian and Ubuntu install the arm64 kernel as
//! `vmlinuz`, a gzip'd `Image`, where a bootloader (GRUB's EFI stub path
//! aside) has to inflate it. The member header and trailer are read here;
//! the DEFLATE stream is inflated by `miniz_oxide` (its `no_std` core,
//! without allocation), straight into the caller's buffer.

use alloc::boxed::Box;
use core::fmt;
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// ID1, ID2 and CM = 8 (deflate), RFC 1952 2.3.1.
const MAGIC: [u8; 3] = [0x1f, 0x8b, 8];
/// The fixed part of the member header: magic, FLG, MTIME, XFL, OS.
const HEADER_LEN: usize = 10;
/// CRC32 and ISIZE, after the compressed blocks.
const TRAILER_LEN: usize = 8;
// FLG bits (RFC 1952 2.3.1); bits 5-7 are reserved and must be zero.
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 0xe0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The header is cut short or has reserved flags set.
    BadHeader,
    /// The DEFLATE data is corrupt or ends early.
    Corrupt,
    /// More output than the buffer holds.
    TooLarge,
    /// No trailer after the data, or its CRC or size do not match.
    BadTrailer,
    /// Bytes other than zero padding after the member (a second member).
    TrailingData,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Error::BadHeader => "gzip header is malformed",
            Error::Corrupt => "gzip data is corrupt or truncated",
            Error::TooLarge => "gzip data inflates beyond the room for it",
            Error::BadTrailer => "gzip CRC-32 or size does not match the data",
            Error::TrailingData => "data after the gzip member (a second member is not supported)",
        })
    }
}

/// Whether `head` starts like a gzip member.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// Where the DEFLATE data starts: after the fixed header and the optional
/// fields FLG announces (RFC 1952 2.3.1).
fn data_start(gz: &[u8]) -> Result<usize, Error> {
    if gz.len() < HEADER_LEN || !is_gzip(gz) {
        return Err(Error::BadHeader);
    }
    let flg = gz[3];
    if flg & FRESERVED != 0 {
        return Err(Error::BadHeader);
    }
    let mut at = HEADER_LEN;
    if flg & FEXTRA != 0 {
        let xlen = gz.get(at..at + 2).ok_or(Error::BadHeader)?;
        at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flg & flag != 0 {
            let rest = gz.get(at..).ok_or(Error::BadHeader)?;
            at += 1 + rest.iter().position(|&b| b == 0).ok_or(Error::BadHeader)?;
        }
    }
    if flg & FHCRC != 0 {
        at += 2;
    }
    if at > gz.len() {
        return Err(Error::BadHeader);
    }
    Ok(at)
}

/// Inflates the gzip member `gz` into the start of `out` and returns how
/// many bytes it made. `out`'s length bounds the output: a member that
/// would make more is refused, never written past it. The trailer's
/// CRC-32 and size must match what was made.
pub fn inflate(gz: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let start = data_start(gz)?;
    // About 11 KiB of tables: on the heap, not the firmware's small stack.
    let mut state = Box::new(DecompressorOxide::new());
    // The whole output is in `out` (back-references reach into it), and
    // all input is there: no HAS_MORE_INPUT.
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, used, made) = decompress(&mut state, &gz[start..], out, 0, flags);
    match status {
        TINFLStatus::Done => {}
        TINFLStatus::HasMoreOutput => return Err(Error::TooLarge),
        _ => return Err(Error::Corrupt),
    }
    let end = start + used;
    let trailer = gz.get(end..end + TRAILER_LEN).ok_or(Error::BadTrailer)?;
    let crc = u32::from_le_bytes(trailer[0..4].try_into().unwrap());
    // ISIZE is the size modulo 2^32.
    let size = u32::from_le_bytes(trailer[4..8].try_into().unwrap());
    if size != made as u32 || crc != crc32(&out[..made]) {
        return Err(Error::BadTrailer);
    }
    if gz[end + TRAILER_LEN..].iter().any(|&b| b != 0) {
        return Err(Error::TrailingData);
    }
    Ok(made)
}

/// CRC-32 of a whole kernel (tens of MB), the polynomial of
/// `efi::crc32` a byte at a time: a table of 1 KiB on the stack, made here
/// rather than kept in the image (efi.rs keeps the bitwise form for its
/// 120 bytes).
fn crc32(data: &[u8]) -> u32 {
    let table: [u32; 256] = core::array::from_fn(|i| super::efi::crc32_update(i as u32, &[0]));
    !data.iter().fold(!0u32, |crc, &b| {
        table[usize::from(crc as u8 ^ b)] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A member with stored (uncompressed) DEFLATE blocks (RFC 1951
    /// 3.2.4), so the tests need no compressor: header, blocks, trailer.
    fn stored(data: &[u8], flg: u8, optional: &[u8]) -> Vec<u8> {
        let mut g = vec![0x1f, 0x8b, 8, flg, 0, 0, 0, 0, 0, 3];
        g.extend_from_slice(optional);
        let chunks: Vec<&[u8]> = data.chunks(65535).collect();
        for (i, c) in chunks.iter().enumerate() {
            g.push(u8::from(i + 1 == chunks.len()));
            let n = c.len() as u16;
            g.extend_from_slice(&n.to_le_bytes());
            g.extend_from_slice(&(!n).to_le_bytes());
            g.extend_from_slice(c);
        }
        if data.is_empty() {
            g.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        g.extend_from_slice(&super::super::efi::crc32(data).to_le_bytes());
        g.extend_from_slice(&(data.len() as u32).to_le_bytes());
        g
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32).map(|i| (i * 7 + i / 300) as u8).collect()
    }

    #[test]
    fn table_crc_is_efi_crc() {
        let data = sample();
        assert_eq!(crc32(&data), super::super::efi::crc32(&data));
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn inflates_a_member_and_checks_its_trailer() {
        let data = sample();
        let gz = stored(&data, 0, &[]);
        assert!(is_gzip(&gz));
        let mut out = vec![0u8; data.len() + 100];
        assert_eq!(inflate(&gz, &mut out), Ok(data.len()));
        assert_eq!(&out[..data.len()], &data[..]);
        let mut exact = vec![0u8; data.len()];
        assert_eq!(inflate(&gz, &mut exact), Ok(data.len()));
    }

    #[test]
    fn optional_header_fields_are_skipped() {
        let data = b"Image";
        let mut opt = vec![3, 0, b'a', b'b', b'c'];
        opt.extend_from_slice(b"vmlinuz\0a comment\0");
        opt.extend_from_slice(&[0x12, 0x34]);
        let gz = stored(data, FEXTRA | FNAME | FCOMMENT | FHCRC, &opt);
        let mut out = [0u8; 16];
        assert_eq!(inflate(&gz, &mut out), Ok(5));
        assert_eq!(&out[..5], data);
    }

    #[test]
    fn output_is_bounded_by_the_buffer() {
        let data = sample();
        let gz = stored(&data, 0, &[]);
        let mut out = vec![0u8; data.len() - 1];
        assert_eq!(inflate(&gz, &mut out), Err(Error::TooLarge));
    }

    #[test]
    fn bad_members_are_refused() {
        let data = sample();
        let gz = stored(&data, 0, &[]);
        let mut out = vec![0u8; data.len()];
        let mut crc = gz.clone();
        let n = crc.len();
        crc[n - 8] ^= 1;
        assert_eq!(inflate(&crc, &mut out), Err(Error::BadTrailer));
        let mut size = gz.clone();
        size[n - 1] ^= 1;
        assert_eq!(inflate(&size, &mut out), Err(Error::BadTrailer));
        assert_eq!(inflate(&gz[..n - 3], &mut out), Err(Error::BadTrailer));
        assert_eq!(inflate(&gz[..n / 2], &mut out), Err(Error::Corrupt));
        let mut flipped = gz.clone();
        flipped[1000] ^= 0x40;
        assert_eq!(inflate(&flipped, &mut out), Err(Error::BadTrailer));
        let mut reserved = gz.clone();
        reserved[3] = 0x20;
        assert_eq!(inflate(&reserved, &mut out), Err(Error::BadHeader));
        let unterminated = stored(b"x", FNAME, b"name");
        assert_eq!(
            inflate(&unterminated[..14], &mut out),
            Err(Error::BadHeader)
        );
        assert_eq!(inflate(&gz[..9], &mut out), Err(Error::BadHeader));
    }

    #[test]
    fn zero_padding_is_allowed_a_second_member_is_not() {
        let data = b"kernel";
        let mut gz = stored(data, 0, &[]);
        gz.extend_from_slice(&[0; 512]);
        let mut out = [0u8; 8];
        assert_eq!(inflate(&gz, &mut out), Ok(6));
        gz.extend_from_slice(&stored(data, 0, &[]));
        assert_eq!(inflate(&gz, &mut out), Err(Error::TrailingData));
    }
}
