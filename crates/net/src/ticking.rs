//! A connected machine's run: its [`Timeline`] says when, this thread only
//! waits, moves what arrived into the queue, and hands frames to the outbox;
//! then the end (stop sending, read every peer to the end of its stream, log
//! what is left, then `Stopped`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clocklab_driver::{Dispatch, Effects, Timeline};
use clocklab_log::{Event, Record};
use clocklab_model::{Delivery, MachineId};
use crossbeam_channel::Receiver;

use crate::NetError;
use crate::accept::Inbound;
use crate::link::LinkEvent;
use crate::logs::Logs;
use crate::node::{ABSORB_INTERVAL, Bound, Connected, NodeConfig, RunSummary, checked_after, instant_of, now_us};
use crate::peers::{PeerNews, Reconnects};
use crate::receive::Receivers;
use crate::send::Outbox;
use crate::stop::{Doorbell, StopReceiver, Wake};

/// How long the end waits for the peers' connections at a time before it
/// looks at the channel from the acceptor again.
const END_POLL: Duration = Duration::from_millis(10);

/// A log line could not be written: the machine stops ticking.
#[derive(Debug)]
pub(crate) struct LogFailed;

/// What a machine's timeline does, for real: lines to its log files, frames
/// to the outbox.
pub(crate) struct NetEffects<'a> {
    pub(crate) logs: &'a mut Logs,
    pub(crate) outbox: Option<&'a Outbox>,
    /// The run's start.
    pub(crate) start: Instant,
    /// At the end a line that cannot be written does not stop the next
    /// ones (a full disk may free up; `Stopped` is tried in any case).
    pub(crate) ending: bool,
    /// The machine crashed (its own timeline says so): it waits to be killed.
    pub(crate) crashed: bool,
    /// `Unprocessed` lines written.
    pub(crate) unprocessed: u64,
}

impl NetEffects<'_> {
    /// Effects that only write lines (before the outbox is up).
    pub(crate) fn lines(logs: &mut Logs) -> NetEffects<'_> {
        NetEffects { logs, outbox: None, start: Instant::now(), ending: false, crashed: false, unprocessed: 0 }
    }
}

impl Effects for NetEffects<'_> {
    type Error = LogFailed;

    fn line(&mut self, record: &Record) -> Result<(), LogFailed> {
        match record.event {
            Event::Stopped => {
                self.logs.write_stopped(record);
                return Ok(());
            }
            Event::Unprocessed { .. } => self.unprocessed += 1,
            _ => {}
        }
        if self.logs.write(record) || self.ending { Ok(()) } else { Err(LogFailed) }
    }

    fn send(&mut self, frame: &[u8], to: &[Dispatch]) -> Result<(), LogFailed> {
        let Some(outbox) = self.outbox else { return Ok(()) };
        // The line went out first: a process killed in between leaves a send
        // that never arrived (which a failed run, or a crash, allows), never
        // a message that arrived without its send.
        let at_once = |d: &&Dispatch| d.extra_delay_us == 0 && d.hold_until_us == 0;
        if to.iter().any(|d| at_once(&d)) {
            outbox.send_now(frame, to.iter().filter(at_once).map(|d| d.to));
        }
        if to.iter().any(|d| !at_once(&d)) {
            let frame: Arc<[u8]> = Arc::from(frame);
            for dispatch in to.iter().filter(|d| !at_once(d)) {
                let due = checked_after(self.start, Duration::from_micros(dispatch.release_us));
                outbox.send_frame(due, Arc::clone(&frame), &[dispatch.to]);
            }
        }
        Ok(())
    }

    fn crashed(&mut self, _lost: u64) -> Result<(), LogFailed> {
        self.crashed = true;
        Ok(())
    }
}

/// What ended a wait.
enum Waited {
    /// The instant came.
    Due,
    /// A stop request moved the end of ticking: look again at what is next.
    Moved,
    /// Stop at once.
    Stop,
}

