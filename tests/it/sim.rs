//! The simulator: determinism (same seed, same bytes), a sweep of seeds and
//! settings through the log check, a pinned regression run, and the binary
//! end to end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clocklab_config::{Config, DelayDistribution, LogFormats, RunPlan, SimSettings, layout, plan_runs};
use clocklab_log::LogFormat;

/// One plan: `machines` machines for `duration_s`, both log formats.
fn plan(seed: u64, machines: u32, max_clock_rate: u32, max_event_num: u32, duration_s: f64, out: &Path) -> RunPlan {
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.name = format!("m{machines}-r{max_clock_rate}-e{max_event_num}");
    experiment.machines = machines;
    experiment.max_clock_rate = max_clock_rate;
    experiment.max_event_num = max_event_num;
    experiment.duration = duration_s;
    experiment.runs = 1;
    config.log_format = LogFormats::Both;
    config.validate("test").unwrap();
    plan_runs(&config, seed, out).remove(0)
}

/// Every file under `dir`, by path relative to it.
fn files_below(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let relative = |path: &Path| path.strip_prefix(dir).unwrap().to_path_buf();
    crate::util::files_under(dir).into_iter().map(|path| (relative(&path), std::fs::read(&path).unwrap())).collect()
}

fn assert_same_files(a: &Path, b: &Path) {
    let (a_files, b_files) = (files_below(a), files_below(b));
    assert!(!a_files.is_empty(), "{} is empty", a.display());
    assert_eq!(a_files.keys().collect::<Vec<_>>(), b_files.keys().collect::<Vec<_>>());
    for (name, bytes) in &a_files {
        assert!(bytes == &b_files[name], "{} differs between {} and {}", name.display(), a.display(), b.display());
    }
}

fn settings(network: DelayDistribution) -> SimSettings {
    SimSettings { network, ..SimSettings::default() }
}

#[test]
fn same_seed_gives_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = SimSettings::default();
    let first = plan(42, 3, 6, 10, 30.0, &tmp.path().join("a"));
    let second = plan(42, 3, 6, 10, 30.0, &tmp.path().join("b"));
    let manifest_a = clocklab_sim::run_plan(&first, &settings).unwrap();
    let manifest_b = clocklab_sim::run_plan(&second, &settings).unwrap();
    assert_eq!(manifest_a, manifest_b);
    assert_eq!(files_below(&first.dir).len(), 3 * 2 + 1, "three machines, two formats, a manifest");
    assert_same_files(&first.dir, &second.dir);
}

#[test]
fn different_seeds_give_different_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = SimSettings::default();
    let mut logs = Vec::new();
    for seed in [1, 2, 3] {
        let plan = plan(seed, 3, 6, 10, 30.0, &tmp.path().join(seed.to_string()));
        clocklab_sim::run_plan(&plan, &settings).unwrap();
        logs.push(std::fs::read(layout::log_path(&plan.dir, 1, LogFormat::Text)).unwrap());
    }
    assert_ne!(logs[0], logs[1]);
    assert_ne!(logs[1], logs[2]);
    assert_ne!(logs[0], logs[2]);
}

#[test]
fn the_network_seed_changes_delays_only() {
    // Same machines and plan, another delay distribution: the same rates,
    // different timestamps.
    let tmp = tempfile::tempdir().unwrap();
    let a = plan(9, 3, 6, 10, 10.0, &tmp.path().join("a"));
    let b = plan(9, 3, 6, 10, 10.0, &tmp.path().join("b"));
    let ma = clocklab_sim::run_plan(&a, &settings(DelayDistribution::Constant { delay_us: 10.0 })).unwrap();
    let mb = clocklab_sim::run_plan(&b, &settings(DelayDistribution::Constant { delay_us: 900.0 })).unwrap();
    assert_eq!(
        ma.machines.iter().map(|m| m.rate).collect::<Vec<_>>(),
        mb.machines.iter().map(|m| m.rate).collect::<Vec<_>>()
    );
    assert_ne!(ma.extra["network"], mb.extra["network"]);
}

/// The sweep's settings: machines, max_clock_rate, max_event_num, network.
fn sweep_cases() -> Vec<(u32, u32, u32, DelayDistribution)> {
    vec![
        (2, 6, 10, DelayDistribution::Constant { delay_us: 50.0 }),
        (3, 6, 10, DelayDistribution::default()),
        (3, 3, 5, DelayDistribution::Uniform { min_us: 10.0, max_us: 200.0 }),
        (5, 6, 3, DelayDistribution::Exponential { min_us: 100.0, mean_us: 5_000.0 }),
        // Delays longer than tick intervals: messages overtake each other in
        // the draw, the per-pair order must still hold, and many are still
        // on the wire at the deadline.
        (3, 6, 4, DelayDistribution::Uniform { min_us: 0.0, max_us: 2_000_000.0 }),
        // Zero delay: a message can arrive at the instant it is sent.
        (4, 2, 3, DelayDistribution::Constant { delay_us: 0.0 }),
    ]
}

