//! Debian unstable's current cloud kernel, fetched through a private apt
//! configuration under `target/apt-unstable/`: its own sources list (the
//! mirror and key the host already uses for bookworm, suite `unstable`),
//! its own state, cache and (empty) dpkg status. The host's apt
//! configuration and package state are never touched.

use crate::build::Arch;
use crate::util::{output, run, step, target_dir, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The downloaded packages of one kernel.
pub struct KernelDebs {
    /// e.g. "7.2.13+deb14-cloud-arm64", the directory under
    /// usr/lib/modules.
    pub version: String,
    pub files: Vec<PathBuf>,
}

fn root() -> PathBuf {
    target_dir().join("apt-unstable")
}

/// apt options that confine apt to `root()`.
fn apt_opts(r: &Path) -> Vec<String> {
    let d = |p: &str| r.join(p).display().to_string();
    vec![
        format!("Dir::Etc::SourceList={}", d("sources.list")),
        format!("Dir::Etc::SourceParts={}", d("sources.list.d")),
        format!("Dir::Etc::Preferences={}", d("preferences")),
        format!("Dir::Etc::PreferencesParts={}", d("preferences.d")),
        format!("Dir::State={}", d("state")),
        format!("Dir::State::status={}", d("state/status")),
        format!("Dir::Cache={}", d("cache")),
        "APT::Architecture=amd64".into(),
        "APT::Architectures=amd64,arm64".into(),
        // The mirror's unstable Release file can be past its Valid-Until
        // date (snapshots of the archive are served as they were taken).
        // For this one download only, an expired but correctly signed
        // Release is accepted; the signature is still checked.
        "Acquire::Check-Valid-Until=false".into(),
        "Acquire::Languages=none".into(),
        // The private directories belong to whoever runs xtask, so apt's
        // unprivileged download user could not write them.
        "APT::Sandbox::User=root".into(),
        "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
    ]
}

fn apt(r: &Path, tool: &str) -> Command {
    let mut c = Command::new(tool);
    for o in apt_opts(r) {
        c.arg("-o").arg(o);
    }
    c
}

/// Writes the private configuration and refreshes its index (reused when
/// less than a day old and the sources are unchanged).
fn prepare() -> Result<PathBuf> {
    let r = root();
    for d in [
        "sources.list.d",
        "preferences.d",
        "state/lists/partial",
        "cache/archives/partial",
    ] {
        std::fs::create_dir_all(r.join(d)).ctx(format!("mkdir {}", r.join(d).display()))?;
    }
    let status = r.join("state/status");
    if !status.exists() {
        std::fs::write(&status, "").ctx("write empty dpkg status")?;
    }
    let (uris, signed) = crate::assets::host_mirror()?;
    let uri = uris
        .split_whitespace()
        .next()
        .ok_or("the host's bookworm apt source has no URI")?;
    let opts = match signed {
        Some(k) if !k.contains('\n') => format!("[arch=amd64,arm64 signed-by={k}]"),
        _ => "[arch=amd64,arm64]".into(),
    };
    let list = format!("deb {opts} {uri} unstable main\n");
    let list_path = r.join("sources.list");
    let same = std::fs::read_to_string(&list_path).is_ok_and(|s| s == list);
    std::fs::write(&list_path, &list).ctx("write private sources.list")?;
    let stamp = r.join("state/updated");
    let fresh = same
        && std::fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|e| e.as_secs() < 86_400);
    if !fresh {
        step(format!(
            "refreshing a private apt index of Debian unstable ({}; host apt untouched): {}",
            r.display(),
            list.trim()
        ));
        run(apt(&r, "apt-get").arg("update"))?;
        std::fs::write(&stamp, "").ctx("write update stamp")?;
    }
    Ok(r)
}

/// The version of the newest `linux-binary-<version>` cloud kernel in an
/// `apt-cache search` listing for `deb_arch`, e.g. "7.2.13+deb14".
pub fn newest_binary(listing: &str, deb_arch: &str) -> Option<String> {
    let suffix = format!("-cloud-{deb_arch}");
    let mut best: Option<(Vec<u32>, String)> = None;
    for l in listing.lines() {
        let name = l.split_whitespace().next().unwrap_or("");
        let name = name.split(':').next().unwrap_or(name);
        let Some(ver) = name
            .strip_prefix("linux-binary-")
            .and_then(|r| r.strip_suffix(&suffix))
        else {
            continue;
        };
        // Not linux-binary-unsigned-*, whose "version" starts with a letter.
        if !ver.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let key: Vec<u32> = ver
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, ver.to_string()));
        }
    }
    best.map(|(_, v)| v)
}