/// The state of a ticking machine that the end needs too.
struct Ticking<'a> {
    config: &'a NodeConfig,
    timeline: Timeline,
    logs: Logs,
    summary: RunSummary,
    /// Per peer, its connections to us whose stream has not ended yet (a
    /// restarted peer's new one may come before its old one is seen to end).
    open: BTreeMap<MachineId, u32>,
    /// Peers whose stream to this machine ended cleanly before the end of
    /// ticking, while their end of this machine's connection was still open:
    /// they stopped ticking (a stop instant that reached them first, a full
    /// disk) and still read what this machine sends, so they are not gone.
    /// Each is looked at again at every look, and once more when ticking
    /// ends: whose end of the connection closes meanwhile is gone.
    quiet: BTreeSet<MachineId>,
    /// When ticking ends (moved earlier by a stop request for an instant).
    deadline: Instant,
    inbound: Receiver<Inbound>,
    /// The peers' connections to this machine, read when it looks.
    receivers: Receivers,
    /// What the last look read, to be absorbed (kept for its allocation).
    arrived: Vec<Inbound>,
    /// Writes to the peers, off this thread.
    outbox: Outbox,
    /// What the orchestrator says of the peers.
    news: Receiver<PeerNews>,
    /// Connections to restarted peers being made.
    reconnects: Reconnects,
    /// The run's start, as an instant.
    start: Instant,
    /// Rung by the acceptor, the outbox and the connections to restarted
    /// peers when they have something for this thread.
    doorbell: Doorbell,
    /// When this thread last looked at what arrived.
    last_look: Instant,
    /// When it looks next whether a quiet peer still reads.
    next_quiet_look: Instant,
}

