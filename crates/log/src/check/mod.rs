//! The line-by-line check of a run's logs: the rules every clocklab run must
//! keep, whichever runtime made it, faults included.
//!
//! The check reads the run through [`RunEvents`], so every receive is paired
//! with its send. Per machine ([`line`]): `Initialized` first, `Connected`
//! once per peer before the first tick (and again after a peer's crash, as
//! a reconnection), `Stopped` last and nothing after it; the clock rules on
//! every line (Lamport's always; the vector clock's and the HLC's when the
//! run keeps them, exactly, with the received stamps taken from the paired
//! send lines and the physical time from the line's `Physical Clock`,
//! `clocks`); queue lengths consistent with the events; times that never
//! go back; the tick count against `ceil(rate x duration)` (see
//! `clocklab_model::schedule`), less the ticks due while the machine was
//! down (as the fault plan has it, when the run's plan is known). A crash ends an incarnation (`Crashed`); the next one begins with
//! `Restarted`, its clocks back at 0 (`fresh`) or where they were
//! (`recovered`, never lower).
//!
//! Per pair of machines, every message is accounted for: sent = processed +
//! unprocessed + lost + held, where lost is the sender's `Lost` lines (the
//! fault plan's losses) and the messages a crash took (see
//! `crate::incarnations`), and held is the sender's `Held` lines (messages
//! the plan still held when the run's drain ended). Receives pair with sends in the order they
//! were sent (a TCP connection keeps order). Clocks are compared as the wire
//! carries them: a clock above `u32::MAX` is sent as `u32::MAX` (see
//! `clocklab_model::wire`).

mod clocks;
mod line;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use clocklab_model::{ClockKinds, MachineId};

use crate::events::{RunEvents, lines_of};
use crate::incarnations::crash_took;
use crate::read::ReadLine;
use crate::record::Record;
use line::MachineState;

/// What a run is expected to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectations {
    /// How many machines the run has.
    pub n_machines: u32,
    /// How long the machines ticked, in seconds.
    pub duration_s: f64,
    /// How far a tick count may be from `rate x duration` (0 in the
    /// simulator, 1 in real time).
    pub tick_tolerance: u64,
    /// Whether a machine may have gone away (a failed run): messages to it may
    /// be missing at its receivers, and its log may end without `Stopped`.
    pub allow_loss: bool,
    /// The clocks every line must carry.
    pub clocks: ClockKinds,
    /// When each machine is down by the run's fault plan, in microseconds
    /// after the start (`[from, to)` windows; a machine not listed is never
    /// down); `None` when the plan is unknown, and the crashes and restarts
    /// the log tells stand in for it.
    pub planned_down: Option<BTreeMap<MachineId, Vec<(u64, u64)>>>,
}

impl Expectations {
    /// A run of `n_machines` that ticked for `duration_s` with `clocks`,
    /// sound and with no fault plan known, counted exactly.
    pub fn new(n_machines: u32, duration_s: f64, clocks: ClockKinds) -> Expectations {
        Expectations { n_machines, duration_s, tick_tolerance: 0, allow_loss: false, clocks, planned_down: None }
    }
}

/// The outcome of [`check_run`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Every rule broken, one sentence each (empty when the run is sound).
    pub violations: Vec<String>,
    /// Ticks per machine.
    pub ticks: BTreeMap<MachineId, u64>,
    /// Messages sent per ordered pair `(from, to)`.
    pub sent: BTreeMap<(MachineId, MachineId), u64>,
    /// Messages received (processed or unprocessed) per ordered pair `(from, to)`.
    pub received: BTreeMap<(MachineId, MachineId), u64>,
    /// Messages the fault plan lost (the senders' `Lost` lines) per ordered pair.
    pub lost: BTreeMap<(MachineId, MachineId), u64>,
    /// Messages a crash took, per ordered pair (derived from the crash windows).
    pub crash_lost: BTreeMap<(MachineId, MachineId), u64>,
    /// Messages held at the end (the senders' `Held` lines) per ordered pair.
    pub held: BTreeMap<(MachineId, MachineId), u64>,
}

impl CheckReport {
    /// Whether no rule was broken.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks the logs of one run, given as each machine's records in file order.
pub fn check_run(logs: &BTreeMap<MachineId, Vec<Record>>, expect: &Expectations) -> CheckReport {
    check_events(RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records)))), expect)
}

