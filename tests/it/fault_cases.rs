//! Fault plans that validation accepts and that once broke a runtime, each
//! in every runtime it concerns: coinciding crash windows, every machine
//! down at once, a crash storm, a clock fault while down, a crash at the
//! start for good, the largest latency (with a stop request, and with the
//! orchestrator killed), and a seeded sample of the random plans the
//! simulator's property test runs, in the real runtime. Each run passes
//! `clocklab check`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clocklab_config::{RunManifest, RunStatus, layout};
use clocklab_faults::FaultSpec;
use clocklab_log::{Event, LogFormat, Record};

use crate::util::{assert_no_orphans, clocklab, read_log, run_clocklab};

/// One run of the baseline (three machines, rates up to 6) for `duration_s`
/// with every clock and `faults`, in `runtime`; returns its folder and manifest.
fn run(root: &Path, runtime: &str, duration_s: f64, faults: &[FaultSpec]) -> (PathBuf, RunManifest) {
    let config = serde_json::json!({
        "runtime": runtime,
        "clocks": ["lamport", "vector", "hlc"],
        "connect_timeout": 2.0,
        "experiments": [{
            "name": "case", "machines": 3, "max_clock_rate": 6, "max_event_num": 5,
            "runs": 1, "duration": duration_s, "faults": faults,
        }],
    });
    let path = root.join(format!("{runtime}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    let out = root.join(format!("results-{runtime}"));
    let output = run_clocklab(&[
        "run",
        "--config",
        path.to_str().unwrap(),
        "--seed",
        "17",
        "--out",
        out.to_str().unwrap(),
        "--no-analyze",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{runtime}: {stderr}");
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let run_dir = layout::run_dir(&results, "case", 1);
    let manifest = RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(&run_dir)).unwrap()).unwrap();
    (run_dir, manifest)
}

/// `clocklab check` of a run folder: every rule holds.
fn checked(run_dir: &Path, what: &str) -> String {
    let output = run_clocklab(&["check", run_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(0), "{what}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("all holds"), "{what}: {stdout}");
    stdout
}

fn log_of(run_dir: &Path, id: u32) -> Vec<Record> {
    read_log(&layout::log_path(run_dir, id, LogFormat::Text))
}

/// The events of a log, in words.
fn kinds(records: &[Record]) -> Vec<&'static str> {
    records.iter().map(|r| r.event.kind()).collect()
}

fn crash(machine: u32, start: f64, end: Option<f64>) -> FaultSpec {
    FaultSpec::Crash { machine, start, end, restart_clock: clocklab_faults::RestartClock::Fresh }
}

/// Runs `faults` in both runtimes; each run ends `ok` and passes the check.
fn in_both(duration_s: f64, faults: &[FaultSpec], what: &str) -> [(PathBuf, RunManifest, tempfile::TempDir); 2] {
    ["sim", "real"].map(|runtime| {
        let tmp = tempfile::tempdir().unwrap();
        let (run_dir, manifest) = run(tmp.path(), runtime, duration_s, faults);
        assert!(manifest.status.ran_to_the_end(), "{what}, {runtime}: {:?}", manifest.status);
        checked(&run_dir, &format!("{what}, {runtime}"));
        (run_dir, manifest, tmp)
    })
}

#[test]
fn coinciding_crash_windows_reconnect_once_and_lose_nothing_after() {
    let faults = [crash(1, 1.0, Some(2.0)), crash(2, 1.0, Some(2.0))];
    for (run_dir, _, _) in in_both(4.0, &faults, "coinciding crashes") {
        for (id, peer) in [(1, 2), (2, 1)] {
            let log = log_of(&run_dir, id);
            let restarted = log.iter().position(|r| r.event.kind() == "restarted").expect("it restarted");
            let connected = log[restarted..]
                .iter()
                .filter(|r| matches!(r.event, Event::Connected { peer: p, .. } if p == peer))
                .count();
            assert_eq!(
                connected,
                1,
                "machine {id} connects to machine {peer} once after its restart: {:?}",
                kinds(&log)
            );
        }
    }
}

#[test]
fn every_machine_down_at_once_comes_back() {
    let faults: Vec<FaultSpec> = (1..=3).map(|id| crash(id, 1.0, Some(2.0))).collect();
    for (run_dir, manifest, _) in in_both(4.0, &faults, "every machine down") {
        assert_eq!(manifest.status, RunStatus::Ok);
        for id in 1..=3 {
            let log = log_of(&run_dir, id);
            assert!(kinds(&log).contains(&"restarted"), "machine {id}: {:?}", kinds(&log));
            assert_eq!(log.last().unwrap().event, Event::Stopped, "machine {id} ran to the end");
            // It ticked after its restart, up to the end of the run.
            let last_tick = log.iter().rev().find(|r| r.event.is_tick()).unwrap();
            let start = manifest.started_at.clone();
            assert!(last_tick.time_us > log[0].time_us + 2_500_000, "{start}: {:?}", kinds(&log));
        }
    }
}

#[test]
fn a_crash_storm_leaves_whole_logs_in_the_real_runtime() {
    // Machine 2 down 0.1 s in every 0.25 s, twelve times.
    let faults: Vec<FaultSpec> =
        (0..12).map(|k| crash(2, 0.2 + 0.25 * f64::from(k), Some(0.3 + 0.25 * f64::from(k)))).collect();
    for (run_dir, _, _) in in_both(3.5, &faults, "a crash storm") {
        let log = log_of(&run_dir, 2);
        let crashes = log.iter().filter(|r| r.event == Event::Crashed).count();
        assert_eq!(crashes, 12, "{:?}", kinds(&log));
        // Nothing after Stopped; every crash is followed by a restart.
        assert_eq!(log.iter().filter(|r| r.event == Event::Stopped).count(), 1);
        assert_eq!(log.last().unwrap().event, Event::Stopped);
    }
}

#[test]
fn a_clock_fault_while_down_is_logged_at_the_restart() {
    let step = FaultSpec::Clock { machine: 2, start: 2.0, step_ms: Some(-500.0), drift_ppm: None };
    let faults = [crash(2, 1.0, Some(3.0)), step];
    for (run_dir, _, _) in in_both(4.0, &faults, "a clock fault while down") {
        let log = log_of(&run_dir, 2);
        let crashed = log.iter().position(|r| r.event == Event::Crashed).unwrap();
        assert_eq!(log[crashed + 1].event.kind(), "restarted", "{:?}", kinds(&log));
        assert_eq!(log[crashed + 2].event, Event::ClockChanged { step_us: -500_000, drift_ppb: None });
        // The restart's clock reads as stepped already: the step happened while it was down.
        let offset = |r: &Record| r.physical_clock_us.unwrap() - r.time_us;
        assert!(offset(&log[crashed + 1]) < -400_000, "{}", offset(&log[crashed + 1]));
    }
}

#[test]
fn a_crash_at_the_start_for_good_expects_no_ticks() {
    for (run_dir, _, _) in in_both(3.0, &[crash(2, 0.0, None)], "a crash at the start") {
        let log = log_of(&run_dir, 2);
        assert_eq!(log.last().unwrap().event, Event::Crashed);
        assert!(log.iter().all(|r| !r.event.is_tick()), "{:?}", kinds(&log));
    }
}

/// The largest latency on every link.
fn largest_latency() -> FaultSpec {
    FaultSpec::Latency {
        start: 0.0,
        end: None,
        links: None,
        delay: clocklab_faults::DelaySpec::Constant { ms: clocklab_faults::spec::DELAY_MS_MAX },
    }
}

#[test]
fn the_largest_latency_is_held_at_the_end_and_the_run_ends_on_time() {
    for (run_dir, manifest, _) in in_both(3.0, &[largest_latency()], "the largest latency") {
        let held: usize =
            (1..=3).map(|id| log_of(&run_dir, id).iter().filter(|r| r.event.kind() == "held").count()).sum();
        assert!(held > 0, "every message is held at the end");
        let (started, ended) = (parse_time(&manifest.started_at), parse_time(&manifest.ended_at));
        assert!(ended - started < 3_000_000 + 2_000_000, "the run ended {} us after its start", ended - started);
    }
}

fn parse_time(text: &str) -> i64 {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    (at.unix_timestamp_nanos() / 1_000) as i64
}

#[test]
fn a_stop_or_the_orchestrator_s_death_ends_a_run_within_the_drain_whatever_it_holds() {
    for kill in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let config = serde_json::json!({
            "runtime": "real",
            "connect_timeout": 2.0,
            "experiments": [{
                "name": "case", "machines": 3, "max_clock_rate": 6, "max_event_num": 4,
                "runs": 1, "duration": 60.0, "faults": [largest_latency()],
            }],
        });
        let path = tmp.path().join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let out = tmp.path().join("results");
        let mut child = clocklab()
            .args(["run", "--config", path.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-analyze"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the machines tick (their logs have a tick).
        let run_dir = || {
            let results = std::fs::read_dir(&out).ok()?.next()?.ok()?.path();
            Some(layout::run_dir(&results, "case", 1))
        };
        crate::util::wait_for("the machines' first ticks", Duration::from_secs(30), || {
            run_dir().is_some_and(|dir| {
                std::fs::read_to_string(layout::log_path(&dir, 1, LogFormat::Text))
                    .is_ok_and(|t| t.contains("Internal") || t.contains("Sent"))
            })
        });
        let pids: Vec<u32> = crate::util::machine_pids(child.id(), 3).into_values().collect();
        let signal = if kill { nix::sys::signal::Signal::SIGKILL } else { nix::sys::signal::Signal::SIGTERM };
        let asked = Instant::now();
        crate::util::signal(child.id(), signal);
        let status = child.wait().unwrap();
        let run_dir = run_dir().unwrap();
        // The machines end too (an orphan sees its input close), within the
        // drain (2 s) and its stall limit (2 s).
        crate::util::wait_for("every machine to exit", Duration::from_secs(6), || {
            pids.iter().all(|&pid| !crate::util::clocklab_alive(pid))
        });
        assert!(asked.elapsed() < Duration::from_secs(6), "{:?} to end after {signal}", asked.elapsed());
        assert_no_orphans(&pids);
        for id in 1..=3 {
            assert_eq!(log_of(&run_dir, id).last().unwrap().event, Event::Stopped, "machine {id} after {signal}");
        }
        if !kill {
            assert_eq!(status.code(), Some(128 + 15));
            checked(&run_dir, "stopped by SIGTERM");
        }
    }
}

#[test]
fn a_seeded_sample_of_random_fault_plans_runs_in_the_real_runtime() {
    for seed in [3, 14, 33] {
        let faults = clocklab_faults::generate::random_plan(seed, 3, 3.0, 6);
        let tmp = tempfile::tempdir().unwrap();
        let (run_dir, manifest) = run(tmp.path(), "real", 3.0, &faults);
        let what = format!("seed {seed}: {faults:?}");
        assert!(manifest.status.ran_to_the_end(), "{what}: {:?}", manifest.status);
        checked(&run_dir, &what);
    }
}
