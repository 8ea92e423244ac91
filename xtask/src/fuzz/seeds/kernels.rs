//! The setup headers of the test matrix's kernels.

use super::corpus::{cat, Seeds};
use crate::build::Arch;
use std::path::PathBuf;

/// The matrix's kernels: those cached under target/assets/<arch>/kernel-*/,
/// fetched first (as `cargo xtask assets` does) when none are.
pub(super) fn kernel_headers(s: &mut Seeds) {
    if !kernel_headers_cached(s) {
        for arch in Arch::ALL {
            for f in crate::assets::Flavor::ALL {
                if let Err(e) = crate::assets::kernel(arch, f) {
                    s.notes
                        .push(format!("no {} {} kernel: {e}", arch.name(), f.name()));
                }
            }
        }
        if !kernel_headers_cached(s) {
            s.notes.push(
                "no kernels under target/assets (`cargo xtask assets` fetches them): \
                 kernel header seeds are synthetic only"
                    .into(),
            );
        }
    }
}

fn kernel_headers_cached(s: &mut Seeds) -> bool {
    const SRC: &str = "matrix kernels";
    let mut found = 0;
    for arch in ["x86_64", "aarch64"] {
        let dir = crate::util::target_dir().join("assets").join(arch);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kernel-") && !n.starts_with("kernel-current"))
                    && p.is_dir()
            })
            .collect();
        dirs.sort();
        for d in dirs {
            let version = d
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace("kernel-", "");
            for (file, x86) in [("bzImage", true), ("Image", false)] {
                let path = d.join(file);
                let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
                    continue;
                };
                let Ok(head) = crate::util::read_head(&path, 0x10000) else {
                    continue;
                };
                found += 1;
                if x86 {
                    // The setup part: (setup_sects + 1) * 512 bytes, 0 meaning 4.
                    let sects = match head.get(0x1f1).copied().unwrap_or(0) {
                        0 => 4,
                        n => usize::from(n),
                    };
                    let setup = &head[..((sects + 1) * 512).min(head.len())];
                    let sizes = cat(&[
                        &0x40_0000u64.to_le_bytes(),
                        &(len - setup.len() as u64).to_le_bytes(),
                    ]);
                    s.add(
                        "bzimage",
                        &format!("linux-{version}"),
                        cat(&[&sizes, setup]),
                        SRC,
                    );
                }
                if !x86 {
                    // The start of a real Image, gzip'd as Debian ships
                    // vmlinuz on arm64 (gzip -9).
                    let n = head.len().min(16 << 10);
                    s.add("gzip", &format!("linux-{version}"), gzip(&head[..n]), SRC);
                }
                let sizes = cat(&[&len.to_le_bytes(), &0x4010_0000u64.to_le_bytes()]);
                let n = head.len().min(4096);
                s.add(
                    "arm64_image",
                    &format!("linux-{version}-{file}"),
                    cat(&[&sizes, &head[..n]]),
                    SRC,
                );
            }
        }
    }
    found > 0
}

/// `data` as one gzip member, with the file name a kernel package's
/// member has.
pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::GzBuilder::new()
        .filename("Image")
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(data).expect("gzip to memory");
    gz.finish().expect("gzip to memory")
}
