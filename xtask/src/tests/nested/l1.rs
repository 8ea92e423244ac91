//! The L1 guest of the nested cases: its initramfs (busybox,
//! tests/guest/nested-init, the KVM modules, the CH binaries and what L2
//! boots), its QEMU machine, and commands the host runs in it.

use super::{ChBins, L2Boot, NestedCase};
use crate::assets::{busybox, Cpio, Guest};
use crate::build::Arch;
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{root, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// L1's RAM and vCPUs: CH's L2 (512 MiB to 1.5 GiB) and the initramfs
/// (about 150 MiB unpacked, the L2 disk image in it) must fit; one vCPU
/// runs L2 while the other serves L1.
const L1_MEMORY: &str = "3G";
const L1_SMP: &str = "2";

/// Where things are in L1's root.
pub(super) const L2_DIR: &str = "/l2";
/// The API socket nested-init starts CH with.
pub(super) const API_SOCKET: &str = "/run/ch.sock";
/// The test disk, for `add-disk` (`steps`).
pub(super) const SPARE_DISK: &str = "/l2/spare.raw";

pub(super) enum L2Payload {
    /// CH's direct kernel boot, with this disk beside it when given (the
    /// survey's, so that L2 has the PCI functions of a disk boot).
    Direct {
        kernel: PathBuf,
        initrd: PathBuf,
        disk: Option<PathBuf>,
    },
    /// Hotstub as `--firmware`.
    Disk { firmware: PathBuf, disk: PathBuf },
    /// EDK2's CloudHv build, which CH loads as a PVH `--kernel`
    /// (README.Debian of Debian's cloudhv-efi-x86-64).
    Edk2 { firmware: PathBuf, disk: PathBuf },
}

pub(super) struct L1Files<'a> {
    pub guest: &'a Guest,
    /// The KVM modules (`assets::nested_modules`).
    pub modules: &'a Path,
    pub bins: &'a ChBins,
    pub l2: &'a L2Payload,
    pub spare_disk: &'a Path,
    /// Run L1 on Debian unstable's QEMU from this root (`qemu::newest`)
    /// rather than the host's.
    pub qemu_root: Option<PathBuf>,
}

