//! The fault plan in the simulator: each fault's exact effect on small runs,
//! and every faulted run through the log check with exact accounting.

use std::collections::BTreeMap;
use std::io;

use clocklab_config::{Config, DelayDistribution, RunPlan, SimSettings, plan_runs};
use clocklab_faults::{DelaySpec, Direction, FaultSpec, PartitionMode, RestartClock};
use clocklab_log::check::{CheckReport, Expectations, check_run};
use clocklab_log::{Event, Record};
use clocklab_model::ClockKinds;
use clocklab_sim::{SimSummary, Simulation, Sink};

#[derive(Default)]
struct Lines(Vec<Record>);

impl Sink for Lines {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
}

/// Three machines at rates up to 6, sending often, for `duration_s`, with every clock.
fn plan(seed: u64, duration_s: f64, faults: Vec<FaultSpec>) -> RunPlan {
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.max_event_num = 4;
    experiment.duration = duration_s;
    experiment.clocks = ClockKinds::ALL;
    experiment.faults = faults;
    config.validate("test").unwrap();
    plan_runs(&config, seed, std::path::Path::new("unused")).remove(0)
}

/// Simulates `plan`; returns the summary and each machine's lines.
fn simulate(plan: &RunPlan) -> (SimSummary, BTreeMap<u32, Vec<Record>>) {
    let settings = SimSettings { network: DelayDistribution::Constant { delay_us: 2_000.0 }, ..SimSettings::default() };
    let mut lines = Lines::default();
    let summary = Simulation::new(plan, &settings).unwrap().run(&mut lines).unwrap();
    let mut logs: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
    for record in lines.0 {
        logs.entry(record.machine).or_default().push(record);
    }
    (summary, logs)
}

/// The log check of a faulted run, which must pass.
fn checked(plan: &RunPlan, logs: &BTreeMap<u32, Vec<Record>>) -> CheckReport {
    let expect = Expectations {
        planned_down: Some(plan.experiment.down_windows()),
        ..Expectations::new(plan.experiment.machines, plan.experiment.duration, plan.experiment.clocks)
    };
    let report = check_run(logs, &expect);
    assert!(report.is_ok(), "{:#?}", report.violations);
    report
}

const T0: i64 = SimSettings::DEFAULT_EPOCH_US;

fn seconds(at_s: f64) -> i64 {
    T0 + (at_s * 1e6) as i64
}

#[test]
fn a_drop_partition_lets_no_message_cross_and_says_so() {
    let partition = FaultSpec::Partition {
        start: 3.0,
        end: Some(7.0),
        groups: vec![vec![1], vec![2, 3]],
        direction: Direction::Both,
        mode: PartitionMode::Drop,
    };
    for seed in 0..10 {
        let plan = plan(seed, 10.0, vec![partition.clone()]);
        let (summary, logs) = simulate(&plan);
        let report = checked(&plan, &logs);
        let lost: u64 = report.lost.values().sum();
        assert_eq!(lost, summary.lost);
        // Every message across the cut sent in the window is a Lost line; none was received.
        for (id, records) in &logs {
            for (idx, record) in records.iter().enumerate() {
                if let Event::Sent { to } = &record.event {
                    let in_window = (seconds(3.0)..seconds(7.0)).contains(&record.time_us);
                    for &peer in to {
                        let crosses = (*id == 1) != (peer == 1);
                        let lost_line = records[idx + 1..]
                            .iter()
                            .take_while(|r| matches!(r.event, Event::Lost { .. }))
                            .any(|r| r.event == Event::Lost { to: peer, clock: record.logical_clock });
                        assert_eq!(lost_line, in_window && crosses, "seed {seed}: machine {id} at {}", record.time_us);
                    }
                }
            }
        }
        if seed == 0 {
            assert!(lost > 0, "the window saw messages across the cut");
        }
    }
}

#[test]
fn a_hold_partition_delivers_everything_after_the_heal_in_order() {
    let partition = FaultSpec::Partition {
        start: 2.0,
        end: Some(6.0),
        groups: vec![vec![1, 2], vec![3]],
        direction: Direction::Both,
        mode: PartitionMode::Hold,
    };
    let plan = plan(4, 9.0, vec![partition]);
    let (summary, logs) = simulate(&plan);
    let report = checked(&plan, &logs);
    assert_eq!((summary.lost, summary.crash_lost), (0, 0), "hold loses nothing");
    assert_eq!(report.sent, report.received);
    // Machine 3 processes nothing from 1 or 2 during the partition (what it
    // processes came from before it), and their held messages come after the heal.
    let crossing_sent_in_window: Vec<u64> = logs[&1]
        .iter()
        .filter(|r| (seconds(2.0)..seconds(6.0)).contains(&r.time_us))
        .filter_map(|r| match &r.event {
            Event::Sent { to } if to.contains(&3) => Some(r.logical_clock),
            _ => None,
        })
        .collect();
    assert!(!crossing_sent_in_window.is_empty());
    let received_from_1: Vec<(i64, u64)> = logs[&3]
        .iter()
        .filter_map(|r| match r.event {
            Event::Processed { from: Some(1), clock: Some(clock) } | Event::Unprocessed { from: 1, clock } => {
                Some((r.time_us, clock))
            }
            _ => None,
        })
        .collect();
    for clock in &crossing_sent_in_window {
        let (time, _) = received_from_1.iter().find(|(_, c)| c == clock).expect("every held message arrives");
        assert!(*time >= seconds(6.0), "clock {clock} arrived at {time}, before the heal");
    }
    let clocks: Vec<u64> = received_from_1.iter().map(|(_, c)| *c).collect();
    assert!(clocks.windows(2).all(|pair| pair[0] < pair[1]), "in the order they were sent: {clocks:?}");
}

