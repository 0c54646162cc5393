//! `clocklab analyze` end to end: fixture runs made with the shared driver
//! step in virtual time, analysed by the binary, checked against the
//! generator's own counts, the report's rules, and snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clocklab_config::{Experiment, MachineOutcome, RunManifest, RunStatus, Runtime, SeedTree};
use clocklab_driver::{Driver, DriverParams};
use clocklab_log::{Event, LogFormat, LogWriter, Record};
use clocklab_model::{ClockKinds, Stamp};

/// What the generator did, counted independently of the logs.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Truth {
    ticks: u64,
    sent_ticks: u64,
    messages_sent: u64,
    processed: u64,
    internal: u64,
    unprocessed: u64,
    max_queue: u64,
    final_clock: u64,
}

/// One generated run.
struct RunSpec<'a> {
    experiment: &'a str,
    run_idx: u32,
    rates: &'a [u32],
    max_event_num: u32,
    duration_s: u32,
    seed: u64,
    formats: &'a [LogFormat],
}

/// The first seed from `base` on whose rate draw (from `1..=6`) is `rate`.
fn seed_with_rate(base: u64, rate: u32) -> u64 {
    (base..).find(|&seed| clocklab_model::seed::start_machine(seed, 6).1 == rate).expect("some seed draws every rate")
}

/// Runs `spec.rates.len()` machines for `spec.duration_s` in virtual time
/// (ticks on an absolute schedule, messages arrive 3 ms after they are sent),
/// each driven by the shared driver step, and writes their logs and manifest
/// into `run_dir`. The truth is counted from what the driver did, not from
/// the logs.
fn generate_run(run_dir: &Path, spec: &RunSpec) -> BTreeMap<u32, Truth> {
    let RunSpec { experiment, run_idx, rates, max_event_num, duration_s, seed, formats } = *spec;
    std::fs::create_dir_all(run_dir).unwrap();
    let n = rates.len() as u32;
    let t0_us: i64 = 1_795_495_393_000_000;
    let seeds: Vec<u64> =
        rates.iter().enumerate().map(|(idx, &rate)| seed_with_rate(seed + 100 * idx as u64, rate)).collect();
    let mut drivers: Vec<Driver> = (1..=n)
        .map(|id| Driver::new(DriverParams::new(id, n, 6, max_event_num, seeds[id as usize - 1]), t0_us).unwrap())
        .collect();
    let mut records: Vec<Vec<Record>> = vec![Vec::new(); n as usize];
    let mut truth: BTreeMap<u32, Truth> = (1..=n).map(|id| (id, Truth::default())).collect();
    for (idx, driver) in drivers.iter_mut().enumerate() {
        assert_eq!(driver.rate(), rates[idx]);
        records[idx].push(driver.initialized(t0_us, "127.0.0.1", Some(5001 + idx as u16)).clone());
    }
    // Every tick of every machine, in time order (ties by id).
    let mut ticks: Vec<(i64, u32)> = Vec::new();
    for id in 1..=n {
        let rate = i64::from(rates[id as usize - 1]);
        for k in 1..=rate * i64::from(duration_s) {
            ticks.push((k * 1_000_000 / rate + i64::from(id) * 100, id));
        }
    }
    ticks.sort();
    let mut in_flight: Vec<(i64, u32, u32, Stamp)> = Vec::new(); // (arrival, to, from, stamp)
    for (at_us, id) in ticks {
        in_flight.sort_by_key(|m| (m.0, m.1, m.2));
        let (arrived, later): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|m| m.0 <= at_us);
        in_flight = later;
        for (arrival, to, from, stamp) in arrived {
            drivers[to as usize - 1].deliver(t0_us + arrival, from, stamp);
        }
        let idx = id as usize - 1;
        let codec = drivers[idx].codec();
        let step = drivers[idx].tick(t0_us + at_us);
        let t = truth.get_mut(&id).unwrap();
        t.ticks += 1;
        t.max_queue = t.max_queue.max(step.record.queue_length);
        t.final_clock = step.record.logical_clock;
        match &step.record.event {
            Event::Processed { .. } => t.processed += 1,
            Event::Internal => t.internal += 1,
            Event::Sent { to } => {
                t.sent_ticks += 1;
                t.messages_sent += to.len() as u64;
                let stamp = codec.decode(step.frame.expect("a send has a frame"));
                for &peer in to {
                    in_flight.push((at_us + 3_000, peer, id, stamp.clone()));
                }
            }
            other => panic!("a tick cannot be {other:?}"),
        }
        records[idx].push(step.record.clone());
    }
    let end_us = t0_us + i64::from(duration_s) * 1_000_000 + 50_000;
    for (arrival, to, from, stamp) in in_flight {
        drivers[to as usize - 1].deliver(t0_us + arrival, from, stamp);
    }
    for id in 1..=n {
        let idx = id as usize - 1;
        let end = drivers[idx].end(end_us);
        truth.get_mut(&id).unwrap().unprocessed = end.len() as u64 - 1;
        records[idx].extend(end);
        for &format in formats {
            let file = std::fs::File::create(run_dir.join(clocklab_log::file_name(id, format))).unwrap();
            let mut writer = LogWriter::new(std::io::BufWriter::new(file), format);
            for record in &records[idx] {
                writer.write(record).unwrap();
            }
        }
    }
    let manifest = RunManifest {
        clocklab_version: "0.1.0".into(),
        runtime: Runtime::Sim,
        experiment: Experiment {
            name: experiment.into(),
            machines: n,
            max_clock_rate: 6,
            max_event_num,
            runs: 2,
            duration: f64::from(duration_s),
            seed: None,
            control: None,
            clocks: ClockKinds::LAMPORT,
            physical_clock: Default::default(),
            faults: Vec::new(),
        },
        run_idx,
        seeds: SeedTree {
            suite: seed,
            experiment: seed,
            run: seed,
            machines: (1..=n).map(|id| (id, seeds[id as usize - 1])).collect(),
        },
        machines: (1..=n)
            .map(|id| MachineOutcome {
                id,
                address: format!("127.0.0.1:{}", 5000 + id),
                rate: rates[id as usize - 1],
                seed: seeds[id as usize - 1],
                clock_offset_us: 0,
                clock_drift_ppm: 0.0,
                exit_status: None,
                logs: formats.iter().map(|&f| clocklab_log::file_name(id, f)).collect(),
            })
            .collect(),
        started_at: "2026-11-24T04:43:13.000000Z".into(),
        ended_at: "2026-11-24T04:43:23.050000Z".into(),
        status: RunStatus::Ok,
        extra: BTreeMap::new(),
        hosts: Vec::new(),
    };
    std::fs::write(clocklab_config::layout::manifest_path(run_dir), manifest.to_json()).unwrap();
    truth
}

