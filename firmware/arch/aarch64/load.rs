//! Loading what Linux needs on virt from a payload source: the Image at its
//! 2 MiB aligned place above the firmware, the initrd behind it, the
//! command line.

use alloc::string::String;
use hotstub::boot::pipeline::Result;
use hotstub::boot::{arm64_image, efi, payload};

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
    let image = arm64_image::Header::parse(&head[..n], size)?;
    let base = image
        .load_address(min_base)
        .filter(|b| {
            b.checked_add(image.image_size)
                .is_some_and(|e| e <= ram_end)
        })
        .ok_or("the kernel does not fit in RAM")?;
    // SAFETY: [base, base + image_size) is RAM above the firmware's area,
    // checked above, and nothing else refers to it.
    src.load_kernel(unsafe { ram_slice(base, size) })?;
    Ok((Loaded { base, size }, image))
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
