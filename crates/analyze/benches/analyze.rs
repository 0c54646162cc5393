//! How fast the analysis reads logs: about one million generated log lines
//! (4 runs of 3 machines, clocklab's text format), statistics only, then the
//! same with every output (figures, report).
//!
//! The fixture is written once to `target/bench-analyze-1m/` and kept, so
//! that `clocklab analyze` can be measured on it too (peak memory).

use std::path::{Path, PathBuf};

use clocklab_log::{Event, LogFormat, LogWriter, Record};
use clocklab_model::{LamportClock, Machine, MachineParams, TickEvent};
use criterion::{Criterion, criterion_group, criterion_main};

const RUNS: u32 = 4;
const RATES: [u32; 3] = [60, 40, 20];
/// 120 ticks per second over 2,084 s, 4 runs: about one million lines.
const DURATION_S: i64 = 2_084;

fn fixture() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-analyze-1m");
    let done = root.join("complete");
    if done.exists() {
        return root;
    }
    for run_idx in 1..=RUNS {
        write_run(&root.join("bench").join(format!("run_{run_idx}")), u64::from(run_idx));
    }
    std::fs::write(&done, "").unwrap();
    root
}

/// The model's machines in virtual time on an absolute schedule; messages
/// arrive at the receiver's next tick.
fn write_run(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let t0_us: i64 = 1_795_495_393_000_000;
    let n = RATES.len() as u32;
    let mut machines: Vec<Machine<LamportClock>> = (1..=n)
        .map(|id| {
            Machine::new(MachineParams { id, n_machines: n, rate: RATES[id as usize - 1], max_event_num: 10 }).unwrap()
        })
        .collect();
    let mut rngs: Vec<_> = (1..=n).map(|id| clocklab_model::seed::rng_from_seed(seed * 10 + u64::from(id))).collect();
    let mut writers: Vec<_> = (1..=n)
        .map(|id| {
            let file = std::fs::File::create(dir.join(clocklab_log::file_name(id, LogFormat::Text))).unwrap();
            LogWriter::new(std::io::BufWriter::new(file), LogFormat::Text)
        })
        .collect();
    for id in 1..=n {
        let event =
            Event::Initialized { host: Some("127.0.0.1".into()), port: Some(5000), rate: RATES[id as usize - 1] };
        writers[id as usize - 1]
            .write(&Record { machine: id, event, logical_clock: 0, queue_length: 0, time_us: t0_us })
            .unwrap();
    }
    let mut ticks: Vec<(i64, u32)> = Vec::new();
    for id in 1..=n {
        let rate = i64::from(RATES[id as usize - 1]);
        ticks.extend((1..=rate * DURATION_S).map(|k| (k * 1_000_000 / rate + i64::from(id), id)));
    }
    ticks.sort_unstable();
    for (at_us, id) in ticks {
        let idx = id as usize - 1;
        let tick = machines[idx].tick(&mut rngs[idx]);
        let event = match tick.event {
            TickEvent::Processed { from, stamp } => Event::Processed { from: Some(from), clock: Some(stamp) },
            TickEvent::Sent { recipients, stamp } => {
                let to: Vec<u32> = machines[idx].recipients(recipients).collect();
                for &peer in &to {
                    machines[peer as usize - 1].deliver(id, stamp);
                }
                Event::Sent { to }
            }
            TickEvent::Internal => Event::Internal,
        };
        let record = Record {
            machine: id,
            event,
            logical_clock: tick.clock,
            queue_length: tick.queue_len,
            time_us: t0_us + at_us,
        };
        writers[idx].write(&record).unwrap();
    }
    for id in 1..=n {
        let idx = id as usize - 1;
        let clock = machines[idx].clock();
        let time_us = t0_us + DURATION_S * 1_000_000 + 1;
        let left: Vec<_> = machines[idx].drain_unprocessed().collect();
        for message in left {
            let event = Event::Unprocessed { from: message.from, clock: message.stamp };
            writers[idx].write(&Record { machine: id, event, logical_clock: clock, queue_length: 0, time_us }).unwrap();
        }
        writers[idx]
            .write(&Record { machine: id, event: Event::Stopped, logical_clock: clock, queue_length: 0, time_us })
            .unwrap();
    }
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
                    let file = std::io::BufReader::new(std::fs::File::open(file.unwrap().path()).unwrap());
                    n += clocklab_log::LogReader::new(file).count() as u64;
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
