//! The analysis of damaged runs: every kind of damage is reported, none
//! stops the analysis, and none changes what is said of the sound runs.

use std::path::{Path, PathBuf};

use clocklab_analyze::Summary;
use clocklab_config::{Config, SimSettings, layout, plan_runs};

/// An experiment of two simulated runs of 3 machines x 5 s under `root`.
fn two_runs(root: &Path) -> Vec<PathBuf> {
    let mut config = Config::default();
    config.experiments.truncate(1);
    config.experiments[0].runs = 2;
    config.experiments[0].duration = 5.0;
    plan_runs(&config, 9, root)
        .into_iter()
        .map(|plan| {
            clocklab_sim::run_plan(&plan, &SimSettings::default()).unwrap();
            plan.dir
        })
        .collect()
}

fn analyse(root: &Path) -> Summary {
    clocklab_analyze::analyze(root).unwrap()
}

/// Everything said of the file problems and run problems, in one text.
fn said(summary: &Summary) -> String {
    let mut text = String::new();
    for diagnostic in &summary.diagnostics {
        text.push_str(&format!("{diagnostic:?}\n"));
    }
    for run in summary.experiments.iter().flat_map(|e| &e.runs) {
        text.push_str(&format!(
            "{:?} {:?}\n",
            run.problems,
            run.machines.iter().map(|m| &m.problems).collect::<Vec<_>>()
        ));
    }
    text
}

/// Damages run 2 with `damage`, then checks the report of it and that run 1
/// (sound) is analysed exactly as without the damage.
fn check(damage: impl Fn(&Path), want: &str, run_2_sound: bool) {
    let clean = tempfile::tempdir().unwrap();
    two_runs(clean.path());
    let damaged = tempfile::tempdir().unwrap();
    let dirs = two_runs(damaged.path());
    damage(&dirs[1]);
    let (before, after) = (analyse(clean.path()), analyse(damaged.path()));
    let said = said(&after);
    assert!(said.contains(want), "{want:?} not reported:\n{said}");
    let (run_1_before, run_1_after) = (&before.experiments[0].runs[0], &after.experiments[0].runs[0]);
    assert_eq!(run_1_before.machines, run_1_after.machines, "the sound run is analysed as before");
    let run_2 = &after.experiments[0].runs[1];
    assert_eq!(run_2.is_sound(), run_2_sound, "{:?}", run_2.info);
    let excluded = &after.experiments[0].excluded;
    assert_eq!(excluded.len(), usize::from(!run_2_sound), "{excluded:?}");
    // The terminal's table says what is wrong, and a run left out says why.
    let table = clocklab_analyze::tables::render_table(&after);
    assert!(table.contains(want), "{want:?} not in the table:\n{table}");
    if !run_2_sound {
        assert!(excluded[0].1.contains(want), "{want:?} not the reason run_2 is left out: {excluded:?}");
        // The aggregates are those of the sound run alone.
        let jump = |s: &Summary| s.experiments[0].metric("jump_mean").map(|m| (m.n, m.mean));
        assert_eq!(jump(&after), Some((1, clocklab_analyze::summary::run_metric(run_1_before, "jump_mean"))));
    }
}

fn log(dir: &Path, id: u32) -> PathBuf {
    layout::log_path(dir, id, clocklab_log::LogFormat::Text)
}

fn edit(path: &Path, change: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, change(text)).unwrap();
}

#[test]
fn a_garbage_or_empty_manifest_is_reported() {
    check(|dir| std::fs::write(layout::manifest_path(dir), "{ garbage").unwrap(), "1:3: malformed JSON", true);
    check(|dir| std::fs::write(layout::manifest_path(dir), "").unwrap(), "1:1: malformed JSON", true);
}

#[test]
fn impossible_durations_are_reported_and_the_logs_used() {
    for duration in ["0.0", "-5.0", "1e308"] {
        check(
            |dir| {
                edit(&layout::manifest_path(dir), |text| {
                    text.replace("\"duration\": 5.0", &format!("\"duration\": {duration}"))
                })
            },
            "manifest.json: key `experiment.duration` = ",
            true,
        );
    }
}

#[test]
fn a_log_without_stopped_is_flagged_and_the_run_left_out() {
    check(
        |dir| {
            edit(&log(dir, 2), |text| {
                text.lines().filter(|l| !l.contains("Stopped")).map(|l| format!("{l}\n")).collect()
            })
        },
        "ends without Stopped",
        false,
    );
}

#[test]
fn an_empty_or_unreadable_log_of_a_listed_machine_leaves_the_run_out() {
    check(|dir| std::fs::write(log(dir, 2), "").unwrap(), "could be read", false);
    let garbage = "garbage\nmore garbage\n";
    check(|dir| std::fs::write(log(dir, 2), garbage).unwrap(), "could be read", false);
}

#[test]
fn a_clock_that_goes_backwards_is_flagged() {
    check(
        |dir| {
            edit(&log(dir, 3), |text| {
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                let idx = lines.iter().rposition(|l| l.contains("Internal event")).unwrap();
                let clock = lines[idx].split("Logical Clock: ").nth(1).unwrap().split(' ').next().unwrap().to_string();
                lines[idx] = lines[idx].replacen(&format!("Logical Clock: {clock}"), "Logical Clock: 1", 1);
                lines.iter().map(|l| format!("{l}\n")).collect()
            })
        },
        "where Lamport's rule gives",
        false,
    );
}

#[test]
fn a_padded_duplicate_and_a_stray_log_are_ignored() {
    check(
        |dir| std::fs::write(dir.join("machine_01.log"), "1> Event: Internal event | junk\n").unwrap(),
        "machine_01.log",
        true,
    );
    check(
        |dir| std::fs::write(dir.join("machine_9.log"), "\0\0\0 not a log\n").unwrap(),
        "not one of the run's machines",
        true,
    );
}

#[test]
fn a_stray_log_without_a_manifest_is_no_phantom_machine() {
    check(
        |dir| {
            std::fs::remove_file(layout::manifest_path(dir)).unwrap();
            std::fs::write(dir.join("machine_9.log"), "garbage\nmore garbage\n").unwrap();
        },
        "no line of it could be read",
        true,
    );
}

#[test]
fn a_run_folder_linked_twice_is_analysed_once() {
    let root = tempfile::tempdir().unwrap();
    let dirs = two_runs(root.path());
    std::os::unix::fs::symlink(&dirs[0], dirs[0].with_file_name("run_3")).unwrap();
    let summary = analyse(root.path());
    assert_eq!(summary.experiments[0].runs.len(), 2);
}
