//! Faults: ports that are taken, peers that never come up, machines killed
//! or interrupted during a run, unwritable output, and hostile network input.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clocklab_config::{RunStatus, layout};
use clocklab_log::{Event, LogFormat, Record};
use clocklab_model::ClockKinds;
use clocklab_model::wire::{Hello, TOKEN_LEN};
use nix::sys::signal::Signal;
use rand::{RngExt, SeedableRng};

use crate::fake_peer::FakePeer;
use crate::util::{
    BackgroundRun, assert_interrupted_cleanly, assert_no_orphans, check_text_lines, finish, free_ports, machine_pids,
    manifest_pids, rate_of, read_log, read_logs, signal, spawn_machine, ticks, write_config,
};

#[test]
fn a_taken_port_names_the_port_and_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = write_config(dir.path(), &[port, free_ports(1)[0]], 1.0, "");
    let out = dir.path().join("logs");
    let child = spawn_machine(&[], &config, &out);
    let output = finish(child, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("machine 1 cannot start: cannot listen on 127.0.0.1:"), "{stderr}");
    assert!(stderr.contains(&format!(":{port}:")) && stderr.contains("in use"), "{stderr}");
    // Nothing was logged: the port is bound before the log is created.
    assert!(!out.join("machine_1.log").exists());
}

#[test]
fn a_run_whose_machines_cannot_bind_fails_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    // 192.0.2.1 is TEST-NET-1: never an address of this host, so binding fails.
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"host": "192.0.2.1", "machines": 3, "runs": 1, "duration": 1}"#).unwrap();
    let out = dir.path().join("results");
    let output = crate::util::run_clocklab(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-analyze",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run failed: experiment/run_1: machine "), "{stderr}");
    assert!(stderr.contains("cannot listen on 192.0.2.1:0"), "{stderr}");
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let run_dir = layout::run_dir(&results, "experiment", 1);
    let manifest =
        clocklab_config::RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(&run_dir)).unwrap())
            .unwrap();
    let RunStatus::Failed { cause } = &manifest.status else { panic!("{:?}", manifest.status) };
    assert!(cause.starts_with("machine ") && cause.contains("cannot listen on 192.0.2.1:0"), "{cause}");
    assert_no_orphans(&manifest_pids(&run_dir));
}

#[test]
fn a_peer_that_never_comes_up_is_a_clear_error_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    // The configuration says 30 s; the flag wins.
    let config = write_config(dir.path(), &ports, 1.0, r#", "connect_timeout": 30"#);
    let out = dir.path().join("logs");
    // Twice: a failed connect leaves no log behind that would stop the same
    // command from being run again.
    for attempt in 1..=2 {
        let started = Instant::now();
        let child = spawn_machine(&["--connect-timeout", "1"], &config, &out);
        let output = finish(child, Duration::from_secs(25));
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "attempt {attempt}: {stderr}");
        // Every missing peer is named, with its own error.
        assert!(
            stderr.contains("machines 2 and 3 did not connect within the connect timeout of 1 s (`connect_timeout`"),
            "attempt {attempt}: {stderr}"
        );
        for port in &ports[1..] {
            assert!(stderr.contains(&format!("at 127.0.0.1:{port}: ")), "attempt {attempt}: {stderr}");
        }
        assert!(stderr.contains("Connection refused") && stderr.contains("no log kept"), "{stderr}");
        // The whole timeout is waited, and only it.
        assert!(elapsed >= Duration::from_secs(1), "attempt {attempt}: gave up after {elapsed:?}");
        assert!(elapsed < Duration::from_secs(20), "the flag's 1 s, not the file's 30 s");
        assert!(!out.join("machine_1.log").exists(), "attempt {attempt}: a log was left behind");
    }
}

