//! A run's happens-before graph, rebuilt from its logs alone.
//!
//! [`RunGraph`] holds every event of a run (every line read: a tick or not)
//! in compact rows per machine, and every message with its send and, once
//! received, its receive. Happens-before is the transitive closure of two
//! kinds of edges: program order (each event before the next of its machine)
//! and one edge per processed message (its send before its `Processed`
//! line). A message left unprocessed at the end never reached the
//! receiver's clocks: it is drawn and counted, but adds no edge, as in
//! [`VectorReplay`].
//!
//! Because program order makes a machine's part of any causal past a
//! prefix of its events (and of any causal future a suffix), a cone is one
//! number per machine; [`RunGraph::cone`] finds them by a walk that visits
//! each event of the cone once.
//!
//! Memory: about 50 bytes per event, plus 8 per vector component and 24
//! per HLC reading when the run kept them.

use std::collections::BTreeMap;

use clocklab_log::incarnations::Change;
use clocklab_log::{
    Diagnostics, Event, EventId, Incarnations, Pairing, ReadLine, RunEvent, RunEvents, TickCounter, crash_took,
};
use clocklab_model::{HlcStamp, MachineId};

use crate::VectorReplay;

/// What a line is, in one byte (the diagram's data uses these numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// `Initialized`.
    Initialized = 0,
    /// `Connected to machine …`.
    Connected = 1,
    /// An internal event (a tick).
    Internal = 2,
    /// A send (a tick).
    Sent = 3,
    /// A processed message (a tick).
    Processed = 4,
    /// `Disconnected from machine …`.
    Disconnected = 5,
    /// A message left in the queue at the end.
    Unprocessed = 6,
    /// `Stopped`.
    Stopped = 7,
    /// `Behind schedule …`.
    Behind = 8,
    /// `Lost message to machine …` (the fault plan lost it at the sender).
    Lost = 9,
    /// `Crashed`.
    Crashed = 10,
    /// `Restarted …` (a new incarnation).
    Restarted = 11,
    /// `Physical clock stepped …` (a clock fault).
    ClockChanged = 12,
    /// `Held message to machine …` (the fault plan still held it at the end).
    Held = 13,
}

impl Kind {
    /// The kind of a log event.
    pub fn of(event: &Event) -> Kind {
        match event {
            Event::Initialized { .. } => Kind::Initialized,
            Event::Connected { .. } => Kind::Connected,
            Event::Internal => Kind::Internal,
            Event::Sent { .. } => Kind::Sent,
            Event::Processed { .. } => Kind::Processed,
            Event::Disconnected { .. } => Kind::Disconnected,
            Event::Unprocessed { .. } => Kind::Unprocessed,
            Event::Stopped => Kind::Stopped,
            Event::Behind { .. } => Kind::Behind,
            Event::Lost { .. } => Kind::Lost,
            Event::Crashed => Kind::Crashed,
            Event::Restarted { .. } => Kind::Restarted,
            Event::ClockChanged { .. } => Kind::ClockChanged,
            Event::Held { .. } => Kind::Held,
        }
    }

    /// Whether it is a tick (one instruction of the model).
    pub fn is_tick(self) -> bool {
        matches!(self, Kind::Internal | Kind::Sent | Kind::Processed)
    }

    /// Its name, as in the JSON Lines `event` field.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Initialized => "initialized",
            Kind::Connected => "connected",
            Kind::Internal => "internal",
            Kind::Sent => "sent",
            Kind::Processed => "processed",
            Kind::Disconnected => "disconnected",
            Kind::Unprocessed => "unprocessed",
            Kind::Stopped => "stopped",
            Kind::Behind => "behind",
            Kind::Lost => "lost",
            Kind::Crashed => "crashed",
            Kind::Restarted => "restarted",
            Kind::ClockChanged => "clock_changed",
            Kind::Held => "held",
        }
    }
}

/// An event's place: its machine's position in [`RunGraph::machines`] and
/// its position among that machine's events, both from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventRef {
    /// The machine's position.
    pub machine: u32,
    /// The event's position on it.
    pub pos: u32,
}

