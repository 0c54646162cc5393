//! One timeline from many clocks, for real: a namespace host whose clock is
//! 2.5 s ahead (libfaketime in its launcher) beside one whose clock is this
//! computer's. The offset is measured, the run checks, and the analysis
//! gives the lags the same plan gives with both clocks in step; without the
//! correction, receives land before their sends.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::hosts::{assert_checks, manifests, results_dir};
use crate::netns::{Namespaces, can_make_namespaces};
use clocklab_config::RunStatus;

use crate::util::run_clocklab;

/// The launcher that puts a namespace host's clock 2.5 s ahead. Without
/// `--exclude-monotonic` libfaketime shifts the monotonic clock too, and
/// the timed waits of a machine would hang.
const FAKETIME: &str =
    r#"["ip", "netns", "exec", "{host}", "faketime", "-m", "--exclude-monotonic", "-f", "+2.5s", "{clocklab}"]"#;

/// The shift `FAKETIME` makes, in microseconds.
const SHIFT_US: i64 = 2_500_000;

/// The experiment's largest rate.
const MAX_RATE: f64 = 20.0;

/// One experiment of 4 machines that keeps every clock, the HLC included
/// (whose bound needs the hosts' offsets), with rates high enough that a
/// lag of 2.5 s is tens of ticks.
const CONFIG: &str = "machines = 4\nmax_clock_rate = 20\nduration = 5\nruns = 1\nseed = 7\n\
                      clocks = [\"lamport\", \"vector\", \"hlc\"]\n\n[[experiments]]\nname = \"skew\"\n";

