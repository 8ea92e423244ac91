//! The guest marker protocol, host side: marker lines, their `key=value`
//! fields, delimited sections and ACPI table dumps in a serial log.
//! Protocol reference (every marker line): tests/guest/README.md.

use std::collections::BTreeMap;

/// The rest of the first line that starts with `HOTSTUB: <key>`.
pub(super) fn marker<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    let p = format!("HOTSTUB: {key}");
    lines.iter().find_map(|l| l.strip_prefix(&p))
}

/// `key=value` fields of a marker line.
pub(super) fn fields(s: &str) -> BTreeMap<String, String> {
    s.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The lines between the first line starting with `begin` and the first one
/// from there on starting with `end`, both excluded; None without both.
pub(super) fn section(lines: &[String], begin: &str, end: &str) -> Option<Vec<String>> {
    let b = lines.iter().position(|l| l.starts_with(begin))?;
    let e = lines[b..].iter().position(|l| l.starts_with(end))? + b;
    Some(lines[b + 1..e].to_vec())
}

/// Splits a serial log at each "init reached" after the first (reboots).
pub(super) fn split_boots(lines: &[String]) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = false;
    for l in lines {
        if l.starts_with("HOTSTUB: init reached") {
            if seen {
                v.push(Vec::new());
            }
            seen = true;
        }
        v.last_mut().unwrap().push(l.clone());
    }
    v
}

/// `PSCI-TEST: summary: N passed, M failed, K skipped` -> (N, M, K).
pub(super) fn psci_summary(l: &str) -> Option<(u32, u32, u32)> {
    let nums: Vec<u32> = l
        .trim_start_matches("PSCI-TEST: summary:")
        .split(',')
        .map(|p| p.split_whitespace().next().and_then(|n| n.parse().ok()))
        .collect::<Option<Vec<u32>>>()?;
    match nums.as_slice() {
        [p, f, s] => Some((*p, *f, *s)),
        _ => None,
    }
}

/// One ACPI table dump: `HOTSTUB-TABLE-BEGIN <NAME> <size>`, hex lines,
/// `HOTSTUB-TABLE-END <NAME>`.
pub(super) struct TableDump {
    /// The sysfs name (repeated tables are SSDT1, SSDT2, ...).
    pub name: String,
    /// The size sysfs reported; `usize::MAX` when the BEGIN line has none.
    pub size: usize,
    /// The dumped bytes; None when the hex does not decode.
    pub bytes: Option<Vec<u8>>,
}

/// Every table dump in `lines`, in order. A dump without its END line runs
/// to the end of the log.
pub(super) fn table_dumps(lines: &[String]) -> Vec<TableDump> {
    let mut dumps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].strip_prefix("HOTSTUB-TABLE-BEGIN ") else {
            i += 1;
            continue;
        };
        let mut w = rest.split_whitespace();
        let name = w.next().unwrap_or("?").to_string();
        let size: usize = w.next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
        let mut hex = String::new();
        i += 1;
        while i < lines.len() && !lines[i].starts_with("HOTSTUB-TABLE-END") {
            hex.extend(lines[i].chars().filter(|c| !c.is_whitespace()));
            i += 1;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
            .map(|k| u8::from_str_radix(hex.get(2 * k..2 * k + 2)?, 16).ok())
            .collect();
        let bytes = bytes.filter(|_| hex.len().is_multiple_of(2));
        dumps.push(TableDump { name, size, bytes });
    }
    dumps
}

/// A guest shell command that prints the md5 of a hot-added block device.
/// The node appears (devtmpfs, `/sys/block`) before the disk is live, and
/// an open in between fails with ENXIO ("No such device or address"), seen
/// once under a loaded host; so it retries for up to 20 s and only the last
/// try's error is shown.
pub(super) fn md5_when_live(dev: &str) -> String {
    format!(
        "ok=; for i in $(seq 100); do if md5sum {dev} 2>/dev/null; then ok=1; break; fi; \
         sleep 0.2; done; test -n \"$ok\" || md5sum {dev}"
    )
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn boots_split_at_second_init() {
        let l: Vec<String> = [
            "fw",
            "HOTSTUB: init reached a",
            "x",
            "fw",
            "HOTSTUB: init reached b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let b = split_boots(&l);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].len(), 4);
        assert_eq!(fields("cpus possible=0-3 online=0")["online"], "0");
    }

    #[test]
    fn psci_summary_parses() {
        assert_eq!(
            psci_summary("PSCI-TEST: summary: 30 passed, 0 failed, 2 skipped"),
            Some((30, 0, 2))
        );
        assert_eq!(psci_summary("PSCI-TEST: summary: garbage"), None);
    }
}
