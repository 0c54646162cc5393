//! Vector clocks recovered from the logs alone: program order plus the
//! send/receive pairing of [`RunEvents`](clocklab_log::RunEvents).
//!
//! Fed every event of a run in the order `RunEvents` gives them, a
//! [`VectorReplay`] gives each event the vector clock that the model's rule
//! would have given it: a tick adds 1 to its machine's component, a
//! processed message first takes the element-wise maximum with the vector
//! of its send. So two ticks `a`, `b` have `a → b` (happens-before, as the
//! logs show it) if and only if `V(a) < V(b)`, whether or not the run kept
//! vector clocks. Lines that are not ticks carry the machine's current
//! vector. A receive that pairs with no send (invented, or the reference's
//! `Processed message` without a sender) is a local event: what caused it is
//! not in the logs.
//!
//! Memory: one vector per machine and one per message in flight or queued,
//! the latter in slots of one buffer that are reused as messages arrive (a
//! memory allocation per message cost a sixth of the replay's instructions).

use std::collections::{BTreeMap, VecDeque};

use clocklab_log::{Event, MessageId, Pairing, RunEvent};
use clocklab_model::MachineId;

/// See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct VectorReplay {
    /// The machines, in id order: component `i` belongs to `ids[i]`.
    ids: Vec<MachineId>,
    /// Each machine's current vector.
    current: Vec<Vec<u64>>,
    /// The messages sent and not yet received, per channel (sender,
    /// receiver), oldest first, each with its slot: a channel delivers in
    /// order, so a receive is almost always its channel's oldest message,
    /// found without a search among every message in flight.
    in_flight: BTreeMap<(MachineId, MachineId), VecDeque<(MessageId, usize)>>,
    /// How many messages `in_flight` holds.
    n_in_flight: usize,
    /// The slots: slot `k` is the vector `slots[k * n..(k + 1) * n]`, `n`
    /// the number of machines.
    slots: Vec<u64>,
    /// The slots no message holds.
    free: Vec<usize>,
    /// Machines whose receives name no sender: messages to them are not kept.
    unnamed: Vec<MachineId>,
}

impl VectorReplay {
    /// A replay of a run of these machines (any order; ids need not be contiguous).
    pub fn new(machines: impl IntoIterator<Item = MachineId>) -> VectorReplay {
        let mut ids: Vec<MachineId> = machines.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let current = vec![vec![0; ids.len()]; ids.len()];
        VectorReplay {
            ids,
            current,
            in_flight: BTreeMap::new(),
            n_in_flight: 0,
            slots: Vec::new(),
            free: Vec::new(),
            unnamed: Vec::new(),
        }
    }

    /// The machines, in component order.
    pub fn machines(&self) -> &[MachineId] {
        &self.ids
    }

    /// The component of machine `id`.
    pub fn index_of(&self, id: MachineId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// Takes the next event and returns its vector clock.
    ///
    /// # Panics
    ///
    /// If the event's machine is not one of the replay's.
    pub fn step(&mut self, event: &RunEvent) -> &[u64] {
        let own = self.index_of(event.id.machine).expect("events come from the replay's machines");
        let record = &event.record;
        if record.event.is_tick() {
            if let (Event::Processed { .. }, Pairing::Paired(sent)) = (&record.event, &event.pairing)
                && let Some(slot) = self.take(sent.id)
            {
                let n = self.ids.len();
                for (mine, &seen) in self.current[own].iter_mut().zip(&self.slots[slot * n..(slot + 1) * n]) {
                    *mine = (*mine).max(seen);
                }
                self.free.push(slot);
            }
            self.current[own][own] += 1;
        }
        match (&record.event, &event.pairing) {
            (Event::Sent { to }, _) => {
                for &peer in to {
                    if !self.unnamed.contains(&peer) {
                        let slot = self.slot_of(own);
                        let message = MessageId { send: event.id, to: peer };
                        self.in_flight.entry((event.id.machine, peer)).or_default().push_back((message, slot));
                        self.n_in_flight += 1;
                    }
                }
            }
            (Event::Unprocessed { .. }, Pairing::Paired(sent)) => {
                if let Some(slot) = self.take(sent.id) {
                    self.free.push(slot);
                }
            }
            (_, Pairing::Unnamed) if !self.unnamed.contains(&event.id.machine) => {
                let machine = event.id.machine;
                self.unnamed.push(machine);
                for (_, messages) in self.in_flight.iter_mut().filter(|((_, to), _)| *to == machine) {
                    self.n_in_flight -= messages.len();
                    self.free.extend(messages.drain(..).map(|(_, slot)| slot));
                }
            }
            _ => {}
        }
        &self.current[own]
    }

    /// The slot of message `id`, taken out of the messages in flight.
    fn take(&mut self, id: MessageId) -> Option<usize> {
        let messages = self.in_flight.get_mut(&(id.send.machine, id.to))?;
        let at = messages.iter().position(|(message, _)| *message == id)?;
        let (_, slot) = messages.remove(at)?;
        self.n_in_flight -= 1;
        Some(slot)
    }

    /// A slot holding a copy of machine `own`'s current vector.
    fn slot_of(&mut self, own: usize) -> usize {
        let n = self.ids.len();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.resize(self.slots.len() + n, 0);
            self.slots.len() / n - 1
        });
        self.slots[slot * n..(slot + 1) * n].copy_from_slice(&self.current[own]);
        slot
    }

    /// Messages sent whose receive has not been seen (after the last event: never).
    pub fn in_flight(&self) -> usize {
        self.n_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_log::events::lines_of;
    use clocklab_log::{Record, RunEvents};

    #[test]
    fn replays_the_vector_rule_from_the_pairing() {
        let rec = |machine, event, clock, t| Record::new(machine, event, clock, 0, t);
        let logs = BTreeMap::from([
            (1, vec![rec(1, Event::Internal, 1, 1), rec(1, Event::Sent { to: vec![2, 3].into() }, 2, 2)]),
            (2, vec![rec(2, Event::Processed { from: Some(1), clock: Some(2) }, 3, 5), rec(2, Event::Internal, 4, 6)]),
            (3, vec![rec(3, Event::Internal, 1, 1), rec(3, Event::Unprocessed { from: 1, clock: 2 }, 1, 9)]),
        ]);
        let events = RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records))));
        let mut replay = VectorReplay::new([1, 2, 3]);
        let vectors: BTreeMap<String, Vec<u64>> =
            events.map(|event| (event.id.to_string(), replay.step(&event).to_vec())).collect();
        assert_eq!(vectors["m1e2"], [2, 0, 0]);
        assert_eq!(vectors["m2e1"], [2, 1, 0]);
        assert_eq!(vectors["m2e2"], [2, 2, 0]);
        // An unprocessed message changes nothing.
        assert_eq!(vectors["m3e2"], [0, 0, 1]);
        assert_eq!(replay.in_flight(), 0);
    }
}
