//! Guest assets, fetched and built by xtask and cached under target/assets/:
//! a Debian 6.12 cloud kernel per arch, the kernel modules the tests need and
//! a busybox initramfs running tests/guest/init.

mod apt;
mod disks;
mod generic;
pub mod grub;
mod initramfs;

use crate::build::Arch;
use crate::util::{output, root, run, step, target_dir, write_atomic, Context, Result};
use apt::{apt_download, apt_update, dpkg_extract, ensure_foreign_arch};
pub use apt::{ensure_backports_source, host_mirror};
pub use disks::{bench_disk, debian_cmdline, debian_recovery_id, disk_image, BenchDisk, DiskImage};
pub use generic::generic_kernel;
use initramfs::initramfs;
pub use initramfs::{busybox, Cpio};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Modules the guest init may load (virtio disk, ACPI power button, evdev for
/// busybox acpid, virtio-mem for the memory tests, the virtio-iommu
/// driver, virtio-mmio for x86 microvm's transports: modular in Debian's
/// x86 cloud kernel, built in on arm64). Built-in ones are skipped.
const MODULES: &[&str] = &[
    "virtio_blk",
    "virtio_mmio",
    "button",
    "evdev",
    "virtio_mem",
    "virtio_iommu",
    "tpm_tis",
];

/// Modules some kernels of the matrix have and others lack (arm64's Debian
/// kernel has no pvpanic): there is no .deps for them where they are
/// missing, and the tests that need them run where they exist.
const OPTIONAL_MODULES: &[&str] = &["pvpanic_mmio"];

/// What the module stamp records: a cache made for another module list is
/// fetched again.
fn module_stamp() -> String {
    MODULES
        .iter()
        .chain(OPTIONAL_MODULES)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kernel series the project targets: Linux 6.11+ has arm64 vCPU hotplug
/// and `/sys/devices/system/cpu/enabled`; Debian ships 6.12 in backports.
const KERNEL_SERIES: &str = "6.12";

/// Which guest kernel: bookworm-backports' 6.12, or Debian unstable's
/// current cloud kernel (fetched through a private apt configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flavor {
    Lts,
    Newest,
}

impl Flavor {
    pub const ALL: [Flavor; 2] = [Flavor::Lts, Flavor::Newest];

    pub fn parse(s: &str) -> Result<Flavor> {
        match s {
            "6.12" | "lts" | "backports" => Ok(Flavor::Lts),
            "newest" | "unstable" => Ok(Flavor::Newest),
            _ => Err(format!(
                "unknown kernel version `{s}` (6.12, or newest: Debian unstable's)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavor::Lts => "lts",
            Flavor::Newest => "newest",
        }
    }
}

pub struct Kernel {
    /// x86: bzImage; arm64: raw Image.
    pub image: PathBuf,
    /// Directory with NAME.ko and NAME.deps for each needed module.
    pub modules: PathBuf,
    pub version: String,
}

pub fn assets_dir(arch: Arch) -> PathBuf {
    target_dir().join("assets").join(arch.name())
}

/// Package name of the newest 6.12 cloud kernel apt offers for `arch`.
fn newest_kernel_pkg(arch: Arch) -> Result<Option<(String, u32)>> {
    let pat = format!(
        "^linux-image-{}\\.[0-9]+\\+deb[0-9]+-cloud-{}-unsigned$",
        KERNEL_SERIES.replace('.', "\\."),
        arch.deb()
    );
    let out = output(Command::new("apt-cache").args(["search", "--names-only", &pat]))?;
    let mut best: Option<(String, u32)> = None;
    for l in out.lines() {
        let name = l.split_whitespace().next().unwrap_or("");
        let rest = match name.strip_prefix(&format!("linux-image-{KERNEL_SERIES}.")) {
            Some(r) => r,
            None => continue,
        };
        let num: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(n) = num.parse::<u32>() {
            if best.as_ref().is_none_or(|(_, b)| n > *b) {
                best = Some((name.to_string(), n));
            }
        }
    }
    Ok(best)
}

/// Ensures apt can see the kernel package for `arch`: adds the backports
/// source and the foreign arch if needed, refreshing the index once.
fn find_kernel_pkg(arch: Arch) -> Result<(String, u32)> {
    if let Some(k) = newest_kernel_pkg(arch)? {
        return Ok(k);
    }
    step(format!(
        "no {KERNEL_SERIES} cloud kernel for {} in the apt index; configuring apt",
        arch.deb()
    ));
    let a = ensure_backports_source()?;
    let b = ensure_foreign_arch(arch)?;
    let _ = (a, b);
    apt_update()?;
    newest_kernel_pkg(arch)?.ok_or_else(|| {
        format!(
            "apt offers no linux-image-{KERNEL_SERIES}.*-cloud-{}-unsigned (bookworm-backports)",
            arch.deb()
        )
    })
}

/// Returns the cached kernel for `arch`, fetching it on first use.
/// Debian's package `pkg` built for `arch`, downloaded and unpacked at
/// `dest` (not installed: a foreign architecture's tools, such as the
/// arm64 GRUB modules on an amd64 host).
pub fn fetch_unpacked(pkg: &str, arch: Arch, dest: &Path) -> Result<()> {
    if ensure_foreign_arch(arch)? {
        apt_update()?;
    }
    step(format!(
        "fetching {pkg}:{} (unpacked in {})",
        arch.deb(),
        dest.display()
    ));
    let deb = apt_download(pkg, arch, &dest.with_extension("download"))?;
    dpkg_extract(&deb, dest)
}

pub fn kernel(arch: Arch, flavor: Flavor) -> Result<Kernel> {
    let dir = assets_dir(arch);
    let current = dir.join(match flavor {
        Flavor::Lts => "kernel-current".to_string(),
        Flavor::Newest => "kernel-current-newest".to_string(),
    });
    if let Ok(ver) = std::fs::read_to_string(&current) {
        let ver = ver.trim().to_string();
        let k = kernel_paths(arch, &ver);
        let stamp = std::fs::read_to_string(k.modules.join("complete")).unwrap_or_default();
        if k.image.is_file() && stamp == module_stamp() {
            return Ok(k);
        }
    }
    let dl = dir.join(format!("download-{}", flavor.name()));
    let (ver, vmlinuz, config, moddir) = fetch_kernel_root(arch, flavor, &dl)?;
    let k = kernel_paths(arch, &ver);
    let kdir = k.image.parent().unwrap().to_path_buf();
    if kdir.exists() {
        std::fs::remove_dir_all(&kdir).ctx("clean kernel dir")?;
    }
    std::fs::create_dir_all(&k.modules).ctx("mkdir modules")?;
    let raw = std::fs::read(&vmlinuz).ctx(format!("read {}", vmlinuz.display()))?;
    let img = match arch {
        Arch::X86_64 => {
            // bzImage: "HdrS" at 0x202 (Documentation/arch/x86/boot.rst).
            if raw.get(0x202..0x206) != Some(b"HdrS") {
                return Err(format!("{} is not a bzImage", vmlinuz.display()));
            }
            raw
        }
        Arch::Aarch64 => arm64_image(&raw).map_err(|e| format!("{}: {e}", vmlinuz.display()))?,
    };
    write_atomic(&k.image, &img)?;
    let _ = std::fs::copy(&config, kdir.join("config"));
    extract_modules(&moddir, &k.modules, MODULES, OPTIONAL_MODULES)?;
    std::fs::write(k.modules.join("complete"), module_stamp()).ctx("write stamp")?;
    write_atomic(&current, ver.as_bytes())?;
    std::fs::remove_dir_all(&dl).ctx("clean download dir")?;
    step(format!("kernel {ver} ready: {}", k.image.display()));
    Ok(k)
}

/// Downloads and unpacks the kernel package(s) of `flavor` into `dl`:
/// (version, vmlinuz, config, modules directory).
fn fetch_kernel_root(
    arch: Arch,
    flavor: Flavor,
    dl: &Path,
) -> Result<(String, PathBuf, PathBuf, PathBuf)> {
    let x = dl.join("kernel-root");
    Ok(match flavor {
        Flavor::Lts => {
            let (pkg, _) = find_kernel_pkg(arch)?;
            let ver = pkg
                .strip_prefix("linux-image-")
                .and_then(|s| s.strip_suffix("-unsigned"))
                .unwrap_or(&pkg)
                .to_string();
            step(format!("fetching kernel {pkg} for {}", arch.name()));
            let deb = apt_download(&pkg, arch, dl)?;
            dpkg_extract(&deb, &x)?;
            (
                ver.clone(),
                x.join("boot").join(format!("vmlinuz-{ver}")),
                x.join("boot").join(format!("config-{ver}")),
                x.join("lib/modules").join(&ver),
            )
        }
        Flavor::Newest => {
            let debs = crate::unstable::download_kernel(arch, dl)?;
            if x.exists() {
                std::fs::remove_dir_all(&x).ctx(format!("clean {}", x.display()))?;
            }
            for deb in &debs.files {
                run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&x))?;
            }
            // Debian's split kernel packages (linux-binary, linux-modules,
            // linux-base) put everything under usr/lib/modules/<version>.
            let m = x.join("usr/lib/modules").join(&debs.version);
            (debs.version.clone(), m.join("vmlinuz"), m.join("config"), m)
        }
    })
}

/// Modules an L1 guest needs to run KVM for a nested hypervisor (the
/// cloud-hypervisor cases): on x86 KVM is modular in Debian's cloud kernel
/// (CONFIG_KVM=m, CONFIG_KVM_AMD=m; QEMU's TCG `-cpu max` offers SVM, not
/// VMX), on arm64 it is built in (CONFIG_KVM=y) and nothing is loaded.
fn nested_modules_wanted(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &["kvm_amd"],
        Arch::Aarch64 => &[],
    }
}