/// How an event is tied to messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Neither a send nor a receive.
    None,
    /// A send: its messages are `first..first + n` in [`RunGraph::messages`].
    Sends {
        /// The first message.
        first: u32,
        /// How many (one per recipient).
        n: u32,
    },
    /// A receive paired with this message.
    Receives(u32),
    /// The sender's `Lost` line for this message (the fault plan lost it).
    Drops(u32),
    /// A receive that no log sent (invented, or the sender's log is missing).
    Unmatched,
    /// A receive that names no sender (the reference's `Processed message`).
    Unnamed,
}

/// One event, compactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventRow {
    /// What it is.
    pub kind: Kind,
    /// Whether it is a tick: the second line of a double send in the
    /// reference's logs is the same tick as the first (see
    /// [`TickCounter`]).
    pub tick: bool,
    /// For a receive, the sender it names; for `Connected`/`Disconnected`,
    /// the peer; for `Lost`, the receiver.
    pub peer: Option<MachineId>,
    /// Its line number in its log.
    pub line_no: u64,
    /// True time, microseconds since the Unix epoch.
    pub time_us: i64,
    /// The Lamport clock (`Logical Clock`).
    pub lamport: u64,
    /// `Queue Length`.
    pub queue_length: u64,
    /// Its messages.
    pub link: Link,
}

/// A message's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageStatus {
    /// Taken off the queue by a tick.
    Processed,
    /// Still queued at the end (`Unprocessed`).
    Unprocessed,
    /// The fault plan lost it: its sender's `Lost` line says so.
    Lost,
    /// A crash took it (see `clocklab_log::incarnations`): it was in the
    /// receiver's queue or on its way, or still in the crashed sender.
    Crashed,
    /// No log received it, and nothing in the logs explains why.
    Missing,
    /// Sent to a machine whose log names no senders: its fate is unknown.
    Unknown,
    /// The fault plan still held it at the end: its sender's `Held` line says so.
    Held,
}

/// One message: one recipient of one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// The send.
    pub send: EventRef,
    /// The recipient.
    pub to: MachineId,
    /// The `Processed` or `Unprocessed` line, once paired.
    pub receive: Option<EventRef>,
    /// What became of it.
    pub status: MessageStatus,
    /// Whether its send has a fresh restart in its causal past.
    pub forgetful: bool,
}

/// One machine's events.
#[derive(Clone, Debug, Default)]
pub struct MachineEvents {
    /// Its id.
    pub id: MachineId,
    /// Its clock rate, from its `Initialized` line.
    pub rate: Option<u32>,
    /// Its events in log order: row `k` is event `m<id>e<k+1>`.
    pub rows: Vec<EventRow>,
    /// The vector clock of each event as logged, `width` components each,
    /// if the run kept vector clocks (a line without one holds zeros).
    pub vectors: Vec<u64>,
    /// The HLC of each event as logged, if the run kept one.
    pub hlc: Vec<Option<HlcStamp>>,
    /// The `Physical Clock` of each event, if the log has one.
    pub physical_us: Vec<Option<i64>>,
    /// The vector clock happens-before gives each event (see
    /// [`VectorReplay`]), if the graph was built with replay.
    pub replayed: Vec<u64>,
    /// Its crashes, restarts and reconnections.
    pub incarnations: Incarnations,
    /// The position of its first event that has a fresh restart (of any
    /// machine) in its causal past or is one; none if no event has.
    /// From there on its clocks may break the clock laws, as the fault plan
    /// meant: a fresh clock forgets.
    pub forgetful_from: Option<u32>,
}

/// Something about a line that the graph could not hold as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// The line.
    pub at: EventRef,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// How to build a [`RunGraph`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Also replay the vector clocks that happens-before gives every event.
    pub replay: bool,
}

/// See the [module documentation](self).
#[derive(Clone, Debug, Default)]
pub struct RunGraph {
    /// The machines, in id order.
    pub machines: Vec<MachineEvents>,
    /// Every message, in the order of their sends.
    pub messages: Vec<Message>,
    /// Every event in the order [`RunEvents`] gave them: a topological
    /// order of happens-before.
    pub order: Vec<EventRef>,
    /// Components of the logged vector clocks (0 if the log keeps none).
    pub width: usize,
    /// Lines whose clocks do not fit the run's (a vector of another length).
    pub anomalies: Vec<Anomaly>,
    /// What the readers skipped, per machine (filled in by the caller).
    pub diagnostics: BTreeMap<MachineId, Diagnostics>,
}

