//! Replays the `log_reader` fuzz target's corpus and every crashing input it
//! ever found (`fuzz/corpus/log_reader`, `fuzz/regressions/log_reader`) with
//! the same code as the target, on the stable compiler.

use std::path::{Path, PathBuf};

use clocklab_log::fuzzing::fuzz_log_reader;

/// Every file of the target's corpus and regressions, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else { continue };
        files.extend(entries.map(|entry| entry.unwrap().path()).filter(|path| path.is_file()));
    }
    files.sort();
    files
}

#[test]
fn log_reader_corpus() {
    let files = inputs("log_reader");
    assert!(!files.is_empty(), "no corpus for log_reader");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        if std::panic::catch_unwind(|| fuzz_log_reader(&data)).is_err() {
            panic!("log_reader fails on {}", file.display());
        }
    }
}
