//! The module layering that `src/lib.rs` documents under "Layout" holds: every module of
//! `src/` is listed there, and a module's non-test code names (`crate::m`, `use crate::{m::…}`,
//! or an item `lib.rs` re-exports from `m`) only modules listed before it. Comments and doc
//! links do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Words of `text` (runs of ASCII lowercase letters, digits and `_`), in order.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Identifiers (ASCII alphanumerics and `_`) of `text`, in order.
fn idents(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The documented order: module names in the order they first appear in the Layout block.
fn documented_order(lib: &str, modules: &BTreeSet<String>) -> Vec<String> {
    let docs: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| format!("{l}\n"))
        .collect();
    let layout = docs
        .split_once("# Layout")
        .expect("lib.rs docs have a Layout section")
        .1;
    let block = layout
        .split_once("```text")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the Layout section has a text block")
        .0;
    let mut order: Vec<String> = Vec::new();
    for w in words(block) {
        if modules.contains(w) && !order.iter().any(|o| o == w) {
            order.push(w.to_owned());
        }
    }
    order
}

/// `lib.rs` re-exports: exported name -> module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in idents(names) {
            map.insert(name.to_owned(), module.to_owned());
        }
    }
    map
}

/// The modules a source file's non-test code names.
fn dependencies(
    source: &str,
    modules: &BTreeSet<String>,
    reexported: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut deps = BTreeSet::new();
    let mut name = |ident: &str| {
        if modules.contains(ident) {
            deps.insert(ident.to_owned());
        } else if let Some(m) = reexported.get(ident) {
            deps.insert(m.clone());
        }
    };
    for (_, rest) in code
        .match_indices("crate::")
        .map(|(i, _)| code.split_at(i + 7))
    {
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::X, b::{Y, Z}}`: the first path segment of each entry.
            let inner = group.split_once("};").map_or(group, |(g, _)| g);
            let mut depth = 0;
            let mut start = true;
            for token in inner.split_inclusive(['{', '}', ',']) {
                let head = token.trim_start();
                if depth == 0
                    && start
                    && let Some(first) = idents(head).first()
                {
                    name(first);
                }
                depth += token.matches('{').count();
                depth -= token.matches('}').count().min(depth);
                start = token.ends_with(',') && depth == 0;
            }
        } else if let Some(first) = idents(rest).first() {
            name(first);
        }
    }
    deps
}

#[test]
fn modules_only_import_modules_listed_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).expect("read src") {
        let path = entry.expect("dir entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            modules.insert(stem.to_owned());
        }
    }
    let order = documented_order(&lib, &modules);
    let missing: Vec<&String> = modules.iter().filter(|m| !order.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "modules not in lib.rs's Layout: {missing:?}"
    );
    let reexported = reexports(&lib);
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut upward = Vec::new();
    for module in &order {
        let source =
            std::fs::read_to_string(src.join(format!("{module}.rs"))).expect("read module");
        for dep in dependencies(&source, &modules, &reexported) {
            if dep != *module && rank(&dep) > rank(module) {
                upward.push(format!("{module} -> {dep}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the documented layering: {upward:?}"
    );
}

#[test]
fn dependency_reader_sees_paths_and_groups() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let reexported = BTreeMap::from([("Thing".to_owned(), "d".to_owned())]);
    let source = "use crate::{a::X, b::{self, Y}};\n\
                  // crate::c in a comment\n\
                  fn f() -> crate::Thing { crate::c::g() }\n\
                  #[cfg(test)]\nmod tests { use crate::z; }\n";
    let deps = dependencies(source, &modules, &reexported);
    assert_eq!(deps, ["a", "b", "c", "d"].map(String::from).into());
    let only_comment = "// crate::a\n/// [`x`](crate::b)\nfn f() {}\n";
    assert!(dependencies(only_comment, &modules, &reexported).is_empty());
}
