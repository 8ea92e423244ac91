//! The host's apt: reading its sources (to reuse its mirror), adding
//! bookworm-backports and foreign architectures, downloading and unpacking
//! packages.

use super::*;

pub(super) fn apt_sources_text() -> String {
    let mut all = String::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        v.sort();
        files.extend(v.into_iter().filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("list" | "sources")
            )
        }));
    }
    for f in files {
        if let Ok(s) = std::fs::read_to_string(&f) {
            all.push_str(&format!("\n#FILE {}\n{s}\n", f.display()));
        }
    }
    all
}

/// One deb822 stanza as key -> value (continuation lines joined).
pub(super) fn deb822_stanzas(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            last = None;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(k) = &last {
                let v = cur.entry(k.clone()).or_default();
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            cur.insert(k.clone(), v.trim().to_string());
            last = Some(k);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Makes sure apt knows the bookworm-backports suite, reusing the mirror and
/// key of the configured bookworm entry (never a hard-coded host).
pub fn ensure_backports_source() -> Result<bool> {
    let text = apt_sources_text();
    let Some(stanza) = backports_stanza(&text)? else {
        return Ok(false);
    };
    let path = Path::new("/etc/apt/sources.list.d/hotstub-backports.sources");
    if !crate::util::is_root() {
        return Err(format!(
            "apt has no bookworm-backports source; as root create {} with\n{stanza}",
            path.display()
        ));
    }
    step(format!(
        "adding apt source {} (bookworm-backports, same mirror as bookworm):\n{stanza}",
        path.display()
    ));
    std::fs::write(path, stanza).ctx(format!("write {}", path.display()))?;
    Ok(true)
}

/// The deb822 stanza that adds bookworm-backports, derived from the apt
/// sources `text`; None if backports is already configured.
pub(super) fn backports_stanza(text: &str) -> Result<Option<String>> {
    let has = text.lines().any(|l| {
        let l = l.trim();
        !l.starts_with('#') && l.split_whitespace().any(|w| w == "bookworm-backports")
    });
    if has {
        return Ok(None);
    }
    let (uris, signed) = bookworm_source(text)?;
    let mut s = format!("Types: deb\nURIs: {uris}\nSuites: bookworm-backports\nComponents: main\n");
    if let Some(sb) = signed {
        s.push_str(&format!("Signed-By: {sb}\n"));
    }
    Ok(Some(s))
}

/// The host's configured mirror for the Debian archive: the URIs and
/// Signed-By of its bookworm entry in the apt sources `text`.
pub fn bookworm_source(text: &str) -> Result<(String, Option<String>)> {
    // deb822 entries first (Debian 12 default), then one-line sources.list.
    let mut uris = None;
    let mut signed = None;
    for st in deb822_stanzas(text) {
        let suites = st.get("suites").cloned().unwrap_or_default();
        if suites.split_whitespace().any(|s| s == "bookworm") {
            uris = st.get("uris").cloned();
            signed = st.get("signed-by").cloned();
            break;
        }
    }
    if uris.is_none() {
        for l in text.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.first() != Some(&"deb") {
                continue;
            }
            let mut i = 1;
            let mut sb = None;
            if w.get(1).is_some_and(|s| s.starts_with('[')) {
                while i < w.len() {
                    let o = w[i].trim_matches(|c| c == '[' || c == ']');
                    if let Some(v) = o.strip_prefix("signed-by=") {
                        sb = Some(v.to_string());
                    }
                    let end = w[i].ends_with(']');
                    i += 1;
                    if end {
                        break;
                    }
                }
            }
            if w.get(i + 1) == Some(&"bookworm") {
                uris = w.get(i).map(|s| s.to_string());
                signed = sb;
                break;
            }
        }
    }
    let uris = uris.ok_or("no apt source for Debian bookworm found in /etc/apt")?;
    Ok((uris, signed))
}

/// The host's mirror (see `bookworm_source`), read from /etc/apt.
pub fn host_mirror() -> Result<(String, Option<String>)> {
    bookworm_source(&apt_sources_text())
}

/// arm64 packages need the foreign architecture registered with dpkg.
pub(super) fn ensure_foreign_arch(arch: Arch) -> Result<bool> {
    let native = output(Command::new("dpkg").arg("--print-architecture"))?;
    if native.trim() == arch.deb() {
        return Ok(false);
    }
    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if foreign.lines().any(|l| l.trim() == arch.deb()) {
        return Ok(false);
    }
    if !crate::util::is_root() {
        return Err(format!(
            "dpkg does not know architecture {0}; run: sudo dpkg --add-architecture {0} && sudo apt-get update",
            arch.deb()
        ));
    }
    run(Command::new("dpkg").args(["--add-architecture", arch.deb()]))?;
    Ok(true)
}

pub(super) fn apt_update() -> Result<()> {
    run(Command::new("apt-get").arg("update"))
}

/// Downloads a Debian package for `arch` into `dir` and returns the .deb.
pub(super) fn apt_download(pkg: &str, arch: Arch, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).ctx(format!("mkdir {}", dir.display()))?;
    let spec = format!("{pkg}:{}", arch.deb());
    // Listed for the log: which version apt will fetch, and from where.
    if let Ok(m) = output(Command::new("apt-cache").args(["madison", &spec])) {
        if let Some(first) = m.lines().next() {
            step(format!("apt-cache madison {spec}: {}", first.trim()));
        }
    }
    // The download directory belongs to whoever runs xtask, which apt's
    // unprivileged `_apt` user may not write.
    run(Command::new("apt-get").current_dir(dir).args([
        "-o",
        "APT::Sandbox::User=root",
        "download",
        &spec,
    ]))?;
    let prefix = format!("{pkg}_");
    let suffix = format!("_{}.deb", arch.deb());
    let mut found = None;
    for e in std::fs::read_dir(dir).ctx("read download dir")?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) && n.ends_with(&suffix) {
            found = Some(e.path());
        }
    }
    found.ok_or_else(|| format!("apt-get download {spec} left no .deb in {}", dir.display()))
}

pub(super) fn dpkg_extract(deb: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).ctx(format!("clean {}", dest.display()))?;
    }
    std::fs::create_dir_all(dest).ctx(format!("mkdir {}", dest.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Host names here are placeholders (the example.invalid TLD).
    #[test]
    fn backports_from_deb822() {
        let t = "Types: deb\n# comment\nURIs: http://archive.invalid/debian\nSuites: bookworm bookworm-updates\n\
                 Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                 Types: deb\nURIs: http://archive.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n";
        let s = backports_stanza(t).unwrap().unwrap();
        assert!(s.contains("URIs: http://archive.invalid/debian\n"));
        assert!(s.contains("Suites: bookworm-backports\n"));
        assert!(s.contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"));
        let with = format!("{t}\nTypes: deb\nURIs: x\nSuites: bookworm-backports\n");
        assert_eq!(backports_stanza(&with).unwrap(), None);
    }
    #[test]
    fn backports_from_one_line_list() {
        let t = "deb [arch=amd64 signed-by=/k.gpg] http://apt.invalid/debian bookworm main\n";
        let s = backports_stanza(t).unwrap().unwrap();
        assert!(s.contains("URIs: http://apt.invalid/debian\n"));
        assert!(s.contains("Signed-By: /k.gpg\n"));
        assert!(backports_stanza("deb http://other.invalid/ubuntu jammy main\n").is_err());
    }
}
