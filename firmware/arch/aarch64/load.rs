//! Loading what Linux needs on virt from a payload source: the Image at its
//! 2 MiB aligned place above the firmware, the initrd behind it, the
//! command line.

use alloc::string::String;
use hotstub::boot::pipeline::Result;
use hotstub::boot::{arm64_image, efi, gzip, payload};

use crate::arch::ram_slice;

/// One loaded item in RAM.
pub(super) struct Loaded {
    pub base: u64,
    pub size: u64,
}

pub(super) fn load_kernel(
    src: &mut impl payload::Source,
    min_base: u64,
    ram_end: u64,
) -> Result<(Loaded, arm64_image::Header)> {
    let size = src.kernel_size("Image")?;
    // Enough to recognise an x86 bzImage (its "HdrS" sits at 0x202) too.
    let mut head = [0u8; 0x400];
    let n = head.len().min(size as usize);
    src.kernel_head(&mut head[..n])?;
    if gzip::is_gzip(&head[..n]) {
        return load_gzip_kernel(src, size, min_base, ram_end);
    }
    let image = arm64_image::Header::parse(&head[..n], size)?;
    let base = place(&image, min_base, ram_end)?;
    // SAFETY: [base, base + image_size) is RAM above the firmware's area,
    // checked above, and nothing else refers to it.
    src.load_kernel(unsafe { ram_slice(base, size) })?;
    Ok((Loaded { base, size }, image))
}

/// The most a gzip'd kernel may inflate to. The Image format sets no
/// limit; Debian's arm64 Image is about 35 MB, and RAM below the
/// compressed copy bounds it further.
const MAX_INFLATED: u64 = 512 << 20;

/// A gzip'd Image (Debian's arm64 `vmlinuz`): the file is read to the top
/// of RAM, inflated to the 2 MiB boundary the Image starts from, and moved
/// up by its text_offset when that is not 0 (only kernels before 5.x).
/// Where `image` runs: its load address at or above `min_base`, with
/// all of its `image_size` below `ram_end`.
fn place(image: &arm64_image::Header, min_base: u64, ram_end: u64) -> Result<u64> {
    Ok(image
        .load_address(min_base)
        .filter(|b| {
            b.checked_add(image.image_size)
                .is_some_and(|e| e <= ram_end)
        })
        .ok_or("the kernel does not fit in RAM")?)
}

fn load_gzip_kernel(
    src: &mut impl payload::Source,
    size: u64,
    min_base: u64,
    ram_end: u64,
) -> Result<(Loaded, arm64_image::Header)> {
    let region = min_base.next_multiple_of(arm64_image::BASE_ALIGN);
    let tmp = ram_end
        .checked_sub(size)
        .map(|t| t & !(efi::PAGE_SIZE - 1))
        .filter(|&t| t > region)
        .ok_or("the gzip'd kernel does not fit in RAM")?;
    let (made, image) = {
        // SAFETY: [tmp, tmp + size) is RAM below ram_end and above the
        // region the Image goes to, which is above the firmware; nothing
        // refers to it.
        let gz = unsafe { ram_slice(tmp, size) };
        src.load_kernel(gz)?;
        let room = (tmp - region).min(MAX_INFLATED);
        // SAFETY: [region, region + room) is RAM above the firmware and
        // below the compressed copy (room ends at tmp at most).
        let out = unsafe { ram_slice(region, room) };
        let made = gzip::inflate(gz, out).map_err(|e| hotstub::err!("kernel: {e}"))?;
        let head = &out[..made.min(0x400)];
        (made as u64, arm64_image::Header::parse(head, made as u64)?)
    };
    let base = place(&image, min_base, ram_end)?;
    if base != region {
        // SAFETY: [region, base + made) is RAM below ram_end (base +
        // image_size is, and image_size covers the file); the compressed
        // copy is no longer needed.
        let span = unsafe { ram_slice(region, base - region + made) };
        span.copy_within(..made as usize, (base - region) as usize);
    }
    // Linux starts with its caches off (booting.rst): what the CPU wrote
    // must be in memory.
    super::mmu::clean_to_poc(base, made);
    Ok((Loaded { base, size: made }, image))
}

pub(super) fn load_initrd(
    src: &mut impl payload::Source,
    after: u64,
    ram_end: u64,
) -> Result<Option<Loaded>> {
    let size = src.initrd_size();
    if size == 0 {
        return Ok(None);
    }
    let base = after.next_multiple_of(efi::PAGE_SIZE);
    if base + size > ram_end {
        return Err("the initrd does not fit in RAM".into());
    }
    // SAFETY: [base, base + size) is RAM above the kernel, checked above.
    src.load_initrd(unsafe { ram_slice(base, size) })?;
    Ok(Some(Loaded { base, size }))
}

pub(super) fn read_cmdline(src: &mut impl payload::Source) -> Result<String> {
    // Linux arm64's COMMAND_LINE_SIZE is 2048 (asm/setup.h); anything much
    // larger is a broken VMM, not a command line.
    let text = src.cmdline(4096)?;
    Ok(String::from_utf8(text).map_err(|_| "the kernel command line is not UTF-8")?)
}
