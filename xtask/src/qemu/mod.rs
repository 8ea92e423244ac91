//! QEMU command lines and running VMs with a captured serial console (the
//! QMP client is `qmp`).

pub mod newest;
mod qmp;

use crate::build::Arch;
use crate::util::{Context, Result};
pub use qmp::Qmp;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Which firmware boots the VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    Hotstub,
    /// No `-bios`: SeaBIOS on x86, QEMU's direct kernel boot on arm virt.
    QemuDefault,
    /// x86 only: qboot.rom shipped with QEMU.
    Qboot,
    /// arm only: EDK2 from Debian's qemu-efi-aarch64.
    Edk2,
}

pub const QBOOT: &str = "/usr/share/qemu/qboot.rom";
pub const EDK2_AARCH64: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";

impl Firmware {
    pub fn parse(s: &str) -> Result<Firmware> {
        match s {
            "hotstub" => Ok(Firmware::Hotstub),
            "seabios" | "default" | "direct" | "none" => Ok(Firmware::QemuDefault),
            "qboot" => Ok(Firmware::Qboot),
            "edk2" => Ok(Firmware::Edk2),
            _ => Err(format!(
                "unknown firmware `{s}` (hotstub, seabios/direct, qboot, edk2)"
            )),
        }
    }
    pub fn label(self, arch: Arch) -> &'static str {
        match (self, arch) {
            (Firmware::Hotstub, _) => "Hotstub",
            (Firmware::QemuDefault, Arch::X86_64) => "SeaBIOS",
            (Firmware::QemuDefault, Arch::Aarch64) => "direct boot",
            (Firmware::Qboot, _) => "qboot",
            (Firmware::Edk2, _) => "EDK2",
        }
    }
    /// The `-bios` file, if any.
    pub fn bios(self, arch: Arch) -> Option<PathBuf> {
        match self {
            Firmware::Hotstub => Some(arch.image_path()),
            Firmware::QemuDefault => None,
            Firmware::Qboot => Some(PathBuf::from(QBOOT)),
            Firmware::Edk2 => Some(PathBuf::from(EDK2_AARCH64)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct VmConfig {
    pub arch: Arch,
    pub firmware: Firmware,
    /// `-M` value, e.g. "q35" or "virt,gic-version=3".
    pub machine: String,
    /// `-accel` value.
    pub accel: String,
    pub smp: String,
    pub memory: String,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub extra: Vec<String>,
    /// Run Debian unstable's QEMU from this root (`newest`) instead of the
    /// host's.
    pub root: Option<PathBuf>,
}

impl VmConfig {
    pub fn new(arch: Arch, firmware: Firmware) -> Self {
        VmConfig {
            arch,
            firmware,
            machine: default_machine(arch).into(),
            accel: "tcg".into(),
            smp: "2".into(),
            memory: "512M".into(),
            kernel: None,
            initrd: None,
            append: None,
            extra: Vec::new(),
            root: None,
        }
    }

    /// The QEMU command; `serial` is the `-serial` backend ("stdio" for
    /// captured runs, "mon:stdio" for interactive ones).
    pub fn command(&self, serial: &str, qmp: Option<&Path>) -> Command {
        let mut c = Command::new(self.arch.qemu());
        c.args(["-M", &self.machine, "-accel", &self.accel]);
        match self.arch {
            // `max` works under TCG; it is also what the hotplug tests plug.
            Arch::X86_64 => c.args(["-cpu", "max"]),
            // pauth-impdef: QEMU's cheaper pointer-auth algorithm; the
            // architected QARMA one makes TCG several times slower.
            Arch::Aarch64 => c.args(["-cpu", "max,pauth-impdef=on"]),
        };
        c.args(["-smp", &self.smp, "-m", &self.memory]);
        c.args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            serial,
        ]);
        if let Some(b) = self.firmware.bios(self.arch) {
            c.arg("-bios").arg(b);
        }
        if let Some(k) = &self.kernel {
            c.arg("-kernel").arg(k);
        }
        if let Some(i) = &self.initrd {
            c.arg("-initrd").arg(i);
        }
        if let Some(a) = &self.append {
            c.arg("-append").arg(a);
        }
        if let Some(q) = qmp {
            c.arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", q.display()));
        }
        c.args(&self.extra);
        match &self.root {
            Some(r) => newest::wrap(r, &c),
            None => c,
        }
    }
}

/// Whether `-M machine` is QEMU's x86 microvm (with any options).
pub fn is_microvm(machine: &str) -> bool {
    machine.split(',').next() == Some("microvm")
}

/// The virtio-blk device for a disk on `machine`: a virtio-mmio
/// transport on microvm without PCIe, else PCI.
pub fn virtio_blk_device(machine: &str) -> &'static str {
    if is_microvm(machine) && !machine.contains("pcie=on") {
        "virtio-blk-device"
    } else {
        "virtio-blk-pci"
    }
}