/// A cone: per machine, how much of it is in an event's causal past and future.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cone {
    /// Per machine, the number of its first events in the past (the event itself excluded).
    pub past: Vec<u32>,
    /// Per machine, the position of its first event in the future (its
    /// number of events if none; the event itself excluded).
    pub future: Vec<u32>,
}

impl Cone {
    /// How many events happened before the event.
    pub fn past_size(&self) -> u64 {
        self.past.iter().map(|&n| u64::from(n)).sum()
    }
}

impl RunGraph {
    /// Builds the graph from a run's events.
    pub fn build<I: Iterator<Item = ReadLine>>(events: RunEvents<I>, options: BuildOptions) -> RunGraph {
        let mut events = events;
        let ids: Vec<MachineId> = events.machines().collect();
        let mut graph = RunGraph {
            machines: ids.iter().map(|&id| MachineEvents { id, ..MachineEvents::default() }).collect(),
            ..RunGraph::default()
        };
        let mut replay = options.replay.then(|| VectorReplay::new(ids.iter().copied()));
        let mut unnamed_receivers: Vec<MachineId> = Vec::new();
        let mut tick_counters = vec![TickCounter::default(); ids.len()];
        for event in events.by_ref() {
            if let Some(replay) = &mut replay {
                let vector = replay.step(&event);
                let idx = graph.machine_idx(event.id.machine).expect("events come from the graph's machines");
                graph.machines[idx].replayed.extend_from_slice(vector);
            }
            if matches!(event.pairing, Pairing::Unnamed) && !unnamed_receivers.contains(&event.id.machine) {
                unnamed_receivers.push(event.id.machine);
            }
            let idx = graph.machine_idx(event.id.machine).expect("events come from the graph's machines");
            let continues = tick_counters[idx].continues_tick(&event.record);
            graph.push(event, continues);
        }
        for idx in 0..graph.messages.len() {
            let message = graph.messages[idx];
            if message.status != MessageStatus::Missing {
                continue;
            }
            let incarnations = |id| graph.machine_idx(id).map(|idx| &graph.machines[idx].incarnations);
            let sender = graph.machines[message.send.machine as usize].id;
            let status = if unnamed_receivers.contains(&message.to) {
                MessageStatus::Unknown
            } else if crash_took(
                incarnations(sender),
                incarnations(message.to),
                message.to,
                graph.row(message.send).time_us,
            ) {
                MessageStatus::Crashed
            } else {
                MessageStatus::Missing
            };
            graph.messages[idx].status = status;
        }
        graph
    }

    fn push(&mut self, event: RunEvent, continues_tick: bool) {
        let machine = self.machine_idx(event.id.machine).expect("events come from the graph's machines");
        let at = EventRef { machine: machine as u32, pos: self.machines[machine].rows.len() as u32 };
        debug_assert_eq!(u64::from(at.pos) + 1, event.id.index, "RunEvents numbers a machine's events from 1");
        let record = &event.record;
        let change = self.machines[machine].incarnations.observe(record);
        let forgetful = self.machines[machine].forgetful_from.is_some()
            || change == Change::Restarted { recovered: false }
            || matches!(
                (&record.event, &event.pairing),
                (Event::Processed { .. }, Pairing::Paired(sent)) if self.message_of(sent.id.send, sent.id.to)
                    .is_some_and(|idx| self.messages[idx as usize].forgetful)
            );
        let (peer, link) = match &record.event {
            Event::Sent { to } => {
                let first = self.messages.len() as u32;
                for &to in to {
                    self.messages.push(Message {
                        send: at,
                        to,
                        receive: None,
                        status: MessageStatus::Missing,
                        forgetful,
                    });
                }
                (None, Link::Sends { first, n: to.len() as u32 })
            }
            Event::Processed { from, .. } => (*from, self.receive(&event.pairing, at, MessageStatus::Processed)),
            Event::Unprocessed { from, .. } => {
                (Some(*from), self.receive(&event.pairing, at, MessageStatus::Unprocessed))
            }
            Event::Lost { to, .. } => (Some(*to), self.drop_of(&event.pairing, MessageStatus::Lost)),
            Event::Held { to, .. } => (Some(*to), self.drop_of(&event.pairing, MessageStatus::Held)),
            Event::Connected { peer, .. } | Event::Disconnected { peer } => (Some(*peer), Link::None),
            _ => (None, Link::None),
        };
        let rate = match record.event {
            Event::Initialized { rate, .. } => Some(rate),
            _ => None,
        };
        let row = EventRow {
            kind: Kind::of(&record.event),
            tick: record.event.is_tick() && !continues_tick,
            peer,
            line_no: event.line_no,
            time_us: record.time_us,
            lamport: record.logical_clock,
            queue_length: record.queue_length,
            link,
        };
        if let Some(vector) = &record.vector_clock
            && self.width == 0
        {
            self.width = vector.len();
            // Lines before the first vector (none in a clocklab log) hold zeros.
            for machine in &mut self.machines {
                machine.vectors.resize(machine.rows.len() * self.width, 0);
            }
        }
        if self.width > 0 {
            match &record.vector_clock {
                Some(vector) if vector.len() == self.width => {
                    self.machines[machine].vectors.extend_from_slice(vector);
                }
                other => {
                    let message = match other {
                        Some(vector) => {
                            format!("a vector clock of {} components where the run's have {}", vector.len(), self.width)
                        }
                        None => "no vector clock where the run keeps them".to_string(),
                    };
                    self.anomalies.push(Anomaly { at, message });
                    let width = self.width;
                    self.machines[machine].vectors.extend(std::iter::repeat_n(0, width));
                }
            }
        }
        let state = &mut self.machines[machine];
        if rate.is_some() && state.rate.is_none() {
            state.rate = rate;
        }
        if record.hlc.is_some() || !state.hlc.is_empty() {
            state.hlc.resize(state.rows.len(), None);
            state.hlc.push(record.hlc);
        }
        if record.physical_clock_us.is_some() || !state.physical_us.is_empty() {
            state.physical_us.resize(state.rows.len(), None);
            state.physical_us.push(record.physical_clock_us);
        }
        if forgetful && state.forgetful_from.is_none() {
            state.forgetful_from = Some(at.pos);
        }
        state.rows.push(row);
        self.order.push(at);
    }

