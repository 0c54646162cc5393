//! Machine events (ticks) per second on one core: with a counting sink (the
//! simulator alone), and with text logs written to files.

use std::hint::black_box;
use std::path::Path;

use clocklab_config::{Config, LogFormats, RunPlan, SimSettings, plan_runs};
use clocklab_log::LogFormat;
use clocklab_sim::{CountingSink, LogFiles, Simulation};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// One run of `machines` machines for `duration_s`, baseline settings.
fn plan(machines: u32, duration_s: f64) -> RunPlan {
    let mut config = Config::default();
    config.experiments.truncate(1);
    config.experiments[0].machines = machines;
    config.experiments[0].duration = duration_s;
    config.experiments[0].runs = 1;
    plan_runs(&config, 42, Path::new("unused")).remove(0)
}

fn ticks_of(plan: &RunPlan, settings: &SimSettings) -> u64 {
    let mut sink = CountingSink::default();
    Simulation::new(plan, settings).unwrap().run(&mut sink).unwrap();
    sink.ticks
}

fn bench_sim(c: &mut Criterion) {
    let settings = SimSettings::default();
    let mut group = c.benchmark_group("sim");
    // Three machines for an hour: the exercise's shape, long enough that
    // set-up is noise.
    let three = plan(3, 3600.0);
    let ticks = ticks_of(&three, &settings);
    group.throughput(Throughput::Elements(ticks));
    group.bench_function("3 machines x 1 h, counting sink", |b| {
        b.iter(|| {
            let mut sink = CountingSink::default();
            Simulation::new(&three, &settings).unwrap().run(&mut sink).unwrap();
            black_box(sink)
        })
    });
    // Each iteration writes into a fresh folder, made and removed outside the
    // timing, so that the figure is a run's cost and not that of truncating
    // the previous iteration's files.
    for (name, formats) in [
        ("3 machines x 1 h, text logs to files", &[LogFormat::Text][..]),
        ("3 machines x 1 h, text and JSON Lines logs to files", &[LogFormat::Text, LogFormat::Jsonl][..]),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    let mut files = LogFiles::create(dir.path(), 3, formats).unwrap();
                    Simulation::new(&three, &settings).unwrap().run(&mut files).unwrap();
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }

    // Many machines: the heap and the queues are larger.
    let hundred = plan(100, 60.0);
    group.throughput(Throughput::Elements(ticks_of(&hundred, &settings)));
    group.bench_function("100 machines x 60 s, counting sink", |b| {
        b.iter(|| {
            let mut sink = CountingSink::default();
            Simulation::new(&hundred, &settings).unwrap().run(&mut sink).unwrap();
            black_box(sink)
        })
    });
    group.finish();

    // The built-in suite (4 experiments x 5 runs x 60 s), each run into its
    // own folder with text logs and a manifest, as `clocklab run --runtime sim`.
    let mut suite = c.benchmark_group("suite");
    suite.sample_size(20);
    let config = Config { log_format: LogFormats::Text, ..Config::default() };
    suite.bench_function("built-in suite, text logs and manifests", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |out| {
                for plan in plan_runs(&config, 42, out.path()) {
                    clocklab_sim::run_plan(&plan, &config.sim).unwrap();
                }
                out
            },
            BatchSize::PerIteration,
        )
    });
    suite.finish();
}

criterion_group!(benches, bench_sim);
criterion_main!(benches);
