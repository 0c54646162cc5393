//! The check's rules, each broken on purpose.

use super::*;
use crate::record::{Event, Record};

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
                rec(1, Event::Sent { to: vec![2].into() }, 1, 0, 10),
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
    Expectations::new(2, 1.0, ClockKinds::LAMPORT)
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
                rec(1, Event::Sent { to: vec![2].into() }, WIRE_MAX + 2, 0, 20),
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
                rec(2, Event::Sent { to: vec![1].into() }, WIRE_MAX, 0, 5),
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
        (Box::new(|logs| logs.get_mut(&1).unwrap().push(rec(1, Event::Internal, 3, 0, 40))), "a line after Stopped"),
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

/// Machine 1 sends to machine 2 three times (clocks 1, 2, 3): the first is
/// processed, the second is lost by the fault plan, the third is in machine
/// 2's queue when it crashes. Machine 2 restarts with a fresh clock and
/// machine 1 reconnects; a fourth send (clock 5) after that is processed.
fn crash_run(recovered: bool) -> BTreeMap<MachineId, Vec<Record>> {
    let init = |id, rate| rec(id, Event::Initialized { host: None, port: Some(1), rate }, 0, 0, 0);
    let conn = |id, peer, clock, t| rec(id, Event::Connected { peer, host: None, port: Some(1) }, clock, 0, t);
    let restarted_clock = if recovered { 2 } else { 0 };
    BTreeMap::from([
        (
            1,
            vec![
                init(1, 2),
                conn(1, 2, 0, 0),
                rec(1, Event::Sent { to: vec![2].into() }, 1, 0, 10),
                rec(1, Event::Sent { to: vec![2].into() }, 2, 0, 20),
                rec(1, Event::Lost { to: 2, clock: 2 }, 2, 0, 20),
                rec(1, Event::Sent { to: vec![2].into() }, 3, 0, 30),
                rec(1, Event::Disconnected { peer: 2 }, 3, 0, 35),
                rec(1, Event::Internal, 4, 0, 40),
                conn(1, 2, 4, 45),
                rec(1, Event::Sent { to: vec![2].into() }, 5, 0, 50),
                rec(1, Event::Stopped, 5, 0, 60),
            ],
        ),
        (
            2,
            vec![
                init(2, 2),
                conn(2, 1, 0, 0),
                rec(2, Event::Processed { from: Some(1), clock: Some(1) }, 2, 1, 15),
                rec(2, Event::Crashed, 2, 0, 32),
                rec(2, Event::Restarted { host: None, port: Some(2), rate: 2, recovered }, restarted_clock, 0, 42),
                conn(2, 1, restarted_clock, 42),
                rec(2, Event::Processed { from: Some(1), clock: Some(5) }, 6, 1, 55),
                rec(2, Event::Stopped, 6, 0, 60),
            ],
        ),
    ])
}

#[test]
fn losses_and_crashes_are_accounted_for() {
    for recovered in [false, true] {
        let expect = Expectations { tick_tolerance: u64::MAX, ..expect() };
        let report = check_run(&crash_run(recovered), &expect);
        assert!(report.is_ok(), "recovered {recovered}: {:#?}", report.violations);
        assert_eq!(report.sent[&(1, 2)], 4);
        assert_eq!((report.received[&(1, 2)], report.lost[&(1, 2)], report.crash_lost[&(1, 2)]), (2, 1, 1));
    }
}

#[test]
fn each_broken_fault_rule_is_reported() {
    type Breaker = Box<dyn Fn(&mut BTreeMap<MachineId, Vec<Record>>)>;
    let cases: Vec<(Breaker, &str)> = vec![
        // A recovered clock that went back.
        (
            Box::new(|logs| {
                let two = logs.get_mut(&2).unwrap();
                two[4].event = Event::Restarted { host: None, port: Some(2), rate: 2, recovered: true };
                two[4].logical_clock = 1;
            }),
            "a recovered clock 1 below the clock before the crash, 2",
        ),
        // A line after Crashed other than Restarted.
        (Box::new(|logs| logs.get_mut(&2).unwrap()[4].event = Event::Internal), "a line after Crashed"),
        // A loss the sender never sent.
        (
            Box::new(|logs| logs.get_mut(&1).unwrap()[4].event = Event::Lost { to: 2, clock: 7 }),
            "a lost message to machine 2 with clock 7 that this machine never sent",
        ),
        // The message after the reconnection goes missing: no crash excuses it.
        (Box::new(|logs| drop(logs.get_mut(&2).unwrap().remove(6))), "1 never arrived"),
    ];
    for (break_it, want) in cases {
        let mut logs = crash_run(false);
        break_it(&mut logs);
        let report = check_run(&logs, &Expectations { tick_tolerance: u64::MAX, ..expect() });
        assert!(report.violations.iter().any(|v| v.contains(want)), "{want}: {:#?}", report.violations);
    }
}
