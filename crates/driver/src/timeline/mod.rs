//! One machine's timeline: *when* it ticks, crashes, restarts, pauses and
//! has its clock changed, as a state machine without I/O.
//!
//! The [`Driver`] says *what* a tick or a fault writes; the [`Timeline`] says
//! *when*, for both runtimes, the way quinn-proto's `Connection` owns its
//! timers: [`Timeline::poll_timeout`] says when it next needs to run,
//! [`Timeline::handle_timeout`] runs what is due, and the runtime around it
//! only waits and moves bytes (the simulator pops an event heap in virtual
//! time; the real runtime sleeps on a monotonic clock). What the timeline
//! does comes out through [`Effects`]: lines to write, frames to send, and
//! the crash and restart of the machine. The rules:
//!
//! - **Ticks.** Tick `k` is due `k / rate` seconds after the start
//!   (`clocklab_model::schedule`); a late tick runs as soon as it can, and
//!   missed ticks run back to back, never skipped. One more than a tick
//!   period late writes `Behind schedule` first (`crate::lateness`).
//! - **The machine's faults** come from its [`Life`], in time order, before
//!   a tick due at the same instant: see [`crate::life`] for what each does
//!   on a machine that is up, paused or down.
//! - **Connections.** A machine logs `Connected to machine <j>` when a
//!   connection to `j` is up and `Disconnected from machine <j>` when one it
//!   had goes; after a restart it is connected to no one until the runtime
//!   says so. A message to a peer it is not connected to is gone (the crash
//!   that parted them took it).
//! - **Messages still at the sender.** A message the fault plan delays (a
//!   latency, a partition that holds) stays at its sender until its
//!   release. One released after the drain (the end of ticking plus
//!   `drain_us`) is held at the end ([`is_held`]): no run waits for it. The
//!   sender logs every message still at it as `Held`, at the end, or when
//!   it crashes (just before `Crashed`: the crash took it before it left);
//!   the runtimes drop the same messages, by the same rule.

use clocklab_faults::{Fate, FaultPlan};
use clocklab_log::Record;
use clocklab_model::{Delivery, MachineId, ParamsError, Stamp, schedule};

use crate::life::{Change, Life};
use crate::{ClockSnapshot, Driver, DriverParams, LatenessRecorder, LatenessSummary};

/// The run a timeline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunTimes {
    /// The start of the run, true time in microseconds since the Unix epoch.
    pub start_us: i64,
    /// How long the machines tick, in microseconds.
    pub duration_us: u64,
    /// How long after ticking ends a message may still be released (see
    /// [`is_held`]).
    pub drain_us: u64,
}

/// Whether a message the fault plan releases at `release_us` is held at the
/// end of a run whose drain ends at `drain_end_us` (both in microseconds
/// after the start): it is, when it would leave after the drain.
pub fn is_held(release_us: u64, drain_end_us: u64) -> bool {
    release_us > drain_end_us
}

/// What is due next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// A change of the machine's life (a fault, a restart, the end of a pause).
    Change,
    /// A tick.
    Tick,
}

/// When the timeline next needs to run, and for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout {
    /// Microseconds after the start of the run (possibly already past).
    pub at_us: u64,
    /// What is due then.
    pub due: Due,
}

/// One message of a send, as the fault plan lets it go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The recipient.
    pub to: MachineId,
    /// The latency faults' delay, in microseconds, on top of the network's.
    pub extra_delay_us: u64,
    /// A partition holds it until then (microseconds after the start; 0 if none).
    pub hold_until_us: u64,
    /// When the plan lets it leave: the send's due instant plus the extra
    /// delay, or the heal, whichever is later (microseconds after the start);
    /// for a late tick, possibly already past: it leaves at once.
    pub release_us: u64,
}

/// What a timeline's work does outside the machine: implemented by each runtime.
pub trait Effects {
    /// Why an effect failed (a log that cannot be written).
    type Error;

    /// Writes one line of the machine's log.
    fn line(&mut self, record: &Record) -> Result<(), Self::Error>;

