//! ARCHITECTURE.md kept true where a test can hold it: the crates'
//! dependencies as it lists them, and runtimes that do not decide when.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::code_outside_tests;

/// The `clocklab-*` dependencies of each crate, from its `Cargo.toml`.
fn dependencies_in_manifests(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut deps = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let name = text.lines().find_map(|l| l.strip_prefix("name = ")).unwrap().trim_matches('"').to_string();
        let section = text.split("[dependencies]").nth(1).unwrap_or("");
        let section = section.split("\n[").next().unwrap();
        let mut list: Vec<String> = section
            .lines()
            .filter_map(|l| l.split('.').next().and_then(|dep| dep.strip_prefix("clocklab-")))
            .map(str::to_string)
            .collect();
        list.sort();
        deps.insert(name, list);
    }
    deps
}

/// The same, as ARCHITECTURE.md lists it.
fn dependencies_in_architecture(root: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let list =
        text.split("<!-- crate-dependencies -->").nth(1).unwrap().split("<!-- /crate-dependencies -->").next().unwrap();
    list.lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .map(|line| {
            let (name, deps) = line.split_once("`: ").unwrap();
            let mut deps: Vec<String> =
                if deps == "none" { Vec::new() } else { deps.split(", ").map(str::to_string).collect() };
            deps.sort();
            (name.to_string(), deps)
        })
        .collect()
}

#[test]
fn the_crate_dependencies_are_as_architecture_md_lists_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifests = dependencies_in_manifests(root);
    assert!(manifests.len() >= 10, "{manifests:?}");
    assert_eq!(dependencies_in_architecture(root), manifests);
}

#[test]
fn the_runtimes_leave_when_to_the_timeline() {
    // Neither runtime computes a tick's instant or reads a machine's faults:
    // the driver's `Timeline` does (unit tests excepted).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let when = regex::Regex::new(r"tick_offset_us|schedule::n_ticks|machine_faults|paused_at|is_down").unwrap();
    let mut offenders = Vec::new();
    for dir in ["crates/sim/src", "crates/net/src"] {
        let files = code_outside_tests(&root.join(dir));
        assert!(files.len() >= 3, "the scan must see the runtime in {dir}");
        for (entry, code) in files {
            for (idx, line) in code.lines().enumerate() {
                if when.is_match(line) && !line.trim_start().starts_with("//") {
                    offenders.push(format!("{}:{}: {}", entry.display(), idx + 1, line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "a runtime decides when:\n{}", offenders.join("\n"));
}