impl Ticking<'_> {
    /// The effects of the timeline's work.
    fn effects(&mut self) -> (&mut Timeline, NetEffects<'_>) {
        let effects = NetEffects {
            logs: &mut self.logs,
            outbox: Some(&self.outbox),
            start: self.start,
            ending: false,
            crashed: false,
            unprocessed: 0,
        };
        (&mut self.timeline, effects)
    }

    /// Takes one event from the acceptor (or its own reads). `ticking` is false once the
    /// machine has stopped ticking: a peer ending its stream then is the
    /// expected end, not a disconnection. While ticking, a stream that ends
    /// cleanly before the deadline is a disconnection only once the peer no
    /// longer reads this machine's connection (see `quiet`).
    fn absorb(&mut self, event: Inbound, ticking: bool) {
        match event {
            Inbound::Message { from, stamp } => {
                if self.timeline.deliver(now_us(), from, stamp) == Some(Delivery::Refused)
                    && self.timeline.driver().machine().refused() == 1
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
                if ticking && !still_open {
                    if let Some(error) = error {
                        crate::note!("machine {}: connection from machine {from} failed: {error}", self.config.id());
                        self.disconnect(from);
                    } else if early_end {
                        // Sending stopped early; whether it still reads
                        // decides whether it is gone.
                        self.quiet.insert(from);
                        self.next_quiet_look = Instant::now();
                        self.look_at_quiet();
                    }
                }
            }
            // A restarted peer's new connection: its stream is read to its end too.
            Inbound::Joined { from } => *self.open.entry(from).or_insert(0) += 1,
            Inbound::Ready { .. } => {}
            Inbound::Stream(handover) => {
                let mut failed = Vec::new();
                self.receivers.add(handover, &mut failed);
                for event in failed {
                    self.absorb(event, ticking);
                }
            }
        }
    }

    /// The connection to `peer` is gone: `Disconnected`, if the timeline had it.
    fn disconnect(&mut self, peer: MachineId) {
        self.quiet.remove(&peer);
        let (timeline, mut effects) = self.effects();
        if timeline.disconnected(now_us(), peer, &mut effects).unwrap_or(true)
            && !self.summary.disconnected.contains(&peer)
        {
            self.summary.disconnected.push(peer);
        }
    }

    /// Moves what the acceptor has delivered into the queue: only
    /// what is there now, so that a peer flooding the channel cannot keep
    /// this thread from its schedule. Then hears of peers gone and restarted.
    fn absorb_arrived(&mut self, ticking: bool) {
        self.last_look = Instant::now();
        for _ in 0..self.inbound.len() {
            let Ok(event) = self.inbound.try_recv() else { break };
            self.absorb(event, ticking);
        }
        self.read_connections(Duration::ZERO, ticking);
        self.note_gone_peers();
        if ticking {
            self.look_at_quiet();
            self.hear_news();
        }
    }

    /// Disconnects every quiet peer whose end of this machine's connection
    /// has closed: it reads no more. Looked at once an interval at most (it
    /// costs the outbox's lock and a system call per quiet peer), and when
    /// ticking ends.
    fn look_at_quiet(&mut self) {
        if self.quiet.is_empty() {
            return;
        }
        let now = Instant::now();
        if now < self.next_quiet_look {
            return;
        }
        self.next_quiet_look = now + ABSORB_INTERVAL;
        let closed: Vec<MachineId> = self.quiet.iter().copied().filter(|&peer| self.outbox.peer_closed(peer)).collect();
        for peer in closed {
            self.disconnect(peer);
        }
    }

    /// Reads what the peers' connections hold (waiting up to `timeout` for
    /// something), and takes it in.
    fn read_connections(&mut self, timeout: Duration, ticking: bool) {
        let mut arrived = std::mem::take(&mut self.arrived);
        self.receivers.read(timeout, &mut arrived);
        for event in arrived.drain(..) {
            self.absorb(event, ticking);
        }
        self.arrived = arrived;
    }

    /// Logs every peer the outbox has just declared gone.
    fn note_gone_peers(&mut self) {
        for (peer, reason) in self.outbox.newly_gone() {
            if self.timeline.is_connected(peer) {
                crate::note!(
                    "machine {}: machine {peer} is declared gone: {reason}; what is sent to it from now on is counted as unsent",
                    self.config.id()
                );
            }
            self.disconnect(peer);
        }
    }

    /// Takes what the orchestrator said of the peers (connecting to each
    /// restarted one, giving up on each that went down), and hands each
    /// connection to a restarted peer that is up to the outbox.
    fn hear_news(&mut self) {
        for news in self.news.try_iter().collect::<Vec<_>>() {
            match news {
                PeerNews::Rejoin { peer, address } => {
                    // Its old incarnation is gone, seen or not yet.
                    self.disconnect(peer);
                    let hello = self.config.hello();
                    if let Err(error) = self.reconnects.start(hello, peer, address, self.config.connect_timeout) {
                        crate::note!("machine {}: cannot reconnect to machine {peer}: {error}", self.config.id());
                    }
                }
                PeerNews::Down { peer } => {
                    self.reconnects.give_up(peer);
                    self.disconnect(peer);
                }
            }
        }
        while let Ok(event) = self.reconnects.events.try_recv() {
            match event {
                LinkEvent::Up { peer, stream, attempt } => {
                    let Some(address) = self.reconnects.settle(peer, attempt) else { continue };
                    let now = now_us();
                    let (timeline, mut effects) = self.effects();
                    let host = address.ip().to_string();
                    let _ = timeline.connected(now, peer, (&host, Some(address.port())), &mut effects);
                    self.outbox.reconnect(peer, stream, now);
                }
                LinkEvent::Failed { peer, error, attempt } => {
                    if self.reconnects.settle(peer, attempt).is_some() && !matches!(error, NetError::Stopped) {
                        crate::note!("machine {}: cannot reconnect to machine {peer}: {error}", self.config.id());
                    }
                }
            }
        }
    }

    /// Waits until `due`, moving what arrives (bytes, and what the doorbell
    /// brings) into the queue as it comes, but looking at most once every
    /// [`ABSORB_INTERVAL`] (a message costs no wake-up of its own while
    /// messages stream in, and a look is never later than the old looks
    /// every interval were); news rings the stop bell and is heard at once.
    /// A quiet peer, or a connection to a restarted peer being made, is
    /// looked at every interval, since nothing rings for them. A stop
    /// request for an instant moves the end of ticking.
    fn wait(&mut self, due: Instant, stop: &StopReceiver) -> Waited {
        loop {
            let until = due.min(self.deadline);
            let now = Instant::now();
            let next_look = self.last_look + ABSORB_INTERVAL;
            // Until the next look is due (and to a tick that comes first,
            // which is that look: every wait of a thousand ticks a second)
            // it watches the stop alone, as it always did; from then on, the
            // doorbell and the connections too.
            let on_a_clock = !self.quiet.is_empty() || !self.reconnects.is_idle();
            let watch = !on_a_clock && now >= next_look && until > next_look;
            let slice_end = if watch { until } else { until.min(next_look.max(now)) };
            let (doorbell, connections) =
                if watch { (Some(&self.doorbell), self.receivers.ready_fd()) } else { (None, None) };
            match stop.wait_until(slice_end, doorbell, connections) {
                Wake::Due if slice_end >= until => return if until < due { Waited::Moved } else { Waited::Due },
                // The interval is over: from now on bytes wake it.
                Wake::Due if !on_a_clock => {}
                Wake::Due | Wake::Attention => self.absorb_arrived(true),
                Wake::Stop => return Waited::Stop,
                Wake::StopAt(at) => {
                    if at < self.deadline {
                        self.deadline = at;
                        let at_us = instant_us(self.start, at);
                        self.timeline.stop_at(at_us);
                        return Waited::Moved;
                    }
                }
            }
        }
    }

    /// Runs the timeline until it has nothing left before the end of
    /// ticking, or the plan crashed the machine. Returns whether a stop
    /// request ended it early.
    fn tick_until_done(&mut self, stop: &StopReceiver) -> bool {
        loop {
            if self.logs.failed() || !self.timeline.is_up() {
                return false;
            }
            let Some(timeout) = self.timeline.poll_timeout() else { return false };
            let due = checked_after(self.start, Duration::from_micros(timeout.at_us));
            match self.wait(due, stop) {
                Waited::Due => {}
                Waited::Moved => continue,
                Waited::Stop => return true,
            }
            self.absorb_arrived(true);
            let (timeline, mut effects) = self.effects();
            let result = timeline.handle_timeout(now_us(), &mut effects);
            let crashed = effects.crashed;
            if crashed {
                // Nothing leaves a crashed machine.
                self.outbox.halt();
            }
            if result.is_err() {
                return false;
            }
        }
    }
}

