//! One machine's statistics, accumulated line by line.

use std::collections::BTreeMap;

use clocklab_log::{Event, RunEvent, TickCounter};
use serde::Serialize;

use crate::growth::{self, Blocks, Growth};
use crate::stats::{Histogram, Series};

/// Jump statistics of one machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JumpStats {
    /// Mean jump per tick.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// Jump size → how many ticks had it.
    pub distribution: BTreeMap<u64, u64>,
}

/// Queue statistics of one machine, sampled at its ticks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueStats {
    /// Mean queue length at a tick.
    pub mean: f64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// At the last tick.
    pub last: u64,
    /// Its growth in messages per second, tested as a lag's is
    /// ([`crate::growth`]), the queue's length held from tick to tick.
    pub growth: Growth,
}

/// How loaded a machine was: what arrived against what it could process.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadStats {
    /// Messages that reached it (processed, or left unprocessed at the end).
    pub received: u64,
    /// Utilisation ρ: messages received / (rate × duration). Above 1 the
    /// machine receives more than it can process, whatever the run's length.
    pub utilisation: f64,
    /// Whether ρ > 1: its queue grows without bound.
    pub overloaded: bool,
}

/// Lag behind the leader: at every instant the largest logical clock of the
/// run minus the machine's own.
///
/// In seconds, a lag is its ticks divided by r_max, the run's fastest rate:
/// the rate at which the largest clock advances (the fastest machine ticks
/// r_max times a second, and no clock rises faster for long). Dividing by
/// the rate of whichever machine leads at the instant, as this analysis once
/// did, inflated a lag whenever a slow machine led briefly.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LagStats {
    /// Time-weighted mean, in ticks.
    pub mean_ticks: f64,
    /// Largest, in ticks.
    pub max_ticks: u64,
    /// Time-weighted mean, in seconds: `mean_ticks` / r_max.
    pub mean_s: f64,
    /// Largest, in seconds: `max_ticks` / r_max.
    pub max_s: f64,
    /// How fast it grows, in ticks per second, and whether it does
    /// ([`crate::growth`]): a growing lag's mean depends on the run's length.
    pub growth: Growth,
    /// For a machine whose lag does not grow: its mean lag in ticks, which a
    /// longer run would not change.
    pub stationary_ticks: Option<f64>,
}

/// A machine's hybrid logical clock against its physical clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HlcStats {
    /// The largest `l − pt` over its ticks, in microseconds.
    pub offset_max_us: i64,
    /// The mean `l − pt` over its ticks, in microseconds.
    pub offset_mean_us: f64,
    /// The largest counter `c`.
    pub counter_max: u64,
}

/// Tick counts by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventMix {
    /// Ticks that processed a message.
    pub processed: u64,
    /// Ticks that sent (one tick may send to several machines).
    pub sent: u64,
    /// Internal events.
    pub internal: u64,
}

/// One machine of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineSummary {
    /// Its number.
    pub id: u32,
    /// Its drawn clock rate, ticks per second.
    pub rate: u32,
    /// The fastest rate of the run over its own: how much faster the leader ticks.
    pub rate_ratio: f64,
    /// Ticks done.
    pub ticks: u64,
    /// The ticks its rate and the run's duration ask for.
    pub expected_ticks: f64,
    /// ticks / expected ticks.
    pub tick_ratio: f64,
    /// Logical clock at the end.
    pub final_clock: u64,
    /// Logical clock increase per second of the run.
    pub clock_rate_per_s: f64,
    /// Jumps.
    pub jump: JumpStats,
    /// Lag behind the leader.
    pub lag: LagStats,
    /// The queue.
    pub queue: QueueStats,
    /// What arrived against what it could process.
    pub load: LoadStats,
    /// Ticks by kind.
    pub events: EventMix,
    /// Messages sent (a tick to two machines sends two).
    pub messages_sent: u64,
    /// Messages processed.
    pub messages_processed: u64,
    /// Messages left unprocessed at the end: the `Unprocessed` lines, or for
    /// logs without them (the reference's) the queue length on `Stopped`.
    pub messages_unprocessed: u64,
    /// Messages the fault plan lost at this machine, as sender (its `Lost` lines).
    #[serde(skip_serializing_if = "is_zero")]
    pub messages_lost: u64,
    /// Messages the fault plan still held at this machine, as sender, when
    /// the run's drain ended (its `Held` lines).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_held: u64,
    /// Times it crashed.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub crashes: u32,
    /// Times a restart put its Lamport clock back (a fresh restart): how far
    /// back each time. Lamport's clock only rises while a machine lives.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clock_resets: Vec<u64>,
    /// Its HLC against its physical clock, when the run kept one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hlc: Option<HlcStats>,
    /// What the fluid model predicts for it from the run's rates alone
    /// ([`crate::predict::fluid`]); absent when the logs cannot say (no
    /// manifest to give E, a machine without a log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fluid: Option<crate::predict::FluidMachine>,
    /// What is wrong with its log (no `Stopped`, a clock that breaks its
    /// rule); a machine with problems is left out of the leader and flagged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Time series of one machine, for the figures (not in `summary.json`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MachineSeries {
    /// Logical clock over time.
    pub clock: Series,
    /// Lag behind the leader over time, in ticks.
    pub lag: Series,
    /// Queue length over time.
    pub queue: Series,
    /// HLC `l − pt` over time, in milliseconds.
    pub hlc_offset_ms: Series,
}

