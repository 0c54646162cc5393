//! The fault plan's decisions, the same for both runtimes.
//!
//! Times are microseconds after the start of the run. The network's faults
//! are decided at the sender, per message: [`FaultPlan::on_send`] says
//! whether a message is lost, how much later it arrives, and until when a
//! partition holds it. Each directed link draws from its own generator,
//! seeded from the run's seed and the link, two numbers per send whatever
//! faults are active: so the `k`-th message on a link meets the same draws
//! in both runtimes, and the same seed gives the same loss decisions for the
//! same sequence of sends. The machines' faults (crashes and restarts,
//! pauses, clock changes) are a schedule per machine,
//! [`FaultPlan::machine_faults`].

use std::collections::BTreeMap;

use clocklab_model::seed::{self, ModelRng};
use clocklab_model::{MachineId, PhysicalClock};
use rand::RngExt;

use crate::spec::{DelaySpec, Direction, FaultSpec, PartitionMode, RestartClock};

/// Why a message was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// A `loss` fault drew it.
    Loss,
    /// A `partition` in `drop` mode cut it.
    Partition,
}

/// What becomes of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It goes: `extra_delay_us` later than the network alone would take,
    /// and not before `hold_until_us` (a partition in `hold` mode; 0 if none).
    Deliver {
        /// The latency faults' delay, in microseconds.
        extra_delay_us: u64,
        /// The heal of a partition that holds it, or 0.
        hold_until_us: u64,
    },
    /// It is lost at the sender.
    Lost {
        /// Which fault, by its index in the plan.
        fault: usize,
        /// What kind of fault.
        cause: LossCause,
    },
}

impl Fate {
    /// A message that no fault touches.
    pub const UNTOUCHED: Fate = Fate::Deliver { extra_delay_us: 0, hold_until_us: 0 };
}

/// What happens to one machine, at an instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MachineFault {
    /// It crashes at `at_us` and, with `restart`, comes back then with those clocks.
    Crash {
        /// When.
        at_us: u64,
        /// When it restarts, and how.
        restart: Option<(u64, RestartClock)>,
        /// The fault's index.
        fault: usize,
    },
    /// It stops ticking from `from_us` to `until_us`.
    Pause {
        /// When it stops.
        from_us: u64,
        /// When it goes on.
        until_us: u64,
        /// The fault's index.
        fault: usize,
    },
    /// Its physical clock steps by `step_us` and/or takes a new drift at `at_us`.
    Clock {
        /// When.
        at_us: u64,
        /// The step, in microseconds (0 for none).
        step_us: i64,
        /// The new drift, if any, in parts per million.
        drift_ppm: Option<f64>,
        /// The fault's index.
        fault: usize,
    },
}

impl MachineFault {
    /// When it starts.
    pub fn at_us(&self) -> u64 {
        match *self {
            MachineFault::Crash { at_us, .. } | MachineFault::Clock { at_us, .. } => at_us,
            MachineFault::Pause { from_us, .. } => from_us,
        }
    }
}

/// The reading at true time `at_us` of a physical clock that was `base` at
/// the start of the run (`start_us`, true time) and went through the clock
/// faults among `faults` (one machine's, from [`FaultPlan::machine_faults`]),
/// each at its planned instant.
pub fn physical_reading(base: &PhysicalClock, start_us: i64, faults: &[MachineFault], at_us: i64) -> i64 {
    physical_clock_at(base, start_us, faults, at_us).read(at_us)
}

/// The largest reading the clock of [`physical_reading`] showed up to true
/// time `at_us`: its reading then, or one just before a clock fault stepped
/// it back. A hybrid logical clock never forgets the physical time it saw,
/// so this is what bounds how far one can run ahead.
pub fn largest_reading(base: &PhysicalClock, start_us: i64, faults: &[MachineFault], at_us: i64) -> i64 {
    let read = |t| physical_reading(base, start_us, faults, t);
    faults
        .iter()
        .filter_map(|fault| match *fault {
            MachineFault::Clock { at_us: change_us, .. } => Some(start_us.saturating_add_unsigned(change_us)),
            _ => None,
        })
        .filter(|&change| change <= at_us)
        .map(|change| read(change - 1))
        .fold(read(at_us), i64::max)
}