    /// Ties the receive at `at` to its message, as its pairing says.
    fn receive(&mut self, pairing: &Pairing, at: EventRef, status: MessageStatus) -> Link {
        match pairing {
            Pairing::Paired(sent) => match self.message_of(sent.id.send, sent.id.to) {
                Some(idx) => {
                    let message = &mut self.messages[idx as usize];
                    message.receive = Some(at);
                    message.status = status;
                    Link::Receives(idx)
                }
                None => Link::Unmatched,
            },
            Pairing::Unnamed => Link::Unnamed,
            Pairing::Unmatched | Pairing::NotAReceive => Link::Unmatched,
        }
    }

    /// Ties a `Lost` or `Held` line to the message the fault plan lost or held.
    fn drop_of(&mut self, pairing: &Pairing, status: MessageStatus) -> Link {
        match pairing {
            Pairing::Paired(sent) => match self.message_of(sent.id.send, sent.id.to) {
                Some(idx) => {
                    self.messages[idx as usize].status = status;
                    Link::Drops(idx)
                }
                None => Link::Unmatched,
            },
            _ => Link::Unmatched,
        }
    }

    /// Whether the event at `at` has a fresh restart in its causal past (or
    /// is one): its clocks may break the clock laws, as the plan meant.
    pub fn forgetful(&self, at: EventRef) -> bool {
        self.machines[at.machine as usize].forgetful_from.is_some_and(|from| at.pos >= from)
    }

    /// The position of machine `id` in [`RunGraph::machines`].
    pub fn machine_idx(&self, id: MachineId) -> Option<usize> {
        self.machines.binary_search_by_key(&id, |m| m.id).ok()
    }

    /// The message of send `send` to `to`.
    fn message_of(&self, send: EventId, to: MachineId) -> Option<u32> {
        let at = self.event_ref(send)?;
        match self.row(at).link {
            Link::Sends { first, n } => (first..first + n).find(|&idx| self.messages[idx as usize].to == to),
            _ => None,
        }
    }

    /// Where event `id` is, if the run has it.
    pub fn event_ref(&self, id: EventId) -> Option<EventRef> {
        let machine = self.machine_idx(id.machine)?;
        let pos = u32::try_from(id.index.checked_sub(1)?).ok()?;
        ((pos as usize) < self.machines[machine].rows.len()).then_some(EventRef { machine: machine as u32, pos })
    }

