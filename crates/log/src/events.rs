//! A run's events: every line of every machine's log, merged in time order,
//! each receive paired with its send.
//!
//! [`RunEvents`] streams: it holds one read-ahead line per machine and the
//! messages sent but not yet received (those in flight or queued), never a
//! whole log. Events come in true-time order (ties by machine id), with one
//! exception that causality forces: a receive never comes before its send,
//! so a receive whose send is still ahead in another log waits for it.
//!
//! **Pairing.** A message is named by (sender, receiver, Lamport clock as the
//! wire carried it): a sender's Lamport clock rises strictly, so the triple
//! names one message (past the 32-bit wire limit, or after a restart with a
//! fresh clock, several sends can share a triple; they pair in order, as a
//! TCP connection delivers them); what was sent to a machine and not received
//! when it crashed never pairs with a later receive. `Processed` and
//! `Unprocessed` lines are
//! receives; a `Lost` line (the sender's account of a message the fault
//! plan lost) pairs with the send it follows, and a `Held` line (one the
//! plan still held at the end) with its send. A receive whose send is in no
//! log is reported as
//! [`Pairing::Unmatched`]; the reference implementation's `Processed
//! message` names no sender and is [`Pairing::Unnamed`]. After the last
//! event, [`RunEvents::unmatched_sends`] lists the messages no log received.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use clocklab_model::wire::on_the_wire;
use clocklab_model::{HlcStamp, MachineId};

use crate::read::{ReadLine, TimePrecision};
use crate::record::{Event, Record};

/// One event: machine `machine`'s `index`-th line read (1-based), so that
/// `m2e117` is machine 2's 117th event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// The machine.
    pub machine: MachineId,
    /// Its position among the machine's events, from 1.
    pub index: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}e{}", self.machine, self.index)
    }
}

/// One message: the send event it left in, and its receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    /// The send event.
    pub send: EventId,
    /// The receiver.
    pub to: MachineId,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-to-m{}", self.send, self.to)
    }
}

/// A message as its sender logged it.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    /// Which message.
    pub id: MessageId,
    /// The sender's Lamport clock at the send (as logged, before the wire).
    pub lamport: u64,
    /// The sender's vector clock at the send, if the run kept one.
    pub vector: Option<Arc<[u64]>>,
    /// The sender's HLC at the send, if the run kept one.
    pub hlc: Option<HlcStamp>,
    /// When it was sent (true time, microseconds since the Unix epoch).
    pub time_us: i64,
}

/// What a line is, as far as messages go.
#[derive(Clone, Debug, PartialEq)]
pub enum Pairing {
    /// Not a receive (a send lists its messages in its record's `to`).
    NotAReceive,
    /// A receive, paired with its send (boxed: most events are not receives,
    /// and every event is moved a few times on its way).
    Paired(Box<SentMessage>),
    /// A receive that no log sent: invented, or its sender's log is missing.
    Unmatched,
    /// A receive that names no sender (the reference's `Processed message`).
    Unnamed,
}

/// One event of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEvent {
    /// Which event.
    pub id: EventId,
    /// Its line number in its log.
    pub line_no: u64,
    /// How precise its time is.
    pub precision: TimePrecision,
    /// The line.
    pub record: Record,
    /// For a receive, the send it pairs with.
    pub pairing: Pairing,
}

impl RunEvent {
    /// The messages a send event sent, one per recipient (none for other events).
    pub fn messages(&self) -> impl Iterator<Item = MessageId> + '_ {
        let to: &[MachineId] = match &self.record.event {
            Event::Sent { to } => to,
            _ => &[],
        };
        to.iter().map(move |&to| MessageId { send: self.id, to })
    }
}

/// The key a send and its receive share.
type MessageKey = (MachineId, MachineId, u64);

/// The messages sent under one key and not received yet, oldest first. A
/// key almost always names one message, which is kept without an
/// allocation of its own (a queue per key was a memory allocation per send).
#[derive(Debug)]
struct Pending {
    oldest: SentMessage,
    later: VecDeque<SentMessage>,
}

impl Pending {
    /// How many messages.
    fn len(&self) -> usize {
        1 + self.later.len()
    }

    /// The messages, oldest first.
    fn iter(&self) -> impl Iterator<Item = &SentMessage> {
        std::iter::once(&self.oldest).chain(&self.later)
    }
}

