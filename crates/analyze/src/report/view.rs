//! What the report's templates show, computed from the summary: every
//! number is formatted here, once, and the templates only lay it out.

use std::collections::BTreeSet;

use serde::Serialize;

use super::notes::{Note, Prediction};
use super::run_label;
use crate::run::RunSummary;
use crate::summary::{ExperimentSummary, METRICS, Summary, run_metric};
use crate::tables::problem_lines;
use crate::words::{count, fixed, list};

/// At most this many rows in the report's per-machine table (the CSV has all).
pub const MAX_MACHINE_ROWS: usize = 300;

/// Past this many runs, the runs that finished as planned are summarised
/// per experiment at the top instead of listed one by one.
pub const MAX_LISTED_RUNS: usize = 60;

/// At most this many problems listed (their count is always given).
pub const MAX_PROBLEMS: usize = 200;

/// The whole page.
#[derive(Debug, Serialize)]
pub struct Page {
    /// The `<title>` and heading.
    pub title: String,
    /// What was run, at the top.
    pub header: Header,
    /// The lab notes, each with its figures.
    pub notes: Vec<NoteView>,
    /// The aggregates across runs, experiments side by side.
    pub aggregate: AggregateTable,
    /// Every run with its rate draws and run-level metrics.
    pub runs: Vec<RunRow>,
    /// Note when the run table is cut.
    pub runs_note: Option<String>,
    /// The per-run figures.
    pub run_figures: Vec<FigureView>,
    /// Per machine.
    pub machines: Vec<MachineRow>,
    /// Note when the machine table is cut.
    pub machines_note: Option<String>,
    /// Damaged logs, incomplete runs, skipped files.
    pub problems: Vec<String>,
    /// How many problems there are in all.
    pub n_problems: usize,
    /// What was left out of the figures to keep the report bounded.
    pub omitted: Vec<String>,
    /// Each run's space-time diagram, experiment by experiment.
    pub diagrams: Vec<(String, Vec<crate::diagrams::DiagramLink>)>,
    /// How everything is counted, and what the simulator measured of it.
    pub method: super::method::MethodView,
}

/// The top of the report: what was run, and how every run went.
#[derive(Debug, Serialize)]
pub struct Header {
    /// Sentences: runtime, seed, date, version, clocks.
    pub sentences: Vec<String>,
    /// One row per experiment: its parameters.
    pub experiments: Vec<ExperimentRow>,
    /// The status of every run (or of the runs not `ok` and a summary per
    /// experiment, when there are many).
    pub statuses: Vec<StatusRow>,
    /// What is left out of the aggregates, in a sentence.
    pub excluded: String,
    /// Whether any experiment has a fault plan (the table then has a column for it).
    pub faulted: bool,
}

/// One experiment's parameters.
#[derive(Debug, Serialize)]
pub struct ExperimentRow {
    /// Its name.
    pub name: String,
    /// How it ran.
    pub runtime: String,
    /// Machines per run.
    pub machines: String,
    /// `max_clock_rate`.
    pub max_clock_rate: String,
    /// `max_event_num`.
    pub max_event_num: String,
    /// Seconds per run.
    pub duration_s: String,
    /// Runs found (and planned, when they differ).
    pub runs: String,
    /// Runs that enter the aggregates.
    pub sound: String,
    /// The clocks kept.
    pub clocks: String,
    /// The suite seed.
    pub seed: String,
    /// Its fault plan, in words (empty without one).
    pub faults: String,
}

/// One run's status (or a group of runs that went well).
#[derive(Debug, Serialize)]
pub struct StatusRow {
    /// The experiment.
    pub experiment: String,
    /// The run, with its rate draws.
    pub run: String,
    /// `ok`, `failed`, `interrupted`, `degraded`, `unknown`, or a damaged log.
    pub status: String,
    /// Whether it enters the aggregates.
    pub sound: bool,
    /// When it started.
    pub started: String,
    /// The run's seed.
    pub seed: String,
    /// Why it is not `ok`, and what is wrong with its logs.
    pub note: String,
}