/// A fixed results folder: two experiments of two runs each; returns the
/// generator's counts by (experiment, run, machine).
pub(crate) fn fixture(root: &Path) -> BTreeMap<(String, String, u32), Truth> {
    let mut truths = BTreeMap::new();
    let setups: [(&str, u32, [[u32; 3]; 2]); 2] =
        [("baseline", 10, [[1, 4, 6], [2, 2, 5]]), ("fewer-internal-events", 5, [[1, 3, 6], [4, 1, 2]])];
    for (e, (experiment, max_event_num, rates)) in setups.iter().enumerate() {
        for (r, rates) in rates.iter().enumerate() {
            let run_idx = r as u32 + 1;
            let dir = clocklab_config::layout::run_dir(root, experiment, run_idx);
            let formats = if r == 0 { vec![LogFormat::Text, LogFormat::Jsonl] } else { vec![LogFormat::Jsonl] };
            let seed = 1_000 * e as u64 + 10 * u64::from(run_idx);
            let spec = RunSpec {
                experiment,
                run_idx,
                rates,
                max_event_num: *max_event_num,
                duration_s: 10,
                seed,
                formats: &formats,
            };
            for (id, truth) in generate_run(&dir, &spec) {
                truths.insert((experiment.to_string(), format!("run_{run_idx}"), id), truth);
            }
        }
    }
    truths
}

fn clocklab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clocklab"))
}

