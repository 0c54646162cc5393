//! The lab notes' section on the fault plan: what each fault of each run
//! did, one sentence each, from the numbers of [`crate::faults`].

use crate::faults::{Effect, FaultEffect};
use crate::summary::Summary;
use crate::words::{fixed, thousands};

use super::notes::Note;

/// At most this many faults are told (the rest are counted; `summary.json` has them all).
const MAX_TOLD: usize = 60;

/// The section, if any run went through faults.
pub(super) fn note(summary: &Summary) -> Option<Note> {
    let faulted: Vec<(&str, &str, &FaultEffect)> = summary
        .experiments
        .iter()
        .flat_map(|e| {
            e.runs.iter().flat_map(move |r| r.faults.iter().map(move |f| (e.name.as_str(), r.name.as_str(), f)))
        })
        .collect();
    if faulted.is_empty() {
        return None;
    }
    let mut answer: Vec<String> = faulted
        .iter()
        .take(MAX_TOLD)
        .map(|(experiment, run, fault)| format!("{experiment} {run}: {}", sentence(fault)))
        .collect();
    if faulted.len() > MAX_TOLD {
        answer.push(format!(
            "{} more faults are in summary.json (`faults` of each run).",
            thousands((faulted.len() - MAX_TOLD) as u64)
        ));
    }
    answer.push(
        "Each fault's window is shaded on its run's figure below (Runs, one by one) and in its space-time diagram."
            .to_string(),
    );
    Some(Note {
        id: "faults",
        heading: "What the faults did",
        question: "What did each fault of the plan do to the machines and their clocks?",
        answer,
        predictions: Vec::new(),
    })
}

/// When, in words.
fn window(fault: &FaultEffect) -> String {
    if matches!(fault.effect, Effect::Clock { .. }) {
        return format!("at {} s", fixed(fault.start_s, 1));
    }
    match fault.end_s {
        Some(end) => format!("from {} s to {} s", fixed(fault.start_s, 1), fixed(end, 1)),
        None => format!("from {} s", fixed(fault.start_s, 1)),
    }
}

/// What one fault did, in a sentence.
pub(super) fn sentence(fault: &FaultEffect) -> String {
    let what = format!("{} {}", fault.label, window(fault));
    match &fault.effect {
        Effect::Partition { gap_at_start, gap_at_heal, converged_after_s, jump_before, jump_after } => {
            let converged = match converged_after_s {
                Some(s) => format!(
                    "it was back within {} {} after {} s",
                    gap_at_start.max(&1),
                    ticks(*gap_at_start.max(&1)),
                    fixed(*s, 1)
                ),
                None => "it had not come back by the end of the run".to_string(),
            };
            format!(
                "{what}: the gap between the groups' clocks went from {gap_at_start} to {gap_at_heal} {} at the heal, and \
                 {converged}; the largest jump in the 5 s after the heal was {jump_after} (before the partition: \
                 {jump_before}).",
                ticks(*gap_at_heal)
            )
        }
        Effect::Pause { backlog_ticks, jump_before, jump_after } => format!(
            "{what}: {backlog_ticks} {} due while it was stopped ran back to back when it went on; its largest jump in \
             the 5 s after was {jump_after} (before: {jump_before}).",
            ticks(*backlog_ticks)
        ),
        Effect::Crash { recovered: None, clock_at_crash, .. } => {
            format!("{what}: it crashed with its Lamport clock at {clock_at_crash} and did not come back.")
        }
        Effect::Crash { recovered: Some(true), clock_at_crash, clock_at_restart, ticks_not_above_crash, .. } => {
            format!(
                "{what}: it came back with its clock at {} (at the crash: {clock_at_crash}); {}.",
                clock_at_restart.unwrap_or(0),
                if *ticks_not_above_crash == 0 {
                    "no tick went back: Lamport's clock stayed monotonic".to_string()
                } else {
                    format!("{ticks_not_above_crash} ticks were not above the clock at the crash")
                }
            )
        }
        Effect::Crash { recovered: Some(false), clock_at_crash, ticks_not_above_crash, jump_after, .. } => format!(
            "{what}: it came back with its clock at 0 (at the crash: {clock_at_crash}); {ticks_not_above_crash} of its \
             ticks after the restart {} not above the clock at the crash, which breaks Lamport's monotonicity as the \
             plan meant (clocklab check says so, and counts it apart); its largest jump in the 5 s after was \
             {jump_after}.",
            if *ticks_not_above_crash == 1 { "was" } else { "were" }
        ),
        // The fault's label says the step (or the drift) already.
        Effect::Clock { lead_before_us, lead_after_us, lead_max_after_us, .. } => {
            match (lead_before_us, lead_after_us) {
                (Some(before), Some(after)) => {
                    let reading = if *after > *before {
                        "the HLC did not go back with the clock: it ran ahead of it until physical time caught up"
                    } else {
                        "the step did not put the HLC ahead: at its next tick the stepped clock still read later than \
                         any time the HLC had seen"
                    };
                    format!(
                        "{what}: its HLC ran ahead of its physical clock (l − pt) by {} ms on average in the \
                         2 s before and {} ms in the 2 s after, {} ms at most after; {reading}.",
                        fixed(before / 1e3, 1),
                        fixed(after / 1e3, 1),
                        fixed(lead_max_after_us.unwrap_or(0) as f64 / 1e3, 1)
                    )
                }
                _ => format!("{what}: the run keeps no HLC, or the machine ticked too little around the step to say."),
            }
        }
        Effect::Loss { sent, lost, probability } => {
            let share = if *sent == 0 {
                "none sent".to_string()
            } else {
                format!("{} %", fixed(100.0 * *lost as f64 / *sent as f64, 0))
            };
            format!(
                "{what}: it lost {lost} of the {sent} messages sent on its links while it was active ({share}, \
                 against a probability of {} %).",
                fixed(100.0 * probability, 0)
            )
        }
        Effect::Latency { mean_delay_ms, mean_delay_ms_outside } => match (mean_delay_ms, mean_delay_ms_outside) {
            (Some(inside), Some(outside)) => format!(
                "{what}: a message on its links took {} ms on average from its send to its processing, against {} ms \
                 outside it.",
                fixed(*inside, 1),
                fixed(*outside, 1)
            ),
            (Some(inside), None) => format!(
                "{what}: a message on its links took {} ms on average from its send to its processing.",
                fixed(*inside, 1)
            ),
            _ => format!("{what}: no message on its links was processed while it was active."),
        },
    }
}

fn ticks(n: u64) -> &'static str {
    if n == 1 { "tick" } else { "ticks" }
}
