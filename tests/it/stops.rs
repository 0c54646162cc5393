//! How commands and machines stop when something outside them stops them:
//! signals to a simulated suite and to the analysis, a closed or full
//! stderr, an orchestrator that dies, a full disk, a machine paused.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clocklab_config::{RunManifest, RunStatus, layout};
use clocklab_log::{Event, LogFormat};
use nix::sys::signal::Signal;

use crate::util::{
    BackgroundRun, assert_accounted, check_text_lines, clocklab, finish, machine_pids, read_log, read_logs, signal,
    wait_for,
};

/// The one results folder under `out`.
fn results_dir(out: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(out).unwrap().next().unwrap().unwrap().path()
}

/// A simulated suite long enough to be interrupted: `signal` ends it like a
/// real one, with whole logs, exact accounting and an `interrupted` manifest.
fn interrupt_a_simulated_suite(sent: Signal, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let run = BackgroundRun::start(
        &out,
        &["--runtime", "sim", "--experiment", "baseline", "--runs", "3", "--duration", "40000", "--seed", "5"],
    );
    // Until the first run's logs are being written.
    let run_dir = layout::run_dir(&results_dir(&out), "baseline", 1);
    wait_for("the simulation to write", Duration::from_secs(20), || {
        std::fs::metadata(layout::log_path(&run_dir, 1, LogFormat::Text)).is_ok_and(|m| m.len() > 100_000)
    });
    signal(run.pid(), sent);
    let (exit, _, stderr) = run.wait(Duration::from_secs(60));
    let name = if sent == Signal::SIGINT { "SIGINT" } else { "SIGTERM" };
    assert_eq!(exit, Some(code), "{stderr}");
    assert!(stderr.contains(&format!("interrupted by {name}: 1 run stopped early (its manifest.json")), "{stderr}");
    // Whole lines, Stopped last, every message received.
    for id in 1..=3 {
        check_text_lines(&layout::log_path(&run_dir, id, LogFormat::Text), id);
    }
    assert_accounted(&read_logs(&run_dir, 3, LogFormat::Text), name);
    let manifest = RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(&run_dir)).unwrap()).unwrap();
    assert_eq!(manifest.status, RunStatus::Interrupted);
    // No run starts after the signal.
    assert!(!layout::run_dir(&results_dir(&out), "baseline", 3).exists());
}

#[test]
fn sigint_stops_a_simulated_suite_like_a_real_one() {
    interrupt_a_simulated_suite(Signal::SIGINT, 130);
}

#[test]
fn sigterm_stops_a_simulated_suite_like_a_real_one() {
    interrupt_a_simulated_suite(Signal::SIGTERM, 143);
}

#[test]
fn a_signal_during_the_analysis_ends_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    // Many short simulated runs: quick to make, slower to analyse.
    let mut run =
        BackgroundRun::start_with(&out, &["--runtime", "sim", "--runs", "40", "--duration", "20", "--seed", "6"]);
    // `results:` is the last line before the analysis starts.
    run.wait_line("results: ");
    let signalled = Instant::now();
    signal(run.pid(), Signal::SIGINT);
    let (code, _, stderr) = run.wait(Duration::from_secs(120));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("SIGINT during the analysis: stopping; every run is complete in"), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(30), "the analysis went on");
    // The runs themselves are complete.
    let manifest = RunManifest::from_json(
        &std::fs::read_to_string(layout::manifest_path(&layout::run_dir(&results_dir(&out), "both", 40))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.status, RunStatus::Ok);
}

/// `clocklab config` with a bad file, its stderr given by `stderr`.
fn bad_config_with_stderr(stderr: Stdio) -> Option<i32> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "runs = 0\n").unwrap();
    let status = clocklab().args(["config", "--config"]).arg(&path).stdout(Stdio::null()).stderr(stderr).status();
    status.unwrap().code()
}

#[test]
fn a_closed_or_full_stderr_is_no_panic() {
    // A full device: every write fails with "No space left on device".
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    assert_eq!(bad_config_with_stderr(Stdio::from(full)), Some(2));
    // A pipe nobody reads any more: every write fails with a broken pipe.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    assert_eq!(bad_config_with_stderr(Stdio::from(writer)), Some(2));
}

