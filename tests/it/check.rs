//! `clocklab check` as a user runs it: 0 when every clock holds (simulated
//! and real runs), 1 with the two events and their lines on a violation, 2
//! on bad input.

use std::path::{Path, PathBuf};

use crate::util::run_clocklab;

fn results_of(out: &Path) -> PathBuf {
    std::fs::read_dir(out).unwrap().next().unwrap().unwrap().path()
}

fn run(args: &[&str], out: &Path) -> PathBuf {
    let output = run_clocklab(&[args, &["--out", out.to_str().unwrap(), "--no-analyze"]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    results_of(out)
}

#[test]
fn real_runs_with_every_clock_pass_the_check() {
    let root = tempfile::tempdir().unwrap();
    let args = ["run", "--runtime", "real", "--clocks", "lamport,vector,hlc", "--experiment", "baseline"];
    let results = run(
        &[&args[..], &["--experiment", "both", "--runs", "2", "--duration", "2", "--seed", "4"]].concat(),
        root.path(),
    );
    let output = run_clocklab(&["check", results.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("all holds: 4 runs"), "{stdout}");
    assert_eq!(stdout.matches("checked: lines, pairing, lamport, vector, hlc, rules").count(), 4, "{stdout}");
}

#[test]
fn a_violation_exits_1_and_shows_both_events_with_their_lines() {
    let root = tempfile::tempdir().unwrap();
    let args = ["run", "--runtime", "sim", "--clocks", "lamport,vector,hlc", "--experiment", "baseline", "--runs", "1"];
    let results = run(&[&args[..], &["--duration", "10", "--seed", "3"]].concat(), root.path());
    let run_dir = results.join("baseline/run_1");
    let output = run_clocklab(&["check", run_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for check in ["lines", "rules", "pairing", "lamport", "vector", "hlc"] {
        assert!(stdout.contains(&format!("  {check:<8} ok: ")), "{check}: {stdout}");
    }
    // Machine 2's first processed message gets the clock its sender had.
    let log = run_dir.join("machine_2.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.contains("Processed message from machine")).unwrap();
    let carried = line.split("with clock ").nth(1).unwrap().split(' ').next().unwrap();
    let clock = line.split("Logical Clock: ").nth(1).unwrap().split(' ').next().unwrap();
    let broken = line.replace(&format!("Logical Clock: {clock} |"), &format!("Logical Clock: {carried} |"));
    std::fs::write(&log, text.replace(line, &broken)).unwrap();
    let output = run_clocklab(&["check", run_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("but Lamport clock {carried} is not below {carried}")), "{stdout}");
    assert!(stdout.contains(&broken), "the changed line is shown: {stdout}");
    assert!(stdout.contains("Sent message to machine"), "the send is shown: {stdout}");
    assert!(stdout.lines().last().unwrap().ends_with("in the run"), "{stdout}");
    // One broken clock is one violation of each rule it breaks, said in the singular.
    assert!(stdout.contains("  lamport  1 violation: "), "{stdout}");
    assert!(!stdout.contains(" 1 violations"), "{stdout}");
}

/// The folder given to `run --out` holds results folders: `check` and
/// `analyze` read the newest, and say so.
#[test]
fn the_folder_of_run_out_is_read_as_its_newest_results() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    let args = ["run", "--runtime", "sim", "--experiment", "baseline", "--runs", "1", "--duration", "5"];
    for seed in ["1", "2"] {
        run(&[&args[..], &["--seed", seed]].concat(), &out);
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    folders.sort();
    assert_eq!(folders.len(), 2, "{folders:?}");
    let output = run_clocklab(&["check", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("all holds: 1 run"), "{stdout}");
    assert!(stderr.contains(&format!("reading the newest, {}", folders[1].display())), "{stderr}");
    let output = run_clocklab(&["analyze", out.to_str().unwrap(), "--no-diagrams"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(folders[1].join("analysis/report.html").is_file());
    assert!(!out.join("analysis").exists() && !folders[0].join("analysis").exists());
}

#[test]
fn bad_input_exits_2() {
    let root = tempfile::tempdir().unwrap();
    let output = run_clocklab(&["check", root.path().join("missing").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing does not exist"));
    let file = root.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let output = run_clocklab(&["check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("a-file is not a folder"));
    std::fs::remove_file(&file).unwrap();
    let output = run_clocklab(&["check", root.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no logs found"));
    let run_dir = root.path().join("x/run_1");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("machine_1.log"), "").unwrap();
    std::fs::write(run_dir.join("manifest.json"), "{ not json").unwrap();
    let output = run_clocklab(&["check", run_dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("manifest.json:1:3: malformed JSON: key must be a string")
    );
}
