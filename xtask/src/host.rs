//! Host tools the suite relies on: which Debian packages provide them,
//! where they come from (QEMU from bookworm-backports), and the minimum
//! version of each, checked before any VM starts.

use crate::util::{self, have, pkg_installed, run, step, Result};
use std::process::Command;

/// The Debian suite QEMU is installed from on bookworm: bookworm itself
/// ships 7.2, which the suite does not pass on (see `QEMU_MIN`).
pub const BACKPORTS: &str = "bookworm-backports";

/// Lowest QEMU the suite is known to pass on. 10.0 is what it is developed
/// and run against (bookworm-backports); 7.2 (bookworm) fails two tests:
/// TCG refuses `-smp maxcpus=288` ("requires kernel irqchip and X2APIC API
/// support") and a re-plugged vCPU kills QEMU. No release between was run.
pub const QEMU_MIN: (u32, u32, u32) = (10, 0, 0);

/// Lowest iasl (ACPICA release date, YYYYMMDD): bookworm's 20200925 knows
/// every table revision the firmware writes (MADT 6 and GTDT 3 are ACPI 6.3
/// to 6.5 layouts; iasl only warns on unknown trailing bytes, and the
/// suite reads its output), and it is the oldest release the suite runs on.
pub const IASL_MIN: u32 = 20200925;

/// One external program the suite runs.
pub struct Tool {
    /// Program name on PATH.
    pub program: &'static str,
    /// Debian package that provides it.
    pub package: &'static str,
    /// Installed from bookworm-backports on bookworm.
    pub backports: bool,
    /// Minimum version, or None when any version does.
    pub min: Option<Version>,
    /// How to ask the program for its version and read the answer.
    pub version_arg: &'static str,
    pub parse: fn(&str) -> Option<Version>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// major.minor.patch
    Semver(u32, u32, u32),
    /// ACPICA's release date.
    Date(u32),
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Version::Semver(a, b, c) => write!(f, "{a}.{b}.{c}"),
            Version::Date(d) => write!(f, "{d}"),
        }
    }
}

const QEMU_MIN_V: Version = Version::Semver(QEMU_MIN.0, QEMU_MIN.1, QEMU_MIN.2);

pub const QEMU_X86: Tool = Tool {
    program: "qemu-system-x86_64",
    package: "qemu-system-x86",
    backports: true,
    min: Some(QEMU_MIN_V),
    version_arg: "--version",
    parse: parse_qemu_version,
};
pub const QEMU_ARM: Tool = Tool {
    program: "qemu-system-aarch64",
    package: "qemu-system-arm",
    backports: true,
    min: Some(QEMU_MIN_V),
    version_arg: "--version",
    parse: parse_qemu_version,
};
/// Option ROMs and firmware blobs QEMU loads (qboot, the NIC ROMs);
/// it must match the QEMU release, so it comes from the same suite.
pub const QEMU_DATA: Tool = Tool {
    program: "",
    package: "qemu-system-data",
    backports: true,
    min: None,
    version_arg: "--version",
    parse: parse_qemu_version,
};
pub const IASL: Tool = Tool {
    program: "iasl",
    package: "acpica-tools",
    backports: false,
    min: Some(Version::Date(IASL_MIN)),
    version_arg: "-v",
    parse: parse_iasl_version,
};

/// libvirt for the libvirt cases (`tests/libvirt`): 11.3 is the release
/// they are run on (bookworm-backports); bookworm's own 9.0 was not run.
const LIBVIRT_MIN_V: Version = Version::Semver(11, 3, 0);
pub const LIBVIRTD: Tool = Tool {
    program: "libvirtd",
    package: "libvirt-daemon",
    backports: true,
    min: Some(LIBVIRT_MIN_V),
    version_arg: "--version",
    parse: parse_last_word_version,
};
pub const VIRSH: Tool = Tool {
    program: "virsh",
    package: "libvirt-clients",
    backports: true,
    min: Some(LIBVIRT_MIN_V),
    version_arg: "--version",
    parse: parse_last_word_version,
};
/// What a private libvirtd with the QEMU driver needs, by name: Debian's
/// 11.3 has no modular `virtqemud`, so the monolithic `libvirtd`
/// (libvirt-daemon) runs the QEMU driver (libvirt-daemon-driver-qemu).
/// On bookworm each comes from bookworm-backports as `PKG/bookworm-backports`,
/// not `-t bookworm-backports`: with `-t` apt also takes the newer systemd
/// from backports for libvirt-daemon-driver-qemu's `systemd-container`
/// dependency, which bookworm's own satisfies.
const LIBVIRT_PKGS: &[&str] = &[
    "libvirt-daemon",
    "libvirt-daemon-common",
    "libvirt-daemon-driver-qemu",
    "libvirt-daemon-log",
    "libvirt-clients",
    "libvirt-common",
    "libvirt0",
];

