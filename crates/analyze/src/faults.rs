//! What each fault of a run's plan did, in numbers: one more streaming pass
//! over the logs of a run whose manifest lists faults (runs without faults
//! pay nothing).
//!
//! - a **partition**: the gap between the groups (the largest Lamport clock
//!   of one side minus the other's) when it began and at the heal, and how
//!   long after the heal the gap came back within what it was when the
//!   partition began;
//! - a **pause**: how many ticks the machine ran back to back when it went
//!   on, and its largest jump (increase of its Lamport clock on one tick)
//!   in the 5 s after, against the largest before;
//! - a **crash**: the clock at the crash and at the restart; after a fresh
//!   restart, the ticks whose Lamport clock was not above the clock at the
//!   crash (monotonicity broken, as the plan meant) and the largest jump
//!   that brought it back;
//! - a **clock** fault: `l − pt` of the machine's HLC (how far its hybrid
//!   clock runs ahead of its physical clock), mean over the 2 s before and
//!   after, and the largest after;
//! - a **loss**: messages sent on its links while it was active, and how
//!   many it lost (against its probability);
//! - a **latency**: the mean time from send to processing on its links while
//!   it was active, against the same links' when it was not.

use clocklab_causal::RunSource;
use clocklab_faults::{FaultPlan, FaultSpec, FaultWindow};
use clocklab_log::{Event, Pairing, RunEvent};
use clocklab_model::{MachineId, schedule};
use serde::Serialize;

use crate::run::RunSummary;

/// How long after a fault a catch-up jump is looked for, in microseconds.
const AFTER_US: i64 = 5_000_000;

/// How long before and after a clock fault `l − pt` is averaged, in microseconds.
const AROUND_US: i64 = 2_000_000;

/// One fault of a run, and what it did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultEffect {
    /// Its index in the plan.
    pub fault: usize,
    /// What it was (`partition [1] | [2, 3], hold`).
    pub label: String,
    /// When it began, seconds after the start of the run.
    pub start_s: f64,
    /// When it ended (a heal, a restart, a resume), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f64>,
    /// The machines it concerns (empty: the network as a whole).
    pub machines: Vec<MachineId>,
    /// What it did.
    pub effect: Effect,
}

/// What one fault did, by kind (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// A partition.
    Partition {
        /// The gap between the groups when it began, in ticks.
        gap_at_start: u64,
        /// The gap at the heal.
        gap_at_heal: u64,
        /// Seconds after the heal until the gap was back within
        /// `gap_at_start` (at least 1); none if it was not by the end.
        converged_after_s: Option<f64>,
        /// The largest jump of any machine before the partition.
        jump_before: u64,
        /// The largest jump of any machine in the 5 s after the heal.
        jump_after: u64,
    },
    /// A pause.
    Pause {
        /// Ticks run more than a tick period late when it went on.
        backlog_ticks: u64,
        /// Its largest jump before the pause.
        jump_before: u64,
        /// Its largest jump in the 5 s after.
        jump_after: u64,
    },
    /// A crash.
    Crash {
        /// Whether it came back with its clocks (none: it did not come back).
        recovered: Option<bool>,
        /// Its Lamport clock at the crash.
        clock_at_crash: u64,
        /// Its Lamport clock when it restarted.
        clock_at_restart: Option<u64>,
        /// Ticks after the restart whose Lamport clock was not above the
        /// clock at the crash: Lamport's monotonicity broken, as planned.
        ticks_not_above_crash: u64,
        /// Its largest jump in the 5 s after the restart.
        jump_after: u64,
    },
    /// A clock fault.
    Clock {
        /// The step, in milliseconds.
        step_ms: Option<f64>,
        /// The machine's mean HLC `l − pt` in the 2 s before, in microseconds.
        lead_before_us: Option<f64>,
        /// The same in the 2 s after.
        lead_after_us: Option<f64>,
        /// The largest after.
        lead_max_after_us: Option<i64>,
    },
    /// A loss fault.
    Loss {
        /// Messages sent on its links while it was active.
        sent: u64,
        /// Of those, lost.
        lost: u64,
        /// Its probability.
        probability: f64,
    },
    /// A latency fault.
    Latency {
        /// The mean time from send to processing on its links while it was
        /// active, in milliseconds.
        mean_delay_ms: Option<f64>,
        /// The same when it was not.
        mean_delay_ms_outside: Option<f64>,
    },
}

/// A running mean.
#[derive(Clone, Copy, Debug, Default)]
struct Mean {
    sum: f64,
    n: u64,
}

impl Mean {
    fn add(&mut self, value: f64) {
        self.sum += value;
        self.n += 1;
    }

