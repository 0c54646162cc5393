//! Comparing two analyses of the same plans, machine by machine: how close
//! the simulator comes to the real runtime (`clocklab calibrate`).
//!
//! Two results folders made with the same seed have the same experiments,
//! runs and drawn rates, so every machine of one has a twin in the other.
//! Each metric is compared between twins, then summarised per clock rate
//! (the distributions that matter depend on the rate) and over all machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::Summary;
use crate::run::MachineSummary;

/// The per-machine metrics compared, with what they mean.
pub const COMPARED: [(&str, &str); 9] = [
    ("processed_share", "share of ticks that processed a message"),
    ("sent_share", "share of ticks that sent"),
    ("internal_share", "share of ticks that were internal events"),
    ("jump_mean", "mean jump per tick"),
    ("jump_p99", "99th percentile of the jump"),
    ("queue_mean", "mean queue length at a tick"),
    ("queue_max", "largest queue length"),
    ("lag_mean_ticks", "time-weighted mean lag behind the leader, in ticks"),
    ("clock_rate_per_s", "logical clock increase per second"),
];

fn metric(machine: &MachineSummary, name: &str) -> f64 {
    let ticks = machine.ticks.max(1) as f64;
    match name {
        "processed_share" => machine.events.processed as f64 / ticks,
        "sent_share" => machine.events.sent as f64 / ticks,
        "internal_share" => machine.events.internal as f64 / ticks,
        "jump_mean" => machine.jump.mean,
        "jump_p99" => machine.jump.p99 as f64,
        "queue_mean" => machine.queue.mean,
        "queue_max" => machine.queue.max as f64,
        "lag_mean_ticks" => machine.lag.mean_ticks,
        "clock_rate_per_s" => machine.clock_rate_per_s,
        other => panic!("unknown compared metric {other}"),
    }
}

/// Total variation distance between two histograms: half the sum of the
/// absolute differences of their shares (0 identical, 1 disjoint).
pub fn total_variation(a: &BTreeMap<u64, u64>, b: &BTreeMap<u64, u64>) -> f64 {
    let total_a = a.values().sum::<u64>().max(1) as f64;
    let total_b = b.values().sum::<u64>().max(1) as f64;
    let keys: std::collections::BTreeSet<u64> = a.keys().chain(b.keys()).copied().collect();
    keys.iter()
        .map(|k| {
            let share_a = *a.get(k).unwrap_or(&0) as f64 / total_a;
            let share_b = *b.get(k).unwrap_or(&0) as f64 / total_b;
            (share_a - share_b).abs()
        })
        .sum::<f64>()
        / 2.0
}

/// One metric over a group of twin machines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricComparison {
    /// The metric (one of [`COMPARED`]).
    pub metric: String,
    /// Its mean over the group in the first analysis.
    pub mean_a: f64,
    /// Its mean over the group in the second.
    pub mean_b: f64,
    /// The mean absolute difference between twins.
    pub mean_abs_diff: f64,
}

/// A group of twin machines (one rate, or all).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupComparison {
    /// The clock rate, or `None` for all machines.
    pub rate: Option<u32>,
    /// How many twin pairs.
    pub n_machines: usize,
    /// Each metric.
    pub metrics: Vec<MetricComparison>,
    /// The mean total variation distance between twins' jump-size distributions.
    pub jump_tv_distance: f64,
    /// How many twins made exactly the same number of ticks.
    pub same_ticks: usize,
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// One group per rate, in rate order.
    pub by_rate: Vec<GroupComparison>,
    /// All machines.
    pub overall: GroupComparison,
    /// Machines of the first analysis without a twin (a different plan).
    pub unmatched: usize,
}