/// A running L1 and when its milestones showed on the console.
pub(super) struct L1Run {
    pub vm: Vm,
    /// nested-init's command port (`HOTSTUB-L1` lines), and a transcript.
    ctl: Ctl,
    cmd_id: u32,
    /// (what, seconds since QEMU started).
    pub marks: Vec<(&'static str, f64)>,
}

/// Where the case's fw_cfg file `i` is in L1 (`NestedCase::fw_cfg`).
fn fw_cfg_path(i: usize) -> String {
    format!("{L2_DIR}/fw-cfg-{i}")
}

/// CH's arguments, one per line for nested-init: what L2 boots, its
/// CPUs and memory, and the fw_cfg files named in `fw_cfg` (written at
/// `fw_cfg_path`).
fn ch_args(c: &NestedCase, l2: &L2Payload, fw_cfg: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    match (l2, c.boot) {
        (L2Payload::Direct { disk, .. }, L2Boot::Direct(extra)) => {
            // Steps need the init's command channel.
            let action = if !c.uses_cmd() { "poweroff" } else { "cmd" };
            let console = match c.arch {
                Arch::X86_64 => "console=ttyS0",
                Arch::Aarch64 => "console=ttyAMA0",
            };
            a.extend([
                "--kernel".into(),
                format!("{L2_DIR}/kernel"),
                "--initramfs".into(),
                format!("{L2_DIR}/initrd"),
                "--cmdline".into(),
                format!("{console} quiet panic=-1 hotstub.action={action} hotstub.dump=1 {extra}")
                    .trim()
                    .to_string(),
            ]);
            if disk.is_some() {
                a.extend(["--disk".into(), format!("path={L2_DIR}/boot.img")]);
            }
        }
        (L2Payload::Edk2 { .. }, _) => a.extend([
            "--kernel".into(),
            format!("{L2_DIR}/firmware"),
            "--disk".into(),
            format!("path={L2_DIR}/boot.img"),
        ]),
        _ => a.extend([
            "--firmware".into(),
            format!("{L2_DIR}/firmware"),
            "--disk".into(),
            format!("path={L2_DIR}/boot.img"),
        ]),
    }
    a.extend([
        "--cpus".into(),
        c.cpus.into(),
        "--memory".into(),
        c.memory.into(),
    ]);
    if !fw_cfg.is_empty() {
        // CH's items syntax (CH vmm/src/vm_config.rs FwCfgItemList):
        // `name=N,file=F` items separated by `:`; files, so that the
        // contents need no quoting. kernel, cmdline and initramfs default
        // to on and need `--kernel` etc., which `--firmware` excludes.
        let items: Vec<String> = fw_cfg
            .iter()
            .enumerate()
            .map(|(i, name)| format!("name={name},file={}", fw_cfg_path(i)))
            .collect();
        a.extend([
            "--fw-cfg-config".into(),
            format!(
                "kernel=off,cmdline=off,initramfs=off,items=[{}]",
                items.join(":")
            ),
        ]);
    }
    a
}

/// The L1 initramfs, uncompressed (the kernel unpacks it faster than it
/// would inflate it under TCG).
fn initramfs(c: &NestedCase, f: &L1Files, out: &Path) -> Result<()> {
    let read = |p: &Path| std::fs::read(p).ctx(format!("read {}", p.display()));
    let init_path = root().join("tests").join("guest").join("nested-init");
    let mut cpio = Cpio::new();
    for d in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "proc",
        "run",
        "sys",
        "tmp",
        "l2",
    ] {
        cpio.dir(d);
    }
    // /dev/console (5,1) before init runs (Documentation/admin-guide/devices.txt).
    cpio.chardev("dev/console", 5, 1);
    cpio.file("bin/busybox", &read(&busybox(c.arch)?)?, 0o755);
    cpio.symlink("bin/sh", "busybox");
    cpio.file("init", &read(&init_path)?, 0o755);
    cpio.file("bin/cloud-hypervisor", &read(&f.bins.ch)?, 0o755);
    cpio.file("bin/ch-remote", &read(&f.bins.remote)?, 0o755);
    cpio.dir("lib/modules/nested");
    let mut mods: Vec<PathBuf> = std::fs::read_dir(f.modules)
        .ctx("read nested modules dir")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("ko" | "deps")))
        .collect();
    mods.sort();
    for m in mods {
        let name = m.file_name().unwrap().to_string_lossy().into_owned();
        cpio.file(&format!("lib/modules/nested/{name}"), &read(&m)?, 0o644);
    }
    let l2 = L2_DIR.trim_start_matches('/');
    match f.l2 {
        L2Payload::Direct {
            kernel,
            initrd,
            disk,
        } => {
            cpio.file(&format!("{l2}/kernel"), &read(kernel)?, 0o644);
            cpio.file(&format!("{l2}/initrd"), &read(initrd)?, 0o644);
            if let Some(d) = disk {
                cpio.file(&format!("{l2}/boot.img"), &read(d)?, 0o644);
            }
        }
        L2Payload::Disk { firmware, disk } | L2Payload::Edk2 { firmware, disk } => {
            cpio.file(&format!("{l2}/firmware"), &read(firmware)?, 0o644);
            cpio.file(&format!("{l2}/boot.img"), &read(disk)?, 0o644);
        }
    }
    cpio.file(
        SPARE_DISK.trim_start_matches('/'),
        &read(f.spare_disk)?,
        0o644,
    );
    let fw_cfg = c
        .fw_cfg
        .map(|files| files(&f.guest.kernel.version))
        .unwrap_or_default();
    for (i, (_, content)) in fw_cfg.iter().enumerate() {
        let path = fw_cfg_path(i);
        cpio.file(path.trim_start_matches('/'), content.as_bytes(), 0o644);
    }
    let names: Vec<&str> = fw_cfg.iter().map(|(n, _)| *n).collect();
    cpio.file(
        "etc/ch-args",
        (ch_args(c, f.l2, &names).join("\n") + "\n").as_bytes(),
        0o644,
    );
    std::fs::write(out, cpio.finish()).ctx(format!("write {}", out.display()))
}

