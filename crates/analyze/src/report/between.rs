//! The lab notes' section between experiments.
//!
//! An experiment with a control (the configuration's `control`, whose seeds
//! it draws) is set beside that control run by run: the same seeds make the
//! two runs twins up to what the settings change, so their difference is
//! what the change did to these draws. Any other experiment is compared
//! with the first one: the difference of their means over runs with its
//! 95% interval, called real only when the permutation test of
//! [`crate::contrast`] gives p ≤ 5%. Too few runs for that test to ever
//! reject make no statement at all.

use crate::contrast::{Contrast, contrast};
use crate::coverage::Measured;
use crate::run::RunSummary;
use crate::summary::{ExperimentSummary, Summary, run_metric};
use crate::words::{count, fixed, list};

use super::notes::Note;

/// The metrics compared: (metric, how a sentence names it, unit, decimals).
const COMPARED: [(&str, &str, &str, usize); 4] = [
    ("jump_mean", "mean jump", "", 2),
    ("lag_mean_s", "mean lag", " s", 2),
    ("queue_max", "largest queue", "", 1),
    ("internal_share", "internal share", "", 3),
];

/// The section.
pub(super) fn note(summary: &Summary) -> Note {
    let mut note = Note {
        id: "experiments",
        heading: "Between experiments",
        question: "What changes from one experiment to the next?",
        answer: Vec::new(),
        predictions: Vec::new(),
    };
    let compared: Vec<&ExperimentSummary> = summary.experiments.iter().filter(|e| !e.aggregate.is_empty()).collect();
    let control_of = |e: &ExperimentSummary| {
        let name = settings(e)?.control?;
        compared.iter().copied().find(|c| c.name == name && c.name != e.name)
    };
    let Some(base) = compared.iter().copied().find(|e| control_of(e).is_none()) else {
        note.answer.push("No experiment has a run that enters the aggregates, so there is nothing to compare.".into());
        return note;
    };
    let paired: Vec<(&ExperimentSummary, &ExperimentSummary)> =
        compared.iter().filter_map(|e| control_of(e).map(|c| (*e, c))).collect();
    let unpaired: Vec<&ExperimentSummary> =
        compared.iter().copied().filter(|e| e.name != base.name && control_of(e).is_none()).collect();
    if paired.is_empty() && unpaired.is_empty() {
        note.answer.push(format!("Only {} has runs to aggregate: there is nothing to compare it with.", base.name));
        return note;
    }
    let mut sentences = Vec::new();
    let mut untestable = Vec::new();
    for other in &unpaired {
        match unpaired_sentence(other, base) {
            Some(sentence) => sentences.push(sentence),
            None => untestable.push(other.name.clone()),
        }
    }
    if !sentences.is_empty() {
        note.answer.push(format!(
            "Each experiment against {}: the difference of the two means over runs, with its 95% interval. A \
             difference is called higher or lower only when a permutation test of the runs gives p ≤ 5%: two \
             experiments with identical settings are then called different in at most 5% of cases, which the \
             simulator confirms (see Method).",
            base.name
        ));
        note.answer.extend(sentences);
    }
    if !untestable.is_empty() {
        note.answer.push(format!(
            "{} {} too few runs that enter the aggregates for the permutation test ever to reach p ≤ 5% against {} \
             (3 runs against 3 split only 20 ways): {} not compared.",
            list(&untestable),
            if untestable.len() == 1 { "has" } else { "have" },
            base.name,
            if untestable.len() == 1 { "it is" } else { "they are" },
        ));
    }
    if !paired.is_empty() {
        note.answer.push(
            "An experiment with a control draws the control's seeds: the same rates and events up to what its \
             settings change (a fault), so each of its runs is set beside the control's run of the same number, \
             and the difference is what the change did to these draws."
                .into(),
        );
        for (other, control) in &paired {
            note.answer.push(paired_sentence(other, control));
        }
    }
    note
}

/// The experiment's settings, from its runs' manifests.
pub(super) fn settings(e: &ExperimentSummary) -> Option<clocklab_config::Experiment> {
    e.runs.iter().find_map(|r| r.info.settings.clone())
}

