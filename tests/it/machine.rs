//! `clocklab machine`: three real processes on loopback, started by hand as in
//! the classic exercise.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clocklab_log::LogFormat;

use crate::util::{
    Processes, assert_sound, check_text_lines, clocklab, free_ports, logged_rate, read_logs, run_clocklab,
};

/// Writes a configuration with `ports` and returns its path.
fn write_config(dir: &Path, ports: &[u16], duration_s: f64, connect_timeout_s: f64) -> std::path::PathBuf {
    let path = dir.join("config.json");
    let n = ports.len();
    let text = format!(
        r#"{{"host": "127.0.0.1", "ports": {ports:?}, "machines": {n}, "max_clock_rate": 6, "max_event_num": 5, "duration": {duration_s}, "connect_timeout": {connect_timeout_s}}}"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts one standalone machine per port and waits for all of them.
fn start_machines(config: &Path, out: &Path, n: u32, extra: &[&str]) -> Vec<std::process::Output> {
    let children = (1..=n)
        .map(|id| {
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
                .expect("clocklab starts")
        })
        .collect();
    Processes(children).wait_all(Duration::from_secs(60))
}

#[test]
fn three_standalone_machines_keep_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let duration_s = 3.0;
    // A port found free may be taken again before the machine binds it; that
    // rare race is retried with fresh ports.
    let mut attempt = 0;
    let out = loop {
        attempt += 1;
        let out = dir.path().join(format!("logs-{attempt}"));
        let config = write_config(dir.path(), &free_ports(3), duration_s, 20.0);
        let outputs = start_machines(&config, &out, 3, &["--seed", "5", "--log-format", "both"]);
        let stderr: Vec<String> = outputs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
        if outputs.iter().all(|o| o.status.success()) {
            break out;
        }
        assert!(attempt < 3 && stderr.iter().any(|e| e.contains("cannot listen")), "machines failed: {stderr:#?}");
    };

    for id in 1..=3 {
        check_text_lines(&out.join(format!("machine_{id}.log")), id);
    }
    let logs = read_logs(&out, 3, LogFormat::Text);
    let report = assert_sound(&logs, duration_s);
    // --seed reproduces the rate draw: machine seed = derive(seed, id).
    for (id, records) in &logs {
        let (_, rate) = clocklab_model::seed::start_machine(clocklab_model::seed::machine_seed(5, *id), 6);
        assert_eq!(logged_rate(records), rate);
        let want = clocklab_model::schedule::n_ticks(rate, 3_000_000);
        assert!(report.ticks[id].abs_diff(want) <= 1, "machine {id}: {} ticks, want {want}", report.ticks[id]);
    }
    // With max_event_num = 5 machines send on 3 draws of 5: messages must have flowed.
    assert!(report.sent.values().sum::<u64>() > 0);
    // The JSON Lines log holds the same records.
    assert_eq!(read_logs(&out, 3, LogFormat::Jsonl), logs);
    // Each wrote its manifest beside its log: the same start instant for all
    // three (agreed over their connections), its schedule and its counts.
    let (manifests, damaged) = clocklab_config::layout::read_machine_manifests(&out);
    assert!(damaged.is_empty(), "every manifest reads back and is in its ranges: {damaged:?}");
    assert_eq!(manifests.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    let started: std::collections::BTreeSet<&str> = manifests.values().map(|m| m.started_at.as_str()).collect();
    assert_eq!(started.len(), 1, "the machines started at different instants: {started:?}");
    for (id, manifest) in &manifests {
        assert_eq!(manifest.status, clocklab_config::RunStatus::Ok, "machine {id}");
        assert_eq!((manifest.n_machines, manifest.duration, manifest.rate), (3, duration_s, logged_rate(&logs[id])));
        assert_eq!(manifest.counts.ticks, report.ticks[id]);
        let start_us = parse_us(&manifest.started_at);
        assert_eq!(parse_us(&manifest.deadline_at) - start_us, 3_000_000);
        // The first tick is at the start instant or (a little) after it.
        let first_tick = logs[id].iter().find(|r| r.event.is_tick()).unwrap();
        assert!(first_tick.time_us >= start_us, "machine {id} ticked before the start");
    }
    // The analysis takes the duration from the machines' manifests, not from
    // the logs (which include the wait for the peers): every machine made
    // 100% of its ticks.
    let analysis = dir.path().join("analysis");
    let output = run_clocklab(&["analyze", out.to_str().unwrap(), "--out", analysis.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(analysis.join("summary.json")).unwrap()).unwrap();
    let run = &summary["experiments"][0]["runs"][0];
    assert_eq!(run["duration_s"], duration_s);
    assert_eq!(run["info"]["runtime"], "real");
    for machine in run["machines"].as_array().unwrap() {
        assert_eq!(machine["tick_ratio"], 1.0, "{machine}");
    }
    // The machines' manifests are the run's: named after the configuration's
    // experiment and the instant they started, not the folder; their seeds
    // shown; the checker's rules run on them.
    let started = manifests[&1].started_at.clone();
    let name = format!("started {} {} UTC", &started[..10], &started[11..19]);
    assert_eq!(summary["experiments"][0]["name"], "experiment", "{summary}");
    assert_eq!(run["name"], name.as_str());
    let report = std::fs::read_to_string(analysis.join("report.txt")).unwrap();
    assert!(report.contains("1 run of machines started by hand"), "{report}");
    let html = std::fs::read_to_string(analysis.join("report.html")).unwrap();
    for (id, manifest) in &manifests {
        assert!(html.contains(&format!("machine {id}: {}", manifest.seed)), "machine {id}'s seed");
    }
    assert!(!html.contains("logs-"), "the run is named after its folder");
    let output = run_clocklab(&["check", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(&format!("experiment/{name}: ok")), "{stdout}");
    assert!(stdout.contains("  rules    ok: "), "the rules are checked: {stdout}");
}

/// Microseconds since the Unix epoch of an RFC 3339 instant.
fn parse_us(text: &str) -> i64 {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    (parsed.unix_timestamp_nanos() / 1_000) as i64
}

/// The Python reference implementation's `config_example.json`, as it is.
const REFERENCE_CONFIG: &str = include_str!("../../crates/config/testdata/config_example.json");

#[test]
fn the_reference_configuration_file_is_read_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config_example.json");
    std::fs::write(&path, REFERENCE_CONFIG).unwrap();
    let output = run_clocklab(&["config", "--config", path.to_str().unwrap()]);
    let resolved = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        resolved.contains("host = \"localhost\"") && resolved.contains("12345,\n    54321,\n    8080,"),
        "{resolved}"
    );
    // `run` takes it as it is (and picks free ports itself).
    let out = dir.path().join("results");
    let output = run_clocklab(&[
        "run",
        "--config",
        path.to_str().unwrap(),
        "--duration",
        "1",
        "--runs",
        "1",
        "--no-analyze",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // `machine` too: the same file, with the reference's fixed ports swapped
    // for free ones (tests never take a fixed port).
    let ports = free_ports(3);
    let text = REFERENCE_CONFIG
        .replace("12345", &ports[0].to_string())
        .replace("54321", &ports[1].to_string())
        .replace("8080", &ports[2].to_string())
        .replace("\"EXPERIMENT_DURATION\": 60", "\"EXPERIMENT_DURATION\": 1");
    std::fs::write(&path, text).unwrap();
    let logs = dir.path().join("logs");
    let outputs = start_machines(&path, &logs, 3, &["--seed", "4"]);
    for output in &outputs {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let records = read_logs(&logs, 3, LogFormat::Text);
    assert!(
        matches!(&records[&1][0].event, clocklab_log::Event::Initialized { host: Some(h), .. } if h == "localhost")
    );
    assert_sound(&records, 1.0);
}

#[test]
fn an_id_outside_the_ports_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[40001, 40002, 40003], 1.0, 1.0);
    let output = run_clocklab(&["machine", "4", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("machine 4") && stderr.contains("config.json") && stderr.contains("1..=3"), "{stderr}");

    let output = run_clocklab(&["machine", "1", "--config", config.to_str().unwrap(), "--token", "xyz"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--token"));
}

#[test]
fn a_machine_with_another_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &free_ports(2), 1.0, 2.0);
    let out = dir.path().join("logs");
    let children = [("1", "11"), ("2", "22")]
        .map(|(id, byte)| {
            clocklab()
                .args(["machine", id, "--config"])
                .arg(&config)
                .arg("--out")
                .arg(&out)
                .args(["--token", &byte.repeat(16)])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .into_iter()
        .collect();
    let outputs = Processes(children).wait_all(Duration::from_secs(30));
    for output in &outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("refused"), "{stderr}");
        assert!(stderr.contains("wrong run token") || stderr.contains("another token"), "{stderr}");
    }
}

#[test]
fn an_existing_log_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &free_ports(3), 1.0, 1.0);
    let out = dir.path().join("logs");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("machine_2.log"), "keep me\n").unwrap();
    let output = run_clocklab(&["machine", "2", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read_to_string(out.join("machine_2.log")).unwrap(), "keep me\n");
}