/// One machine's log, read one line ahead.
#[derive(Debug)]
struct Stream<I> {
    machine: MachineId,
    lines: I,
    head: Option<ReadLine>,
    /// The index the head will get.
    next_index: u64,
    /// What is taken off each line's time: its host's clock offset (0 on
    /// the orchestrator's computer).
    offset_us: i64,
}

impl<I: Iterator<Item = ReadLine>> Stream<I> {
    /// The next line, its time on the run's one timeline.
    fn read(&mut self) -> Option<ReadLine> {
        let mut line = self.lines.next()?;
        line.record.time_us -= self.offset_us;
        Some(line)
    }
}

/// Every event of a run, merged; see the [module documentation](self).
#[derive(Debug)]
pub struct RunEvents<I: Iterator<Item = ReadLine>> {
    streams: Vec<Stream<I>>,
    /// Messages sent and not received yet, oldest first per key.
    pending: BTreeMap<MessageKey, Pending>,
    /// Messages whose receiver crashed before it received them, or that
    /// their sender sent with no connection to the receiver up: no receive
    /// pairs with them (a restarted machine's clocks may repeat theirs),
    /// though their senders' `Lost` or `Held` lines still do.
    taken: BTreeMap<MessageKey, Pending>,
    /// Per machine whose log tells its connections, the peers it is
    /// connected to now.
    connections: BTreeMap<MachineId, Vec<MachineId>>,
    /// Receivers whose log names no sender: sends to them can never pair.
    unnamed_receivers: Vec<MachineId>,
    /// Sends to such receivers, counted and not kept.
    n_unpairable_sends: u64,
}

impl<I: Iterator<Item = ReadLine>> RunEvents<I> {
    /// Merges the logs of a run: `(machine id, its lines in file order)`.
    pub fn new(logs: impl IntoIterator<Item = (MachineId, I)>) -> RunEvents<I> {
        let mut streams: Vec<Stream<I>> = logs
            .into_iter()
            .map(|(machine, mut lines)| {
                let head = lines.next();
                Stream { machine, lines, head, next_index: 1, offset_us: 0 }
            })
            .collect();
        streams.sort_by_key(|stream| stream.machine);
        RunEvents {
            streams,
            pending: BTreeMap::new(),
            taken: BTreeMap::new(),
            connections: BTreeMap::new(),
            unnamed_receivers: Vec::new(),
            n_unpairable_sends: 0,
        }
    }

    /// Places every machine's lines on one timeline: `offsets` gives, per
    /// machine, its host's clock minus the orchestrator's (a run on several
    /// hosts; see `RunManifest::host_clock_offsets`), which is taken off
    /// each of its lines' times. A line's `Timestamp` in its log stays in
    /// its own host's clock; the events given out are in the orchestrator's.
    pub fn with_clock_offsets(mut self, offsets: &BTreeMap<MachineId, i64>) -> RunEvents<I> {
        for stream in &mut self.streams {
            stream.offset_us = offsets.get(&stream.machine).copied().unwrap_or(0);
            if let Some(head) = &mut stream.head {
                head.record.time_us -= stream.offset_us;
            }
        }
        self
    }

