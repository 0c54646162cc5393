//! The report's method section: how every number is counted, and what the
//! simulator measured of its statistics ([`crate::coverage`]), quoted from
//! the study's tables for the experiments of this report.

use serde::Serialize;

use crate::coverage::{self, CoverageRow, KEPT};
use crate::summary::Summary;
use crate::words::{count, fixed, list, percent};

/// The method section.
#[derive(Debug, Serialize)]
pub struct MethodView {
    /// One paragraph per rule.
    pub sentences: Vec<String>,
    /// What the coverage study measured for the experiments of this report.
    pub coverage: Vec<CoverageView>,
}

/// One row of the coverage study, as the page shows it.
#[derive(Debug, Serialize)]
pub struct CoverageView {
    /// The experiment.
    pub experiment: String,
    /// The metric.
    pub metric: String,
    /// Its true mean.
    pub truth: String,
    /// Intervals that held it.
    pub coverage: String,
    /// Intervals below it.
    pub below: String,
    /// Intervals above it.
    pub above: String,
    /// Whether the coverage is within 93–97%.
    pub kept: bool,
}

/// The rows of the coverage study that describe the experiments of
/// `summary` as they ran (settings and number of runs).
fn measured_rows(summary: &Summary) -> Vec<&'static CoverageRow> {
    let mut rows = Vec::new();
    for experiment in &summary.experiments {
        for aggregate in &experiment.aggregate {
            let settings = experiment.runs.iter().find_map(|r| r.info.settings.as_ref());
            if let Some(row) = settings.and_then(|s| coverage::measured(s, aggregate.spread.n, &aggregate.metric)) {
                rows.push(row);
            }
        }
    }
    rows
}