    /// The id of the event at `at`.
    pub fn event_id(&self, at: EventRef) -> EventId {
        EventId { machine: self.machines[at.machine as usize].id, index: u64::from(at.pos) + 1 }
    }

    /// The row of the event at `at`.
    pub fn row(&self, at: EventRef) -> &EventRow {
        &self.machines[at.machine as usize].rows[at.pos as usize]
    }

    /// The logged vector clock of the event at `at`, if the run kept them.
    pub fn vector(&self, at: EventRef) -> Option<&[u64]> {
        let width = self.width;
        (width > 0).then(|| &self.machines[at.machine as usize].vectors[at.pos as usize * width..][..width])
    }

    /// The replayed vector clock of the event at `at`, if the graph was built with replay.
    pub fn replayed(&self, at: EventRef) -> Option<&[u64]> {
        let n = self.machines.len();
        let replayed = &self.machines[at.machine as usize].replayed;
        (!replayed.is_empty()).then(|| &replayed[at.pos as usize * n..][..n])
    }

    /// The HLC of the event at `at`, if its line has one.
    pub fn hlc(&self, at: EventRef) -> Option<HlcStamp> {
        self.machines[at.machine as usize].hlc.get(at.pos as usize).copied().flatten()
    }

    /// The `Physical Clock` of the event at `at`, if its line has one.
    pub fn physical_us(&self, at: EventRef) -> Option<i64> {
        self.machines[at.machine as usize].physical_us.get(at.pos as usize).copied().flatten()
    }

    /// How many events the run has.
    pub fn n_events(&self) -> u64 {
        self.machines.iter().map(|m| m.rows.len() as u64).sum()
    }

    /// How many of them are ticks.
    pub fn n_ticks(&self) -> u64 {
        self.machines.iter().flat_map(|m| &m.rows).filter(|row| row.tick).count() as u64
    }

    /// The messages' counts by status.
    pub fn message_counts(&self) -> BTreeMap<MessageStatus, u64> {
        let mut counts = BTreeMap::new();
        for message in &self.messages {
            *counts.entry(message.status).or_insert(0) += 1;
        }
        counts
    }

    /// The send of the processed message that event `at` received, if it is one.
    fn processed_send(&self, at: EventRef) -> Option<EventRef> {
        let row = self.row(at);
        match row.link {
            Link::Receives(idx) if row.kind == Kind::Processed => Some(self.messages[idx as usize].send),
            _ => None,
        }
    }

    /// Every happens-before edge whose ends are both ticks: program order
    /// between consecutive ticks of a machine, and send to `Processed` (the
    /// send may be the second line of a reference double send).
    /// Calls `edge(a, b, is_message)` for each; their closure is
    /// happens-before over the ticks.
    pub fn for_each_tick_edge(&self, mut edge: impl FnMut(EventRef, EventRef, bool)) {
        for (machine, events) in self.machines.iter().enumerate() {
            let mut last: Option<EventRef> = None;
            for (pos, row) in events.rows.iter().enumerate() {
                if !row.tick {
                    continue;
                }
                let at = EventRef { machine: machine as u32, pos: pos as u32 };
                if let Some(last) = last {
                    edge(last, at, false);
                }
                last = Some(at);
            }
        }
        for message in &self.messages {
            if let (MessageStatus::Processed, Some(receive)) = (message.status, message.receive) {
                edge(message.send, receive, true);
            }
        }
    }

    /// The causal past and future of the event at `at`.
    pub fn cone(&self, at: EventRef) -> Cone {
        let n = self.machines.len();
        let lens: Vec<u32> = self.machines.iter().map(|m| m.rows.len() as u32).collect();
        // The past: per machine, the length of the prefix reached so far, and
        // how much of it has been scanned for receives.
        let mut past = vec![0u32; n];
        let mut scanned = vec![0u32; n];
        past[at.machine as usize] = at.pos + 1;
        let mut changed = true;
        while changed {
            changed = false;
            for machine in 0..n {
                while scanned[machine] < past[machine] {
                    let here = EventRef { machine: machine as u32, pos: scanned[machine] };
                    scanned[machine] += 1;
                    if let Some(send) = self.processed_send(here)
                        && past[send.machine as usize] < send.pos + 1
                    {
                        past[send.machine as usize] = send.pos + 1;
                        changed = true;
                    }
                }
            }
        }
        past[at.machine as usize] -= 1;
        // The future: per machine, the first position reached so far, and
        // where scanning for sends started.
        let mut future = lens.clone();
        let mut scanned_from = lens.clone();
        future[at.machine as usize] = at.pos;
        let mut changed = true;
        while changed {
            changed = false;
            for machine in 0..n {
                while scanned_from[machine] > future[machine] {
                    scanned_from[machine] -= 1;
                    let here = EventRef { machine: machine as u32, pos: scanned_from[machine] };
                    if let Link::Sends { first, n: count } = self.row(here).link {
                        for message in &self.messages[first as usize..(first + count) as usize] {
                            if let (MessageStatus::Processed, Some(receive)) = (message.status, message.receive)
                                && receive.pos < future[receive.machine as usize]
                            {
                                future[receive.machine as usize] = receive.pos;
                                changed = true;
                            }
                        }
                    }
                }
            }
        }
        future[at.machine as usize] += 1;
        Cone { past, future }
    }