fn initramfs_path(log: &Path) -> PathBuf {
    log.with_extension("l1.cpio")
}

/// Removes the case's L1 initramfs (over 100 MiB) and control socket.
pub(super) fn cleanup(log: &Path) {
    let _ = std::fs::remove_file(initramfs_path(log));
    let _ = std::fs::remove_file(log.with_extension("ctl"));
}

/// L1's machine: what gives its Linux KVM under TCG.
fn machine(arch: Arch) -> &'static str {
    match arch {
        // -cpu max (VmConfig) has SVM and NPT on q35.
        Arch::X86_64 => "q35",
        // virtualization=on: EL2, which Hotstub hands to Linux.
        Arch::Aarch64 => "virt,gic-version=3,virtualization=on",
    }
}

/// Builds L1's initramfs and starts it under Hotstub (`l1_image`); returns
/// once CH runs (`NESTED: ch start`).
pub(super) fn start(c: &NestedCase, f: &L1Files, l1_image: &Path, log: &Path) -> Result<L1Run> {
    if let Some(d) = log.parent() {
        std::fs::create_dir_all(d).ctx("mkdir log dir")?;
    }
    let initrd = initramfs_path(log);
    initramfs(c, f, &initrd)?;
    let mut cfg = VmConfig::new(c.arch, Firmware::Hotstub);
    if !l1_image.is_file() {
        return Err(format!("no L1 firmware {}", l1_image.display()));
    }
    cfg.machine = machine(c.arch).into();
    cfg.root = f.qemu_root.clone();
    cfg.smp = L1_SMP.into();
    cfg.memory = L1_MEMORY.into();
    cfg.kernel = Some(f.guest.kernel.image.clone());
    cfg.initrd = Some(initrd);
    // x86 names its console; arm64's comes from Hotstub's SPCR. x86:
    // no_timer_check, since on a loaded host TCG's timer interrupts come
    // too late for Linux's IO-APIC timer test, which then panics ("IO-APIC +
    // timer doesn't work!", seen with a CH build beside the test).
    cfg.append = Some(
        match c.arch {
            Arch::X86_64 => "console=ttyS0 quiet no_timer_check",
            Arch::Aarch64 => "quiet",
        }
        .into(),
    );
    let ctl_path = log.with_extension("ctl");
    let _ = std::fs::remove_file(&ctl_path);
    // L1's command port: a virtconsole (hvc0 in L1) on a socket QEMU serves.
    cfg.extra.extend([
        "-device".into(),
        "virtio-serial-pci,id=l1ser".into(),
        "-chardev".into(),
        format!(
            "socket,id=l1ctl,path={},server=on,wait=off",
            ctl_path.display()
        ),
        "-device".into(),
        "virtconsole,chardev=l1ctl,bus=l1ser.0".into(),
    ]);
    let vm = Vm::spawn(&cfg, log, false)?;
    let ctl = Ctl::connect(&ctl_path, &log.with_extension("ctl.log"))?;
    let mut run = L1Run {
        vm,
        ctl,
        cmd_id: 0,
        marks: Vec::new(),
    };
    run.wait_mark("l1 init", "NESTED: l1 init reached", 300)?;
    let kvm = run.wait_either("NESTED: kvm ready", "NESTED: error:", 60)?;
    if kvm.starts_with("NESTED: error:") {
        let why: Vec<String> = run
            .vm
            .lines()
            .iter()
            .filter(|l| l.starts_with("NESTED: kvm-log") || l.starts_with("NESTED: insmod"))
            .cloned()
            .collect();
        return Err(format!("{kvm} ({})", why.join(" | ")));
    }
    run.mark("kvm ready");
    let l = run
        .vm
        .wait_line("`NESTED: ch start`", Duration::from_secs(60), |l| {
            ["NESTED: ch start", "NESTED: error:"]
                .iter()
                .any(|p| l.starts_with(p))
        })?;
    if !l.starts_with("NESTED: ch start") {
        return Err(format!("{l}: {}", run.ch_log().join(" | ")));
    }
    run.mark("ch started");
    Ok(run)
}

