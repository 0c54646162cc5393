//! The line-by-line check of a run's logs: the rules every clocklab run must
//! keep, whichever runtime made it.
//!
//! The check reads the run through [`RunEvents`], so every receive is paired
//! with its send. Per machine: `Initialized` first, `Connected` once per
//! peer before the first tick, `Stopped` last and nothing after it; the clock
//! rules on every line (Lamport's always; the vector clock's and the HLC's
//! when the run keeps them, exactly, with the received stamps taken from the
//! paired send lines and the physical time from the line's `Physical
//! Clock`); queue lengths consistent with the events; times that never go
//! back; the tick count against `ceil(rate x duration)` (see
//! `clocklab_model::schedule`). Per pair of machines: every receive
//! (processed or left unprocessed) pairs with a send, in the order the
//! messages were sent (a TCP connection keeps order), and every send is
//! received (it loses nothing). Clocks are compared as the wire carries them:
//! a clock above `u32::MAX` is sent as `u32::MAX` (see `clocklab_model::wire`).

use std::collections::BTreeMap;

use clocklab_model::hlc::HybridClock;
use clocklab_model::{ClockKinds, HlcStamp, LogicalClock, MachineId};

use crate::events::{Pairing, RunEvent, RunEvents, lines_of};
use crate::read::ReadLine;
use crate::record::{Event, Record};

/// What a run is expected to be.
#[derive(Clone, Copy, Debug, PartialEq)]
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
}

impl CheckReport {
    /// Whether no rule was broken.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// One machine's state as its lines go by.
#[derive(Debug, Default)]
struct MachineState {
    rate: Option<u32>,
    clock: u64,
    ticks: u64,
    records: u64,
    connected: Vec<MachineId>,
    stopped: bool,
    last_time: i64,
    in_drain: bool,
    vector: Option<Vec<u64>>,
    hlc: HlcStamp,
    /// Per sender, the send index of the last message received from it.
    last_send_from: BTreeMap<MachineId, u64>,
}

/// Checks the logs of one run, given as each machine's records in file order.
pub fn check_run(logs: &BTreeMap<MachineId, Vec<Record>>, expect: &Expectations) -> CheckReport {
    check_events(RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records)))), expect)
}

/// Checks the events of one run.
pub fn check_events<I: Iterator<Item = ReadLine>>(mut events: RunEvents<I>, expect: &Expectations) -> CheckReport {
    let mut report = CheckReport::default();
    let mut machines: BTreeMap<MachineId, MachineState> =
        events.machines().map(|id| (id, MachineState { last_time: i64::MIN, ..MachineState::default() })).collect();
    for id in 1..=expect.n_machines {
        if !machines.contains_key(&id) {
            report.violations.push(format!("machine {id}: no log"));
        }
    }
    for event in events.by_ref() {
        let state = machines.get_mut(&event.id.machine).expect("events come from the machines' logs");
        check_line(state, &event, expect, &mut report);
    }
    for (&id, state) in &machines {
        let mut v = |message: String| report.violations.push(format!("machine {id}: {message}"));
        if state.records == 0 {
            v("empty log".into());
            continue;
        }
        if !state.stopped && !expect.allow_loss {
            v("the log does not end with Stopped".into());
        }
        if state.connected.len() as u32 != expect.n_machines - 1 && !expect.allow_loss {
            v(format!("connected to {} peers, expected {}", state.connected.len(), expect.n_machines - 1));
        }
        if let Some(rate) = state.rate {
            let want =
                clocklab_model::schedule::n_ticks(rate, clocklab_model::schedule::duration_us(expect.duration_s));
            if state.ticks.abs_diff(want) > expect.tick_tolerance && !expect.allow_loss {
                v(format!(
                    "{} ticks at rate {rate} for {} s, expected {want} ± {}",
                    state.ticks, expect.duration_s, expect.tick_tolerance
                ));
            }
        }
        report.ticks.insert(id, state.ticks);
    }
    let mut never_arrived: BTreeMap<(MachineId, MachineId), Vec<u64>> = BTreeMap::new();
    for sent in events.unmatched_sends() {
        never_arrived.entry((sent.id.send.machine, sent.id.to)).or_default().push(sent.id.send.index);
    }
    let pairs: std::collections::BTreeSet<_> = report.sent.keys().chain(report.received.keys()).copied().collect();
    for pair @ (from, to) in pairs {
        let (sent, received) =
            (report.sent.get(&pair).copied().unwrap_or(0), report.received.get(&pair).copied().unwrap_or(0));
        let lost = never_arrived.get(&pair);
        if sent != received && !(expect.allow_loss && received < sent) || (lost.is_some() && !expect.allow_loss) {
            let first = lost.and_then(|lost| lost.first()).map_or(String::new(), |index| {
                format!("; {} never arrived, the first sent in record {index}", lost.map_or(0, Vec::len))
            });
            report.violations.push(format!(
                "machine {from} -> {to}: sent {sent} messages, received {received} (processed + unprocessed){first}"
            ));
        }
    }
    report
}