    /// Sends one frame to the recipients the fault plan lets it reach.
    fn send(&mut self, frame: &[u8], to: &[Dispatch]) -> Result<(), Self::Error>;

    /// The machine has crashed (its `Crashed` line is written): what it held
    /// is gone (`queue_lost` messages of its queue, and every message still
    /// at it, which its `Held` lines name), and its peers lose it.
    fn crashed(&mut self, queue_lost: u64) -> Result<(), Self::Error> {
        let _ = queue_lost;
        Ok(())
    }

    /// The machine has restarted (its `Restarted` line is written).
    fn restarted(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A message still at its sender: when the fault plan releases it, the
/// order it was sent in, its recipient and its Lamport clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AtSender {
    release_us: u64,
    seq: u64,
    to: MachineId,
    clock: u64,
}

/// One machine's timeline; see the [module documentation](self).
#[derive(Debug)]
pub struct Timeline {
    driver: Driver,
    plan: FaultPlan,
    life: Life,
    times: RunTimes,
    /// The index in the life of the next change.
    next_change: usize,
    /// The ticks of the whole schedule.
    n_ticks: u64,
    /// The index of the next tick.
    next_tick: u64,
    /// When it is due, microseconds after the start (`u64::MAX` past the
    /// last): kept, so that a poll computes nothing.
    next_due_us: u64,
    /// Nothing at or after this instant happens (the deadline, or a stop).
    stop_us: u64,
    up: bool,
    paused: bool,
    /// Which incarnation runs: 0 at the start, one more per restart.
    incarnation: u32,
    /// The clocks at the last crash, for a restart that recovers them.
    snapshot: Option<ClockSnapshot>,
    /// Per peer (`connected[j - 1]`), whether a connection to it is up.
    connected: Vec<bool>,
    /// Where this machine listens, for `Restarted`.
    host: String,
    port: Option<u16>,
    /// Clock changes while the machine was down, to log at its restart.
    clock_lines: Vec<(i64, Option<f64>)>,
    /// Messages still at the sender, earliest release first: sent, and
    /// released later than their send.
    at_sender: std::collections::BinaryHeap<std::cmp::Reverse<AtSender>>,
    /// Messages released after the drain: never sent, held at the end.
    held: Vec<AtSender>,
    /// The number of the next message a send puts at the sender.
    next_seq: u64,
    /// Per peer (`unconnected[j - 1]`), messages not sent because no
    /// connection to it was up.
    unconnected: Vec<u64>,
    /// Ticks due before this instant (microseconds after the start) were
    /// held back by a restart, as planned.
    ready_us: u64,
    lateness: Option<LatenessRecorder>,
    /// Reused for every send, so that a tick allocates nothing.
    frame: Vec<u8>,
    recipients: Vec<MachineId>,
    dispatches: Vec<Dispatch>,
}

impl Timeline {
    /// The first incarnation of the machine of `params`, in the run of
    /// `plan` (the network's decisions and the machine's faults) and `times`.
    /// With `record_lateness`, every tick's lateness is kept (the real
    /// runtime's; the simulator is never late but after a pause).
    pub fn new(
        params: DriverParams,
        plan: FaultPlan,
        times: RunTimes,
        record_lateness: bool,
    ) -> Result<Timeline, ParamsError> {
        let mut driver = Driver::new(params, times.start_us)?;
        driver.start(times.start_us);
        let life = Life::of(&plan, params.id, times.duration_us);
        let n_ticks = schedule::n_ticks(driver.rate(), times.duration_us);
        Ok(Timeline {
            driver,
            plan,
            life,
            times,
            next_change: 0,
            n_ticks,
            next_tick: 0,
            next_due_us: if n_ticks > 0 { 0 } else { u64::MAX },
            stop_us: times.duration_us,
            up: true,
            paused: false,
            incarnation: 0,
            snapshot: None,
            connected: vec![false; params.n_machines as usize],
            host: String::new(),
            port: None,
            clock_lines: Vec::new(),
            at_sender: std::collections::BinaryHeap::new(),
            held: Vec::new(),
            next_seq: 0,
            unconnected: vec![0; params.n_machines as usize],
            ready_us: 0,
            lateness: record_lateness.then(LatenessRecorder::default),
            frame: Vec::new(),
            recipients: Vec::new(),
            dispatches: Vec::new(),
        })
    }

