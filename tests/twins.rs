//! The same plan run in both runtimes gives twins whose logs agree field by
//! field wherever their ticks agree, and whose links lose the same messages.
//!
//! This is a test binary of its own: cargo runs test binaries one after
//! another, so no other test competes for the CPU while the real twin keeps
//! its schedule within the margin the comparison needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clocklab_config::layout;
use clocklab_log::{Event, LogFormat, Record};

/// Runs the `clocklab` binary under test to the end.
fn run_clocklab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clocklab")).args(args).output().expect("clocklab starts")
}

/// The one results folder `clocklab run` made under `out`.
fn results_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Latencies that land every message between two ticks, apart from every
/// other: the seed below draws rate 10 for every machine (a tick every
/// 100 ms, at the same instants), and each machine's two incoming links delay
/// their messages by a third and two thirds of that, so every arrival is
/// 33 ms or more from a tick and from the other arrival, in both runtimes,
/// whatever the real one's scheduling jitter. The twins then make the same
/// decisions all the way. A loss fault on every link makes the fates of the
/// messages comparable too.
const APART_AND_LOSSY: &str = "\
[[faults]]\nkind = \"latency\"\nlinks = [[1, 2], [1, 3], [2, 1]]\ndelay = { kind = \"constant\", ms = 33 }\n
[[faults]]\nkind = \"latency\"\nlinks = [[3, 2], [2, 3], [3, 1]]\ndelay = { kind = \"constant\", ms = 67 }\n
[[faults]]\nkind = \"loss\"\nstart = 0\nprobability = 0.3\n";

/// The suite seed whose baseline run draws rate 10 for its three machines
/// at `--max-clock-rate 10`.
const SAME_RATES_SEED: &str = "2045";

/// How late a real tick may run for the twins to be compared: below the
/// margin of [`APART_AND_LOSSY`].
const LATENESS_MAX_US: u64 = 30_000;

/// Runs the baseline's first run for 11 s (110 ticks a machine) in
/// `runtime` with every clock, rates up to 10 and the faults of `faults_toml`.
///
/// A real run whose machines ran a tick more than [`LATENESS_MAX_US`] late
/// (a computer too busy to keep the schedule within the margin) cannot be
/// compared: it is run again, up to three times in all.
fn run(runtime: &str, out: &Path, faults_toml: &str) -> BTreeMap<u32, Vec<Record>> {
    for attempt in 1..=3 {
        let out = out.join(format!("attempt-{attempt}"));
        let (logs, worst_us) = run_once(runtime, &out, faults_toml);
        if worst_us <= LATENESS_MAX_US || runtime == "sim" {
            return logs;
        }
        eprintln!("{runtime} run {attempt}: a tick ran {worst_us} us late; running it again");
    }
    panic!("three real runs in a row ran a tick more than 30 ms late: this computer is too busy to compare the twins")
}

