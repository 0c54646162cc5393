//! Bad configurations, through the real binary: each is one line on stderr
//! naming the file, the key and the value, exit code 2, nothing on stdout,
//! and nothing started or written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One bad configuration: its file name, its text (`None`: the file does not
/// exist), and what the error line must name besides the file.
struct Case {
    file: &'static str,
    text: Option<&'static str>,
    names: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case { file: "missing.toml", text: None, names: &["cannot read"] },
    Case {
        file: "malformed.json",
        text: Some("{\n  \"runs\": 2,\n  \"duration\" 5\n}\n"),
        names: &[":3:14:", "malformed JSON"],
    },
    Case { file: "malformed.toml", text: Some("runs = 2\nduration = = 5\n"), names: &[":2:12:", "malformed TOML"] },
    Case {
        file: "unknown-key.toml",
        text: Some("max_clock_rat = 6\n"),
        names: &["unknown key `max_clock_rat`", "did you mean `max_clock_rate`?"],
    },
    Case {
        file: "unknown-nested-key.json",
        text: Some(r#"{"experiments": [{"name": "a"}, {"name": "b", "max_evnt_num": 4}]}"#),
        names: &["unknown key `experiments[1].max_evnt_num`", "did you mean `max_event_num`?"],
    },
    Case {
        file: "wrong-type.json",
        text: Some(r#"{"max_clock_rate": "six"}"#),
        names: &["key `max_clock_rate` = \"six\"", "wrong type"],
    },
    Case { file: "rate-zero.toml", text: Some("max_clock_rate = 0\n"), names: &["key `max_clock_rate` = 0"] },
    Case {
        file: "event-num-two.json",
        text: Some(r#"{"experiments": [{"name": "a", "max_event_num": 2}]}"#),
        names: &["key `experiments[0].max_event_num` = 2", "at least 3"],
    },
    Case { file: "one-machine.toml", text: Some("machines = 1\n"), names: &["key `machines` = 1", "in 2..=20000"] },
    Case {
        file: "duplicate-ports.json",
        text: Some(r#"{"ports": [5001, 5002, 5001]}"#),
        names: &["key `ports[2]` = 5001", "used twice"],
    },
    Case {
        file: "port-out-of-range.json",
        text: Some(r#"{"ports": [5001, 70000, 5003]}"#),
        names: &["key `ports[1]` = 70000", "1..=65535"],
    },
    Case { file: "duration-zero.toml", text: Some("duration = 0\n"), names: &["key `duration` = 0", "positive"] },
    Case {
        file: "duration-negative.json",
        text: Some(r#"{"duration": -5}"#),
        names: &["key `duration` = -5", "positive"],
    },
    // Values that once passed validation and then crashed a run, filled a
    // disk, never ended, or broke the results layout.
    Case {
        file: "duration-huge.toml",
        text: Some("duration = 1e300\n"),
        names: &["key `duration` = 1e300", "0.001..=31536000"],
    },
    Case {
        file: "duration-overflow.toml",
        text: Some("duration = 1e14\n"),
        names: &["key `duration` = 1e14", "0.001..=31536000"],
    },
    Case {
        file: "timeout-huge.toml",
        text: Some("connect_timeout = 1e30\n"),
        names: &["key `connect_timeout` = 1e30", "0.1..=3600"],
    },
    Case {
        file: "timeout-tiny.toml",
        text: Some("connect_timeout = 0.001\n"),
        names: &["key `connect_timeout` = 0.001", "0.1..=3600"],
    },
    Case {
        file: "runs-huge.toml",
        text: Some("runs = 4294967295\n"),
        names: &["key `runs` = 4294967295", "1..=10000"],
    },
    Case {
        file: "machines-huge.toml",
        text: Some("machines = 50000\n"),
        names: &["key `machines` = 50000", "2..=20000"],
    },
    Case {
        file: "machines-real.toml",
        text: Some("machines = 500\nruns = 1\n"),
        names: &["key `experiments[0].machines` = 500", "at most 100 with the real runtime"],
    },
    Case {
        file: "name-analysis.toml",
        text: Some("[[experiments]]\nname = \"analysis\"\n"),
        names: &["key `experiments[0].name` = \"analysis\"", "reserved"],
    },
    Case {
        file: "name-config.toml",
        text: Some("[[experiments]]\nname = \"config.toml\"\n"),
        names: &["key `experiments[0].name` = \"config.toml\"", "reserved"],
    },
    Case {
        file: "name-dots.toml",
        text: Some("[[experiments]]\nname = \"..\"\n"),
        names: &["key `experiments[0].name` = \"..\"", "not starting with '.'"],
    },
    Case {
        file: "name-twice.toml",
        text: Some("[[experiments]]\nname = \"a\"\n[[experiments]]\nname = \"a\"\n"),
        names: &["key `experiments[1].name` = \"a\"", "used twice"],
    },
    Case {
        file: "epoch-past-9999.toml",
        text: Some("[sim]\nepoch_us = 253402300799000000\n"),
        names: &["key `sim.epoch_us` = 253402300799000000", "years 0 to 9999"],
    },
    Case {
        file: "delay-huge.toml",
        text: Some("[sim.network]\nkind = \"constant\"\ndelay_us = 1e18\n"),
        names: &["key `sim.network.delay_us` = 1e18", "0..=3600000000"],
    },
];

fn clocklab(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clocklab")).args(args).output().expect("clocklab starts")
}

/// Writes the case's file (unless it is the missing one) and returns its path.
fn write_case(dir: &Path, case: &Case) -> PathBuf {
    let path = dir.join(case.file);
    if let Some(text) = case.text {
        std::fs::write(&path, text).unwrap();
    }
    path
}

/// Exit code 2, nothing on stdout, one line on stderr that names the file and
/// everything in `names`.
fn assert_one_line_error(output: &Output, path: &Path, names: &[&str], what: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{what}: exit code; stderr: {stderr}");
    assert!(stdout.is_empty(), "{what}: stdout is not empty: {stdout}");
    assert!(stderr.ends_with('\n') && stderr.lines().count() == 1, "{what}: not one line: {stderr:?}");
    assert!(stderr.contains(&path.display().to_string()), "{what}: does not name the file: {stderr}");
    for name in names {
        assert!(stderr.contains(name), "{what}: does not say {name:?}: {stderr}");
    }
}

#[test]
fn run_with_a_bad_configuration_starts_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let path = write_case(dir.path(), case);
        let out = dir.path().join("results");
        let output =
            clocklab(&["run".as_ref(), "--config".as_ref(), path.as_os_str(), "--out".as_ref(), out.as_os_str()]);
        assert_one_line_error(&output, &path, case.names, &format!("run --config {}", case.file));
        assert!(!out.exists(), "run --config {}: {} was created", case.file, out.display());
    }
}

#[test]
fn config_check_reports_the_same_errors() {
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let path = write_case(dir.path(), case);
        let output = clocklab(&["config".as_ref(), "--config".as_ref(), path.as_os_str()]);
        assert_one_line_error(&output, &path, case.names, &format!("config --config {}", case.file));
    }
}

#[test]
fn the_error_line_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[[experiments]]\nname = \"a\"\nmax_clock_rat = 6\n").unwrap();
    let output = clocklab(&["config".as_ref(), "--config".as_ref(), path.as_os_str()]);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "clocklab: error: invalid configuration: {}: unknown key `experiments[0].max_clock_rat` \
             (did you mean `max_clock_rate`?)\n",
            path.display()
        )
    );
}

/// A machine whose number is not in the configuration's `ports` refuses to
/// start, with exit code 2 and a message that names the number.
#[test]
fn machine_id_outside_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three-ports.json");
    std::fs::write(&path, r#"{"host": "127.0.0.1", "ports": [5001, 5002, 5003]}"#).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["machine".as_ref(), "4".as_ref(), "--config".as_ref(), path.as_os_str()])
        .current_dir(dir.path())
        .output()
        .expect("clocklab starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains('4'), "does not name machine 4: {stderr}");
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written, ["three-ports.json"], "machine 4 wrote files");
}

#[test]
fn a_negative_number_on_the_command_line_names_its_flag() {
    for (args, flag) in [
        (&["run", "--machines", "-3"][..], "--machines"),
        (&["run", "--seed", "-1"][..], "--seed"),
        (&["study", "coverage", "--runs", "-2"][..], "--runs"),
    ] {
        let output = crate::util::run_clocklab(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        let value = args.last().unwrap();
        assert!(stderr.contains(&format!("invalid value '{value}' for '{flag}")), "{args:?}: {stderr}");
    }
}
