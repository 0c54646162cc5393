//! The event loop's rules on small runs.

use std::collections::BinaryHeap;

use super::wire::{Payload, Pending, wake_key};
use super::*;
use clocklab_config::{Config, DelayDistribution, plan_runs};
use clocklab_driver::Due;
use clocklab_log::{Event, Record};

/// Keeps every line.
#[derive(Default)]
struct VecSink(Vec<Record>);

impl Sink for VecSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
}

/// Two machines at rate 1 whose empty-queue ticks always send.
fn always_sending_pair(duration_s: f64) -> RunPlan {
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    (experiment.machines, experiment.max_clock_rate, experiment.max_event_num) = (2, 1, 3);
    experiment.duration = duration_s;
    plan_runs(&config, 7, std::path::Path::new("unused")).remove(0)
}

fn simulate(plan: &RunPlan, delay_us: f64) -> (SimSummary, Vec<Record>) {
    let settings = SimSettings { network: DelayDistribution::Constant { delay_us }, ..SimSettings::default() };
    let mut sink = VecSink::default();
    let summary = Simulation::new(plan, &settings).unwrap().run(&mut sink).unwrap();
    (summary, sink.0)
}

fn ticks_of(records: &[Record], id: MachineId) -> Vec<&Record> {
    records.iter().filter(|r| r.machine == id && r.event.is_tick()).collect()
}

#[test]
fn a_delivery_at_the_instant_of_a_tick_is_processed_by_it() {
    // Each message takes exactly one tick interval, so it lands at the
    // instant of the receiver's next tick: that tick must take it.
    let plan = always_sending_pair(6.0);
    let (summary, records) = simulate(&plan, 1_000_000.0);
    for id in [1, 2] {
        let ticks = ticks_of(&records, id);
        assert_eq!(ticks.len(), 6);
        for (k, tick) in ticks.iter().enumerate() {
            assert_eq!(tick.time_us, SimSettings::DEFAULT_EPOCH_US + k as i64 * 1_000_000);
            let processed = matches!(tick.event, Event::Processed { .. });
            assert_eq!(processed, k % 2 == 1, "machine {id}, tick {k}: {tick:?}");
        }
    }
    assert_eq!(summary.ticks, 12);
    assert_eq!(summary.unprocessed, 0);
}

#[test]
fn messages_on_the_wire_at_the_deadline_arrive_and_are_logged_unprocessed() {
    let plan = always_sending_pair(3.0);
    let (summary, records) = simulate(&plan, 10_000_000.0);
    let start = SimSettings::DEFAULT_EPOCH_US;
    for id in [1, 2] {
        let lines: Vec<&Record> = records.iter().filter(|r| r.machine == id).collect();
        // Initialized, Connected, three sends, three unprocessed, Stopped.
        assert_eq!(lines.len(), 9, "{lines:#?}");
        let tail = &lines[5..];
        for (idx, line) in tail[..3].iter().enumerate() {
            assert_eq!(line.event, Event::Unprocessed { from: 3 - id, clock: idx as u64 + 1 });
            assert_eq!(line.queue_length, 3 - idx as u64);
            assert_eq!(line.logical_clock, 3);
            // The last of them arrives 10 s after the tick at 2 s.
            assert_eq!(line.time_us, start + 12_000_000);
        }
        assert_eq!(tail[3].event, Event::Stopped);
        assert_eq!((tail[3].queue_length, tail[3].time_us), (0, start + 12_000_000));
    }
    assert_eq!((summary.messages, summary.unprocessed, summary.max_in_flight), (6, 6, 6));
    assert_eq!(summary.end_us, 12_000_000);
}

#[test]
fn stopped_is_at_the_deadline_when_the_wire_is_quiet() {
    let plan = always_sending_pair(2.5);
    let (summary, records) = simulate(&plan, 0.0);
    let stopped: Vec<&Record> = records.iter().filter(|r| r.event == Event::Stopped).collect();
    assert_eq!(stopped.len(), 2);
    assert!(stopped.iter().all(|r| r.time_us == SimSettings::DEFAULT_EPOCH_US + 2_500_000));
    assert_eq!(summary.end_us, 2_500_000);
    assert_eq!(summary.ticks, 6, "ceil(1 x 2.5) ticks each");
}