/// The KVM modules (NAME.ko, NAME.deps as for `Kernel::modules`) of the
/// kernel `k` for an L1 guest, kept in their own directory next to the
/// test modules so that the test modules' cache stays valid; fetched
/// once, by unpacking the kernel package again.
pub fn nested_modules(arch: Arch, flavor: Flavor, k: &Kernel) -> Result<PathBuf> {
    let out = k.modules.with_file_name("modules-nested");
    let wanted = nested_modules_wanted(arch);
    let stamp = wanted.join(" ");
    let done = out.join("complete");
    if std::fs::read_to_string(&done).is_ok_and(|s| s == stamp) {
        return Ok(out);
    }
    if wanted.is_empty() {
        std::fs::create_dir_all(&out).ctx("mkdir nested modules")?;
        std::fs::write(&done, stamp).ctx("write stamp")?;
        return Ok(out);
    }
    let dl = assets_dir(arch).join(format!("download-nested-{}", flavor.name()));
    let (ver, _, _, moddir) = fetch_kernel_root(arch, flavor, &dl)?;
    if ver != k.version {
        return Err(format!(
            "kernel package is now {ver}, the cached kernel {}: run `cargo xtask assets` again",
            k.version
        ));
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).ctx("mkdir nested modules")?;
    extract_modules(&moddir, &out, wanted, &[])?;
    std::fs::write(&done, stamp).ctx("write stamp")?;
    std::fs::remove_dir_all(&dl).ctx("clean download dir")?;
    Ok(out)
}

