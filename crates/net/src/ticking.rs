//! A connected machine's run: the absolute tick schedule, the fault plan's
//! instants, and the end (stop sending, read every peer to the end of its
//! stream, log what is left as `Unprocessed`, then `Stopped`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clocklab_driver::{Driver, LatenessRecorder, Route};
use clocklab_model::{Delivery, MachineId, schedule};
use crossbeam_channel::Receiver;

use crate::NetError;
use crate::accept::Inbound;
use crate::faults::{Reconnects, RunFaults};
use crate::link::LinkEvent;
use crate::logs::Logs;
use crate::node::{
    ABSORB_INTERVAL, Bound, Connected, NodeConfig, RunSummary, StopRequest, Wake, checked_after, instant_of, now_us,
    wait_until,
};
use crate::send::Outbox;

/// The state of a ticking machine that the end needs too.
struct Ticking<'a> {
    config: &'a NodeConfig,
    driver: Driver,
    logs: Logs,
    summary: RunSummary,
    /// Per peer, its connections to us whose stream has not ended yet (a
    /// restarted peer's new one may come before its old one is seen to end).
    open: BTreeMap<MachineId, u32>,
    /// Peers logged `Disconnected` and not connected again since.
    down: BTreeSet<MachineId>,
    /// When ticking ends (moved earlier by a stop request for an instant).
    deadline: Instant,
    inbound: Receiver<Inbound>,
    /// Writes to the peers, off this thread.
    outbox: Outbox,
    /// The fault plan, as this machine takes part in it.
    faults: RunFaults,
    /// Connections to restarted peers being made.
    reconnects: Reconnects,
    /// The run's start, microseconds since the Unix epoch, and as an instant.
    start_us: i64,
    start: Instant,
}