#[test]
fn a_stop_request_ends_ticking_and_loses_nothing() {
    let mut plan = always_sending_pair(3_600.0);
    plan.experiment.max_clock_rate = 1;
    let settings = SimSettings { network: DelayDistribution::Constant { delay_us: 5.0 }, ..SimSettings::default() };
    let (full, _) = simulate(&plan, 5.0);
    let mut sink = VecSink::default();
    let stop = AtomicBool::new(true);
    let summary = Simulation::new(&plan, &settings).unwrap().run_until(&mut sink, &stop).unwrap();
    let stopped_at_us = summary.stopped_at_us.expect("the stop was seen");
    assert!(summary.ticks < full.ticks && summary.ticks > 0, "{summary:?}");
    // Whole logs: the end of each, and every message sent is received.
    let logs: std::collections::BTreeMap<MachineId, Vec<Record>> =
        [1, 2].map(|id| (id, sink.0.iter().filter(|r| r.machine == id).cloned().collect())).into();
    for records in logs.values() {
        assert_eq!(records.last().unwrap().event, Event::Stopped);
        assert!(
            records.iter().filter(|r| r.event.is_tick()).all(|r| r.time_us < settings.epoch_us + stopped_at_us as i64)
        );
    }
    let expect = clocklab_log::check::Expectations {
        tick_tolerance: u64::MAX,
        ..clocklab_log::check::Expectations::new(2, 3_600.0, clocklab_model::ClockKinds::LAMPORT)
    };
    let report = clocklab_log::check::check_run(&logs, &expect);
    assert!(report.is_ok(), "{:?}", report.violations);
    assert_eq!(report.sent, report.received);
    // Not set, the flag changes nothing.
    let mut again = VecSink::default();
    let unstopped = Simulation::new(&plan, &settings).unwrap().run_until(&mut again, &AtomicBool::new(false)).unwrap();
    assert_eq!(unstopped, full);
}

#[test]
fn bad_plans_are_refused() {
    let plan = always_sending_pair(1.0);
    let mut missing = plan.clone();
    missing.machines.pop();
    assert!(matches!(
        Simulation::new(&missing, &SimSettings::default()),
        Err(SimError::MachineList { expected: 2, .. })
    ));
    let mut too_many = plan.clone();
    too_many.experiment.machines = 60_000;
    too_many.machines = (1..=60_000)
        .map(|id| clocklab_config::MachinePlan { id, seed: 0, rate: 1, clock_offset_us: 0, clock_drift_ppm: 0.0 })
        .collect();
    assert_eq!(Simulation::new(&too_many, &SimSettings::default()).unwrap_err(), SimError::TooManyMachines(60_000));
    let mut bad_event_num = plan;
    bad_event_num.experiment.max_event_num = 2;
    assert!(matches!(
        Simulation::new(&bad_event_num, &SimSettings::default()),
        Err(SimError::Params { id: 1, source: ParamsError::MaxEventNumTooSmall(2) })
    ));
}

#[test]
fn simultaneous_events_are_ordered_by_key() {
    let delivery = |time_us: u64, seq: u64| Pending {
        key: u128::from(time_us) << 64 | u128::from(seq),
        payload: Payload::Delivery { from: 1, to: 2 },
    };
    let wake = |time_us: u64, due: Due, id: MachineId| Pending {
        key: wake_key(time_us, due, id),
        payload: Payload::Wake { id },
    };
    let tick = |time_us, id| wake(time_us, Due::Tick, id);
    let change = |time_us, id| wake(time_us, Due::Change, id);
    let mut heap = BinaryHeap::from([
        tick(5, 2),
        tick(5, 1),
        delivery(5, 9),
        change(5, 3),
        delivery(5, 3),
        delivery(4, 10),
        tick(6, 1),
    ]);
    let mut order = Vec::new();
    while let Some(pending) = heap.pop() {
        order.push(match pending.payload {
            Payload::Wake { id } if pending.key >> 62 & 3 == 1 => format!("c{}@{}", id, pending.time_us()),
            Payload::Wake { id } => format!("t{}@{}", id, pending.time_us()),
            Payload::Delivery { .. } => format!("d{}@{}", pending.key as u64, pending.time_us()),
        });
    }
    assert_eq!(order, ["d10@4", "d3@5", "d9@5", "c3@5", "t1@5", "t2@5", "t1@6"]);
}
