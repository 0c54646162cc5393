//! A machine's life under the fault plan: when it crashes and restarts, when
//! a pause stops it, when its physical clock changes. The plan's machine
//! faults (`clocklab_faults::FaultPlan::machine_faults`), resolved into one
//! ordered list of changes that both runtimes follow, and the tick counts
//! they imply.
//!
//! The rules, for every combination that validation accepts:
//!
//! - **Windows are half-open.** A crash takes the machine down at its `start`
//!   and its restart brings it back at its `end`; a pause stops its ticks at
//!   its `start` and lets them go on at its `end`. At one instant, what ends
//!   comes before what begins: a restart or a resume before a clock change,
//!   and a clock change before a crash or a pause.
//! - **The deadline.** A restart at or after the end of the run never
//!   happens (the log ends with `Crashed`); a pause that outlasts the run
//!   ends at the deadline, where the ticks it held back are caught up.
//! - **Ticks.** A tick due while the machine is down is gone; one due while it
//!   is paused runs when the pause ends, late. So a machine makes the ticks of
//!   the schedule due while it is up ([`Life::expected_ticks`]).
//! - **A clock fault on a machine that is down** steps the machine's physical
//!   clock all the same (the clock is the computer's, not the process's), and
//!   is logged when the machine restarts, right after `Restarted`; if it never
//!   restarts, nothing is logged.
//! - Validation keeps one machine's crash windows apart, and its pauses apart
//!   from each other and from its crashes.

use clocklab_faults::{FaultPlan, MachineFault, RestartClock};
use clocklab_model::{MachineId, schedule};

/// What changes for a machine at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    /// The machine restarts after a crash.
    Restart {
        /// Its clocks come back as they were (else from zero).
        recovered: bool,
        /// The crash fault's index in the plan.
        fault: usize,
    },
    /// A pause ends.
    Resume {
        /// The pause fault's index in the plan.
        fault: usize,
    },
    /// Its physical clock steps by `step_us` and/or takes a new drift.
    Clock {
        /// The step, in microseconds (0 for none).
        step_us: i64,
        /// The new drift, in parts per million, if it changes.
        drift_ppm: Option<f64>,
        /// The clock fault's index in the plan.
        fault: usize,
    },
    /// The machine crashes.
    Crash {
        /// The crash fault's index in the plan.
        fault: usize,
    },
    /// A pause begins; it ends at `until_us`.
    Pause {
        /// When the ticks go on, microseconds after the start of the run.
        until_us: u64,
        /// The pause fault's index in the plan.
        fault: usize,
    },
}

impl Change {
    /// The order of changes at one instant: what ends before what begins
    /// (a restart, a resume, a clock change, a crash, a pause).
    pub fn rank(&self) -> u8 {
        match self {
            Change::Restart { .. } => 0,
            Change::Resume { .. } => 1,
            Change::Clock { .. } => 2,
            Change::Crash { .. } => 3,
            Change::Pause { .. } => 4,
        }
    }
}

/// One change, at its instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LifeEvent {
    /// When, in microseconds after the start of the run.
    pub at_us: u64,
    /// What.
    pub change: Change,
}

/// One machine's life over a run; see the [module documentation](self).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Life {
    events: Vec<LifeEvent>,
    duration_us: u64,
}

impl Life {
    /// The life of machine `id` under `plan` in a run of `duration_us`.
    pub fn of(plan: &FaultPlan, id: MachineId, duration_us: u64) -> Life {
        Life::new(&plan.machine_faults(id), duration_us)
    }

    /// The life that `faults` (one machine's, as validation accepts them)
    /// make in a run of `duration_us`.
    pub fn new(faults: &[MachineFault], duration_us: u64) -> Life {
        let mut events = Vec::with_capacity(faults.len() * 2);
        for fault in faults {
            match *fault {
                MachineFault::Crash { at_us, restart, fault } => {
                    events.push(LifeEvent { at_us, change: Change::Crash { fault } });
                    if let Some((restart_us, clock)) = restart.filter(|&(us, _)| us < duration_us) {
                        let recovered = clock == RestartClock::Recovered;
                        events.push(LifeEvent { at_us: restart_us, change: Change::Restart { recovered, fault } });
                    }
                }
                MachineFault::Pause { from_us, until_us, fault } => {
                    let until_us = until_us.min(duration_us);
                    events.push(LifeEvent { at_us: from_us, change: Change::Pause { until_us, fault } });
                    events.push(LifeEvent { at_us: until_us, change: Change::Resume { fault } });
                }
                MachineFault::Clock { at_us, step_us, drift_ppm, fault } => {
                    events.push(LifeEvent { at_us, change: Change::Clock { step_us, drift_ppm, fault } });
                }
            }
        }
        events.sort_by_key(|event| (event.at_us, event.change.rank()));
        Life { events, duration_us }
    }