    /// The machines whose logs are merged, in id order.
    pub fn machines(&self) -> impl Iterator<Item = MachineId> + '_ {
        self.streams.iter().map(|stream| stream.machine)
    }

    /// Whether every line of `machine`'s log has been given out.
    pub fn finished(&self, machine: MachineId) -> bool {
        self.streams.iter().find(|stream| stream.machine == machine).is_none_or(|stream| stream.head.is_none())
    }

    /// Each log, in machine order, with what it has not given out: for a
    /// caller that changes how the lines are read, never which.
    pub fn logs_mut(&mut self) -> impl Iterator<Item = &mut I> {
        self.streams.iter_mut().map(|stream| &mut stream.lines)
    }

    /// Gives the logs back, each with what it did not give out.
    pub fn into_logs(self) -> Vec<(MachineId, I)> {
        self.streams.into_iter().map(|stream| (stream.machine, stream.lines)).collect()
    }

    /// The messages sent that no log has received so far (after the last
    /// event: never), in key order.
    pub fn unmatched_sends(&self) -> impl Iterator<Item = &SentMessage> {
        self.pending.values().chain(self.taken.values()).flat_map(Pending::iter)
    }

    /// Sends to machines whose logs name no sender (the reference's), which
    /// cannot be paired.
    pub fn n_unpairable_sends(&self) -> u64 {
        self.n_unpairable_sends
    }

    /// The oldest message sent under `key` and not received yet.
    fn take_pending(&mut self, key: MessageKey) -> Option<SentMessage> {
        Self::take_from(&mut self.pending, key)
    }

    /// The oldest message of `key` in `messages`, taken out.
    fn take_from(messages: &mut BTreeMap<MessageKey, Pending>, key: MessageKey) -> Option<SentMessage> {
        let Entry::Occupied(mut entry) = messages.entry(key) else { return None };
        Some(match entry.get_mut().later.pop_front() {
            Some(next) => std::mem::replace(&mut entry.get_mut().oldest, next),
            None => entry.remove().oldest,
        })
    }

    /// Moves the messages of `from` whose key `which` picks to `into`,
    /// after those it holds under the same key.
    fn move_keys(
        from: &mut BTreeMap<MessageKey, Pending>,
        into: &mut BTreeMap<MessageKey, Pending>,
        which: impl Fn(&MessageKey) -> bool,
    ) {
        let keys: Vec<MessageKey> = from.keys().filter(|key| which(key)).copied().collect();
        for key in keys {
            let messages = from.remove(&key).expect("listed");
            for sent in std::iter::once(messages.oldest).chain(messages.later) {
                Self::keep_in(into, key, sent);
            }
        }
    }

    /// Follows a machine's connections as its log tells them: a crash takes
    /// what was sent to it and not received, and a send to a peer it is not
    /// connected to goes nowhere.
    fn follow_connections(&mut self, machine: MachineId, event: &Event) {
        match event {
            Event::Connected { peer, .. } => {
                let peers = self.connections.entry(machine).or_default();
                if !peers.contains(peer) {
                    peers.push(*peer);
                }
            }
            Event::Disconnected { peer } => {
                if let Some(peers) = self.connections.get_mut(&machine) {
                    peers.retain(|p| p != peer);
                }
            }
            Event::Crashed => {
                if let Some(peers) = self.connections.get_mut(&machine) {
                    peers.clear();
                }
                Self::move_keys(&mut self.pending, &mut self.taken, |key| key.1 == machine);
            }
            _ => {}
        }
    }

    /// Whether `machine` sends to `peer` with no connection up, as its log
    /// tells its connections (a log that tells none sends to everyone).
    fn unconnected(&self, machine: MachineId, peer: MachineId) -> bool {
        self.connections.get(&machine).is_some_and(|peers| !peers.contains(&peer))
    }

    /// Keeps a message sent under `key` until its receive.
    fn keep_pending(&mut self, key: MessageKey, sent: SentMessage) {
        Self::keep_in(&mut self.pending, key, sent);
    }

    /// Keeps a message sent under `key` in `messages`, after the others.
    fn keep_in(messages: &mut BTreeMap<MessageKey, Pending>, key: MessageKey, sent: SentMessage) {
        match messages.entry(key) {
            Entry::Vacant(entry) => {
                entry.insert(Pending { oldest: sent, later: VecDeque::new() });
            }
            Entry::Occupied(mut entry) => entry.get_mut().later.push_back(sent),
        }
    }

    /// The key of a receive, if the line is one that names its sender.
    fn receive_key(machine: MachineId, record: &Record) -> Option<MessageKey> {
        match record.event {
            Event::Processed { from: Some(from), clock: Some(clock) } => Some((from, machine, clock)),
            Event::Unprocessed { from, clock } => Some((from, machine, clock)),
            _ => None,
        }
    }

    /// Whether the head of `stream` may go now: anything but a receive whose
    /// send has not been seen.
    fn ready(&self, stream: &Stream<I>) -> bool {
        let Some(head) = &stream.head else { return false };
        match Self::receive_key(stream.machine, &head.record) {
            Some(key) => self.pending.contains_key(&key),
            None => true,
        }
    }

    /// The stream to take the next event from: the earliest ready head, or
    /// when every head waits for a send that never comes, the earliest head.
    fn pick(&self) -> Option<usize> {
        // The earliest head, when it is ready, is also the earliest ready
        // head (ties go to the lower index either way): most events need
        // one readiness check, not one per machine.
        let earliest = |ready_only: bool| {
            let mut best: Option<(usize, i64)> = None;
            for (idx, stream) in self.streams.iter().enumerate() {
                let Some(head) = &stream.head else { continue };
                if ready_only && !self.ready(stream) {
                    continue;
                }
                if best.is_none_or(|(_, time)| head.record.time_us < time) {
                    best = Some((idx, head.record.time_us));
                }
            }
            best.map(|(idx, _)| idx)
        };
        let first = earliest(false)?;
        if self.ready(&self.streams[first]) { Some(first) } else { earliest(true).or(Some(first)) }
    }
}

