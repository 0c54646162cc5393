//! Fault timelines driven through the state machine alone: each case a
//! plan, the calls a runtime would make at given instants, and the lines the
//! machine must write, in order, with their instants. Machines tick once a
//! second (`max_clock_rate` 1), so every instant is plain.

use clocklab_faults::{DelaySpec, FaultPlan, FaultSpec, RestartClock};
use clocklab_log::{Event, Record};
use clocklab_model::{MachineId, Stamp};

use super::{Dispatch, Effects, RunTimes, Timeline};
use crate::DriverParams;

const T0: i64 = 1_767_225_600_000_000;
const S: i64 = 1_000_000;

/// What a runtime does to the machine at an instant (seconds after the start).
#[derive(Clone, Copy, Debug)]
enum Call {
    /// A connection to the peer is up.
    Connected(MachineId),
    /// The connection to the peer is gone.
    Disconnected(MachineId),
    /// A message from the peer with this Lamport clock arrives.
    Deliver(MachineId, u64),
    /// A stop request for this instant.
    Stop,
}

/// Every line and send, as the runtime sees them.
#[derive(Default)]
struct Seen {
    lines: Vec<Record>,
    sends: Vec<(i64, Vec<Dispatch>)>,
    crashes: u32,
    restarts: u32,
    now_us: i64,
}

impl Effects for Seen {
    type Error = std::convert::Infallible;

    fn line(&mut self, record: &Record) -> Result<(), Self::Error> {
        self.lines.push(record.clone());
        Ok(())
    }

    fn send(&mut self, _frame: &[u8], to: &[Dispatch]) -> Result<(), Self::Error> {
        self.sends.push((self.now_us, to.to_vec()));
        Ok(())
    }

    fn crashed(&mut self, _queue_lost: u64) -> Result<(), Self::Error> {
        self.crashes += 1;
        Ok(())
    }

    fn restarted(&mut self) -> Result<(), Self::Error> {
        self.restarts += 1;
        Ok(())
    }
}

/// Machine 1 of 3, ticking once a second for `duration_s`, drawing events
/// from `1..=max_event_num`, under `faults`; connected to both peers at the
/// start; the `calls` made at their instants (seconds), until nothing is
/// left to do; then its end, as a runtime ends it (at the end of ticking, or
/// at the last instant it ran, whichever is later).
fn drive(duration_s: i64, max_event_num: u32, faults: &[FaultSpec], calls: &[(f64, Call)]) -> Seen {
    clocklab_faults::validate(faults, 3, duration_s as f64).unwrap();
    let duration_us = (duration_s * S) as u64;
    let plan = FaultPlan::new(faults, 5, duration_us);
    let params = DriverParams::new(1, 3, 1, max_event_num, 11);
    let times = RunTimes { start_us: T0, duration_us, drain_us: 2_000_000 };
    let mut timeline = Timeline::new(params, plan, times, true).unwrap();
    let mut seen = Seen { now_us: T0, ..Seen::default() };
    timeline.initialized(T0, "h", Some(1), &mut seen).unwrap();
    for peer in [2, 3] {
        timeline.connected(T0, peer, ("h", Some(peer as u16)), &mut seen).unwrap();
    }
    let mut calls: Vec<(i64, Call)> = calls.iter().map(|&(at_s, call)| (T0 + (at_s * S as f64) as i64, call)).collect();
    calls.reverse();
    loop {
        let tick = timeline.poll_timeout().map(|timeout| T0 + timeout.at_us as i64);
        let call = calls.last().map(|&(at, _)| at);
        // Calls at an instant come before the timeline's work then, as a
        // runtime takes arrivals before it ticks.
        // Time never goes back: a late tick runs now.
        let now = match (tick, call) {
            (Some(tick), Some(call)) => tick.min(call),
            (Some(tick), None) => tick,
            (None, Some(call)) => call,
            (None, None) => break,
        }
        .max(seen.now_us);
        seen.now_us = now;
        if call.is_some_and(|at| at <= now) {
            let (_, call) = calls.pop().expect("a call is due");
            match call {
                Call::Connected(peer) => drop(timeline.connected(now, peer, ("h", Some(9)), &mut seen)),
                Call::Disconnected(peer) => drop(timeline.disconnected(now, peer, &mut seen)),
                Call::Deliver(from, clock) => drop(timeline.deliver(now, from, Stamp::lamport(clock))),
                Call::Stop => timeline.stop_at((now - T0) as u64),
            }
            continue;
        }
        timeline.handle_timeout(now, &mut seen).unwrap();
    }
    let end = (T0 + timeline.ticking_end_us() as i64).max(seen.now_us);
    timeline.end(end, &mut seen).unwrap();
    seen
}