impl Ticking<'_> {
    /// Takes one event from a reader thread. `ticking` is false once the
    /// machine has stopped ticking: a peer ending its stream then is the
    /// expected end, not a disconnection.
    fn absorb(&mut self, event: Inbound, ticking: bool) {
        match event {
            Inbound::Message { from, stamp } => {
                if self.driver.deliver(now_us(), from, stamp) == Delivery::Refused
                    && self.driver.machine().refused() == 1
                {
                    crate::note!(
                        "machine {}: the queue is full ({} messages): refusing messages from machine {from}; the total is reported at the end",
                        self.config.id(),
                        self.config.machine.queue_cap
                    );
                }
            }
            Inbound::Closed { from, error } => {
                let still_open = match self.open.get_mut(&from) {
                    Some(count) => {
                        *count -= 1;
                        *count > 0
                    }
                    None => false,
                };
                if !still_open {
                    self.open.remove(&from);
                }
                let early_end = Instant::now() + self.config.end_grace < self.deadline;
                if ticking && !still_open && (early_end || error.is_some()) {
                    if let Some(error) = error {
                        crate::note!("machine {}: connection from machine {from} failed: {error}", self.config.id());
                    }
                    self.disconnect(from);
                }
            }
            // A restarted peer's new connection: its stream is read to its end too.
            Inbound::Joined { from } => *self.open.entry(from).or_insert(0) += 1,
            Inbound::Ready { .. } => {}
        }
    }

    /// Logs `Disconnected from machine <peer>`, once each time it goes.
    fn disconnect(&mut self, peer: MachineId) {
        if self.down.insert(peer) {
            if !self.summary.disconnected.contains(&peer) {
                self.summary.disconnected.push(peer);
            }
            self.logs.write(self.driver.disconnected(now_us(), peer));
        }
    }

    /// Moves what the reader threads have delivered into the queue: only
    /// what is there now, so that a peer flooding the channel cannot keep
    /// this thread from its schedule. Then hears of peers gone and restarted.
    fn absorb_arrived(&mut self, ticking: bool) {
        for _ in 0..self.inbound.len() {
            let Ok(event) = self.inbound.try_recv() else { break };
            self.absorb(event, ticking);
        }
        self.note_gone_peers();
        if ticking {
            self.rejoin_restarted_peers();
        }
    }

    /// Logs every peer the outbox has just declared gone.
    fn note_gone_peers(&mut self) {
        for (peer, reason) in self.outbox.newly_gone() {
            crate::note!(
                "machine {}: machine {peer} is declared gone: {reason}; what is sent to it from now on is counted as unsent",
                self.config.id()
            );
            self.disconnect(peer);
        }
    }

    /// Connects to the peers the orchestrator says restarted, and hands each
    /// connection that is up to the outbox, logging the reconnection.
    fn rejoin_restarted_peers(&mut self) {
        for rejoin in self.faults.rejoins() {
            // Its old incarnation is gone, seen or not yet.
            self.disconnect(rejoin.peer);
            if let Err(error) = self.reconnects.start(self.config.hello(), rejoin, self.config.connect_timeout) {
                crate::note!("machine {}: cannot reconnect to machine {}: {error}", self.config.id(), rejoin.peer);
            }
        }
        while let Ok(event) = self.reconnects.events.try_recv() {
            match event {
                LinkEvent::Up { peer, stream } => {
                    let address = self.reconnects.address(peer).expect("a connector has its address");
                    let now = now_us();
                    self.logs.write(self.driver.connected(now, peer, &address.ip().to_string(), Some(address.port())));
                    self.down.remove(&peer);
                    self.outbox.reconnect(peer, stream, now);
                }
                LinkEvent::Failed { peer, error } => {
                    crate::note!("machine {}: cannot reconnect to machine {peer}: {error}", self.config.id());
                }
            }
        }
    }

    /// Waits until `due` or the (possibly moved) deadline, whichever is
    /// first, moving what arrives into the queue every [`ABSORB_INTERVAL`];
    /// a stop request for an instant moves the deadline earlier. Returns
    /// whether to stop at once.
    fn wait_tick(&mut self, due: Instant, stop: &Receiver<StopRequest>) -> bool {
        loop {
            let until = due.min(self.deadline);
            let slice_end = until.min(Instant::now() + ABSORB_INTERVAL);
            match wait_until(slice_end, stop) {
                Wake::Due if slice_end >= until => return false,
                Wake::Due => self.absorb_arrived(true),
                Wake::Stop => return true,
                Wake::StopAt(at) => self.deadline = self.deadline.min(at),
            }
        }
    }

    /// Applies this machine's clock faults planned up to `until_us` after the
    /// start, each at its instant (before the deadline). Returns whether to
    /// stop at once.
    fn clock_faults_until(&mut self, until_us: u64, stop: &Receiver<StopRequest>) -> bool {
        while let Some((at_us, step_us, drift_ppm)) = self.faults.next_clock_fault(until_us) {
            let at = checked_after(self.start, Duration::from_micros(at_us));
            if at >= self.deadline {
                return false;
            }
            if self.wait_tick(at, stop) {
                return true;
            }
            let planned_us = self.start_us.saturating_add_unsigned(at_us);
            let line = self.driver.clock_changed(now_us(), planned_us, step_us, drift_ppm);
            self.logs.write(line);
        }
        false
    }

    /// Runs tick `k` (due `due_us` after the start), `late` after its due
    /// instant: its line, then its frames, through the fault plan. Returns
    /// false if its line could not be written.
    fn tick(&mut self, k: u64, due_us: u64, late: Duration, recipients: &mut Vec<MachineId>) -> bool {
        let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let paused = self.faults.paused_at(self.config.id(), due_us);
        if let Some(line) = self.driver.before_tick(now_us(), k, late_us, paused) {
            self.logs.write(line);
        }
        self.absorb_arrived(true);
        let now = now_us();
        let step = self.driver.tick(now);
        // The line goes out before the frames: a process killed in between
        // leaves a send that never arrived (which a failed run, or a crash,
        // allows), never a message that arrived without its send. A line
        // that cannot be written sends nothing either.
        if !self.logs.write(step.record) {
            return false;
        }
        let Some(frame) = step.frame else { return true };
        let frame: Arc<[u8]> = Arc::from(frame);
        let sent_at = Instant::now();
        if self.faults.plan.is_empty() {
            self.outbox.send_frame(sent_at, frame, step.recipients());
            return true;
        }
        recipients.clear();
        recipients.extend_from_slice(step.recipients());
        let clock = step.record.logical_clock;
        let since_start_us = u64::try_from(now.saturating_sub(self.start_us)).unwrap_or(0);
        let Ticking { driver, logs, outbox, faults, start, .. } = self;
        let routed = driver.route(&mut faults.plan, since_start_us, now, recipients, clock, |route| {
            match route {
                Route::Lost(line) => {
                    logs.write(line);
                }
                Route::Deliver { to, extra_delay_us, hold_until_us } => {
                    let delayed = checked_after(sent_at, Duration::from_micros(extra_delay_us));
                    let healed = checked_after(*start, Duration::from_micros(hold_until_us));
                    outbox.send_frame(delayed.max(healed), Arc::clone(&frame), &[to]);
                }
            }
            Ok::<(), std::convert::Infallible>(())
        });
        match routed {
            Ok(()) => !self.logs.failed(),
            Err(never) => match never {},
        }
    }
}

impl Connected {
    /// Ticks from `start_us` (microseconds since the Unix epoch, the same
    /// instant for every machine of the run) for `duration_us`, tick `k` at
    /// `start + k / rate`; then stops sending, reads every peer's connection
    /// to its end, logs what is left in the queue as `Unprocessed`, and
    /// writes `Stopped`.
    ///
    /// Every tick of the schedule runs: a tick that is late runs as soon as
    /// it can, and one more than a tick period late writes a `Behind` line
    /// first (see `clocklab_driver::lateness`). Frames go to each peer's link
    /// and are written off this thread; a peer that stops reading is
    /// declared gone (`Disconnected`), and what is sent to it is counted in
    /// [`RunSummary::unsent`].
    ///
    /// A stop request ends ticking early: [`StopRequest::Now`] (or `stop`'s
    /// senders all gone) at once, [`StopRequest::At`] at that instant. The end
    /// goes as at the deadline.
    ///
    /// A log that cannot be written (a full disk) ends ticking too; the end
    /// still goes (every file that still takes lines gets them, `Stopped`
    /// included, and a line cut by the failure is cut off), and the first
    /// write error is returned.
    pub fn run(self, start_us: i64, duration_us: u64, stop: &Receiver<StopRequest>) -> Result<RunSummary, NetError> {
        self.run_with_faults(start_us, duration_us, stop, RunFaults::none())
    }