    /// A new incarnation of the machine, restarted by the plan at `at_us`
    /// after the start (a new process, in the real runtime), at true time
    /// `now_us`, listening on `host:port`: the life before the restart is
    /// taken as it went (its clock faults applied to the physical clock),
    /// then the restart writes `Restarted`, with the clocks of `recovered`
    /// if the plan recovers them, and the clock faults of the time it was
    /// down. Its first tick is the first due at or after `at_us`.
    ///
    /// # Errors
    ///
    /// [`ParamsError`] if the parameters make no machine; `Ok(None)` if the
    /// plan has no restart of this machine at `at_us`.
    #[allow(clippy::too_many_arguments)] // A restart's every input, passed once.
    pub fn restarted<E: Effects>(
        params: DriverParams,
        plan: FaultPlan,
        times: RunTimes,
        record_lateness: bool,
        at_us: u64,
        recovered: Option<ClockSnapshot>,
        (host, port): (&str, Option<u16>),
        now_us: i64,
        effects: &mut E,
    ) -> Result<Option<Result<Timeline, E::Error>>, ParamsError> {
        let mut timeline = Timeline::new(params, plan, times, record_lateness)?;
        let Some(restart_idx) = timeline.life.restart_at(at_us) else { return Ok(None) };
        timeline.host = host.to_string();
        timeline.port = port;
        // The life before the restart, without lines: the incarnations
        // before this one wrote them.
        for idx in 0..restart_idx {
            let event = timeline.life.events()[idx];
            let at = times.start_us.saturating_add_unsigned(event.at_us);
            match event.change {
                Change::Crash { .. } => {
                    timeline.up = false;
                    timeline.paused = false;
                    timeline.clock_lines.clear();
                }
                Change::Restart { .. } => timeline.up = true,
                Change::Clock { step_us, drift_ppm, .. } => {
                    timeline.driver.step_clock(at, step_us, drift_ppm);
                    if !timeline.up {
                        timeline.clock_lines.push((step_us, drift_ppm));
                    }
                }
                Change::Pause { .. } | Change::Resume { .. } => {}
            }
        }
        timeline.snapshot = recovered;
        timeline.incarnation = timeline.life.events()[..restart_idx]
            .iter()
            .filter(|event| matches!(event.change, Change::Restart { .. }))
            .count() as u32;
        timeline.next_change = restart_idx;
        let restart = timeline.apply(now_us, effects);
        Ok(Some(restart.map(|()| timeline)))
    }

    /// The run starts at true time `start_us` (machines agree on it once
    /// they are connected, after their first line): the schedule and the
    /// physical clock's offset and drift count from there.
    pub fn start(&mut self, start_us: i64) {
        self.times.start_us = start_us;
        self.driver.start(start_us);
    }

    /// The start of the run, true time in microseconds since the Unix epoch.
    pub fn start_us(&self) -> i64 {
        self.times.start_us
    }

    /// Ticks due before `at_us` after the start were held back by the
    /// restart itself (a new process starting and connecting): their
    /// lateness is the plan's, told apart as a pause's is.
    pub fn hold_back_until(&mut self, at_us: u64) {
        self.ready_us = self.ready_us.max(at_us);
    }

    /// The machine's driver: its rate, counts and clocks.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Its life under the fault plan.
    pub fn life(&self) -> &Life {
        &self.life
    }

    /// Its drawn rate.
    pub fn rate(&self) -> u32 {
        self.driver.rate()
    }

    /// Whether it is up (not crashed).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Which incarnation runs: 0 at the start, one more per restart.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Whether a connection to `peer` is up.
    pub fn is_connected(&self, peer: MachineId) -> bool {
        self.connected.get(peer as usize - 1).copied().unwrap_or(false)
    }

    /// Microseconds after the start of true time `now_us` (0 before the start).
    fn since_start(&self, now_us: i64) -> u64 {
        u64::try_from(now_us.saturating_sub(self.times.start_us)).unwrap_or(0)
    }