/// One run of [`run`]; its logs and the latest any tick ran, in microseconds.
fn run_once(runtime: &str, out: &Path, faults_toml: &str) -> (BTreeMap<u32, Vec<Record>>, u64) {
    let faults = out.with_extension("faults.toml");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&faults, faults_toml).unwrap();
    let output = run_clocklab(&[
        "run",
        "--runtime",
        runtime,
        "--experiment",
        "baseline",
        "--runs",
        "1",
        "--duration",
        "11",
        "--max-clock-rate",
        "10",
        "--seed",
        SAME_RATES_SEED,
        "--clocks",
        "lamport,vector,hlc",
        "--faults",
        faults.to_str().unwrap(),
        "--no-analyze",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{runtime}: {}", String::from_utf8_lossy(&output.stderr));
    let run = layout::read_run(&layout::run_dir(&results_dir(out), "baseline", 1), LogFormat::Text).unwrap();
    let report = run.check(1);
    assert!(report.is_ok(), "{runtime}: {:#?}", report.violations);
    let worst_us = run
        .manifest
        .extra
        .get("tick_lateness_us")
        .and_then(|lateness| lateness.as_object())
        .map_or(0, |machines| machines.values().filter_map(|m| m["max_us"].as_u64()).max().unwrap_or(0));
    (run.logs, worst_us)
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

/// Compares the twins tick by tick, up to the first tick whose event
/// differs (where timing decided): every field that does not depend on time
/// agrees, the vector clock included. Returns how many ticks agreed, per machine.
fn compare_twins(real: &BTreeMap<u32, Vec<Record>>, sim: &BTreeMap<u32, Vec<Record>>) -> BTreeMap<u32, usize> {
    assert_eq!(real.keys().collect::<Vec<_>>(), sim.keys().collect::<Vec<_>>());
    let mut compared = BTreeMap::new();
    for (id, real_log) in real {
        let sim_log = &sim[id];
        // The preamble agrees but for addresses and times.
        // (A machine the start caught late says so first: timing, not the step.)
        let preamble = |log: &[Record]| {
            let before = log.iter().take_while(|r| !r.event.is_tick());
            before.filter(|r| r.event.kind() != "behind").map(timeless).collect::<Vec<_>>()
        };
        assert_eq!(preamble(real_log), preamble(sim_log), "machine {id}'s preamble");
        let ticks = |log: &[Record]| log.iter().filter(|r| r.event.is_tick()).cloned().collect::<Vec<_>>();
        let (real_ticks, sim_ticks) = (ticks(real_log), ticks(sim_log));
        assert_eq!(real_ticks.len(), sim_ticks.len(), "machine {id} made the same ticks in both runtimes");
        let mut agreed = 0;
        for (a, b) in real_ticks.iter().zip(&sim_ticks) {
            if (&a.event, a.logical_clock, a.queue_length) != (&b.event, b.logical_clock, b.queue_length) {
                break;
            }
            let (ta, tb) = (timeless(a), timeless(b));
            // The HLC counter is 0 whenever physical time moved on, in both.
            assert_eq!((ta.0, ta.1, ta.2, ta.3, ta.5), (tb.0, tb.1, tb.2, tb.3, tb.5), "machine {id}: {a:?} / {b:?}");
            agreed += 1;
        }
        // Every line of both logs carries the same fields.
        for record in real_log.iter().chain(sim_log) {
            assert!(record.vector_clock.is_some() && record.hlc.is_some() && record.physical_clock_us.is_some());
        }
        compared.insert(*id, agreed);
    }
    compared
}

/// Each directed link's messages in the order they were sent, and whether
/// each was lost (its sender's `Lost` line).
fn fates(logs: &BTreeMap<u32, Vec<Record>>) -> BTreeMap<(u32, u32), Vec<bool>> {
    let mut fates: BTreeMap<(u32, u32), Vec<bool>> = BTreeMap::new();
    for (&id, log) in logs {
        for record in log {
            match &record.event {
                Event::Sent { to } => {
                    for &peer in to.iter() {
                        fates.entry((id, peer)).or_default().push(false);
                    }
                }
                // A Lost line follows its send: the link's last message.
                Event::Lost { to, .. } => *fates.get_mut(&(id, *to)).unwrap().last_mut().unwrap() = true,
                _ => {}
            }
        }
    }
    fates
}

/// The twins of one plan: at least 100 ticks a machine agree field by
/// field, and the k-th message of each directed link is lost in both
/// runtimes or in neither, over the whole run.
#[test]
fn both_runtimes_give_twins_that_agree_tick_by_tick_and_lose_the_same_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let real = run("real", &tmp.path().join("real"), APART_AND_LOSSY);
    let sim = run("sim", &tmp.path().join("sim"), APART_AND_LOSSY);
    for (id, agreed) in compare_twins(&real, &sim) {
        assert!(agreed >= 100, "the twins agreed on only {agreed} ticks of machine {id}");
    }
    let (real_fates, sim_fates) = (fates(&real), fates(&sim));
    assert_eq!(real_fates.keys().collect::<Vec<_>>(), sim_fates.keys().collect::<Vec<_>>());
    let mut lost = 0;
    for (link, real_link) in &real_fates {
        let lost_at =
            |fates: &[bool]| fates.iter().enumerate().filter(|&(_, &l)| l).map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(lost_at(real_link), lost_at(&sim_fates[link]), "link {link:?}: the indices of the messages lost");
        lost += lost_at(real_link).len();
    }
    assert!(lost >= 10, "only {lost} messages were lost: too few to compare");
}