fn kernel_paths(arch: Arch, ver: &str) -> Kernel {
    let kdir = assets_dir(arch).join(format!("kernel-{ver}"));
    Kernel {
        image: kdir.join(match arch {
            Arch::X86_64 => "bzImage",
            Arch::Aarch64 => "Image",
        }),
        modules: kdir.join("modules"),
        version: ver.to_string(),
    }
}

/// Debian's arm64 vmlinuz is a gzip-compressed `Image`; the firmware (like
/// QEMU's own loader) wants the raw Image with its header.
fn arm64_image(raw: &[u8]) -> Result<Vec<u8>> {
    let img = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(raw), &mut out)
            .ctx("gunzip")?;
        out
    } else {
        raw.to_vec()
    };
    // arm64 Image header: magic "ARM\x64" at offset 56
    // (Documentation/arch/arm64/booting.rst).
    if img.get(56..60) != Some(b"ARM\x64") {
        return Err("not an arm64 Image (no ARM\\x64 magic after decompression)".into());
    }
    Ok(img)
}

fn decompress_ko(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).ctx(format!("read {}", path.display())),
        Some(t) => {
            let out = Command::new(t)
                .args(["-dc"])
                .arg(path)
                .output()
                .ctx(format!("cannot run {t} (install xz-utils/zstd)"))?;
            if !out.status.success() {
                return Err(format!("{t} -dc {} failed", path.display()));
            }
            Ok(out.stdout)
        }
    }
}