    /// [`Connected::run`] under the fault plan of `faults` (see
    /// `crate::faults`): each send through the plan, clock faults at their
    /// instants, restarted peers rejoined; a restarted incarnation ticks from
    /// its planned restart on.
    pub fn run_with_faults(
        self,
        start_us: i64,
        duration_us: u64,
        stop: &Receiver<StopRequest>,
        faults: RunFaults,
    ) -> Result<RunSummary, NetError> {
        let Connected { bound, outbox, peers, early, .. } = self;
        let Bound { config, mut driver, logs, inbound, context, .. } = bound;
        let rate = driver.rate();
        let n_ticks = schedule::n_ticks(rate, duration_us);
        let start = instant_of(start_us);
        if faults.restart.is_none() {
            // A restarted machine's physical clock was set when it bound.
            driver.start(start_us);
        }
        let first_tick = faults.first_tick(rate);
        let full_deadline = checked_after(start, Duration::from_micros(duration_us));
        let mut lateness = LatenessRecorder::default();
        let mut state = Ticking {
            config: &config,
            driver,
            logs,
            summary: RunSummary { stopped_early: false, ..RunSummary::not_started() },
            open: peers.iter().map(|&peer| (peer, 1)).collect(),
            down: BTreeSet::new(),
            deadline: full_deadline,
            inbound,
            outbox,
            faults,
            reconnects: Reconnects::new(),
            start_us,
            start,
        };
        for event in early {
            state.absorb(event, true);
        }

        let mut recipients = Vec::new();
        for k in first_tick..n_ticks {
            let due_us = schedule::tick_offset_us(k, rate);
            let due = checked_after(start, Duration::from_micros(due_us));
            if state.logs.failed() || due >= state.deadline {
                break;
            }
            if state.clock_faults_until(due_us, stop) || state.wait_tick(due, stop) {
                state.summary.stopped_early = true;
                break;
            }
            if due >= state.deadline {
                break;
            }
            let late = Instant::now().saturating_duration_since(due);
            lateness.record(late);
            if !state.tick(k, due_us, late, &mut recipients) {
                break;
            }
        }
        if !state.summary.stopped_early && !state.logs.failed() {
            let deadline = state.deadline;
            if state.clock_faults_until(duration_us, stop) || state.wait_tick(deadline, stop) {
                state.summary.stopped_early = true;
            }
        }
        state.summary.stopped_early |= state.deadline < full_deadline || state.logs.failed();

        // The end: the outbox writes what it holds and ends every stream, so
        // peers see the end after our last message, and we read theirs to
        // its end, so nothing on the wire is lost.
        state.reconnects.finish();
        state.outbox.close();
        // A message the fault plan delays past the end still comes.
        let drain_deadline =
            checked_after(Instant::now(), config.connect_timeout.saturating_add(state.faults.longest_delay()));
        state.absorb_arrived(false);
        while !state.open.is_empty() {
            match state.inbound.recv_deadline(drain_deadline) {
                Ok(event) => state.absorb(event, false),
                Err(_) => {
                    let open: Vec<MachineId> = state.open.keys().copied().collect();
                    crate::note!(
                        "machine {}: machines {open:?} did not finish sending within {} s; their connections are abandoned",
                        config.id(),
                        config.connect_timeout.as_secs_f64()
                    );
                    state.open.clear();
                    for peer in open {
                        state.disconnect(peer);
                    }
                    break;
                }
            }
        }
        // A peer that cannot take what is left is given up within its stall limit.
        state.outbox.finish();
        state.note_gone_peers();
        let unsent = state.outbox.unsent();
        let Ticking { mut driver, mut logs, mut summary, .. } = state;
        let end = driver.end(now_us());
        summary.unprocessed = end.len() as u64 - 1;
        logs.write_end(&end);
        let counts = driver.counts();
        (summary.ticks, summary.sent, summary.processed) = (counts.ticks, counts.sent, counts.processed);
        summary.refused = driver.machine().refused();
        summary.lateness = lateness.summary();
        summary.behind = driver.behind_summary();
        summary.unsent = unsent;
        if summary.refused > 0 {
            crate::note!(
                "machine {}: refused {} messages because the queue was full (queue_cap {})",
                config.id(),
                summary.refused,
                config.machine.queue_cap
            );
        }
        if summary.unsent_total() > 0 {
            crate::note!(
                "machine {}: {} messages logged as sent were never written to their peer (by peer: {:?})",
                config.id(),
                summary.unsent_total(),
                summary.unsent
            );
        }
        summary.refused_connections = context.refused_connections.load(std::sync::atomic::Ordering::SeqCst) as u64;
        logs.check()?;
        Ok(summary)
    }
}
