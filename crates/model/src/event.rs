//! The event choice of a tick with an empty queue, and who receives a send.
//!
//! A tick whose queue is empty draws `n` uniformly from `1..=max_event_num`:
//!
//! | `n` | event |
//! | --- | --- |
//! | 1 | send to the machine's *first peer* |
//! | 2 | send to its *second peer* |
//! | 3 | send to every other machine |
//! | otherwise | an internal event |
//!
//! **The ring rule.** Machines `1..=N` stand in a ring. The first peer of
//! machine `i` is the next one, `i % N + 1`; the second peer is the one after
//! that. With three machines these are simply "one of the others" and "the
//! other one", as in the classic exercise; with `N > 3` the two peers are fixed
//! and distinct, and only `n = 3` reaches everybody. With `N = 2` there is one
//! peer, and `n = 1`, `2` and `3` all send to it.

use crate::MachineId;

/// What a tick with an empty queue does, by the drawn `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventChoice {
    /// Send the clock to these recipients.
    Send(Recipients),
    /// Only the clock moves.
    Internal,
}

impl EventChoice {
    /// The event for a drawn `n` (`1..=max_event_num`).
    pub fn from_draw(n: u32) -> EventChoice {
        match n {
            1 => EventChoice::Send(Recipients::FirstPeer),
            2 => EventChoice::Send(Recipients::SecondPeer),
            3 => EventChoice::Send(Recipients::AllPeers),
            _ => EventChoice::Internal,
        }
    }
}

/// Who a send goes to, before the ring rule names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// The next machine in the ring.
    FirstPeer,
    /// The machine after the next one (the next one when there are only two).
    SecondPeer,
    /// Every machine but the sender.
    AllPeers,
}

/// The ring of `n_machines` machines as seen from machine `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerRing {
    id: MachineId,
    n_machines: u32,
}

impl PeerRing {
    /// The ring seen from `id`.
    ///
    /// # Panics
    ///
    /// If `n_machines < 2` or `id` is not in `1..=n_machines`; the
    /// configuration checks both before a machine is built.
    pub fn new(id: MachineId, n_machines: u32) -> PeerRing {
        assert!(n_machines >= 2, "a ring needs at least two machines");
        assert!((1..=n_machines).contains(&id), "machine {id} is not in 1..={n_machines}");
        PeerRing { id, n_machines }
    }

    /// The machine `steps` places after this one.
    fn after(&self, steps: u32) -> MachineId {
        (self.id - 1 + steps) % self.n_machines + 1
    }

    /// The next machine in the ring.
    pub fn first_peer(&self) -> MachineId {
        self.after(1)
    }

    /// The machine after the next one, or the next one in a ring of two.
    pub fn second_peer(&self) -> MachineId {
        if self.n_machines == 2 { self.after(1) } else { self.after(2) }
    }

    /// Every other machine, in increasing id order.
    pub fn all_peers(&self) -> impl Iterator<Item = MachineId> + use<> {
        let id = self.id;
        (1..=self.n_machines).filter(move |&peer| peer != id)
    }

    /// The machines that `recipients` names, in increasing id order, without repeats.
    pub fn resolve(&self, recipients: Recipients) -> RecipientIter {
        match recipients {
            Recipients::FirstPeer => RecipientIter::one(self.first_peer()),
            Recipients::SecondPeer => RecipientIter::one(self.second_peer()),
            Recipients::AllPeers => RecipientIter::all_but(self.id, self.n_machines),
        }
    }
}

/// The machines a send goes to; allocation-free.
#[derive(Clone, Debug)]
pub struct RecipientIter {
    next: MachineId,
    last: MachineId,
    skip: MachineId,
}

impl RecipientIter {
    fn one(peer: MachineId) -> RecipientIter {
        RecipientIter { next: peer, last: peer, skip: 0 }
    }

    fn all_but(id: MachineId, n_machines: u32) -> RecipientIter {
        RecipientIter { next: 1, last: n_machines, skip: id }
    }
}

impl Iterator for RecipientIter {
    type Item = MachineId;

    fn next(&mut self) -> Option<MachineId> {
        if self.next == self.skip {
            self.next += 1;
        }
        if self.next > self.last {
            return None;
        }
        let peer = self.next;
        self.next += 1;
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(ring: PeerRing, recipients: Recipients) -> Vec<MachineId> {
        ring.resolve(recipients).collect()
    }

    #[test]
    fn draw_maps_to_the_classic_events() {
        assert_eq!(EventChoice::from_draw(1), EventChoice::Send(Recipients::FirstPeer));
        assert_eq!(EventChoice::from_draw(2), EventChoice::Send(Recipients::SecondPeer));
        assert_eq!(EventChoice::from_draw(3), EventChoice::Send(Recipients::AllPeers));
        for n in 4..=10 {
            assert_eq!(EventChoice::from_draw(n), EventChoice::Internal);
        }
    }

    #[test]
    fn three_machines_send_to_one_other_then_the_other() {
        let ring = PeerRing::new(1, 3);
        assert_eq!(names(ring, Recipients::FirstPeer), [2]);
        assert_eq!(names(ring, Recipients::SecondPeer), [3]);
        assert_eq!(names(ring, Recipients::AllPeers), [2, 3]);
        let ring = PeerRing::new(3, 3);
        assert_eq!(names(ring, Recipients::FirstPeer), [1]);
        assert_eq!(names(ring, Recipients::SecondPeer), [2]);
        assert_eq!(names(ring, Recipients::AllPeers), [1, 2]);
    }

    #[test]
    fn two_machines_always_reach_the_one_peer() {
        let ring = PeerRing::new(2, 2);
        for recipients in [Recipients::FirstPeer, Recipients::SecondPeer, Recipients::AllPeers] {
            assert_eq!(names(ring, recipients), [1]);
        }
    }

    #[test]
    fn five_machines_use_two_fixed_ring_peers() {
        let ring = PeerRing::new(4, 5);
        assert_eq!(names(ring, Recipients::FirstPeer), [5]);
        assert_eq!(names(ring, Recipients::SecondPeer), [1]);
        assert_eq!(names(ring, Recipients::AllPeers), [1, 2, 3, 5]);
    }

    proptest! {
        #[test]
        fn peers_are_distinct_others(n_machines in 2u32..64, id_seed in 0u32..64) {
            let id = id_seed % n_machines + 1;
            let ring = PeerRing::new(id, n_machines);
            let first = ring.first_peer();
            let second = ring.second_peer();
            prop_assert_ne!(first, id);
            prop_assert_ne!(second, id);
            prop_assert!(first >= 1 && first <= n_machines);
            prop_assert!(second >= 1 && second <= n_machines);
            if n_machines > 2 {
                prop_assert_ne!(first, second);
            }
            let all: Vec<_> = ring.resolve(Recipients::AllPeers).collect();
            prop_assert_eq!(all.len() as u32, n_machines - 1);
            prop_assert!(all.windows(2).all(|pair| pair[0] < pair[1]));
            prop_assert!(!all.contains(&id));
        }
    }
}