pub fn default_machine(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "q35",
        Arch::Aarch64 => "virt,gic-version=3",
    }
}

/// Makes sure QEMU for `arch` is installed and new enough (installing it
/// when root).
pub fn ensure_qemu(arch: Arch) -> Result<()> {
    crate::host::ensure_qemu(arch)
}

// ---- serial log ---------------------------------------------------------

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    partial: Vec<u8>,
    eof: bool,
}

pub struct SerialLog {
    st: Mutex<LogState>,
    cv: Condvar,
}

impl SerialLog {
    fn push(&self, bytes: &[u8]) {
        let mut st = self.st.lock().unwrap();
        for &b in bytes {
            if b == b'\n' {
                let raw = std::mem::take(&mut st.partial);
                let line = String::from_utf8_lossy(&raw)
                    .trim_end_matches('\r')
                    .to_string();
                // A console may emit "\r\r\n" or stray carriage returns
                // mid-line; keep the text after the last one.
                let line = line.rsplit('\r').next().unwrap_or("");
                st.lines.push(strip_escapes(line));
            } else {
                st.partial.push(b);
            }
        }
        self.cv.notify_all();
    }
    fn close(&self) {
        let mut st = self.st.lock().unwrap();
        if !st.partial.is_empty() {
            let raw = std::mem::take(&mut st.partial);
            st.lines.push(String::from_utf8_lossy(&raw).to_string());
        }
        st.eof = true;
        self.cv.notify_all();
    }
}

/// Removes terminal escape sequences (EDK2 clears the screen without a
/// newline before the kernel prints), so markers start their line.
fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if it.peek() == Some(&'[') {
            it.next();
            // CSI: parameters and intermediates, then one final byte.
            for d in it.by_ref() {
                if ('\x40'..='\x7e').contains(&d) {
                    break;
                }
            }
        } else {
            it.next();
        }
    }
    out
}

