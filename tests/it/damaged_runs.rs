//! Damaged run folders as a user meets them: a manifest that is no manifest
//! or holds a number past its range, a log that is missing or a folder, a
//! line of megabytes in the middle of a log, and a diagram's window left
//! open at its end.

use std::path::{Path, PathBuf};

use clocklab_config::{MachineManifest, layout};

use crate::util::run_clocklab;

/// A simulated run of `baseline` (three machines, 2 s) under `root`.
fn simulated_run(root: &Path) -> PathBuf {
    let out = root.join("out");
    let args = ["run", "--runtime", "sim", "--experiment", "baseline", "--runs", "1", "--duration", "2", "--seed", "5"];
    let output = run_clocklab(&[&args[..], &["--no-analyze", "--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path().join("baseline/run_1")
}

/// `clocklab <args>`: exit code, stdout and stderr.
fn clocklab(args: &[&str]) -> (Option<i32>, String, String) {
    let output = run_clocklab(args);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Sets `key` (a path of object keys) of the JSON file at `path` to `value`.
fn set_json(path: &Path, key: &[&str], value: serde_json::Value) {
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut at = &mut json;
    for part in key {
        at = &mut at[part];
    }
    *at = value;
    std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

#[test]
fn a_number_out_of_its_range_in_a_manifest_is_bad_input_naming_the_file_and_the_key() {
    let root = tempfile::tempdir().unwrap();
    let run = simulated_run(root.path());
    let manifest = layout::manifest_path(&run);
    // `check` allocated 2.4 GB for this one and aborted.
    set_json(&manifest, &["experiment", "machines"], 100_000_000.into());
    let expected = format!(
        "clocklab: error: {}: key `experiment.machines` = 100000000: must be a number of machines in 2..=20000\n",
        manifest.display()
    );
    let dir = run.to_str().unwrap();
    for args in [vec!["check", dir], vec!["diagram", dir], vec!["export", dir, "--format", "csv"]] {
        let (code, stdout, stderr) = clocklab(&args);
        assert_eq!((code, stderr.as_str()), (Some(2), expected.as_str()), "{args:?}: {stdout}");
    }
    // The analysis reads the run from its logs, and says what is wrong with its manifest.
    let (code, stdout, stderr) = clocklab(&["analyze", dir, "--no-diagrams"]);
    assert_eq!(code, Some(0), "{stderr}");
    let said = format!("baseline run_1: {}: key `experiment.machines` = 100000000: must be", manifest.display());
    assert!(stdout.contains(&said), "{stdout}");

    // Machines started by hand: their `machine_<id>.json` is checked the same way.
    std::fs::remove_file(&manifest).unwrap();
    let hand = MachineManifest {
        clocklab_version: "0.1.0".into(),
        id: 1,
        experiment: Some("baseline".into()),
        n_machines: 100_000_000,
        host: "127.0.0.1".into(),
        port: 5001,
        rate: 1,
        seed: 1,
        max_clock_rate: 6,
        max_event_num: 10,
        clocks: clocklab_model::ClockKinds::LAMPORT,
        clock_offset_us: 0,
        clock_drift_ppm: 0.0,
        duration: 2.0,
        started_at: "2026-01-01T00:00:00.000000Z".into(),
        deadline_at: "2026-01-01T00:00:02.000000Z".into(),
        ended_at: "2026-01-01T00:00:02.000000Z".into(),
        status: clocklab_config::RunStatus::Ok,
        counts: Default::default(),
        tick_lateness_us: Default::default(),
    };
    let hand_path = layout::machine_manifest_path(&run, 1);
    std::fs::write(&hand_path, hand.to_json()).unwrap();
    let (code, stdout, stderr) = clocklab(&["analyze", dir, "--no-diagrams"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&format!("baseline run_1: {}: key `n_machines`", hand_path.display())), "{stdout}");
}

#[test]
fn a_manifest_that_is_not_text_is_bad_input_and_the_analysis_calls_it_damaged() {
    let root = tempfile::tempdir().unwrap();
    let run = simulated_run(root.path());
    let manifest = layout::manifest_path(&run);
    std::fs::write(&manifest, b"\xff\xfe{}").unwrap();
    let dir = run.to_str().unwrap();
    let (code, _, stderr) = clocklab(&["check", dir]);
    assert_eq!(code, Some(2), "documented as bad input: {stderr}");
    assert_eq!(
        stderr,
        format!("clocklab: error: {}: not UTF-8 text (byte 1 is not): not a manifest\n", manifest.display())
    );
    let out = root.path().join("analysis");
    let (code, _, stderr) = clocklab(&["analyze", dir, "--no-diagrams", "--out", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(report.contains("1 run whose manifest.json is damaged"), "{report}");
    assert!(!report.contains("without a manifest and of unknown origin"), "{report}");
    assert!(report.contains("without a manifest that could be read"), "{report}");
}

#[test]
fn a_missing_log_or_a_folder_in_its_place_is_said_by_the_analysis() {
    let root = tempfile::tempdir().unwrap();
    let run = simulated_run(root.path());
    let log = run.join("machine_2.log");
    std::fs::remove_file(&log).unwrap();
    let dir = run.to_str().unwrap();
    for (what, said) in [("missing", "missing"), ("a folder", "a folder, not a log")] {
        if what == "a folder" {
            std::fs::create_dir(&log).unwrap();
        }
        let (code, stdout, stderr) = clocklab(&["analyze", dir, "--no-diagrams"]);
        assert_eq!(code, Some(0), "{what}: {stderr}");
        let line = format!("{}: unreadable: {said} (manifest.json lists machine 2)", log.display());
        assert!(stdout.contains(&line), "{what}: {stdout}");
        assert!(stdout.contains("left out of the aggregates"), "{what}: the run lacks a machine: {stdout}");
    }
}

#[test]
fn a_window_left_open_at_its_end_reaches_the_run_s_last_event() {
    let root = tempfile::tempdir().unwrap();
    let run = simulated_run(root.path());
    let dir = run.to_str().unwrap();
    let (code, stdout, stderr) = clocklab(&["diagram", dir, "--from", "0", "--to", "inf"]);
    assert_eq!(code, Some(0), "{stderr}");
    let svg = PathBuf::from(stdout.trim());
    assert!(svg.file_name().unwrap().to_string_lossy().starts_with("diagram_0-2"), "{stdout}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.contains("true time 0 s to 2"), "{}", &drawn[..drawn.len().min(2000)]);
    let (code, _, stderr) = clocklab(&["diagram", dir, "--from=-inf", "--to", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = clocklab(&["diagram", dir, "--from", "0", "--to", "nan"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("must be numbers of seconds"), "{stderr}");
}

#[test]
fn a_line_of_megabytes_in_the_middle_of_a_log_is_skipped_and_never_shown_whole() {
    let root = tempfile::tempdir().unwrap();
    let run = simulated_run(root.path());
    let log = run.join("machine_2.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let (head, tail) = text.split_at(text.match_indices('\n').nth(9).unwrap().0 + 1);
    let long = 4_000_000;
    std::fs::write(&log, [head.as_bytes(), &vec![0u8; long], b"\n", tail.as_bytes()].concat()).unwrap();
    let dir = run.to_str().unwrap();
    let (code, stdout, _) = clocklab(&["check", dir]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains(&format!("longer than 65536 bytes ({long} bytes)")), "{stdout}");
    assert!(
        stdout.contains(&format!("(a line of {long} bytes, longer than the 65536 a log line may have: not shown)")),
        "{stdout}"
    );
    assert!(stdout.len() < 100_000, "the line is said, not copied: {} bytes", stdout.len());
    let (code, stdout, stderr) = clocklab(&["analyze", dir]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("1 damaged line skipped, first at line 11 (longer than 65536 bytes ({long} bytes))")),
        "{stdout}"
    );
    let page = std::fs::metadata(run.join("analysis/diagrams/baseline/run_1.html")).unwrap().len();
    assert!(page < 1_000_000, "the diagram holds no copy of the line: {page} bytes");
}
