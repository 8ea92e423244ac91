//! A libvirtd of the suite's own, beside any libvirt the host runs.
//!
//! As root libvirtd takes its paths from nowhere but the build (the QEMU
//! driver reads /etc/libvirt/qemu.conf and keeps state in /run/libvirt,
//! /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt; only
//! libvirtd.conf has `-f`). So it runs in a mount namespace of its own
//! (`unshare --mount`) in which directories under `target/libvirt/` are
//! bound over those five: the host's libvirt, if any, never sees it, and
//! the QEMU processes it starts run in the same namespace. Its socket is
//! `target/libvirt/run/libvirt-sock` from outside, and `virsh` reaches it
//! with `qemu:///system?socket=...`.
//!
//! Stopping it destroys its domains first (libvirtd leaves running QEMU
//! processes behind when it exits), then sends SIGTERM, then SIGKILL; a
//! daemon a killed earlier run left is found by its pid file and stopped
//! before the directories are made afresh.

use crate::util::{output, step, target_dir, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The host paths the namespace covers, and the directory under
/// `target/libvirt/` bound over each.
const BINDS: &[(&str, &str)] = &[
    ("/etc/libvirt", "etc"),
    ("/run/libvirt", "run"),
    ("/var/lib/libvirt", "lib"),
    ("/var/cache/libvirt", "cache"),
    ("/var/log/libvirt", "log"),
];

/// libvirtd.conf: no authentication on a socket only root can open, a log
/// file instead of the journal.
const LIBVIRTD_CONF: &str = r#"unix_sock_dir = "/run/libvirt"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"#;

/// qemu.conf: QEMU runs as root without a security driver, cgroups or a
/// private /dev (nothing the cases need, and they may be unavailable in a
/// container or chroot); its stdout and stderr go straight to the domain's
/// log file, so no virtlogd is needed.
const QEMU_CONF: &str = r#"user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
remember_owner = 0
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
"#;

pub(super) struct Daemon {
    dir: PathBuf,
    child: Child,
    uri: String,
    /// What `virsh version --daemon` says runs: QEMU and libvirtd.
    pub version: String,
}

fn dir() -> PathBuf {
    target_dir().join("libvirt")
}

fn pid_file(d: &Path) -> PathBuf {
    d.join("libvirtd.pid")
}

/// Whether `pid` (from our pid file) is still a libvirtd, not a reused pid.
fn is_libvirtd(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("libvirtd"))
        .unwrap_or(false)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Stops QEMU processes of this namespace's domains (their pid files) and
/// a libvirtd an earlier run left.
fn stop_leftovers(d: &Path) {
    let qemu_pids = std::fs::read_dir(d.join("run").join("qemu"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|s| s.trim().parse::<u32>().ok());
    for pid in qemu_pids {
        let is_qemu = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("qemu-system"))
            .unwrap_or(false);
        if is_qemu {
            step(format!(
                "stopping QEMU {pid} left by an earlier libvirt run"
            ));
            signal(pid, "-KILL");
        }
    }
    if let Some(pid) = std::fs::read_to_string(pid_file(d))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        if is_libvirtd(pid) {
            step(format!("stopping libvirtd {pid} left by an earlier run"));
            signal(pid, "-KILL");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Daemon {
    /// Makes `target/libvirt/` afresh and starts libvirtd there; returns
    /// once `virsh` gets an answer from it.
    pub(super) fn start() -> Result<Daemon> {
        let d = dir();
        stop_leftovers(&d);
        let _ = std::fs::remove_dir_all(&d);
        for (_, sub) in BINDS {
            std::fs::create_dir_all(d.join(sub)).ctx(format!("mkdir {}", d.display()))?;
        }
        std::fs::write(d.join("etc/libvirtd.conf"), LIBVIRTD_CONF).ctx("write libvirtd.conf")?;
        std::fs::write(d.join("etc/qemu.conf"), QEMU_CONF).ctx("write qemu.conf")?;
        // The mount points must exist on the host; /run/libvirt does not
        // until a libvirt ran (an empty directory changes nothing for one).
        let mut script = String::from("set -e\n");
        for (host, sub) in BINDS {
            script.push_str(&format!(
                "mkdir -p {host}\nmount --bind '{}' {host}\n",
                d.join(sub).display()
            ));
        }
        script.push_str("exec libvirtd -f /etc/libvirt/libvirtd.conf\n");
        let out = std::fs::File::create(d.join("libvirtd.out")).ctx("create libvirtd.out")?;
        // unshare and sh exec: the child is libvirtd itself.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out.try_clone().ctx("dup")?)
            .stderr(out)
            .spawn()
            .ctx("cannot start unshare (util-linux)")?;
        std::fs::write(pid_file(&d), child.id().to_string()).ctx("write pid file")?;
        let socket = d.join("run").join("libvirt-sock");
        let mut daemon = Daemon {
            uri: format!("qemu:///system?socket={}", socket.display()),
            dir: d,
            child,
            version: String::new(),
        };
        let t = Instant::now();
        loop {
            match daemon.virsh(&["version", "--daemon"]) {
                Ok(v) => {
                    // "Running hypervisor: QEMU 10.0.2", "Running against
                    // daemon: 11.3.0".
                    daemon.version = v
                        .lines()
                        .filter_map(|l| l.trim().strip_prefix("Running "))
                        .collect::<Vec<_>>()
                        .join(", ");
                    break;
                }
                Err(e) if t.elapsed() > Duration::from_secs(30) => {
                    let said = std::fs::read_to_string(daemon.dir.join("libvirtd.out"))
                        .unwrap_or_default();
                    daemon.stop();
                    return Err(format!(
                        "private libvirtd did not answer within 30 s: {e}; it said: {}",
                        said.trim()
                    ));
                }
                Err(_) => {
                    if let Ok(Some(st)) = daemon.child.try_wait() {
                        let said = std::fs::read_to_string(daemon.dir.join("libvirtd.out"))
                            .unwrap_or_default();
                        return Err(format!("private libvirtd exited ({st}): {}", said.trim()));
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }
        step(format!(
            "private libvirtd {} on {} ({})",
            daemon.child.id(),
            daemon.uri,
            daemon.version
        ));
        Ok(daemon)
    }

    /// Runs `virsh -c <our URI> args`; Ok is its standard output.
    pub(super) fn virsh(&self, args: &[&str]) -> Result<String> {
        output(
            Command::new("virsh")
                .args(["-q", "-c", &self.uri])
                .args(args),
        )
    }

    /// The directory of this daemon's files (`target/libvirt/`).
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// QEMU's log of a domain (libvirt's command line and QEMU's stderr).
    pub(super) fn qemu_log(&self, domain: &str) -> PathBuf {
        self.dir
            .join("log")
            .join("qemu")
            .join(format!("{domain}.log"))
    }

    /// Destroys every domain still running, then stops libvirtd.
    pub(super) fn stop(&mut self) {
        if let Ok(names) = self.virsh(&["list", "--name"]) {
            for n in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
                let _ = self.virsh(&["destroy", n]);
            }
        }
        signal(self.child.id(), "-TERM");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        stop_leftovers(&self.dir);
        let _ = std::fs::remove_file(pid_file(&self.dir));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