/// Downloads the image, modules and base packages of unstable's newest
/// cloud kernel for `arch` into `dir`.
pub fn download_kernel(arch: Arch, dir: &Path) -> Result<KernelDebs> {
    let r = prepare()?;
    let a = arch.deb();
    let listing = output(apt(&r, "apt-cache").args([
        "search",
        "--names-only",
        &format!("^linux-binary-.*-cloud-{a}$"),
    ]))?;
    let ver = newest_binary(&listing, a).ok_or_else(|| {
        format!(
            "Debian unstable offers no linux-binary-*-cloud-{a} package (private index in {})",
            r.display()
        )
    })?;
    let version = format!("{ver}-cloud-{a}");
    let pkgs: Vec<String> = ["linux-binary", "linux-modules", "linux-base"]
        .iter()
        .map(|p| format!("{p}-{version}:{a}"))
        .collect();
    if dir.exists() {
        std::fs::remove_dir_all(dir).ctx(format!("clean {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).ctx(format!("mkdir {}", dir.display()))?;
    step(format!(
        "fetching Debian unstable kernel {version}: {}",
        pkgs.join(" ")
    ));
    run(apt(&r, "apt-get")
        .current_dir(dir)
        .arg("download")
        .args(&pkgs))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ctx("read download dir")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    files.sort();
    if files.len() != pkgs.len() {
        return Err(format!(
            "apt-get download left {} .deb files in {}, expected {}",
            files.len(),
            dir.display(),
            pkgs.len()
        ));
    }
    Ok(KernelDebs { version, files })
}

/// Downloads Debian unstable's `pkg` (an `all` or amd64 package) and
/// unpacks it into `dir` (made afresh), e.g. EDK2's CloudHv build for
/// `compare --vmm cloud-hypervisor`, which older suites do not package.
pub fn fetch_unpacked(pkg: &str, dir: &Path) -> Result<()> {
    let r = prepare()?;
    let dl = dir.with_extension("download");
    for d in [dir, dl.as_path()] {
        if d.exists() {
            std::fs::remove_dir_all(d).ctx(format!("clean {}", d.display()))?;
        }
    }
    std::fs::create_dir_all(&dl).ctx(format!("mkdir {}", dl.display()))?;
    step(format!(
        "fetching Debian unstable's {pkg} (unpacked in {})",
        dir.display()
    ));
    run(apt(&r, "apt-get").current_dir(&dl).arg("download").arg(pkg))?;
    let deb = std::fs::read_dir(&dl)
        .ctx("read download dir")?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| format!("apt-get download {pkg} left no .deb in {}", dl.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(dir))?;
    let _ = std::fs::remove_dir_all(&dl);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_newest_binary_package() {
        let l = "linux-binary-7.2.13+deb14-cloud-arm64 - Linux 7.2 for arm64 cloud\n\
                 linux-binary-unsigned-7.2.13+deb14-cloud-arm64 - unsigned\n\
                 linux-binary-7.2.9+deb14-cloud-arm64 - older\n\
                 linux-binary-7.10.1+deb14-cloud-arm64 - newer\n\
                 linux-binary-7.12.1+deb14-cloud-amd64 - other arch\n";
        assert_eq!(newest_binary(l, "arm64").as_deref(), Some("7.10.1+deb14"));
        assert_eq!(newest_binary(l, "amd64").as_deref(), Some("7.12.1+deb14"));
        assert_eq!(newest_binary("", "arm64"), None);
    }

    #[test]
    fn private_config_stays_under_its_root() {
        let r = Path::new("/x/apt-unstable");
        for o in apt_opts(r) {
            if o.starts_with("Dir::") {
                assert!(o.contains("=/x/apt-unstable/"), "{o}");
            }
        }
        assert!(apt_opts(r)
            .iter()
            .any(|o| o == "Acquire::Check-Valid-Until=false"));
    }
}
