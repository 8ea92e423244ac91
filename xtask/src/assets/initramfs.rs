//! The test initramfs: a static busybox, tests/guest/init, the virtual
//! clock reader (tests/guest/vclock) and the kernel modules, in the cpio
//! "newc" format the kernel unpacks.

use super::*;

/// Static busybox for `arch`: the host's busybox-static if it matches,
/// else the Debian package of that arch, cached.
pub fn busybox(arch: Arch) -> Result<PathBuf> {
    let native = output(Command::new("dpkg").arg("--print-architecture")).unwrap_or_default();
    if native.trim() == arch.deb() && crate::util::pkg_installed("busybox-static") {
        for p in ["/bin/busybox", "/usr/bin/busybox"] {
            if Path::new(p).is_file() {
                return Ok(PathBuf::from(p));
            }
        }
    }
    let dir = assets_dir(arch);
    let cached = dir.join("busybox");
    if cached.is_file() {
        return Ok(cached);
    }
    step(format!("fetching busybox-static for {}", arch.deb()));
    ensure_foreign_arch(arch).and_then(|changed| if changed { apt_update() } else { Ok(()) })?;
    let dl = dir.join("download-busybox");
    let deb = apt_download("busybox-static", arch, &dl)?;
    let x = dl.join("root");
    dpkg_extract(&deb, &x)?;
    let bin = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| x.join(p))
        .find(|p| p.is_file())
        .ok_or("busybox-static package has no busybox binary")?;
    let data = std::fs::read(&bin).ctx("read busybox")?;
    write_atomic(&cached, &data)?;
    std::fs::remove_dir_all(&dl).ctx("clean download dir")?;
    Ok(cached)
}

/// tests/guest/vclock built for `arch` (a static Linux executable).
fn vclock(arch: Arch) -> Result<PathBuf> {
    crate::build::ensure_rust_targets(&[arch])?;
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root())
            .args(["build", "-q", "--release", "-p", "guest-vclock"])
            .args(["--target", arch.rust_target()]),
    )
    .map_err(|e| format!("tests/guest/vclock does not build: {e}"))?;
    Ok(target_dir()
        .join(arch.rust_target())
        .join("release")
        .join("hotstub-vclock"))
}

// ---- initramfs ----------------------------------------------------------

/// The archive in the cpio "newc" format the kernel unpacks
/// (Documentation/driver-api/early-userspace/buffer-format.rst), built in
/// memory with the `cpio` crate's newc writer.
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    pub fn new() -> Self {
        Cpio {
            buf: Vec::new(),
            ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let ino = self.ino;
        self.ino += 1;
        // uid, gid and mtime stay 0 (the builder's defaults), so the
        // archive is reproducible.
        let mut w = cpio::newc::Builder::new(name)
            .ino(ino)
            .mode(mode)
            .rdev_major(rdev.0)
            .rdev_minor(rdev.1)
            .write(&mut self.buf, data.len() as u32);
        // Writing into a Vec cannot fail.
        w.write_all(data).expect("cpio entry into memory");
        w.finish().expect("cpio entry into memory");
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }
    pub fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, target.as_bytes(), (0, 0));
    }
    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }

    pub fn finish(mut self) -> Vec<u8> {
        cpio::newc::trailer(&mut self.buf).expect("cpio trailer into memory");
        // Conventional 512-byte block padding.
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }
}

pub fn init_script() -> PathBuf {
    root().join("tests").join("guest").join("init")
}

/// Builds (always afresh: it takes well under a second) the test initramfs
/// for `arch`: busybox, tests/guest/init, the vclock reader, the modules.
pub fn initramfs(arch: Arch, k: &Kernel) -> Result<PathBuf> {
    let bb = busybox(arch)?;
    let init = std::fs::read(init_script()).ctx(format!("read {}", init_script().display()))?;
    let mut c = Cpio::new();
    for d in [
        "bin",
        "sbin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "mnt",
        "proc",
        "root",
        "run",
        "sys",
        "tmp",
        "usr",
        "usr/bin",
        "usr/sbin",
    ] {
        c.dir(d);
    }
    // /dev/console (5,1) must exist before init runs so that init has its
    // stdin/stdout (Documentation/admin-guide/devices.txt).
    c.chardev("dev/console", 5, 1);
    c.file(
        "bin/busybox",
        &std::fs::read(&bb).ctx("read busybox")?,
        0o755,
    );
    c.symlink("bin/sh", "busybox");
    c.file("init", &init, 0o755);
    c.file(
        "bin/hotstub-vclock",
        &std::fs::read(vclock(arch)?).ctx("read hotstub-vclock")?,
        0o755,
    );
    c.dir("lib/modules/hotstub");
    let mut mods: Vec<PathBuf> = std::fs::read_dir(&k.modules)
        .ctx("read modules dir")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("ko" | "deps")))
        .collect();
    mods.sort();
    for m in mods {
        let name = m.file_name().unwrap().to_string_lossy().into_owned();
        c.file(
            &format!("lib/modules/hotstub/{name}"),
            &std::fs::read(&m).ctx("read module")?,
            0o644,
        );
    }
    c.file("etc/hotstub-kernel", k.version.as_bytes(), 0o644);
    let raw = c.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).ctx("gzip")?;
    let data = gz.finish().ctx("gzip")?;
    let out = assets_dir(arch).join(format!("initramfs-{}.cpio.gz", k.version));
    write_atomic(&out, &data)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_newc_layout() {
        let mut c = Cpio::new();
        c.file("init", b"abc", 0o755);
        c.chardev("dev/console", 5, 1);
        let b = c.finish();
        // magic, ino 1, mode 0100755, uid, gid, nlink 1, mtime, size 3,
        // dev 0:0, rdev 0:0, name size 5, check.
        let hdr = "070701\
                   00000001000081ed000000000000000000000001000000000000000300000000\
                   00000000000000000000000000000005\
                   00000000";
        assert_eq!(&b[..110], hdr.as_bytes());
        // header 110 bytes + "init\0" padded to 116, then data.
        assert_eq!(&b[116..119], b"abc");
        // The console's entry follows at 120 and carries its device number.
        assert_eq!(&b[120..126], b"070701");
        assert_eq!(&b[120 + 78..120 + 94], b"0000000500000001");
        assert!(b.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(b.len() % 512, 0);
    }
}
