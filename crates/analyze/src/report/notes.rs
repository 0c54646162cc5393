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
    let mut out =
        vec![jumps(&machines), lag(&machines), queues(&machines), events(summary), super::between::note(summary)];
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
            "Machines at their run's fastest rate averaged a jump of {}; the {} {}, up to {} for {}, which ticks {} \
             times slower than its run's fastest.",
            fixed(fast, 2),
            count(slower.len() as u64, "slower machine"),
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
             through the logs' timestamps: in ticks, and in seconds, the ticks divided by r_max, the run's fastest \
             rate, at which the largest clock advances."
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
        sentence += &format!(
            ", the {} {} ticks ({} s)",
            count(slower.len() as u64, "slower machine"),
            fixed(ticks, 2),
            fixed(seconds, 2)
        );
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
    let test = format!(
        "a slope through its means over {} equal stretches of the run, the first left out, above zero at p ≤ 5% and \
         more than {} over the run",
        crate::growth::BATCHES,
        count(crate::growth::PRACTICAL_TICKS as u64, "tick")
    );
    if growing.is_empty() {
        note.answer.push(format!(
            "No machine's lag grew over its run ({test}): every lag is stationary, averaging {} ticks, so these \
             means do not depend on the runs' length.",
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
            "The lag of {} of {} grew ({test}), fastest {} ± {} ticks/s for {} (ρ = {}): such a mean grows with the \
             run's length, so compare slopes, not means. {of_them}",
            growing.len(),
            count(ticking.len() as u64, "machine"),
            fixed(top.machine.lag.growth.per_s, 3),
            fixed(top.machine.lag.growth.se, 3),
            who(top),
            fixed(top.machine.load.utilisation, 2)
        ));
        if let Some(stationary) = stationary {
            let others = (ticking.len() - growing.len()) as u64;
            note.answer.push(format!(
                "The other {} {} a stationary lag, averaging {} ticks: a longer run would not change it.",
                count(others, "machine"),
                if others == 1 { "has" } else { "have" },
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
             over a run, this does not depend on the run's length. The fluid model predicts what reaches each \
             machine from the run's rates and E alone: a machine sends on the ticks it does not spend processing, \
             so its arrivals λ follow from everyone's rates (see Method), and it is overloaded when λ > r."
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
    let modelled: Vec<(&MachineRef, crate::predict::FluidMachine)> =
        ticking.iter().filter_map(|m| m.machine.fluid.map(|f| (*m, f))).collect();
    if !modelled.is_empty() {
        let predicted: Vec<&(&MachineRef, crate::predict::FluidMachine)> =
            modelled.iter().filter(|(_, f)| f.utilisation > 1.0).collect();
        let measured = modelled.iter().filter(|(m, _)| m.machine.load.overloaded).count();
        let both = predicted.iter().filter(|(m, _)| m.machine.load.overloaded).count();
        note.answer.push(format!(
            "From the rates alone, the fluid model predicted {} of {} overloaded; {} {} measured overloaded, {} of \
             them among those predicted.",
            predicted.len(),
            count(modelled.len() as u64, "machine"),
            measured,
            if measured == 1 { "was" } else { "were" },
            both
        ));
        note.predictions.push(Prediction {
            quantity: "arrivals at a machine (messages/s)".into(),
            model: "λ from the rates and E".into(),
            over: count(modelled.len() as u64, "machine"),
            predicted: fixed(mean(modelled.iter().map(|(_, f)| f.arrival_per_s)).unwrap_or(0.0), 3),
            measured: fixed(
                mean(modelled.iter().map(|(m, _)| predict::arrival_per_s(m.machine, m.run.duration_s))).unwrap_or(0.0),
                3,
            ),
        });
        if !predicted.is_empty() {
            note.predictions.push(Prediction {
                quantity: "queue growth of the machines predicted overloaded (messages/s)".into(),
                model: "λ − r, λ from the rates and E".into(),
                over: count(predicted.len() as u64, "machine"),
                predicted: fixed(mean(predicted.iter().map(|(_, f)| f.queue_growth_per_s)).unwrap_or(0.0), 3),
                measured: fixed(mean(predicted.iter().map(|(m, _)| m.machine.queue.growth.per_s)).unwrap_or(0.0), 3),
            });
        }
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
        let arrival = predict::arrival_per_s(m.machine, m.run.duration_s);
        let growth = m.machine.queue.growth;
        let queue = &m.machine.queue;
        let model = m.machine.fluid.map_or_else(
            || "the fluid model needs E, which these logs do not record".to_string(),
            |f| {
                format!(
                    "from the rates alone the fluid model predicts λ = {}/s and a queue growing by {}/s",
                    fixed(f.arrival_per_s, 2),
                    fixed(f.queue_growth_per_s, 3)
                )
            },
        );
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
            "In {} {}, the rate-{} machine {} received {} messages/s but processes at most {}/s (ρ = {}); {model}, \
             and {measured}.",
            m.experiment.name,
            m.run.name,
            m.machine.rate,
            m.machine.id,
            fixed(arrival, 2),
            m.machine.rate,
            fixed(m.machine.load.utilisation, 2),
        ));
    }
    if overloaded.len() > DESCRIBED {
        let more = (overloaded.len() - DESCRIBED) as u64;
        note.answer.push(format!(
            "{more} more overloaded {} marked in the table below.",
            if more == 1 { "machine is" } else { "machines are" }
        ));
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
            format!("every one of them stayed within its run's skew bound (at most {} ms here)", fixed(bound / 1e3, 1))
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
                "HLC stays close to physical time: over {} that kept one, l − pt was at most {} ms (mean {} ms) and \
                 the counter c reached {}; {verdict}, the largest difference between two machines' physical clocks \
                 over the run.",
                count(hlc.len() as u64, "machine"),
                fixed(offset_max as f64 / 1e3, 1),
                fixed(offset_mean / 1e3, 1),
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
