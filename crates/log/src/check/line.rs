//! The rules of one machine's log, line by line, across its incarnations.

use std::collections::BTreeMap;

use clocklab_model::{HlcStamp, MachineId};

use super::clocks::{check_hlc, check_vector};
use super::{CheckReport, Expectations};
use crate::events::{Pairing, RunEvent};
use crate::incarnations::{Change, Incarnations};
use crate::record::Event;

/// One machine's state as its lines go by.
#[derive(Debug, Default)]
pub(super) struct MachineState {
    pub(super) rate: Option<u32>,
    pub(super) clock: u64,
    /// Ticks over every incarnation.
    pub(super) ticks: u64,
    /// Ticks of the current incarnation.
    incarnation_ticks: u64,
    pub(super) records: u64,
    /// The peers the current incarnation connected to.
    pub(super) connected: Vec<MachineId>,
    /// Its crashes, restarts and reconnections.
    pub(super) incarnations: Incarnations,
    pub(super) stopped: bool,
    /// The current incarnation ended with `Crashed`.
    pub(super) crashed: bool,
    first_tick_us: Option<i64>,
    pub(super) last_time: i64,
    in_drain: bool,
    pub(super) vector: Option<Vec<u64>>,
    pub(super) hlc: HlcStamp,
    /// Per sender, the send index of the last message received from it.
    last_send_from: BTreeMap<MachineId, u64>,
}

impl MachineState {
    /// A machine before its first line.
    pub(super) fn new() -> MachineState {
        MachineState { last_time: i64::MIN, ..MachineState::default() }
    }

    /// How long the machine was down over the run, in microseconds (see
    /// [`Incarnations::down_us`]; the run starting at the first tick).
    pub(super) fn down_us(&self, expect: &Expectations) -> i64 {
        let end_us = self.first_tick_us.map(|first| first + (expect.duration_s * 1e6) as i64);
        self.incarnations.down_us(end_us)
    }

    /// The ticks expected of machine `id` at `rate` with `full` ticks in the
    /// whole run, and the tolerance: the ticks due while the machine was
    /// down are missing. With the plan's down windows the count is exact (up
    /// to the tolerance, once more per crash, for real time); without them,
    /// the crashes and restarts the log tells give it, give or take one per
    /// crash.
    pub(super) fn expected_ticks(&self, id: MachineId, rate: u32, full: u64, expect: &Expectations) -> (u64, u64) {
        let n_crashes = self.incarnations.crashes().len() as u64;
        match &expect.planned_down {
            Some(planned) => {
                let duration_us = clocklab_model::schedule::duration_us(expect.duration_s);
                let gone: u64 = planned
                    .get(&id)
                    .into_iter()
                    .flatten()
                    .map(|&(from, to)| {
                        let to = to.min(duration_us);
                        let ticks = |us| clocklab_model::schedule::n_ticks(rate, us);
                        ticks(to).saturating_sub(ticks(from.min(to)))
                    })
                    .sum();
                (full.saturating_sub(gone), expect.tick_tolerance.saturating_mul(1 + n_crashes))
            }
            None => {
                let missed = (f64::from(rate) * self.down_us(expect) as f64 / 1e6).round() as u64;
                (full.saturating_sub(missed), expect.tick_tolerance.saturating_add(n_crashes))
            }
        }
    }
}