/// The section for `summary`.
pub fn method(summary: &Summary) -> MethodView {
    let share = |n: u32, of: u32| percent(f64::from(n), f64::from(of.max(1)));
    let mut sentences = vec![
        "A tick is an internal event, a send or a processed message; a jump is how much the logical clock rose on \
         one tick."
            .to_string(),
        format!(
            "Lag behind the leader: at every instant, the largest logical clock of the run minus the machine's own (a \
             god's-eye view through the logs' timestamps), weighted by how long each state lasted; in ticks, and in \
             seconds: the ticks divided by r_max, the run's fastest rate, at which the largest clock advances. A lag \
             grows when the slope through its time-weighted means over {} equal stretches of the run (the first, \
             where every lag climbs from 0, left out) is above zero at p ≤ 5% (Student's t on the stretches, which \
             are long enough to be nearly independent) and adds up to more than {} over the run; a queue's growth \
             is tested the same way.",
            crate::growth::BATCHES,
            count(crate::growth::PRACTICAL_TICKS as u64, "tick")
        ),
    ];
    let growth = coverage::growth_table();
    if let Some(first) = growth.first() {
        let at = |f: &dyn Fn(&coverage::GrowthRow) -> String| {
            list(&growth.iter().map(|row| format!("{} at {} s", f(row), fixed(row.duration_s, 0))).collect::<Vec<_>>())
        };
        sentences.push(format!(
            "Measured in the simulator on the classic suite ({}; `clocklab study lag-growth`): the test calls the lag \
             of a stable machine (ρ ≤ 0.9) growing in {} of them, and that of an overloaded one (ρ ≥ 1.1) in {}.",
            first.experiments.replace('+', ", "),
            at(&|row| format!(
                "{} of {}",
                share(row.stable_flagged, row.stable),
                crate::words::thousands(u64::from(row.stable))
            )),
            at(&|row| share(row.overloaded_flagged, row.overloaded)),
        ));
    }
    sentences.extend([
        "Utilisation ρ = messages received / (rate × duration). A machine is overloaded when ρ > 1: it receives \
         more than it can process, whatever the run's length."
            .to_string(),
        "Rate ratio r_max / r: how many times faster the fastest machine of the run ticks. A machine that keeps up \
         must follow the fastest clock, so its mean jump is predicted to be r_max / r."
            .to_string(),
        "The fluid model predicts each machine's arrivals λ from the run's rates and E alone, measuring nothing: a \
         machine at rate r that receives λ per second processes on a share min(λ / r, 1) of its ticks and draws an \
         event on the others; a draw of 1 or 2 sends to one peer of the ring, a draw of 3 to every other machine, \
         each with probability 1 / E. So λ_i = Σ_j p_ji · max(r_j − λ_j, 0), solved for every machine at once; a \
         machine is predicted overloaded when λ > r, its queue growing by λ − r per second."
            .to_string(),
    ]);
    let rows = measured_rows(summary);
    let (low, high) = (percent(KEPT.0, 1.0), percent(KEPT.1, 1.0));
    sentences.push(if rows.is_empty() {
        format!(
            "Across runs, a metric is given as the mean over an experiment's runs with Student's t interval at 95% \
             (from three runs on), cut to the values the metric can take. Whether such an interval holds the true \
             mean 95% of the time depends on the metric's spread; the simulator measures it (`clocklab study \
             coverage`), and did for the classic suite's settings, which are not these: measure yours to know \
             (a coverage within {low}–{high} keeps the promise)."
        )
    } else {
        let first = rows[0];
        format!(
            "Across runs, a metric is given as the mean over an experiment's runs with Student's t interval at 95% \
             (from three runs on), cut to the values the metric can take. The simulator measured how often it holds \
             the true mean (the mean of {} runs) over {} groups of {} runs (`clocklab study coverage`, \
             BENCHMARKS.md): the table below, for the experiments of this report. A coverage outside {low}–{high} is \
             printed beside the interval: a slow machine among fast ones, which makes a long queue and a growing \
             lag, is a rare draw that five runs often miss, and no interval of five runs can know of it.",
            crate::words::thousands(u64::from(first.truth_runs)),
            crate::words::thousands(u64::from(first.groups)),
            first.runs
        )
    });
    let copies: Vec<&coverage::ComparisonRow> =
        coverage::comparison_table().iter().filter(|row| row.against == row.experiment).collect();
    let mut comparison = "Two experiments are compared through the difference of their means with its 95% interval; \
                          the difference is called higher or lower when a permutation test of their runs (every way \
                          to split the pooled runs into two groups of the same sizes) gives p ≤ 5%, and the interval \
                          is the shifts that test does not reject. With 5 runs each there are 252 splits, so two \
                          experiments with identical settings are called different in at most 12/252 = 4.8% of cases, \
                          whatever the metric's spread."
        .to_string();
    if let (Some(lowest), Some(highest)) = (
        copies.iter().map(|r| f64::from(r.called_different) / f64::from(r.groups.max(1))).reduce(f64::min),
        copies.iter().map(|r| f64::from(r.called_different) / f64::from(r.groups.max(1))).reduce(f64::max),
    ) {
        comparison += &format!(
            " Measured in the simulator (`clocklab study comparison`): two independent copies of each classic \
             experiment were called different in {} to {} of {} groups, metric by metric.",
            percent(lowest, 1.0),
            percent(highest, 1.0),
            crate::words::thousands(u64::from(copies[0].groups))
        );
    }
    comparison += " An experiment with a control is set beside it run by run instead (same seeds), without a test.";
    sentences.push(comparison);
    sentences.push(
        "Runs that failed, were interrupted, fell behind their schedule (degraded) or have a damaged log are left out \
         of every aggregate and marked in red."
            .into(),
    );
    let coverage = rows
        .iter()
        .map(|row| {
            let measured = row.measured();
            CoverageView {
                experiment: row.experiment.clone(),
                metric: row.metric.clone(),
                truth: fixed(row.truth, 4),
                coverage: percent(measured.coverage, 1.0),
                below: percent(measured.below, 1.0),
                above: percent(measured.above, 1.0),
                kept: measured.kept(),
            }
        })
        .collect();
    MethodView { sentences, coverage }
}
