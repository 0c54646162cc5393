//! The fault plan in the real runtime: each kind of fault on three real
//! machines for a few seconds, every log checked line by line with exact
//! accounting (sent = processed + unprocessed + lost, the losses derived
//! from the `Lost` lines and the crash windows), and the happens-before
//! checker run on the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clocklab_config::{RunManifest, RunStatus, layout};
use clocklab_log::check::{CheckReport, Expectations, check_run};
use clocklab_log::{Event, LogFormat, Pairing, Record, RunEvents, events::lines_of};
use clocklab_model::ClockKinds;

use crate::util::{assert_no_orphans, manifest_pids, read_logs, run_clocklab};

/// Runs one real run of three machines (rates up to 6, events up to 4, every
/// clock) for `duration_s` with the faults of `faults_toml`; returns its
/// folder and manifest.
fn real_run(root: &Path, duration_s: f64, faults_toml: &str) -> (PathBuf, RunManifest) {
    let config = root.join("config.toml");
    let text = format!(
        "runtime = \"real\"\nclocks = [\"lamport\", \"vector\", \"hlc\"]\n\n[[experiments]]\nname = \"faulted\"\n\
         machines = 3\nmax_clock_rate = 6\nmax_event_num = 4\nruns = 1\nduration = {duration_s}\n{faults_toml}"
    );
    std::fs::write(&config, text).unwrap();
    let out = root.join("results");
    let output = run_clocklab(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
        "--no-analyze",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let run_dir = layout::run_dir(&results, "faulted", 1);
    let manifest = RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(&run_dir)).unwrap()).unwrap();
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    (run_dir, manifest)
}

/// The line check of the run, which must pass with exact accounting; and
/// `clocklab check`, which must find every rule kept.
fn checked(run_dir: &Path, duration_s: f64) -> (BTreeMap<u32, Vec<Record>>, CheckReport) {
    let logs = read_logs(run_dir, 3, LogFormat::Text);
    let manifest = RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(run_dir)).unwrap()).unwrap();
    let expect = Expectations { tick_tolerance: 1, ..manifest.expectations(0) };
    assert_eq!((expect.n_machines, expect.duration_s, expect.clocks), (3, duration_s, ClockKinds::ALL));
    let report = check_run(&logs, &expect);
    assert!(report.is_ok(), "{:#?}", report.violations);
    let output = run_clocklab(&["check", run_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "clocklab check: {stdout}");
    assert_no_orphans(&manifest_pids(run_dir));
    (logs, report)
}

/// Every message with its send and receive times: (from, to, sent_us, received_us).
fn deliveries(logs: &BTreeMap<u32, Vec<Record>>) -> Vec<(u32, u32, i64, i64)> {
    let mut events = RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records))));
    events
        .by_ref()
        .filter_map(|event| match (&event.record.event, &event.pairing) {
            (Event::Processed { .. } | Event::Unprocessed { .. }, Pairing::Paired(sent)) => {
                Some((sent.id.send.machine, event.id.machine, sent.time_us, event.record.time_us))
            }
            _ => None,
        })
        .collect()
}

/// The true time of the run's start.
fn start_us(manifest: &RunManifest) -> i64 {
    let start = time::OffsetDateTime::parse(&manifest.started_at, &time::format_description::well_known::Rfc3339);
    (start.unwrap().unix_timestamp_nanos() / 1000) as i64
}

fn total(map: &BTreeMap<(u32, u32), u64>) -> u64 {
    map.values().sum()
}

#[test]
fn latency_delays_a_link_and_keeps_its_order() {
    let root = tempfile::tempdir().unwrap();
    let faults =
        "[[experiments.faults]]\nkind = \"latency\"\nlinks = [[1, 2]]\ndelay = { kind = \"constant\", ms = 700 }\n";
    let (run_dir, _) = real_run(root.path(), 3.0, faults);
    let (logs, _) = checked(&run_dir, 3.0);
    let on_link: Vec<(i64, i64)> =
        deliveries(&logs).into_iter().filter(|&(from, to, _, _)| (from, to) == (1, 2)).map(|d| (d.2, d.3)).collect();
    assert!(!on_link.is_empty(), "machine 1 sent to machine 2");
    for &(sent_us, received_us) in &on_link {
        assert!(received_us - sent_us >= 700_000, "a message on the slow link took {} µs", received_us - sent_us);
    }
    // FIFO: received in the order sent; a message delayed past the end
    // still arrives as late as the fault says (checked above).
    assert!(on_link.windows(2).all(|pair| pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1));
    // The other links are not slowed: some message on them is taken off the
    // queue sooner than the slow link could have brought it (a message may
    // wait in the queue, so only the quickest says how fast the links are).
    let quickest = deliveries(&logs)
        .into_iter()
        .filter(|&(from, to, _, _)| (from, to) != (1, 2))
        .map(|(_, _, sent_us, received_us)| received_us - sent_us)
        .min();
    assert!(quickest.is_some_and(|us| us < 700_000), "{quickest:?}");
}

