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

use clocklab_config::RunPlan;

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
}