    /// The first line: where the machine listens and the rate it drew.
    pub fn initialized<E: Effects>(
        &mut self,
        now_us: i64,
        host: &str,
        port: Option<u16>,
        effects: &mut E,
    ) -> Result<(), E::Error> {
        self.host = host.to_string();
        self.port = port;
        effects.line(self.driver.initialized(now_us, host, port))
    }

    /// A connection to `peer` (at `host:port`) is up: `Connected`, unless it
    /// was up already or the machine is down. Returns whether it logged.
    pub fn connected<E: Effects>(
        &mut self,
        now_us: i64,
        peer: MachineId,
        (host, port): (&str, Option<u16>),
        effects: &mut E,
    ) -> Result<bool, E::Error> {
        let idx = peer as usize - 1;
        if !self.up || self.connected[idx] || peer == self.driver.params().id {
            return Ok(false);
        }
        self.connected[idx] = true;
        effects.line(self.driver.connected(now_us, peer, host, port))?;
        Ok(true)
    }

    /// The connection to `peer` is gone: `Disconnected`, once, if it was up
    /// and the machine is up. Returns whether it logged.
    pub fn disconnected<E: Effects>(
        &mut self,
        now_us: i64,
        peer: MachineId,
        effects: &mut E,
    ) -> Result<bool, E::Error> {
        let idx = peer as usize - 1;
        if !self.up || !self.connected[idx] {
            return Ok(false);
        }
        self.connected[idx] = false;
        effects.line(self.driver.disconnected(now_us, peer))?;
        Ok(true)
    }

    /// A message from `from` arrived at true time `now_us`: into the queue
    /// (or refused by its cap), or `None` when the machine is down (the
    /// message is gone with it).
    pub fn deliver(&mut self, now_us: i64, from: MachineId, stamp: Stamp) -> Option<Delivery> {
        self.up.then(|| self.driver.deliver(now_us, from, stamp))
    }

    /// When the timeline next needs to run, if ever: the next change of its
    /// life or its next tick, whichever is first (a change on a tie).
    pub fn poll_timeout(&self) -> Option<Timeout> {
        let change = self.life.events().get(self.next_change).filter(|event| {
            // A pause that ends at the deadline still lets its ticks catch up.
            event.at_us < self.stop_us || (event.at_us == self.stop_us && matches!(event.change, Change::Resume { .. }))
        });
        let tick = (self.up && !self.paused && self.next_due_us < self.stop_us).then_some(self.next_due_us);
        match (change, tick) {
            (Some(change), Some(tick_us)) if tick_us < change.at_us => Some(Timeout { at_us: tick_us, due: Due::Tick }),
            (Some(change), _) => Some(Timeout { at_us: change.at_us, due: Due::Change }),
            (None, Some(tick_us)) => Some(Timeout { at_us: tick_us, due: Due::Tick }),
            (None, None) => None,
        }
    }

    /// Runs what is due at true time `now_us`: every change of the machine's
    /// life due by then, if one comes first; otherwise one tick due by then.
    /// Call it until [`Timeline::poll_timeout`] is later than now (a runtime
    /// moves what arrived into the queue between two calls).
    pub fn handle_timeout<E: Effects>(&mut self, now_us: i64, effects: &mut E) -> Result<(), E::Error> {
        let since_us = self.since_start(now_us);
        match self.poll_timeout() {
            Some(Timeout { at_us, due: Due::Change }) if at_us <= since_us => {
                while let Some(Timeout { at_us, due: Due::Change }) = self.poll_timeout() {
                    if at_us > since_us {
                        break;
                    }
                    self.apply(now_us, effects)?;
                }
                Ok(())
            }
            Some(Timeout { at_us, due: Due::Tick }) if at_us <= since_us => self.tick(now_us, since_us, effects),
            _ => Ok(()),
        }
    }