/// A lab note with its figures.
#[derive(Debug, Serialize)]
pub struct NoteView {
    /// The note.
    #[serde(flatten)]
    pub note: Note,
    /// Its figures.
    pub figures: Vec<FigureView>,
}

/// A figure as the page shows it.
#[derive(Debug, Serialize)]
pub struct FigureView {
    /// Its file name, without extension.
    pub name: String,
    /// Its title (the alternative text).
    pub title: String,
    /// What it shows.
    pub caption: String,
    /// The SVG, inline.
    pub svg: String,
}

/// The aggregates: one row per metric, one column per experiment.
#[derive(Debug, Serialize)]
pub struct AggregateTable {
    /// The experiments, in order.
    pub experiments: Vec<String>,
    /// How many runs enter each experiment's aggregates.
    pub runs: Vec<usize>,
    /// The rows.
    pub rows: Vec<AggregateRow>,
    /// Which experiments' intervals were never measured, in a sentence.
    pub unmeasured: Option<String>,
}

/// One metric across experiments.
#[derive(Debug, Serialize)]
pub struct AggregateRow {
    /// Its name.
    pub metric: String,
    /// How a run's value is computed.
    pub meaning: String,
    /// Per experiment: mean, interval (empty without one), and the
    /// coverage the simulator measured when it misses 93–97%.
    pub cells: Vec<[String; 3]>,
}

/// One run and its run-level metrics.
#[derive(Debug, Serialize)]
pub struct RunRow {
    /// The experiment.
    pub experiment: String,
    /// The run, with its rate draws.
    pub run: String,
    /// Its status.
    pub status: String,
    /// Whether it enters the aggregates.
    pub sound: bool,
    /// The metrics, in the order of [`RUN_COLUMNS`].
    pub values: Vec<String>,
}

/// The run table's metrics: (heading, metric of [`METRICS`], decimals).
pub const RUN_COLUMNS: [(&str, &str, usize); 8] = [
    ("mean jump", "jump_mean", 2),
    ("mean lag (ticks)", "lag_mean_ticks", 2),
    ("mean lag (s)", "lag_mean_s", 2),
    ("fastest lag growth (ticks/s)", "lag_growth_max", 3),
    ("longest queue", "queue_max", 0),
    ("highest ρ", "utilisation_max", 2),
    ("internal share", "internal_share", 3),
    ("concurrent share", "concurrent_share", 3),
];

/// One machine of one run.
#[derive(Debug, Serialize)]
pub struct MachineRow {
    /// The experiment.
    pub experiment: String,
    /// The run.
    pub run: String,
    /// Whether its run enters the aggregates.
    pub sound: bool,
    /// Whether it is overloaded (ρ > 1).
    pub overloaded: bool,
    /// The cells, in the order of [`MACHINE_COLUMNS`].
    pub values: Vec<String>,
}

/// The machine table's headings, after the run.
pub const MACHINE_COLUMNS: [&str; 13] = [
    "id",
    "rate",
    "r_max / r",
    "ρ",
    "ticks / expected",
    "mean jump",
    "p99 / max jump",
    "mean lag, ticks (s)",
    "lag growth (ticks/s)",
    "mean / max queue",
    "queue growth (/s)",
    "processed / sent / internal",
    "left",
];

