//! Random fault plans that validation accepts, for the tests that run every
//! kind of plan to the end in both runtimes: each plan is a function of a
//! seed, so a failing one is named by its seed.
//!
//! The plans reach the corners on purpose: crash windows of several
//! machines that coincide or overlap, a storm of short crashes on one
//! machine, crashes at the start and near the end (with a restart after the
//! end), clock faults while a machine is down, the largest latencies,
//! partitions that hold or drop and never heal, losses up to certainty,
//! pauses beside crashes.

use clocklab_model::MachineId;
use clocklab_model::seed;
use rand::{Rng, RngExt};

use crate::spec::{DELAY_MS_MAX, DelaySpec, Direction, FaultSpec, PartitionMode, RestartClock};

/// A plan of up to `max_faults` faults, for a run of `n_machines` (at
/// least 2) lasting `duration_s`, drawn from `seed`; every fault of it
/// passes [`crate::validate`] with those before it.
pub fn random_plan(seed: u64, n_machines: u32, duration_s: f64, max_faults: usize) -> Vec<FaultSpec> {
    let mut rng = seed::rng_from_seed(seed);
    let n_faults = rng.random_range(1..=max_faults.max(1));
    let mut plan: Vec<FaultSpec> = Vec::with_capacity(n_faults);
    let mut tries = 0;
    while plan.len() < n_faults && tries < 20 * n_faults {
        tries += 1;
        for fault in draw(&mut rng, n_machines, duration_s) {
            plan.push(fault);
            if crate::validate(&plan, n_machines, duration_s).is_err() {
                plan.pop();
            }
        }
    }
    plan
}

/// An instant of the run, in whole hundredths of a second, now and then at
/// its very start or just before its end.
fn instant<R: Rng>(rng: &mut R, duration_s: f64) -> f64 {
    match rng.random_range(0..10) {
        0 => 0.0,
        1 => (duration_s - 0.01).max(0.0),
        _ => (rng.random_range(0.0..duration_s) * 100.0).floor() / 100.0,
    }
}

/// A machine of the run.
fn machine<R: Rng>(rng: &mut R, n_machines: u32) -> MachineId {
    rng.random_range(1..=n_machines)
}

/// One or more faults (a storm, or crashes that coincide, come together).
fn draw<R: Rng>(rng: &mut R, n_machines: u32, duration_s: f64) -> Vec<FaultSpec> {
    let restart_clock = |rng: &mut R| if rng.random_bool(0.5) { RestartClock::Fresh } else { RestartClock::Recovered };
    match rng.random_range(0..9) {
        // A crash, restarted or not, sometimes after the end.
        0 => {
            let start = instant(rng, duration_s);
            let end = match rng.random_range(0..4) {
                0 => None,
                1 => Some(duration_s + 1.0),
                _ => Some(start + 0.01 + rng.random_range(0.0..duration_s / 3.0)),
            };
            vec![FaultSpec::Crash { machine: machine(rng, n_machines), start, end, restart_clock: restart_clock(rng) }]
        }
        // Crash windows of several machines that coincide.
        1 => {
            let start = instant(rng, duration_s * 0.8);
            let end = Some(start + 0.05 + rng.random_range(0.0..duration_s / 4.0));
            let clock = restart_clock(rng);
            (1..=n_machines)
                .filter(|_| rng.random_bool(0.7))
                .map(|machine| FaultSpec::Crash { machine, start, end, restart_clock: clock })
                .collect()
        }
        // A storm: many short crashes of one machine.
        2 => {
            let machine = machine(rng, n_machines);
            let period = rng.random_range(0.05..0.4);
            let down = period * rng.random_range(0.2..0.8);
            let clock = restart_clock(rng);
            let n = (duration_s / period).floor() as usize;
            (0..n.min(60))
                .map(|k| {
                    let start = ((k as f64 + 0.5) * period * 1000.0).round() / 1000.0;
                    FaultSpec::Crash { machine, start, end: Some(start + down), restart_clock: clock }
                })
                .collect()
        }
        // A clock fault, possibly while its machine is down.
        3 => vec![FaultSpec::Clock {
            machine: machine(rng, n_machines),
            start: instant(rng, duration_s),
            step_ms: rng.random_bool(0.8).then(|| rng.random_range(-2_000.0..2_000.0_f64).round()),
            drift_ppm: rng.random_bool(0.4).then(|| rng.random_range(-500.0..500.0_f64).round()),
        }],
        // A pause.
        4 => {
            let start = instant(rng, duration_s);
            vec![FaultSpec::Pause {
                machine: machine(rng, n_machines),
                start,
                end: start + 0.01 + rng.random_range(0.0..duration_s / 2.0),
            }]
        }
        // Latency, now and then the largest there is.
        5 => {
            let delay = match rng.random_range(0..4) {
                0 => DelaySpec::Constant { ms: DELAY_MS_MAX },
                1 => DelaySpec::Constant { ms: rng.random_range(0.0..300.0_f64).round() },
                2 => DelaySpec::Uniform { min_ms: 0.0, max_ms: rng.random_range(1.0..2_000.0_f64).round() },
                _ => DelaySpec::Exponential { mean_ms: rng.random_range(1.0..500.0_f64).round() },
            };
            let start = instant(rng, duration_s);
            let end = rng.random_bool(0.5).then(|| start + rng.random_range(0.01..duration_s));
            vec![FaultSpec::Latency { start, end, links: links(rng, n_machines), delay }]
        }
        // Loss, up to certainty.
        6 => {
            let probability = [0.0, 0.1, 0.5, 1.0][rng.random_range(0..4)];
            let start = instant(rng, duration_s);
            let end = rng.random_bool(0.5).then(|| start + rng.random_range(0.01..duration_s));
            vec![FaultSpec::Loss { start, end, links: links(rng, n_machines), probability }]
        }
        // A partition that holds or drops, one way or both, healed or not.
        _ => {
            let cut = rng.random_range(1..n_machines.max(2));
            let groups = vec![(1..=cut).collect(), (cut + 1..=n_machines).collect()];
            let start = instant(rng, duration_s);
            let end = rng.random_bool(0.6).then(|| start + 0.01 + rng.random_range(0.0..duration_s / 2.0));
            let direction = if rng.random_bool(0.5) { Direction::Both } else { Direction::OneWay };
            let mode = if rng.random_bool(0.5) { PartitionMode::Hold } else { PartitionMode::Drop };
            vec![FaultSpec::Partition { start, end, groups, direction, mode }]
        }
    }
}