/// The physical clock of [`physical_reading`] as it is at true time
/// `at_us`: every clock fault planned before then applied.
pub fn physical_clock_at(base: &PhysicalClock, start_us: i64, faults: &[MachineFault], at_us: i64) -> PhysicalClock {
    let mut clock = *base;
    for fault in faults {
        if let MachineFault::Clock { at_us: change_us, step_us, drift_ppm, .. } = *fault {
            let change = start_us.saturating_add_unsigned(change_us);
            if change > at_us {
                break;
            }
            if step_us != 0 {
                clock.step(change, step_us);
            }
            if let Some(drift) = drift_ppm {
                clock.set_drift(change, drift);
            }
        }
    }
    clock
}

/// A fault's window, for figures and diagrams.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// Its index in the plan.
    pub fault: usize,
    /// Its kind.
    pub kind: &'static str,
    /// When it starts, in microseconds after the start of the run.
    pub start_us: u64,
    /// When it ends, if it does.
    pub end_us: Option<u64>,
    /// What it does, in a few words (`partition [1] | [2, 3], hold`).
    pub label: String,
    /// The machines it concerns (empty: the network as a whole).
    pub machines: Vec<MachineId>,
}

/// One resolved fault: microseconds, and the spec.
#[derive(Clone, Debug)]
struct Fault {
    spec: FaultSpec,
    start_us: u64,
    end_us: Option<u64>,
}

impl Fault {
    fn active(&self, at_us: u64) -> bool {
        self.start_us <= at_us && self.end_us.is_none_or(|end| at_us < end)
    }
}

/// See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct FaultPlan {
    faults: Vec<Fault>,
    /// The end of the run, microseconds after its start: a partition in
    /// `hold` mode without an end holds until then.
    run_end_us: u64,
    seed: u64,
    links: BTreeMap<(MachineId, MachineId), ModelRng>,
}

/// Seconds as whole microseconds.
fn micros(seconds: f64) -> u64 {
    (seconds * 1e6).round().max(0.0) as u64
}

impl FaultPlan {
    /// The plan of `faults` (checked with [`crate::validate`]) for a run
    /// seeded with `run_seed` that lasts `duration_us`.
    pub fn new(faults: &[FaultSpec], run_seed: u64, duration_us: u64) -> FaultPlan {
        let faults = faults
            .iter()
            .map(|spec| Fault { spec: spec.clone(), start_us: micros(spec.start()), end_us: spec.end().map(micros) })
            .collect();
        FaultPlan {
            faults,
            run_end_us: duration_us,
            seed: seed::derive(run_seed, seed::label_of("faults")),
            links: BTreeMap::new(),
        }
    }

    /// A plan without faults.
    pub fn none() -> FaultPlan {
        FaultPlan::new(&[], 0, 0)
    }