impl L1Run {
    fn since_start(&self) -> f64 {
        self.vm.started.elapsed().as_secs_f64()
    }

    pub(super) fn mark(&mut self, what: &'static str) {
        let t = self.since_start();
        self.marks.push((what, t));
    }

    /// Waits for a line starting with `prefix` and records when it came.
    pub(super) fn wait_mark(
        &mut self,
        what: &'static str,
        prefix: &str,
        secs: u64,
    ) -> Result<String> {
        let l = self.vm.wait_prefix(prefix, Duration::from_secs(secs))?;
        self.mark(what);
        Ok(l)
    }

    /// Waits for a line starting with `a` or with `b`.
    pub(super) fn wait_either(&mut self, a: &str, b: &str, secs: u64) -> Result<String> {
        let (a2, b2) = (a.to_string(), b.to_string());
        self.vm
            .wait_line(&format!("`{a}`"), Duration::from_secs(secs), move |l| {
                l.starts_with(&a2) || l.starts_with(&b2)
            })
    }

    /// CH's own log as nested-init printed it when CH exited.
    pub(super) fn ch_log(&self) -> Vec<String> {
        self.vm
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix("NESTED-CH: ").map(str::to_string))
            .collect()
    }

    /// Runs a shell command in L1 (nested-init's `HOTSTUB-L1` lines on
    /// its command port); returns its exit code and output.
    pub(super) fn l1_cmd(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, Vec<String>)> {
        if cmd.contains('\n') {
            return Err("L1 command must be one line".into());
        }
        self.cmd_id += 1;
        let id = self.cmd_id;
        self.ctl.send(&format!("HOTSTUB-L1 {id} {cmd}\n"))?;
        let rc_prefix = format!("NESTED-RC {id} ");
        let out_prefix = format!("NESTED-OUT {id} ");
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let l = self
                .ctl
                .line(deadline)
                .map_err(|e| format!("L1 command `{cmd}`: {e}"))?;
            if let Some(o) = l.strip_prefix(&out_prefix) {
                out.push(o.to_string());
            } else if let Some(rc) = l.strip_prefix(&rc_prefix) {
                return Ok((rc.trim().parse().unwrap_or(-1), out));
            }
        }
    }

    /// `ch-remote <args>` in L1; fails unless it exits 0.
    pub(super) fn ch_remote(&mut self, args: &str) -> Result<Vec<String>> {
        let cmd = format!("ch-remote --api-socket {API_SOCKET} {args}");
        let (rc, out) = self.l1_cmd(&cmd, Duration::from_secs(60))?;
        if rc != 0 {
            return Err(format!("`{cmd}` exited {rc}: {}", out.join(" | ")));
        }
        Ok(out)
    }
}

/// The host end of nested-init's command port: lines both ways, each
/// copied to a transcript.
struct Ctl {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    transcript: std::fs::File,
}

