//! The boot configurations a distribution writes, as text: Boot Loader
//! Spec Type #1 entries, GRUB's `grub.cfg` as Debian's `update-grub`
//! writes it (a documented subset, not a GRUB interpreter) and
//! `extlinux.conf`. No I/O here: `find` reads the files and resolves the
//! paths these return. Public for the `boot_entries` fuzz target.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Entries read from one configuration at most.
pub const MAX_ENTRIES: usize = 256;
/// GRUB submenus nested at most (update-grub writes one level).
const MAX_NESTING: usize = 4;

/// One boot entry, whichever configuration it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// BLS: the file name without `.conf`; GRUB: the menuentry id;
    /// extlinux: the label.
    pub id: String,
    /// What a menu would show (empty when the configuration has none).
    pub title: String,
    pub kernel: Option<String>,
    pub initrds: Vec<String>,
    pub options: String,
    /// GRUB: `search --fs-uuid --set=root UUID` in or before the entry.
    pub root_uuid: Option<String>,
    /// GRUB: `set root='hd0,gpt2'`, or a `(hd0,gpt2)` path prefix.
    pub root_part: Option<u32>,
    // BLS ordering keys.
    sort_key: String,
    machine_id: String,
    version: String,
}

impl Entry {
    /// The name for messages and the console: title, else id.
    pub fn name(&self) -> &str {
        if self.title.is_empty() {
            &self.id
        } else {
            &self.title
        }
    }

    /// Whether `choice` names this entry (id, file name or title).
    pub fn is(&self, choice: &str) -> bool {
        let c = choice.strip_suffix(".conf").unwrap_or(choice);
        self.id == c || (!self.title.is_empty() && self.title == choice)
    }
}

/// A BLS Type #1 entry file (`id` is its name without `.conf`). `None`
/// when its `architecture` is not `arch` ("x64", "aa64"): the spec hides
/// those.
pub fn bls(id: &str, text: &str, arch: &str) -> Option<Entry> {
    let mut e = Entry {
        id: id.to_string(),
        ..Entry::default()
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((line, ""));
        match key {
            "title" => e.title = value.to_string(),
            "version" => e.version = value.to_string(),
            "machine-id" => e.machine_id = value.to_string(),
            "sort-key" => e.sort_key = value.to_string(),
            "linux" => e.kernel = Some(value.to_string()),
            "initrd" if e.initrds.len() < MAX_ENTRIES => e
                .initrds
                .extend(value.split_ascii_whitespace().map(String::from)),
            "options" => push_words(&mut e.options, value),
            "architecture" if !value.eq_ignore_ascii_case(arch) => return None,
            _ => {}
        }
    }
    Some(e)
}

fn push_words(to: &mut String, value: &str) {
    for w in value.split_ascii_whitespace() {
        if !to.is_empty() {
            to.push(' ');
        }
        to.push_str(w);
    }
}

/// Sorts BLS entries as the spec's "Sorting" section says (UAPI.1):
/// boot-counted "bad" entries (`+0` tries left) last; entries with a
/// `sort-key` first, by sort-key, machine-id (both increasing) and
/// version (decreasing); then by file name (decreasing version order).
pub fn bls_sort(entries: &mut [Entry]) {
    crate::platform::sort_small_by(entries, |a, b| {
        bad(a)
            .cmp(&bad(b))
            .then_with(|| match (a.sort_key.is_empty(), b.sort_key.is_empty()) {
                (false, false) => a
                    .sort_key
                    .cmp(&b.sort_key)
                    .then_with(|| alnum(&a.machine_id, &b.machine_id))
                    .then_with(|| version_cmp(&b.version, &a.version)),
                (false, true) => Ordering::Less,
                (true, false) => Ordering::Greater,
                (true, true) => Ordering::Equal,
            })
            .then_with(|| version_cmp(&b.id, &a.id))
    });
}

/// "+0" or "+0-N" before the suffix: no tries left.
fn bad(e: &Entry) -> bool {
    e.id.rsplit_once('+')
        .is_some_and(|(_, c)| c == "0" || c.starts_with("0-"))
}

/// strcmp order where an empty string compares lower (UAPI.1
/// "Alphanumerical Order").
fn alnum(a: &str, b: &str) -> Ordering {
    a.cmp(b)
}

