//! What the analysis says each fault did, on the built-in suite of faults
//! run in the simulator: the numbers, the report's sentences and the shaded
//! windows of the figures.

use std::path::Path;

use clocklab_analyze::faults::Effect;
use clocklab_config::{Config, SimSettings, plan_runs};

/// The faults suite, simulated under `root` with seed 5 (whose draws let
/// the partitioned groups come back together before the run ends, as
/// most do); returns its results folder.
fn simulate_suite(root: &Path) -> std::path::PathBuf {
    let config = Config::faults_suite();
    for plan in plan_runs(&config, 5, root) {
        clocklab_sim::run_plan(&plan, &SimSettings::default()).unwrap();
    }
    root.to_path_buf()
}

fn effect_of(summary: &clocklab_analyze::summary::Summary, experiment: &str) -> Effect {
    let experiment = summary.experiments.iter().find(|e| e.name == experiment).unwrap();
    let run = &experiment.runs[0];
    assert_eq!(run.faults.len(), 1, "{}", experiment.name);
    run.faults[0].effect.clone()
}

#[test]
fn each_fault_of_the_suite_is_measured_and_told() {
    let root = tempfile::tempdir().unwrap();
    let results = simulate_suite(root.path());
    let summary = clocklab_analyze::analyze(&results).unwrap();

    let Effect::Partition { gap_at_start, gap_at_heal, converged_after_s, .. } = effect_of(&summary, "partition-heal")
    else {
        panic!("a partition")
    };
    assert!(gap_at_heal > gap_at_start, "the groups drift apart: {gap_at_start} then {gap_at_heal}");
    assert!(converged_after_s.is_some(), "they come back together after the heal");

    let Effect::Loss { sent, lost, .. } = effect_of(&summary, "lossy-link") else { panic!("a loss") };
    assert!(lost > 0 && lost < sent, "{lost} of {sent}");

    let Effect::Crash { recovered, clock_at_restart, ticks_not_above_crash, .. } = effect_of(&summary, "crash-fresh")
    else {
        panic!("a crash")
    };
    assert_eq!((recovered, clock_at_restart), (Some(false), Some(0)));
    assert!(ticks_not_above_crash > 0, "a fresh clock breaks monotonicity");
    let Effect::Crash { recovered, clock_at_crash, clock_at_restart, ticks_not_above_crash, .. } =
        effect_of(&summary, "crash-recovered")
    else {
        panic!("a crash")
    };
    assert_eq!((recovered, clock_at_restart, ticks_not_above_crash), (Some(true), Some(clock_at_crash), 0));

    let Effect::Pause { backlog_ticks, .. } = effect_of(&summary, "long-pause") else { panic!("a pause") };
    let paused = summary.experiments.iter().find(|e| e.name == "long-pause").unwrap();
    let rate = paused.runs[0].machines.iter().find(|m| m.id == 1).unwrap().rate;
    assert_eq!(backlog_ticks, 8 * u64::from(rate), "the ticks due from 10 s to 18 s");

    let Effect::Clock { lead_before_us, lead_after_us, .. } = effect_of(&summary, "clock-step") else {
        panic!("a clock fault")
    };
    let (before, after) = (lead_before_us.unwrap(), lead_after_us.unwrap());
    assert!(after > before + 100_000.0, "the HLC stays ahead of a clock stepped back 2 s: {before} then {after}");

    // The report tells each, and shades each window.
    let out = root.path().join("analysis");
    let outputs = clocklab_analyze::report::write_outputs_with(
        &summary,
        &out,
        &clocklab_analyze::report::OutputOptions { no_diagrams: true },
    )
    .unwrap();
    let html = std::fs::read_to_string(outputs.report).unwrap();
    assert!(html.contains("id=\"faults\""), "a section on the faults");
    for told in ["the gap between the groups", "which breaks Lamport", "ran back to back", "did not go back"] {
        assert!(html.contains(told), "{told}");
    }
    // The step is said once, and HLC's figures are in milliseconds like the rest.
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    let step = text.lines().find(|l| l.contains("clock-step run_1:")).unwrap();
    assert!(step.contains("steps by -2000 ms at 15.0 s: its HLC ran ahead"), "{step}");
    assert_eq!(step.matches("-2000").count(), 1, "{step}");
    assert!(!text.contains("µs"), "{text}");
    assert!(text.contains("l − pt was at most") && text.contains(" ms (mean "), "{text}");
    let figure = std::fs::read_to_string(out.join("figures/run_partition-heal_run_1.svg")).unwrap();
    assert!(figure.contains("partition, 10–20 s"), "the window's legend: {figure}");
    let figure = std::fs::read_to_string(out.join("figures/run_crash-fresh_run_1.svg")).unwrap();
    assert!(figure.contains("crash of machine 2, 10–15"), "the window's legend: {figure}");
}