#[test]
fn an_unwritable_results_folder_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A path under a regular file cannot be created, even by root.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = file.join("results");
    let output = crate::util::run_clocklab(&["run", "--duration", "1", "--runs", "1", "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The user's to fix: exit 2, naming the file in the way.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("cannot create a results folder under {}", out.display())), "{stderr}");
    assert!(stderr.contains(&format!("{}: is not a folder", file.display())), "{stderr}");
}

// --- Runs that are killed or interrupted ----------------------------------

#[test]
fn a_killed_machine_fails_its_run_and_its_peers_finish() {
    let dir = tempfile::tempdir().unwrap();
    let run = BackgroundRun::start(
        &dir.path().join("results"),
        &["--experiment", "fewer-internal-events", "--runs", "1", "--duration", "4", "--seed", "21"],
    );
    let pids = machine_pids(run.pid(), 3);
    let run_dir = run.wait_ticking("fewer-internal-events", 3);
    signal(pids[&2], Signal::SIGKILL);
    let (code, _, stderr) = run.wait(Duration::from_secs(40));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("run failed: fewer-internal-events/run_1: machine 2 was killed (signal: 9 (SIGKILL))"),
        "{stderr}"
    );

    let read = layout::read_run(&run_dir, LogFormat::Text).unwrap();
    let RunStatus::Failed { cause } = &read.manifest.status else { panic!("{:?}", read.manifest.status) };
    assert!(cause.contains("machine 2") && cause.contains("SIGKILL"), "{cause}");
    // The partial logs still read and check (a failed run may lose messages
    // sent to the machine that died).
    let report = read.check(1);
    assert!(report.is_ok(), "{:#?}", report.violations);
    for id in [1, 3] {
        let records = &read.logs[&id];
        check_text_lines(&layout::log_path(&run_dir, id, LogFormat::Text), id);
        assert!(records.iter().any(|r| r.event == Event::Disconnected { peer: 2 }), "machine {id}");
        let want = clocklab_model::schedule::n_ticks(rate_of(records), 4_000_000);
        assert!(ticks(records).abs_diff(want) <= 1, "machine {id}: {} ticks, want {want}", ticks(records));
        assert_eq!(records.last().unwrap().event, Event::Stopped);
    }
    // Machine 2's log holds whole lines only.
    read_log(&layout::log_path(&run_dir, 2, LogFormat::Text));
    // What machine 2 sent reached its peers in full: every Sent line of it
    // that made it to the log is processed or unprocessed at its recipients,
    // but the last (a kill between the line and the frames).
    for peer in [1, 3] {
        let sent = report.sent.get(&(2, peer)).copied().unwrap_or(0);
        let received = report.received.get(&(2, peer)).copied().unwrap_or(0);
        assert!(sent - received <= 1, "2 -> {peer}: sent {sent}, received {received}");
    }
    assert_no_orphans(&pids.values().copied().collect::<Vec<_>>());
}

#[test]
fn sigterm_to_clocklab_run_stops_every_machine_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let run = BackgroundRun::start(
        &dir.path().join("results"),
        &["--experiment", "baseline", "--runs", "1", "--duration", "30"],
    );
    let pids = machine_pids(run.pid(), 3);
    let run_dir = run.wait_ticking("baseline", 3);
    signal(run.pid(), Signal::SIGTERM);
    let (code, stdout, stderr) = run.wait(Duration::from_secs(20));
    assert_eq!(code, Some(128 + 15), "{stderr}");
    assert!(stderr.contains("clocklab: SIGTERM: stopping every run"), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM: 1 run stopped early (its manifest.json"), "{stderr}");
    assert!(stdout.contains("results: "), "{stdout}");
    let status = assert_interrupted_cleanly(&run_dir, 3, "SIGTERM");
    assert_eq!(status, RunStatus::Interrupted);
    // Stopped together at one instant: no machine took another's end for a
    // disconnection.
    for (id, records) in read_logs(&run_dir, 3, LogFormat::Text) {
        assert!(!records.iter().any(|r| matches!(r.event, Event::Disconnected { .. })), "machine {id}");
    }
    assert_no_orphans(&pids.values().copied().collect::<Vec<_>>());
}

#[test]
fn sigint_to_one_machine_stops_its_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let run =
        BackgroundRun::start(&dir.path().join("results"), &["--experiment", "both", "--runs", "1", "--duration", "30"]);
    let pids = machine_pids(run.pid(), 3);
    let run_dir = run.wait_ticking("both", 3);
    signal(pids[&3], Signal::SIGINT);
    let (code, _, stderr) = run.wait(Duration::from_secs(20));
    // The run was interrupted, not clocklab run: it ends like a failed run.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("both/run_1: interrupted"), "{stderr}");
    assert_eq!(assert_interrupted_cleanly(&run_dir, 3, "SIGINT to machine 3"), RunStatus::Interrupted);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout::manifest_path(&run_dir)).unwrap()).unwrap();
    assert_eq!(manifest["extra"]["interrupted_by"], "machine 3 got SIGINT");
    assert_no_orphans(&pids.values().copied().collect::<Vec<_>>());
}

#[test]
fn a_second_signal_kills_every_machine_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // A long drain timeout: after the first signal the machines wait for a
    // peer that is stopped (SIGSTOP) and never ends its stream, so only the
    // second signal can end the command soon.
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"connect_timeout": 60, "machines": 3, "runs": 1, "duration": 30}"#).unwrap();
    let run = BackgroundRun::start(&dir.path().join("results"), &["--config", config.to_str().unwrap()]);
    let pids = machine_pids(run.pid(), 3);
    run.wait_ticking("experiment", 3);
    signal(pids[&1], Signal::SIGSTOP);
    signal(run.pid(), Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    signal(run.pid(), Signal::SIGINT);
    let (code, _, stderr) = run.wait(Duration::from_secs(20));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("SIGINT again: killed 3 machines"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15), "the second signal ends the command at once");
    assert_no_orphans(&pids.values().copied().collect::<Vec<_>>());
}