/// The values of `metric` over an experiment's sound runs.
fn values(e: &ExperimentSummary, metric: &str) -> Vec<f64> {
    e.runs.iter().filter(|r| r.is_sound()).map(|r| run_metric(r, metric)).filter(|v| v.is_finite()).collect()
}

/// A value with its unit.
fn value(v: f64, unit: &str, decimals: usize) -> String {
    format!("{}{unit}", fixed(v, decimals))
}

/// A signed difference: `+0.15`, `−0.27`.
fn signed(v: f64, unit: &str, decimals: usize) -> String {
    let text = fixed(v, decimals);
    match text.strip_prefix('-') {
        Some(magnitude) => format!("−{magnitude}{unit}"),
        None if text.chars().all(|c| c == '0' || c == '.') => format!("{text}{unit}"),
        None => format!("+{text}{unit}"),
    }
}

/// `other` against `base`, metric by metric; `None` when no metric can be tested.
fn unpaired_sentence(other: &ExperimentSummary, base: &ExperimentSummary) -> Option<String> {
    let mut parts = Vec::new();
    for (metric, label, unit, decimals) in COMPARED {
        let (x, y) = (values(other, metric), values(base, metric));
        let Some(test) = contrast(&x, &y) else { continue };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let coverage = measured_difference(other, base, x.len(), metric);
        parts.push(format!(
            "{label} {} against {}: {}",
            value(mean(&x), unit, decimals),
            value(mean(&y), unit, decimals),
            difference(&test, unit, decimals, coverage)
        ));
    }
    if parts.is_empty() {
        return None;
    }
    let overloaded = |e: &ExperimentSummary| {
        let machines: Vec<_> = e.runs.iter().filter(|r| r.is_sound()).flat_map(|r| &r.machines).collect();
        (machines.iter().filter(|m| m.load.overloaded).count(), machines.len())
    };
    let ((k, n), (k0, n0)) = (overloaded(other), overloaded(base));
    parts.push(format!("overloaded machines {k} of {n} against {k0} of {n0}"));
    let how = match (settings(other), settings(base)) {
        (Some(x), Some(y)) if same_settings(&x, &y) => " (the same settings: the two are copies of one experiment, so \
                                                          any difference between them is chance, and the test calls \
                                                          one in at most 5% of such pairs)"
            .to_string(),
        (Some(x), Some(y)) => settings_difference(&x, &y).map(|d| format!(" ({d})")).unwrap_or_default(),
        _ => String::new(),
    };
    Some(format!("{} against {}{how}: {}.", other.name, base.name, list(&parts)))
}

/// A difference, its interval and the test's verdict.
fn difference(test: &Contrast, unit: &str, decimals: usize, coverage: Option<Measured>) -> String {
    let [low, high] = test.ci95;
    let verdict = match (test.different, test.difference > 0.0) {
        (true, true) => "higher",
        (true, false) => "lower",
        (false, _) => "no difference shown",
    };
    let p = if test.p_value < 0.001 { "p < 0.001".to_string() } else { format!("p = {}", fixed(test.p_value, 3)) };
    let covers = coverage
        .filter(|c| !c.kept())
        .map(|c| format!("; this interval covers {} in the simulator", crate::words::percent(c.coverage, 1.0)))
        .unwrap_or_default();
    format!(
        "{} [{}, {}], {verdict} ({p}{covers})",
        signed(test.difference, unit, decimals),
        signed(low, "", decimals),
        signed(high, "", decimals)
    )
}

