//! One driver step for both runtimes: no runtime builds a log record itself,
//! and the same plan run in both gives twins whose logs agree field by field
//! wherever their ticks agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clocklab_config::layout;
use clocklab_log::{Event, LogFormat, Record};
use clocklab_model::ClockKinds;

use crate::util::run_clocklab;

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
            // Unit tests may build records to feed a reader or a sink.
            let code = text.split("#[cfg(test)]").next().unwrap();
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

/// The one results folder `clocklab run` made under `out`.
fn results_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Runs the baseline's first run for `duration` in `runtime` with every clock.
fn run(runtime: &str, out: &Path) -> BTreeMap<u32, Vec<Record>> {
    let out_arg = out.to_str().unwrap();
    let output = run_clocklab(&[
        "run",
        "--runtime",
        runtime,
        "--experiment",
        "baseline",
        "--runs",
        "1",
        "--duration",
        "3",
        "--seed",
        "11",
        "--clocks",
        "lamport,vector,hlc",
        "--no-analyze",
        "--out",
        out_arg,
    ]);
    assert!(output.status.success(), "{runtime}: {}", String::from_utf8_lossy(&output.stderr));
    let run = layout::read_run(&layout::run_dir(&results_dir(out), "baseline", 1), LogFormat::Text).unwrap();
    assert_eq!(run.manifest.experiment.clocks, ClockKinds::ALL);
    let report = run.check(1);
    assert!(report.is_ok(), "{runtime}: {:#?}", report.violations);
    run.logs
}

/// What of a line does not depend on when it was written.
fn timeless(record: &Record) -> (Event, u64, u64, Option<Vec<u64>>, Option<u64>, bool) {
    let event = match &record.event {
        // Addresses differ between the runtimes; the rest of the line must not.
        Event::Initialized { rate, .. } => Event::Initialized { host: None, port: None, rate: *rate },
        Event::Connected { peer, .. } => Event::Connected { peer: *peer, host: None, port: None },
        other => other.clone(),
    };
    let hlc_counter = record.hlc.map(|hlc| hlc.c);
    (
        event,
        record.logical_clock,
        record.queue_length,
        record.vector_clock.clone(),
        hlc_counter,
        record.physical_clock_us.is_some(),
    )
}

#[test]
fn both_runtimes_give_twins_that_agree_wherever_their_ticks_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let real = run("real", &tmp.path().join("real"));
    let sim = run("sim", &tmp.path().join("sim"));
    assert_eq!(real.keys().collect::<Vec<_>>(), sim.keys().collect::<Vec<_>>());
    let mut compared = 0;
    for (id, real_log) in &real {
        let sim_log = &sim[id];
        // The preamble agrees but for addresses and times.
        let preamble = |log: &[Record]| log.iter().take_while(|r| !r.event.is_tick()).map(timeless).collect::<Vec<_>>();
        assert_eq!(preamble(real_log), preamble(sim_log), "machine {id}'s preamble");
        // Tick by tick, up to the first tick whose event differs (where timing
        // decided), every field that does not depend on time agrees: the
        // vector clock and the HLC's counter included.
        let ticks = |log: &[Record]| log.iter().filter(|r| r.event.is_tick()).cloned().collect::<Vec<_>>();
        let (real_ticks, sim_ticks) = (ticks(real_log), ticks(sim_log));
        assert_eq!(real_ticks.len(), sim_ticks.len(), "machine {id} made the same ticks in both runtimes");
        for (a, b) in real_ticks.iter().zip(&sim_ticks) {
            if (&a.event, a.logical_clock, a.queue_length) != (&b.event, b.logical_clock, b.queue_length) {
                break;
            }
            let (ta, tb) = (timeless(a), timeless(b));
            // The HLC counter is 0 whenever physical time moved on, in both.
            assert_eq!((ta.0, ta.1, ta.2, ta.3, ta.5), (tb.0, tb.1, tb.2, tb.3, tb.5), "machine {id}: {a:?} / {b:?}");
            compared += 1;
        }
        // Every line of both logs carries the same fields.
        for record in real_log.iter().chain(sim_log) {
            assert!(record.vector_clock.is_some() && record.hlc.is_some() && record.physical_clock_us.is_some());
        }
    }
    assert!(compared >= 3, "the twins agreed on only {compared} ticks");
}
