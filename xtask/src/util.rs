//! Small helpers shared by every xtask command: errors, printing, running
//! host programs, Debian package state.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub type Result<T> = std::result::Result<T, String>;

/// Turns any displayable error into our string error with context.
pub trait Context<T> {
    fn ctx(self, what: impl Display) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl Display) -> Result<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Prints a step the user should see (what xtask is doing right now).
pub fn step(msg: impl Display) {
    eprintln!("xtask: {msg}");
}

/// The workspace root (parent of the xtask crate).
pub fn root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// `target/` of the workspace (respects CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                root().join(p)
            }
        }
        None => root().join("target"),
    }
}

/// Shell-like rendering of a command line, for printing.
pub fn render(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!(
                "{}={} ",
                k.to_string_lossy(),
                quote(&v.to_string_lossy())
            ));
        }
    }
    s.push_str(&quote(&cmd.get_program().to_string_lossy()));
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(&a.to_string_lossy()));
    }
    s
}

pub fn quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// Runs a command, printing it first; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    step(format!("$ {}", render(cmd)));
    let st = cmd.status().ctx(format!(
        "cannot start {}",
        cmd.get_program().to_string_lossy()
    ))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("command failed ({st}): {}", render(cmd)))
    }
}

/// Runs a command quietly and returns its stdout; fails unless it exits 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::piped()).output().ctx(format!(
        "cannot start {}",
        cmd.get_program().to_string_lossy()
    ))?;
    if !out.status.success() {
        return Err(format!(
            "command failed ({}): {}\n{}",
            out.status,
            render(cmd),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

/// Whether `prog` is found on PATH.
pub fn have(prog: &str) -> bool {
    if prog.contains('/') {
        return Path::new(prog).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// Whether a Debian package is installed (dpkg status "install ok installed").
pub fn pkg_installed(pkg: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .map(|s| s.trim() == "install ok installed")
        .unwrap_or(false)
}

/// Writes a file atomically (write to a temporary sibling, then rename), so
/// an interrupted run never leaves a half-written cache entry behind.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).ctx(format!("mkdir {}", d.display()))?;
    }
    let tmp = path.with_extension("tmp-xtask");
    std::fs::write(&tmp, data).ctx(format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(format!("rename to {}", path.display()))
}

/// MD5 of a file via coreutils `md5sum` (always present on Debian).
pub fn md5_file(path: &Path) -> Result<String> {
    let out = output(Command::new("md5sum").arg(path))?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| "md5sum printed nothing".into())
}

/// Deterministic pseudo-random bytes (xorshift64*), for test disks and junk
/// kernels: reproducible across runs so logs are comparable.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The first `n` bytes of a file (fewer when it is shorter).
pub fn read_head(path: &Path, n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ctx(format!("open {}", path.display()))?;
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match f
            .read(&mut buf[got..])
            .ctx(format!("read {}", path.display()))?
        {
            0 => break,
            k => got += k,
        }
    }
    buf.truncate(got);
    Ok(buf)
}
