//! The whole analysis as data (`summary.json`), its aggregates across runs,
//! and its text forms: the terminal table and the CSV tables.

use std::fmt::Write as _;

use serde::Serialize;

use crate::run::{FileDiagnostics, RunSummary};
use crate::stats::Spread;

/// Everything the analysis found, as written to `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The experiments, in folder order.
    pub experiments: Vec<ExperimentSummary>,
    /// Files with something to report (skipped lines, lines after `Stopped`, unreadable).
    pub diagnostics: Vec<FileDiagnostics>,
}

/// One experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentSummary {
    /// Its name.
    pub name: String,
    /// Its runs.
    pub runs: Vec<RunSummary>,
    /// Runs left out of the aggregates (failed, interrupted, degraded, or
    /// with a damaged log): name and why.
    pub excluded: Vec<(String, String)>,
    /// Run-level metrics across its sound runs: mean, spread, 95% interval.
    pub aggregate: Vec<MetricSpread>,
}

/// One run-level metric across an experiment's runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricSpread {
    /// The metric's name (one of [`METRICS`]).
    pub metric: String,
    /// How a run's value is computed.
    pub meaning: String,
    /// Its spread across runs.
    #[serde(flatten)]
    pub spread: Spread,
}

/// The run-level metrics aggregated across runs: name, meaning, and how a run's value is computed.
pub const METRICS: [(&str, &str); 12] = [
    ("jump_mean", "mean jump per tick over the run's machines (tick-weighted)"),
    ("jump_max", "largest jump in the run"),
    ("lag_mean_ticks", "mean over machines of the time-weighted lag behind the leader, in ticks"),
    ("lag_mean_s", "mean over machines of the time-weighted lag behind the leader, in seconds of the leader's clock"),
    ("lag_growth_max", "fastest growth of a machine's lag, in ticks per second"),
    ("queue_max", "largest queue in the run"),
    ("utilisation_max", "highest utilisation (messages received / (rate x duration)) of a machine"),
    ("tick_ratio_min", "lowest ticks / expected ticks in the run"),
    ("processed_share", "share of ticks that processed a message"),
    ("internal_share", "share of ticks that were internal events"),
    ("unprocessed", "messages left unprocessed at the end"),
    ("concurrent_share", "share of pairs of ticks on different machines that are concurrent"),
];

/// A run's value of a metric named in [`METRICS`].
pub fn run_metric(run: &RunSummary, metric: &str) -> f64 {
    let machines = &run.machines;
    let ticks: u64 = machines.iter().map(|m| m.ticks).sum();
    let share = |count: u64| if ticks == 0 { 0.0 } else { count as f64 / ticks as f64 };
    let max_of = |f: &dyn Fn(&crate::run::MachineSummary) -> f64| machines.iter().map(f).fold(0.0, f64::max);
    match metric {
        "jump_mean" => {
            let total: f64 = machines.iter().map(|m| m.jump.mean * m.ticks as f64).sum();
            if ticks == 0 { 0.0 } else { total / ticks as f64 }
        }
        "jump_max" => max_of(&|m| m.jump.max as f64),
        "lag_mean_ticks" => machines.iter().map(|m| m.lag.mean_ticks).sum::<f64>() / machines.len().max(1) as f64,
        "lag_mean_s" => machines.iter().map(|m| m.lag.mean_s).sum::<f64>() / machines.len().max(1) as f64,
        "lag_growth_max" => max_of(&|m| m.lag.growth.per_s),
        "utilisation_max" => max_of(&|m| m.load.utilisation),
        "concurrent_share" => run.causality.as_ref().map_or(f64::NAN, |c| c.concurrent_share),
        "queue_max" => max_of(&|m| m.queue.max as f64),
        "tick_ratio_min" => machines.iter().map(|m| m.tick_ratio).fold(f64::INFINITY, f64::min),
        "processed_share" => share(machines.iter().map(|m| m.events.processed).sum()),
        "internal_share" => share(machines.iter().map(|m| m.events.internal).sum()),
        "unprocessed" => machines.iter().map(|m| m.messages_unprocessed as f64).sum(),
        other => panic!("unknown metric {other}"),
    }
}