/// The running state of one machine during the merge.
#[derive(Debug, Default)]
pub(crate) struct MachineAcc {
    pub(crate) id: u32,
    pub(crate) rate: Option<u32>,
    pub(crate) clock: u64,
    pub(crate) stopped: bool,
    /// Its log has no more lines.
    pub(crate) finished: bool,
    /// A line broke a rule: its clock no longer counts for the leader.
    pub(crate) unsound: bool,
    /// It crashed and has not restarted: its clock does not count.
    pub(crate) down: bool,
    crashes: u32,
    lost: u64,
    held: u64,
    clock_resets: Vec<u64>,
    pub(crate) problems: Vec<String>,
    pub(crate) records: u64,
    stop_queue: Option<u64>,
    tick_counter: TickCounter,
    pub(crate) ticks: u64,
    jumps: Histogram,
    queue: Histogram,
    /// The queue's length over time, held from one tick to the next.
    queue_blocks: Blocks,
    last_queue: u64,
    last_tick_us: i64,
    pub(crate) mix: EventMix,
    messages_sent: u64,
    unprocessed_lines: u64,
    pub(crate) first_tick_us: Option<i64>,
    pub(crate) last_line_us: i64,
    pub(crate) lag_weighted_us: f64,
    pub(crate) alive_us: f64,
    pub(crate) lag_max: u64,
    pub(crate) lag_blocks: Blocks,
    hlc_offset_max_us: Option<i64>,
    hlc_offset_sum_us: f64,
    hlc_ticks: u64,
    hlc_counter_max: u64,
    pub(crate) series: MachineSeries,
}

impl MachineAcc {
    /// A machine whose rate the manifest may already know.
    pub(crate) fn new(id: u32, rate: Option<u32>) -> MachineAcc {
        MachineAcc { id, rate, ..MachineAcc::default() }
    }

    /// Notes a problem; the machine no longer counts for the leader.
    fn problem(&mut self, line_no: u64, what: String) {
        self.unsound = true;
        if self.problems.len() < 5 {
            self.problems.push(format!("line {line_no}: {what}"));
        }
    }

    /// Takes one line, which is not after `Stopped`.
    pub(crate) fn on_event(&mut self, event: &RunEvent, relative_us: i64) {
        let record = &event.record;
        self.records += 1;
        self.last_line_us = relative_us;
        match &record.event {
            Event::Initialized { rate, .. } => {
                self.rate = Some(*rate);
                self.clock = record.logical_clock;
            }
            Event::Internal | Event::Sent { .. } | Event::Processed { .. } => {
                if let Event::Sent { to } = &record.event {
                    self.messages_sent += to.len() as u64;
                }
                if self.tick_counter.continues_tick(record) {
                    // The second line of a double send (the reference's): the same tick.
                    return;
                }
                self.check_clock_rule(event);
                match record.event {
                    Event::Internal => self.mix.internal += 1,
                    Event::Sent { .. } => self.mix.sent += 1,
                    _ => self.mix.processed += 1,
                }
                self.ticks += 1;
                self.jumps.add(record.logical_clock.saturating_sub(self.clock));
                self.clock = self.clock.max(record.logical_clock);
                self.queue.add(record.queue_length);
                if self.first_tick_us.is_some() {
                    self.queue_blocks.add(self.last_tick_us, relative_us - self.last_tick_us, self.last_queue as f64);
                }
                self.last_queue = record.queue_length;
                self.last_tick_us = relative_us;
                self.first_tick_us.get_or_insert(relative_us);
                self.series.clock.push(relative_us, self.clock as f64);
                self.series.queue.push(relative_us, record.queue_length as f64);
                if let (Some(hlc), Some(pt)) = (record.hlc, record.physical_clock_us) {
                    let offset = hlc.l_us.saturating_sub(pt);
                    self.hlc_offset_max_us = Some(self.hlc_offset_max_us.map_or(offset, |max| max.max(offset)));
                    self.hlc_offset_sum_us += offset as f64;
                    self.hlc_ticks += 1;
                    self.hlc_counter_max = self.hlc_counter_max.max(hlc.c);
                    self.series.hlc_offset_ms.push(relative_us, offset as f64 / 1e3);
                }
            }
            Event::Unprocessed { .. } => self.unprocessed_lines += 1,
            Event::Lost { .. } => self.lost += 1,
            Event::Held { .. } => self.held += 1,
            Event::Crashed => {
                self.down = true;
                self.crashes += 1;
            }
            Event::Restarted { rate, .. } => {
                self.down = false;
                self.rate = Some(*rate);
                if record.logical_clock < self.clock {
                    self.clock_resets.push(self.clock - record.logical_clock);
                }
                self.clock = record.logical_clock;
                self.tick_counter = TickCounter::default();
            }
            Event::ClockChanged { .. } => {}
            Event::Stopped => {
                self.stopped = true;
                self.stop_queue = Some(record.queue_length);
            }
            Event::Connected { .. } | Event::Disconnected { .. } | Event::Behind { .. } => {}
        }
    }