/// Checks one line against its machine's state, and moves the state on.
fn check_line(state: &mut MachineState, event: &RunEvent, expect: &Expectations, report: &mut CheckReport) {
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
    if record.time_us < state.last_time {
        v("time goes backwards".into());
    }
    state.last_time = record.time_us;
    if state.records == 1 && !matches!(record.event, Event::Initialized { .. }) {
        v("the first line is not Initialized".into());
    }
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
        Event::Connected { peer, .. } => {
            if state.ticks > 0 {
                v(format!("Connected to machine {peer} after the first tick"));
            }
            if *peer == id || *peer == 0 || *peer > expect.n_machines || state.connected.contains(peer) {
                v(format!("Connected to unexpected machine {peer}"));
            }
            state.connected.push(*peer);
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
        Event::Disconnected { .. } | Event::Behind { .. } => state.clock,
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
        if state.in_drain {
            v("a tick after Unprocessed lines".into());
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
    check_vector(state, record, received.and_then(|sent| sent.vector.as_deref()), expect, &mut v);
    check_hlc(state, record, received.map(|sent| sent.hlc), expect, &mut v);
    report.violations.extend(violations.into_iter().map(|m| format!("machine {id}, record {}: {m}", state.records)));
}

/// The vector clock's rules: zero at the start; a tick adds 1 to the own
/// component after a receive took the element-wise maximum with the sent
/// vector; other lines leave it as it was.
fn check_vector(
    state: &mut MachineState,
    record: &Record,
    sent: Option<&[u64]>,
    expect: &Expectations,
    v: &mut impl FnMut(String),
) {
    let n = expect.n_machines as usize;
    let Some(vector) = &record.vector_clock else {
        if expect.clocks.vector {
            v("no Vector Clock, but the run keeps vector clocks".into());
        }
        return;
    };
    if !expect.clocks.vector {
        v("a Vector Clock, but the run keeps no vector clocks".into());
        return;
    }
    if vector.len() != n {
        v(format!("a Vector Clock of {} components in a run of {n} machines", vector.len()));
        return;
    }
    let own = record.machine as usize - 1;
    let before = state.vector.get_or_insert_with(|| vec![0; n]).clone();
    let mut want = before.clone();
    if record.event.is_tick() {
        if let Some(sent) = sent.filter(|sent| sent.len() == n) {
            for (mine, theirs) in want.iter_mut().zip(sent) {
                *mine = (*mine).max(*theirs);
            }
        } else if matches!(record.event, Event::Processed { .. }) {
            // Without the send's vector, only the own component is known.
            for (idx, (mine, seen)) in want.iter_mut().zip(vector).enumerate() {
                if idx != own && seen >= mine {
                    *mine = *seen;
                }
            }
        }
        if own < n {
            want[own] = want[own].saturating_add(1);
        }
    }
    if *vector != want {
        v(format!("{} has Vector Clock {vector:?}, the vector rule gives {want:?}", record.event.kind()));
    }
    state.vector = Some(vector.clone());
}

/// The HLC's rules, exactly as the paper gives them, with `pt` from the
/// line's `Physical Clock` and the received stamp from the paired send.
fn check_hlc(
    state: &mut MachineState,
    record: &Record,
    sent: Option<Option<HlcStamp>>,
    expect: &Expectations,
    v: &mut impl FnMut(String),
) {
    let Some(hlc) = record.hlc else {
        if expect.clocks.hlc {
            v("no HLC, but the run keeps hybrid logical clocks".into());
        }
        return;
    };
    if !expect.clocks.hlc {
        v("an HLC, but the run keeps no hybrid logical clocks".into());
        return;
    }
    let Some(pt) = record.physical_clock_us else {
        v("an HLC without the Physical Clock it used".into());
        return;
    };
    let before = state.hlc;
    if record.event.is_tick() {
        let mut clock = HybridClock::at(before);
        match (&record.event, sent) {
            (Event::Processed { .. }, Some(Some(stamp))) => clock.receive_event(&stamp, pt),
            (Event::Processed { .. }, _) => {
                // The send is not in the logs: only what holds for any receive.
                if hlc <= before || hlc.l_us < pt {
                    v(format!(
                        "processed has HLC {}:{}, not after {}:{} and physical time {pt}",
                        hlc.l_us, hlc.c, before.l_us, before.c
                    ));
                }
                state.hlc = hlc;
                return;
            }
            _ => clock.local_event(pt),
        }
        let want = clock.value();
        if hlc != want {
            v(format!(
                "{} has HLC {}:{}, the HLC rule gives {}:{} (physical clock {pt})",
                record.event.kind(),
                hlc.l_us,
                hlc.c,
                want.l_us,
                want.c
            ));
        }
    } else if hlc != before {
        v(format!(
            "{} changed the HLC from {}:{} to {}:{}",
            record.event.kind(),
            before.l_us,
            before.c,
            hlc.l_us,
            hlc.c
        ));
    }
    state.hlc = hlc;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(machine: MachineId, event: Event, clock: u64, queue: u64, t: i64) -> Record {
        Record::new(machine, event, clock, queue, t)
    }

    fn good_run() -> BTreeMap<MachineId, Vec<Record>> {
        let init = |id, rate| rec(id, Event::Initialized { host: None, port: Some(1), rate }, 0, 0, 0);
        let conn = |id, peer| rec(id, Event::Connected { peer, host: None, port: Some(1) }, 0, 0, 0);
        BTreeMap::from([
            (
                1,
                vec![
                    init(1, 2),
                    conn(1, 2),
                    rec(1, Event::Sent { to: vec![2] }, 1, 0, 10),
                    rec(1, Event::Internal, 2, 0, 20),
                    rec(1, Event::Stopped, 2, 0, 30),
                ],
            ),
            (
                2,
                vec![
                    init(2, 2),
                    conn(2, 1),
                    rec(2, Event::Internal, 1, 0, 10),
                    rec(2, Event::Internal, 2, 0, 20),
                    rec(2, Event::Unprocessed { from: 1, clock: 1 }, 2, 1, 30),
                    rec(2, Event::Stopped, 2, 0, 30),
                ],
            ),
        ])
    }

    fn expect() -> Expectations {
        Expectations {
            n_machines: 2,
            duration_s: 1.0,
            tick_tolerance: 0,
            allow_loss: false,
            clocks: ClockKinds::LAMPORT,
        }
    }

    #[test]
    fn a_sound_run_passes() {
        let report = check_run(&good_run(), &expect());
        assert!(report.is_ok(), "{:?}", report.violations);
        assert_eq!(report.sent[&(1, 2)], 1);
        assert_eq!(report.received[&(1, 2)], 1);
        assert_eq!(report.ticks[&1], 2);
    }

    /// Past the wire limit a send of 4,294,967,297 arrives as 4,294,967,295
    /// (saturated), and the run is still sound.
    #[test]
    fn saturated_sends_match_what_arrives() {
        const WIRE_MAX: u64 = u32::MAX as u64;
        let init = |id| rec(id, Event::Initialized { host: None, port: Some(1), rate: 2 }, 0, 0, 0);
        let conn = |id, peer| rec(id, Event::Connected { peer, host: None, port: Some(1) }, 0, 0, 0);
        let logs = BTreeMap::from([
            (
                1,
                vec![
                    init(1),
                    conn(1, 2),
                    rec(1, Event::Processed { from: Some(2), clock: Some(WIRE_MAX) }, WIRE_MAX + 1, 1, 10),
                    rec(1, Event::Sent { to: vec![2] }, WIRE_MAX + 2, 0, 20),
                    rec(1, Event::Stopped, WIRE_MAX + 2, 0, 30),
                ],
            ),
            (
                2,
                vec![
                    init(2),
                    conn(2, 1),
                    // A jump to just below the wire's limit (as if after 4 billion ticks).
                    rec(2, Event::Internal, WIRE_MAX - 1, 0, 3),
                    rec(2, Event::Sent { to: vec![1] }, WIRE_MAX, 0, 5),
                    rec(2, Event::Processed { from: Some(1), clock: Some(WIRE_MAX) }, WIRE_MAX + 1, 1, 25),
                    rec(2, Event::Stopped, WIRE_MAX + 1, 0, 30),
                ],
            ),
        ]);
        let report = check_run(&logs, &Expectations { tick_tolerance: 1, ..expect() });
        let clock_rule = |v: &String| v.contains("the clock rule");
        // The jump breaks the clock rule on that one line, on purpose; nothing else is wrong.
        assert_eq!(report.violations.iter().filter(|v| clock_rule(v)).count(), 1, "{:?}", report.violations);
        assert!(report.violations.iter().all(clock_rule), "{:?}", report.violations);
        assert_eq!((report.sent[&(1, 2)], report.received[&(1, 2)]), (1, 1));
    }

    #[test]
    fn each_broken_rule_is_reported() {
        type Breaker = Box<dyn Fn(&mut BTreeMap<MachineId, Vec<Record>>)>;
        let cases: Vec<(Breaker, &str)> = vec![
            (Box::new(|logs| logs.get_mut(&1).unwrap()[3].logical_clock = 5), "the clock rule gives 2"),
            (
                Box::new(|logs| logs.get_mut(&1).unwrap().push(rec(1, Event::Internal, 3, 0, 40))),
                "a line after Stopped",
            ),
            (Box::new(|logs| drop(logs.get_mut(&2).unwrap().remove(4))), "sent 1 messages, received 0"),
            (Box::new(|logs| drop(logs.get_mut(&2).unwrap().pop())), "does not end with Stopped"),
            (Box::new(|logs| drop(logs.get_mut(&2).unwrap().remove(3))), "1 ticks at rate 2"),
            (Box::new(|logs| logs.get_mut(&1).unwrap()[3].time_us = 5), "time goes backwards"),
            (Box::new(|logs| logs.get_mut(&1).unwrap()[3].queue_length = 2), "queue length 2"),
        ];
        for (break_it, want) in cases {
            let mut logs = good_run();
            break_it(&mut logs);
            let report = check_run(&logs, &expect());
            assert!(report.violations.iter().any(|v| v.contains(want)), "{want}: {:?}", report.violations);
        }
    }
}
