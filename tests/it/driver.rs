//! One driver step for both runtimes: no runtime builds a log record itself
//! (the twins that follow from it are `tests/twins.rs`).

use std::path::Path;

use crate::util::code_outside_tests;

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
        // Unit tests may build records to feed a reader or a sink.
        for (file, code) in code_outside_tests(&root.join(dir)) {
            for (idx, line) in code.lines().enumerate() {
                if built.is_match(line) {
                    offenders.push(format!("{}:{}: {}", file.display(), idx + 1, line.trim()));
                }
            }
        }
    }
    // The scan would miss every offender if the folders moved: it must see the runtimes.
    let seen = |dir: &str| code_outside_tests(&root.join(dir)).len();
    assert!(seen("crates/sim/src") >= 3 && seen("crates/net/src") >= 3);
    assert!(offenders.is_empty(), "records built, or sends routed, outside the driver:\n{}", offenders.join("\n"));
}
