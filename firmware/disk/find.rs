//! Which configuration, entry and files to boot: Boot Loader Spec entries
//! on any partition first, then GRUB's default entry, then
//! extlinux.conf. One file system is open at a time (ext4-view's cache is
//! a few hundred KiB and the arm heap is small).

use super::conf::{self, Entry};
use super::part::{self, Partition};
use super::volume::Volume;
use super::{Choice, Disk, Error, FileRef, Found};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Where BLS entries live: on the ESP or XBOOTLDR partition (`$BOOT`),
/// or in `/boot` of a root file system.
const BLS_DIRS: [&str; 2] = ["/loader/entries", "/boot/loader/entries"];
const GRUB_CFGS: [&str; 2] = ["/boot/grub/grub.cfg", "/grub/grub.cfg"];
/// The extlinux.conf locations and the directory relative paths in them
/// start from (U-Boot's sysboot prefix).
const EXTLINUX: [(&str, &str); 2] = [
    ("/boot/extlinux/extlinux.conf", "/boot/"),
    ("/extlinux/extlinux.conf", "/"),
];
/// Configuration files are read whole, so they are capped (update-grub's
/// grub.cfg for a dozen kernels is ~20 KiB).
const MAX_BLS: usize = 16 * 1024;
const MAX_CFG: usize = 256 * 1024;

/// The architecture name a BLS `architecture` key must match.
const ARCH: &str = if cfg!(target_arch = "aarch64") {
    "aa64"
} else {
    "x64"
};

pub fn find(dev: &Disk, choice: &Choice) -> Result<Found, Error> {
    let parts = part::partitions(&mut *dev.borrow_mut())?;
    let candidates: Vec<Partition> = match choice.partition {
        Some(n) => match parts.iter().find(|p| p.number == n) {
            Some(p) => alloc::vec![*p],
            None => return Err(Error::NoSuchPartition(n)),
        },
        None => parts.clone(),
    };
    let mut s = Search {
        dev,
        parts: &parts,
        first_error: None,
        chosen: choice.partition.is_some(),
    };
    let want = choice.entry;
    if let Some(f) = s.bls(&candidates, want)? {
        return Ok(f);
    }
    if let Some(f) = s.grub(&candidates, want)? {
        return Ok(f);
    }
    if let Some(f) = s.extlinux(&candidates, want)? {
        return Ok(f);
    }
    // A damaged file system explains an empty search better than "no
    // configuration".
    Err(match (want, s.first_error) {
        (_, Some(e)) => e,
        (Some(w), None) => Error::NoSuchEntry(w.to_string()),
        (None, None) => Error::NoBootConfig,
    })
}

struct Search<'a> {
    dev: &'a Disk,
    parts: &'a [Partition],
    first_error: Option<Error>,
    /// The user named the partition: its errors are the answer.
    chosen: bool,
}