impl Ctl {
    /// Connects to QEMU's socket, retrying while QEMU starts.
    fn connect(path: &Path, transcript: &Path) -> Result<Ctl> {
        let t = Instant::now();
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if t.elapsed() > Duration::from_secs(10) => {
                    return Err(format!("cannot connect to {}: {e}", path.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        Ok(Ctl {
            writer: s.try_clone().ctx("clone control socket")?,
            reader: BufReader::new(s),
            transcript: std::fs::File::create(transcript)
                .ctx(format!("create {}", transcript.display()))?,
        })
    }

    fn send(&mut self, line: &str) -> Result<()> {
        let _ = write!(self.transcript, "> {line}");
        self.writer
            .write_all(line.as_bytes())
            .ctx("write to L1's command port")
    }

    /// The next line (without its line end) before `deadline`.
    fn line(&mut self, deadline: Instant) -> Result<String> {
        let mut buf = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timeout on L1's command port".into());
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .ctx("set read timeout")?;
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return Err("L1's command port closed".into()),
                Ok(_) if buf.ends_with(b"\n") => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("read L1's command port: {e}")),
            }
        }
        let l = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let _ = writeln!(self.transcript, "< {l}");
        Ok(l)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn ch_args_of(c: &NestedCase, l2: &L2Payload) -> Vec<String> {
        ch_args(c, l2, &[])
    }

    #[test]
    fn fw_cfg_files_become_ch_items() {
        let cases = super::super::cases();
        let c = cases
            .iter()
            .find(|c| c.name == "x86_64/ch-hotstub-fw-cfg")
            .unwrap();
        let disk = L2Payload::Disk {
            firmware: PathBuf::new(),
            disk: PathBuf::new(),
        };
        let a = ch_args(
            c,
            &disk,
            &["opt/org.hotstub/boot", "opt/org.hotstub/cmdline"],
        );
        let v = &a[a.iter().position(|x| x == "--fw-cfg-config").unwrap() + 1];
        assert_eq!(
            v,
            "kernel=off,cmdline=off,initramfs=off,items=[name=opt/org.hotstub/boot,\
             file=/l2/fw-cfg-0:name=opt/org.hotstub/cmdline,file=/l2/fw-cfg-1]"
        );
        assert!(!ch_args_of(c, &disk).iter().any(|x| x == "--fw-cfg-config"));
        let files = (c.fw_cfg.unwrap())("6.12.9");
        assert_eq!(files[0].0, "opt/org.hotstub/boot");
        assert!(files[0].1.starts_with("disk0/1:gnulinux-6.12.9-recovery-"));
    }

    #[test]
    fn ch_arguments_per_boot() {
        let cases = super::super::cases();
        let find = |n: &str| cases.iter().find(|c| c.name == n).unwrap();
        let direct = L2Payload::Direct {
            kernel: PathBuf::new(),
            initrd: PathBuf::new(),
            disk: None,
        };
        let a = ch_args_of(find("x86_64/ch-direct-hotplug"), &direct);
        let cmdline = &a[a.iter().position(|x| x == "--cmdline").unwrap() + 1];
        assert!(cmdline.starts_with("console=ttyS0 "), "{cmdline}");
        assert!(cmdline.contains("hotstub.action=cmd"), "{cmdline}");
        assert!(a.windows(2).any(|w| w == ["--cpus", "boot=2,max=4"]));
        let a = ch_args_of(find("aarch64/ch-direct-boot"), &direct);
        let cmdline = &a[a.iter().position(|x| x == "--cmdline").unwrap() + 1];
        assert!(cmdline.starts_with("console=ttyAMA0 "), "{cmdline}");
        assert!(cmdline.contains("hotstub.action=poweroff"), "{cmdline}");
        let disk = L2Payload::Disk {
            firmware: PathBuf::new(),
            disk: PathBuf::new(),
        };
        let a = ch_args_of(find("x86_64/ch-hotstub-disk-debian"), &disk);
        assert_eq!(
            a[..4],
            ["--firmware", "/l2/firmware", "--disk", "path=/l2/boot.img"]
        );
        // CH refuses --kernel beside --firmware and drops --cmdline.
        assert!(!a.iter().any(|x| x == "--kernel" || x == "--cmdline"));
        // nested-init gives CH `--serial tty` (L1's console) itself.
        assert!(!a.iter().any(|x| x == "--serial"));
        // EDK2 CloudHv is a PVH ELF for --kernel, beside the same disk.
        let edk2 = L2Payload::Edk2 {
            firmware: PathBuf::new(),
            disk: PathBuf::new(),
        };
        let a = ch_args_of(find("x86_64/ch-hotstub-disk-debian"), &edk2);
        assert_eq!(
            a[..4],
            ["--kernel", "/l2/firmware", "--disk", "path=/l2/boot.img"]
        );
        let with_disk = L2Payload::Direct {
            kernel: PathBuf::new(),
            initrd: PathBuf::new(),
            disk: Some(PathBuf::new()),
        };
        let a = ch_args_of(find("x86_64/ch-direct-boot"), &with_disk);
        assert!(a.windows(2).any(|w| w == ["--disk", "path=/l2/boot.img"]));
    }
}
