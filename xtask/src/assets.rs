//! Guest assets, fetched and built by xtask and cached under target/assets/:
//! a Debian 6.12 cloud kernel per arch, the kernel modules the tests need and
//! a busybox initramfs running tests/guest/init.

use crate::build::Arch;
use crate::util::{output, root, run, step, target_dir, write_atomic, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Modules the guest init may load (virtio disk, ACPI power button, evdev for
/// busybox acpid, virtio-mem for the memory tests). Built-in ones are
/// skipped.
const MODULES: &[&str] = &["virtio_blk", "button", "evdev", "virtio_mem"];

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

fn apt_sources_text() -> String {
    let mut all = String::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        v.sort();
        files.extend(v.into_iter().filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("list" | "sources")
            )
        }));
    }
    for f in files {
        if let Ok(s) = std::fs::read_to_string(&f) {
            all.push_str(&format!("\n#FILE {}\n{s}\n", f.display()));
        }
    }
    all
}

/// One deb822 stanza as key -> value (continuation lines joined).
fn deb822_stanzas(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            last = None;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(k) = &last {
                let v = cur.entry(k.clone()).or_default();
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            cur.insert(k.clone(), v.trim().to_string());
            last = Some(k);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Makes sure apt knows the bookworm-backports suite, reusing the mirror and
/// key of the configured bookworm entry (never a hard-coded host).
pub fn ensure_backports_source() -> Result<bool> {
    let text = apt_sources_text();
    let Some(stanza) = backports_stanza(&text)? else {
        return Ok(false);
    };
    let path = Path::new("/etc/apt/sources.list.d/hotstub-backports.sources");
    if !crate::util::is_root() {
        return Err(format!(
            "apt has no bookworm-backports source; as root create {} with\n{stanza}",
            path.display()
        ));
    }
    step(format!(
        "adding apt source {} (bookworm-backports, same mirror as bookworm):\n{stanza}",
        path.display()
    ));
    std::fs::write(path, stanza).ctx(format!("write {}", path.display()))?;
    Ok(true)
}

/// The deb822 stanza that adds bookworm-backports, derived from the apt
/// sources `text`; None if backports is already configured.
fn backports_stanza(text: &str) -> Result<Option<String>> {
    let has = text.lines().any(|l| {
        let l = l.trim();
        !l.starts_with('#') && l.split_whitespace().any(|w| w == "bookworm-backports")
    });
    if has {
        return Ok(None);
    }
    let (uris, signed) = bookworm_source(text)?;
    let mut s = format!("Types: deb\nURIs: {uris}\nSuites: bookworm-backports\nComponents: main\n");
    if let Some(sb) = signed {
        s.push_str(&format!("Signed-By: {sb}\n"));
    }
    Ok(Some(s))
}

/// The host's configured mirror for the Debian archive: the URIs and
/// Signed-By of its bookworm entry in the apt sources `text`.
pub fn bookworm_source(text: &str) -> Result<(String, Option<String>)> {
    // deb822 entries first (Debian 12 default), then one-line sources.list.
    let mut uris = None;
    let mut signed = None;
    for st in deb822_stanzas(text) {
        let suites = st.get("suites").cloned().unwrap_or_default();
        if suites.split_whitespace().any(|s| s == "bookworm") {
            uris = st.get("uris").cloned();
            signed = st.get("signed-by").cloned();
            break;
        }
    }
    if uris.is_none() {
        for l in text.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.first() != Some(&"deb") {
                continue;
            }
            let mut i = 1;
            let mut sb = None;
            if w.get(1).is_some_and(|s| s.starts_with('[')) {
                while i < w.len() {
                    let o = w[i].trim_matches(|c| c == '[' || c == ']');
                    if let Some(v) = o.strip_prefix("signed-by=") {
                        sb = Some(v.to_string());
                    }
                    let end = w[i].ends_with(']');
                    i += 1;
                    if end {
                        break;
                    }
                }
            }
            if w.get(i + 1) == Some(&"bookworm") {
                uris = w.get(i).map(|s| s.to_string());
                signed = sb;
                break;
            }
        }
    }
    let uris = uris.ok_or("no apt source for Debian bookworm found in /etc/apt")?;
    Ok((uris, signed))
}

/// The host's mirror (see `bookworm_source`), read from /etc/apt.
pub fn host_mirror() -> Result<(String, Option<String>)> {
    bookworm_source(&apt_sources_text())
}

/// arm64 packages need the foreign architecture registered with dpkg.
fn ensure_foreign_arch(arch: Arch) -> Result<bool> {
    let native = output(Command::new("dpkg").arg("--print-architecture"))?;
    if native.trim() == arch.deb() {
        return Ok(false);
    }
    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if foreign.lines().any(|l| l.trim() == arch.deb()) {
        return Ok(false);
    }
    if !crate::util::is_root() {
        return Err(format!(
            "dpkg does not know architecture {0}; run: sudo dpkg --add-architecture {0} && sudo apt-get update",
            arch.deb()
        ));
    }
    run(Command::new("dpkg").args(["--add-architecture", arch.deb()]))?;
    Ok(true)
}

fn apt_update() -> Result<()> {
    run(Command::new("apt-get").arg("update"))
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

/// Downloads a Debian package for `arch` into `dir` and returns the .deb.
fn apt_download(pkg: &str, arch: Arch, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).ctx(format!("mkdir {}", dir.display()))?;
    let spec = format!("{pkg}:{}", arch.deb());
    // Listed for the log: which version apt will fetch, and from where.
    if let Ok(m) = output(Command::new("apt-cache").args(["madison", &spec])) {
        if let Some(first) = m.lines().next() {
            step(format!("apt-cache madison {spec}: {}", first.trim()));
        }
    }
    // The download directory belongs to whoever runs xtask, which apt's
    // unprivileged `_apt` user may not write.
    run(Command::new("apt-get").current_dir(dir).args([
        "-o",
        "APT::Sandbox::User=root",
        "download",
        &spec,
    ]))?;
    let prefix = format!("{pkg}_");
    let suffix = format!("_{}.deb", arch.deb());
    let mut found = None;
    for e in std::fs::read_dir(dir).ctx("read download dir")?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) && n.ends_with(&suffix) {
            found = Some(e.path());
        }
    }
    found.ok_or_else(|| format!("apt-get download {spec} left no .deb in {}", dir.display()))
}

