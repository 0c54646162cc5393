//! Every fault plan that validation accepts runs to the end: random plans
//! (`clocklab_faults::generate`: coinciding crashes, storms, crashes at the
//! start and near the end, clock faults while down, the largest latencies,
//! partitions, losses, pauses) on small random configurations, each simulated
//! to its end, its folder passed through `clocklab check`, and its logs read
//! again independently: a plain reading of the text lines (no clocklab
//! parser) that counts, per pair and per machine, what the check counts,
//! and tick counts computed from the fault specs without the driver's
//! `Life`. A failure prints its seed.

use std::collections::BTreeMap;

use clocklab_causal::RunSource;
use clocklab_causal::check::{CheckOptions, check_run};
use clocklab_config::{Config, SimSettings, layout, plan_runs};
use clocklab_faults::FaultSpec;
use clocklab_faults::generate::random_plan;
use clocklab_log::LogFormat;
use clocklab_model::{ClockKinds, MachineId, schedule, seed};
use clocklab_sim::{LogFiles, Simulation};
use rand::RngExt;

/// Per ordered pair (from, to), a count.
type PerPair = BTreeMap<(MachineId, MachineId), u64>;

/// What the plain reading of a run's text logs counts.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    ticks: BTreeMap<MachineId, u64>,
    sent: PerPair,
    received: PerPair,
    lost: PerPair,
    held: PerPair,
    crashed: BTreeMap<MachineId, u64>,
}

/// Reads the text logs of `dir` line by line with nothing but string
/// splitting: the event is the text between `Event: ` and the first ` | `.
fn read_plainly(dir: &std::path::Path, n_machines: u32) -> Reading {
    let mut reading = Reading::default();
    let number = |text: &str| -> u32 { text.trim().parse().unwrap_or_else(|_| panic!("a number: {text:?}")) };
    for id in 1..=n_machines {
        let text = std::fs::read_to_string(layout::log_path(dir, id, LogFormat::Text)).unwrap();
        for line in text.lines() {
            let event = line.split("Event: ").nth(1).unwrap().split(" | ").next().unwrap();
            let words: Vec<&str> = event.split(' ').collect();
            match words.as_slice() {
                ["Internal", "event"] => *reading.ticks.entry(id).or_default() += 1,
                ["Sent", "message", "to", "machine" | "machines", rest @ ..] => {
                    *reading.ticks.entry(id).or_default() += 1;
                    for to in rest.join(" ").split(", ") {
                        *reading.sent.entry((id, number(to))).or_default() += 1;
                    }
                }
                ["Processed", "message", "from", "machine", from, ..] => {
                    *reading.ticks.entry(id).or_default() += 1;
                    *reading.received.entry((number(from), id)).or_default() += 1;
                }
                ["Unprocessed", "message", "from", "machine", from, ..] => {
                    *reading.received.entry((number(from), id)).or_default() += 1;
                }
                ["Lost", "message", "to", "machine", to, ..] => *reading.lost.entry((id, number(to))).or_default() += 1,
                ["Held", "message", "to", "machine", to, ..] => *reading.held.entry((id, number(to))).or_default() += 1,
                ["Crashed"] => *reading.crashed.entry(id).or_default() += 1,
                _ => {}
            }
        }
    }
    reading
}

/// The ticks a machine at `rate` makes in `duration_s` under `faults`,
/// counted from the specs: every tick of the schedule but those due from a
/// crash's start to its restart (the end of the run, if it never restarts,
/// or restarts after it).
fn expected_ticks(rate: u32, duration_s: f64, machine: MachineId, faults: &[FaultSpec]) -> u64 {
    let duration_us = schedule::duration_us(duration_s);
    let down: Vec<(u64, u64)> = faults
        .iter()
        .filter_map(|fault| match *fault {
            FaultSpec::Crash { machine: m, start, end, .. } if m == machine => {
                let end_us = end.map_or(duration_us, |end| schedule::duration_us(end).min(duration_us));
                Some((schedule::duration_us(start), end_us))
            }
            _ => None,
        })
        .collect();
    (0..schedule::n_ticks(rate, duration_us))
        .filter(|&k| {
            let due = schedule::tick_offset_us(k, rate);
            !down.iter().any(|&(from, to)| from <= due && due < to)
        })
        .count() as u64
}

