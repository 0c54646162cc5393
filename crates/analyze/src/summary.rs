//! The whole analysis as data (`summary.json`) and its aggregates across
//! runs; [`crate::tables`] writes its text and CSV forms.

use serde::Serialize;

use crate::coverage::{self, Measured};
use crate::interval::{Range, Spread};
use crate::run::{FileDiagnostics, RunSummary};

/// The most reasons given for one run left out of the aggregates.
const MAX_REASONS: usize = 3;

/// Everything the analysis found, as written to `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The experiments, in folder order.
    pub experiments: Vec<ExperimentSummary>,
    /// Files with something to report (skipped lines, lines after `Stopped`, unreadable).
    pub diagnostics: Vec<FileDiagnostics>,
    /// What the command line changed in the configuration the runs were
    /// made from (the results folder's `command.json`), when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<clocklab_config::CommandRecord>,
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
    /// What the simulator measured of the interval, for these settings and
    /// this many runs (see [`crate::coverage`]); absent when not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Measured>,
}

/// A run-level metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Its name, in `summary.json` and the CSV tables.
    pub name: &'static str,
    /// How a run's value is computed.
    pub meaning: &'static str,
    /// The values it can take.
    pub range: Range,
    /// Whether it gets an interval across runs: not a check that every run
    /// passes, such as the tick ratio, whose spread is the schedule's
    /// rounding and not a quantity to estimate.
    pub interval: bool,
}

const fn metric(name: &'static str, meaning: &'static str, range: Range) -> Metric {
    Metric { name, meaning, range, interval: true }
}

/// The run-level metrics aggregated across runs.
pub const METRICS: [Metric; 12] = [
    metric("jump_mean", "mean jump per tick over the run's machines (tick-weighted)", Range::NonNegative),
    metric("jump_max", "largest jump in the run", Range::NonNegative),
    metric(
        "lag_mean_ticks",
        "mean over machines of the time-weighted lag behind the leader, in ticks",
        Range::NonNegative,
    ),
    metric(
        "lag_mean_s",
        "mean over machines of the time-weighted lag behind the leader, in seconds: ticks divided by the run's fastest \
         rate r_max, the rate at which the largest clock advances",
        Range::NonNegative,
    ),
    metric("lag_growth_max", "fastest growth of a machine's lag, in ticks per second", Range::Real),
    metric("queue_max", "largest queue in the run", Range::NonNegative),
    metric(
        "utilisation_max",
        "highest utilisation (messages received / (rate x duration)) of a machine",
        Range::NonNegative,
    ),
    Metric {
        name: "tick_ratio_min",
        meaning: "lowest ticks / expected ticks in the run",
        range: Range::NonNegative,
        interval: false,
    },
    metric("processed_share", "share of ticks that processed a message", Range::Share),
    metric("internal_share", "share of ticks that were internal events", Range::Share),
    metric("unprocessed", "messages left unprocessed at the end", Range::NonNegative),
    metric("concurrent_share", "share of pairs of ticks on different machines that are concurrent", Range::Share),
];

/// The metric called `name`.
pub fn metric_named(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

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
                let mut reasons = run.unsound_reasons();
                // A damaged log can give a reason per bad line: the first
                // few say enough (the problems list has them all).
                if reasons.len() > MAX_REASONS {
                    let more = reasons.len() - MAX_REASONS;
                    reasons.truncate(MAX_REASONS);
                    reasons.push(format!("{more} more"));
                }
                (run.name.clone(), reasons.join("; "))
            })
            .collect();
        let sound: Vec<&RunSummary> = runs.iter().filter(|run| run.is_sound()).collect();
        let settings = sound.iter().find_map(|run| run.info.settings.as_ref());
        let aggregate = METRICS
            .iter()
            .filter_map(|metric| {
                let values: Vec<f64> =
                    sound.iter().map(|run| run_metric(run, metric.name)).filter(|value| value.is_finite()).collect();
                if values.is_empty() {
                    return None;
                }
                let mut spread = Spread::of(&values, metric.range);
                if !metric.interval {
                    spread.ci95 = None;
                }
                let coverage = spread
                    .ci95
                    .and(settings)
                    .and_then(|settings| coverage::measured(settings, values.len(), metric.name))
                    .map(|row| row.measured());
                Some(MetricSpread {
                    metric: metric.name.to_string(),
                    meaning: metric.meaning.to_string(),
                    spread,
                    coverage,
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