#[test]
fn seed_sweep_passes_the_log_check() {
    let tmp = tempfile::tempdir().unwrap();
    let mut n_unprocessed = 0;
    for (case_idx, (machines, max_clock_rate, max_event_num, network)) in sweep_cases().into_iter().enumerate() {
        for seed in 0..20u64 {
            let out = tmp.path().join(format!("case{case_idx}-seed{seed}"));
            let plan = plan(seed, machines, max_clock_rate, max_event_num, 15.0, &out);
            let what = format!("case {case_idx} ({machines} machines, {network:?}), seed {seed}");
            let manifest = clocklab_sim::run_plan(&plan, &settings(network)).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(manifest.runtime, clocklab_config::Runtime::Sim, "{what}");

            let text = layout::read_run(&plan.dir, LogFormat::Text).unwrap();
            for (id, diagnostics) in &text.diagnostics {
                assert!(
                    diagnostics.n_skipped == 0 && !diagnostics.truncated_last_line,
                    "{what}: machine {id}: {diagnostics:?}"
                );
            }
            let report = text.check(0);
            assert!(report.is_ok(), "{what}: {:#?}", report.violations);
            assert_eq!(report.sent, report.received, "{what}");
            for machine in &plan.machines {
                let want = clocklab_model::schedule::n_ticks(machine.rate, 15_000_000);
                assert_eq!(report.ticks[&machine.id], want, "{what}: machine {}", machine.id);
            }
            n_unprocessed += text
                .logs
                .values()
                .flatten()
                .filter(|r| matches!(r.event, clocklab_log::Event::Unprocessed { .. }))
                .count();

            let jsonl = layout::read_run(&plan.dir, LogFormat::Jsonl).unwrap();
            assert_eq!(jsonl.logs, text.logs, "{what}: the JSON Lines give other records than the text");
        }
    }
    assert!(n_unprocessed > 0, "the sweep never left a message unprocessed, so the end of a run went untested");
}

/// FNV-1a over every file's relative path and bytes, in path order, with the
/// manifest's `clocklab_version` blanked so that a release does not move it.
fn hash_files(dir: &Path) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (name, mut bytes) in files_below(dir) {
        if name == Path::new(layout::MANIFEST_FILE) {
            let mut manifest = clocklab_config::RunManifest::from_json(std::str::from_utf8(&bytes).unwrap()).unwrap();
            manifest.clocklab_version.clear();
            bytes = manifest.to_json().into_bytes();
        }
        for &byte in name.to_string_lossy().as_bytes().iter().chain(&[0]).chain(&bytes) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[test]
fn known_seed_regression() {
    // A pinned run: if this fails, a change altered what a seed means (the
    // model's rules, the seed tree, the network, the event order or the log
    // format). Update the pins only for a deliberate change, and say so.
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(2026, 3, 6, 10, 5.0, &tmp.path().join("run"));
    clocklab_sim::run_plan(&plan, &SimSettings::default()).unwrap();
    let text = std::fs::read_to_string(layout::log_path(&plan.dir, 1, LogFormat::Text)).unwrap();
    let head: Vec<&str> = text.lines().take(PINNED_HEAD.len()).collect();
    assert_eq!(head, PINNED_HEAD, "machine_1.log begins differently:\n{text}");
    let hash = hash_files(&plan.dir);
    assert_eq!(hash, PINNED_HASH, "the run's files hash to {hash:#018x}; machine_1.log:\n{text}");
}

const PINNED_HEAD: [&str; 6] = [
    "1> Event: Initialized on 127.0.0.1:10001 with clock rate 3 | System Time: 2026-01-01 00:00:00 | Logical Clock: 0 | Queue Length: 0 | Timestamp: 2026-01-01T00:00:00.000000Z",
    "1> Event: Connected to machine 2 at 127.0.0.1:10002 | System Time: 2026-01-01 00:00:00 | Logical Clock: 0 | Queue Length: 0 | Timestamp: 2026-01-01T00:00:00.000000Z",
    "1> Event: Connected to machine 3 at 127.0.0.1:10003 | System Time: 2026-01-01 00:00:00 | Logical Clock: 0 | Queue Length: 0 | Timestamp: 2026-01-01T00:00:00.000000Z",
    "1> Event: Internal event | System Time: 2026-01-01 00:00:00 | Logical Clock: 1 | Queue Length: 0 | Timestamp: 2026-01-01T00:00:00.000000Z",
    "1> Event: Processed message from machine 2 with clock 2 | System Time: 2026-01-01 00:00:00 | Logical Clock: 3 | Queue Length: 1 | Timestamp: 2026-01-01T00:00:00.333333Z",
    "1> Event: Processed message from machine 2 with clock 4 | System Time: 2026-01-01 00:00:00 | Logical Clock: 5 | Queue Length: 1 | Timestamp: 2026-01-01T00:00:00.666666Z",
];
const PINNED_HASH: u64 = 0x96c3_8b28_dae7_7b76;

#[test]
fn an_impossible_plan_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bad = plan(1, 3, 6, 10, 5.0, &tmp.path().join("run"));
    bad.machines[1].rate = bad.machines[1].rate % 6 + 1;
    let error = clocklab_sim::run_plan(&bad, &SimSettings::default()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("machine 2"), "{error}");
    assert!(!bad.dir.exists());
}