/// The UAPI.10 version order (systemd's strverscmp_improved): characters
/// other than letters, digits and `~-^.` are skipped; `~` sorts below
/// everything, the end of the string below everything else; then `-`,
/// `^` and `.` in turn sort below what is not one; runs of digits compare
/// as numbers and above runs of letters, which compare as strcmp.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let keep = |c: &u8| c.is_ascii_alphanumeric() || b"~-^.".contains(c);
    loop {
        while a.first().is_some_and(|c| !keep(c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|c| !keep(c)) {
            b = &b[1..];
        }
        let (x, y) = (a.first().copied(), b.first().copied());
        if x == Some(b'~') || y == Some(b'~') {
            if x != y {
                return if x == Some(b'~') {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            (a, b) = (&a[1..], &b[1..]);
            continue;
        }
        let (Some(x), Some(y)) = (x, y) else {
            return a.len().cmp(&b.len());
        };
        if let Some(&sep) = [b'-', b'^', b'.'].iter().find(|&&s| x == s || y == s) {
            if x != y {
                return if x == sep {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            (a, b) = (&a[1..], &b[1..]);
            continue;
        }
        let digits = x.is_ascii_digit();
        if digits != y.is_ascii_digit() {
            return if digits {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let run = |s: &[u8]| {
            s.iter()
                .position(|c| c.is_ascii_digit() != digits || !c.is_ascii_alphanumeric())
                .unwrap_or(s.len())
        };
        let (na, nb) = (run(a), run(b));
        let (ra, rb) = (&a[..na], &b[..nb]);
        let o = if digits {
            let strip = |s: &'_ [u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
            let (ra, rb) = (&ra[strip(ra)..], &rb[strip(rb)..]);
            ra.len().cmp(&rb.len()).then_with(|| ra.cmp(rb))
        } else {
            ra.cmp(rb)
        };
        if o != Ordering::Equal {
            return o;
        }
        (a, b) = (&a[na..], &b[nb..]);
    }
}

/// GRUB's words: blanks separate, '...' is literal, "..." and `\`
/// escape; `#` at a word's start comments out the rest.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        d => cur.push(d),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    out.push(core::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// A menuentry or a submenu of a grub.cfg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Entry(Entry),
    Submenu {
        title: String,
        id: String,
        items: Vec<Item>,
    },
}

/// What `grub` read: the items and the `set default=` value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grub {
    pub items: Vec<Item>,
    pub default: Option<String>,
}

/// Parses the subset of grub.cfg that `update-grub` writes: `set
/// default=`, `menuentry` and `submenu` blocks (title, `--id` or
/// `$menuentry_id_option`), and in them `search ... --set=root UUID`,
/// `set root=`, `linux PATH ARGS...`, `initrd PATH...`. Everything else
/// (`if`, `insmod`, `echo`, functions) is skipped; a `search` outside
/// the entries applies to those without one.
pub fn grub(text: &str) -> Grub {
    let mut g = Grub::default();
    let mut lines = text.lines();
    let mut scope = Scope::default();
    g.items = grub_block(&mut lines, &mut g.default, &mut scope, 0);
    g
}

#[derive(Clone, Default)]
struct Scope {
    uuid: Option<String>,
    part: Option<u32>,
}

fn grub_block<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
    default: &mut Option<String>,
    scope: &mut Scope,
    depth: usize,
) -> Vec<Item> {
    let mut items = Vec::new();
    while let Some(line) = lines.next() {
        let w = words(line);
        let Some(first) = w.first() else {
            continue;
        };
        match first.as_str() {
            "}" if depth > 0 => break,
            "set" if depth == 0 => {
                if let Some(v) = w.get(1).and_then(|a| a.strip_prefix("default=")) {
                    *default = Some(v.to_string());
                }
                set_root(&w, scope);
            }
            "set" => set_root(&w, scope),
            "search" => search(&w, scope),
            "menuentry" | "submenu" if items.len() < MAX_ENTRIES => {
                let (title, id) = title_and_id(&w);
                let opens = w.last().is_some_and(|l| l == "{");
                if first == "submenu" && depth < MAX_NESTING && opens {
                    let mut inner = scope.clone();
                    let sub = grub_block(lines, &mut None, &mut inner, depth + 1);
                    items.push(Item::Submenu {
                        title,
                        id,
                        items: sub,
                    });
                } else if opens {
                    let mut e = entry_body(lines, scope.clone());
                    e.title = title;
                    e.id = id;
                    items.push(Item::Entry(e));
                }
            }
            _ => {}
        }
    }
    items
}

fn title_and_id(w: &[String]) -> (String, String) {
    let title = w.get(1).cloned().unwrap_or_default();
    let id = w
        .windows(2)
        .find(|p| p[0] == "$menuentry_id_option" || p[0] == "--id")
        .map(|p| p[1].clone())
        .or_else(|| {
            w.iter()
                .find_map(|a| a.strip_prefix("--id=").map(String::from))
        })
        .unwrap_or_default();
    (title, id)
}

fn set_root(w: &[String], scope: &mut Scope) {
    if let Some(v) = w.get(1).and_then(|a| a.strip_prefix("root=")) {
        scope.part = grub_partition(v);
        scope.uuid = None;
    }
}

fn search(w: &[String], scope: &mut Scope) {
    let by_uuid = w.iter().any(|a| a == "--fs-uuid" || a == "-u");
    let sets_root = w.iter().any(|a| a == "--set=root")
        || w.windows(2).any(|p| p[0] == "--set" && p[1] == "root");
    if by_uuid && sets_root {
        if let Some(uuid) = w.iter().skip(1).rfind(|a| !a.starts_with('-')) {
            scope.uuid = Some(uuid.clone());
            scope.part = None;
        }
    }
}

/// `hd0,gpt2`, `(hd0,msdos1)`: the partition number.
fn grub_partition(dev: &str) -> Option<u32> {
    let d = dev.trim_start_matches('(').trim_end_matches(')');
    let (_, p) = d.split_once(',')?;
    let n = p.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    n.parse().ok()
}

/// A path with an optional `(hd0,gpt2)` or `($root)` device prefix.
fn grub_path(p: &str, e: &mut Entry) -> String {
    if let Some(rest) = p.strip_prefix('(') {
        if let Some((dev, path)) = rest.split_once(')') {
            if let Some(n) = grub_partition(dev) {
                e.root_part = Some(n);
                e.root_uuid = None;
            }
            return path.to_string();
        }
    }
    p.to_string()
}

fn entry_body<'a>(lines: &mut impl Iterator<Item = &'a str>, mut scope: Scope) -> Entry {
    let mut e = Entry::default();
    let mut depth = 0usize;
    for line in lines.by_ref() {
        let w = words(line);
        let Some(first) = w.first() else {
            continue;
        };
        match first.as_str() {
            "}" if depth == 0 => break,
            "}" => depth -= 1,
            _ if w.last().is_some_and(|l| l == "{") => depth += 1,
            "set" => set_root(&w, &mut scope),
            "search" => search(&w, &mut scope),
            "linux" | "linux16" | "linuxefi" => {
                e.root_uuid = scope.uuid.clone();
                e.root_part = scope.part;
                if let Some(p) = w.get(1) {
                    e.kernel = Some(grub_path(p, &mut e));
                }
                e.options = w.get(2..).unwrap_or_default().join(" ");
            }
            "initrd" | "initrd16" | "initrdefi" => {
                e.initrds = w[1..].iter().map(|p| grub_path(p, &mut e)).collect();
            }
            _ => {}
        }
    }
    e
}

/// The entry `set default=` names (or `choice`, when given): a number
/// counting the top-level items from 0, a title or an id, `>` stepping
/// into a submenu. A default GRUB computes (`${saved_entry}`) is 0.
pub fn grub_pick<'g>(g: &'g Grub, choice: Option<&str>) -> Option<&'g Entry> {
    if let Some(c) = choice {
        return find_item(&g.items, c, 0);
    }
    let d = g
        .default
        .as_deref()
        .filter(|d| !d.contains('$'))
        .unwrap_or("0");
    let mut items = &g.items;
    let mut parts = d.split('>').peekable();
    while let Some(p) = parts.next() {
        let item = match p.parse::<usize>() {
            Ok(i) => items.get(i)?,
            Err(_) => items.iter().find(|it| match it {
                Item::Entry(e) => e.id == p || e.title == p,
                Item::Submenu { title, id, .. } => id == p || title == p,
            })?,
        };
        match item {
            Item::Entry(e) if parts.peek().is_none() => return Some(e),
            Item::Submenu { items: sub, .. } if parts.peek().is_some() => items = sub,
            // A submenu as the default boots its first entry, as GRUB
            // would show it; anything else does not resolve.
            Item::Submenu { items: sub, .. } => return first_entry(sub, 0),
            Item::Entry(_) => return None,
        }
    }
    None
}

