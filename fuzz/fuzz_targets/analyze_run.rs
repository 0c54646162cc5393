#![no_main]

// The body lives in the library so that `cargo test` replays the corpus with it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| clocklab_analyze::fuzzing::fuzz_run_folder(data));