/// Compares two analyses machine by machine (matched by experiment, run and id).
pub fn compare(a: &Summary, b: &Summary) -> Comparison {
    let mut twins_b: BTreeMap<(&str, &str, u32), &MachineSummary> = BTreeMap::new();
    for experiment in &b.experiments {
        for run in &experiment.runs {
            for machine in &run.machines {
                twins_b.insert((experiment.name.as_str(), run.name.as_str(), machine.id), machine);
            }
        }
    }
    let mut pairs: Vec<(&MachineSummary, &MachineSummary)> = Vec::new();
    let mut unmatched = 0;
    for experiment in &a.experiments {
        for run in &experiment.runs {
            for machine in &run.machines {
                match twins_b.get(&(experiment.name.as_str(), run.name.as_str(), machine.id)) {
                    Some(twin) if twin.rate == machine.rate => pairs.push((machine, twin)),
                    _ => unmatched += 1,
                }
            }
        }
    }
    let mut rates: BTreeMap<u32, Vec<(&MachineSummary, &MachineSummary)>> = BTreeMap::new();
    for &(machine, twin) in &pairs {
        rates.entry(machine.rate).or_default().push((machine, twin));
    }
    Comparison {
        by_rate: rates.into_iter().map(|(rate, group)| summarise(Some(rate), &group)).collect(),
        overall: summarise(None, &pairs),
        unmatched,
    }
}

fn summarise(rate: Option<u32>, pairs: &[(&MachineSummary, &MachineSummary)]) -> GroupComparison {
    let n = pairs.len().max(1) as f64;
    let metrics = COMPARED
        .iter()
        .map(|&(name, _)| MetricComparison {
            metric: name.to_string(),
            mean_a: pairs.iter().map(|(a, _)| metric(a, name)).sum::<f64>() / n,
            mean_b: pairs.iter().map(|(_, b)| metric(b, name)).sum::<f64>() / n,
            mean_abs_diff: pairs.iter().map(|(a, b)| (metric(a, name) - metric(b, name)).abs()).sum::<f64>() / n,
        })
        .collect();
    GroupComparison {
        rate,
        n_machines: pairs.len(),
        metrics,
        jump_tv_distance: pairs
            .iter()
            .map(|(a, b)| total_variation(&a.jump.distribution, &b.jump.distribution))
            .sum::<f64>()
            / n,
        same_ticks: pairs.iter().filter(|(a, b)| a.ticks == b.ticks).count(),
    }
}

/// The comparison as a terminal table; `label_a` and `label_b` name the two sides.
pub fn render_comparison(comparison: &Comparison, label_a: &str, label_b: &str) -> String {
    let mut out = String::new();
    let groups = comparison.by_rate.iter().chain([&comparison.overall]);
    for group in groups {
        let title = match group.rate {
            Some(rate) => format!("rate {rate}"),
            None => "all machines".to_string(),
        };
        let _ = writeln!(
            out,
            "== {title}: {}, {} with equal tick counts, jump-size distance (total variation) {:.3}",
            crate::words::count(group.n_machines as u64, "machine pair"),
            group.same_ticks,
            group.jump_tv_distance
        );
        let _ = writeln!(out, "{:<18} {:>12} {:>12} {:>14}", "metric", label_a, label_b, "mean |diff|");
        for m in &group.metrics {
            let _ = writeln!(out, "{:<18} {:>12.3} {:>12.3} {:>14.3}", m.metric, m.mean_a, m.mean_b, m.mean_abs_diff);
        }
    }
    if comparison.unmatched > 0 {
        let _ = writeln!(
            out,
            "{} had no twin (the two folders come from different plans)",
            crate::words::count(comparison.unmatched as u64, "machine")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_variation_bounds() {
        let a = BTreeMap::from([(1, 3), (2, 1)]);
        let b = BTreeMap::from([(1, 6), (2, 2)]);
        let c = BTreeMap::from([(5, 1)]);
        assert_eq!(total_variation(&a, &b), 0.0);
        assert_eq!(total_variation(&a, &c), 1.0);
        let d = BTreeMap::from([(1, 1), (2, 1)]);
        assert!((total_variation(&a, &d) - 0.25).abs() < 1e-12);
    }
}