impl<I: Iterator<Item = ReadLine>> Iterator for RunEvents<I> {
    type Item = RunEvent;

    fn next(&mut self) -> Option<RunEvent> {
        let idx = self.pick()?;
        let stream = &mut self.streams[idx];
        let next = stream.read();
        let line = std::mem::replace(&mut stream.head, next).expect("a picked stream has a head");
        let machine = stream.machine;
        let id = EventId { machine, index: stream.next_index };
        stream.next_index += 1;
        let record = line.record;
        let pairing = match &record.event {
            Event::Sent { to } => {
                let vector: Option<Arc<[u64]>> = record.vector_clock.as_deref().map(Arc::from);
                for &peer in to {
                    if self.unnamed_receivers.contains(&peer) {
                        self.n_unpairable_sends += 1;
                        continue;
                    }
                    let sent = SentMessage {
                        id: MessageId { send: id, to: peer },
                        lamport: record.logical_clock,
                        vector: vector.clone(),
                        hlc: record.hlc,
                        time_us: record.time_us,
                    };
                    let key = (machine, peer, on_the_wire(record.logical_clock));
                    if self.unconnected(machine, peer) {
                        Self::keep_in(&mut self.taken, key, sent);
                    } else {
                        self.keep_pending(key, sent);
                    }
                }
                Pairing::NotAReceive
            }
            Event::Processed { from: None, .. } | Event::Processed { clock: None, .. } => {
                if !self.unnamed_receivers.contains(&machine) {
                    // Sends to this machine can never pair: stop keeping them.
                    self.unnamed_receivers.push(machine);
                    let before = self.pending.len();
                    self.pending.retain(|&(_, to, _), sends| {
                        if to == machine {
                            self.n_unpairable_sends += sends.len() as u64;
                        }
                        to != machine
                    });
                    debug_assert!(self.pending.len() <= before);
                }
                Pairing::Unnamed
            }
            Event::Lost { to, clock } | Event::Held { to, clock } => {
                // The sender's own account of a message the fault plan lost,
                // or held past the end: it pairs with its send.
                let key = (machine, *to, on_the_wire(*clock));
                match self.take_pending(key).or_else(|| Self::take_from(&mut self.taken, key)) {
                    Some(sent) => Pairing::Paired(Box::new(sent)),
                    None => Pairing::Unmatched,
                }
            }
            _ => match Self::receive_key(machine, &record) {
                Some(key) => match self.take_pending(key) {
                    Some(sent) => Pairing::Paired(Box::new(sent)),
                    None => Pairing::Unmatched,
                },
                None => Pairing::NotAReceive,
            },
        };
        self.follow_connections(machine, &record.event);
        Some(RunEvent { id, line_no: line.line_no, precision: line.precision, record, pairing })
    }
}

