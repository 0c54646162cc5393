//! Hostile and crowded networks: a peer that stops reading, resets during
//! the hello, a flood of connections while the run connects, a stranger
//! holding a peer's id, and a run of many machines.

use std::collections::VecDeque;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clocklab_config::{MachineManifest, RunStatus, layout};
use clocklab_log::{Event, LogFormat, Record};
use clocklab_model::ClockKinds;
use clocklab_model::wire::{Hello, TOKEN_LEN};

use crate::fake_peer::{Behaviour, FakePeer};
use crate::util::{
    Processes, assert_sound, clocklab, free_ports, rate_of, read_logs, run_clocklab, ticks, write_config,
};

/// A `--seed` whose machine 1 draws a rate of at least `at_least` from
/// `1..=max_clock_rate`.
fn seed_with_fast_machine_1(max_clock_rate: u32, at_least: u32) -> u64 {
    (0..)
        .find(|&seed| {
            let machine_seed = clocklab_model::seed::machine_seed(seed, 1);
            clocklab_model::seed::start_machine(machine_seed, max_clock_rate).1 >= at_least
        })
        .unwrap()
}

/// Sends to machine 2 counted by the log's `Sent` lines (two machines: every
/// send goes to machine 2).
fn sent_to_2(records: &[Record]) -> u64 {
    records.iter().filter(|r| matches!(r.event, Event::Sent { .. })).count() as u64
}

#[test]
fn a_peer_that_stops_reading_is_declared_gone_and_what_it_missed_is_counted() {
    let duration_s = 5.0;
    let seed = seed_with_fast_machine_1(20_000, 10_000);
    let behaviour = Behaviour {
        duration_s,
        // Every tick with an empty queue sends 36 bytes (every clock); a peer
        // is gone after 2 s without a write.
        extra_config: r#", "max_clock_rate": 20000, "max_event_num": 3, "connect_timeout": 1,
                          "clocks": ["lamport", "vector", "hlc"]"#,
        seed,
        reads: false,
        clocks: ClockKinds::ALL,
        ..Behaviour::default()
    };
    let started = Instant::now();
    let mut peer = FakePeer::start_with(&behaviour);
    let out = peer.out.clone();
    let (code, stderr, records, received) = peer.finish(Duration::from_secs_f64(duration_s));
    // It never hung: its deadline, its catching up, and the end.
    assert!(started.elapsed() < Duration::from_secs(45), "took {:?}", started.elapsed());
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A run that lost messages is not a success, but it ended cleanly.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("machine 2 is declared gone"), "{stderr}");
    assert!(records.iter().any(|r| r.event == Event::Disconnected { peer: 2 }), "{stderr}");
    assert_eq!(records.last().unwrap().event, Event::Stopped);
    // Every tick of the schedule ran, late ones caught up.
    let rate = rate_of(&records);
    let want = clocklab_model::schedule::n_ticks(rate, clocklab_model::schedule::duration_us(duration_s));
    assert_eq!(ticks(&records), want, "rate {rate}");
    // Every message logged as sent reached machine 2 (which read everything
    // once machine 1 had exited) or is counted as unsent, in the manifest.
    let manifest: MachineManifest =
        serde_json::from_str(&std::fs::read_to_string(layout::machine_manifest_path(&out, 1)).unwrap()).unwrap();
    let unsent = manifest.counts.unsent.get(&2).copied().unwrap_or(0);
    assert!(unsent > 0, "{manifest:#?}");
    assert_eq!(sent_to_2(&records), received + unsent, "sent = received + unsent; {stderr}");
    assert!(matches!(manifest.status, RunStatus::Failed { .. }), "{:?}", manifest.status);
    assert_eq!(manifest.counts.disconnected, [2]);
}

#[test]
fn a_reset_during_the_hello_is_retried_until_the_peer_takes_the_connection() {
    // Machine 2 resets machine 1's first three connections in the hello, as a
    // machine with no free slot does.
    let behaviour = Behaviour { duration_s: 2.0, closes_first: 3, ..Behaviour::default() };
    let mut peer = FakePeer::start_with(&behaviour);
    peer.send([4]);
    let (code, stderr, records, received) = peer.finish(Duration::from_secs(2));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("another token"), "{stderr}");
    assert_eq!(records.last().unwrap().event, Event::Stopped);
    assert_eq!(sent_to_2(&records), received);
}

