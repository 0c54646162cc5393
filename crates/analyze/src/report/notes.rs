//! The lab notes: for each question of the exercise, the answer this data
//! gives in a few sentences, and a simple model's prediction beside the
//! measurement ([`crate::predict`]).
//!
//! Every sentence is computed from the numbers it states, and chooses its
//! words from them ("grew" only for a slope clearly above zero, "higher"
//! only when two intervals do not overlap), so that it cannot contradict the
//! tables and figures next to it. Only machines of runs that enter the
//! aggregates are described; the runs left out are listed at the top.

use serde::Serialize;

use super::{MachineRef, sound_machines};
use crate::predict;
use crate::summary::{ExperimentSummary, Summary};
use crate::words::{count, fixed, list, percent};

/// One question and its answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Note {
    /// The section's anchor (`jumps`, `lag`, …).
    pub id: &'static str,
    /// The section's heading.
    pub heading: &'static str,
    /// The question of the exercise, as a student would ask it.
    pub question: &'static str,
    /// The answer, one sentence per entry.
    pub answer: Vec<String>,
    /// Predictions set beside measurements.
    pub predictions: Vec<Prediction>,
}

/// A model's prediction beside the measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// What is predicted, for which machines.
    pub quantity: String,
    /// The model, in a formula.
    pub model: String,
    /// How many machines or ticks it covers.
    pub over: String,
    /// The predicted value.
    pub predicted: String,
    /// The measured value.
    pub measured: String,
}