/// Module file name stem: "virtio_blk.ko.xz" -> "virtio_blk". Linux treats
/// '-' and '_' alike in module names.
fn mod_name(file: &str) -> Option<String> {
    let i = file.find(".ko")?;
    Some(file[..i].replace('-', "_"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// The `depends=` entry of a module's .modinfo section.
fn modinfo_depends(ko: &[u8]) -> Vec<String> {
    let key = b"depends=";
    for (i, w) in ko.windows(key.len()).enumerate() {
        // Entries in .modinfo are NUL-separated; require a NUL before.
        if w == key && i > 0 && ko[i - 1] == 0 {
            let rest = &ko[i + key.len()..];
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            return String::from_utf8_lossy(&rest[..end])
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('-', "_"))
                .collect();
        }
    }
    Vec::new()
}

/// Copies the wanted modules (decompressed) and writes NAME.deps files with
/// the insmod order (dependencies first, then the module itself). The
/// package has no modules.dep (depmod runs at install time), so the
/// dependencies come from each module's modinfo.
fn extract_modules(moddir: &Path, out: &Path, wanted: &[&str], optional: &[&str]) -> Result<()> {
    let builtin: Vec<String> = std::fs::read_to_string(moddir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit('/').next().and_then(mod_name))
        .collect();
    let mut files = Vec::new();
    walk(&moddir.join("kernel"), &mut files);
    let mut index: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        if let Some(n) = f.file_name().and_then(|n| n.to_str()).and_then(mod_name) {
            index.insert(n, f);
        }
    }
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        builtin: &[String],
        out: &Path,
        order: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Result<()> {
        if order.iter().any(|o| o == name) || builtin.iter().any(|b| b == name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(format!("module dependency cycle at {name}"));
        }
        let src = index
            .get(name)
            .ok_or_else(|| format!("module {name} neither built in nor in the kernel package"))?;
        let ko = decompress_ko(src)?;
        stack.push(name.to_string());
        for d in modinfo_depends(&ko) {
            visit(&d, index, builtin, out, order, stack)?;
        }
        stack.pop();
        std::fs::write(out.join(format!("{name}.ko")), &ko).ctx("write module")?;
        order.push(name.to_string());
        Ok(())
    }
    for m in wanted.iter().chain(optional) {
        let optional = optional.contains(m);
        if optional && !index.contains_key(*m) && !builtin.iter().any(|b| b == m) {
            step(format!("  module {m}: not in this kernel"));
            continue;
        }
        let mut order = Vec::new();
        visit(m, &index, &builtin, out, &mut order, &mut Vec::new())?;
        // An empty .deps means built in: the init then loads nothing.
        std::fs::write(out.join(format!("{m}.deps")), order.join("\n") + "\n").ctx("write deps")?;
        step(format!(
            "  module {m}: {}",
            if order.is_empty() {
                "built in".to_string()
            } else {
                format!("load {}", order.join(", "))
            }
        ));
    }
    Ok(())
}

/// Kernel + initramfs for `arch`, ready for QEMU.
pub struct Guest {
    pub kernel: Kernel,
    pub initrd: PathBuf,
}

pub fn guest(arch: Arch, flavor: Flavor) -> Result<Guest> {
    let kernel = kernel(arch, flavor)?;
    let initrd = initramfs(arch, &kernel)?;
    step(format!(
        "guest assets for {}: kernel {} ({}), initramfs {}",
        arch.name(),
        kernel.version,
        kernel.image.display(),
        initrd.display()
    ));
    Ok(Guest { kernel, initrd })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_and_depends() {
        assert_eq!(mod_name("virtio-blk.ko.xz").as_deref(), Some("virtio_blk"));
        assert_eq!(mod_name("evdev.ko").as_deref(), Some("evdev"));
        let ko = b"junk\0license=GPL\0depends=virtio,virtio_ring\0vermagic=x\0";
        assert_eq!(modinfo_depends(ko), vec!["virtio", "virtio_ring"]);
        assert!(modinfo_depends(b"\0depends=\0").is_empty());
    }
}