/// Microseconds from `start` to `at` (0 before it).
fn instant_us(start: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(start).as_micros()).unwrap_or(u64::MAX)
}

impl Connected {
    /// Ticks from `start_us` (microseconds since the Unix epoch, the same
    /// instant for every machine of the run) as its timeline says (tick `k`
    /// at `start + k / rate`, the fault plan's changes at their instants);
    /// then stops sending, reads every peer's connection to its end, logs
    /// what is left as `Held` and `Unprocessed`, and writes `Stopped`.
    ///
    /// Every tick of the schedule runs: a tick that is late runs as soon as
    /// it can, and one more than a tick period late writes a `Behind` line
    /// first (see `clocklab_driver::lateness`). Frames go to each peer's link
    /// and are written off this thread; a peer that stops reading is
    /// declared gone (`Disconnected`), and what is sent to it is counted in
    /// [`RunSummary::unsent`]. `news` brings the peers that restart and go
    /// down under the fault plan; sent through a [`crate::NewsSender`] (see
    /// [`crate::news_channel`]), news rings `stop`'s bell, so that a machine
    /// between two far ticks hears it at once. Between ticks the machine sleeps until its
    /// next tick, a stop request, the doorbell of its own threads, or bytes
    /// from its peers.
    ///
    /// A stop request ends ticking early: [`StopRequest::Now`](crate::StopRequest::Now) (or `stop`'s
    /// senders all gone) at once, [`StopRequest::At`](crate::StopRequest::At) at that instant. The end
    /// goes as at the deadline, and lasts at most the drain
    /// (`connect_timeout`) and a peer's stall limit after ticking ends:
    /// what the fault plan would release later is held at the end.
    ///
    /// A log that cannot be written (a full disk) ends ticking too; the end
    /// still goes (every file that still takes lines gets them, `Stopped`
    /// included, and a line cut by the failure is cut off), and the first
    /// write error is returned.
    pub fn run(self, start_us: i64, stop: &StopReceiver, news: Receiver<PeerNews>) -> Result<RunSummary, NetError> {
        let Connected { bound, outbox, peers, early, .. } = self;
        let Bound { config, mut timeline, logs, inbound, context, .. } = bound;
        let receivers = Receivers::new(Arc::clone(&context))
            .map_err(|source| NetError::Thread { what: "reading its connections".into(), source })?;
        if timeline.incarnation() == 0 {
            // A restarted machine's timeline knows the run's start already.
            timeline.start(start_us);
        }
        let start = instant_of(start_us);
        let full_deadline = checked_after(start, Duration::from_micros(timeline.ticking_end_us()));
        let mut state = Ticking {
            config: &config,
            timeline,
            logs,
            summary: RunSummary { stopped_early: false, ..RunSummary::not_started() },
            open: peers.iter().map(|&peer| (peer, 1)).collect(),
            quiet: BTreeSet::new(),
            deadline: full_deadline,
            inbound,
            receivers,
            arrived: Vec::new(),
            outbox,
            news,
            reconnects: Reconnects::new(),
            start,
            doorbell: context.doorbell.clone(),
            last_look: Instant::now(),
            next_quiet_look: Instant::now(),
        };
        for event in early {
            state.absorb(event, true);
        }

        let stopped = state.tick_until_done(stop);
        if stopped {
            state.summary.stopped_early = true;
        } else if !state.logs.failed() && state.timeline.is_up() {
            // The machine keeps its connections open until the end of ticking.
            let deadline = state.deadline;
            if matches!(state.wait(deadline, stop), Waited::Stop) {
                state.summary.stopped_early = true;
            }
        }
        state.summary.stopped_early |= state.deadline < full_deadline || state.logs.failed();
        if !state.timeline.is_up() {
            // Crashed by the plan: its log ends with its `Crashed` line, and
            // its process waits to be killed (see [`RunSummary::crashed`]).
            let mut summary = state.finish_summary();
            summary.crashed = true;
            return Ok(summary);
        }

        // A quiet peer that still reads now reads to the end of our stream
        // (it waits for it), so it is looked at before that stream ends.
        state.next_quiet_look = Instant::now();
        state.look_at_quiet();
        state.quiet.clear();
        // The end: the outbox writes what is due within the drain and ends
        // every stream, so peers see the end after our last message, and we
        // read theirs to its end, so nothing on the wire is lost.
        state.reconnects.finish();
        let drain_end = checked_after(start, Duration::from_micros(state.timeline.drain_end_us()));
        state.outbox.close(drain_end);
        let read_by = checked_after(drain_end, config.stall_limit());
        state.absorb_arrived(false);
        while !state.open.is_empty() {
            let now = Instant::now();
            if now < read_by {
                // Events of connections still with the acceptor come
                // on the channel; the others are read here.
                while let Ok(event) = state.inbound.try_recv() {
                    state.absorb(event, false);
                }
                state.read_connections(read_by.saturating_duration_since(now).min(END_POLL), false);
            } else {
                let open: Vec<MachineId> = state.open.keys().copied().collect();
                crate::note!(
                    "machine {}: machines {open:?} did not finish sending by the end of the drain; their connections are abandoned",
                    config.id(),
                );
                state.open.clear();
                for peer in open {
                    state.disconnect(peer);
                }
            }
        }
        // A peer that cannot take what is left is given up within its stall limit.
        state.outbox.finish();
        state.note_gone_peers();
        let mut summary = state.finish_summary();
        let Ticking { mut timeline, mut logs, outbox, .. } = state;
        let mut effects =
            NetEffects { logs: &mut logs, outbox: None, start, ending: true, crashed: false, unprocessed: 0 };
        // At the end no line stops the next: the error, if any, is the logs'.
        let _ = timeline.end(now_us(), &mut effects);
        summary.unprocessed = effects.unprocessed;
        summary.unsent = outbox.unsent();
        // What was sent to a peer with no connection up never left either.
        for (peer, n) in timeline.unconnected() {
            *summary.unsent.entry(peer).or_default() += n;
        }
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

impl Ticking<'_> {
    /// The summary of the machine's counts so far.
    fn finish_summary(&mut self) -> RunSummary {
        let mut summary = std::mem::replace(&mut self.summary, RunSummary::not_started());
        let driver = self.timeline.driver();
        let counts = driver.counts();
        (summary.ticks, summary.sent, summary.processed) = (counts.ticks, counts.sent, counts.processed);
        summary.refused = driver.machine().refused();
        summary.lateness = self.timeline.lateness();
        summary.behind = driver.behind_summary();
        summary
    }
}