/// How a machine is named in a sentence.
fn who(m: &MachineRef) -> String {
    format!("the rate-{} machine {} of {} {}", m.machine.rate, m.machine.id, m.experiment.name, m.run.name)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Every question with its answer.
pub fn notes(summary: &Summary) -> Vec<Note> {
    let machines = sound_machines(summary);
    let mut out = vec![jumps(&machines), lag(&machines), queues(&machines), events(summary), experiments(summary)];
    if let Some(note) = causality(summary, &machines) {
        out.push(note);
    }
    if let Some(note) = super::faults::note(summary) {
        out.push(note);
    }
    out
}

/// Said when no sound machine made a tick.
fn nothing_to_measure(what: &str) -> String {
    format!("No run that enters the analysis made a tick, so there is no {what} to measure.")
}

fn jumps(machines: &[MachineRef]) -> Note {
    let mut note = Note {
        id: "jumps",
        heading: "Jumps of the logical clocks",
        question: "How large are the jumps of each machine's logical clock?",
        answer: Vec::new(),
        predictions: Vec::new(),
    };
    let ticking: Vec<&MachineRef> = machines.iter().filter(|m| m.machine.ticks > 0).collect();
    let ticks: u64 = ticking.iter().map(|m| m.machine.ticks).sum();
    let Some(biggest) = ticking.iter().max_by_key(|m| m.machine.jump.max) else {
        note.answer.push(nothing_to_measure("jump"));
        return note;
    };
    let ones: u64 = ticking.iter().map(|m| m.machine.jump.distribution.get(&1).copied().unwrap_or(0)).sum();
    if ones == ticks {
        note.answer.push(format!(
            "Every one of the {} moved its clock by exactly 1: no processed message carried a clock ahead of its \
             receiver's.",
            count(ticks, "tick")
        ));
    } else {
        note.answer.push(format!(
            "Of the {} of {}, {} moved the clock by exactly 1 (internal events, sends, and messages that carried \
             an older clock); the other {} jumped further, up to {} for {}.",
            count(ticks, "tick"),
            count(ticking.len() as u64, "machine"),
            percent(ones as f64, ticks as f64),
            percent((ticks - ones) as f64, ticks as f64),
            biggest.machine.jump.max,
            who(biggest)
        ));
    }
    let fastest = mean(ticking.iter().filter(|m| m.machine.rate_ratio <= 1.0).map(|m| m.machine.jump.mean));
    let slower: Vec<&&MachineRef> = ticking.iter().filter(|m| m.machine.rate_ratio > 1.0).collect();
    match (fastest, slower.iter().max_by(|a, b| a.machine.jump.mean.total_cmp(&b.machine.jump.mean))) {
        (Some(fast), Some(top)) => note.answer.push(format!(
            "Machines at their run's fastest rate averaged a jump of {}; the {} slower ones {}, up to {} for {}, \
             which ticks {} times slower than its run's fastest.",
            fixed(fast, 2),
            slower.len(),
            fixed(mean(slower.iter().map(|m| m.machine.jump.mean)).unwrap_or(0.0), 2),
            fixed(top.machine.jump.mean, 2),
            who(top),
            fixed(top.machine.rate_ratio, 1)
        )),
        _ => note.answer.push(
            "Every machine ticked at its run's fastest rate, so none had a faster clock to catch up with.".into(),
        ),
    }
    let stable_slower: Vec<&&MachineRef> = slower.iter().copied().filter(|m| !m.machine.load.overloaded).collect();
    if stable_slower.is_empty() {
        note.answer.push(
            "No machine here was both slower than its run's fastest and keeping up (ρ ≤ 1), so the prediction \
             r_max / r has nothing to be tested on."
                .into(),
        );
    } else {
        let predicted = mean(stable_slower.iter().map(|m| predict::jump_mean(m.machine))).unwrap_or(0.0);
        let measured = mean(stable_slower.iter().map(|m| m.machine.jump.mean)).unwrap_or(0.0);
        note.answer.push(format!(
            "A machine that keeps up but ticks r_max / r times slower than the fastest must cover about r_max / r of \
             the leader's ticks with each of its own, so its mean jump should be close to r_max / r: over the {} \
             that keep up, predicted {}, measured {}.",
            count(stable_slower.len() as u64, "slower machine"),
            fixed(predicted, 3),
            fixed(measured, 3)
        ));
        note.predictions.push(Prediction {
            quantity: "mean jump of a slower machine that keeps up".into(),
            model: "r_max / r".into(),
            over: count(stable_slower.len() as u64, "machine"),
            predicted: fixed(predicted, 3),
            measured: fixed(measured, 3),
        });
    }
    note
}

fn lag(machines: &[MachineRef]) -> Note {
    let mut note = Note {
        id: "lag",
        heading: "Lag between the clocks",
        question: "How far apart do the machines' logical clocks drift?",
        answer: vec![
            "Lag is how far a machine's clock is behind the largest clock of its run at the same instant, read \
             through the logs' timestamps: in ticks, and in seconds of the leader's clock (ticks divided by the \
             leader's rate)."
                .into(),
        ],
        predictions: Vec::new(),
    };
    let ticking: Vec<&MachineRef> = machines.iter().filter(|m| m.machine.ticks > 0).collect();
    let Some(worst) = ticking.iter().max_by_key(|m| m.machine.lag.max_ticks) else {
        note.answer.push(nothing_to_measure("lag"));
        return note;
    };
    let fastest = mean(ticking.iter().filter(|m| m.machine.rate_ratio <= 1.0).map(|m| m.machine.lag.mean_ticks));
    let slower: Vec<&&MachineRef> = ticking.iter().filter(|m| m.machine.rate_ratio > 1.0).collect();
    let mut sentence = match fastest {
        Some(fast) => format!("Machines at their run's fastest rate lagged {} ticks on average", fixed(fast, 2)),
        None => "No machine ran alone at its run's fastest rate".to_string(),
    };
    if let (Some(ticks), Some(seconds)) =
        (mean(slower.iter().map(|m| m.machine.lag.mean_ticks)), mean(slower.iter().map(|m| m.machine.lag.mean_s)))
    {
        sentence += &format!(", the slower ones {} ticks ({} s)", fixed(ticks, 2), fixed(seconds, 2));
    }
    sentence += &format!(
        "; the largest lag was {} ({} s) for {}.",
        count(worst.machine.lag.max_ticks, "tick"),
        fixed(worst.machine.lag.max_s, 2),
        who(worst)
    );
    note.answer.push(sentence);
    let growing: Vec<&&MachineRef> = ticking.iter().filter(|m| m.machine.lag.growth.grows).collect();
    let stationary = mean(ticking.iter().filter_map(|m| m.machine.lag.stationary_ticks));
    if growing.is_empty() {
        note.answer.push(format!(
            "No machine's lag grew over its run (no least-squares slope above twice its standard error): every lag \
             is stationary, averaging {} ticks, so these means do not depend on the runs' length.",
            fixed(stationary.unwrap_or(0.0), 2)
        ));
    } else {
        let top = growing
            .iter()
            .max_by(|a, b| a.machine.lag.growth.per_s.total_cmp(&b.machine.lag.growth.per_s))
            .expect("not empty");
        let overloaded = growing.iter().filter(|m| m.machine.load.overloaded).count();
        let of_them = if overloaded == growing.len() {
            if growing.len() == 1 {
                "It is overloaded (ρ > 1).".to_string()
            } else {
                "All are overloaded (ρ > 1).".to_string()
            }
        } else {
            format!("{overloaded} of them {} overloaded (ρ > 1).", if overloaded == 1 { "is" } else { "are" })
        };
        note.answer.push(format!(
            "The lag of {} of {} grew steadily (a least-squares slope above twice its standard error), fastest \
             {} ± {} ticks/s for {} (ρ = {}): such a mean grows with the run's length, so compare slopes, not \
             means. {of_them}",
            growing.len(),
            count(ticking.len() as u64, "machine"),
            fixed(top.machine.lag.growth.per_s, 3),
            fixed(top.machine.lag.growth.se, 3),
            who(top),
            fixed(top.machine.load.utilisation, 2)
        ));
        if let Some(stationary) = stationary {
            note.answer.push(format!(
                "The other {} have a stationary lag, averaging {} ticks: a longer run would not change it.",
                count((ticking.len() - growing.len()) as u64, "machine"),
                fixed(stationary, 2)
            ));
        }
    }
    note
}

fn queues(machines: &[MachineRef]) -> Note {
    let mut note = Note {
        id: "queues",
        heading: "Timings, gaps and queues",
        question: "How do the timings affect the gaps in the clocks and the lengths of the queues?",
        answer: vec![
            "A machine keeps up when it can process what reaches it: its utilisation ρ = messages received / (rate × \
             duration) is at most 1. This report calls a machine overloaded when ρ > 1; unlike a queue's growth \
             over a run, this does not depend on the run's length."
                .into(),
        ],
        predictions: Vec::new(),
    };
    let ticking: Vec<&MachineRef> = machines.iter().filter(|m| m.machine.ticks > 0).collect();
    let Some(busiest) = ticking.iter().max_by(|a, b| a.machine.load.utilisation.total_cmp(&b.machine.load.utilisation))
    else {
        note.answer.push(nothing_to_measure("queue"));
        return note;
    };
    let processed: u64 = ticking.iter().map(|m| m.machine.events.processed).sum();
    let gaps: u64 = ticking.iter().map(|m| m.machine.jump.distribution.range(2..).map(|(_, n)| n).sum::<u64>()).sum();
    if processed > 0 {
        note.answer.push(format!(
            "Gaps in a clock (jumps above 1) come only from processed messages: {} of the {} made the receiver's \
             clock jump by more than 1.",
            percent(gaps as f64, processed as f64),
            count(processed, "processed message")
        ));
    }
    let overloaded: Vec<&&MachineRef> = ticking.iter().filter(|m| m.machine.load.overloaded).collect();
    if overloaded.is_empty() {
        let longest = ticking.iter().max_by_key(|m| m.machine.queue.max).expect("not empty");
        note.answer.push(format!(
            "Every machine kept up: the highest utilisation was ρ = {} for {}, and the longest queue held {} ({}).",
            fixed(busiest.machine.load.utilisation, 2),
            who(busiest),
            count(longest.machine.queue.max, "message"),
            who(longest)
        ));
        return note;
    }
    note.answer.push(format!(
        "{} of {} {} overloaded.",
        overloaded.len(),
        count(ticking.len() as u64, "machine"),
        if overloaded.len() == 1 { "was" } else { "were" }
    ));
    const DESCRIBED: usize = 4;
    for m in overloaded.iter().take(DESCRIBED) {
        let duration = m.run.duration_s;
        let arrival = predict::arrival_per_s(m.machine, duration);
        let predicted = predict::queue_growth_per_s(m.machine, duration);
        let growth = m.machine.queue.growth;
        let queue = &m.machine.queue;
        let measured = if growth.grows {
            format!(
                "it grew by {} ± {}/s, held at most {} and {} at its last tick",
                fixed(growth.per_s, 3),
                fixed(growth.se, 3),
                queue.max,
                queue.last
            )
        } else {
            format!(
                "its queue did not grow measurably ({} ± {}/s; at most {}, {} at its last tick)",
                fixed(growth.per_s, 3),
                fixed(growth.se, 3),
                queue.max,
                queue.last
            )
        };
        note.answer.push(format!(
            "In {} {}, the rate-{} machine {} received {} messages/s but processes at most {}/s (ρ = {}); the fluid \
             model predicts a queue growing by λ − r = {}/s, and {measured}.",
            m.experiment.name,
            m.run.name,
            m.machine.rate,
            m.machine.id,
            fixed(arrival, 2),
            m.machine.rate,
            fixed(m.machine.load.utilisation, 2),
            fixed(predicted, 3),
        ));
    }
    if overloaded.len() > DESCRIBED {
        note.answer
            .push(format!("{} more overloaded machines are marked in the table below.", overloaded.len() - DESCRIBED));
    }
    let predicted = mean(overloaded.iter().map(|m| predict::queue_growth_per_s(m.machine, m.run.duration_s)));
    let measured = mean(overloaded.iter().map(|m| m.machine.queue.growth.per_s));
    if let (Some(predicted), Some(measured)) = (predicted, measured) {
        note.predictions.push(Prediction {
            quantity: "queue growth of an overloaded machine (per s)".into(),
            model: "λ − r".into(),
            over: count(overloaded.len() as u64, "machine"),
            predicted: fixed(predicted, 3),
            measured: fixed(measured, 3),
        });
    }
    note
}

fn events(summary: &Summary) -> Note {
    let mut note = Note {
        id: "events",
        heading: "What the ticks were spent on",
        question: "How does a machine spend its ticks, and how often is it idle enough to send?",
        answer: Vec::new(),
        predictions: Vec::new(),
    };
    for experiment in &summary.experiments {
        let runs: Vec<_> = experiment.runs.iter().filter(|r| r.is_sound()).collect();
        let machines: Vec<&crate::run::MachineSummary> = runs.iter().flat_map(|r| &r.machines).collect();
        let ticks: u64 = machines.iter().map(|m| m.ticks).sum();
        if ticks == 0 {
            continue;
        }
        let share = |part: u64| percent(part as f64, ticks as f64);
        let mut sentence = format!(
            "In {}, {} of the ticks processed a message, {} sent and {} were internal events",
            experiment.name,
            share(machines.iter().map(|m| m.events.processed).sum()),
            share(machines.iter().map(|m| m.events.sent).sum()),
            share(machines.iter().map(|m| m.events.internal).sum()),
        );
        let Some((measured, empty_ticks)) = predict::measured_internal_share(&machines) else {
            note.answer.push(sentence + ".");
            continue;
        };
        match max_event_num(experiment) {
            Some(e) => {
                let predicted = predict::internal_share_of_empty_queue_ticks(e);
                sentence += &format!(
                    ". With an empty queue a machine draws n from 1 to E = {e} and sends for n ≤ 3, so (E − 3)/E = \
                     {} of those ticks should be internal; {} of its {} were.",
                    fixed(predicted, 3),
                    fixed(measured, 3),
                    count(empty_ticks, "empty-queue tick")
                );
                note.predictions.push(Prediction {
                    quantity: format!("internal share of empty-queue ticks, {}", experiment.name),
                    model: format!("(E − 3)/E, E = {e}"),
                    over: count(empty_ticks, "tick"),
                    predicted: fixed(predicted, 3),
                    measured: fixed(measured, 3),
                });
            }
            None if measured < 1.0 => {
                sentence += &format!(
                    ". These logs do not record max_event_num (E); {} of the ticks made with an empty queue were \
                     internal, which (E − 3)/E matches for E ≈ {}.",
                    fixed(measured, 3),
                    fixed(3.0 / (1.0 - measured), 1)
                );
            }
            None => sentence += ".",
        }
        note.answer.push(sentence);
    }
    if note.answer.is_empty() {
        note.answer.push(nothing_to_measure("tick"));
    }
    note
}

/// The experiment's `max_event_num`, when its runs' manifests record it.
fn max_event_num(experiment: &ExperimentSummary) -> Option<u32> {
    experiment.runs.iter().find_map(|r| r.info.settings.as_ref()).map(|s| s.max_event_num)
}

/// How two experiments' values of a metric compare, from their intervals.
fn compare_metric(
    a: &ExperimentSummary,
    b: &ExperimentSummary,
    metric: &str,
    unit: &str,
    decimals: usize,
) -> Option<String> {
    let (x, y) = (a.metric(metric)?, b.metric(metric)?);
    let value = |s: &crate::stats::Spread| match s.ci95 {
        Some([low, high]) => {
            format!("{}{unit} [{}, {}]", fixed(s.mean, decimals), fixed(low, decimals), fixed(high, decimals))
        }
        None => format!("{}{unit}", fixed(s.mean, decimals)),
    };
    let verdict = match (x.ci95, y.ci95) {
        (Some([x_low, _]), Some([_, y_high])) if x_low > y_high => "higher",
        (Some([_, x_high]), Some([y_low, _])) if x_high < y_low => "lower",
        (Some(_), Some(_)) => "intervals overlap",
        _ => "too few runs for an interval",
    };
    Some(format!("{} against {} ({verdict})", value(x), value(y)))
}

fn experiments(summary: &Summary) -> Note {
    let mut note = Note {
        id: "experiments",
        heading: "Between experiments",
        question: "What changes from one experiment to the next?",
        answer: Vec::new(),
        predictions: Vec::new(),
    };
    let compared: Vec<&ExperimentSummary> = summary.experiments.iter().filter(|e| !e.aggregate.is_empty()).collect();
    let Some((base, others)) = compared.split_first() else {
        note.answer.push("No experiment has a run that enters the aggregates, so there is nothing to compare.".into());
        return note;
    };
    if others.is_empty() {
        note.answer.push(format!("Only {} has runs to aggregate: there is nothing to compare it with.", base.name));
        return note;
    }
    note.answer.push(
        "Each value is the mean over an experiment's runs with its 95% bootstrap interval; a difference is called \
         higher or lower only when the two intervals do not overlap."
            .into(),
    );
    for other in others {
        let mut parts = Vec::new();
        let labelled = [
            ("jump_mean", "mean jump ", "", 2),
            ("lag_mean_s", "mean lag ", " s", 2),
            ("queue_max", "largest queue ", "", 1),
            ("internal_share", "internal share ", "", 3),
        ];
        for (metric, label, unit, decimals) in labelled {
            if let Some(text) = compare_metric(other, base, metric, unit, decimals) {
                parts.push(format!("{label}{text}"));
            }
        }
        let overloaded = |e: &ExperimentSummary| {
            let machines: Vec<_> = e.runs.iter().filter(|r| r.is_sound()).flat_map(|r| &r.machines).collect();
            (machines.iter().filter(|m| m.load.overloaded).count(), machines.len())
        };
        let ((k, n), (k0, n0)) = (overloaded(other), overloaded(base));
        parts.push(format!("overloaded machines {k} of {n} against {k0} of {n0}"));
        note.answer.push(format!(
            "{} against {}{}: {}.",
            other.name,
            base.name,
            settings_difference(other, base).map(|d| format!(" ({d})")).unwrap_or_default(),
            list(&parts)
        ));
    }
    note
}

/// How an experiment's settings differ from another's, in words.
fn settings_difference(a: &ExperimentSummary, b: &ExperimentSummary) -> Option<String> {
    let settings = |e: &ExperimentSummary| e.runs.iter().find_map(|r| r.info.settings.clone());
    let (x, y) = (settings(a)?, settings(b)?);
    let mut parts = Vec::new();
    if x.max_clock_rate != y.max_clock_rate {
        parts.push(format!("max_clock_rate {} instead of {}", x.max_clock_rate, y.max_clock_rate));
    }
    if x.max_event_num != y.max_event_num {
        parts.push(format!("max_event_num {} instead of {}", x.max_event_num, y.max_event_num));
    }
    if x.machines != y.machines {
        parts.push(format!("{} instead of {}", count(x.machines, "machine"), y.machines));
    }
    if x.duration != y.duration {
        parts.push(format!("{} s runs instead of {} s", fixed(x.duration, 0), fixed(y.duration, 0)));
    }
    (!parts.is_empty()).then(|| list(&parts))
}

fn causality(summary: &Summary, machines: &[MachineRef]) -> Option<Note> {
    let runs: Vec<_> = summary.experiments.iter().flat_map(|e| &e.runs).filter(|r| r.is_sound()).collect();
    let with: Vec<_> = runs.iter().filter_map(|r| r.causality.as_ref()).collect();
    let hlc: Vec<&MachineRef> = machines.iter().filter(|m| m.machine.hlc.is_some()).collect();
    if with.is_empty() && hlc.is_empty() && runs.iter().all(|r| r.causality_missing.is_none()) {
        return None;
    }
    let mut note = Note {
        id: "causality",
        heading: "Concurrency, and what each clock captures",
        question: "Which events are concurrent, and what do Lamport's clock, vector clocks and HLC each capture?",
        answer: Vec::new(),
        predictions: Vec::new(),
    };
    if !with.is_empty() {
        let pairs: u64 = with.iter().map(|c| c.pairs).sum();
        let concurrent: u64 = with.iter().map(|c| c.concurrent).sum();
        let false_ordered: u64 = with.iter().map(|c| c.falsely_ordered).sum();
        let replayed = with.iter().filter(|c| c.vectors == "replayed").count();
        let source = match replayed {
            0 => "from the logged vector clocks".to_string(),
            n if n == with.len() => "from vector clocks replayed from the pairing of sends and receives".to_string(),
            n => format!("from logged vector clocks, replayed from the pairing for {}", count(n as u64, "run")),
        };
        note.answer.push(format!(
            "Over {} ({source}), {} of the {} of events on different machines were concurrent: neither happened \
             before the other.",
            count(with.len() as u64, "run"),
            percent(concurrent as f64, pairs as f64),
            count(pairs, "sampled pair")
        ));
        if concurrent > 0 {
            note.answer.push(format!(
                "Lamport's clock still ordered {} of all pairs (L(a) < L(b)) although they were concurrent, which is \
                 {} of the concurrent ones: its order is total, so it invents an order happens-before does not \
                 have; vector clocks tell the two apart.",
                percent(false_ordered as f64, pairs as f64),
                percent(false_ordered as f64, concurrent as f64)
            ));
        }
    }
    let mut missing: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for why in runs.iter().filter_map(|r| r.causality_missing.as_deref()) {
        *missing.entry(why).or_default() += 1;
    }
    if !missing.is_empty() {
        let reasons: Vec<String> =
            missing.iter().map(|(why, n)| format!("{why} ({})", count(*n, "run"))).take(3).collect();
        note.answer.push(format!(
            "Concurrency cannot be measured for {}: {}{}.",
            count(missing.values().sum::<u64>(), "run"),
            list(&reasons),
            if missing.len() > 3 { ", and more" } else { "" }
        ));
    }
    if !hlc.is_empty() {
        let offset_max = hlc.iter().filter_map(|m| m.machine.hlc.as_ref()).map(|h| h.offset_max_us).max().unwrap_or(0);
        let counter_max = hlc.iter().filter_map(|m| m.machine.hlc.as_ref()).map(|h| h.counter_max).max().unwrap_or(0);
        let offset_mean =
            mean(hlc.iter().filter_map(|m| m.machine.hlc.as_ref()).map(|h| h.offset_mean_us)).unwrap_or(0.0);
        let within = hlc.iter().filter(|m| within_bound(m)).count();
        let bound = hlc.iter().filter_map(|m| m.run.info.skew_bound_us).fold(0.0, f64::max);
        let verdict = if within == hlc.len() {
            format!("every one of them stayed within its run's skew bound (at most {} µs here)", fixed(bound, 0))
        } else {
            format!("{} went past their run's skew bound", count((hlc.len() - within) as u64, "machine"))
        };
        if bound == 0.0 && offset_max <= 0 {
            note.answer.push(format!(
                "The physical clocks of these runs agreed exactly (no offset or drift was configured), so HLC never \
                 had to run ahead of physical time: l − pt stayed 0 on all {} that kept one, and its counter c {}. \
                 Configure physical_clock.offset_ms_max or drift_ppm_max to see HLC absorb the skew.",
                count(hlc.len() as u64, "machine"),
                if counter_max == 0 { "stayed 0".to_string() } else { format!("reached {counter_max}") }
            ));
        } else {
            note.answer.push(format!(
                "HLC stays close to physical time: over {} that kept one, l − pt was at most {} µs (mean {} µs) and \
             the counter c reached {}; {verdict}, the largest difference between two machines' physical clocks \
             over the run.",
                count(hlc.len() as u64, "machine"),
                offset_max,
                fixed(offset_mean, 1),
                counter_max
            ));
        }
        let growing = hlc
            .iter()
            .filter(|m| m.machine.lag.growth.grows)
            .max_by(|a, b| a.machine.lag.growth.per_s.total_cmp(&b.machine.lag.growth.per_s));
        note.answer.push(match growing {
            Some(m) => format!(
                "Lamport's clock has no such tie to physical time: in the same runs the lag of {} behind the leader \
                 grew by {} ± {} ticks/s, without bound as the run goes on.",
                who(m),
                fixed(m.machine.lag.growth.per_s, 3),
                fixed(m.machine.lag.growth.se, 3)
            ),
            None => "Lamport's clock has no tie to physical time, though no machine's Lamport lag grew in these runs."
                .into(),
        });
    }
    Some(note)
}

/// Whether a machine's HLC stayed within its run's skew bound of its physical clock.
pub(crate) fn within_bound(m: &MachineRef) -> bool {
    match (m.machine.hlc.as_ref(), m.run.info.skew_bound_us) {
        (Some(hlc), Some(bound)) => hlc.offset_max_us as f64 <= bound + 1.0,
        (Some(_), None) => true,
        (None, _) => true,
    }
}