    /// Applies the next change of the machine's life at true time `now_us`.
    fn apply<E: Effects>(&mut self, now_us: i64, effects: &mut E) -> Result<(), E::Error> {
        let event = self.life.events()[self.next_change];
        self.next_change += 1;
        match event.change {
            Change::Crash { .. } => {
                if !self.up {
                    return Ok(());
                }
                // What had not left the machine goes with it: said first.
                let since_us = self.since_start(now_us);
                for message in self.still_at_sender(since_us) {
                    effects.line(self.driver.held(now_us, message.to, message.clock))?;
                }
                let (line, queue_lost) = self.driver.crashed(now_us);
                // A recovering machine reads its clocks back from this line.
                self.snapshot = Some(ClockSnapshot::of(line));
                effects.line(line)?;
                self.up = false;
                self.paused = false;
                self.connected.fill(false);
                effects.crashed(queue_lost)
            }
            Change::Restart { recovered, .. } => {
                if self.up {
                    return Ok(());
                }
                let snapshot = self.snapshot.take();
                let clocks = if recovered { snapshot.as_ref() } else { None };
                effects.line(self.driver.restarted(now_us, &self.host, self.port, clocks))?;
                self.up = true;
                self.incarnation += 1;
                for (step_us, drift_ppm) in std::mem::take(&mut self.clock_lines) {
                    effects.line(self.driver.clock_line(now_us, step_us, drift_ppm))?;
                }
                // Its schedule goes on from the planned restart.
                self.set_next_tick(schedule::n_ticks(self.driver.rate(), event.at_us));
                self.ready_us = self.ready_us.max(event.at_us);
                effects.restarted()
            }
            Change::Pause { .. } => {
                self.paused = self.up;
                Ok(())
            }
            Change::Resume { .. } => {
                self.paused = false;
                Ok(())
            }
            Change::Clock { step_us, drift_ppm, .. } => {
                let at_us = self.times.start_us.saturating_add_unsigned(event.at_us);
                if self.up {
                    effects.line(self.driver.clock_changed(now_us, at_us, step_us, drift_ppm))
                } else {
                    // The computer's clock steps while its process is down; the
                    // next incarnation says so.
                    self.driver.step_clock(at_us, step_us, drift_ppm);
                    self.clock_lines.push((step_us, drift_ppm));
                    Ok(())
                }
            }
        }
    }

    /// The messages still at the sender at `since_us` after the start (not
    /// released by then), in the order they were sent, taken out.
    fn still_at_sender(&mut self, since_us: u64) -> Vec<AtSender> {
        let mut left: Vec<AtSender> = std::mem::take(&mut self.held);
        left.extend(
            std::mem::take(&mut self.at_sender)
                .into_iter()
                .map(|std::cmp::Reverse(message)| message)
                .filter(|message| message.release_us > since_us),
        );
        left.sort_by_key(|message| message.seq);
        left
    }