/// Every link, or a few directed links.
fn links<R: Rng>(rng: &mut R, n_machines: u32) -> Option<Vec<[MachineId; 2]>> {
    if rng.random_bool(0.5) {
        return None;
    }
    let from = machine(rng, n_machines);
    let to = (from % n_machines) + 1;
    Some(vec![[from, to]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_passes_validation_and_the_corners_are_reached() {
        let (mut coinciding, mut storms, mut at_zero, mut largest, mut clock_while_down) = (0, 0, 0, 0, 0);
        for seed in 0..400 {
            let plan = random_plan(seed, 3, 6.0, 6);
            assert!(!plan.is_empty());
            crate::validate(&plan, 3, 6.0).unwrap();
            let crashes: Vec<(MachineId, f64, Option<f64>)> = plan
                .iter()
                .filter_map(|f| match *f {
                    FaultSpec::Crash { machine, start, end, .. } => Some((machine, start, end)),
                    _ => None,
                })
                .collect();
            coinciding +=
                usize::from(crashes.iter().any(|a| crashes.iter().any(|b| a.0 != b.0 && a.1 == b.1 && a.2 == b.2)));
            storms += usize::from((1..=3).any(|m| crashes.iter().filter(|c| c.0 == m).count() >= 10));
            at_zero += usize::from(crashes.iter().any(|c| c.1 == 0.0));
            largest += usize::from(plan.iter().any(
                |f| matches!(f, FaultSpec::Latency { delay: DelaySpec::Constant { ms }, .. } if *ms == DELAY_MS_MAX),
            ));
            clock_while_down += usize::from(plan.iter().any(|f| match *f {
                FaultSpec::Clock { machine, start, .. } => {
                    crashes.iter().any(|c| c.0 == machine && c.1 <= start && c.2.is_none_or(|end| start < end))
                }
                _ => false,
            }));
        }
        for (what, n) in [
            ("coinciding crashes", coinciding),
            ("storms", storms),
            ("crashes at 0", at_zero),
            ("the largest latency", largest),
            ("clock faults while down", clock_while_down),
        ] {
            assert!(n >= 5, "{what}: {n} of 400 plans");
        }
        assert_eq!(random_plan(9, 3, 6.0, 6), random_plan(9, 3, 6.0, 6), "a plan is a function of its seed");
    }
}
