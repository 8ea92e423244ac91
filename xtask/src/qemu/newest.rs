//! Debian unstable's QEMU (the newest release Debian ships), for the
//! `<arch>/qemu-newest/...` part of the matrix, without touching the host's
//! QEMU or apt configuration.
//!
//! How: `debootstrap` makes a minimal unstable root under
//! `target/qemu-newest/root` with qemu-system-x86, qemu-system-arm and
//! qemu-system-data, on the mirror the host's bookworm entry already uses
//! (`assets::host_mirror`, as `unstable.rs` does for the kernel). QEMU then
//! runs in that root: `unshare --mount` gives the run its own mount table,
//! in which the host's /dev, /proc and /sys and the project's target
//! directory (firmware images, kernels, initramfs, disks, QMP and control
//! sockets, logs: everything the runner hands QEMU) are bound at the same
//! paths, and `chroot` starts QEMU there.
//!
//! Why a root and not the unpacked .debs on the host: unstable's QEMU links
//! against unstable's glibc and libraries, newer than bookworm's, and finds
//! its data files and modules at the absolute /usr paths it was built with.
//! Running it with its own dynamic loader and LD_LIBRARY_PATH would still
//! point those paths at the host's QEMU 10 files; in a root every path is
//! unstable's. The private mount namespace keeps the bind mounts from
//! outliving QEMU or showing up on the host, and the QEMU process stays the
//! one xtask started (unshare, sh and chroot each exec the next), so
//! killing it works as for the host's QEMU.

use crate::util::{output, run, step, target_dir, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The Debian packages the root holds besides the minimal base.
const PACKAGES: &str = "qemu-system-x86,qemu-system-arm,qemu-system-data";

/// How long a made root is reused before it is made again (unstable moves;
/// the suite should follow it, but not pay a debootstrap on every run).
const MAX_AGE: Duration = Duration::from_secs(7 * 86_400);

/// A usable unstable root and the QEMU version in it.
#[derive(Clone, Debug)]
pub struct Newest {
    pub root: PathBuf,
    /// `qemu-system-x86_64 --version`, e.g. "11.1.3".
    pub version: String,
}

fn dir() -> PathBuf {
    target_dir().join("qemu-newest")
}

/// Written once a root is complete; holds the version it has.
fn stamp(d: &Path) -> PathBuf {
    d.join("ready")
}

/// The cached root, made (or refreshed) when missing or old. An old root
/// is kept when a refresh fails (no network), with a note.
pub fn ensure() -> Result<Newest> {
    let d = dir();
    let root = d.join("root");
    let age = std::fs::metadata(stamp(&d))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    if age.is_some_and(|a| a < MAX_AGE) {
        return check(&root);
    }
    match make(&d) {
        Ok(()) => check(&root),
        Err(e) if age.is_some() => {
            step(format!(
                "cannot refresh the Debian unstable QEMU root ({e}); using the one from {} days ago",
                age.map(|a| a.as_secs() / 86_400).unwrap_or(0)
            ));
            check(&root)
        }
        Err(e) => Err(e),
    }
}

/// Runs `qemu-system-* --version` in the root through the same wrapper the
/// VMs use, so a broken root or wrapper shows up here, once.
fn check(root: &Path) -> Result<Newest> {
    // The mount point of the target directory inside the root.
    let t = target_dir();
    let at = root.join(t.strip_prefix("/").unwrap_or(&t));
    std::fs::create_dir_all(&at).ctx(format!("mkdir {}", at.display()))?;
    let mut versions = Vec::new();
    for prog in ["qemu-system-x86_64", "qemu-system-aarch64"] {
        let mut c = Command::new(prog);
        c.arg("--version");
        let text = output(&mut wrap(root, &c))
            .map_err(|e| format!("{prog} in {} does not run: {e}", root.display()))?;
        let v = crate::host::parse_qemu_version(&text)
            .ok_or_else(|| format!("cannot read the version of {prog} in `{}`", text.trim()))?;
        versions.push(v.to_string());
    }
    versions.dedup();
    Ok(Newest {
        root: root.to_path_buf(),
        version: versions.join("/"),
    })
}

/// debootstrap into a fresh directory, then swap it in.
fn make(d: &Path) -> Result<()> {
    if !crate::util::is_root() {
        return Err("making the Debian unstable root needs root (debootstrap, chroot)".into());
    }
    crate::host::ensure(&[], &["debootstrap"])?;
    let (uris, signed) = crate::assets::host_mirror()?;
    let uri = uris
        .split_whitespace()
        .next()
        .ok_or("the host's bookworm apt source has no URI")?;
    let tmp = d.join("root.tmp");
    remove_unmounted(&tmp)?;
    std::fs::create_dir_all(d).ctx(format!("mkdir {}", d.display()))?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let mut c = Command::new("debootstrap");
    c.args(["--variant=minbase", &format!("--arch={}", arch.trim())])
        .arg(format!("--include={PACKAGES}"));
    // The host's key for its mirror checks unstable's Release too.
    if let Some(k) = signed.filter(|k| k.starts_with('/')) {
        c.arg(format!("--keyring={k}"));
    }
    c.arg("unstable").arg(&tmp).arg(uri);
    step(format!(
        "making a Debian unstable root with QEMU in {} (debootstrap; host apt untouched)",
        tmp.display()
    ));
    run(&mut c)?;
    let root = d.join("root");
    remove_unmounted(&root)?;
    std::fs::rename(&tmp, &root).ctx("move the unstable root in place")?;
    let v = check(&root)?;
    std::fs::write(stamp(d), format!("{}\n", v.version)).ctx("write the root's stamp")
}

/// Removes a root left by an earlier attempt, unless something is still
/// mounted inside it (then removing would reach the host's files).
fn remove_unmounted(p: &Path) -> Result<()> {
    if !p.exists() {
        return Ok(());
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let prefix = p.display().to_string();
    if let Some(m) = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .find(|m| m.starts_with(&prefix))
    {
        return Err(format!("{m} is still mounted; unmount it, then run again"));
    }
    std::fs::remove_dir_all(p).ctx(format!("remove {}", p.display()))
}

/// The shell step between unshare and chroot: bind the host's /dev, /proc,
/// /sys and the target directory ($2) into the root ($1) in this mount
/// namespace only, then exec the command in the root.
const ENTER: &str = "set -e; r=$1; t=$2; shift 2; \
    mount --rbind /dev \"$r/dev\"; mount -t proc proc \"$r/proc\"; \
    mount --rbind /sys \"$r/sys\"; mount --bind \"$t\" \"$r$t\"; \
    exec chroot \"$r\" \"$@\"";

/// `cmd` (a program on PATH and its arguments) run inside `root`.
pub fn wrap(root: &Path, cmd: &Command) -> Command {
    let t = target_dir();
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        ENTER,
        "sh",
    ])
    .arg(root)
    .arg(&t)
    .arg(cmd.get_program())
    .args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_command_keeps_program_and_arguments_in_order() {
        let mut q = Command::new("qemu-system-aarch64");
        q.args(["-M", "virt", "-bios", "/t/fw.bin"]);
        let w = wrap(Path::new("/x/qemu-newest/root"), &q);
        let args: Vec<String> = w
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(w.get_program(), "unshare");
        let at = args
            .iter()
            .position(|a| a == "/x/qemu-newest/root")
            .unwrap();
        assert_eq!(
            &args[at + 2..],
            ["qemu-system-aarch64", "-M", "virt", "-bios", "/t/fw.bin"]
        );
        assert_eq!(args[at + 1], target_dir().display().to_string());
    }
}