/// Runs the plan of `seed`; panics, naming the seed, if anything disagrees.
fn run_seed(seed: u64) {
    let mut rng = seed::rng_from_seed(seed::derive(seed, 1));
    let n_machines = rng.random_range(2..=4);
    let duration = f64::from(rng.random_range(20..=60u32)) / 10.0;
    let mut config = Config::default();
    config.experiments.truncate(1);
    config.connect_timeout = [0.1, 1.0, 10.0][rng.random_range(0..3)];
    let experiment = &mut config.experiments[0];
    experiment.name = "plan".into();
    experiment.machines = n_machines;
    experiment.max_clock_rate = rng.random_range(1..=12);
    experiment.max_event_num = rng.random_range(3..=8);
    experiment.runs = 1;
    experiment.duration = duration;
    experiment.clocks = if rng.random_bool(0.5) { ClockKinds::ALL } else { ClockKinds::LAMPORT };
    experiment.faults = random_plan(seed, n_machines, duration, 8);
    config.validate("the property test").unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan_runs(&config, seed, tmp.path()).remove(0);
    let what = format!("seed {seed} ({n_machines} machines, {duration} s, faults {:?})", plan.experiment.faults);

    std::fs::create_dir_all(&plan.dir).unwrap();
    let settings = SimSettings::default();
    let mut files = LogFiles::create(&plan.dir, n_machines, &plan.log_formats).unwrap();
    let summary = Simulation::new(&plan, &settings).unwrap().run(&mut files).unwrap();
    drop(files);
    layout::write_manifest(&plan.dir, &clocklab_sim::manifest(&plan, &settings, &summary)).unwrap();

    // `clocklab check`: every rule holds.
    let source = RunSource::open(&plan.dir).unwrap();
    let check = check_run(&source, &CheckOptions { seed: 1, sample_ticks: 200, keep: 5 }).unwrap();
    assert!(check.is_ok(), "{what}: {:#?}", check.violations);

    // The line check's counts, and the plain reading's, agree.
    let run = layout::read_run(&plan.dir, LogFormat::Text).unwrap();
    let report = run.check(0);
    assert!(report.is_ok(), "{what}: {:#?}", report.violations);
    let reading = read_plainly(&plan.dir, n_machines);
    let nonzero = |map: &PerPair| map.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (*k, *n)).collect::<PerPair>();
    assert_eq!(nonzero(&report.sent), reading.sent, "{what}: sent");
    assert_eq!(nonzero(&report.received), reading.received, "{what}: received");
    assert_eq!(nonzero(&report.lost), reading.lost, "{what}: lost");
    assert_eq!(nonzero(&report.held), reading.held, "{what}: held");
    // Every message is accounted for, and what the check says crashes took
    // is exactly what the simulator dropped.
    for (&pair, &sent) in &reading.sent {
        let of = |map: &PerPair| map.get(&pair).copied().unwrap_or(0);
        let crash_lost = report.crash_lost.get(&pair).copied().unwrap_or(0);
        assert_eq!(
            sent,
            of(&reading.received) + of(&reading.lost) + of(&reading.held) + crash_lost,
            "{what}: {pair:?}"
        );
    }
    assert_eq!(report.crash_lost.values().sum::<u64>(), summary.crash_lost, "{what}: taken by crashes");
    for machine in &plan.machines {
        let want = expected_ticks(machine.rate, duration, machine.id, &plan.experiment.faults);
        let ticks = reading.ticks.get(&machine.id).copied().unwrap_or(0);
        assert_eq!(ticks, want, "{what}: machine {} at rate {}", machine.id, machine.rate);
        assert_eq!(report.ticks.get(&machine.id).copied().unwrap_or(0), ticks, "{what}: the check's ticks");
    }
}

#[test]
fn every_fault_plan_validation_accepts_runs_to_the_end_and_checks() {
    for seed in 0..300 {
        run_seed(seed);
    }
}