impl ExperimentSummary {
    /// An experiment from its analysed runs; only sound runs enter the aggregates.
    pub fn new(name: String, runs: Vec<RunSummary>) -> ExperimentSummary {
        let excluded: Vec<(String, String)> = runs
            .iter()
            .filter(|run| !run.is_sound())
            .map(|run| {
                let why = if run.info.is_sound() {
                    "a machine's log is damaged or incomplete".to_string()
                } else {
                    match &run.info.cause {
                        Some(cause) => format!("{}: {cause}", run.info.status),
                        None => run.info.status.clone(),
                    }
                };
                (run.name.clone(), why)
            })
            .collect();
        let sound: Vec<&RunSummary> = runs.iter().filter(|run| run.is_sound()).collect();
        let aggregate = METRICS
            .iter()
            .filter_map(|(metric, meaning)| {
                let values: Vec<f64> =
                    sound.iter().map(|run| run_metric(run, metric)).filter(|value| value.is_finite()).collect();
                (!values.is_empty()).then(|| MetricSpread {
                    metric: metric.to_string(),
                    meaning: meaning.to_string(),
                    spread: Spread::of(&values),
                })
            })
            .collect();
        ExperimentSummary { name, runs, excluded, aggregate }
    }

    /// The aggregate of `metric`.
    pub fn metric(&self, metric: &str) -> Option<&Spread> {
        self.aggregate.iter().find(|m| m.metric == metric).map(|m| &m.spread)
    }

    /// Whether any run's times are whole seconds.
    pub fn whole_seconds(&self) -> bool {
        self.runs.iter().any(|run| run.time_precision == "s")
    }
}

/// The terminal summary: one table per experiment, then the diagnostics.
pub fn render_table(summary: &Summary) -> String {
    let mut out = String::new();
    for experiment in &summary.experiments {
        let precision = if experiment.whole_seconds() { " (whole-second times: lag precise to 1 s)" } else { "" };
        let _ = writeln!(out, "== {} ({} runs){precision}", experiment.name, experiment.runs.len());
        let _ = writeln!(
            out,
            "{:<8} {:>3} {:>4} {:>15} {:>6} {:>4} {:>4} {:>7} {:>5} {:>7} {:>5} {:>8} {:>5}  {:<20} {:>4}",
            "run",
            "id",
            "rate",
            "ticks/expect",
            "jump",
            "p99",
            "max",
            "lag",
            "max",
            "queue",
            "max",
            "growth/s",
            "rho",
            "proc/sent/int",
            "left"
        );
        for run in &experiment.runs {
            for m in &run.machines {
                let _ = writeln!(
                    out,
                    "{:<8} {:>3} {:>4} {:>15} {:>6.2} {:>4} {:>4} {:>7.2} {:>5} {:>7.2} {:>5} {:>8.3} {:>5.2}  {:<20} {:>4}",
                    run.name,
                    m.id,
                    m.rate,
                    format!("{}/{:.0}", m.ticks, m.expected_ticks),
                    m.jump.mean,
                    m.jump.p99,
                    m.jump.max,
                    m.lag.mean_ticks,
                    m.lag.max_ticks,
                    m.queue.mean,
                    m.queue.max,
                    m.queue.growth.per_s,
                    m.load.utilisation,
                    format!("{}/{}/{}", m.events.processed, m.events.sent, m.events.internal),
                    m.messages_unprocessed,
                );
            }
        }
        let _ = writeln!(out, "across runs: mean ± sd [95% CI]");
        for MetricSpread { metric, spread, .. } in &experiment.aggregate {
            let ci = spread.ci95.map(|[low, high]| format!(" [{low:.3}, {high:.3}]")).unwrap_or_default();
            let _ = writeln!(out, "  {metric:<16} {:>9.3} ± {:.3}{ci}", spread.mean, spread.sd);
        }
        let _ = writeln!(out);
    }
    if !summary.diagnostics.is_empty() {
        let _ = writeln!(out, "== log problems (skipped, never fatal)");
        for d in &summary.diagnostics {
            let _ = writeln!(out, "{}", describe_diagnostics(d));
        }
    }
    out
}