#[test]
fn the_loss_rate_matches_its_probability() {
    let loss = FaultSpec::Loss { start: 0.0, end: None, links: None, probability: 0.25 };
    let (mut sent, mut lost) = (0u64, 0u64);
    for seed in 0..40 {
        let plan = plan(seed, 20.0, vec![loss.clone()]);
        let (summary, logs) = simulate(&plan);
        let report = checked(&plan, &logs);
        sent += report.sent.values().sum::<u64>();
        lost += summary.lost;
    }
    // A binomial(sent, 0.25): four standard deviations either side.
    let (n, p) = (sent as f64, 0.25);
    let sd = (n * p * (1.0 - p)).sqrt();
    assert!(n > 2_000.0, "{sent} messages is too few to judge");
    assert!((lost as f64 - n * p).abs() < 4.0 * sd, "{lost} lost of {sent}");
}

#[test]
fn a_crash_loses_exactly_its_queue_and_what_was_on_the_wire_to_it() {
    for (restart_clock, seed) in [(RestartClock::Fresh, 1), (RestartClock::Recovered, 2)] {
        let crash = FaultSpec::Crash { machine: 2, start: 4.0, end: Some(7.0), restart_clock };
        // A slow network, so that messages are on the wire when it crashes.
        let slow = FaultSpec::Latency { start: 0.0, end: None, links: None, delay: DelaySpec::Constant { ms: 400.0 } };
        let plan = plan(seed, 12.0, vec![crash, slow]);
        let (summary, logs) = simulate(&plan);
        let report = checked(&plan, &logs);
        let crash_lost: u64 = report.crash_lost.values().sum();
        assert_eq!(crash_lost, summary.crash_lost, "the check derives exactly what the crash took");
        assert!(crash_lost > 0);
        let two = &logs[&2];
        let crashed = two.iter().position(|r| r.event == Event::Crashed).unwrap();
        let restarted = &two[crashed + 1];
        assert!(
            matches!(restarted.event, Event::Restarted { recovered, .. } if recovered == (restart_clock == RestartClock::Recovered))
        );
        match restart_clock {
            RestartClock::Fresh => assert_eq!(restarted.logical_clock, 0, "a fresh clock starts again"),
            RestartClock::Recovered => assert_eq!(restarted.logical_clock, two[crashed].logical_clock),
        }
        // Its peers saw it go and come back.
        for peer in [1, 3] {
            let events: Vec<&Event> = logs[&peer].iter().map(|r| &r.event).collect();
            assert!(events.contains(&&Event::Disconnected { peer: 2 }));
            assert_eq!(events.iter().filter(|e| matches!(e, Event::Connected { peer: 2, .. })).count(), 2);
        }
        // No tick while it was down.
        assert!(!two.iter().any(|r| r.event.is_tick() && (seconds(4.0)..seconds(7.0)).contains(&r.time_us)));
    }
}

#[test]
fn a_pause_catches_up_its_ticks_and_says_it_fell_behind() {
    let pause = FaultSpec::Pause { machine: 1, start: 3.0, end: 6.0 };
    let plan = plan(3, 10.0, vec![pause]);
    let (_, logs) = simulate(&plan);
    checked(&plan, &logs);
    let one = &logs[&1];
    assert!(!one.iter().any(|r| r.event.is_tick() && (seconds(3.0)..seconds(6.0)).contains(&r.time_us)));
    let behind = one.iter().find(|r| matches!(r.event, Event::Behind { .. })).expect("it says it fell behind");
    assert_eq!(behind.time_us, seconds(6.0));
    let rate = plan.machines[0].rate;
    let caught_up = one.iter().filter(|r| r.event.is_tick() && r.time_us == seconds(6.0)).count();
    assert!(caught_up as u32 >= 3 * rate, "{caught_up} ticks run at the resume");
}

#[test]
fn a_clock_step_moves_the_physical_clock_and_hlc_absorbs_it() {
    let step = FaultSpec::Clock { machine: 3, start: 5.0, step_ms: Some(-2_000.0), drift_ppm: None };
    let plan = plan(6, 10.0, vec![step]);
    let (_, logs) = simulate(&plan);
    checked(&plan, &logs);
    let three = &logs[&3];
    let changed = three.iter().position(|r| matches!(r.event, Event::ClockChanged { .. })).unwrap();
    assert_eq!(three[changed].event, Event::ClockChanged { step_us: -2_000_000, drift_ppb: None });
    assert_eq!(three[changed].physical_clock_us, Some(seconds(5.0) - 2_000_000));
    // After the step its HLC runs ahead of its physical clock (l - pt > 0), never behind it.
    let after: Vec<i64> = three[changed..]
        .iter()
        .filter(|r| r.event.is_tick())
        .map(|r| r.hlc.unwrap().l_us - r.physical_clock_us.unwrap())
        .collect();
    assert!(after.iter().all(|&offset| offset >= 0));
    assert!(after[0] > 1_000_000, "right after the step l is ahead by about the step: {}", after[0]);
}

#[test]
fn the_same_seed_gives_the_same_faulted_run() {
    let faults = vec![
        FaultSpec::Loss { start: 0.0, end: None, links: None, probability: 0.3 },
        FaultSpec::Crash { machine: 1, start: 2.0, end: Some(3.0), restart_clock: RestartClock::Fresh },
        FaultSpec::Latency {
            start: 1.0,
            end: Some(4.0),
            links: Some(vec![[2, 3]]),
            delay: DelaySpec::Exponential { mean_ms: 50.0 },
        },
    ];
    let a = simulate(&plan(9, 6.0, faults.clone()));
    let b = simulate(&plan(9, 6.0, faults));
    assert_eq!(a, b);
}