fn first_entry(items: &[Item], depth: usize) -> Option<&Entry> {
    items.iter().find_map(|it| match it {
        Item::Entry(e) => Some(e),
        Item::Submenu { items, .. } if depth < MAX_NESTING => first_entry(items, depth + 1),
        Item::Submenu { .. } => None,
    })
}

fn find_item<'g>(items: &'g [Item], c: &str, depth: usize) -> Option<&'g Entry> {
    items.iter().find_map(|it| match it {
        Item::Entry(e) if e.is(c) => Some(e),
        Item::Entry(_) => None,
        Item::Submenu { items, .. } if depth < MAX_NESTING => find_item(items, c, depth + 1),
        Item::Submenu { .. } => None,
    })
}

/// Parses an extlinux.conf: `default`, `label` blocks with
/// `kernel`/`linux`, `initrd` (a comma-separated list), `append` and
/// `menu label`/`menu default`. Keywords are case-insensitive. Returns
/// the entries and the default's label.
pub fn extlinux(text: &str) -> (Vec<Entry>, Option<String>) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut default = None;
    for line in text.lines() {
        let line = line.trim();
        let (key, value) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((line, ""));
        let key = key.to_ascii_lowercase();
        if key == "label" {
            if entries.len() >= MAX_ENTRIES {
                break;
            }
            entries.push(Entry {
                id: value.to_string(),
                ..Entry::default()
            });
            continue;
        }
        if key == "default" {
            default = Some(value.to_string());
            continue;
        }
        let Some(e) = entries.last_mut() else {
            continue;
        };
        match key.as_str() {
            "kernel" | "linux" => e.kernel = Some(value.to_string()),
            "initrd" => {
                e.initrds = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "append" => e.options = value.to_string(),
            "menu" => {
                let (k, v) = value.split_once(' ').unwrap_or((value, ""));
                match k.to_ascii_lowercase().as_str() {
                    "label" => e.title = v.trim().to_string(),
                    "default" => default = Some(e.id.clone()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    (entries, default)
}