#[test]
fn twenty_runs_interrupted_at_random_moments_end_cleanly() {
    let seed: u64 = match std::env::var("CLOCKLAB_INTERRUPT_SEED") {
        Ok(seed) => seed.parse().expect("CLOCKLAB_INTERRUPT_SEED is a number"),
        Err(_) => rand::random(),
    };
    eprintln!("interrupt moments drawn with CLOCKLAB_INTERRUPT_SEED={seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // Half the signals land in the first 300 ms, where the machines bind and
    // connect and the races are; the rest anywhere in the run.
    let delays_ms: Vec<u64> =
        (0..20).map(|idx| if idx % 2 == 0 { rng.random_range(0..300) } else { rng.random_range(0..2500) }).collect();
    let dir = tempfile::tempdir().unwrap();
    let (mut interrupted, mut finished) = (0, 0);
    // Four at a time keeps the whole test short on two cores.
    for batch in delays_ms.chunks(4) {
        let runs: Vec<_> = batch
            .iter()
            .map(|&delay_ms| {
                let out = dir.path().join(format!("results-{}", rand::random::<u64>()));
                let run = BackgroundRun::start(&out, &["--experiment", "baseline", "--runs", "1", "--duration", "3"]);
                (run, delay_ms, Instant::now())
            })
            .collect();
        let mut by_delay: Vec<_> = runs.into_iter().collect();
        by_delay.sort_by_key(|(_, delay_ms, _)| *delay_ms);
        for (run, delay_ms, started) in &by_delay {
            let due = *started + Duration::from_millis(*delay_ms);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            signal(run.pid(), Signal::SIGINT);
        }
        for (run, delay_ms, _) in by_delay {
            let what = format!("interrupted after {delay_ms} ms (seed {seed})");
            let out = run.out.clone();
            let (code, _, stderr) = run.wait(Duration::from_secs(30));
            let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
            let run_dir = layout::run_dir(&results, "baseline", 1);
            if !run_dir.exists() {
                // Interrupted before the run started: nothing to check but the code.
                assert_eq!(code, Some(130), "{what}: {stderr}");
                interrupted += 1;
                continue;
            }
            // A failed check shows what the machines said too.
            match assert_interrupted_cleanly(&run_dir, 3, &format!("{what}; stderr:\n{stderr}")) {
                RunStatus::Interrupted => {
                    assert_eq!(code, Some(130), "{what}: {stderr}");
                    interrupted += 1;
                }
                RunStatus::Ok => finished += 1,
                other => panic!("{what}: {other:?}\n{stderr}"),
            }
        }
    }
    eprintln!("{interrupted} runs interrupted, {finished} finished before the signal");
    assert!(interrupted >= 10, "most signals come before the end of a 3 s run");
}

// --- Hostile network input ------------------------------------------------

/// The clocks machine 1 logged from machine 2, processed then unprocessed.
fn received_from_2(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .filter_map(|r| match r.event {
            Event::Processed { from: Some(2), clock: Some(clock) } | Event::Unprocessed { from: 2, clock } => {
                Some(clock)
            }
            _ => None,
        })
        .collect()
}

/// Machine 1 ran its schedule: the exact tick count, `Stopped` last, and
/// every frame it logged as sent to us arrived.
fn assert_kept_schedule(records: &[Record], duration_s: f64, frames_to_us: u64) {
    let want = clocklab_model::schedule::n_ticks(rate_of(records), clocklab_model::schedule::duration_us(duration_s));
    assert!(ticks(records).abs_diff(want) <= 1, "{} ticks, want {want}", ticks(records));
    assert_eq!(records.last().unwrap().event, Event::Stopped);
    let sent: u64 = records.iter().filter(|r| matches!(r.event, Event::Sent { .. })).count() as u64;
    assert_eq!(sent, frames_to_us);
    assert!(!records.iter().any(|r| matches!(r.event, Event::Disconnected { .. })));
}

/// A hello as machine `id` with `token`.
fn hello(id: u32, token: [u8; TOKEN_LEN]) -> Vec<u8> {
    Hello::new(id, token, ClockKinds::LAMPORT, 2).encode().to_vec()
}

#[test]
fn strangers_never_reach_the_queue() {
    let duration_s = 4.0;
    let mut peer = FakePeer::start(duration_s, "");
    let port = peer.machine_port;
    let token = peer.token;
    let wrong_token = [0x11; TOKEN_LEN];
    // Each stranger sends its bytes, then clock frames that must never be processed.
    let poison: Vec<u8> = [0xdead_beef_u32, 4_000_000].iter().flat_map(|c| c.to_be_bytes()).collect();
    // (what, bytes, whether it then ends its stream)
    let strangers: Vec<(&str, Vec<u8>, bool)> = vec![
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false),
        ("a wrong token", hello(2, wrong_token), false),
        ("an unknown machine id", hello(7, token), false),
        ("machine 2 a second time", hello(2, token), false),
        ("its own id", hello(1, token), false),
        ("a partial hello", hello(2, token)[..10].to_vec(), true),
    ];
    let threads: Vec<_> = strangers
        .into_iter()
        .map(|(what, bytes, close)| {
            let poison = poison.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let _ = stream.write_all(&bytes);
                if close {
                    stream.shutdown(std::net::Shutdown::Write).unwrap();
                } else {
                    let _ = stream.write_all(&poison);
                }
                // The machine closes the connection without a word.
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                assert!(answer.is_empty(), "{what}: the machine answered {answer:?}");
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    peer.send([3, 5, 8]);
    // A slow-drip sender: a valid hello, one byte every 100 ms, too slow for
    // the hello timeout: the machine closes it without an answer.
    let mut drip = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for byte in hello(2, token) {
        if drip.write_all(&[byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = drip.read_to_end(&mut answer);
    assert!(answer.is_empty(), "the slow-drip sender got {answer:?}");
    // A flood of connections, held open for a second.
    let flood: Vec<_> = (0..200).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    std::thread::sleep(Duration::from_secs(1));
    drop(flood);
    peer.send([13, 21]);
    let (code, stderr, records, frames_to_us) = peer.finish(Duration::from_millis(1200));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Only what machine 2 sent reached the queue, in order.
    assert_eq!(received_from_2(&records), [3, 5, 8, 13, 21], "{stderr}");
    assert_kept_schedule(&records, duration_s, frames_to_us);
    for reason in [
        "bad magic",
        "wrong run token",
        "machine id 7 is not an expected peer",
        "machine 2 is already connected",
        "machine id 1 is not an expected peer",
        "the connection closed after 10 of 31 bytes",
        "no hello within 2 s",
        "too many waiting at once",
    ] {
        assert!(stderr.to_lowercase().contains(&reason.to_lowercase()), "{reason:?} not in {stderr}");
    }
    // The flood is counted, not echoed line by line.
    let refused_lines = stderr.lines().filter(|l| l.contains("refused a connection")).count();
    assert!(refused_lines < 40, "{refused_lines} lines");
    assert!(stderr.contains("connections in all (a bad or missing hello)"), "{stderr}");
}

#[test]
fn a_flooding_peer_is_capped_and_counted() {
    let duration_s = 2.0;
    let mut peer = FakePeer::start(duration_s, r#", "queue_cap": 100"#);
    let n = 200_000u32;
    peer.send(1..=n);
    let (code, stderr, records, frames_to_us) = peer.finish(Duration::from_secs_f64(duration_s));
    assert_eq!(code, Some(0), "{stderr}");
    assert_kept_schedule(&records, duration_s, frames_to_us);
    let received = received_from_2(&records);
    // What was taken is in order, and never more than the cap at once.
    assert!(received.windows(2).all(|pair| pair[0] < pair[1]));
    let unprocessed = records.iter().filter(|r| matches!(r.event, Event::Unprocessed { .. })).count();
    assert!(unprocessed <= 100, "{unprocessed} unprocessed");
    assert!(records.iter().all(|r| r.queue_length <= 100));
    // Every frame is either in the log or counted as refused.
    let refused = u64::from(n) - received.len() as u64;
    assert!(refused > 0);
    assert!(
        stderr.contains(&format!("refused {refused} messages because the queue was full (queue_cap 100)")),
        "{stderr}"
    );
    assert!(stderr.contains("the queue is full (100 messages): refusing messages from machine 2"), "{stderr}");
}

#[test]
fn sigterm_stops_a_standalone_machine_cleanly() {
    let mut peer = FakePeer::start(30.0, "");
    peer.send([2, 4]);
    std::thread::sleep(Duration::from_millis(700));
    signal(peer.machine.as_ref().unwrap().id(), Signal::SIGTERM);
    // Machine 1 stops at once and waits for the end of our stream.
    let (code, stderr, records, frames_to_us) = peer.finish(Duration::from_millis(300));
    assert_eq!(code, Some(128 + 15), "{stderr}");
    assert!(stderr.contains("machine 1: SIGTERM: stopping"), "{stderr}");
    assert_eq!(received_from_2(&records), [2, 4]);
    assert_eq!(records.last().unwrap().event, Event::Stopped);
    let sent = records.iter().filter(|r| matches!(r.event, Event::Sent { .. })).count() as u64;
    assert_eq!(sent, frames_to_us);
    assert!(ticks(&records) < 20, "stopped early");
}