/// Checks the events of one run.
pub fn check_events<I: Iterator<Item = ReadLine>>(mut events: RunEvents<I>, expect: &Expectations) -> CheckReport {
    let mut report = CheckReport::default();
    let mut machines: BTreeMap<MachineId, MachineState> =
        events.machines().map(|id| (id, MachineState::new())).collect();
    for id in 1..=expect.n_machines {
        if !machines.contains_key(&id) {
            report.violations.push(format!("machine {id}: no log"));
        }
    }
    for event in events.by_ref() {
        let state = machines.get_mut(&event.id.machine).expect("events come from the machines' logs");
        line::check_line(state, &event, expect, &mut report);
    }
    for (&id, state) in &machines {
        let mut v = |message: String| report.violations.push(format!("machine {id}: {message}"));
        if state.records == 0 {
            v("empty log".into());
            continue;
        }
        // A machine that crashed and never came back ends with `Crashed`.
        let ended = state.stopped || state.crashed;
        if !ended && !expect.allow_loss {
            v("the log does not end with Stopped".into());
        }
        // A restarted incarnation connects to the peers that are up; only
        // the first must have every one.
        let first_incarnation = state.incarnations.crashes().is_empty();
        if first_incarnation && state.connected.len() as u32 != expect.n_machines - 1 && !expect.allow_loss {
            v(format!("connected to {} peers, expected {}", state.connected.len(), expect.n_machines - 1));
        }
        if let Some(rate) = state.rate {
            let full =
                clocklab_model::schedule::n_ticks(rate, clocklab_model::schedule::duration_us(expect.duration_s));
            let (want, tolerance) = state.expected_ticks(id, rate, full, expect);
            if state.ticks.abs_diff(want) > tolerance && !expect.allow_loss {
                let down = if state.down_us(expect) > 0 { " (less the ticks due while it was down)" } else { "" };
                v(format!(
                    "{} ticks at rate {rate} for {} s, expected {want} ± {tolerance}{down}",
                    state.ticks, expect.duration_s
                ));
            }
        }
        report.ticks.insert(id, state.ticks);
    }
    account(&events, &machines, expect, &mut report);
    report
}

/// Every message, pair by pair: sent = received + lost + taken by a crash.
fn account<I: Iterator<Item = ReadLine>>(
    events: &RunEvents<I>,
    machines: &BTreeMap<MachineId, MachineState>,
    expect: &Expectations,
    report: &mut CheckReport,
) {
    let mut never_arrived: BTreeMap<(MachineId, MachineId), Vec<u64>> = BTreeMap::new();
    for sent in events.unmatched_sends() {
        let (from, to) = (sent.id.send.machine, sent.id.to);
        let incarnations = |id| machines.get(&id).map(|state: &MachineState| &state.incarnations);
        if crash_took(incarnations(from), incarnations(to), to, sent.time_us) {
            *report.crash_lost.entry((from, to)).or_default() += 1;
        } else {
            never_arrived.entry((from, to)).or_default().push(sent.id.send.index);
        }
    }
    let pairs: std::collections::BTreeSet<_> = report.sent.keys().chain(report.received.keys()).copied().collect();
    for pair @ (from, to) in pairs {
        let count = |map: &BTreeMap<(MachineId, MachineId), u64>| map.get(&pair).copied().unwrap_or(0);
        let (sent, received, lost, crash_lost, held) = (
            count(&report.sent),
            count(&report.received),
            count(&report.lost),
            count(&report.crash_lost),
            count(&report.held),
        );
        let missing = never_arrived.get(&pair);
        let accounted = received + lost + crash_lost + held;
        if sent != accounted && !(expect.allow_loss && accounted < sent) || (missing.is_some() && !expect.allow_loss) {
            let first = missing.and_then(|missing| missing.first()).map_or(String::new(), |index| {
                format!("; {} never arrived, the first sent in record {index}", missing.map_or(0, Vec::len))
            });
            let losses = if lost + crash_lost > 0 {
                format!(", lost {lost} (by the fault plan) and {crash_lost} (to a crash)")
            } else {
                String::new()
            };
            let losses = if held > 0 { format!("{losses}, held {held} at the end") } else { losses };
            report.violations.push(format!(
                "machine {from} -> {to}: sent {sent} messages, received {received} (processed + unprocessed){losses}{first}"
            ));
        }
    }
}