    /// Every change, in the order the machine meets them.
    pub fn events(&self) -> &[LifeEvent] {
        &self.events
    }

    /// Whether nothing ever happens to the machine.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The windows in which the machine is down: from each crash to its
    /// restart, or to the end of the run.
    pub fn down_windows(&self) -> Vec<(u64, u64)> {
        let mut windows = Vec::new();
        let mut down_since = None;
        for event in &self.events {
            match event.change {
                Change::Crash { .. } => down_since = Some(event.at_us),
                Change::Restart { .. } => {
                    if let Some(since) = down_since.take() {
                        windows.push((since, event.at_us));
                    }
                }
                _ => {}
            }
        }
        if let Some(since) = down_since {
            windows.push((since, self.duration_us.max(since)));
        }
        windows
    }

    /// Whether the machine is down at `at_us` (a change at that instant
    /// included).
    pub fn is_down(&self, at_us: u64) -> bool {
        self.down_windows().iter().any(|&(from, to)| from <= at_us && at_us < to)
    }

    /// Whether a pause holds back a tick due at `due_us`: it then runs late
    /// as the plan meant.
    pub fn paused_at(&self, due_us: u64) -> bool {
        self.events.iter().any(|event| match event.change {
            Change::Pause { until_us, .. } => event.at_us <= due_us && due_us < until_us,
            _ => false,
        })
    }

    /// How many ticks a machine at `rate` makes over the run: those of its
    /// schedule due while it is up.
    pub fn expected_ticks(&self, rate: u32) -> u64 {
        let all = schedule::n_ticks(rate, self.duration_us);
        let gone: u64 = self
            .down_windows()
            .iter()
            .map(|&(from, to)| {
                let to = to.min(self.duration_us);
                schedule::n_ticks(rate, to).saturating_sub(schedule::n_ticks(rate, from.min(to)))
            })
            .sum();
        all - gone
    }

    /// The index of the restart at `at_us` in [`Life::events`], if there is one.
    pub fn restart_at(&self, at_us: u64) -> Option<usize> {
        self.events.iter().position(|event| event.at_us == at_us && matches!(event.change, Change::Restart { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_faults::FaultSpec;

    fn life(faults: &[FaultSpec], duration_s: f64) -> Life {
        clocklab_faults::validate(faults, 3, duration_s).unwrap();
        let duration_us = schedule::duration_us(duration_s);
        Life::of(&FaultPlan::new(faults, 1, duration_us), 2, duration_us)
    }

    fn crash(start: f64, end: Option<f64>) -> FaultSpec {
        FaultSpec::Crash { machine: 2, start, end, restart_clock: RestartClock::Fresh }
    }

    #[test]
    fn what_ends_comes_before_what_begins_at_one_instant() {
        let faults = [
            FaultSpec::Pause { machine: 2, start: 2.0, end: 3.0 },
            crash(1.0, Some(2.0)),
            FaultSpec::Clock { machine: 2, start: 2.0, step_ms: Some(5.0), drift_ppm: None },
            crash(3.0, None),
        ];
        let kinds: Vec<(u64, u8)> =
            life(&faults, 10.0).events().iter().map(|e| (e.at_us / 1_000_000, e.change.rank())).collect();
        assert_eq!(kinds, [(1, 3), (2, 0), (2, 2), (2, 4), (3, 1), (3, 3)]);
    }

    #[test]
    fn ticks_due_while_down_are_gone_and_a_late_restart_never_comes() {
        // Rate 2 for 10 s: 20 ticks. Down from 0 for good: none.
        assert_eq!(life(&[crash(0.0, None)], 10.0).expected_ticks(2), 0);
        // Down [1, 2.5): ticks at 1.0, 1.5, 2.0 are gone.
        let one = life(&[crash(1.0, Some(2.5))], 10.0);
        assert_eq!(one.expected_ticks(2), 17);
        assert_eq!(one.down_windows(), [(1_000_000, 2_500_000)]);
        assert!(one.is_down(1_000_000) && !one.is_down(2_500_000));
        // A restart after the end never happens.
        let late = life(&[crash(9.0, Some(12.0))], 10.0);
        assert_eq!(late.events().len(), 1);
        assert_eq!(late.down_windows(), [(9_000_000, 10_000_000)]);
        assert_eq!(late.expected_ticks(2), 18);
    }

    #[test]
    fn a_pause_holds_ticks_back_without_losing_them() {
        let paused = life(&[FaultSpec::Pause { machine: 2, start: 1.0, end: 20.0 }], 10.0);
        assert_eq!(paused.expected_ticks(2), 20);
        assert!(paused.paused_at(5_000_000));
        // The pause outlasts the run: it ends at the deadline.
        assert_eq!(paused.events()[1], LifeEvent { at_us: 10_000_000, change: Change::Resume { fault: 0 } });
    }
}
