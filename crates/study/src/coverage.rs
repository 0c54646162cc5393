//! How often the report's interval of a metric holds its true value.
//!
//! The truth of a run-level metric is its mean over [`Options::truth_runs`]
//! runs (4,000 by default, seeded apart from the groups); each of
//! [`Options::groups`] groups of [`Options::runs`] runs gives the interval
//! the report would print ([`clocklab_analyze::summary`]), which holds the
//! truth, lies below it or above it.

use std::path::Path;

use clocklab_analyze::coverage::CoverageRow;
use clocklab_analyze::run::RunSummary;
use clocklab_analyze::summary::{ExperimentSummary, METRICS, run_metric};
use clocklab_config::Experiment;

use crate::{Options, StudyError, mean, part_seed, sample};

/// The truth of every metric of [`METRICS`]: its mean over `runs`, in the
/// order of [`METRICS`] (`NaN` for a metric no run has).
pub fn truths(runs: &[RunSummary]) -> Vec<f64> {
    METRICS
        .iter()
        .map(|metric| {
            let values: Vec<f64> =
                runs.iter().map(|run| run_metric(run, metric.name)).filter(|v| v.is_finite()).collect();
            if values.is_empty() { f64::NAN } else { mean(&values) }
        })
        .collect()
}

/// The runs of a study of `experiment`: those the truth is the mean of, and
/// `groups` × `runs` more, group by group.
#[derive(Debug)]
pub struct Sampled {
    /// The truth's runs.
    pub truth: Vec<RunSummary>,
    /// The groups' runs, `runs` after `runs`.
    pub groups: Vec<RunSummary>,
}

/// Simulates the runs of a study of `experiment`; `part` names the groups'
/// seeds, so that two calls with different parts draw independent groups.
pub fn sample(experiment: &Experiment, options: &Options, part: &str, scratch: &Path) -> Result<Sampled, StudyError> {
    let truth =
        sample::simulate(experiment, part_seed(options.seed, "truth"), options.truth_runs, options.threads, scratch)?;
    let groups = sample_groups(experiment, options, part, scratch)?;
    Ok(Sampled { truth, groups })
}

/// The groups' runs alone (see [`sample`](fn@sample)).
pub fn sample_groups(
    experiment: &Experiment,
    options: &Options,
    part: &str,
    scratch: &Path,
) -> Result<Vec<RunSummary>, StudyError> {
    sample::simulate(experiment, part_seed(options.seed, part), options.groups * options.runs, options.threads, scratch)
}

/// Each group of `runs` as the analysis aggregates it.
pub fn aggregates(experiment: &Experiment, groups: &[RunSummary], runs: u32) -> Vec<ExperimentSummary> {
    groups.chunks(runs as usize).map(|group| ExperimentSummary::new(experiment.name.clone(), group.to_vec())).collect()
}

/// The coverage of every metric's interval, from runs already sampled.
pub fn rows(experiment: &Experiment, options: &Options, sampled: &Sampled) -> Vec<CoverageRow> {
    let truths = truths(&sampled.truth);
    let groups = aggregates(experiment, &sampled.groups, options.runs);
    METRICS
        .iter()
        .zip(truths)
        .filter(|(metric, truth)| metric.interval && truth.is_finite())
        .map(|(metric, truth)| {
            let mut row = CoverageRow {
                experiment: experiment.name.clone(),
                machines: experiment.machines,
                max_clock_rate: experiment.max_clock_rate,
                max_event_num: experiment.max_event_num,
                duration_s: experiment.duration,
                runs: options.runs as usize,
                metric: metric.name.to_string(),
                groups: 0,
                truth,
                truth_runs: options.truth_runs,
                covered: 0,
                below: 0,
                above: 0,
            };
            for [low, high] in groups.iter().filter_map(|g| g.metric(metric.name)).filter_map(|s| s.ci95) {
                row.groups += 1;
                if high < truth {
                    row.below += 1;
                } else if low > truth {
                    row.above += 1;
                } else {
                    row.covered += 1;
                }
            }
            row
        })
        .collect()
}

/// Samples `experiment` and measures the coverage of every metric's interval.
pub fn coverage(experiment: &Experiment, options: &Options, scratch: &Path) -> Result<Vec<CoverageRow>, StudyError> {
    let sampled = sample(experiment, options, "groups", scratch)?;
    Ok(rows(experiment, options, &sampled))
}