/// Each machine's `lag_mean_ticks` in the analysis of the results under `results`.
fn lags(results: &Path) -> Vec<(u32, f64)> {
    let mut reader = csv::Reader::from_path(results.join("analysis/machines.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (machine, lag) = (column("machine"), column("lag_mean_ticks"));
    reader.records().map(|r| r.unwrap()).map(|r| (r[machine].parse().unwrap(), r[lag].parse().unwrap())).collect()
}

/// Runs the experiment on the hosts of `hosts`, with the analysis; its results folder.
fn run(hosts: &Path, config: &Path, out: &Path) -> PathBuf {
    let output = run_clocklab(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--hosts",
        hosts.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    results_dir(out)
}

#[test]
fn a_host_whose_clock_is_2_5_s_ahead_is_measured_and_its_lines_placed_on_one_timeline() {
    if !can_make_namespaces("a_host_whose_clock_is_2_5_s_ahead_is_measured_and_its_lines_placed_on_one_timeline") {
        return;
    }
    assert!(
        Command::new("faketime").arg("--version").output().is_ok_and(|out| out.status.success()),
        "`faketime` is missing: apt-get install faketime"
    );
    let hosts = Namespaces::create("skew", 3, 2);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("skew.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let in_step = hosts.hosts_file(dir.path(), |_| "\"netns\"".into());
    let in_step = std::fs::rename(&in_step, dir.path().join("in-step.toml")).map(|()| dir.path().join("in-step.toml"));
    let in_step = in_step.unwrap();
    let second = hosts.names[1].clone();
    let ahead = hosts.hosts_file(dir.path(), |name| if name == second { FAKETIME.into() } else { "\"netns\"".into() });

    let plain = run(&in_step, &config, &dir.path().join("in-step"));
    let shifted = run(&ahead, &config, &dir.path().join("ahead"));

    // The measured offsets: the shifted host's within 5 ms of 2.5 s, at the
    // start and at the end; the other's within 5 ms of 0.
    let (run_dir, manifest) = manifests(&shifted).remove(0);
    for host in &manifest.hosts {
        let want = if host.name == second { SHIFT_US } else { 0 };
        assert!((host.clock_offset_us - want).abs() <= 5_000, "{host:?}");
        assert!(host.clock_offset_end_us.is_some_and(|end| (end - want).abs() <= 5_000), "{host:?}");
        assert!((1..=5_000).contains(&host.clock_offset_uncertainty_us), "{host:?}");
    }
    // The logs keep each host's own clock: the shifted host's lines are 2.5 s ahead.
    let first_time = |id: u32| crate::util::read_log(&run_dir.join(format!("machine_{id}.log")))[0].time_us;
    let (here, there) = (manifest.hosts[0].machines[0], manifest.hosts[1].machines[0]);
    let apart = first_time(there) - first_time(here);
    assert!((2_000_000..3_000_000).contains(&apart), "{apart} µs between the hosts' first lines");

    // The checker places the lines on one timeline, the HLC's bound included.
    let checked = assert_checks(&shifted);
    assert!(checked.contains(&format!("timeline: host {second} (machines [3, 4]): its clock +2,")), "{checked}");
    assert!(!checked.contains("clock sync"), "{checked}");

    // The analysis' lags are those of the same plan with the clocks in step,
    // within the run-to-run noise: a tick that comes at the instant of
    // another machine's goes before or after it, which moves a mean lag by
    // less than a tick; and a tick that runs late (on a CPU the test
    // shares; each manifest says how late) moves it by at most the leader's
    // rate times the lateness.
    let late_s = |results: &Path| match &manifests(results)[0].1.status {
        RunStatus::Degraded { lateness_us_max, .. } => *lateness_us_max as f64 / 1e6,
        _ => 0.0,
    };
    let noise = 1.0 + MAX_RATE * late_s(&plain).max(late_s(&shifted));
    let (plain_lags, shifted_lags) = (lags(&plain), lags(&shifted));
    assert_eq!(plain_lags.len(), 4);
    for ((id, plain), (_, shifted)) in plain_lags.iter().zip(&shifted_lags) {
        assert!(
            (plain - shifted).abs() < noise,
            "machine {id}: lag {shifted} ticks, {plain} with the clocks in step (noise {noise} ticks)"
        );
    }

    // The analysis says the offsets and their uncertainty.
    let report = std::fs::read_to_string(shifted.join("analysis/report.html")).unwrap();
    let said = format!("host {second} (machines [3, 4]): clock +2");
    assert!(report.contains(&said) && report.contains("placed on the orchestrator"), "{said} not in the report");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shifted.join("analysis/summary.json")).unwrap()).unwrap();
    let hosts = summary.to_string();
    assert!(hosts.contains("\"clock_offset_uncertainty_us\"") && hosts.contains(&second), "{hosts}");

    // Without the correction (the offsets taken as 0), receives land before
    // their sends, by about the shift, and the HLC seems to run ahead of
    // every clock; what the clocks say of causality still holds.
    let uncorrected = dir.path().join("uncorrected");
    let copy = uncorrected.join("skew/run_1");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&run_dir).unwrap().flatten().filter(|e| e.path().is_file()) {
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let mut zeroed = manifest.clone();
    for host in &mut zeroed.hosts {
        (host.clock_offset_us, host.clock_offset_end_us) = (0, Some(0));
    }
    std::fs::write(copy.join("manifest.json"), serde_json::to_string_pretty(&zeroed).unwrap()).unwrap();
    let out = run_clocklab(&["check", uncorrected.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    let early = regex::Regex::new(
        r"clock sync: (\d+) of \d+ receives land before their sends on the run's timeline, by up to ([\d,]+) µs",
    )
    .unwrap();
    let caps = early.captures(&said).unwrap_or_else(|| panic!("{said}"));
    assert!(caps[1].parse::<u32>().unwrap() > 0, "{said}");
    let by_us: i64 = caps[2].replace(',', "").parse().unwrap();
    assert!((SHIFT_US - 200_000..=SHIFT_US).contains(&by_us), "{said}");
    assert!(said.contains("[hlc]"), "{said}");
    assert!(
        !said.contains("[lamport]") && !said.contains("[pairing]"),
        "a clock-sync problem is no causality violation: {said}"
    );
}