/// An orchestrated machine, spawned by the test playing the orchestrator.
struct Orchestrated {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Orchestrated {
    fn spawn(id: u32) -> Orchestrated {
        let mut child = clocklab()
            .args(["machine", &id.to_string(), "--orchestrated"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Orchestrated { child, stdout }
    }

    fn tell(&mut self, line: &serde_json::Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn hear(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a report: {line:?}"))
    }
}

#[test]
fn orphaned_machines_end_their_logs_and_exit_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut machines: Vec<Orchestrated> = (1..=2).map(Orchestrated::spawn).collect();
    let mut ports = BTreeMap::new();
    for (idx, machine) in machines.iter_mut().enumerate() {
        let id = idx as u32 + 1;
        let log = dir.path().join(format!("machine_{id}.log"));
        machine.tell(&serde_json::json!({"launch": {
            "n_machines": 2, "max_clock_rate": 6, "max_event_num": 3, "seed": 10 + id, "clocks": ["lamport"],
            "host": "127.0.0.1", "token_hex": "0f".repeat(16), "connect_timeout_s": 5.0, "queue_cap": 1000,
            "duration_us": 60_000_000, "logs": [["text", log]],
        }}));
        let bound = machine.hear();
        ports.insert(id, bound["bound"]["port"].as_u64().unwrap());
    }
    let peers: BTreeMap<String, SocketAddr> =
        ports.iter().map(|(id, port)| (id.to_string(), format!("127.0.0.1:{port}").parse().unwrap())).collect();
    for machine in &mut machines {
        machine.tell(&serde_json::json!({ "peers": peers }));
    }
    for machine in &mut machines {
        assert_eq!(machine.hear(), serde_json::json!("ready"));
    }
    let start_us = clocklab_net::now_us() + 100_000;
    for machine in &mut machines {
        machine.tell(&serde_json::json!({ "start": start_us }));
    }
    std::thread::sleep(Duration::from_millis(800));
    // The orchestrator dies: every pipe closes. The machines stop, end their
    // logs, fail to report, and exit 0 without a word on a closed stderr.
    let children: Vec<std::process::Child> = machines
        .into_iter()
        .map(|mut machine| {
            machine.child.stdin.take();
            machine.child.stderr.take();
            drop(machine.stdout);
            machine.child
        })
        .collect();
    for child in children {
        let output = finish(child, Duration::from_secs(30));
        assert_eq!(output.status.code(), Some(0), "{:?}", output.status);
    }
    for id in 1..=2 {
        let records = read_log(&dir.path().join(format!("machine_{id}.log")));
        assert_eq!(records.last().unwrap().event, Event::Stopped);
        assert!(records.iter().any(|r| r.event.is_tick()), "machine {id} ticked");
    }
}

#[test]
fn a_full_disk_names_its_first_write_error_and_leaves_no_partial_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    // Files may not grow past 1 KB (2 blocks of 512 bytes), as on a disk that
    // is full; writes past it fail ("File too large") instead of killing.
    let output = std::process::Command::new("sh")
        .args(["-c", "ulimit -f 2 && trap '' XFSZ && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_clocklab"))
        .args(["run", "--experiment", "baseline", "--runs", "1", "--duration", "3", "--no-analyze", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // The first write error is the cause, then that the manifest could not be kept.
    let failed = stderr.lines().find(|l| l.starts_with("clocklab: run failed: baseline/run_1: ")).expect(&stderr);
    let log_error = failed.find("cannot write the log").expect(failed);
    let manifest_error = failed.find("manifest.json could not be written").expect(failed);
    assert!(log_error < manifest_error, "{failed}");
    assert!(failed.contains("File too large"), "{failed}");
    // No manifest cut short, and no temporary file left behind.
    let run_dir = layout::run_dir(&results_dir(&out), "baseline", 1);
    let names: Vec<String> =
        std::fs::read_dir(&run_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.contains("manifest")), "{names:?}");
    // Each log holds whole lines only.
    for id in 1..=3 {
        let text = std::fs::read_to_string(layout::log_path(&run_dir, id, LogFormat::Text)).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "machine {id}: {text:?}");
        assert!(text.len() <= 1024);
    }
}

#[test]
fn a_machine_that_falls_behind_says_so_and_its_run_is_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let run = BackgroundRun::start(
        &dir.path().join("results"),
        &["--experiment", "baseline", "--runs", "1", "--duration", "4", "--max-clock-rate", "20", "--seed", "9"],
    );
    let pids = machine_pids(run.pid(), 3);
    let run_dir = run.wait_ticking("baseline", 3);
    // Machine 2 is paused for 700 ms: more than a tick period at any rate up to 20.
    signal(pids[&2], Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(700));
    signal(pids[&2], Signal::SIGCONT);
    let (code, _, stderr) = run.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("clocklab: run degraded: baseline/run_1: machine 2 fell behind its schedule"), "{stderr}");
    let manifest = RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(&run_dir)).unwrap()).unwrap();
    let RunStatus::Degraded { lateness_us_max, .. } = manifest.status else { panic!("{:?}", manifest.status) };
    assert!(lateness_us_max >= 500_000, "{lateness_us_max}");
    // It said so in its log, caught up every tick, and lost nothing.
    let logs = read_logs(&run_dir, 3, LogFormat::Text);
    let behind: Vec<&Event> = logs[&2].iter().map(|r| &r.event).filter(|e| matches!(e, Event::Behind { .. })).collect();
    assert_eq!(behind.len(), 1, "{behind:?}");
    crate::util::assert_sound(&logs, 4.0);
    // The reference's regex still reads the new line.
    let text = std::fs::read_to_string(layout::log_path(&run_dir, 2, LogFormat::Text)).unwrap();
    let line = text.lines().find(|l| l.contains("> Event: Behind schedule by ")).unwrap();
    assert!(regex::Regex::new(crate::util::REFERENCE_REGEX).unwrap().is_match(line), "{line}");
}