#[test]
fn loss_drops_at_the_sender_and_is_accounted_for() {
    let root = tempfile::tempdir().unwrap();
    let faults = "[[experiments.faults]]\nkind = \"loss\"\nlinks = [[1, 2], [2, 1]]\nprobability = 0.5\n";
    let (run_dir, _) = real_run(root.path(), 3.0, faults);
    let (logs, report) = checked(&run_dir, 3.0);
    let lost = total(&report.lost);
    assert!(lost > 0, "half the messages between 1 and 2 are lost");
    assert!(report.lost.keys().all(|&(from, to)| (from, to) == (1, 2) || (from, to) == (2, 1)));
    // Every `Lost` line follows the send it loses, on the sender's log.
    for (id, records) in &logs {
        for pair in records.windows(2) {
            if let Event::Lost { to, clock } = pair[1].event {
                let follows = matches!(&pair[0].event, Event::Sent { to: sent } if sent.contains(&to))
                    || matches!(pair[0].event, Event::Lost { .. });
                assert!(follows && pair[1].logical_clock == clock, "machine {id}: {:?}", pair[1]);
            }
        }
    }
    assert_eq!(total(&report.sent), total(&report.received) + lost);
}

#[test]
fn a_partition_drops_or_holds_what_crosses_it() {
    for mode in ["drop", "hold"] {
        let root = tempfile::tempdir().unwrap();
        let faults = format!(
            "[[experiments.faults]]\nkind = \"partition\"\nstart = 1\nend = 3\ngroups = [[1], [2, 3]]\nmode = \"{mode}\"\n"
        );
        let (run_dir, manifest) = real_run(root.path(), 4.0, &faults);
        let (logs, report) = checked(&run_dir, 4.0);
        let start = start_us(&manifest);
        let (cut_from, heal) = (start + 1_000_000, start + 3_000_000);
        let crosses = |from: u32, to: u32| (from == 1) != (to == 1);
        let crossed: Vec<(i64, i64)> = deliveries(&logs)
            .into_iter()
            .filter(|&(from, to, sent_us, _)| crosses(from, to) && (cut_from..heal).contains(&sent_us))
            .map(|d| (d.2, d.3))
            .collect();
        match mode {
            "drop" => {
                assert!(crossed.is_empty(), "nothing sent across a dropping partition arrives: {crossed:?}");
                assert!(total(&report.lost) > 0, "the partition dropped messages");
            }
            _ => {
                assert_eq!(total(&report.lost), 0);
                assert!(!crossed.is_empty(), "messages sent across the partition arrive");
                // Held at the sender until the heal (a millisecond of scheduling allowed).
                assert!(crossed.iter().all(|&(_, received_us)| received_us >= heal - 1_000), "{crossed:?}");
            }
        }
    }
}

