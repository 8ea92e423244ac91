//! Debian's generic x86 kernel of the same version as the cloud one, for
//! the one case whose check needs what the cloud kernel leaves out:
//! CONFIG_X86_MPPARSE, without which Linux ignores the MP table a machine
//! without ACPI gets (`-M microvm,acpi=off`, tests/noacpi.rs). Only its
//! bzImage and config are kept; the guest's initramfs (built for the cloud
//! kernel) serves it, its modules unused.

use super::apt::apt_download;
use super::{assets_dir, find_kernel_pkg};
use crate::build::Arch;
use crate::util::{run, step, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The generic kernel's bzImage and config.
pub struct Generic {
    pub image: PathBuf,
    pub config: PathBuf,
}

/// The generic kernel beside the cloud kernel's version, fetched on first
/// use (one package download, two files unpacked).
pub fn generic_kernel(arch: Arch) -> Result<Generic> {
    let (cloud, _) = find_kernel_pkg(arch)?;
    // linux-image-VER-cloud-ARCH-unsigned -> linux-image-VER-ARCH-unsigned
    let pkg = cloud.replacen("-cloud-", "-", 1);
    let ver = pkg
        .strip_prefix("linux-image-")
        .and_then(|s| s.strip_suffix("-unsigned"))
        .unwrap_or(&pkg)
        .to_string();
    let dir = assets_dir(arch).join(format!("kernel-generic-{ver}"));
    let k = Generic {
        image: dir.join("bzImage"),
        config: dir.join("config"),
    };
    if k.image.is_file() && k.config.is_file() {
        return Ok(k);
    }
    let dl = assets_dir(arch).join("download-generic");
    step(format!(
        "fetching {pkg} for its bzImage and config (the MP table check)"
    ));
    let deb = apt_download(&pkg, arch, &dl)?;
    let x = dl.join("root");
    std::fs::create_dir_all(&x).ctx(format!("mkdir {}", x.display()))?;
    // Only ./boot of the package's data archive: its modules are most of
    // its size and not needed.
    let mut tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .ctx("dpkg-deb --fsys-tarfile")?;
    let out = tar.stdout.take().ok_or("dpkg-deb gave no output")?;
    run(Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&x)
        .args(["--wildcards", "./boot/*"])
        .stdin(out))?;
    let st = tar.wait().ctx("dpkg-deb --fsys-tarfile")?;
    if !st.success() {
        return Err(format!("dpkg-deb --fsys-tarfile {}: {st}", deb.display()));
    }
    std::fs::create_dir_all(&dir).ctx(format!("mkdir {}", dir.display()))?;
    let boot = x.join("boot");
    std::fs::copy(boot.join(format!("config-{ver}")), &k.config).ctx("copy config")?;
    std::fs::copy(boot.join(format!("vmlinuz-{ver}")), &k.image).ctx("copy vmlinuz")?;
    std::fs::remove_dir_all(&dl).ctx("clean download dir")?;
    step(format!("generic kernel {ver} ready: {}", k.image.display()));
    Ok(k)
}
