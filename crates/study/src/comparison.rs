//! How often the report's comparison of two experiments is wrong.
//!
//! Two independent copies of one experiment (the same settings, seeds of
//! their own) are compared group by group: every group called different is
//! a false positive, which [`clocklab_analyze::contrast`] promises for at
//! most 5% of them. Two different experiments are compared the same way,
//! and the interval of their difference is checked against the difference
//! of their truths.

use clocklab_analyze::contrast::contrast;
use clocklab_analyze::coverage::ComparisonRow;
use clocklab_analyze::run::RunSummary;
use clocklab_analyze::summary::{METRICS, run_metric};
use clocklab_config::Experiment;

use crate::Options;

/// One row per metric: `a`'s groups against `b`'s, group `k` against group
/// `k`, the true difference being `truth_a − truth_b` (0 for copies of one
/// experiment; `truths` in the order of [`METRICS`]).
pub fn rows(
    (a, a_groups, truth_a): (&Experiment, &[RunSummary], &[f64]),
    (b, b_groups, truth_b): (&Experiment, &[RunSummary], &[f64]),
    options: &Options,
) -> Vec<ComparisonRow> {
    let identical = a.name == b.name;
    let runs = options.runs as usize;
    METRICS
        .iter()
        .enumerate()
        .filter(|(_, metric)| metric.interval)
        .map(|(idx, metric)| {
            let truth = if identical { 0.0 } else { truth_a[idx] - truth_b[idx] };
            let mut row = ComparisonRow {
                experiment: a.name.clone(),
                against: b.name.clone(),
                duration_s: a.duration,
                runs,
                metric: metric.name.to_string(),
                groups: 0,
                called_different: 0,
                truth,
                covered: 0,
                below: 0,
                above: 0,
            };
            let values = |runs: &[RunSummary]| -> Vec<f64> {
                runs.iter()
                    .filter(|r| r.is_sound())
                    .map(|r| run_metric(r, metric.name))
                    .filter(|v| v.is_finite())
                    .collect()
            };
            for (group_a, group_b) in a_groups.chunks(runs).zip(b_groups.chunks(runs)) {
                let Some(test) = contrast(&values(group_a), &values(group_b)) else { continue };
                row.groups += 1;
                row.called_different += u32::from(test.different);
                let [low, high] = test.ci95;
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