/// Packages without a version requirement that the suite needs.
const PLAIN: &[&str] = &[
    "qemu-efi-aarch64",
    "busybox-static",
    "cpio",
    "xz-utils",
    "zstd",
    // The software TPM the TPM tests give QEMU, and tpm2_eventlog, which
    // the measured-boot cases run on the event log Linux got.
    "swtpm",
    "tpm2-tools",
    // libFuzzer is C++: the fuzz build (libfuzzer-sys) compiles it.
    "g++",
    // The disk-boot test images (assets::disks::DISK_TOOLS).
    "e2fsprogs",
    "dosfstools",
    "mtools",
    "fdisk",
];

/// Everything `cargo xtask test` needs.
pub fn suite_tools() -> Vec<&'static Tool> {
    vec![&QEMU_X86, &QEMU_ARM, &QEMU_DATA, &IASL]
}

/// Parses `qemu-system-* --version` ("QEMU emulator version 10.0.2
/// (Debian 1:10.0.2+ds-...)").
pub fn parse_qemu_version(s: &str) -> Option<Version> {
    let rest = s.split("version ").nth(1)?;
    let word = rest.split_whitespace().next()?;
    let mut it = word.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
    });
    let a = it.next()?.ok()?;
    let b = it.next().and_then(|r| r.ok()).unwrap_or(0);
    let c = it.next().and_then(|r| r.ok()).unwrap_or(0);
    Some(Version::Semver(a, b, c))
}

/// Parses `libvirtd --version` ("libvirtd (libvirt) 11.3.0") and `virsh
/// --version` ("11.3.0").
pub fn parse_last_word_version(s: &str) -> Option<Version> {
    let word = s.lines().next()?.split_whitespace().last()?;
    let mut it = word.split('.').map(|p| p.parse::<u32>().ok());
    let a = it.next()??;
    let b = it.next()??;
    let c = it.next().flatten().unwrap_or(0);
    Some(Version::Semver(a, b, c))
}

/// Parses `iasl -v` ("ASL+ Optimizing Compiler/Disassembler version
/// 20200925").
pub fn parse_iasl_version(s: &str) -> Option<Version> {
    s.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .filter(|w| w.len() == 8)
        .and_then(|w| w.parse().ok())
        .map(Version::Date)
}

fn installed_version(t: &Tool) -> Result<Version> {
    // iasl -v exits 0 on new releases and 1 on some old ones: take the
    // text either way.
    let out = Command::new(t.program)
        .arg(t.version_arg)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", t.program))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (t.parse)(&text).ok_or_else(|| {
        format!(
            "cannot read the version of {} from `{}`",
            t.program,
            text.lines().next().unwrap_or("").trim()
        )
    })
}

fn install_hint(pkgs: &[&str], backports: bool) -> String {
    let t = if backports {
        format!(" -t {BACKPORTS}")
    } else {
        String::new()
    };
    format!(
        "apt-get install -y --no-install-recommends{t} {}",
        pkgs.join(" ")
    )
}

/// Whether the host is Debian bookworm (QEMU then comes from backports;
/// a newer Debian ships a new enough QEMU itself).
fn on_bookworm() -> bool {
    std::fs::read_to_string("/etc/os-release")
        .map(|s| s.lines().any(|l| l.trim() == "VERSION_CODENAME=bookworm"))
        .unwrap_or(false)
}