    /// Whether there is no fault at all.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// The fate of a message sent at `at_us` from `from` to `to`.
    pub fn on_send(&mut self, at_us: u64, from: MachineId, to: MachineId) -> Fate {
        if self.faults.is_empty() {
            return Fate::UNTOUCHED;
        }
        let seed = seed::derive(self.seed, u64::from(from) << 32 | u64::from(to));
        let rng = self.links.entry((from, to)).or_insert_with(|| seed::rng_from_seed(seed));
        // Always two draws, so that a link's k-th message meets the same ones
        // whatever is active when it is sent.
        let loss_draw: f64 = rng.random();
        let delay_draw: f64 = rng.random();
        let on_link = |links: &Option<Vec<[MachineId; 2]>>| links.as_ref().is_none_or(|l| l.contains(&[from, to]));
        let mut kept = 1.0f64;
        let mut loss_fault = None;
        let mut extra_delay_us = 0u64;
        let mut hold_until_us = 0u64;
        for (idx, fault) in self.faults.iter().enumerate().filter(|(_, f)| f.active(at_us)) {
            match &fault.spec {
                FaultSpec::Loss { links, probability, .. } if on_link(links) => {
                    kept *= 1.0 - probability;
                    loss_fault.get_or_insert(idx);
                }
                FaultSpec::Latency { links, delay, .. } if on_link(links) => {
                    extra_delay_us = extra_delay_us.saturating_add(delay_us(delay, delay_draw));
                }
                FaultSpec::Partition { groups, direction, mode, .. } if cuts(groups, *direction, from, to) => {
                    match mode {
                        PartitionMode::Drop => return Fate::Lost { fault: idx, cause: LossCause::Partition },
                        PartitionMode::Hold => {
                            // A partition that never heals holds until the run
                            // ends: then the sender's end delivers what it held.
                            let heal_us = fault.end_us.unwrap_or(self.run_end_us);
                            hold_until_us = hold_until_us.max(heal_us);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(fault) = loss_fault
            && loss_draw < 1.0 - kept
        {
            return Fate::Lost { fault, cause: LossCause::Loss };
        }
        Fate::Deliver { extra_delay_us, hold_until_us }
    }

    /// What happens to `machine`, in time order.
    pub fn machine_faults(&self, machine: MachineId) -> Vec<MachineFault> {
        let mut out: Vec<MachineFault> = self
            .faults
            .iter()
            .enumerate()
            .filter_map(|(fault, f)| match f.spec {
                FaultSpec::Crash { machine: m, end, restart_clock, .. } if m == machine => Some(MachineFault::Crash {
                    at_us: f.start_us,
                    restart: end.map(|e| (micros(e), restart_clock)),
                    fault,
                }),
                FaultSpec::Pause { machine: m, .. } if m == machine => Some(MachineFault::Pause {
                    from_us: f.start_us,
                    until_us: f.end_us.expect("a pause has an end"),
                    fault,
                }),
                FaultSpec::Clock { machine: m, step_ms, drift_ppm, .. } if m == machine => Some(MachineFault::Clock {
                    at_us: f.start_us,
                    step_us: step_ms.map_or(0, |ms| (ms * 1e3).round() as i64),
                    drift_ppm,
                    fault,
                }),
                _ => None,
            })
            .collect();
        out.sort_by_key(MachineFault::at_us);
        out
    }

    /// The longest a message can be delayed by the plan's latency faults
    /// together, in microseconds: what a receiver waits for past the end of
    /// the run, beyond the network's own delay. (An exponential draw is at
    /// most about 37 means: the generator's numbers are below 1 by at
    /// least 2^-53.)
    pub fn longest_delay_us(&self) -> u64 {
        self.faults
            .iter()
            .filter_map(|f| match &f.spec {
                FaultSpec::Latency { delay, .. } => Some(delay_us(delay, 1.0 - f64::EPSILON / 2.0)),
                _ => None,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Whether `machine` is paused (a `pause` fault) at `at_us`: a tick due
    /// then runs late as the plan meant, not because the machine fell behind.
    pub fn paused_at(&self, machine: MachineId, at_us: u64) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.spec, FaultSpec::Pause { machine: m, .. } if m == machine) && f.active(at_us))
    }

    /// Whether `machine` is down (crashed and not restarted) at `at_us`.
    pub fn is_down(&self, machine: MachineId, at_us: u64) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.spec, FaultSpec::Crash { machine: m, .. } if m == machine) && f.active(at_us))
    }

    /// Every fault's window, in plan order.
    pub fn windows(&self) -> Vec<FaultWindow> {
        self.faults
            .iter()
            .enumerate()
            .map(|(fault, f)| FaultWindow {
                fault,
                kind: f.spec.kind(),
                start_us: f.start_us,
                end_us: f.end_us,
                label: describe(&f.spec),
                machines: match &f.spec {
                    FaultSpec::Partition { groups, .. } => groups.iter().flatten().copied().collect(),
                    spec => spec.machine().into_iter().collect(),
                },
            })
            .collect()
    }
}

/// Whether a partition cuts the link from `from` to `to`.
fn cuts(groups: &[Vec<MachineId>], direction: Direction, from: MachineId, to: MachineId) -> bool {
    let group_of = |id: MachineId| groups.iter().position(|group| group.contains(&id));
    match (group_of(from), group_of(to), direction) {
        (Some(a), Some(b), Direction::Both) => a != b,
        (Some(0), Some(b), Direction::OneWay) => b != 0,
        _ => false,
    }
}

/// The delay a latency fault gives for a uniform draw `u` in `[0, 1)`.
fn delay_us(delay: &DelaySpec, u: f64) -> u64 {
    let ms = match *delay {
        DelaySpec::Constant { ms } => ms,
        DelaySpec::Uniform { min_ms, max_ms } => min_ms + u * (max_ms - min_ms),
        DelaySpec::Exponential { mean_ms } => -(1.0 - u).ln() * mean_ms,
    };
    (ms * 1e3).round().clamp(0.0, u64::MAX as f64) as u64
}

/// A fault in a few words.
fn describe(spec: &FaultSpec) -> String {
    let links = |links: &Option<Vec<[MachineId; 2]>>| match links {
        None => "every link".to_string(),
        Some(links) => links.iter().map(|[a, b]| format!("{a}→{b}")).collect::<Vec<_>>().join(", "),
    };
    match spec {
        FaultSpec::Latency { links: l, delay, .. } => format!("latency on {}: {}", links(l), describe_delay(delay)),
        FaultSpec::Loss { links: l, probability, .. } => format!("loss on {}: {:.0}%", links(l), probability * 100.0),
        FaultSpec::Partition { groups, direction, mode, .. } => {
            let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
            let cut = match direction {
                Direction::Both => " | ",
                Direction::OneWay => " -/-> ",
            };
            let mode = match mode {
                PartitionMode::Hold => "held",
                PartitionMode::Drop => "dropped",
            };
            format!("partition {} (messages {mode})", groups.join(cut))
        }
        FaultSpec::Crash { machine, end, restart_clock, .. } => match end {
            Some(_) => format!(
                "machine {machine} crashes, restarts with a {} clock",
                match restart_clock {
                    RestartClock::Fresh => "fresh",
                    RestartClock::Recovered => "recovered",
                }
            ),
            None => format!("machine {machine} crashes"),
        },
        FaultSpec::Pause { machine, .. } => format!("machine {machine} paused"),
        FaultSpec::Clock { machine, step_ms, drift_ppm, .. } => {
            let mut parts = Vec::new();
            if let Some(step) = step_ms {
                parts.push(format!("steps by {step:+} ms"));
            }
            if let Some(drift) = drift_ppm {
                parts.push(format!("drifts {drift:+} ppm"));
            }
            format!("machine {machine}'s clock {}", parts.join(" and "))
        }
    }
}

fn describe_delay(delay: &DelaySpec) -> String {
    match delay {
        DelaySpec::Constant { ms } => format!("{ms} ms"),
        DelaySpec::Uniform { min_ms, max_ms } => format!("{min_ms} to {max_ms} ms"),
        DelaySpec::Exponential { mean_ms } => format!("exponential, mean {mean_ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(faults: &[FaultSpec]) -> FaultPlan {
        crate::validate(faults, 3, 60.0).unwrap();
        FaultPlan::new(faults, 7, 60_000_000)
    }

    #[test]
    fn no_fault_touches_nothing() {
        let mut plan = FaultPlan::none();
        assert!(plan.is_empty());
        assert_eq!(plan.on_send(5, 1, 2), Fate::UNTOUCHED);
    }

    #[test]
    fn partitions_drop_or_hold_across_the_cut_only() {
        let cut = |mode, direction| FaultSpec::Partition {
            start: 10.0,
            end: Some(20.0),
            groups: vec![vec![1], vec![2, 3]],
            direction,
            mode,
        };
        let mut drop = plan(&[cut(PartitionMode::Drop, Direction::Both)]);
        assert!(matches!(drop.on_send(15_000_000, 1, 2), Fate::Lost { cause: LossCause::Partition, .. }));
        assert!(matches!(drop.on_send(15_000_000, 3, 1), Fate::Lost { .. }));
        assert_eq!(drop.on_send(15_000_000, 2, 3), Fate::UNTOUCHED, "within a group");
        assert_eq!(drop.on_send(20_000_000, 1, 2), Fate::UNTOUCHED, "healed");
        let mut hold = plan(&[cut(PartitionMode::Hold, Direction::OneWay)]);
        assert_eq!(hold.on_send(12_000_000, 1, 3), Fate::Deliver { extra_delay_us: 0, hold_until_us: 20_000_000 });
        assert_eq!(hold.on_send(12_000_000, 3, 1), Fate::UNTOUCHED, "one way: the others still reach the first group");
    }

    #[test]
    fn loss_matches_its_probability_and_depends_on_the_sequence_of_sends_only() {
        let loss = [FaultSpec::Loss { start: 0.0, end: None, links: Some(vec![[1, 2]]), probability: 0.3 }];
        let mut a = plan(&loss);
        let mut b = plan(&loss);
        let n = 20_000;
        let mut lost = 0;
        for k in 0..n {
            // The same k-th send at another instant meets the same draw.
            let fate = a.on_send(k, 1, 2);
            assert_eq!(fate, b.on_send(k * 3 + 1, 1, 2));
            lost += u64::from(matches!(fate, Fate::Lost { cause: LossCause::Loss, .. }));
            assert_eq!(a.on_send(k, 2, 1), Fate::UNTOUCHED, "another link");
        }
        // A binomial(20000, 0.3): the standard deviation is about 65.
        assert!((5_700..6_300).contains(&lost), "{lost}");
    }

    #[test]
    fn latency_adds_its_delay_in_its_window() {
        let latency = [FaultSpec::Latency {
            start: 1.0,
            end: Some(2.0),
            links: None,
            delay: DelaySpec::Uniform { min_ms: 100.0, max_ms: 200.0 },
        }];
        let mut plan = plan(&latency);
        for _ in 0..100 {
            let Fate::Deliver { extra_delay_us, .. } = plan.on_send(1_500_000, 2, 3) else { panic!("nothing is lost") };
            assert!((100_000..=200_000).contains(&extra_delay_us), "{extra_delay_us}");
        }
        assert_eq!(plan.on_send(2_500_000, 2, 3), Fate::UNTOUCHED);
    }

    #[test]
    fn machine_faults_come_in_time_order() {
        let faults = [
            FaultSpec::Clock { machine: 1, start: 30.0, step_ms: Some(-500.0), drift_ppm: None },
            FaultSpec::Crash { machine: 1, start: 5.0, end: Some(8.0), restart_clock: RestartClock::Recovered },
            FaultSpec::Pause { machine: 1, start: 10.0, end: 12.0 },
        ];
        let plan = plan(&faults);
        let schedule = plan.machine_faults(1);
        assert_eq!(schedule.iter().map(MachineFault::at_us).collect::<Vec<_>>(), [5_000_000, 10_000_000, 30_000_000]);
        assert!(matches!(schedule[2], MachineFault::Clock { step_us: -500_000, .. }));
        assert!(plan.is_down(1, 6_000_000) && !plan.is_down(1, 8_000_000) && !plan.is_down(2, 6_000_000));
        assert!(plan.machine_faults(2).is_empty());
        assert_eq!(plan.windows()[0].label, "machine 1's clock steps by -500 ms");
    }
}
