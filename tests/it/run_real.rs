//! `clocklab run` with real processes: the logs and manifests of short runs.

use std::path::{Path, PathBuf};

use clocklab_config::{Config, RunStatus, Runtime, layout, plan_runs};
use clocklab_log::LogFormat;

use crate::util::{assert_sound, check_text_lines, logged_rate, read_logs, run_clocklab};

/// The results folders under `out`, oldest name first.
fn results_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    dirs
}

#[test]
fn clocklab_run_writes_sound_logs_and_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let out_arg = out.to_str().unwrap();
    let args =
        ["run", "--experiment", "baseline", "--runs", "2", "--duration", "2", "--seed", "11", "--log-format", "both"];
    let output = run_clocklab(&[&args[..], &["--out", out_arg, "--no-analyze"]].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let results = results_dirs(&out);
    assert_eq!(results.len(), 1);
    assert!(stdout.contains(&format!("results: {}", results[0].display())), "{stdout}");
    assert!(stdout.contains("tick lateness over 6 machines"), "{stdout}");

    // The same seed plans the same rates the machines drew.
    let mut config = Config::default();
    config.experiments.retain(|e| e.name == "baseline");
    config.experiments[0].runs = 2;
    config.experiments[0].duration = 2.0;
    let plans = plan_runs(&config, 11, &results[0]);
    for plan in &plans {
        let run = layout::read_run(&plan.dir, LogFormat::Text).unwrap();
        let report = run.check(1);
        assert!(report.is_ok(), "{}: {:#?}", plan.dir.display(), report.violations);
        assert_eq!(report.sent, report.received);
        let manifest = &run.manifest;
        assert_eq!(manifest.status, RunStatus::Ok);
        assert_eq!(manifest.runtime, Runtime::Real);
        assert_eq!(manifest.seeds.suite, 11);
        assert_eq!(manifest.seeds.run, plan.run_seed);
        assert!(manifest.started_at.ends_with('Z') && manifest.started_at.len() == 27, "{}", manifest.started_at);
        let lateness = &manifest.extra["tick_lateness_us"];
        for (machine, planned) in manifest.machines.iter().zip(&plan.machines) {
            assert_eq!((machine.id, machine.rate, machine.seed), (planned.id, planned.rate, planned.seed));
            assert_eq!(machine.exit_status.as_deref(), Some("0"));
            assert!(machine.address.starts_with("127.0.0.1:"));
            assert_eq!(machine.logs, [format!("machine_{}.log", machine.id), format!("machine_{}.jsonl", machine.id)]);
            assert_eq!(logged_rate(&run.logs[&machine.id]), planned.rate);
            assert!(lateness[machine.id.to_string()]["p99_us"].is_u64());
            check_text_lines(&layout::log_path(&plan.dir, machine.id, LogFormat::Text), machine.id);
        }
        assert_sound(&run.logs, 2.0);
        assert_eq!(read_logs(&plan.dir, 3, LogFormat::Jsonl), run.logs);
        // The run token never reaches the disk.
        let manifest_text = std::fs::read_to_string(layout::manifest_path(&plan.dir)).unwrap();
        assert!(!manifest_text.contains("token"));
    }

    // A second invocation makes a new folder and leaves the first alone.
    let before: Vec<_> = walk(&results[0]);
    let output = run_clocklab(&[
        "run",
        "--experiment",
        "both",
        "--runs",
        "1",
        "--duration",
        "1",
        "--out",
        out_arg,
        "--no-analyze",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let after = results_dirs(&out);
    assert_eq!(after.len(), 2);
    assert_eq!(walk(&results[0]), before);
    let second = after.iter().find(|d| **d != results[0]).unwrap();
    let run = layout::read_run(&layout::run_dir(second, "both", 1), LogFormat::Text).unwrap();
    assert!(run.check(1).is_ok());
}

/// Every file under `dir` with its contents.
fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

/// `--jobs` says what its default does: the orchestrator starts every run of
/// the suite at once, not an experiment's runs at a time.
#[test]
fn the_help_of_jobs_says_every_run_of_the_suite_starts_together() {
    let output = run_clocklab(&["run", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    let jobs = help.split("--jobs").nth(1).unwrap_or_default();
    assert!(jobs.contains("default: every run of the suite at once"), "{help}");
    assert!(!help.contains("all of an experiment's"), "{help}");
}

#[test]
fn bad_run_arguments_are_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    for (args, want) in [
        (vec!["--experiment", "nope"], "no such experiment"),
        (vec!["--duration=-1"], "duration"),
        (vec!["--jobs", "0"], "--jobs 0"),
    ] {
        let output = run_clocklab(&[&["run", "--out", out.to_str().unwrap(), "--no-analyze"][..], &args].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn machines_stop_cleanly_when_the_orchestrator_dies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let orchestrator = crate::util::clocklab()
        .args(["run", "--experiment", "baseline", "--runs", "1", "--duration", "60", "--no-analyze", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The guard kills the orchestrator (SIGKILL) when dropped, on a failed assertion too.
    let orchestrator = crate::util::Processes(vec![orchestrator]);
    // Wait until every machine has ticked at least once (a line after its Connected lines).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let ticked = |dir: &Path| {
        (1..=3).all(|id| {
            let text = std::fs::read_to_string(dir.join(format!("machine_{id}.log"))).unwrap_or_default();
            text.lines().count() >= 4
        })
    };
    let run_dir = loop {
        assert!(std::time::Instant::now() < deadline, "the machines never started ticking");
        let found = std::fs::read_dir(&out).ok().and_then(|mut dirs| dirs.next()).map(|e| e.unwrap().path());
        if let Some(results) = found {
            let run_dir = layout::run_dir(&results, "baseline", 1);
            if ticked(&run_dir) {
                break run_dir;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(orchestrator);
    // Each machine sees the end of its input, drains, and writes Stopped.
    for id in 1..=3 {
        let path = layout::log_path(&run_dir, id, LogFormat::Text);
        let stopped =
            || std::fs::read_to_string(&path).unwrap().lines().last().is_some_and(|l| l.contains("> Event: Stopped |"));
        while !stopped() {
            assert!(std::time::Instant::now() < deadline, "machine {id} did not stop");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        check_text_lines(&path, id);
    }
    // Nothing is lost even when stopping early: every message sent was received.
    let logs = read_logs(&run_dir, 3, LogFormat::Text);
    let expect = clocklab_log::check::Expectations {
        tick_tolerance: 1000,
        ..clocklab_log::check::Expectations::new(3, 60.0, clocklab_model::ClockKinds::LAMPORT)
    };
    let report = clocklab_log::check::check_run(&logs, &expect);
    assert!(report.is_ok(), "{:#?}", report.violations);
    assert_eq!(report.sent, report.received);
}