/// The one results folder `clocklab run` made under `out`.
fn results_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

#[test]
fn binary_sim_runs_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for name in ["first", "second"] {
        let out = tmp.path().join(name);
        let output = Command::new(env!("CARGO_BIN_EXE_clocklab"))
            .args([
                "run",
                "--runtime",
                "sim",
                "--duration",
                "2",
                "--runs",
                "2",
                "--seed",
                "42",
                "--no-analyze",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        results.push(results_dir(&out));
    }
    assert_same_files(&results[0], &results[1]);
    // Four experiments x two runs, each with its manifest, all passing the check.
    let config = Config::default();
    for experiment in &config.experiments {
        for run_idx in 1..=2 {
            let dir = layout::run_dir(&results[0], &experiment.name, run_idx);
            let run = layout::read_run(&dir, LogFormat::Text).unwrap();
            assert_eq!(run.manifest.runtime, clocklab_config::Runtime::Sim);
            let report = run.check(0);
            assert!(report.is_ok(), "{}: {:#?}", dir.display(), report.violations);
        }
    }
}

#[test]
fn the_builtin_suite_passes_the_log_check() {
    // The whole built-in suite (4 experiments x 5 runs x 60 s) as
    // `clocklab run --runtime sim` makes it, every run checked exactly.
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::default();
    let plans = plan_runs(&config, 42, tmp.path());
    assert_eq!(plans.len(), 20);
    for plan in &plans {
        let manifest = clocklab_sim::run_plan(plan, &config.sim).unwrap();
        assert_eq!(manifest.experiment.duration, 60.0);
        let run = layout::read_run(&plan.dir, LogFormat::Text).unwrap();
        let report = run.check(0);
        assert!(report.is_ok(), "{}: {:#?}", plan.dir.display(), report.violations);
    }
}

#[test]
fn a_full_disk_leaves_every_simulated_log_whole_and_names_the_file() {
    // Files may not grow past a limit (in blocks of 512 bytes), as on a disk
    // that is full: writes past it fail ("File too large") instead of
    // killing. A minute's logs are written at the end of the run; an hour's
    // fill their buffers and go through the writer thread as the run goes.
    for (blocks, duration) in [(16, "60"), (400, "3600")] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("results");
        let output = Command::new("sh")
            .args(["-c", &format!("ulimit -f {blocks} && trap '' XFSZ && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_clocklab"))
            .args(["run", "--runtime", "sim", "--experiment", "baseline", "--runs", "1", "--duration", duration])
            .args(["--seed", "1", "--no-analyze", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        let run_dir = layout::run_dir(&results_dir(&out), "baseline", 1);
        let named = (1..=3).filter(|&id| {
            let log = layout::log_path(&run_dir, id, LogFormat::Text);
            stderr.contains(&format!("{}: File too large (os error 27)", log.display()))
        });
        assert_eq!(named.count(), 1, "one file and the OS error: {stderr}");
        assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
        for id in 1..=3 {
            let path = layout::log_path(&run_dir, id, LogFormat::Text);
            let text = std::fs::read(&path).unwrap();
            assert!(text.len() <= blocks * 512, "machine {id}: {} bytes", text.len());
            assert!(text.ends_with(b"\n"), "machine {id}: the log ends with a whole line");
            let mut reader = clocklab_log::LogReader::new(&text[..]);
            let kept = reader.by_ref().count();
            assert!(kept > 10 * blocks / 16, "machine {id}: what fitted was kept ({kept} lines)");
            assert_eq!(reader.diagnostics().n_skipped, 0, "machine {id}");
            assert!(!reader.diagnostics().truncated_last_line, "machine {id}: no line cut mid-line");
        }
    }
}