/// A running VM: QEMU child with its serial console captured line by line
/// into memory and the log file, and optionally a QMP connection. A VM
/// another program started (libvirt) is attached to its console socket
/// instead (`Vm::attach_console`) and has no child.
pub struct Vm {
    child: Option<Child>,
    log: Arc<SerialLog>,
    /// Index of the next line `wait_line` looks at.
    cursor: usize,
    pub qmp: Option<Qmp>,
    /// The EL3 firmware's control channel socket, when the VM has one.
    pub control: Option<std::path::PathBuf>,
    /// A client connected before the vCPUs started (`Case::control_at_start`).
    pub control_client: Option<crate::control::Control>,
    pub started: Instant,
    /// Figures a test scenario puts on its PASS line.
    pub report: Vec<String>,
    stdin: Option<Box<dyn Write + Send>>,
    cmd_id: u32,
    exit: Option<ExitStatus>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// A fatal kernel condition: waiting further is pointless.
fn is_fatal(line: &str) -> bool {
    line.contains("Kernel panic - not syncing")
}

impl Vm {
    /// Starts QEMU. The serial console is written raw to `log_path`.
    pub fn spawn(cfg: &VmConfig, log_path: &Path, with_qmp: bool) -> Result<Vm> {
        if let Some(d) = log_path.parent() {
            std::fs::create_dir_all(d).ctx("mkdir log dir")?;
        }
        let qmp_path = log_path.with_extension("qmp");
        let _ = std::fs::remove_file(&qmp_path);
        let mut cmd = cfg.command("stdio", with_qmp.then_some(qmp_path.as_path()));
        let mut logf =
            std::fs::File::create(log_path).ctx(format!("create {}", log_path.display()))?;
        writeln!(logf, "# {}", crate::util::render(&cmd)).ctx("write log")?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .ctx(format!("cannot start {}", cfg.arch.qemu()))?;
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let logf = Arc::new(Mutex::new(logf));
        let (log, reader) = read_console(out, logf.clone());
        // QEMU's own diagnostics go to the same log, clearly tagged.
        let lf3 = logf.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            if !s.is_empty() {
                let mut f = lf3.lock().unwrap();
                for l in s.lines() {
                    let _ = writeln!(f, "\n[qemu stderr] {l}");
                }
            }
        });
        let stdin = child
            .stdin
            .take()
            .map(|s| Box::new(s) as Box<dyn Write + Send>);
        let mut vm = Vm {
            child: Some(child),
            log,
            cursor: 0,
            qmp: None,
            control: None,
            control_client: None,
            started,
            report: Vec::new(),
            stdin,
            cmd_id: 0,
            exit: None,
            reader: Some(reader),
        };
        if with_qmp {
            let transcript = std::fs::File::create(log_path.with_extension("qmp.log")).ok();
            vm.qmp = Some(Qmp::connect(
                &qmp_path,
                Duration::from_secs(10),
                transcript,
            )?);
        }
        Ok(vm)
    }

    /// Attaches to the console of a VM another program runs: a serial port
    /// QEMU serves as a Unix socket (`server=on`), written raw to
    /// `log_path`. The console's end stands for QEMU's exit: `wait_exit`
    /// then reports status 0, so the caller must ask the program that runs
    /// QEMU how it ended.
    pub fn attach_console(socket: &Path, log_path: &Path, timeout: Duration) -> Result<Vm> {
        if let Some(d) = log_path.parent() {
            std::fs::create_dir_all(d).ctx("mkdir log dir")?;
        }
        let t = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if t.elapsed() >= timeout => {
                    return Err(format!("cannot connect to {}: {e}", socket.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let input = stream.try_clone().ctx("clone console socket")?;
        let mut logf =
            std::fs::File::create(log_path).ctx(format!("create {}", log_path.display()))?;
        writeln!(logf, "# console {}", socket.display()).ctx("write log")?;
        let (log, reader) = read_console(stream, Arc::new(Mutex::new(logf)));
        Ok(Vm {
            child: None,
            log,
            cursor: 0,
            qmp: None,
            control: None,
            control_client: None,
            started: Instant::now(),
            report: Vec::new(),
            stdin: Some(Box::new(input)),
            cmd_id: 0,
            exit: None,
            reader: Some(reader),
        })
    }

    /// All lines captured so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.st.lock().unwrap().lines.clone()
    }

    /// Waits for the next line (after the cursor) matching `pred`, and moves
    /// the cursor past it. Fails on timeout, QEMU exit or kernel panic.
    pub fn wait_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.log.st.lock().unwrap();
        loop {
            while self.cursor < st.lines.len() {
                let l = &st.lines[self.cursor];
                self.cursor += 1;
                if pred(l) {
                    return Ok(l.clone());
                }
                if is_fatal(l) {
                    return Err(format!("kernel panic while waiting for {what}: {l}"));
                }
            }
            if st.eof {
                // The firmware's own reason, if it gave one, is the most
                // useful thing to report.
                let why = st
                    .lines
                    .iter()
                    .rev()
                    .find(|l| l.starts_with("hotstub: error:"))
                    .map(|l| format!(" after `{l}`"))
                    .unwrap_or_default();
                drop(st);
                let status = self.wait_exit(Duration::from_secs(5)).ok().flatten();
                return Err(format!(
                    "QEMU exited ({}){why} while waiting for {what}",
                    status.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "timeout after {}s waiting for {what}",
                    timeout.as_secs()
                ));
            }
            st = self.log.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Waits for a line starting with `prefix`.
    pub fn wait_prefix(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let p = prefix.to_string();
        self.wait_line(&format!("`{prefix}`"), timeout, move |l| l.starts_with(&p))
    }

    pub fn send_serial(&mut self, text: &str) -> Result<()> {
        let s = self.stdin.as_mut().ok_or("serial input closed")?;
        s.write_all(text.as_bytes()).ctx("write to serial")?;
        s.flush().ctx("flush serial")
    }

    /// Runs a shell command in the guest (init action `cmd`) and returns its
    /// exit code and output lines.
    pub fn guest_cmd(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, Vec<String>)> {
        self.cmd_id += 1;
        let id = self.cmd_id;
        if cmd.contains('\n') {
            return Err("guest command must be one line".into());
        }
        self.send_serial(&format!("HOTSTUB-CMD {id} {cmd}\n"))?;
        let out_prefix = format!("HOTSTUB-OUT {id} ");
        let rc_prefix = format!("HOTSTUB-RC {id} ");
        let rc_line = self
            .wait_prefix(&rc_prefix, timeout)
            .map_err(|e| format!("guest command `{cmd}`: {e}"))?;
        let rc = rc_line[rc_prefix.len()..].trim().parse().unwrap_or(-1);
        let out = self
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&out_prefix).map(str::to_string))
            .collect();
        Ok((rc, out))
    }

    /// Waits up to `timeout` for QEMU to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        if self.exit.is_some() {
            return Ok(self.exit);
        }
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            return Ok(self.wait_console_end(deadline));
        };
        loop {
            if let Some(s) = child.try_wait().ctx("wait for QEMU")? {
                self.exit = Some(s);
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An attached console (no child) until its end or `deadline`.
    fn wait_console_end(&mut self, deadline: Instant) -> Option<ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        let mut st = self.log.st.lock().unwrap();
        while !st.eof {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = self.log.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
        drop(st);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.exit = Some(ExitStatus::from_raw(0));
        self.exit
    }

    /// Kills QEMU (a child) or lets go of the console (attached: the
    /// program that runs QEMU stops it).
    pub fn kill(&mut self) {
        if self.exit.is_some() {
            return;
        }
        match self.child.as_mut() {
            Some(child) => {
                let _ = child.kill();
                self.exit = child.wait().ok();
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
            }
            // The reader ends when QEMU closes the socket; it is not
            // waited for.
            None => self.stdin = None,
        }
    }
}

/// Reads a console into a `SerialLog` and `logf` on a thread of its own.
fn read_console(
    mut out: impl Read + Send + 'static,
    logf: Arc<Mutex<std::fs::File>>,
) -> (Arc<SerialLog>, std::thread::JoinHandle<()>) {
    let log = Arc::new(SerialLog {
        st: Mutex::new(LogState::default()),
        cv: Condvar::new(),
    });
    let l2 = log.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match out.read(&mut buf) {
                // A signal interrupts the read, not the console.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = logf.lock().unwrap().write_all(&buf[..n]);
                    l2.push(&buf[..n]);
                }
            }
        }
        l2.close();
    });
    (log, reader)
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_are_stripped() {
        let l = "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2JHOTSTUB: init reached";
        assert_eq!(super::strip_escapes(l), "HOTSTUB: init reached");
        assert_eq!(super::strip_escapes("plain"), "plain");
    }
}
