//! Replays the fuzz targets' corpus and every crashing input they ever found
//! (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`) with the same code
//! as the targets, on the stable compiler: `cargo test` keeps them fixed.

// The crate is pure; this test of it reads its corpus from files.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use clocklab_model::fuzzing::{fuzz_hello, fuzz_wire_frames};

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

fn replay(target: &str, body: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!("{target} fails on {}", file.display());
        }
    }
}

#[test]
fn wire_frames_corpus() {
    replay("wire_frames", fuzz_wire_frames);
}

#[test]
fn hello_corpus() {
    replay("hello", fuzz_hello);
}
