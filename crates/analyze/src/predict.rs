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
//! - Queues from the rates alone ([`fluid`]): a machine spends a share
//!   min(ρ, 1) of its ticks processing and sends on the others, so the
//!   arrivals λ of every machine follow from the run's rates and E alone,
//!   without anything measured; a machine is predicted overloaded when
//!   λ > r.

use clocklab_model::{EventChoice, PeerRing};

use clocklab_config::Experiment;

use crate::run::MachineSummary;

/// λ as measured: messages that reached the machine per second of the run
/// (processed, or left in its queue at the end).
pub fn arrival_per_s(machine: &MachineSummary, duration_s: f64) -> f64 {
    if duration_s > 0.0 { machine.load.received as f64 / duration_s } else { 0.0 }
}

/// The fluid model of a run of `settings` whose machines are `machines`
/// ([`fluid`]), in their order; `None` when the logs cannot give it: no
/// manifest to say E, or a machine of the run without a log (its rate
/// unknown).
pub fn fluid_of_run(machines: &[MachineSummary], settings: Option<&Experiment>) -> Option<Vec<FluidMachine>> {
    let settings = settings?;
    if !machines.iter().map(|m| m.id).eq(1..=settings.machines) {
        return None;
    }
    let rates: Vec<u32> = machines.iter().map(|m| m.rate).collect();
    fluid(&rates, settings.max_event_num)
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

/// What the fluid model predicts for one machine of a run from the run's
/// rates and E alone.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FluidMachine {
    /// λ: messages reaching it per second.
    pub arrival_per_s: f64,
    /// ρ = λ / r.
    pub utilisation: f64,
    /// max(λ − r, 0): how fast its queue grows, in messages per second.
    pub queue_growth_per_s: f64,
}

/// At most this many machine updates are spent on one run's fixed point
/// (the iteration's steps times the machines); a run that needs more (tens
/// of thousands of machines) gets no prediction.
const FLUID_WORK_MAX: usize = 200_000_000;