fn below_min(t: &Tool) -> bool {
    match t.min {
        None => false,
        Some(m) => !have(t.program) || installed_version(t).map(|v| v < m).unwrap_or(true),
    }
}

/// Installs what is missing or too old (when root; otherwise says what to
/// run), then checks every tool's version. The `extra` packages have no
/// version requirement.
pub fn ensure(tools: &[&Tool], extra: &[&str]) -> Result<()> {
    let backports = on_bookworm();
    let mut from_bpo: Vec<&str> = Vec::new();
    let mut plain: Vec<&str> = extra.to_vec();
    for t in tools {
        if pkg_installed(t.package) && !below_min(t) {
            continue;
        }
        if t.backports && backports {
            from_bpo.push(t.package);
        } else {
            plain.push(t.package);
        }
    }
    plain.retain(|p| !pkg_installed(p));
    if from_bpo.is_empty() && plain.is_empty() {
        return check_versions(tools);
    }
    if !util::is_root() {
        let mut hints = Vec::new();
        if !from_bpo.is_empty() {
            hints.push(install_hint(&from_bpo, true));
        }
        if !plain.is_empty() {
            hints.push(install_hint(&plain, false));
        }
        return Err(format!(
            "missing or too old Debian packages: {} (QEMU {QEMU_MIN_V} or newer is needed)\n  install with: sudo {}",
            from_bpo.iter().chain(&plain).copied().collect::<Vec<_>>().join(" "),
            hints.join(" && sudo ")
        ));
    }
    if !from_bpo.is_empty() {
        crate::assets::ensure_backports_source()?;
    }
    run(Command::new("apt-get").arg("update"))?;
    let install = |pkgs: &[&str], suite: Option<&str>| {
        let mut c = Command::new("apt-get");
        c.args(["install", "-y", "--no-install-recommends"]);
        if let Some(s) = suite {
            c.args(["-t", s]);
        }
        run(c.args(pkgs).env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if !from_bpo.is_empty() {
        step(format!(
            "installing {} from {BACKPORTS} (bookworm's QEMU 7.2 is older than the {QEMU_MIN_V} the suite needs)",
            from_bpo.join(" ")
        ));
        install(&from_bpo, Some(BACKPORTS))?;
    }
    if !plain.is_empty() {
        step(format!("installing Debian packages: {}", plain.join(" ")));
        install(&plain, None)?;
    }
    check_versions(tools)
}

/// One line per tool below its minimum: what was found, what is needed,
/// and the command that fixes it.
pub fn check_versions(tools: &[&Tool]) -> Result<()> {
    let mut errs = Vec::new();
    for t in tools {
        let Some(min) = t.min else { continue };
        let fix = install_hint(&[t.package], t.backports && on_bookworm());
        if !have(t.program) {
            errs.push(format!(
                "{} not found; {min} or newer is needed: run `{fix}`",
                t.program
            ));
            continue;
        }
        match installed_version(t) {
            Ok(v) if v >= min => step(format!("{} {v} (need {min} or newer): ok", t.program)),
            Ok(v) => errs.push(format!(
                "{} is {v}, the suite needs {min} or newer: run `{fix}`",
                t.program
            )),
            Err(e) => errs.push(format!("{e}; {min} or newer is needed: run `{fix}`")),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

/// Everything the test suite needs on the host.
pub fn ensure_suite() -> Result<()> {
    ensure(&suite_tools(), PLAIN)
}

/// libvirt (`LIBVIRTD`, `VIRSH`) for the libvirt cases, installed when
/// missing or too old (as root; otherwise the error says what to run);
/// Ok names the version. An Err makes those cases SKIPPED, not failed.
pub fn ensure_libvirt() -> Result<String> {
    let tools = [&LIBVIRTD, &VIRSH];
    let bpo = on_bookworm();
    let pkgs: Vec<String> = LIBVIRT_PKGS
        .iter()
        .map(|p| {
            if bpo {
                format!("{p}/{BACKPORTS}")
            } else {
                p.to_string()
            }
        })
        .collect();
    let cmd = format!(
        "apt-get install -y --no-install-recommends {}",
        pkgs.join(" ")
    );
    if tools.iter().any(|t| below_min(t)) {
        if !util::is_root() {
            return Err(format!(
                "libvirt {LIBVIRT_MIN_V} or newer is missing: install with `sudo {cmd}`"
            ));
        }
        if bpo {
            crate::assets::ensure_backports_source()?;
        }
        run(Command::new("apt-get").arg("update"))?;
        step(format!(
            "installing libvirt (its own daemon is started by the libvirt cases): {cmd}"
        ));
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive"))
        .map_err(|e| format!("cannot install libvirt ({cmd}): {e}"))?;
    }
    for t in tools {
        match (have(t.program), installed_version(t)) {
            (true, Ok(v)) if v >= LIBVIRT_MIN_V => step(format!(
                "{} {v} (need {LIBVIRT_MIN_V} or newer): ok",
                t.program
            )),
            (true, Ok(v)) => {
                return Err(format!(
                    "{} is {v}, {LIBVIRT_MIN_V} or newer is needed: run `{cmd}`",
                    t.program
                ))
            }
            (true, Err(e)) => return Err(format!("{e}; run `{cmd}`")),
            (false, _) => {
                return Err(format!(
                    "{} not found after installing libvirt: run `{cmd}`",
                    t.program
                ))
            }
        }
    }
    Ok(format!(
        "libvirt {}",
        installed_version(&LIBVIRTD).map_or_else(|_| "?".into(), |v| v.to_string())
    ))
}

/// QEMU for one arch (run and bench), with its data files.
pub fn ensure_qemu(arch: crate::build::Arch) -> Result<()> {
    let q = match arch {
        crate::build::Arch::X86_64 => &QEMU_X86,
        crate::build::Arch::Aarch64 => &QEMU_ARM,
    };
    ensure(&[q, &QEMU_DATA], &[])
}

/// The host QEMU's version ("10.0.2"; both binaries' when they differ).
pub fn qemu_versions() -> String {
    let mut v: Vec<String> = [&QEMU_X86, &QEMU_ARM]
        .map(|t| installed_version(t).map_or_else(|_| "?".into(), |v| v.to_string()))
        .to_vec();
    v.dedup();
    v.join("/")
}

/// The versions in use, for the PASS line of the host-tools check.
pub fn summary() -> String {
    [&QEMU_X86, &QEMU_ARM, &IASL]
        .map(|t| match installed_version(t) {
            Ok(v) => format!("{} {v}", t.program),
            Err(_) => format!("{} ?", t.program),
        })
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_versions() {
        assert_eq!(
            parse_qemu_version(
                "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"
            ),
            Some(Version::Semver(10, 0, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)"),
            Some(Version::Semver(7, 2, 19))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 11.0.50"),
            Some(Version::Semver(11, 0, 50))
        );
        assert_eq!(parse_qemu_version("nothing here"), None);
        assert!(Version::Semver(7, 2, 19) < QEMU_MIN_V);
        assert!(Version::Semver(10, 0, 0) >= QEMU_MIN_V);
        assert!(Version::Semver(10, 1, 0) > QEMU_MIN_V);
    }

    #[test]
    fn libvirt_versions() {
        assert_eq!(
            parse_last_word_version("libvirtd (libvirt) 11.3.0\n"),
            Some(Version::Semver(11, 3, 0))
        );
        assert_eq!(
            parse_last_word_version("9.0.0\n"),
            Some(Version::Semver(9, 0, 0))
        );
        assert_eq!(parse_last_word_version("libvirtd (libvirt)"), None);
        assert!(Version::Semver(9, 0, 0) < LIBVIRT_MIN_V);
    }

    #[test]
    fn iasl_versions() {
        let t = "\nIntel ACPI Component Architecture\nASL+ Optimizing Compiler/Disassembler version 20200925\nCopyright (c) 2000 - 2020 Intel Corporation\n";
        assert_eq!(parse_iasl_version(t), Some(Version::Date(20200925)));
        assert_eq!(parse_iasl_version("version 1.2"), None);
        assert!(Version::Date(20190509) < Version::Date(IASL_MIN));
    }

    #[test]
    fn hint_names_the_suite() {
        assert_eq!(
            install_hint(&["qemu-system-x86"], true),
            "apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86"
        );
    }
}
