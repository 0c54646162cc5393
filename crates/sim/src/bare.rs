//! The yardstick of the simulator's speed: a bare discrete-event loop with
//! one Lamport update per event and nothing else (no log line, no fault
//! plan, no clocks but Lamport's, no queue cap, no wire codec). It runs the
//! machines of a plan on the same absolute schedule, sends as often as the
//! model's event draw would (3 in `max_event_num` ticks), and delivers each
//! message a fixed 60 µs later. The simulator's events per second over this
//! loop's, measured in the same process, say how close to the bare cost of
//! an event loop the simulator is (`clocklab bench`, BENCHMARKS.md).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use clocklab_config::{DelayDistribution, RunPlan};
use clocklab_model::event::{EventChoice, PeerRing, Recipients};
use clocklab_model::seed;
use rand::RngExt;

use crate::network::Network;

/// What the loop did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BareSummary {
    /// Events: ticks and deliveries.
    pub events: u64,
    /// Ticks.
    pub ticks: u64,
    /// The sum of every clock after its update, so that nothing is optimised away.
    pub clock_sum: u64,
}

/// Runs the bare loop over the machines and duration of `plan`.
pub fn bare_event_loop(plan: &RunPlan) -> BareSummary {
    let n = plan.machines.len();
    let rates: Vec<u64> = plan.machines.iter().map(|m| u64::from(m.rate)).collect();
    let duration_us = plan.duration_us();
    let sends_in = u64::from(plan.experiment.max_event_num.max(3));
    // (time, kind: 1 tick / 0 delivery, machine, stamp or tick index)
    let mut heap: BinaryHeap<Reverse<(u64, u8, u32, u64)>> = BinaryHeap::with_capacity(n * 4);
    let mut clocks = vec![0u64; n];
    for idx in 0..n {
        heap.push(Reverse((0, 1, idx as u32, 0)));
    }
    // A xorshift generator: the cheapest draw there is.
    let mut state = plan.run_seed | 1;
    let mut summary = BareSummary::default();
    while let Some(Reverse((time_us, kind, idx, value))) = heap.pop() {
        summary.events += 1;
        let idx = idx as usize;
        if kind == 0 {
            clocks[idx] = clocks[idx].max(value) + 1;
        } else {
            summary.ticks += 1;
            clocks[idx] += 1;
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state % sends_in < 3 {
                let to = (idx + 1) % n;
                heap.push(Reverse((time_us + 60, 0, to as u32, clocks[idx])));
            }
            let next = value + 1;
            let due_us = next * 1_000_000 / rates[idx];
            if due_us < duration_us {
                heap.push(Reverse((due_us, 1, idx as u32, next)));
            }
        }
        summary.clock_sum = summary.clock_sum.wrapping_add(clocks[idx]);
    }
    summary
}

/// The bare loop with the model's random draws: a tick with no message
/// waiting draws its event from the machine's generator (seeded as the
/// model seeds it) and a send goes to the peers the ring rule names, each
/// message with a delay drawn from `delay` by the network's generator (the
/// simulator's [`Network`]). A tick with a message waiting takes it, as the
/// model's does, and draws nothing. Still one Lamport update per event, no
/// log line, no fault plan, no per-link order.
pub fn drawing_event_loop(plan: &RunPlan, delay: DelayDistribution) -> BareSummary {
    let n = plan.machines.len();
    let n_machines = plan.experiment.machines;
    let max_event_num = plan.experiment.max_event_num;
    let duration_us = plan.duration_us();
    let mut machines: Vec<(u64, _, PeerRing, u64)> = plan
        .machines
        .iter()
        .map(|m| {
            let (rng, rate) = seed::start_machine(m.seed, plan.experiment.max_clock_rate);
            (u64::from(rate), rng, PeerRing::new(m.id, n_machines), 0u64)
        })
        .collect();
    let mut network = Network::new(delay, seed::rng_from_seed(seed::network_seed(plan.run_seed)));
    // (time, kind: 1 tick / 0 delivery, machine index, stamp or tick index)
    let mut heap: BinaryHeap<Reverse<(u64, u8, u32, u64)>> = BinaryHeap::with_capacity(n * 4);
    let mut clocks = vec![0u64; n];
    for idx in 0..n {
        heap.push(Reverse((0, 1, idx as u32, 0)));
    }
    let mut summary = BareSummary::default();
    while let Some(Reverse((time_us, kind, idx, value))) = heap.pop() {
        summary.events += 1;
        let idx = idx as usize;
        let (rate, rng, ring, waiting) = &mut machines[idx];
        if kind == 0 {
            clocks[idx] = clocks[idx].max(value) + 1;
            *waiting += 1;
        } else {
            summary.ticks += 1;
            clocks[idx] += 1;
            if *waiting > 0 {
                *waiting -= 1;
            } else if let EventChoice::Send(recipients) = EventChoice::from_draw(rng.random_range(1..=max_event_num)) {
                let (first, second) = (ring.first_peer(), ring.second_peer());
                let mut send = |to: u32| {
                    let arrival_us = time_us + network.draw_delay_us();
                    heap.push(Reverse((arrival_us, 0, to - 1, clocks[idx])));
                };
                match recipients {
                    Recipients::FirstPeer => send(first),
                    Recipients::SecondPeer => send(second),
                    Recipients::AllPeers => (1..=n_machines).filter(|&to| to != idx as u32 + 1).for_each(send),
                }
            }
            let next = value + 1;
            let due_us = next * 1_000_000 / *rate;
            if due_us < duration_us {
                heap.push(Reverse((due_us, 1, idx as u32, next)));
            }
        }
        summary.clock_sum = summary.clock_sum.wrapping_add(clocks[idx]);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_loop_makes_the_schedule_s_ticks_and_delivers_what_it_sends() {
        let mut config = clocklab_config::Config::default();
        config.experiments.truncate(1);
        config.experiments[0].duration = 100.0;
        let plan = clocklab_config::plan_runs(&config, 3, std::path::Path::new("unused")).remove(0);
        let summary = bare_event_loop(&plan);
        let ticks: u64 = plan.machines.iter().map(|m| u64::from(m.rate) * 100).sum();
        assert_eq!(summary.ticks, ticks);
        // About 3 sends in 10 ticks, each delivered: events = ticks + sends.
        let sends = summary.events - ticks;
        assert!((ticks * 2 / 10..ticks * 4 / 10).contains(&sends), "{sends} of {ticks}");
    }

    #[test]
    fn the_drawing_loop_sends_what_the_simulator_sends() {
        let mut config = clocklab_config::Config::default();
        config.experiments.truncate(1);
        config.experiments[0].duration = 2_000.0;
        let plan = clocklab_config::plan_runs(&config, 3, std::path::Path::new("unused")).remove(0);
        let drawn = drawing_event_loop(&plan, config.sim.network);
        let simulated =
            crate::Simulation::new(&plan, &config.sim).unwrap().run(&mut crate::CountingSink::default()).unwrap();
        // The same schedule, and the same draws: the same ticks, and about
        // as many messages (which tick takes a message differs a little
        // without the simulator's per-link order).
        assert_eq!(drawn.ticks, simulated.ticks);
        let sends = drawn.events - drawn.ticks;
        let (low, high) = (simulated.messages * 95 / 100, simulated.messages * 105 / 100);
        assert!((low..=high).contains(&sends), "{sends} sends, the simulator {}", simulated.messages);
    }
}
