//! The shape rules of the source tree, checked by `cargo test` (and so by
//! `cargo xtask test`): no source file in `firmware/` or `xtask/` over 600
//! lines of code, and no import circle among the files of
//! `firmware/arch/aarch64/` (a file's `super::`, `crate::arch::aarch64::`
//! and child-module paths are its edges). Only the tests use this.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The house limit on lines of code per file (blank and comment-only
/// lines do not count).
const MAX_CODE_LINES: usize = 600;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text without comments (line comments, doc comments and block
/// comments; string contents are not special-cased, which suits this
/// tree: no string holds `//` or `/*` where it would matter).
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i + 2..].split_once("*/").map_or("", |(_, r)| r);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

fn code_lines(src: &str) -> usize {
    strip_comments(src)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// A file's module path below the root directory: `el3/control.rs` is
/// `["el3", "control"]`, the root `mod.rs` is `[]`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut m: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
    if m.last().is_some_and(|s| s == "mod") {
        m.pop();
    }
    m
}

/// The longest known module that `base` followed by `segs` names.
fn resolve(mods: &BTreeSet<Vec<String>>, base: &[String], segs: &[&str]) -> Vec<String> {
    let mut m = base.to_vec();
    for s in segs {
        m.push((*s).to_string());
        if !mods.contains(&m) {
            m.pop();
            break;
        }
    }
    m
}

/// Import edges between the modules of the files under `root`, which is
/// the module `crate::arch::aarch64`.
fn import_graph(root: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mods: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(root, f)).collect();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    for f in &files {
        let me = module_of(root, f);
        let src = strip_comments(&std::fs::read_to_string(f).unwrap());
        let mut targets = BTreeSet::new();
        for line in src.lines() {
            let t = line.trim_start();
            let t = t.strip_prefix("pub ").unwrap_or(t);
            if let Some(name) = t.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                let mut child = me.clone();
                child.push(name.trim().to_string());
                targets.insert(child);
            }
        }
        // Every path that starts with `super::` or names this module
        // absolutely; a brace group after the last segment names several.
        let mut paths = Vec::new();
        for (i, _) in src.match_indices("super::") {
            if i > 0 && src[..i].ends_with("::") {
                continue;
            }
            paths.push((i, false));
        }
        for (i, _) in src.match_indices("crate::arch::aarch64::") {
            paths.push((i, true));
        }
        for (i, absolute) in paths {
            let text = &src[i..];
            let end = text
                .find(|c: char| !(ident(c) || c == ':' || c == '{' || c == ',' || c == ' '))
                .unwrap_or(text.len());
            let path = &text[..end];
            let (head, group) = path.split_once('{').unwrap_or((path, ""));
            let segs: Vec<&str> = head.split("::").filter(|s| !s.is_empty()).collect();
            let (base, segs) = if absolute {
                (Vec::new(), segs[3..].to_vec())
            } else {
                let ups = segs.iter().take_while(|s| **s == "super").count();
                if ups > me.len() {
                    continue; // above this tree (crate::arch)
                }
                (me[..me.len() - ups].to_vec(), segs[ups..].to_vec())
            };
            let names: Vec<&str> = group
                .split(',')
                .map(|s| s.trim().split("::").next().unwrap_or(""))
                .filter(|s| !s.is_empty())
                .collect();
            if names.is_empty() {
                targets.insert(resolve(&mods, &base, &segs));
            }
            for n in names {
                let mut s = segs.clone();
                s.push(n);
                targets.insert(resolve(&mods, &base, &s));
            }
        }
        targets.remove(&me);
        graph.entry(me).or_default().extend(targets);
    }
    graph
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        n: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let name = |v: &Vec<String>| match v.join("/") {
                        s if s.is_empty() => "mod".to_string(),
                        s => s,
                    };
                    return Some(stack[at..].iter().chain([m]).map(name).collect());
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_source_file_passes_600_lines_of_code() {
    let mut files = Vec::new();
    for dir in ["firmware", "xtask"] {
        rust_files(&repo().join(dir), &mut files);
    }
    let over: Vec<String> = files
        .iter()
        .map(|f| (code_lines(&std::fs::read_to_string(f).unwrap()), f))
        .filter(|(n, _)| *n > MAX_CODE_LINES)
        .map(|(n, f)| format!("{} ({n} lines of code)", f.display()))
        .collect();
    assert!(
        over.is_empty(),
        "over {MAX_CODE_LINES} lines of code: {over:?}"
    );
}

#[test]
fn the_aarch64_firmware_files_import_one_way() {
    let graph = import_graph(&repo().join("firmware/arch/aarch64"));
    assert!(graph.len() > 10, "the walk found the files");
    let edge = |a: &[&str], b: &[&str]| {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        graph.get(&v(a)).is_some_and(|t| t.contains(&v(b)))
    };
    // The walk sees the kinds of paths the tree uses.
    assert!(edge(&[], &["el3"]), "mod -> el3 (mod line)");
    assert!(
        edge(&["el3", "control"], &["psci_glue"]),
        "super::super::{{..}}"
    );
    assert!(edge(&["el2"], &["cpu"]), "super::cpu::..");
    if let Some(c) = find_cycle(&graph) {
        panic!("import circle in firmware/arch/aarch64: {}", c.join(" -> "));
    }
}

#[test]
fn the_checks_catch_what_they_are_for() {
    assert_eq!(
        code_lines("// a\n\nfn x() {} // b\n/* c\n d */ fn y() {}\n"),
        2
    );
    let g = BTreeMap::from([
        (vec![], BTreeSet::from([vec!["a".to_string()]])),
        (vec!["a".to_string()], BTreeSet::from([vec![]])),
    ]);
    assert_eq!(
        find_cycle(&g),
        Some(vec!["mod".into(), "a".into(), "mod".into()])
    );
}
