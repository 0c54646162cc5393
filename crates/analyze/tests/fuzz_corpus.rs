//! Replays the `analyze_run` fuzz target's corpus and every crashing input
//! it ever found (`fuzz/corpus/analyze_run`, `fuzz/regressions/analyze_run`)
//! with the same code as the target, on the stable compiler.

use std::path::Path;

use clocklab_analyze::fuzzing::fuzz_run_folder;

#[test]
fn analyze_run_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join("analyze_run")) else { continue };
        files.extend(entries.map(|entry| entry.unwrap().path()).filter(|path| path.is_file()));
    }
    files.sort();
    assert!(files.len() >= 4, "the corpus of analyze_run is missing");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        if std::panic::catch_unwind(|| fuzz_run_folder(&data)).is_err() {
            panic!("analyze_run fails on {}", file.display());
        }
    }
}