/// What the simulator measured of the difference interval of `metric`
/// between two of the classic suite's experiments, run as the suite runs
/// them.
fn measured_difference(a: &ExperimentSummary, b: &ExperimentSummary, runs: usize, metric: &str) -> Option<Measured> {
    let (x, y) = (settings(a)?, settings(b)?);
    let classic = clocklab_config::Config::default();
    let as_studied = |e: &clocklab_config::Experiment| {
        classic.experiment(&e.name).is_some_and(|c| {
            (c.machines, c.max_clock_rate, c.max_event_num) == (e.machines, e.max_clock_rate, e.max_event_num)
                && e.faults.is_empty()
        })
    };
    if !(as_studied(&x) && as_studied(&y)) {
        return None;
    }
    crate::coverage::comparison_table()
        .iter()
        .find(|row| {
            row.experiment == x.name
                && row.against == y.name
                && row.metric == metric
                && row.runs == runs
                && row.duration_s == x.duration
                && x.duration == y.duration
        })
        .map(|row| {
            let share = |n: u32| f64::from(n) / f64::from(row.groups.max(1));
            Measured {
                coverage: share(row.covered),
                groups: row.groups,
                below: share(row.below),
                above: share(row.above),
            }
        })
}

/// `other` beside its control, run by run.
fn paired_sentence(other: &ExperimentSummary, control: &ExperimentSummary) -> String {
    let pairs: Vec<(&RunSummary, &RunSummary)> = other
        .runs
        .iter()
        .filter(|r| r.is_sound())
        .filter_map(|r| control.runs.iter().find(|c| c.name == r.name && c.is_sound()).map(|c| (r, c)))
        .collect();
    if pairs.is_empty() {
        return format!(
            "{} has no run that pairs with a sound run of its control {}: nothing to set beside it.",
            other.name, control.name
        );
    }
    let mut parts = Vec::new();
    for (metric, label, unit, decimals) in COMPARED {
        let diffs: Vec<(f64, f64)> = pairs
            .iter()
            .map(|(r, c)| (run_metric(r, metric), run_metric(c, metric)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if diffs.is_empty() {
            continue;
        }
        let n = diffs.len() as f64;
        let (x, y) = (diffs.iter().map(|d| d.0).sum::<f64>() / n, diffs.iter().map(|d| d.1).sum::<f64>() / n);
        parts.push(format!(
            "{label} {} against {} ({})",
            value(x, unit, decimals),
            value(y, unit, decimals),
            signed(x - y, unit, decimals)
        ));
    }
    let runs = if pairs.len() == 1 {
        format!("{} of each", pairs[0].0.name)
    } else {
        format!("means over {}", count(pairs.len() as u64, "pair of runs"))
    };
    format!("{} against its control {} on the same seeds ({runs}): {}.", other.name, control.name, list(&parts))
}

/// Whether two experiments ran the same model: machines, rates, events,
/// duration, clocks, physical clocks and faults.
pub(super) fn same_settings(a: &clocklab_config::Experiment, b: &clocklab_config::Experiment) -> bool {
    (a.machines, a.max_clock_rate, a.max_event_num, a.duration, a.clocks, a.physical_clock, &a.faults)
        == (b.machines, b.max_clock_rate, b.max_event_num, b.duration, b.clocks, b.physical_clock, &b.faults)
}

/// How an experiment's settings differ from another's, in words.
fn settings_difference(a: &clocklab_config::Experiment, b: &clocklab_config::Experiment) -> Option<String> {
    let mut parts = Vec::new();
    if a.max_clock_rate != b.max_clock_rate {
        parts.push(format!("max_clock_rate {} instead of {}", a.max_clock_rate, b.max_clock_rate));
    }
    if a.max_event_num != b.max_event_num {
        parts.push(format!("max_event_num {} instead of {}", a.max_event_num, b.max_event_num));
    }
    if a.machines != b.machines {
        parts.push(format!("{} instead of {}", count(a.machines, "machine"), b.machines));
    }
    if a.duration != b.duration {
        parts.push(format!("{} s runs instead of {} s", fixed(a.duration, 0), fixed(b.duration, 0)));
    }
    if a.faults != b.faults {
        parts.push("other faults".to_string());
    }
    (!parts.is_empty()).then(|| list(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_carry_their_sign() {
        assert_eq!(signed(0.154, "", 2), "+0.15");
        assert_eq!(signed(-0.27, " s", 2), "−0.27 s");
        assert_eq!(signed(-0.0001, "", 2), "0.00");
    }
}