impl Search<'_> {
    /// The file system on `p`; a damaged one is remembered and skipped
    /// unless it is the chosen partition.
    fn open(&mut self, p: &Partition) -> Result<Option<Volume>, Error> {
        match Volume::open(self.dev, p) {
            Ok(v) => Ok(v),
            Err(e @ Error::Io { .. }) => Err(e),
            Err(e) if self.chosen => Err(e),
            Err(e) => {
                self.first_error.get_or_insert(e);
                Ok(None)
            }
        }
    }

    fn bls(&mut self, cands: &[Partition], want: Option<&str>) -> Result<Option<Found>, Error> {
        let mut all: Vec<(Partition, &str, Entry, String)> = Vec::new();
        for p in cands {
            let Some(mut v) = self.open(p)? else {
                continue;
            };
            for dir in BLS_DIRS {
                for name in v.list(dir)? {
                    // FAT keeps short names upper case: the suffix
                    // matches without case.
                    let stem = name.len().checked_sub(5).and_then(|n| name.get(..n));
                    let suffix = name.len().checked_sub(5).and_then(|n| name.get(n..));
                    let (Some(id), Some(".conf" | ".CONF")) = (stem, suffix) else {
                        continue;
                    };
                    if all.len() >= conf::MAX_ENTRIES {
                        break;
                    }
                    let path = format!("{dir}/{name}");
                    let text = text(&mut v, &path, MAX_BLS)?.unwrap_or_default();
                    if let Some(e) = conf::bls(id, &text, ARCH) {
                        all.push((*p, dir, e, text));
                    }
                }
            }
        }
        if all.is_empty() {
            return Ok(None);
        }
        let mut entries: Vec<Entry> = all.iter().map(|(_, _, e, _)| e.clone()).collect();
        conf::bls_sort(&mut entries);
        let pick = match want {
            Some(w) => match entries.iter().find(|e| e.is(w)) {
                Some(e) => e,
                None => return Ok(None),
            },
            // Entries without `linux` are not valid (BLS "Type #1 Boot
            // Loader Entry Keys"): skipped, unless none is.
            None => entries
                .iter()
                .find(|e| e.kernel.is_some())
                .unwrap_or(&entries[0]),
        };
        let (p, dir, _, text) = all
            .iter()
            .find(|(_, _, e, _)| e.id == pick.id)
            .ok_or(Error::NoBootConfig)?;
        let file = format!("{dir}/{}.conf", pick.id);
        if pick.kernel.is_none() {
            return Err(Error::Config {
                file,
                why: "BLS entry has no linux line".to_string(),
            });
        }
        // In a root file system's /boot the entry's paths are relative to
        // /boot ($BOOT), as the loader that mounts it there sees them.
        let prefix = if dir.starts_with("/boot/") {
            "/boot"
        } else {
            ""
        };
        let config = (file, text.clone());
        self.resolve(*p, pick, "bls", config, |path| format!("{prefix}{path}"))
            .map(Some)
    }

    fn grub(&mut self, cands: &[Partition], want: Option<&str>) -> Result<Option<Found>, Error> {
        for p in cands {
            let Some(mut v) = self.open(p)? else {
                continue;
            };
            for path in GRUB_CFGS {
                let Some(text) = text(&mut v, path, MAX_CFG)? else {
                    continue;
                };
                let g = conf::grub(&text);
                let Some(e) = conf::grub_pick(&g, want) else {
                    if want.is_some() {
                        continue;
                    }
                    return Err(Error::Config {
                        file: path.to_string(),
                        why: format!(
                            "default entry \"{}\" names no menuentry",
                            g.default.as_deref().unwrap_or("0")
                        ),
                    });
                };
                if e.kernel.is_none() {
                    return Err(Error::Config {
                        file: path.to_string(),
                        why: format!("entry \"{}\" has no linux line", e.name()),
                    });
                }
                let e = e.clone();
                drop(v);
                let on = self.grub_root(&e, *p)?;
                let config = (path.to_string(), text);
                return self
                    .resolve(on, &e, "grub", config, |f| f.to_string())
                    .map(Some);
            }
        }
        Ok(None)
    }

    /// The partition GRUB's root names: by file system UUID, by number,
    /// else the configuration's own.
    fn grub_root(&mut self, e: &Entry, own: Partition) -> Result<Partition, Error> {
        if let Some(n) = e.root_part {
            return self
                .parts
                .iter()
                .find(|p| p.number == n)
                .copied()
                .ok_or(Error::NoSuchPartition(n));
        }
        let Some(uuid) = &e.root_uuid else {
            return Ok(own);
        };
        for p in self.parts {
            if let Some(v) = self.open(p)? {
                if v.uuid().eq_ignore_ascii_case(uuid) {
                    return Ok(*p);
                }
            }
        }
        Err(Error::Config {
            file: "grub.cfg".to_string(),
            why: format!("no file system has the UUID {uuid} its search names"),
        })
    }

    fn extlinux(
        &mut self,
        cands: &[Partition],
        want: Option<&str>,
    ) -> Result<Option<Found>, Error> {
        for p in cands {
            let Some(mut v) = self.open(p)? else {
                continue;
            };
            for (path, prefix) in EXTLINUX {
                let Some(text) = text(&mut v, path, MAX_CFG)? else {
                    continue;
                };
                let (entries, default) = conf::extlinux(&text);
                let pick = match (want, default) {
                    (Some(w), _) => entries.iter().find(|e| e.is(w)),
                    (None, Some(d)) => match entries.iter().find(|e| e.id == d) {
                        Some(e) => Some(e),
                        None => {
                            return Err(Error::Config {
                                file: path.to_string(),
                                why: format!("default \"{d}\" names no label"),
                            })
                        }
                    },
                    (None, None) => entries.first(),
                };
                let Some(e) = pick else {
                    continue;
                };
                if e.kernel.is_none() {
                    return Err(Error::Config {
                        file: path.to_string(),
                        why: format!("label \"{}\" has no kernel line", e.id),
                    });
                }
                let e = e.clone();
                drop(v);
                let rel = |f: &str| {
                    if f.starts_with('/') {
                        f.to_string()
                    } else {
                        format!("{prefix}{f}")
                    }
                };
                let config = (path.to_string(), text);
                return self.resolve(*p, &e, "extlinux", config, rel).map(Some);
            }
        }
        Ok(None)
    }

    /// The entry's files on `p`: the kernel must be there and not empty,
    /// every initrd there.
    fn resolve(
        &mut self,
        p: Partition,
        e: &Entry,
        kind: &'static str,
        config: (String, String),
        path: impl Fn(&str) -> String,
    ) -> Result<Found, Error> {
        let mut v = match Volume::open(self.dev, &p)? {
            Some(v) => v,
            None => {
                return Err(Error::Config {
                    file: format!("partition {}", p.number),
                    why: "holds no file system the firmware reads".to_string(),
                })
            }
        };
        let mut file = |what: &'static str, f: &str| -> Result<FileRef, Error> {
            let full = path(f);
            match v.size(&full)? {
                Some(size) => Ok(FileRef {
                    part: p,
                    path: full,
                    size,
                }),
                None => Err(Error::Missing {
                    what,
                    path: full,
                    partition: p.number,
                }),
            }
        };
        let kernel = file("kernel", e.kernel.as_deref().unwrap_or_default())?;
        if kernel.size == 0 {
            return Err(Error::EmptyKernel(kernel.path));
        }
        let initrds = e
            .initrds
            .iter()
            .map(|i| file("initrd", i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Found {
            partition: p.number,
            entry: e.name().to_string(),
            kind,
            cmdline: e.options.clone(),
            config,
            kernel,
            initrds,
        })
    }
}

/// A configuration file as text (invalid UTF-8 replaced), `None` when
/// missing.
fn text(v: &mut Volume, path: &str, limit: usize) -> Result<Option<String>, Error> {
    Ok(v.read_small(path, limit)?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}