/// The report of `summary`, without its figures.
pub fn page(summary: &Summary, notes: Vec<NoteView>, run_figures: Vec<FigureView>, omitted: Vec<String>) -> Page {
    let n_runs: usize = summary.experiments.iter().map(|e| e.runs.len()).sum();
    let mut machines = Vec::new();
    let n_machines: usize = summary.experiments.iter().flat_map(|e| &e.runs).map(|r| r.machines.len()).sum();
    'rows: for experiment in &summary.experiments {
        for run in &experiment.runs {
            for m in &run.machines {
                if machines.len() == MAX_MACHINE_ROWS {
                    break 'rows;
                }
                machines.push(MachineRow {
                    experiment: experiment.name.clone(),
                    run: run.name.clone(),
                    sound: run.is_sound(),
                    overloaded: m.load.overloaded,
                    values: vec![
                        m.id.to_string(),
                        m.rate.to_string(),
                        fixed(m.rate_ratio, 2),
                        fixed(m.load.utilisation, 2),
                        format!("{} / {}", m.ticks, fixed(m.expected_ticks, 0)),
                        fixed(m.jump.mean, 2),
                        format!("{} / {}", m.jump.p99, m.jump.max),
                        format!("{} ({})", fixed(m.lag.mean_ticks, 2), fixed(m.lag.mean_s, 2)),
                        format!("{} ± {}", fixed(m.lag.growth.per_s, 3), fixed(m.lag.growth.se, 3)),
                        format!("{} / {}", fixed(m.queue.mean, 2), m.queue.max),
                        format!("{} ± {}", fixed(m.queue.growth.per_s, 3), fixed(m.queue.growth.se, 3)),
                        format!("{} / {} / {}", m.events.processed, m.events.sent, m.events.internal),
                        m.messages_unprocessed.to_string(),
                    ],
                });
            }
        }
    }
    let machines_note = (n_machines > machines.len()).then(|| {
        format!(
            "The first {} of {} are shown; machines.csv has them all.",
            machines.len(),
            count(n_machines as u64, "machine")
        )
    });
    let runs: Vec<RunRow> = summary
        .experiments
        .iter()
        .flat_map(|e| e.runs.iter().map(move |r| (e, r)))
        .take(MAX_MACHINE_ROWS)
        .map(|(e, r)| RunRow {
            experiment: e.name.clone(),
            run: run_label(r),
            status: status_of(r),
            sound: r.is_sound(),
            values: RUN_COLUMNS
                .iter()
                .map(|(_, metric, decimals)| {
                    let value = run_metric(r, metric);
                    if value.is_finite() { fixed(value, *decimals) } else { "—".into() }
                })
                .collect(),
        })
        .collect();
    let runs_note = (n_runs > runs.len()).then(|| {
        format!("The first {} of {} are shown; summary.json has them all.", runs.len(), count(n_runs as u64, "run"))
    });
    let (problems, n_problems) = problems(summary);
    Page {
        title: format!(
            "clocklab analysis: {}",
            list(&summary.experiments.iter().map(|e| e.name.clone()).collect::<Vec<_>>())
        ),
        header: header(summary),
        notes,
        aggregate: aggregate(summary),
        runs,
        runs_note,
        run_figures,
        machines,
        machines_note,
        problems,
        n_problems,
        omitted,
        diagrams: Vec::new(),
        method: super::method::method(summary),
    }
}

/// A run's status as the report writes it.
pub(crate) fn status_of(run: &RunSummary) -> String {
    if run.info.is_sound() && !run.is_sound() {
        format!("{} (damaged log)", run.info.status)
    } else {
        run.info.status.clone()
    }
}

fn runtime_name(runtime: &str) -> &'static str {
    match runtime {
        "sim" => "simulated",
        "real" => "real",
        "reference" => "Python reference",
        _ => "unknown",
    }
}

