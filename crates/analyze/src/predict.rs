//! What a simple model of one machine predicts, to set beside what the logs
//! measured. Each rule is written once here; the report's sentences and
//! figures call it.
//!
//! - Queue (a fluid model): messages arrive at λ per second and a machine
//!   takes one off per tick at its rate r; when λ > r the queue grows by
//!   λ − r per second, otherwise it stays bounded (growth 0).
//! - Jump: a machine that keeps up but ticks r_max / r times slower than the
//!   fastest machine of its run must follow the fastest clock, so each of
//!   its ticks covers about r_max / r of the leader's: its mean jump is
//!   close to r_max / r.
//! - Event mix: with an empty queue a machine draws n from 1..=E and sends
//!   for n ≤ 3, so a share (E − 3) / E of those ticks is internal.

use crate::run::MachineSummary;

/// λ: messages that reached the machine per second of the run (processed,
/// or left in its queue at the end).
pub fn arrival_per_s(machine: &MachineSummary, duration_s: f64) -> f64 {
    if duration_s > 0.0 { machine.load.received as f64 / duration_s } else { 0.0 }
}

/// The fluid model's queue growth, in messages per second: λ − r when the
/// machine is overloaded, 0 otherwise.
pub fn queue_growth_per_s(machine: &MachineSummary, duration_s: f64) -> f64 {
    (arrival_per_s(machine, duration_s) - f64::from(machine.rate)).max(0.0)
}

/// The mean jump of a machine that keeps up: r_max / r.
pub fn jump_mean(machine: &MachineSummary) -> f64 {
    machine.rate_ratio
}

/// The share of internal events among the ticks a machine makes with an
/// empty queue, for event draws from `1..=max_event_num`.
pub fn internal_share_of_empty_queue_ticks(max_event_num: u32) -> f64 {
    if max_event_num == 0 { 0.0 } else { f64::from(max_event_num.saturating_sub(3)) / f64::from(max_event_num) }
}

/// What was measured for the same share: internal events among the ticks
/// that did not process a message (those a machine makes with an empty
/// queue), or `None` without such ticks.
pub fn measured_internal_share(machines: &[&MachineSummary]) -> Option<(f64, u64)> {
    let internal: u64 = machines.iter().map(|m| m.events.internal).sum();
    let empty_queue_ticks: u64 = machines.iter().map(|m| m.events.internal + m.events.sent).sum();
    (empty_queue_ticks > 0).then(|| (internal as f64 / empty_queue_ticks as f64, empty_queue_ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_mix_model() {
        assert_eq!(internal_share_of_empty_queue_ticks(10), 0.7);
        assert_eq!(internal_share_of_empty_queue_ticks(5), 0.4);
        assert_eq!(internal_share_of_empty_queue_ticks(3), 0.0);
        assert_eq!(internal_share_of_empty_queue_ticks(2), 0.0);
        assert_eq!(internal_share_of_empty_queue_ticks(0), 0.0);
    }
}
