//! The body of the `analyze_run` fuzz target in `fuzz/`, shared with the
//! test that replays its corpus on the stable compiler.
//!
//! The input is a whole run folder: a `manifest.json` and machine logs of
//! arbitrary bytes. The analysis must never panic on it, and what it says
//! must stay within what the input can support.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// What separates the parts of an input: the manifest, then each machine's log.
pub const SEPARATOR: &[u8] = b"\n\xff--8<--\xff\n";

/// A fresh folder for one input, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `analyze_run` target: the first part of `data` (up to [`SEPARATOR`])
/// is written as `manifest.json` (left out when empty), each following part
/// as `machine_<k>.log` (at most eight), into a fresh run folder, which is
/// then analysed.
pub fn fuzz_run_folder(data: &[u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!("clocklab-fuzz-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let scratch = Scratch(std::env::temp_dir().join(name));
    let run_dir = scratch.0.join("experiment").join("run_1");
    std::fs::create_dir_all(&run_dir).expect("the temporary folder is writable");
    let mut parts = split(data);
    let manifest = parts.remove(0);
    if !manifest.is_empty() {
        std::fs::write(run_dir.join("manifest.json"), manifest).expect("writing the manifest");
    }
    for (idx, log) in parts.iter().take(8).enumerate() {
        std::fs::write(run_dir.join(format!("machine_{}.log", idx + 1)), log).expect("writing a log");
    }
    let total_lines: u64 = parts.iter().take(8).map(|log| log.split(|&b| b == b'\n').count() as u64).sum();
    let summary = match crate::analyze(&run_dir) {
        Ok(summary) => summary,
        // A folder without logs is the only whole failure.
        Err(crate::AnalyzeError::NoLogs(_)) => return,
        Err(error) => panic!("the analysis failed as a whole: {error}"),
    };
    // What it says stays within the input.
    for run in summary.experiments.iter().flat_map(|e| &e.runs) {
        assert!(run.lines <= total_lines, "{} lines read from {total_lines}", run.lines);
        assert!(run.duration_s.is_finite() && run.duration_s >= 0.0, "duration {}", run.duration_s);
        for machine in &run.machines {
            assert!(machine.rate > 0, "a machine without a rate is no machine");
            assert!(machine.lag.mean_ticks.is_finite() && machine.lag.mean_ticks >= 0.0);
            assert!(machine.load.utilisation.is_finite() && machine.load.utilisation >= 0.0);
            assert!(machine.jump.p50 <= machine.jump.p99 && machine.jump.p99 <= machine.jump.max);
        }
        if let Some(causality) = &run.causality {
            assert!(causality.concurrent <= causality.pairs && causality.falsely_ordered <= causality.concurrent);
        }
    }
    for experiment in &summary.experiments {
        for metric in &experiment.aggregate {
            if let Some([low, high]) = metric.spread.ci95 {
                let range = crate::summary::metric_named(&metric.metric).expect("a known metric").range;
                let inside = match range {
                    crate::interval::Range::Real => true,
                    crate::interval::Range::NonNegative => low >= 0.0,
                    crate::interval::Range::Share => low >= 0.0 && high <= 1.0,
                };
                let mean = metric.spread.mean;
                assert!(
                    inside && low <= mean + 1e-9 && mean <= high + 1e-9,
                    "{}: an interval [{low}, {high}] outside what the metric can take",
                    metric.metric
                );
            }
        }
    }
    // Every form of the summary can be written.
    serde_json::to_string(&summary).expect("a summary serialises");
    let _ = crate::render_table(&summary);
}

/// `data` cut at every [`SEPARATOR`]; there is always a first part.
fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = memchr::memmem::find(rest, SEPARATOR) {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}
