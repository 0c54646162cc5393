//! How fast the analysis reads logs: about one million log lines (4 runs of
//! 3 machines, clocklab's text format, made by the simulator), statistics
//! only, then the same with every output (figures, report).
//!
//! The fixture is written once to `target/bench-analyze-1m/` and kept, so
//! that `clocklab analyze` can be measured on it too (peak memory).

use std::path::{Path, PathBuf};

use clocklab_config::{Config, SimSettings, plan_runs};
use criterion::{Criterion, criterion_group, criterion_main};

/// Rates up to 60 per second; 4 runs of 2,700 s give about one million lines.
const MAX_CLOCK_RATE: u32 = 60;
const DURATION_S: f64 = 2_700.0;

fn fixture() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-analyze-1m");
    let done = root.join("complete");
    if done.exists() {
        return root;
    }
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.name = "bench".into();
    experiment.max_clock_rate = MAX_CLOCK_RATE;
    experiment.duration = DURATION_S;
    experiment.runs = 4;
    for plan in plan_runs(&config, 7, &root) {
        clocklab_sim::run_plan(&plan, &SimSettings::default()).unwrap();
    }
    std::fs::write(&done, "").unwrap();
    root
}

fn bench(c: &mut Criterion) {
    let root = fixture();
    let summary = clocklab_analyze::analyze(&root).unwrap();
    let lines: u64 = summary.experiments.iter().flat_map(|e| &e.runs).map(|r| r.lines).sum();
    eprintln!("fixture: {lines} log lines in {}", root.display());
    let mut group = c.benchmark_group("analyze");
    group.sample_size(10);
    group.bench_function("read_only_1m_lines", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for run in std::fs::read_dir(root.join("bench")).unwrap() {
                for file in std::fs::read_dir(run.unwrap().path()).unwrap() {
                    let path = file.unwrap().path();
                    if path.extension().is_some_and(|e| e == "log") {
                        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
                        n += clocklab_log::LogReader::new(file).count() as u64;
                    }
                }
            }
            n
        })
    });
    group.sample_size(10);
    group.bench_function("statistics_1m_lines", |b| b.iter(|| clocklab_analyze::analyze(&root).unwrap()));
    let out = tempfile::tempdir().unwrap();
    group.bench_function("everything_1m_lines", |b| {
        b.iter(|| {
            let summary = clocklab_analyze::analyze(&root).unwrap();
            clocklab_analyze::write_outputs(&summary, out.path()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