fn header(summary: &Summary) -> Header {
    let runs: Vec<&RunSummary> = summary.experiments.iter().flat_map(|e| &e.runs).collect();
    let mut sentences = Vec::new();
    let runtimes: BTreeSet<&str> = runs.iter().map(|r| r.info.runtime.as_str()).collect();
    // A run whose manifest is damaged is told apart: it has one, unlike
    // the runs of unknown origin.
    let damaged = runs.iter().filter(|r| r.info.manifest_damaged).count();
    for runtime in &runtimes {
        let n = runs.iter().filter(|r| r.info.runtime == *runtime && !r.info.manifest_damaged).count();
        if n == 0 {
            continue;
        }
        sentences.push(match *runtime {
            "sim" => format!(
                "{}: the deterministic simulator, in virtual time; the same seed gives the same logs, byte for byte.",
                capitalised(&count(n as u64, "simulated run"))
            ),
            "real" => format!(
                "{}: one operating-system process per machine, talking TCP on this computer, in real time.",
                capitalised(&count(n as u64, "real run"))
            ),
            "reference" => format!(
                "{} of the Python reference implementation, without a manifest: the parameters below are read from \
                 the logs, whose times are whole seconds.",
                capitalised(&count(n as u64, "run"))
            ),
            _ => format!(
                "{} without a manifest and of unknown origin: the parameters below are read from the logs.",
                capitalised(&count(n as u64, "run"))
            ),
        });
    }
    if damaged > 0 {
        sentences.push(format!(
            "{} whose manifest.json is damaged (the problems below say how): the parameters below are read from \
             the logs.",
            capitalised(&count(damaged as u64, "run"))
        ));
    }
    let by_hand = runs.iter().filter(|r| !r.info.machine_seeds.is_empty()).count();
    if by_hand > 0 {
        sentences.push(format!(
            "{} of machines started by hand (`clocklab machine`), each machine with a seed of its own, listed with \
             its run below (`clocklab machine <id> --seed S` derives it from S and the id).",
            capitalised(&count(by_hand as u64, "run"))
        ));
    }
    let seeds: BTreeSet<u64> = runs.iter().filter_map(|r| r.info.suite_seed).collect();
    if !seeds.is_empty() {
        let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
        sentences.push(format!(
            "Suite seed {}: `clocklab run --seed {}` with the same configuration draws the same rates and events.",
            list(&seeds),
            seeds[0]
        ));
    }
    let starts: BTreeSet<&str> = runs.iter().filter_map(|r| r.info.started_at.as_deref()).collect();
    if let (Some(first), Some(last)) = (starts.first(), starts.last()) {
        let (first, last) = (readable_time(first), readable_time(last));
        sentences.push(if first == last {
            format!("Started {first}.")
        } else {
            format!("Runs started between {first} and {last}.")
        });
    }
    let versions: BTreeSet<&str> = runs.iter().filter_map(|r| r.info.clocklab_version.as_deref()).collect();
    if !versions.is_empty() {
        sentences.push(format!(
            "Made by clocklab {}; analysed by clocklab {}.",
            list(&versions.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
            env!("CARGO_PKG_VERSION")
        ));
    }
    let clocks: BTreeSet<String> = runs.iter().map(|r| clock_names(&r.info.clocks)).collect();
    sentences.push(format!("Clocks kept: {}.", list(&clocks.into_iter().collect::<Vec<_>>())));
    sentences.extend(flags(summary));
    let experiments: Vec<ExperimentRow> = summary.experiments.iter().map(experiment_row).collect();
    let statuses = statuses(summary);
    let excluded: Vec<String> = summary
        .experiments
        .iter()
        .flat_map(|e| e.excluded.iter().map(move |(run, why)| format!("{} {run} ({why})", e.name)))
        .collect();
    let unknown = runs.iter().filter(|r| r.info.status == "unknown").count();
    let excluded = if excluded.is_empty() && unknown > 0 {
        format!(
            "Every one of the {} has complete logs and enters the aggregates; without {}, whether {} finished as \
             planned is not known.",
            count(runs.len() as u64, "run"),
            match (unknown, damaged > 0) {
                (1, false) => "a manifest",
                (_, false) => "manifests",
                (1, true) => "a manifest that could be read",
                (_, true) => "manifests that could be read",
            },
            if unknown == runs.len() { "they" } else { "some" }
        )
    } else if excluded.is_empty() && runs.len() == 1 {
        "The run finished as planned with complete logs, and enters the aggregates.".to_string()
    } else if excluded.is_empty() {
        format!(
            "Every one of the {} finished as planned with complete logs, and enters the aggregates.",
            count(runs.len() as u64, "run")
        )
    } else {
        let shown: Vec<String> = excluded.iter().take(10).cloned().collect();
        format!(
            "{} of {} {} left out of the aggregates and marked wherever {} appear{}: {}{}",
            excluded.len(),
            count(runs.len() as u64, "run"),
            if excluded.len() == 1 { "is" } else { "are" },
            if excluded.len() == 1 { "it" } else { "they" },
            if excluded.len() == 1 { "s" } else { "" },
            list(&shown),
            if excluded.len() > 10 { ", and more (see the table)." } else { "." }
        )
    };
    let faulted = experiments.iter().any(|e| !e.faults.is_empty());
    Header { sentences, experiments, statuses, excluded, faulted }
}

/// What the command line's flags did to the configuration, and which
/// experiments they left with the same settings (the rule: `--runs`,
/// `--duration`, `--machines`, `--max-clock-rate`, `--max-event-num` and
/// `--clocks` set every experiment's value; experiments made identical are
/// compared as copies of one experiment).
fn flags(summary: &Summary) -> Vec<String> {
    let Some(command) = summary.command.as_ref().filter(|c| !c.set.is_empty()) else { return Vec::new() };
    let set: Vec<String> = command.set.iter().map(|(key, value)| format!("{key} = {value}")).collect();
    let replaced: Vec<String> = command
        .replaced
        .iter()
        .map(|(experiment, keys)| {
            let was: Vec<String> = keys.iter().map(|(key, value)| format!("{key} {value}")).collect();
            format!("{experiment} had {}", list(&was))
        })
        .collect();
    let mut out = vec![format!(
        "The command line (`clocklab {}`) set {} for every experiment{}.",
        command.args.join(" "),
        list(&set),
        if replaced.is_empty() {
            ", which their configuration had already".to_string()
        } else {
            format!(", in place of their configured values: {}", list(&replaced))
        }
    )];
    let settings: Vec<(&str, clocklab_config::Experiment)> =
        summary.experiments.iter().filter_map(|e| super::between::settings(e).map(|s| (e.name.as_str(), s))).collect();
    let mut seen: Vec<&str> = Vec::new();
    for (idx, (name, own)) in settings.iter().enumerate() {
        if seen.contains(name) {
            continue;
        }
        let alike: Vec<String> = settings[idx + 1..]
            .iter()
            .filter(|(_, other)| super::between::same_settings(own, other))
            .map(|(other, _)| other.to_string())
            .collect();
        if !alike.is_empty() {
            seen.extend(
                settings[idx + 1..].iter().filter(|(_, o)| super::between::same_settings(own, o)).map(|(n, _)| *n),
            );
            out.push(format!(
                "So {name} and {} ran with the same settings and differ by name only: the comparisons below treat \
                 them as copies of one experiment.",
                list(&alike)
            ));
        }
    }
    out
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// `2026-11-24T04:43:13.000000Z` as `2026-11-24 04:43:13 UTC`.
fn readable_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.ends_with('Z') => format!("{date} {time} UTC"),
        _ => rfc3339.to_string(),
    }
}

