//! The crate's layering: no module of `host/src` uses a module above it. Modules are ranked
//! from the bottom (errors, vocabulary) to the top (the command line); every `crate::` path
//! in code (not in comments), and every name the crate root re-exports, must lead to a module
//! ranked at or below the one using it. A new top-level module must be ranked here.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules of `host/src`, lowest first.
const LAYERS: &[&str] = &[
    "error",
    "plugin_error",
    "progress",
    "counters",
    "sql",
    "policy",
    "config",
    "pg",
    "cache",
    "result",
    "engine",
    "incremental",
    "db",
    "text",
    "output",
    "wasm",
    "serve",
    "compose",
    "cli",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src")
}

/// The top-level module a file belongs to (`None` for the crate root and the binary).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments (doc links name modules without using them).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module of each name `lib.rs` re-exports (`pub use pg::value::Value;` gives
/// `Value -> pg`).
fn reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    for statement in code(&lib).split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = rest.split("::").next().unwrap().trim().to_owned();
        let items = rest.rsplit("::").next().unwrap();
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap().trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.clone());
            }
        }
    }
    names
}

/// Every module `code` reaches through `crate::`.
fn used_modules(code: &str, reexports: &BTreeMap<String, String>) -> Vec<String> {
    let mut used = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap()];
            for item in group.split(',') {
                let head = item.trim().split("::").next().unwrap().trim();
                used.push(reexports.get(head).cloned().unwrap_or(head.to_owned()));
            }
            continue;
        }
        let head: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        used.push(reexports.get(&head).cloned().unwrap_or(head));
    }
    used
}

#[test]
fn no_module_uses_a_module_above_it() {
    let reexports = reexports();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let own = rank(&module)
            .unwrap_or_else(|| panic!("{module} (in {}) is not ranked in LAYERS", file.display()));
        let text = std::fs::read_to_string(file).unwrap();
        for used in used_modules(&code(&text), &reexports) {
            match rank(&used) {
                Some(r) if r > own => wrong.push(format!(
                    "{} ({module}) uses {used}, which is above it",
                    file.strip_prefix(src()).unwrap().display()
                )),
                Some(_) => {}
                None if used == module => {}
                None => wrong.push(format!(
                    "{} uses crate::{used}, which is no ranked module",
                    file.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 600).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}