/// The fluid model of a run whose machines `1..=rates.len()` tick at
/// `rates` (machine `k + 1` at `rates[k]`) and draw events from
/// `1..=max_event_num`; `None` when its fixed point is not found within a
/// bounded effort.
///
/// A machine at rate r that receives λ messages per second processes on a
/// share min(λ / r, 1) of its ticks and draws an event on the others; a draw
/// of n ≤ 3 sends to the machines the ring rule names for n
/// ([`EventChoice::from_draw`], [`PeerRing::resolve`]), each with probability
/// 1 / E. So λ_i = Σ_j p_ji · max(r_j − λ_j, 0), where p_ji is the chance that
/// an empty-queue tick of j sends to i. The fixed point is found by damped
/// iteration: the map is a contraction once damped by the largest share of
/// its ticks on which a machine sends.
pub fn fluid(rates: &[u32], max_event_num: u32) -> Option<Vec<FluidMachine>> {
    let n = rates.len();
    if n < 2 || max_event_num == 0 {
        let idle = FluidMachine { arrival_per_s: 0.0, utilisation: 0.0, queue_growth_per_s: 0.0 };
        return Some(vec![idle; n]);
    }
    let draw = 1.0 / f64::from(max_event_num);
    // A draw that sends to every other machine adds draw · (S − s_i) to
    // machine i, S being every machine's sending rate summed; the others
    // name one peer each: (machine, peer) for each such draw.
    let mut to_all = 0.0;
    let mut to_one: Vec<(usize, usize)> = Vec::new();
    for j in 0..n {
        let ring = PeerRing::new(j as u32 + 1, n as u32);
        for choice in (1..=max_event_num.min(3)).map(EventChoice::from_draw) {
            match choice {
                EventChoice::Send(clocklab_model::Recipients::AllPeers) if n > 2 => {
                    if j == 0 {
                        to_all += draw;
                    }
                }
                EventChoice::Send(recipients) => {
                    to_one.extend(ring.resolve(recipients).map(|peer| (j, peer as usize - 1)));
                }
                EventChoice::Internal => {}
            }
        }
    }
    let sending_share = to_all * (n - 1) as f64 + draw * (to_one.len() / n) as f64;
    let damping = 1.0 / (1.0 + sending_share);
    let rates: Vec<f64> = rates.iter().map(|&r| f64::from(r)).collect();
    let mut arrival = vec![0.0; n];
    let mut next = vec![0.0; n];
    let mut converged = false;
    for _ in 0..FLUID_WORK_MAX / (n + to_one.len()) {
        let sending: Vec<f64> = rates.iter().zip(&arrival).map(|(r, l)| (r - l).max(0.0)).collect();
        let total: f64 = sending.iter().sum();
        for (i, target) in next.iter_mut().enumerate() {
            *target = to_all * (total - sending[i]);
        }
        for &(j, i) in &to_one {
            next[i] += draw * sending[j];
        }
        let mut change: f64 = 0.0;
        for (now, &target) in arrival.iter_mut().zip(&next) {
            let step = damping * (target - *now);
            change = change.max(step.abs());
            *now += step;
        }
        if change < 1e-12 * (1.0 + total) {
            converged = true;
            break;
        }
    }
    converged.then(|| {
        arrival
            .iter()
            .zip(&rates)
            .map(|(&lambda, &rate)| FluidMachine {
                arrival_per_s: lambda,
                utilisation: if rate > 0.0 { lambda / rate } else { 0.0 },
                queue_growth_per_s: (lambda - rate).max(0.0),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three machines at one rate: each sends to each other at (2/E)(r − λ)
    /// per second, so λ = 2 · (2/E)(r − λ); with E = 10 and r = 5,
    /// λ = 0.4 (5 − λ) = 2 / 1.4.
    #[test]
    fn fluid_model_of_equal_machines() {
        for machine in fluid(&[5, 5, 5], 10).unwrap() {
            assert!((machine.arrival_per_s - 2.0 / 1.4).abs() < 1e-9, "{machine:?}");
            assert_eq!(machine.queue_growth_per_s, 0.0);
        }
    }

    /// A slow machine among fast ones: overloaded, its queue growing at
    /// λ − r, and it sends nothing, so the others see only each other.
    #[test]
    fn fluid_model_of_an_overloaded_machine() {
        // Machines 1 and 2 at rate 6, machine 3 at rate 1, E = 10: if 3 is
        // overloaded it sends nothing; 1 and 2 each get (0.2)(6 − λ) from the
        // other: λ = 1.2 − 0.2 λ, λ = 1; machine 3 gets 2 · 0.2 · 5 = 2 > 1.
        let model = fluid(&[6, 6, 1], 10).unwrap();
        assert!((model[0].arrival_per_s - 1.0).abs() < 1e-9, "{model:?}");
        assert!((model[2].arrival_per_s - 2.0).abs() < 1e-9, "{model:?}");
        assert!((model[2].queue_growth_per_s - 1.0).abs() < 1e-9, "{model:?}");
        assert!((model[2].utilisation - 2.0).abs() < 1e-9);
        // Two machines: every draw of 1 to 3 reaches the one peer.
        let pair = fluid(&[1, 1], 3).unwrap();
        assert!((pair[0].arrival_per_s - 0.5).abs() < 1e-9, "{pair:?}");
    }

    /// Many machines: each hears from all the others on a draw of 3, and
    /// from the two before it in the ring on draws of 1 and 2.
    #[test]
    fn fluid_model_of_many_equal_machines() {
        // With N machines at rate r, all keeping up: λ = (N − 1 + 2)/E · (r − λ).
        let (n, e, r) = (100usize, 1_000u32, 10.0);
        let k = (n as f64 + 1.0) / f64::from(e);
        let expected = k * r / (1.0 + k);
        let model = fluid(&vec![10; n], e).unwrap();
        assert!(model.iter().all(|m| (m.arrival_per_s - expected).abs() < 1e-9), "{:?}", model[0]);
    }

    #[test]
    fn event_mix_model() {
        assert_eq!(internal_share_of_empty_queue_ticks(10), 0.7);
        assert_eq!(internal_share_of_empty_queue_ticks(5), 0.4);
        assert_eq!(internal_share_of_empty_queue_ticks(3), 0.0);
        assert_eq!(internal_share_of_empty_queue_ticks(2), 0.0);
        assert_eq!(internal_share_of_empty_queue_ticks(0), 0.0);
    }
}
