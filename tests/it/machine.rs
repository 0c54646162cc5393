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