/// Checks one line against its machine's state, and moves the state on.
pub(super) fn check_line(state: &mut MachineState, event: &RunEvent, expect: &Expectations, report: &mut CheckReport) {
    let id = event.id.machine;
    let record = &event.record;
    let mut violations = Vec::new();
    let mut v = |message: String| violations.push(message);
    state.records += 1;
    if record.machine != id {
        v(format!("line is from machine {}, expected {id}", record.machine));
    }
    if state.stopped {
        v(format!("a line after Stopped: {:?}", record.event));
    }
    if state.crashed && !matches!(record.event, Event::Restarted { .. }) {
        v(format!("a line after Crashed that is not Restarted: {:?}", record.event));
    }
    if record.time_us < state.last_time {
        v("time goes backwards".into());
    }
    state.last_time = record.time_us;
    if state.records == 1 && !matches!(record.event, Event::Initialized { .. }) {
        v("the first line is not Initialized".into());
    }
    let change = state.incarnations.observe(record);
    let received = match &event.pairing {
        Pairing::Paired(sent) => Some(sent),
        _ => None,
    };
    let expected_clock = match &record.event {
        Event::Initialized { rate, .. } => {
            if state.records != 1 {
                v("Initialized is not the first line".into());
            }
            state.rate = Some(*rate);
            state.clock
        }
        Event::Restarted { rate, recovered, .. } => {
            if !state.crashed {
                v("Restarted without a crash before it".into());
            }
            if state.rate != Some(*rate) {
                v(format!("restarted at rate {rate}, but its rate is {:?}", state.rate));
            }
            state.crashed = false;
            state.incarnation_ticks = 0;
            state.in_drain = false;
            state.connected.clear();
            if *recovered {
                if record.logical_clock < state.clock {
                    v(format!(
                        "a recovered clock {} below the clock before the crash, {}",
                        record.logical_clock, state.clock
                    ));
                }
                record.logical_clock
            } else {
                // A fresh incarnation: every clock back to where it starts.
                state.vector = None;
                state.hlc = HlcStamp::default();
                0
            }
        }
        Event::Connected { peer, .. } => {
            // A reconnection to a peer that had gone (it crashed and came back) is expected.
            if change != Change::Reconnected {
                if *peer == id || *peer == 0 || *peer > expect.n_machines || state.connected.contains(peer) {
                    v(format!("Connected to unexpected machine {peer}"));
                }
                if state.incarnation_ticks > 0 {
                    v(format!("Connected to machine {peer} after the first tick"));
                }
                state.connected.push(*peer);
            }
            state.clock
        }
        Event::Internal => state.clock + 1,
        Event::Sent { to } => {
            let ordered = to.windows(2).all(|pair| pair[0] < pair[1]);
            if to.is_empty() || !ordered || to.iter().any(|&peer| peer == id || peer == 0 || peer > expect.n_machines) {
                v(format!("bad recipients {to:?}"));
            }
            for &peer in to {
                *report.sent.entry((id, peer)).or_default() += 1;
            }
            state.clock + 1
        }
        Event::Processed { from, clock: stamp } => {
            if record.queue_length == 0 {
                v("Processed with queue length 0 (it counts the message taken)".into());
            }
            match (from, stamp) {
                (Some(_), Some(stamp)) => state.clock.max(*stamp) + 1,
                _ => {
                    v("Processed without sender and clock".into());
                    record.logical_clock
                }
            }
        }
        Event::Disconnected { .. } => state.clock,
        Event::Lost { to, clock } => {
            if received.is_none() {
                v(format!("a lost message to machine {to} with clock {clock} that this machine never sent"));
            }
            *report.lost.entry((id, *to)).or_default() += 1;
            state.clock
        }
        Event::Held { to, clock } => {
            if received.is_none() {
                v(format!("a held message to machine {to} with clock {clock} that this machine never sent"));
            }
            *report.held.entry((id, *to)).or_default() += 1;
            // Held lines belong to the end, with the queue's.
            state.in_drain = true;
            state.clock
        }
        Event::Crashed => {
            state.crashed = true;
            state.clock
        }
        Event::Behind { .. } | Event::ClockChanged { .. } => state.clock,
        Event::Unprocessed { .. } => {
            state.in_drain = true;
            state.clock
        }
        Event::Stopped => {
            state.stopped = true;
            state.clock
        }
    };
    if let Event::Processed { from: Some(from), clock: Some(stamp) } | Event::Unprocessed { from, clock: stamp } =
        &record.event
    {
        *report.received.entry((*from, id)).or_default() += 1;
        match &event.pairing {
            Pairing::Paired(sent) => {
                let last = state.last_send_from.insert(*from, sent.id.send.index);
                if last.is_some_and(|last| last > sent.id.send.index) {
                    v(format!(
                        "the message from machine {from} sent in its record {} arrived after a later one",
                        sent.id.send.index
                    ));
                }
            }
            _ => v(format!("a message from machine {from} with clock {stamp} that machine {from} never sent")),
        }
    }
    if record.event.is_tick() {
        state.ticks += 1;
        state.incarnation_ticks += 1;
        state.first_tick_us.get_or_insert(record.time_us);
        if state.in_drain {
            v("a tick after Held or Unprocessed lines".into());
        }
        if matches!(record.event, Event::Internal | Event::Sent { .. }) && record.queue_length != 0 {
            v(format!(
                "{} with queue length {} (only an empty queue draws an event)",
                record.event.kind(),
                record.queue_length
            ));
        }
    }
    if record.logical_clock != expected_clock {
        v(format!("{} has clock {}, the clock rule gives {expected_clock}", record.event.kind(), record.logical_clock));
    }
    state.clock = record.logical_clock;
    // A lost or held message's pairing is its own send: no clock takes it in.
    let taken = received.filter(|_| !matches!(record.event, Event::Lost { .. } | Event::Held { .. }));
    check_vector(state, record, taken.and_then(|sent| sent.vector.as_deref()), expect, &mut v);
    check_hlc(state, record, taken.map(|sent| sent.hlc), expect, &mut v);
    report.violations.extend(violations.into_iter().map(|m| format!("machine {id}, record {}: {m}", state.records)));
}