fn clock_names(clocks: &[String]) -> String {
    let names: Vec<String> = clocks
        .iter()
        .map(|c| match c.as_str() {
            "lamport" => "Lamport".to_string(),
            "hlc" => "HLC".to_string(),
            other => other.to_string(),
        })
        .collect();
    list(&names)
}

fn experiment_row(experiment: &ExperimentSummary) -> ExperimentRow {
    let settings = experiment.runs.iter().find_map(|r| r.info.settings.as_ref());
    let runtimes: BTreeSet<&str> = experiment.runs.iter().map(|r| runtime_name(&r.info.runtime)).collect();
    let sound = experiment.runs.iter().filter(|r| r.is_sound()).count();
    let seeds: BTreeSet<String> =
        experiment.runs.iter().filter_map(|r| r.info.suite_seed).map(|s| s.to_string()).collect();
    let clocks: BTreeSet<String> = experiment.runs.iter().map(|r| clock_names(&r.info.clocks)).collect();
    let not_recorded = "not recorded".to_string();
    let (machines, max_clock_rate, max_event_num, duration_s, planned) = match settings {
        Some(s) => (
            s.machines.to_string(),
            s.max_clock_rate.to_string(),
            s.max_event_num.to_string(),
            fixed(s.duration, 1),
            Some(s.runs as usize),
        ),
        None => {
            let machines = experiment.runs.iter().map(|r| r.machines.len()).max().unwrap_or(0);
            let rates: BTreeSet<u32> = experiment.runs.iter().flat_map(|r| &r.machines).map(|m| m.rate).collect();
            let rate_range = match (rates.first(), rates.last()) {
                (Some(low), Some(high)) => format!("{not_recorded} (rates {low}–{high} seen)"),
                _ => not_recorded.clone(),
            };
            let durations: Vec<f64> = experiment.runs.iter().map(|r| r.duration_s).collect();
            let duration = durations.iter().copied().fold(0.0, f64::max);
            (
                machines.to_string(),
                rate_range,
                not_recorded.clone(),
                format!("{} (from the logs)", fixed(duration, 1)),
                None,
            )
        }
    };
    let found = experiment.runs.len();
    ExperimentRow {
        name: experiment.name.clone(),
        runtime: list(&runtimes.iter().map(|r| r.to_string()).collect::<Vec<_>>()),
        machines,
        max_clock_rate,
        max_event_num,
        duration_s,
        runs: match planned {
            Some(planned) if planned != found => format!("{found} of {planned} planned"),
            _ => found.to_string(),
        },
        sound: sound.to_string(),
        clocks: list(&clocks.into_iter().collect::<Vec<_>>()),
        seed: if seeds.is_empty() { not_recorded } else { list(&seeds.into_iter().collect::<Vec<_>>()) },
        faults: settings.map_or_else(String::new, |s| {
            let duration_us = clocklab_model::schedule::duration_us(s.duration);
            let windows = clocklab_faults::FaultPlan::new(&s.faults, 0, duration_us).windows();
            let told: Vec<String> = windows
                .iter()
                .map(|w| {
                    let secs = |us: u64| fixed(us as f64 / 1e6, 1);
                    match w.end_us {
                        Some(end) => format!("{} ({}–{} s)", w.label, secs(w.start_us), secs(end)),
                        None if w.kind == "clock" => format!("{} (at {} s)", w.label, secs(w.start_us)),
                        None => format!("{} (from {} s)", w.label, secs(w.start_us)),
                    }
                })
                .collect();
            told.join("; ")
        }),
    }
}

