//! One driver step for both runtimes: no runtime builds a log record itself
//! (the twins that follow from it are `tests/twins.rs`).

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The runtimes, the binary and the fixtures make every line of a machine's
/// log through `clocklab_driver::Driver`: none of them names `Record {` or
/// `Record::new(` outside its tests; and they route every send through the
/// fault plan with `Driver::route`, never asking the plan (`on_send`) themselves.
#[test]
fn no_runtime_builds_a_record_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = ["crates/sim/src", "crates/sim/benches", "crates/net/src", "crates/analyze/benches", "src"];
    let built = regex::Regex::new(r"\bRecord( \{|::new\()|\.on_send\(").unwrap();
    let mut offenders = Vec::new();
    for dir in dirs {
        for file in sources(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            // Unit tests may build records to feed a reader or a sink: a
            // module after `#[cfg(test)]`, or a file that is one (`#![cfg(test)]`).
            let code = if text.lines().any(|line| line.trim() == "#![cfg(test)]") {
                ""
            } else {
                text.split("#[cfg(test)]").next().unwrap()
            };
            for (idx, line) in code.lines().enumerate() {
                if built.is_match(line) {
                    offenders.push(format!("{}:{}: {}", file.display(), idx + 1, line.trim()));
                }
            }
        }
    }
    // The scan would miss every offender if the folders moved: it must see the runtimes.
    assert!(sources(&root.join("crates/sim/src")).len() >= 3 && sources(&root.join("crates/net/src")).len() >= 3);
    assert!(offenders.is_empty(), "records built, or sends routed, outside the driver:\n{}", offenders.join("\n"));
}
