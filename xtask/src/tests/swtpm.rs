//! A software TPM for a case's VM (`Case::tpm`): an swtpm process on a
//! socket and QEMU's TIS device on it.

use crate::build::Arch;
use crate::util::{Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A software TPM for one VM; the process ends with the value.
pub(super) struct Swtpm(std::process::Child);

impl Swtpm {
    /// Starts swtpm (TPM 2.0) with its state in `dir` and returns it with
    /// the QEMU arguments that attach it.
    pub(super) fn start(dir: &Path, arch: Arch) -> Result<(Swtpm, Vec<String>)> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).ctx("mkdir swtpm state")?;
        let sock = dir.join("sock");
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", sock.display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .ctx("cannot start swtpm (Debian package swtpm)")?;
        let t = Instant::now();
        while !sock.exists() {
            if t.elapsed() > Duration::from_secs(10) {
                return Err("swtpm did not create its socket".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "-chardev".to_string(),
            format!("socket,id=chrtpm,path={}", sock.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            // The ISA TIS on q35, the sysbus one on virt.
            match arch {
                Arch::X86_64 => "tpm-tis,tpmdev=tpm0".into(),
                Arch::Aarch64 => "tpm-tis-device,tpmdev=tpm0".into(),
            },
        ];
        Ok((Swtpm(child), args.to_vec()))
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
