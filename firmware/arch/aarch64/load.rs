//! Loading what Linux needs on virt over fw_cfg: the Image at its 2 MiB
//! aligned place above the firmware, the initrd behind it, the command line,
//! and the VMM's vCPU policy.

use super::*;

/// One loaded item in RAM.
pub(super) struct Loaded {
    pub base: u64,
    pub size: u64,
}

pub(super) fn load_kernel(
    fw: &mut FwCfg<hw::FwCfgMmio>,
    min_base: u64,
    ram_end: u64,
) -> Result<(Loaded, arm64_image::Header)> {
    let size = payload::kernel_size(fw, "Image")?;
    // Enough to recognise an x86 bzImage (its "HdrS" sits at 0x202) too.
    let mut head = [0u8; 0x400];
    let n = head.len().min(size as usize);
    payload::kernel_head(fw, &mut head[..n])?;
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
    payload::load_kernel(fw, unsafe { ram_slice(base, size) })?;
    Ok((Loaded { base, size }, image))
}

pub(super) fn load_initrd(
    fw: &mut FwCfg<hw::FwCfgMmio>,
    after: u64,
    ram_end: u64,
) -> Result<Option<Loaded>> {
    let size = payload::initrd_size(fw);
    if size == 0 {
        return Ok(None);
    }
    let base = align_up(after, efi::PAGE_SIZE);
    if base + size > ram_end {
        return Err("the initrd does not fit in RAM".into());
    }
    // SAFETY: [base, base + size) is RAM above the kernel, checked above.
    payload::load_initrd(fw, unsafe { ram_slice(base, size) })?;
    Ok(Some(Loaded { base, size }))
}

/// The possible vCPUs and the VMM's policy of which may come online: the fw_cfg
/// file `opt/org.hotstub/enabled-cpus` with a Linux-style CPU list (indices
/// in DT order); without it every vCPU is enabled. A malformed list is an
/// error rather than a silent fallback.
pub(super) fn cpu_model(
    fw: &mut FwCfg<hw::FwCfgMmio>,
    files: &fw_cfg::Directory,
    mpidrs: &[u64],
) -> Result<CpuModel> {
    use hotstub::platform::cpulist;
    let mut model = CpuModel::from_mpidrs(mpidrs);
    let text = match files.find(cpulist::FW_CFG_FILE) {
        // A list of every CPU QEMU can model is a few KiB at most.
        Some(file) if file.size > 16384 => {
            hotstub::bail!(
                "{}: {} bytes is not a CPU list",
                cpulist::FW_CFG_FILE,
                file.size
            );
        }
        Some(file) => {
            let mut text = alloc::vec![0u8; file.size as usize];
            fw.read(file.key, &mut text)?;
            Some(text)
        }
        None => None,
    };
    cpulist::apply_policy(&mut model, text.as_deref())
        .map_err(|e| hotstub::err!("{}: {e}", cpulist::FW_CFG_FILE))?;
    Ok(model)
}

pub(super) fn read_cmdline(fw: &mut FwCfg<hw::FwCfgMmio>) -> Result<String> {
    // Linux arm64's COMMAND_LINE_SIZE is 2048 (asm/setup.h); anything much
    // larger is a broken VMM, not a command line.
    let text = payload::cmdline(fw, 4096)?;
    Ok(String::from_utf8(text).map_err(|_| "the kernel command line is not UTF-8")?)
}