fn dpkg_extract(deb: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).ctx(format!("clean {}", dest.display()))?;
    }
    std::fs::create_dir_all(dest).ctx(format!("mkdir {}", dest.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dest))
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
pub fn kernel(arch: Arch, flavor: Flavor) -> Result<Kernel> {
    let dir = assets_dir(arch);
    let current = dir.join(match flavor {
        Flavor::Lts => "kernel-current".to_string(),
        Flavor::Newest => "kernel-current-newest".to_string(),
    });
    if let Ok(ver) = std::fs::read_to_string(&current) {
        let ver = ver.trim().to_string();
        let k = kernel_paths(arch, &ver);
        // A cache made before a module joined MODULES is fetched again.
        let all = MODULES
            .iter()
            .all(|m| k.modules.join(format!("{m}.deps")).is_file());
        if k.image.is_file() && k.modules.join("complete").is_file() && all {
            return Ok(k);
        }
    }
    let dl = dir.join(format!("download-{}", flavor.name()));
    let x = dl.join("kernel-root");
    let (ver, vmlinuz, config, moddir) = match flavor {
        Flavor::Lts => {
            let (pkg, _) = find_kernel_pkg(arch)?;
            let ver = pkg
                .strip_prefix("linux-image-")
                .and_then(|s| s.strip_suffix("-unsigned"))
                .unwrap_or(&pkg)
                .to_string();
            step(format!("fetching kernel {pkg} for {}", arch.name()));
            let deb = apt_download(&pkg, arch, &dl)?;
            dpkg_extract(&deb, &x)?;
            (
                ver.clone(),
                x.join("boot").join(format!("vmlinuz-{ver}")),
                x.join("boot").join(format!("config-{ver}")),
                x.join("lib/modules").join(&ver),
            )
        }
        Flavor::Newest => {
            let debs = crate::unstable::download_kernel(arch, &dl)?;
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
    };
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
    extract_modules(&moddir, &k.modules)?;
    std::fs::write(k.modules.join("complete"), "").ctx("write stamp")?;
    write_atomic(&current, ver.as_bytes())?;
    std::fs::remove_dir_all(&dl).ctx("clean download dir")?;
    step(format!("kernel {ver} ready: {}", k.image.display()));
    Ok(k)
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
fn extract_modules(moddir: &Path, out: &Path) -> Result<()> {
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
    for m in MODULES {
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

// ---- initramfs ----------------------------------------------------------

/// Minimal writer for the cpio "newc" format the kernel unpacks
/// (Documentation/driver-api/early-userspace/buffer-format.rst).
struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Self {
        Cpio {
            buf: Vec::new(),
            ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let ino = self.ino;
        self.ino += 1;
        let namesz = name.len() + 1;
        let hdr = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{namesz:08x}{:08x}",
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime: fixed, so the archive is reproducible
            data.len(),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            0, // check
        );
        self.buf.extend_from_slice(hdr.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }
    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }
    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, target.as_bytes(), (0, 0));
    }
    fn chardev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
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
/// for `arch`: busybox, tests/guest/init, the modules.
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

    // Host names here are placeholders (the example.invalid TLD).
    #[test]
    fn backports_from_deb822() {
        let t = "Types: deb\n# comment\nURIs: http://archive.invalid/debian\nSuites: bookworm bookworm-updates\n\
                 Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                 Types: deb\nURIs: http://archive.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n";
        let s = backports_stanza(t).unwrap().unwrap();
        assert!(s.contains("URIs: http://archive.invalid/debian\n"));
        assert!(s.contains("Suites: bookworm-backports\n"));
        assert!(s.contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"));
        let with = format!("{t}\nTypes: deb\nURIs: x\nSuites: bookworm-backports\n");
        assert_eq!(backports_stanza(&with).unwrap(), None);
    }

    #[test]
    fn backports_from_one_line_list() {
        let t = "deb [arch=amd64 signed-by=/k.gpg] http://apt.invalid/debian bookworm main\n";
        let s = backports_stanza(t).unwrap().unwrap();
        assert!(s.contains("URIs: http://apt.invalid/debian\n"));
        assert!(s.contains("Signed-By: /k.gpg\n"));
        assert!(backports_stanza("deb http://other.invalid/ubuntu jammy main\n").is_err());
    }

    #[test]
    fn module_names_and_depends() {
        assert_eq!(mod_name("virtio-blk.ko.xz").as_deref(), Some("virtio_blk"));
        assert_eq!(mod_name("evdev.ko").as_deref(), Some("evdev"));
        let ko = b"junk\0license=GPL\0depends=virtio,virtio_ring\0vermagic=x\0";
        assert_eq!(modinfo_depends(ko), vec!["virtio", "virtio_ring"]);
        assert!(modinfo_depends(b"\0depends=\0").is_empty());
    }

    #[test]
    fn cpio_newc_layout() {
        let mut c = Cpio::new();
        c.file("init", b"abc", 0o755);
        let b = c.finish();
        assert!(b.starts_with(b"070701"));
        // header 110 bytes + "init\0" padded to 116, then data.
        assert_eq!(&b[116..119], b"abc");
        assert!(b.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(b.len() % 512, 0);
    }
}