fn analyze(dir: &Path, out: &Path) -> (String, String, i32) {
    let output = clocklab().arg("analyze").arg(dir).arg("--out").arg(out).output().unwrap();
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
        output.status.code().unwrap_or(-1),
    )
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn statistics_match_an_independent_recount_of_the_generated_runs() {
    let root = tempfile::tempdir().unwrap();
    let truths = fixture(root.path());
    let out = root.path().join("analysis");
    let (stdout, stderr, code) = analyze(root.path(), &out);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("report: "), "{stdout}");
    let summary = read_json(&out.join("summary.json"));
    let mut seen = 0;
    for experiment in summary["experiments"].as_array().unwrap() {
        for run in experiment["runs"].as_array().unwrap() {
            for machine in run["machines"].as_array().unwrap() {
                let key = (
                    experiment["name"].as_str().unwrap().to_string(),
                    run["name"].as_str().unwrap().to_string(),
                    machine["id"].as_u64().unwrap() as u32,
                );
                let truth = &truths[&key];
                let context = format!("{key:?}");
                assert_eq!(machine["ticks"], truth.ticks, "{context}");
                assert_eq!(machine["events"]["processed"], truth.processed, "{context}");
                assert_eq!(machine["events"]["sent"], truth.sent_ticks, "{context}");
                assert_eq!(machine["events"]["internal"], truth.internal, "{context}");
                assert_eq!(machine["messages_sent"], truth.messages_sent, "{context}");
                assert_eq!(machine["messages_unprocessed"], truth.unprocessed, "{context}");
                assert_eq!(machine["queue"]["max"], truth.max_queue, "{context}");
                assert_eq!(machine["final_clock"], truth.final_clock, "{context}");
                // Every tick's jump adds up to the final clock, starting from 0.
                let jumps: u64 = machine["jump"]["distribution"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(size, count)| size.parse::<u64>().unwrap() * count.as_u64().unwrap())
                    .sum();
                assert_eq!(jumps, truth.final_clock, "{context}");
                assert_eq!(machine["expected_ticks"], f64::from(machine["rate"].as_u64().unwrap() as u32) * 10.0);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, truths.len());
    // Messages are conserved across the whole fixture: sent = processed + unprocessed.
    let sent: u64 = truths.values().map(|t| t.messages_sent).sum();
    let received: u64 = truths.values().map(|t| t.processed + t.unprocessed).sum();
    assert_eq!(sent, received);
}

#[test]
fn report_is_one_offline_file_with_every_figure() {
    let root = tempfile::tempdir().unwrap();
    fixture(root.path());
    let out = root.path().join("elsewhere");
    let (_, stderr, code) = analyze(root.path(), &out);
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The only address is the SVG namespace, a name that nothing fetches.
    let addresses = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!addresses.contains("http://") && !addresses.contains("https://"), "the report references the network");
    assert!(!html.contains("<script") && !html.contains("<link"), "the report loads something");
    let mut svgs: Vec<PathBuf> = std::fs::read_dir(out.join("figures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    svgs.sort();
    // 2 jump histograms, 5 scatters against the rate ratio or ρ, the event
    // mix, concurrency, and one figure per run (4).
    assert_eq!(svgs.len(), 13, "{svgs:?}");
    for svg_path in &svgs {
        let svg = std::fs::read_to_string(svg_path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", svg_path.display());
        assert!(html.contains(&svg), "{} is not inline in the report", svg_path.display());
        assert!(!svg.contains("font-family=\"sans-serif\""), "{} names a font it does not embed", svg_path.display());
        let png = std::fs::read(svg_path.with_extension("png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}", svg_path.display());
    }
    assert_eq!(html.matches("<svg ").count(), svgs.len());
    // The figures' font, embedded once for every figure.
    assert_eq!(html.matches("@font-face").count(), 1);
    assert!(html.contains("font-family=\"DejaVu Sans\""));
    assert!(!root.path().join("analysis").exists(), "--out was not respected");
    for name in
        ["summary.json", "summary.txt", "machines.csv", "experiments.csv", "runs.csv", "jumps.csv", "report.txt"]
    {
        assert!(out.join(name).is_file(), "{name}");
    }
    let csv = std::fs::read_to_string(out.join("machines.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 12);
    // Experiments in the order the discovery gives, which is the configured one when there is a configuration.
    let baseline = html.find("<td class=\"l\">baseline</td>").unwrap();
    let fewer = html.find("<td class=\"l\">fewer-internal-events</td>").unwrap();
    assert!(baseline < fewer);
}

/// A thousand run folders of empty logs make a bounded analysis: no figure
/// of a run without ticks, tables cut with a note, every problem counted.
#[test]
fn empty_runs_keep_the_output_bounded() {
    let root = tempfile::tempdir().unwrap();
    for run_idx in 1..=1_000 {
        let dir = clocklab_config::layout::run_dir(root.path(), "empty", run_idx);
        std::fs::create_dir_all(&dir).unwrap();
        for id in 1..=3 {
            std::fs::write(dir.join(format!("machine_{id}.log")), "").unwrap();
        }
    }
    let out = root.path().join("analysis");
    let (stdout, stderr, code) = analyze(root.path(), &out);
    assert_eq!(code, 0, "{stderr}");
    let bytes: u64 = std::fs::read_dir(&out)
        .unwrap()
        .chain(std::fs::read_dir(out.join("figures")).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(bytes < 5_000_000, "{bytes} bytes written");
    assert_eq!(std::fs::read_dir(out.join("figures")).unwrap().count(), 0, "no run ticked: no figure");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Problems (3000)"), "every empty log is flagged");
    assert!(html.contains("1,000 runs without a single tick have no figure"));
    assert!(stdout.contains("no line of it could be read"), "the terminal says it too");
}

/// The summary with the temporary folder's path replaced, for snapshots.
fn redacted(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "[dir]")
}

#[test]
fn summary_table_and_json_snapshots() {
    let root = tempfile::tempdir().unwrap();
    fixture(root.path());
    let out = root.path().join("analysis");
    let (stdout, stderr, code) = analyze(&root.path().join("baseline"), &out);
    assert_eq!(code, 0, "{stderr}");
    let table = redacted(&stdout, root.path());
    insta::assert_snapshot!("analyze_summary_table", table);
    let json = redacted(&std::fs::read_to_string(out.join("summary.json")).unwrap(), root.path());
    insta::assert_snapshot!("analyze_summary_json", json);
    let text = redacted(&std::fs::read_to_string(out.join("report.txt")).unwrap(), root.path());
    insta::assert_snapshot!("analyze_report_text", text);
}

#[test]
fn folder_without_logs_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("baseline/run_1")).unwrap();
    let (_, stderr, code) = analyze(root.path(), &root.path().join("analysis"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no logs found in") && stderr.contains(&root.path().display().to_string()), "{stderr}");
}

#[test]
fn damaged_and_truncated_lines_are_reported_not_fatal() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("exp/run_1");
    let spec = RunSpec {
        experiment: "exp",
        run_idx: 1,
        rates: &[3, 2],
        max_event_num: 10,
        duration_s: 4,
        seed: 7,
        formats: &[LogFormat::Text],
    };
    let truths = generate_run(&run, &spec);
    let log = run.join("machine_1.log");
    let mut text = std::fs::read_to_string(&log).unwrap();
    let second = text.find('\n').unwrap() + 1;
    text.insert_str(second, "this is not a log line\n");
    text.push_str("1> Event: Internal ev");
    std::fs::write(&log, text).unwrap();
    let (stdout, stderr, code) = analyze(root.path(), &root.path().join("analysis"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 damaged line skipped, first at line 2"), "{stdout}");
    assert!(stdout.contains("last line cut off"), "{stdout}");
    let summary = read_json(&root.path().join("analysis/summary.json"));
    assert_eq!(summary["experiments"][0]["runs"][0]["machines"][0]["ticks"], truths[&1].ticks);
    assert_eq!(summary["diagnostics"][0]["skipped_lines"], 1);
}

/// The committed reference logs, when they are there: the acceptance check
/// on the fewer-internal-events experiment.
#[test]
fn reference_exp_3_shows_the_rate_1_queue_growing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/reference-logs/exp_3");
    if !dir.is_dir() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let (stdout, stderr, code) = analyze(&dir, out.path());
    assert_eq!(code, 0, "{stderr}");
    let summary = read_json(&out.path().join("summary.json"));
    let slowest_queue = summary["experiments"][0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|run| run["machines"].as_array().unwrap().iter())
        .filter(|m| m["rate"] == 1)
        .map(|m| m["queue"]["max"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(slowest_queue > 100, "{stdout}");
}

/// The README's variation (`--machines 10 --max-clock-rate 20`) sets every
/// experiment's rate: the report says what the flags replaced, and calls
/// the experiments it made identical copies rather than a variation.
#[test]
fn the_report_says_what_the_command_lines_flags_did() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    let args =
        ["run", "--runtime", "sim", "--machines", "10", "--max-clock-rate", "20", "--duration", "5", "--seed", "2"];
    let output = crate::util::run_clocklab(&[&args[..], &["--no-analyze", "--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let output = crate::util::run_clocklab(&["analyze", results.to_str().unwrap(), "--no-diagrams"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(results.join("analysis/report.txt")).unwrap();
    assert!(
        text.contains("set duration = 5, machines = 10 and max_clock_rate = 20 for every experiment, in place of their configured values: baseline had duration 60, machines 3 and max_clock_rate 6"),
        "{text}"
    );
    assert!(text.contains("small-rate-variation had duration 60, machines 3 and max_clock_rate 3"), "{text}");
    assert!(
        text.contains("So baseline and small-rate-variation ran with the same settings and differ by name only"),
        "{text}"
    );
    let line = text.lines().find(|l| l.starts_with("- small-rate-variation against baseline")).unwrap();
    assert!(line.contains("(the same settings: the two are copies of one experiment"), "{line}");
    assert!(!line.contains("max_clock_rate 3 instead of 6"), "{line}");
}

/// The names of the files under `dir` (relative to it), sorted.
fn file_names(dir: &Path) -> Vec<String> {
    crate::util::files_under(dir).iter().map(|path| path.strip_prefix(dir).unwrap().display().to_string()).collect()
}

#[test]
fn an_analysis_into_a_used_folder_leaves_nothing_of_the_one_before() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    let args = ["run", "--runtime", "sim", "--runs", "2", "--duration", "3", "--seed", "4", "--no-analyze"];
    let output = crate::util::run_clocklab(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    // One experiment of one run: a subset of the suite's figures and pages.
    let smaller = root.path().join("smaller");
    std::fs::create_dir_all(smaller.join("baseline")).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(results.join("baseline/run_1"))
        .arg(smaller.join("baseline"))
        .status()
        .unwrap();
    assert!(copied.success());
    let (used, fresh) = (root.path().join("used"), root.path().join("fresh"));
    assert_eq!(analyze(&results, &used).2, 0);
    let before = file_names(&used);
    assert!(before.iter().any(|f| f == "diagrams/both/run_2.html"), "{before:?}");
    // Files of the user's own, of the kinds the analysis writes too, are
    // not the analysis' to remove.
    std::fs::write(used.join("figures/notes.txt"), "mine").unwrap();
    std::fs::write(used.join("figures/mine.png"), "mine").unwrap();
    std::fs::write(used.join("diagrams/both/mine.html"), "mine").unwrap();
    assert_eq!(analyze(&smaller, &used).2, 0);
    assert_eq!(analyze(&smaller, &fresh).2, 0);
    let mut expected = file_names(&fresh);
    expected.extend(["figures/notes.txt", "figures/mine.png", "diagrams/both/mine.html"].map(String::from));
    expected.sort();
    assert_eq!(file_names(&used), expected, "exactly what a fresh analysis writes, and the user's file");
    // Without diagrams, no page of the analysis before is left.
    let output = clocklab().arg("analyze").arg(&smaller).arg("--out").arg(&used).arg("--no-diagrams").output().unwrap();
    assert!(output.status.success());
    assert!(!used.join("diagrams/baseline").exists(), "{:?}", file_names(&used));
    assert!(used.join("diagrams/both/mine.html").is_file(), "{:?}", file_names(&used));
}

#[test]
fn a_run_folder_copied_elsewhere_has_the_same_names_in_every_command() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    let args = ["run", "--runtime", "sim", "--experiment", "both", "--runs", "1", "--duration", "2", "--seed", "6"];
    let output = crate::util::run_clocklab(&[&args[..], &["--no-analyze", "--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let copy = root.path().join("elsewhere/my-run");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(results.join("both/run_1")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let analysis = root.path().join("analysis");
    assert_eq!(analyze(&copy, &analysis).2, 0);
    let summary = read_json(&analysis.join("summary.json"));
    assert_eq!(summary["experiments"][0]["name"], "both", "the manifest's experiment, not the folder above");
    assert_eq!(summary["experiments"][0]["runs"][0]["name"], "my-run");
    let check = crate::util::run_clocklab(&["check", copy.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("both/my-run: ok"), "{check:?}");
}
