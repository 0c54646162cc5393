//! Tests of the end of a run across machines: a stop that reaches the
//! machines at different moments, and a peer that stops ticking early.
#![cfg(test)]

use std::collections::BTreeMap;
use std::time::Duration;

use clocklab_driver::DriverParams;
use clocklab_log::{Event, LogFormat, Record};
use clocklab_model::MachineId;

use crate::{NodeConfig, RunSummary, StopRequest, bind, no_news, now_us, stop_channel};

/// Machine seeds whose rates are at least 100 ticks a second (of at most
/// 200), so that a few hundred milliseconds hold dozens of ticks.
fn fast_seeds() -> [u64; 2] {
    let mut fast = (0..).filter(|&seed| clocklab_model::seed::start_machine(seed, 200).1 >= 100);
    [fast.next().unwrap(), fast.next().unwrap()]
}

fn config(id: MachineId, seed: u64, dir: &std::path::Path) -> NodeConfig {
    NodeConfig {
        // max_event_num 3: every tick with an empty queue sends to the peer.
        machine: DriverParams::new(id, 2, 200, 3, seed),
        listen: "127.0.0.1:0".parse().unwrap(),
        host: "127.0.0.1".into(),
        token: [5; 16],
        connect_timeout: Duration::from_secs(10),
        end_grace: Duration::ZERO,
        logs: vec![(LogFormat::Text, dir.join(format!("machine_{id}.log")))],
        duration_us: 5_000_000,
        faults: Vec::new(),
        run_seed: 0,
    }
}

fn records(path: &std::path::Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap();
    clocklab_log::LogReader::new(text.as_bytes()).map(|line| line.record).collect()
}

/// Two machines told to stop at one instant, machine 1 in time and machine 2
/// `late_ms` after that instant has passed (an orchestrator's line that reached it late, on
/// a busy computer): both summaries and both logs.
fn stop_told_late(late_ms: u64) -> ([RunSummary; 2], [Vec<Record>; 2], i64) {
    let dir = tempfile::tempdir().unwrap();
    let seeds = fast_seeds();
    let (one, two) = (bind(config(1, seeds[0], dir.path())).unwrap(), bind(config(2, seeds[1], dir.path())).unwrap());
    let addresses = [(1, one.address()), (2, two.address())];
    let start_us = now_us() + 300_000;
    let stop_us = start_us + 700_000;
    // Machine 1 hears of the stop before it starts ticking, machine 2
    // `late_ms` after the stop instant.
    let late_us = i64::try_from(late_ms).unwrap() * 1000;
    let threads = [(one, 1, None), (two, 2, Some(late_us))].map(|(bound, id, late_us)| {
        let peers: BTreeMap<_, _> = addresses.iter().filter(|(peer, _)| *peer != id).copied().collect();
        std::thread::spawn(move || {
            let (stop_tx, stop) = stop_channel().unwrap();
            // A request while connecting would call the run off: told after.
            let connected = bound.connect(&peers, &stop).unwrap();
            let teller = std::thread::spawn(move || {
                if let Some(late_us) = late_us {
                    let wait_us = u64::try_from(stop_us + late_us - now_us()).unwrap_or(0);
                    std::thread::sleep(Duration::from_micros(wait_us));
                }
                stop_tx.send(StopRequest::At(stop_us)).unwrap();
                stop_tx
            });
            let (_keep_news, news) = no_news();
            let summary = connected.run(start_us, &stop, news).unwrap();
            drop(teller.join().unwrap());
            summary
        })
    });
    let summaries = threads.map(|thread| thread.join().unwrap());
    let logs = [1, 2].map(|id| records(&dir.path().join(format!("machine_{id}.log"))));
    (summaries, logs, stop_us)
}

/// The stop instant reaches machine 1 before it and machine 2 400 ms after
/// it. Machine 1 stops on time and ends its stream; machine 2, still ticking
/// until it hears of the stop, sees that end before its deadline. Machine 1
/// still reads to the end of machine 2's stream, so nothing machine 2 sends
/// meanwhile is lost: it is no disconnection, and every message is counted
/// at its recipient.
#[test]
fn a_peer_that_stops_first_still_gets_what_is_sent_to_it() {
    let ([a, b], [one, two], stop_us) = stop_told_late(400);
    // The case is the one meant: machine 2 ticked well past the stop.
    let late_ticks = two.iter().filter(|r| matches!(r.event, Event::Sent { .. }) && r.time_us > stop_us).count();
    assert!(late_ticks >= 10, "machine 2 sent {late_ticks} times after the stop instant");
    // Machine 1 ran exactly the ticks due before the stop (late ones on a
    // busy computer included).
    let rate = clocklab_model::seed::start_machine(fast_seeds()[0], 200).1;
    assert_eq!(a.ticks, clocklab_model::schedule::n_ticks(rate, 700_000), "machine 1 at rate {rate}");
    for (summary, log) in [(&a, &one), (&b, &two)] {
        assert!(summary.disconnected.is_empty(), "{summary:?}");
        assert!(summary.unsent.is_empty(), "{summary:?}");
        assert!(!log.iter().any(|r| matches!(r.event, Event::Disconnected { .. })), "{log:?}");
        assert_eq!(log.last().unwrap().event, Event::Stopped);
    }
    assert_eq!(a.sent, b.processed + b.unprocessed, "1 -> 2");
    assert_eq!(b.sent, a.processed + a.unprocessed, "2 -> 1");
    let logs = BTreeMap::from([(1, one), (2, two)]);
    let expect = clocklab_log::check::Expectations {
        tick_tolerance: u64::MAX,
        ..clocklab_log::check::Expectations::new(2, 5.0, clocklab_model::ClockKinds::LAMPORT)
    };
    let report = clocklab_log::check::check_run(&logs, &expect);
    assert!(report.is_ok(), "{:#?}", report.violations);
}