    /// Lamport's rule on a tick: `+1`, or `max(own, received) + 1`. Logs
    /// without the received clock (the reference's) can only be checked to
    /// move forward.
    fn check_clock_rule(&mut self, event: &RunEvent) {
        let record = &event.record;
        let expected = match record.event {
            Event::Processed { clock: Some(stamp), .. } => Some(self.clock.max(stamp) + 1),
            Event::Processed { clock: None, .. } => None,
            _ => Some(self.clock + 1),
        };
        match expected {
            Some(want) if record.logical_clock != want && !self.unsound => {
                self.problem(event.line_no, format!("clock {} where Lamport's rule gives {want}", record.logical_clock))
            }
            None if record.logical_clock <= self.clock && !self.unsound => {
                self.problem(event.line_no, format!("clock {} does not move forward", record.logical_clock))
            }
            _ => {}
        }
    }

    /// The machine's statistics over a run of `duration_s`, in which the
    /// fastest machine ticks at `fastest_rate` and the expected tick count of
    /// a rate is `expected_ticks(rate)`.
    pub(crate) fn summarise(
        &self,
        duration_s: f64,
        fastest_rate: u32,
        expected_ticks: impl Fn(u32) -> f64,
    ) -> MachineSummary {
        let rate = self.rate.unwrap_or(0);
        let expected = expected_ticks(rate);
        let unprocessed = if self.unprocessed_lines > 0 {
            self.unprocessed_lines
        } else {
            self.stop_queue.unwrap_or(self.last_queue)
        };
        let received = self.mix.processed + unprocessed;
        let capacity = f64::from(rate) * duration_s;
        let utilisation = if capacity > 0.0 { received as f64 / capacity } else { 0.0 };
        let lag_growth = growth::test(&self.lag_blocks);
        let mean_ticks = if self.alive_us > 0.0 { self.lag_weighted_us / self.alive_us } else { 0.0 };
        let fastest = f64::from(fastest_rate.max(1));
        let mut problems = self.problems.clone();
        if !self.stopped {
            // A machine that crashed for good (a fault of the plan) ends with `Crashed`.
            if !self.down {
                problems.push("the log ends without Stopped (the machine died or its log was cut)".to_string());
            }
        }
        MachineSummary {
            id: self.id,
            rate,
            rate_ratio: if rate > 0 { f64::from(fastest_rate) / f64::from(rate) } else { 0.0 },
            ticks: self.ticks,
            expected_ticks: expected,
            tick_ratio: if expected > 0.0 { self.ticks as f64 / expected } else { 0.0 },
            final_clock: self.clock,
            clock_rate_per_s: if duration_s > 0.0 { self.clock as f64 / duration_s } else { 0.0 },
            jump: JumpStats {
                mean: self.jumps.mean(),
                p50: self.jumps.percentile(0.5),
                p99: self.jumps.percentile(0.99),
                max: self.jumps.max(),
                distribution: self.jumps.counts(),
            },
            lag: LagStats {
                mean_ticks,
                max_ticks: self.lag_max,
                mean_s: mean_ticks / fastest,
                max_s: self.lag_max as f64 / fastest,
                growth: lag_growth,
                stationary_ticks: (!lag_growth.grows).then_some(mean_ticks),
            },
            queue: QueueStats {
                mean: self.queue.mean(),
                p99: self.queue.percentile(0.99),
                max: self.queue.max(),
                last: self.last_queue,
                growth: growth::test(&self.queue_blocks),
            },
            load: LoadStats { received, utilisation, overloaded: utilisation > 1.0 },
            events: self.mix.clone(),
            messages_sent: self.messages_sent,
            messages_processed: self.mix.processed,
            messages_unprocessed: unprocessed,
            messages_lost: self.lost,
            messages_held: self.held,
            crashes: self.crashes,
            clock_resets: self.clock_resets.clone(),
            hlc: self.hlc_offset_max_us.map(|offset_max_us| HlcStats {
                offset_max_us,
                offset_mean_us: self.hlc_offset_sum_us / self.hlc_ticks.max(1) as f64,
                counter_max: self.hlc_counter_max,
            }),
            fluid: None,
            problems,
        }
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}