    /// Runs the next tick at true time `now_us` (`since_us` after the start).
    fn tick<E: Effects>(&mut self, now_us: i64, since_us: u64, effects: &mut E) -> Result<(), E::Error> {
        // Messages released by now have left.
        while self.at_sender.peek().is_some_and(|message| message.0.release_us <= since_us) {
            self.at_sender.pop();
        }
        let (k, due_us) = (self.next_tick, self.next_due_us);
        self.set_next_tick(k + 1);
        let late_us = since_us.saturating_sub(due_us);
        if let Some(lateness) = &mut self.lateness {
            lateness.record(std::time::Duration::from_micros(late_us));
        }
        // Lateness a pause or a restart caused is the plan's, told apart.
        let planned = due_us < self.ready_us || self.life.paused_at(due_us);
        if let Some(line) = self.driver.before_tick(now_us, k, late_us, planned) {
            effects.line(line)?;
        }
        let step = self.driver.tick(now_us);
        effects.line(step.record)?;
        let Some(frame) = step.frame else { return Ok(()) };
        self.dispatches.clear();
        if self.plan.is_empty() {
            // No fault to meet: every message leaves at once, to the peers
            // it is connected to, straight from the driver's frame.
            for &to in step.recipients() {
                if self.connected[to as usize - 1] {
                    self.dispatches.push(Dispatch { to, extra_delay_us: 0, hold_until_us: 0, release_us: since_us });
                } else {
                    self.unconnected[to as usize - 1] += 1;
                }
            }
            return if self.dispatches.is_empty() { Ok(()) } else { effects.send(frame, &self.dispatches) };
        }
        // The plan may write `Lost` lines through the driver: the frame and
        // the recipients are kept apart first.
        self.frame.clear();
        self.frame.extend_from_slice(frame);
        self.recipients.clear();
        self.recipients.extend_from_slice(step.recipients());
        let clock = step.record.logical_clock;
        let drain_end_us = self.drain_end_us();
        for idx in 0..self.recipients.len() {
            let to = self.recipients[idx];
            // Every message meets the plan, so that the k-th of a link
            // meets the same draws in both runtimes; at the tick's due
            // instant, so that a late tick's messages meet the faults,
            // and leave, as if it had run on time.
            match self.plan.on_send(due_us, self.driver.params().id, to) {
                Fate::Lost { .. } => effects.line(self.driver.lost(now_us, to, clock))?,
                Fate::Deliver { extra_delay_us, hold_until_us } => {
                    let release_us = due_us.saturating_add(extra_delay_us).max(hold_until_us);
                    let message = AtSender { release_us, seq: self.next_seq, to, clock };
                    if is_held(release_us, drain_end_us) {
                        self.next_seq += 1;
                        self.held.push(message);
                    } else if self.connected[to as usize - 1] {
                        if release_us > since_us {
                            self.next_seq += 1;
                            self.at_sender.push(std::cmp::Reverse(message));
                        }
                        self.dispatches.push(Dispatch { to, extra_delay_us, hold_until_us, release_us });
                    } else {
                        self.unconnected[to as usize - 1] += 1;
                    }
                }
            }
        }
        if self.dispatches.is_empty() { Ok(()) } else { effects.send(&self.frame, &self.dispatches) }
    }

    /// The next tick is tick `k`.
    fn set_next_tick(&mut self, k: u64) {
        self.next_tick = k;
        self.next_due_us = if k < self.n_ticks { schedule::tick_offset_us(k, self.driver.rate()) } else { u64::MAX };
    }

    /// Nothing more happens from `at_us` after the start on (a stop request:
    /// ticking ends early; a later instant than the deadline changes nothing).
    pub fn stop_at(&mut self, at_us: u64) {
        self.stop_us = self.stop_us.min(at_us);
    }

    /// When ticking ends: the deadline, or the stop.
    pub fn ticking_end_us(&self) -> u64 {
        self.stop_us
    }

    /// When the drain ends, microseconds after the start: a message released
    /// later is held at the end ([`is_held`]).
    pub fn drain_end_us(&self) -> u64 {
        self.stop_us.saturating_add(self.times.drain_us)
    }

    /// The end of the log at true time `now_us`, if the machine is up: a
    /// `Held` line per message held at the end, a line per message left in
    /// the queue (`Unprocessed`, counting down), then `Stopped`. A machine
    /// that crashed for good ends with its `Crashed` line and writes nothing.
    pub fn end<E: Effects>(&mut self, now_us: i64, effects: &mut E) -> Result<(), E::Error> {
        if !self.up {
            return Ok(());
        }
        let drain_end_us = self.drain_end_us();
        for message in self.still_at_sender(drain_end_us) {
            effects.line(self.driver.held(now_us, message.to, message.clock))?;
        }
        for record in self.driver.end(now_us) {
            effects.line(&record)?;
        }
        Ok(())
    }

    /// Per peer, messages not sent because no connection to it was up (it
    /// was down, or this incarnation had not connected to it yet, or it was
    /// declared gone); peers with none are left out.
    pub fn unconnected(&self) -> impl Iterator<Item = (MachineId, u64)> + '_ {
        self.unconnected.iter().enumerate().filter(|&(_, &n)| n > 0).map(|(idx, &n)| (idx as MachineId + 1, n))
    }

    /// The lateness of every tick so far, if kept.
    pub fn lateness(&self) -> LatenessSummary {
        self.lateness.as_ref().map(LatenessRecorder::summary).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