    fn get(self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// What is measured of one fault as the events go by.
#[derive(Clone, Debug)]
struct Probe {
    window: FaultWindow,
    spec: FaultSpec,
    start_us: i64,
    end_us: Option<i64>,
    gap_at_start: Option<u64>,
    gap_at_heal: Option<u64>,
    converged_at_us: Option<i64>,
    jump_before: u64,
    jump_after: u64,
    clock_at_crash: Option<u64>,
    clock_at_restart: Option<u64>,
    recovered: Option<bool>,
    not_above: u64,
    lead_before: Mean,
    lead_after: Mean,
    lead_max_after: Option<i64>,
    sent: u64,
    lost: u64,
    delay_in: Mean,
    delay_out: Mean,
}

/// The effects of the faults of `run`'s plan (empty for a run without one,
/// or whose logs cannot be read again).
pub fn effects(run: &RunSummary) -> Vec<FaultEffect> {
    let Some(settings) = &run.info.settings else { return Vec::new() };
    if settings.faults.is_empty() {
        return Vec::new();
    }
    let Some(origin_us) = run.info.started_at.as_deref().and_then(parse_time_us) else { return Vec::new() };
    let Ok(source) = RunSource::open(&run.path) else { return Vec::new() };
    let Ok((events, _)) = source.events() else { return Vec::new() };
    let duration_us = schedule::duration_us(settings.duration);
    let plan = FaultPlan::new(&settings.faults, 0, duration_us);
    let mut probes: Vec<Probe> = plan
        .windows()
        .into_iter()
        .zip(&settings.faults)
        .map(|(window, spec)| Probe {
            start_us: origin_us.saturating_add_unsigned(window.start_us),
            end_us: window.end_us.map(|end| origin_us.saturating_add_unsigned(end)),
            window,
            spec: spec.clone(),
            gap_at_start: None,
            gap_at_heal: None,
            converged_at_us: None,
            jump_before: 0,
            jump_after: 0,
            clock_at_crash: None,
            clock_at_restart: None,
            recovered: None,
            not_above: 0,
            lead_before: Mean::default(),
            lead_after: Mean::default(),
            lead_max_after: None,
            sent: 0,
            lost: 0,
            delay_in: Mean::default(),
            delay_out: Mean::default(),
        })
        .collect();
    let ids: Vec<MachineId> = run.machines.iter().map(|m| m.id).collect();
    let mut clocks: Vec<u64> = vec![0; ids.len()];
    for event in events {
        let Some(idx) = ids.iter().position(|&id| id == event.id.machine) else { continue };
        let before = clocks[idx];
        clocks[idx] = event.record.logical_clock;
        let gaps = |groups: &[Vec<MachineId>]| group_gap(groups, &ids, &clocks);
        for probe in &mut probes {
            probe.observe(&event, before, &gaps);
        }
    }
    let rates: Vec<(MachineId, u32)> = run.machines.iter().map(|m| (m.id, m.rate)).collect();
    probes.into_iter().map(|probe| probe.effect(origin_us, &rates)).collect()
}

/// The gap between a partition's groups: the largest Lamport clock of any
/// group minus the smallest group's largest.
fn group_gap(groups: &[Vec<MachineId>], ids: &[MachineId], clocks: &[u64]) -> u64 {
    let tops: Vec<u64> = groups
        .iter()
        .map(|group| {
            group.iter().filter_map(|id| ids.iter().position(|m| m == id)).map(|idx| clocks[idx]).max().unwrap_or(0)
        })
        .collect();
    tops.iter().max().copied().unwrap_or(0) - tops.iter().min().copied().unwrap_or(0)
}

impl Probe {
    fn concerns(&self, machine: MachineId) -> bool {
        self.window.machines.is_empty() || self.window.machines.contains(&machine)
    }

    /// Takes one event of the run; `before` is its machine's clock before it.
    fn observe(&mut self, event: &RunEvent, before: u64, gap: &dyn Fn(&[Vec<MachineId>]) -> u64) {
        let record = &event.record;
        let machine = event.id.machine;
        let t = record.time_us;
        let jump = if record.event.is_tick() { record.logical_clock.saturating_sub(before) } else { 0 };
        let ended = self.end_us.is_some_and(|end| t >= end);
        let after_end = self.end_us.is_some_and(|end| (end..end + AFTER_US).contains(&t));
        match &self.spec {
            FaultSpec::Partition { groups, .. } => {
                if t < self.start_us {
                    self.jump_before = self.jump_before.max(jump);
                    self.gap_at_start = Some(gap(groups));
                } else if !ended {
                    self.gap_at_heal = Some(gap(groups));
                } else {
                    if after_end {
                        self.jump_after = self.jump_after.max(jump);
                    }
                    let limit = self.gap_at_start.unwrap_or(0).max(1);
                    if self.converged_at_us.is_none() && gap(groups) <= limit {
                        self.converged_at_us = Some(t);
                    }
                }
            }
            FaultSpec::Pause { .. } if self.concerns(machine) => {
                if t < self.start_us {
                    self.jump_before = self.jump_before.max(jump);
                } else if after_end {
                    self.jump_after = self.jump_after.max(jump);
                }
            }
            FaultSpec::Crash { .. } if self.concerns(machine) => match &record.event {
                Event::Crashed if self.clock_at_crash.is_none() && t >= self.start_us - 1_000_000 => {
                    self.clock_at_crash = Some(record.logical_clock);
                }
                Event::Restarted { recovered, .. } if self.clock_at_crash.is_some() && self.recovered.is_none() => {
                    self.recovered = Some(*recovered);
                    self.clock_at_restart = Some(record.logical_clock);
                    self.end_us = Some(t);
                }
                _ if record.event.is_tick() && self.recovered.is_some() => {
                    if record.logical_clock <= self.clock_at_crash.unwrap_or(0) {
                        self.not_above += 1;
                    }
                    if after_end {
                        self.jump_after = self.jump_after.max(jump);
                    }
                }
                _ => {}
            },
            FaultSpec::Clock { .. } if self.concerns(machine) && record.event.is_tick() => {
                if let (Some(hlc), Some(pt)) = (record.hlc, record.physical_clock_us) {
                    let lead = hlc.l_us - pt;
                    if (self.start_us - AROUND_US..self.start_us).contains(&t) {
                        self.lead_before.add(lead as f64);
                    } else if t >= self.start_us {
                        if t < self.start_us + AROUND_US {
                            self.lead_after.add(lead as f64);
                        }
                        self.lead_max_after = Some(self.lead_max_after.map_or(lead, |max| max.max(lead)));
                    }
                }
            }
            FaultSpec::Loss { links, .. } => {
                let active = t >= self.start_us && !ended;
                let on_link = |from: MachineId, to: MachineId| links.as_ref().is_none_or(|l| l.contains(&[from, to]));
                match &record.event {
                    Event::Sent { to } if active => {
                        self.sent += to.iter().filter(|&&to| on_link(machine, to)).count() as u64;
                    }
                    Event::Lost { to, .. } if active && on_link(machine, *to) => self.lost += 1,
                    _ => {}
                }
            }
            FaultSpec::Latency { links, .. } => {
                if let (Event::Processed { .. }, Pairing::Paired(sent)) = (&record.event, &event.pairing) {
                    let from = sent.id.send.machine;
                    if links.as_ref().is_none_or(|l| l.contains(&[from, machine])) {
                        let delay_ms = (t - sent.time_us) as f64 / 1e3;
                        let active = sent.time_us >= self.start_us && self.end_us.is_none_or(|end| sent.time_us < end);
                        if active { self.delay_in.add(delay_ms) } else { self.delay_out.add(delay_ms) }
                    }
                }
            }
            _ => {}
        }
    }

    /// What it did; `rates` are the machines' rates (a pause's backlog is
    /// the ticks its machine's schedule had due while it was stopped).
    fn effect(self, origin_us: i64, rates: &[(MachineId, u32)]) -> FaultEffect {
        let seconds = |us: i64| (us - origin_us) as f64 / 1e6;
        let effect = match &self.spec {
            FaultSpec::Partition { .. } => Effect::Partition {
                gap_at_start: self.gap_at_start.unwrap_or(0),
                gap_at_heal: self.gap_at_heal.unwrap_or(0),
                converged_after_s: self
                    .converged_at_us
                    .zip(self.end_us)
                    .map(|(converged, heal)| (converged - heal).max(0) as f64 / 1e6),
                jump_before: self.jump_before,
                jump_after: self.jump_after,
            },
            FaultSpec::Pause { machine, .. } => Effect::Pause {
                backlog_ticks: rates.iter().find(|(id, _)| id == machine).map_or(0, |&(_, rate)| {
                    let due = |at_us: u64| schedule::n_ticks(rate, at_us);
                    due(self.window.end_us.unwrap_or(0)) - due(self.window.start_us)
                }),
                jump_before: self.jump_before,
                jump_after: self.jump_after,
            },
            FaultSpec::Crash { .. } => Effect::Crash {
                recovered: self.recovered,
                clock_at_crash: self.clock_at_crash.unwrap_or(0),
                clock_at_restart: self.clock_at_restart,
                ticks_not_above_crash: self.not_above,
                jump_after: self.jump_after,
            },
            FaultSpec::Clock { step_ms, .. } => Effect::Clock {
                step_ms: *step_ms,
                lead_before_us: self.lead_before.get(),
                lead_after_us: self.lead_after.get(),
                lead_max_after_us: self.lead_max_after,
            },
            FaultSpec::Loss { probability, .. } => {
                Effect::Loss { sent: self.sent, lost: self.lost, probability: *probability }
            }
            FaultSpec::Latency { .. } => {
                Effect::Latency { mean_delay_ms: self.delay_in.get(), mean_delay_ms_outside: self.delay_out.get() }
            }
        };
        FaultEffect {
            fault: self.window.fault,
            label: self.window.label.clone(),
            start_s: seconds(self.start_us),
            end_s: self.end_us.map(seconds),
            machines: self.window.machines.clone(),
            effect,
        }
    }
}

/// An RFC 3339 time in microseconds since the Unix epoch.
fn parse_time_us(text: &str) -> Option<i64> {
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1000).ok()
}
