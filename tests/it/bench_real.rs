//! `clocklab bench --runtime real`: bad settings refused before anything
//! runs, and a small real comparison measured and reported.

use crate::util::run_clocklab;

#[test]
fn bad_settings_of_a_real_bench_are_refused_with_exit_code_2() {
    let cases: [(&[&str], &str); 6] = [
        (&["--sizes", "1"], "--sizes"),
        (&["--seconds", "0"], "--seconds 0"),
        (&["--repeat", "0"], "--repeat 0"),
        (&["--baseline", "/nonexistent/clocklab"], "/nonexistent/clocklab"),
        (&["--sizes", "3", "--rates-up-to", "0"], "max_clock_rate"),
        (&["--sizes", "3,101"], "machines"),
    ];
    for (args, named) in cases {
        let mut all = vec!["bench", "--runtime", "real"];
        all.extend_from_slice(args);
        let output = run_clocklab(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} should name {named}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing runs");
    }
}

#[test]
fn a_real_bench_measures_both_builds_on_the_same_plan() {
    let this = env!("CARGO_BIN_EXE_clocklab");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("bench");
    let output = run_clocklab(&[
        "bench",
        "--runtime",
        "real",
        "--sizes",
        "2",
        "--seconds",
        "0.5",
        "--rates-up-to",
        "20",
        "--baseline",
        this,
        "--logs",
        logs.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<&str> = stdout.lines().filter(|line| line.contains("exact tick counts")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in &rows {
        assert!(row.contains("(2 of 2 exact tick counts)"), "{row}");
        let fields: Vec<&str> = row.split_whitespace().collect();
        // build, n, ticks, messages, user s, sys s: the same plan, and some CPU time.
        assert_eq!(fields[1], "2", "{row}");
        let ticks: u64 = fields[2].parse().unwrap();
        assert!(ticks >= 2, "{row}");
        let cpu: f64 = fields[4].parse::<f64>().unwrap() + fields[5].parse::<f64>().unwrap();
        assert!(cpu > 0.0, "{row}");
    }
    assert_eq!(rows[0].split_whitespace().nth(2), rows[1].split_whitespace().nth(2), "the same ticks: {stdout}");
    assert!(stdout.contains("2 machines: this build's CPU time over the baseline's, per tick: "), "{stdout}");
    // The runs' folders are kept with `--logs`.
    assert!(logs.join("this-2-1").is_dir() && logs.join("baseline-2-1").is_dir());
}