#[test]
fn a_crashed_machine_restarts_rejoins_and_its_peers_see_it_go_and_come_back() {
    for clock in ["fresh", "recovered"] {
        let root = tempfile::tempdir().unwrap();
        let faults = format!(
            "[[experiments.faults]]\nkind = \"crash\"\nmachine = 2\nstart = 1.5\nend = 3\nrestart_clock = \"{clock}\"\n"
        );
        let (run_dir, manifest) = real_run(root.path(), 5.0, &faults);
        let (logs, report) = checked(&run_dir, 5.0);
        let two = &logs[&2];
        let crashed = two.iter().position(|r| r.event == Event::Crashed).expect("machine 2 crashed");
        let restarted = &two[crashed + 1];
        let Event::Restarted { recovered, .. } = restarted.event else { panic!("{restarted:?}") };
        assert_eq!(recovered, clock == "recovered");
        if recovered {
            assert_eq!(restarted.logical_clock, two[crashed].logical_clock, "the clocks as they were");
            assert_eq!(restarted.vector_clock, two[crashed].vector_clock);
        } else {
            assert_eq!(restarted.logical_clock, 0);
        }
        // It connects to both peers again, and ticks until the end.
        let after: Vec<&Event> = two[crashed + 2..].iter().map(|r| &r.event).take(2).collect();
        assert!(after.iter().all(|e| matches!(e, Event::Connected { .. })), "{after:?}");
        assert_eq!(two.last().unwrap().event, Event::Stopped);
        // Each peer logs it going, then its reconnection.
        for peer in [1, 3] {
            let lines = &logs[&peer];
            let gone = lines.iter().position(|r| r.event == Event::Disconnected { peer: 2 }).expect("disconnected");
            let back = lines.iter().rposition(|r| matches!(r.event, Event::Connected { peer: 2, .. })).unwrap();
            assert!(gone < back && lines[back].time_us >= restarted.time_us, "machine {peer}");
        }
        let start = start_us(&manifest);
        assert!((1_500_000..2_500_000).contains(&(two[crashed].time_us - start)), "the crash came at 1.5 s");
        // Whatever was in its queue or on its way to it was taken, and said.
        assert_eq!(total(&report.sent), total(&report.received) + total(&report.crash_lost));
        // The crashed process and its successor are gone, like every machine.
        let exit = &manifest.machines[1].exit_status;
        assert_eq!(exit.as_deref(), Some("0"), "the last incarnation exits cleanly");
    }
}

#[test]
fn a_paused_machine_catches_up_and_says_it_fell_behind_as_planned() {
    let root = tempfile::tempdir().unwrap();
    let faults = "[[experiments.faults]]\nkind = \"pause\"\nmachine = 1\nstart = 1\nend = 2.5\n";
    let (run_dir, manifest) = real_run(root.path(), 4.0, faults);
    let (logs, _) = checked(&run_dir, 4.0);
    let behind: Vec<&Record> = logs[&1].iter().filter(|r| matches!(r.event, Event::Behind { .. })).collect();
    assert_eq!(behind.len(), 1, "one Behind line, when it goes on");
    let Event::Behind { lateness_us, .. } = behind[0].event else { unreachable!() };
    assert!(lateness_us > 1_000_000, "about 1.5 s late, less a tick period: {lateness_us}");
    let resumed_at = behind[0].time_us - start_us(&manifest);
    assert!((2_400_000..3_500_000).contains(&resumed_at), "it went on at 2.5 s: {resumed_at}");
    // No tick of machine 1 ran while it was stopped.
    let start = start_us(&manifest);
    let during =
        logs[&1].iter().filter(|r| r.event.is_tick() && (start + 1_500_000..start + 2_400_000).contains(&r.time_us));
    assert_eq!(during.count(), 0);
    let messages = &manifest.extra["messages"]["1"]["behind"];
    assert_eq!((messages["episodes"].as_u64(), messages["paused_episodes"].as_u64()), (Some(0), Some(1)));
}

#[test]
fn a_clock_fault_steps_the_physical_clock_at_its_instant() {
    let root = tempfile::tempdir().unwrap();
    let faults = "[[experiments.faults]]\nkind = \"clock\"\nmachine = 3\nstart = 1.5\nstep_ms = -400\n";
    let (run_dir, manifest) = real_run(root.path(), 3.0, faults);
    let (logs, _) = checked(&run_dir, 3.0);
    let three = &logs[&3];
    let at = three.iter().position(|r| matches!(r.event, Event::ClockChanged { .. })).expect("a clock line");
    assert_eq!(three[at].event, Event::ClockChanged { step_us: -400_000, drift_ppb: None });
    let changed_at = three[at].time_us - start_us(&manifest);
    assert!((1_500_000..2_500_000).contains(&changed_at), "{changed_at}");
    // Physical time minus true time drops by the step.
    let lead = |r: &Record| r.physical_clock_us.unwrap() - r.time_us;
    let (before, after) = (lead(&three[at - 1]), lead(&three[at + 1]));
    assert!((before - after - 400_000).abs() < 2_000, "before {before}, after {after}");
    // HLC stays ahead of its physical clock, which went back.
    let hlc = three[at + 1].hlc.unwrap();
    assert!(hlc.l_us >= three[at + 1].physical_clock_us.unwrap());
}