fn statuses(summary: &Summary) -> Vec<StatusRow> {
    let n_runs: usize = summary.experiments.iter().map(|e| e.runs.len()).sum();
    let mut out = Vec::new();
    for experiment in &summary.experiments {
        let mut quiet = 0;
        for run in &experiment.runs {
            let notable = !run.is_sound() || run.info.status != "ok" && run.info.status != "unknown";
            if n_runs > MAX_LISTED_RUNS && !notable {
                quiet += 1;
                continue;
            }
            let mut notes: Vec<String> = run.info.cause.iter().cloned().collect();
            // A run on several hosts: the offsets its timeline was joined by.
            notes.extend(run.info.hosts.iter().map(|host| {
                format!(
                    "host {} (machines {:?}): clock {:+} µs ± {} µs from the orchestrator's, its lines placed on \
                     the orchestrator's timeline by it",
                    host.name,
                    host.machines,
                    host.clock_offset_us,
                    host.uncertainty_us()
                )
            }));
            notes.extend(run.problems.iter().cloned());
            for m in &run.machines {
                notes.extend(m.problems.iter().map(|p| format!("machine {}: {p}", m.id)));
            }
            out.push(StatusRow {
                experiment: experiment.name.clone(),
                run: run_label(run),
                status: status_of(run),
                sound: run.is_sound(),
                started: run.info.started_at.as_deref().map(readable_time).unwrap_or_default(),
                seed: match run.info.run_seed {
                    Some(seed) => seed.to_string(),
                    // Machines started by hand have a seed each.
                    None => run
                        .info
                        .machine_seeds
                        .iter()
                        .map(|(id, seed)| format!("machine {id}: {seed}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                note: notes.join("; "),
            });
        }
        if quiet > 0 {
            out.push(StatusRow {
                experiment: experiment.name.clone(),
                run: format!("the other {}", count(quiet as u64, "run")),
                status: experiment
                    .runs
                    .iter()
                    .filter(|r| r.is_sound())
                    .map(|r| r.info.status.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", "),
                sound: true,
                started: String::new(),
                seed: String::new(),
                note: "listed in summary.json".into(),
            });
        }
    }
    out
}

fn aggregate(summary: &Summary) -> AggregateTable {
    let mut unmeasured: BTreeSet<String> = BTreeSet::new();
    let rows = METRICS
        .iter()
        .map(|metric| AggregateRow {
            metric: metric.name.to_string(),
            meaning: metric.meaning.to_string(),
            cells: summary
                .experiments
                .iter()
                .map(|e| match e.aggregate.iter().find(|a| a.metric == metric.name) {
                    Some(aggregate) => {
                        let s = &aggregate.spread;
                        let decimals = if s.max.abs() >= 100.0 { 1 } else { 3 };
                        let interval = s
                            .ci95
                            .map(|[low, high]| format!("[{}, {}]", fixed(low, decimals), fixed(high, decimals)))
                            .unwrap_or_default();
                        let coverage = match (s.ci95, aggregate.coverage) {
                            (Some(_), Some(measured)) if !measured.kept() => {
                                format!("covers {} in the simulator", crate::words::percent(measured.coverage, 1.0))
                            }
                            (Some(_), None) => {
                                unmeasured.insert(e.name.clone());
                                String::new()
                            }
                            _ => String::new(),
                        };
                        [fixed(s.mean, decimals), interval, coverage]
                    }
                    None => ["—".into(), String::new(), String::new()],
                })
                .collect(),
        })
        .collect();
    let runs = summary.experiments.iter().map(|e| e.runs.iter().filter(|r| r.is_sound()).count()).collect();
    let unmeasured = (!unmeasured.is_empty()).then(|| {
        let names: Vec<String> = unmeasured.into_iter().collect();
        format!(
            "The intervals of {} have no measured coverage: the simulator's study covers the classic suite's \
             settings with their runs and duration, not these (`clocklab study coverage --config FILE` measures \
             any).",
            list(&names)
        )
    });
    AggregateTable { experiments: summary.experiments.iter().map(|e| e.name.clone()).collect(), runs, rows, unmeasured }
}

/// Every problem: damaged or skipped files, incomplete logs, bad manifests.
fn problems(summary: &Summary) -> (Vec<String>, usize) {
    let mut all = problem_lines(summary);
    let n = all.len();
    all.truncate(MAX_PROBLEMS);
    (all, n)
}

/// The notes as plain text, for the terminal and the snapshot tests.
pub fn notes_text(header: &Header, notes: &[NoteView]) -> String {
    let mut out = String::new();
    for sentence in &header.sentences {
        out.push_str(sentence);
        out.push('\n');
    }
    out.push_str(&header.excluded);
    out.push('\n');
    for note in notes {
        out.push_str(&format!("\n## {}\n{}\n", note.note.heading, note.note.question));
        for sentence in &note.note.answer {
            out.push_str(&format!("- {sentence}\n"));
        }
        for Prediction { quantity, model, over, predicted, measured } in &note.note.predictions {
            out.push_str(&format!("  prediction: {quantity}: {model} = {predicted}, measured {measured} ({over})\n"));
        }
    }
    out
}