/// Standalone machines `1..=n` on `ports`, started `stagger` apart (machine
/// 1 first), with `extra` arguments; returns their outputs.
fn run_standalone(config: &Path, out: &Path, n: u32, stagger: Duration, extra: &[&str]) -> Vec<std::process::Output> {
    let mut children = Vec::new();
    for id in 1..=n {
        if id > 1 {
            std::thread::sleep(stagger);
        }
        children.push(
            clocklab()
                .args(["machine", &id.to_string(), "--config"])
                .arg(config)
                .arg("--out")
                .arg(out)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    Processes(children).wait_all(Duration::from_secs(60))
}

#[test]
fn a_flood_of_connections_while_the_machines_connect_does_not_sink_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let config = write_config(dir.path(), &ports, 2.0, r#", "connect_timeout": 8"#);
    let out = dir.path().join("logs");
    // Ten silent connections every 50 ms to machine 1's port, from before the
    // machines start until they have all connected.
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let flooding = Arc::clone(&flooding);
        let port = ports[0];
        std::thread::spawn(move || {
            let mut held = VecDeque::new();
            let mut opened = 0;
            while flooding.load(Ordering::SeqCst) {
                for _ in 0..10 {
                    if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                        held.push_back(stream);
                        opened += 1;
                    }
                    if held.len() > 200 {
                        held.pop_front();
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            opened
        })
    };
    let stop_flood = {
        let flooding = Arc::clone(&flooding);
        let first_log = out.join("machine_3.log");
        std::thread::spawn(move || {
            // Until the last machine has written its Connected lines, or 10 s.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline
                && std::fs::read_to_string(&first_log).map_or(true, |text| !text.contains("Connected to machine 2"))
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            flooding.store(false, Ordering::SeqCst);
        })
    };
    let outputs = run_standalone(&config, &out, 3, Duration::from_millis(300), &["--seed", "3"]);
    stop_flood.join().unwrap();
    let opened = flood.join().unwrap();
    for (idx, output) in outputs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "machine {}: {stderr}", idx + 1);
        assert!(!stderr.contains("another token"), "{stderr}");
    }
    assert!(opened > 20, "the flood opened {opened} connections");
    let stderr_1 = String::from_utf8_lossy(&outputs[0].stderr);
    assert!(stderr_1.contains("too many waiting at once"), "{stderr_1}");
    assert_sound(&read_logs(&out, 3, LogFormat::Text), 2.0);
}

#[test]
fn a_stranger_holding_a_peers_id_without_the_token_does_not_keep_the_real_peer_out() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let config = write_config(dir.path(), &ports, 1.0, "");
    let out = dir.path().join("logs");
    let token = [0x42u8; TOKEN_LEN];
    let token_hex = clocklab_model::wire::token_to_hex(&token);
    let machine = |id: &str| {
        clocklab()
            .args(["machine", id, "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(["--token", &token_hex])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let one = machine("1");
    // A stranger claims machine 2's id with a wrong token, and holds on.
    let mut stranger = None;
    crate::util::wait_for("machine 1 to listen", Duration::from_secs(10), || {
        stranger = TcpStream::connect(("127.0.0.1", ports[0])).ok();
        stranger.is_some()
    });
    let mut stranger = stranger.unwrap();
    stranger.write_all(&Hello::new(2, [0x11; TOKEN_LEN], ClockKinds::LAMPORT, 2).encode()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let two = machine("2");
    let outputs = Processes(vec![one, two]).wait_all(Duration::from_secs(30));
    for output in &outputs {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    assert!(String::from_utf8_lossy(&outputs[0].stderr).contains("wrong run token"));
    // A token given: no warning that anyone can join.
    assert!(!String::from_utf8_lossy(&outputs[0].stderr).contains("can join"));
    assert_sound(&read_logs(&out, 2, LogFormat::Text), 1.0);
}

#[test]
fn forty_machines_connect_and_make_their_exact_tick_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let output = run_clocklab(&[
        "run",
        "--experiment",
        "baseline",
        "--runs",
        "1",
        "--machines",
        "40",
        "--max-clock-rate",
        "50",
        "--duration",
        "2",
        "--seed",
        "40",
        "--no-analyze",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let run = layout::read_run(&layout::run_dir(&results, "baseline", 1), LogFormat::Text).unwrap();
    assert_eq!(run.logs.len(), 40);
    // Exact tick counts (a busy computer may make the run degraded, never lossy).
    let report = run.check(0);
    assert!(report.is_ok(), "{:#?}", report.violations);
    assert_eq!(report.sent, report.received);
    assert!(run.manifest.status.ran_to_the_end(), "{:?}", run.manifest.status);
}
