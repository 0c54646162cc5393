//! The line-by-line check of a run's logs: the rules every clocklab run must
//! keep, whichever runtime made it.
//!
//! Per machine: `Initialized` first, `Connected` once per peer before the
//! first tick, `Stopped` last and nothing after it; the clock rules on every
//! line; queue lengths consistent with the events; times that never go back;
//! the tick count against `ceil(rate x duration)` (see
//! `clocklab_model::schedule`). Per pair of machines: the clocks
//! that `i` sent to `j` are, in order, the clocks `j` processed from `i`
//! followed by those it left unprocessed (a TCP connection keeps order and
//! loses nothing). Clocks are compared as the wire carries them: a clock
//! above `u32::MAX` is sent as `u32::MAX` (see `clocklab_model::wire`).

use std::collections::BTreeMap;

use clocklab_model::MachineId;

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

/// Checks the logs of one run, given as each machine's records in file order.
pub fn check_run(logs: &BTreeMap<MachineId, Vec<Record>>, expect: &Expectations) -> CheckReport {
    let mut report = CheckReport::default();
    let mut sent_clocks: BTreeMap<(MachineId, MachineId), Vec<u64>> = BTreeMap::new();
    let mut received_clocks: BTreeMap<(MachineId, MachineId), Vec<u64>> = BTreeMap::new();
    for id in 1..=expect.n_machines {
        if !logs.contains_key(&id) {
            report.violations.push(format!("machine {id}: no log"));
        }
    }
    for (&id, records) in logs {
        let mut v = |line: usize, message: String| {
            report.violations.push(format!("machine {id}, record {}: {message}", line + 1))
        };
        if records.is_empty() {
            v(0, "empty log".into());
            continue;
        }
        let mut rate = None;
        let mut clock = 0u64;
        let mut ticks = 0u64;
        let mut connected = Vec::new();
        let mut stopped = false;
        let mut last_time = i64::MIN;
        let mut in_drain = false;
        for (idx, record) in records.iter().enumerate() {
            if record.machine != id {
                v(idx, format!("line is from machine {}, expected {id}", record.machine));
            }
            if stopped {
                v(idx, format!("a line after Stopped: {:?}", record.event));
            }
            if record.time_us < last_time {
                v(idx, "time goes backwards".into());
            }
            last_time = record.time_us;
            if idx == 0 && !matches!(record.event, Event::Initialized { .. }) {
                v(idx, "the first line is not Initialized".into());
            }
            let expected_clock = match &record.event {
                Event::Initialized { rate: r, .. } => {
                    if idx != 0 {
                        v(idx, "Initialized is not the first line".into());
                    }
                    rate = Some(*r);
                    clock
                }
                Event::Connected { peer, .. } => {
                    if ticks > 0 {
                        v(idx, format!("Connected to machine {peer} after the first tick"));
                    }
                    if *peer == id || *peer == 0 || *peer > expect.n_machines || connected.contains(peer) {
                        v(idx, format!("Connected to unexpected machine {peer}"));
                    }
                    connected.push(*peer);
                    clock
                }
                Event::Internal => clock + 1,
                Event::Sent { to } => {
                    let ordered = to.windows(2).all(|pair| pair[0] < pair[1]);
                    if to.is_empty()
                        || !ordered
                        || to.iter().any(|&peer| peer == id || peer == 0 || peer > expect.n_machines)
                    {
                        v(idx, format!("bad recipients {to:?}"));
                    }
                    for &peer in to {
                        sent_clocks.entry((id, peer)).or_default().push(on_the_wire(clock + 1));
                    }
                    clock + 1
                }
                Event::Processed { from, clock: stamp } => {
                    if record.queue_length == 0 {
                        v(idx, "Processed with queue length 0 (it counts the message taken)".into());
                    }
                    match (from, stamp) {
                        (Some(from), Some(stamp)) => {
                            received_clocks.entry((*from, id)).or_default().push(on_the_wire(*stamp));
                            clock.max(*stamp) + 1
                        }
                        _ => {
                            v(idx, "Processed without sender and clock".into());
                            record.logical_clock
                        }
                    }
                }
                Event::Disconnected { .. } => clock,
                Event::Unprocessed { from, clock: stamp } => {
                    in_drain = true;
                    received_clocks.entry((*from, id)).or_default().push(on_the_wire(*stamp));
                    clock
                }
                Event::Stopped => {
                    stopped = true;
                    clock
                }
            };
            if record.event.is_tick() {
                ticks += 1;
                if in_drain {
                    v(idx, "a tick after Unprocessed lines".into());
                }
                if matches!(record.event, Event::Internal | Event::Sent { .. }) && record.queue_length != 0 {
                    v(
                        idx,
                        format!(
                            "{} with queue length {} (only an empty queue draws an event)",
                            record.event.kind(),
                            record.queue_length
                        ),
                    );
                }
            }
            if record.logical_clock != expected_clock {
                v(
                    idx,
                    format!(
                        "{} has clock {}, the clock rule gives {expected_clock}",
                        record.event.kind(),
                        record.logical_clock
                    ),
                );
            }
            clock = record.logical_clock;
        }
        if !stopped && !expect.allow_loss {
            v(records.len() - 1, "the log does not end with Stopped".into());
        }
        if connected.len() as u32 != expect.n_machines - 1 && !expect.allow_loss {
            v(0, format!("connected to {} peers, expected {}", connected.len(), expect.n_machines - 1));
        }
        if let Some(rate) = rate {
            let want =
                clocklab_model::schedule::n_ticks(rate, clocklab_model::schedule::duration_us(expect.duration_s));
            if ticks.abs_diff(want) > expect.tick_tolerance && !expect.allow_loss {
                v(
                    0,
                    format!(
                        "{ticks} ticks at rate {rate} for {} s, expected {want} ± {}",
                        expect.duration_s, expect.tick_tolerance
                    ),
                );
            }
        }
        report.ticks.insert(id, ticks);
    }
    let pairs: std::collections::BTreeSet<_> = sent_clocks.keys().chain(received_clocks.keys()).copied().collect();
    for pair @ (from, to) in pairs {
        let sent = sent_clocks.get(&pair).map(Vec::as_slice).unwrap_or_default();
        let received = received_clocks.get(&pair).map(Vec::as_slice).unwrap_or_default();
        report.sent.insert(pair, sent.len() as u64);
        report.received.insert(pair, received.len() as u64);
        let sound = if expect.allow_loss { sent.starts_with(received) } else { sent == received };
        if !sound {
            let first_diff =
                sent.iter().zip(received).position(|(a, b)| a != b).unwrap_or(sent.len().min(received.len()));
            report.violations.push(format!(
                "machine {from} -> {to}: sent {} messages, received {} (processed + unprocessed); they first differ at message {}",
                sent.len(),
                received.len(),
                first_diff + 1
            ));
        }
    }
    report
}

/// What the receiver of `clock` sees: the value saturates at the wire's 32 bits.
fn on_the_wire(clock: u64) -> u64 {
    clocklab_model::wire::decode_clock(clocklab_model::wire::encode_clock(clock).frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(machine: MachineId, event: Event, clock: u64, queue: u64, t: i64) -> Record {
        Record { machine, event, logical_clock: clock, queue_length: queue, time_us: t }
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
        Expectations { n_machines: 2, duration_s: 1.0, tick_tolerance: 0, allow_loss: false }
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