/// One line about a file's problems.
pub fn describe_diagnostics(d: &FileDiagnostics) -> String {
    let mut parts = Vec::new();
    if let Some(error) = &d.open_error {
        parts.push(format!("unreadable: {error}"));
    }
    if d.skipped_lines > 0 {
        let first: Vec<String> = d.first_skipped.iter().map(|(line, why)| format!("{line} ({why})")).take(3).collect();
        parts.push(format!("{} damaged lines skipped, first at line {}", d.skipped_lines, first.join(", ")));
    }
    if d.truncated_last_line {
        parts.push("last line cut off (ignored)".to_string());
    }
    if d.lines_after_stop > 0 {
        parts.push(format!("{} lines after Stopped (ignored)", d.lines_after_stop));
    }
    format!("{}: {}", d.path.display(), parts.join("; "))
}

/// `machines.csv`: one row per machine per run.
pub fn machines_csv(summary: &Summary) -> String {
    let mut out = String::from(
        "experiment,run,machine,rate,ticks,expected_ticks,tick_ratio,final_clock,clock_rate_per_s,\
         jump_mean,jump_p50,jump_p99,jump_max,lag_mean_ticks,lag_max_ticks,queue_mean,queue_p99,queue_max,\
         queue_growth_per_s,utilisation,processed,sent,internal,messages_sent,messages_processed,\
         messages_unprocessed\n",
    );
    for experiment in &summary.experiments {
        for run in &experiment.runs {
            for m in &run.machines {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{:.4},{},{:.4},{:.4},{},{},{},{:.4},{},{:.4},{},{},{:.5},{:.4},{},{},{},{},{},{}",
                    csv_field(&experiment.name),
                    csv_field(&run.name),
                    m.id,
                    m.rate,
                    m.ticks,
                    m.expected_ticks,
                    m.tick_ratio,
                    m.final_clock,
                    m.clock_rate_per_s,
                    m.jump.mean,
                    m.jump.p50,
                    m.jump.p99,
                    m.jump.max,
                    m.lag.mean_ticks,
                    m.lag.max_ticks,
                    m.queue.mean,
                    m.queue.p99,
                    m.queue.max,
                    m.queue.growth.per_s,
                    m.load.utilisation,
                    m.events.processed,
                    m.events.sent,
                    m.events.internal,
                    m.messages_sent,
                    m.messages_processed,
                    m.messages_unprocessed,
                );
            }
        }
    }
    out
}

/// `jumps.csv`: the jump-size distribution, one row per machine, run and jump size.
pub fn jumps_csv(summary: &Summary) -> String {
    let mut out = String::from("experiment,run,machine,rate,jump,ticks\n");
    for experiment in &summary.experiments {
        for run in &experiment.runs {
            for m in &run.machines {
                for (jump, ticks) in &m.jump.distribution {
                    let _ = writeln!(
                        out,
                        "{},{},{},{},{jump},{ticks}",
                        csv_field(&experiment.name),
                        csv_field(&run.name),
                        m.id,
                        m.rate
                    );
                }
            }
        }
    }
    out
}

/// `experiments.csv`: one row per experiment and metric.
pub fn experiments_csv(summary: &Summary) -> String {
    let mut out = String::from("experiment,metric,runs,mean,sd,min,max,ci95_low,ci95_high\n");
    for experiment in &summary.experiments {
        for MetricSpread { metric, spread: s, .. } in &experiment.aggregate {
            let (low, high) = s.ci95.map(|[l, h]| (format!("{l:.4}"), format!("{h:.4}"))).unwrap_or_default();
            let _ = writeln!(
                out,
                "{},{metric},{},{:.4},{:.4},{:.4},{:.4},{low},{high}",
                csv_field(&experiment.name),
                s.n,
                s.mean,
                s.sd,
                s.min,
                s.max
            );
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}