/// Lines from records held in memory, numbered from 1, as a reader would give them.
pub fn lines_of(records: &[Record]) -> impl Iterator<Item = ReadLine> + '_ {
    records.iter().enumerate().map(|(idx, record)| ReadLine {
        line_no: idx as u64 + 1,
        record: record.clone(),
        precision: TimePrecision::Micros,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(machine: MachineId, event: Event, clock: u64, t: i64) -> Record {
        Record::new(machine, event, clock, 0, t)
    }

    fn merged(logs: &BTreeMap<MachineId, Vec<Record>>) -> (Vec<RunEvent>, Vec<SentMessage>) {
        let mut events = RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records))));
        let all: Vec<RunEvent> = events.by_ref().collect();
        let unmatched = events.unmatched_sends().cloned().collect();
        (all, unmatched)
    }

    #[test]
    fn receives_pair_with_their_sends_and_never_come_first() {
        // Machine 1's receive is stamped before machine 2's send (same
        // instant, lower id): it still comes after it.
        let logs = BTreeMap::from([
            (
                1,
                vec![rec(1, Event::Internal, 1, 10), rec(1, Event::Processed { from: Some(2), clock: Some(1) }, 2, 20)],
            ),
            (2, vec![rec(2, Event::Sent { to: vec![1].into() }, 1, 20), rec(2, Event::Internal, 2, 30)]),
        ]);
        let (events, unmatched) = merged(&logs);
        let order: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(order, ["m1e1", "m2e1", "m1e2", "m2e2"]);
        let Pairing::Paired(sent) = &events[2].pairing else { panic!("{:?}", events[2]) };
        assert_eq!(sent.id, MessageId { send: EventId { machine: 2, index: 1 }, to: 1 });
        assert_eq!(events[1].messages().collect::<Vec<_>>(), [sent.id]);
        assert!(unmatched.is_empty());
    }

    #[test]
    fn invented_receives_and_lost_sends_are_reported() {
        let logs = BTreeMap::from([
            (1, vec![rec(1, Event::Processed { from: Some(2), clock: Some(9) }, 10, 5)]),
            (2, vec![rec(2, Event::Sent { to: vec![1, 3].into() }, 1, 1)]),
            (3, vec![rec(3, Event::Unprocessed { from: 2, clock: 1 }, 0, 50)]),
        ]);
        let (events, unmatched) = merged(&logs);
        assert_eq!(events.len(), 3);
        let invented = events.iter().find(|e| e.id.machine == 1).unwrap();
        assert_eq!(invented.pairing, Pairing::Unmatched);
        assert!(matches!(events.iter().find(|e| e.id.machine == 3).unwrap().pairing, Pairing::Paired(_)));
        assert_eq!(unmatched.len(), 1);
        assert_eq!(unmatched[0].id.to, 1);
    }

    #[test]
    fn same_key_sends_pair_in_order_and_unnamed_receives_are_not_kept() {
        let max = u64::from(u32::MAX);
        let logs = BTreeMap::from([
            (
                1,
                vec![
                    rec(1, Event::Sent { to: vec![2].into() }, max + 5, 1),
                    rec(1, Event::Sent { to: vec![2].into() }, max + 6, 2),
                    rec(1, Event::Sent { to: vec![3].into() }, max + 7, 3),
                ],
            ),
            (
                2,
                vec![
                    rec(2, Event::Processed { from: Some(1), clock: Some(max) }, max + 1, 4),
                    rec(2, Event::Processed { from: Some(1), clock: Some(max) }, max + 2, 5),
                ],
            ),
            (3, vec![rec(3, Event::Processed { from: None, clock: None }, 9, 6)]),
        ]);
        let mut events = RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records))));
        let all: Vec<RunEvent> = events.by_ref().collect();
        let sends: Vec<u64> = all
            .iter()
            .filter_map(|e| match &e.pairing {
                Pairing::Paired(sent) => Some(sent.id.send.index),
                _ => None,
            })
            .collect();
        assert_eq!(sends, [1, 2], "saturated clocks pair in send order");
        assert_eq!(all.last().unwrap().pairing, Pairing::Unnamed);
        assert_eq!(events.unmatched_sends().count(), 0);
        assert_eq!(events.n_unpairable_sends(), 1);
    }

    #[test]
    fn each_host_s_clock_offset_is_taken_off_its_machines_times() {
        // Machine 2's host's clock is 1 s ahead: by its own clock its send
        // is at 1_000_020, after machine 1's internal event at 30; on one
        // timeline it is at 20, before it.
        let logs = BTreeMap::from([
            (
                1,
                vec![rec(1, Event::Internal, 1, 30), rec(1, Event::Processed { from: Some(2), clock: Some(1) }, 2, 40)],
            ),
            (2, vec![rec(2, Event::Sent { to: vec![1].into() }, 1, 1_000_020), rec(2, Event::Internal, 2, 1_000_050)]),
        ]);
        let order = |offsets: &BTreeMap<MachineId, i64>| {
            let events = RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records))));
            events.with_clock_offsets(offsets).map(|e| (e.id.to_string(), e.record.time_us)).collect::<Vec<_>>()
        };
        assert_eq!(
            order(&BTreeMap::new()),
            [("m1e1".into(), 30), ("m2e1".into(), 1_000_020), ("m1e2".into(), 40), ("m2e2".into(), 1_000_050)]
        );
        assert_eq!(
            order(&BTreeMap::from([(2, 1_000_000)])),
            [("m2e1".into(), 20), ("m1e1".into(), 30), ("m1e2".into(), 40), ("m2e2".into(), 50)]
        );
    }
}