/// The lines as `(seconds after the start, kind)`, ticks shown by kind.
fn shape(seen: &Seen) -> Vec<(f64, &'static str)> {
    seen.lines.iter().map(|r| ((r.time_us - T0) as f64 / S as f64, r.event.kind())).collect()
}

fn crash(start: f64, end: Option<f64>, restart_clock: RestartClock) -> FaultSpec {
    FaultSpec::Crash { machine: 1, start, end, restart_clock }
}

/// A case of the table: what it is, and what must hold of what was seen.
type Case = (&'static str, Box<dyn Fn() -> Seen>, Box<dyn Fn(&Seen)>);

#[test]
fn fault_timelines_write_what_the_rules_say() {
    let cases: Vec<Case> = vec![
        (
            "a crash at the start for good: no tick, the log ends with Crashed",
            Box::new(|| drive(4, 1_000, &[crash(0.0, None, RestartClock::Fresh)], &[])),
            Box::new(|seen| {
                assert_eq!(
                    shape(seen),
                    [(0.0, "initialized"), (0.0, "connected"), (0.0, "connected"), (0.0, "crashed")]
                );
            }),
        ),
        (
            "a crash and a restart: the ticks due while down are gone, the next incarnation ticks from its restart",
            Box::new(|| drive(6, 1_000, &[crash(1.5, Some(3.0), RestartClock::Recovered)], &[])),
            Box::new(|seen| {
                let ticks: Vec<f64> =
                    seen.lines.iter().filter(|r| r.event.is_tick()).map(|r| (r.time_us - T0) as f64 / 1e6).collect();
                assert_eq!(ticks, [0.0, 1.0, 3.0, 4.0, 5.0]);
                let kinds: Vec<&str> = shape(seen).into_iter().map(|(_, k)| k).collect();
                let crashed = kinds.iter().position(|k| *k == "crashed").unwrap();
                assert_eq!(kinds[crashed + 1], "restarted");
                // Recovered: its clock goes on from where it was.
                let (before, after) = (&seen.lines[crashed], &seen.lines[crashed + 1]);
                assert_eq!(before.logical_clock, after.logical_clock);
                assert_eq!((seen.crashes, seen.restarts), (1, 1));
            }),
        ),
        (
            "a restarted incarnation is connected to no one until its runtime says so",
            Box::new(|| {
                // Always sends (max_event_num 3); after the restart only machine 3 is connected.
                let calls = [(2.1, Call::Connected(3)), (3.5, Call::Connected(2))];
                drive(5, 3, &[crash(1.5, Some(2.0), RestartClock::Fresh)], &calls)
            }),
            Box::new(|seen| {
                let restarted = seen.lines.iter().position(|r| r.event.kind() == "restarted").unwrap();
                let connected: Vec<MachineId> = seen.lines[restarted..]
                    .iter()
                    .filter_map(|r| match r.event {
                        Event::Connected { peer, .. } => Some(peer),
                        _ => None,
                    })
                    .collect();
                assert_eq!(connected, [3, 2]);
                // The sends of 2 s and 3 s reach machine 3 alone.
                for (at, to) in &seen.sends {
                    let reached: Vec<MachineId> = to.iter().map(|d| d.to).collect();
                    if (T0 + 2 * S..T0 + 3 * S + S / 2).contains(at) {
                        assert!(!reached.contains(&2), "sent at {at} to {reached:?}");
                    }
                }
            }),
        ),
        (
            "a clock fault while down steps the clock, and the restart says so",
            Box::new(|| {
                let step = FaultSpec::Clock { machine: 1, start: 2.0, step_ms: Some(-300.0), drift_ppm: None };
                drive(5, 1_000, &[crash(1.0, Some(3.0), RestartClock::Fresh), step], &[])
            }),
            Box::new(|seen| {
                let kinds: Vec<(f64, &str)> = shape(seen);
                let crashed = kinds.iter().position(|(_, k)| *k == "crashed").unwrap();
                assert_eq!(kinds[crashed + 1..crashed + 3], [(3.0, "restarted"), (3.0, "clock_changed")]);
                assert_eq!(seen.lines[crashed + 2].event, Event::ClockChanged { step_us: -300_000, drift_ppb: None });
            }),
        ),
        (
            "a pause holds the ticks back and they run when it ends, late as the plan meant",
            Box::new(|| drive(5, 1_000, &[FaultSpec::Pause { machine: 1, start: 1.0, end: 3.5 }], &[])),
            Box::new(|seen| {
                let ticks: Vec<f64> =
                    seen.lines.iter().filter(|r| r.event.is_tick()).map(|r| (r.time_us - T0) as f64 / 1e6).collect();
                assert_eq!(ticks, [0.0, 3.5, 3.5, 3.5, 4.0]);
                let behind = seen.lines.iter().find(|r| matches!(r.event, Event::Behind { .. })).unwrap();
                assert_eq!(behind.event, Event::Behind { lateness_us: 2_500_000, tick: 1 });
            }),
        ),
        (
            "a crash storm: every window crashes and restarts, the ticks due while down gone",
            Box::new(|| {
                let storm: Vec<FaultSpec> = (0..8)
                    .map(|k| crash(0.25 + f64::from(k), Some(0.75 + f64::from(k)), RestartClock::Fresh))
                    .collect();
                drive(9, 1_000, &storm, &[])
            }),
            Box::new(|seen| {
                let count = |kind| seen.lines.iter().filter(|r| r.event.kind() == kind).count();
                assert_eq!((count("crashed"), count("restarted")), (8, 8));
                // Down [k + 0.25, k + 0.75): the ticks on whole seconds all run.
                assert_eq!(seen.lines.iter().filter(|r| r.event.is_tick()).count(), 9);
                assert_eq!(seen.lines.last().unwrap().event, Event::Stopped);
            }),
        ),
        (
            "the largest latency: a message released after the drain is held at the end, never sent",
            Box::new(|| {
                let latency = FaultSpec::Latency {
                    start: 0.0,
                    end: None,
                    links: None,
                    delay: DelaySpec::Constant { ms: clocklab_faults::spec::DELAY_MS_MAX },
                };
                drive(3, 3, &[latency], &[])
            }),
            Box::new(|seen| {
                assert!(seen.sends.is_empty());
                let sent: usize = seen
                    .lines
                    .iter()
                    .map(|r| match &r.event {
                        Event::Sent { to } => to.len(),
                        _ => 0,
                    })
                    .sum();
                let held = seen.lines.iter().filter(|r| r.event.kind() == "held").count();
                assert!(sent > 0 && held == sent, "{sent} sent, {held} held");
                let stopped = seen.lines.iter().position(|r| r.event == Event::Stopped).unwrap();
                assert!(seen.lines[stopped - held..stopped].iter().all(|r| r.event.kind() == "held"));
            }),
        ),
        (
            "a crash takes what the plan still held at the machine: said just before Crashed",
            Box::new(|| {
                let latency =
                    FaultSpec::Latency { start: 0.0, end: None, links: None, delay: DelaySpec::Constant { ms: 700.0 } };
                drive(4, 3, &[latency, crash(2.5, None, RestartClock::Fresh)], &[])
            }),
            Box::new(|seen| {
                let kinds: Vec<(f64, &str)> = shape(seen);
                let crashed = kinds.iter().position(|(_, k)| *k == "crashed").unwrap();
                // The send at 2 s leaves at 2.7 s: still at the machine at 2.5 s.
                assert_eq!(kinds[crashed - 1], (2.5, "held"));
                assert_eq!(kinds[crashed - 2], (2.0, "sent"));
                assert_eq!(kinds.last().unwrap().1, "crashed");
            }),
        ),
        (
            "a stop ends ticking at its instant, and the end follows",
            Box::new(|| drive(10, 1_000, &[], &[(2.5, Call::Stop)])),
            Box::new(|seen| {
                assert_eq!(seen.lines.iter().filter(|r| r.event.is_tick()).count(), 3);
                assert_eq!(shape(seen).last(), Some(&(2.5, "stopped")));
            }),
        ),
        (
            "a peer gone and back: Disconnected once, Connected again, what arrived is processed",
            Box::new(|| {
                let calls = [
                    (0.5, Call::Deliver(2, 40)),
                    (1.2, Call::Disconnected(2)),
                    (1.3, Call::Disconnected(2)),
                    (1.8, Call::Connected(2)),
                ];
                drive(3, 1_000, &[], &calls)
            }),
            Box::new(|seen| {
                let kinds: Vec<(f64, &str)> = shape(seen);
                assert_eq!(kinds.iter().filter(|(_, k)| *k == "disconnected").count(), 1);
                assert!(kinds.contains(&(1.8, "connected")));
                let processed = seen.lines.iter().find(|r| r.event.kind() == "processed").unwrap();
                assert_eq!((processed.time_us - T0, processed.logical_clock), (S, 41));
            }),
        ),
    ];
    for (what, run, check) in cases {
        let seen = run();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&seen)));
        if result.is_err() {
            panic!("{what}: {:#?}", shape(&seen));
        }
    }
}