    /// How many events happened after the event the cone is of.
    pub fn future_size(&self, cone: &Cone) -> u64 {
        self.machines.iter().zip(&cone.future).map(|(m, &first)| m.rows.len() as u64 - u64::from(first)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_log::Record;
    use clocklab_log::events::lines_of;

    fn rec(machine: MachineId, event: Event, clock: u64, t: i64) -> Record {
        Record::new(machine, event, clock, 0, t)
    }

    /// Machine 1: a, send s to 2; machine 2: c, receive r of s, d; machine 3: e, f (alone).
    fn graph() -> RunGraph {
        let logs = BTreeMap::from([
            (1, vec![rec(1, Event::Internal, 1, 10), rec(1, Event::Sent { to: vec![2, 3].into() }, 2, 20)]),
            (
                2,
                vec![
                    rec(2, Event::Internal, 1, 10),
                    rec(2, Event::Processed { from: Some(1), clock: Some(2) }, 3, 30),
                    rec(2, Event::Internal, 4, 40),
                ],
            ),
            (
                3,
                vec![
                    rec(3, Event::Internal, 1, 15),
                    rec(3, Event::Internal, 2, 25),
                    rec(3, Event::Unprocessed { from: 1, clock: 2 }, 2, 50),
                ],
            ),
        ]);
        RunGraph::build(
            RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records)))),
            BuildOptions { replay: true },
        )
    }

    #[test]
    fn messages_are_paired_and_counted() {
        let graph = graph();
        assert_eq!(graph.n_events(), 8);
        assert_eq!(graph.messages.len(), 2);
        assert_eq!(graph.messages[0].status, MessageStatus::Processed);
        assert_eq!(graph.messages[0].receive, Some(EventRef { machine: 1, pos: 1 }));
        assert_eq!(graph.messages[1].status, MessageStatus::Unprocessed);
        assert_eq!(graph.event_ref(EventId { machine: 2, index: 2 }), Some(EventRef { machine: 1, pos: 1 }));
        assert_eq!(graph.event_ref(EventId { machine: 2, index: 4 }), None);
    }

    #[test]
    fn cones_follow_program_order_and_processed_messages_only() {
        let graph = graph();
        // The receive m2e2: its past is m1e1, m1e2 and m2e1; its future m2e3.
        let cone = graph.cone(EventRef { machine: 1, pos: 1 });
        assert_eq!(cone.past, [2, 1, 0]);
        assert_eq!(cone.future, [2, 2, 3]);
        assert_eq!((cone.past_size(), graph.future_size(&cone)), (3, 1));
        // The send m1e2: its future is the receive and what follows it; the
        // unprocessed copy to machine 3 adds nothing.
        let cone = graph.cone(EventRef { machine: 0, pos: 1 });
        assert_eq!((cone.past_size(), graph.future_size(&cone)), (1, 2));
        // Machine 3 is concurrent with everything else.
        let cone = graph.cone(EventRef { machine: 2, pos: 1 });
        assert_eq!((cone.past_size(), graph.future_size(&cone)), (1, 1));
    }

    #[test]
    fn the_past_of_a_tick_counts_the_ticks_its_replayed_vector_counts() {
        let graph = graph();
        for &at in &graph.order {
            if graph.row(at).tick {
                let replayed: u64 = graph.replayed(at).unwrap().iter().sum();
                assert_eq!(graph.cone(at).past_size() + 1, replayed, "{}", graph.event_id(at));
            }
        }
    }
}
