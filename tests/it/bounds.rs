//! Values at and past the bounds of every setting, from the command line:
//! one clear line and exit code 2 before anything is written, never a panic,
//! a hang or a full disk; and the smaller promises of the command line.

use std::path::Path;

use crate::util::run_clocklab;

/// Exit code 2, one line on stderr naming everything in `names`, no panic,
/// and nothing under `out`.
fn assert_refused(args: &[&str], out: &Path, names: &[&str]) {
    let output = run_clocklab(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.lines().count() == 1 && !stderr.contains("panicked"), "{args:?}: {stderr:?}");
    for name in names {
        assert!(stderr.contains(name), "{args:?}: does not say {name:?}: {stderr}");
    }
    assert!(!out.exists(), "{args:?}: {} was created", out.display());
}

#[test]
fn values_past_their_bounds_on_the_command_line_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let out_arg = out.to_str().unwrap();
    let run = |extra: &[&'static str]| -> Vec<&str> { [&["run", "--out", out_arg][..], extra].concat() };
    for (args, names) in [
        (run(&["--duration", "1e300"]), &["duration` = 1e300", "0.001..=31536000"][..]),
        (run(&["--duration", "1e14"]), &["duration` = 1e14", "0.001..=31536000"]),
        (run(&["--runtime", "sim", "--duration", "1e300"]), &["duration` = 1e300"]),
        (run(&["--runs", "4294967295"]), &["runs` = 4294967295", "1..=10000"]),
        (run(&["--machines", "50000"]), &["machines` = 50000", "2..=20000"]),
        (run(&["--machines", "101"]), &["machines` = 101", "at most 100 with the real runtime"]),
        (run(&["--max-clock-rate", "0"]), &["max_clock_rate` = 0"]),
        (run(&["--max-event-num", "2"]), &["max_event_num` = 2", "at least 3"]),
        (
            [&["calibrate", "--out", out_arg][..], &["--duration", "1e300"]].concat(),
            &["duration` = 1e300", "0.001..=31536000"],
        ),
        (vec!["bench", "--duration", "1e300"], &["duration` = 1e300"]),
        (vec!["bench", "--machines", "50000"], &["machines` = 50000"]),
    ] {
        assert_refused(&args, &out, names);
    }
    // The machine's own timeout flag.
    let config = crate::util::write_config(dir.path(), &crate::util::free_ports(2), 1.0, "");
    let config_arg = config.to_str().unwrap();
    let logs = dir.path().join("logs");
    let logs_arg = logs.to_str().unwrap();
    for timeout in ["1e30", "0.001", "nan"] {
        let args = ["machine", "1", "--config", config_arg, "--out", logs_arg, "--connect-timeout", timeout];
        assert_refused(&args, &logs, &["connect_timeout", "0.1..=3600"]);
    }
}

#[test]
fn a_run_larger_than_the_limit_is_refused_with_its_estimate_unless_yes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let out_arg = out.to_str().unwrap();
    // A year at up to a million ticks a second: petabytes.
    let huge = ["--runtime", "sim", "--duration", "31536000", "--max-clock-rate", "1000000", "--runs", "1"];
    let args = [&["run", "--out", out_arg][..], &huge].concat();
    assert_refused(
        &args,
        &out,
        &["this would write about", "PB of logs", "lines", "more than the limit of 10.0 GB", "--yes"],
    );
    // So is a machine started by hand.
    let config = crate::util::write_config(
        dir.path(),
        &crate::util::free_ports(2),
        31_536_000.0,
        r#", "max_clock_rate": 1000000"#,
    );
    let logs = dir.path().join("logs");
    let args = ["machine", "1", "--config", config.to_str().unwrap(), "--out", logs.to_str().unwrap(), "--seed", "1"];
    assert_refused(&args, &logs, &["this would write about", "--yes"]);
    // A small run says its estimate and goes.
    let output = run_clocklab(&["run", "--out", out_arg, "--runtime", "sim", "--runs", "1", "--no-analyze"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(" of logs)"), "{stdout}");
}

#[test]
fn bench_never_prints_an_infinite_speed() {
    for duration in ["0.001", "1"] {
        let output = run_clocklab(&["bench", "--duration", duration]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(!stdout.contains("inf ") && !stdout.contains("NaN"), "{stdout}");
    }
    // A run this short is over in microseconds, too short to measure,
    // unless the machine is busy enough to stretch it past a millisecond:
    // either way a finite figure or the reason there is none (the unit
    // tests of `speed` hold the rule itself).
    let output = run_clocklab(&["bench", "--duration", "0.001"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("too short to measure") || stdout.contains(" million ticks/s"), "{stdout}");
    // The simulator's bounds, not the real runtime's: more than 100 machines.
    let output = run_clocklab(&["bench", "--machines", "300", "--duration", "0.5", "--max-event-num", "1000"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn analyse_is_analyze_and_the_help_says_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let output = run_clocklab(&[
        "run",
        "--runtime",
        "sim",
        "--experiment",
        "baseline",
        "--runs",
        "1",
        "--duration",
        "5",
        "--no-analyze",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let output = run_clocklab(&["analyse", results.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(results.join("analysis").join("report.html").exists());
    let help = String::from_utf8_lossy(&run_clocklab(&["--help"]).stdout).into_owned();
    assert!(help.contains("Analyze a results") && !help.contains("Analyse"), "{help}");
}

#[test]
fn print_default_explains_every_key_and_reads_back() {
    let output = run_clocklab(&["config", "--print-default"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success());
    for doc in clocklab_config::key_docs() {
        assert!(text.contains(&format!("# {}: ", doc.key)), "{} is not explained", doc.key);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("default.toml");
    std::fs::write(&path, &text).unwrap();
    let output = run_clocklab(&["config", "--config", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The README's configuration table lists every key the configuration
/// takes, with its range.
#[test]
fn the_readme_lists_every_key_with_its_range() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table: Vec<&str> = readme.lines().filter(|line| line.starts_with("| `")).collect();
    for doc in clocklab_config::key_docs() {
        let row = table
            .iter()
            .find(|row| row.starts_with(&format!("| `{}`", doc.key)))
            .unwrap_or_else(|| panic!("README: no row for `{}`", doc.key));
        assert_eq!(row.matches(" | ").count(), 3, "README: the row of `{}` has no range column: {row}", doc.key);
    }
}

#[test]
fn config_init_writes_a_private_file_with_a_fresh_token() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<String> = ["a.toml", "b.json"]
        .iter()
        .map(|name| {
            let path = dir.path().join(name);
            let output = run_clocklab(&["config", "--init", path.to_str().unwrap()]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            let config = clocklab_config::Config::load(&path).unwrap();
            assert_eq!(config.ports, [5001, 5002, 5003]);
            config.token.unwrap()
        })
        .collect();
    assert_ne!(tokens[0], tokens[1], "every file gets its own token");
    assert!(tokens.iter().all(|t| clocklab_model::wire::token_from_hex(t).is_some()));
    // The token never leaves the file: `config --config` does not print it.
    let output = run_clocklab(&["config", "--config", dir.path().join("a.toml").to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&tokens[0]));
    // An existing file is never overwritten.
    let output = run_clocklab(&["config", "--init", dir.path().join("a.toml").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
}
