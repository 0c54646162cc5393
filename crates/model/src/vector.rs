//! Vector clocks (Fidge, Mattern): one counter per machine, which together
//! characterise happens-before exactly.
//!
//! Component `i` belongs to machine `i + 1`. All components are zero at the
//! start; every event of the machine (a tick) adds exactly 1 to its own
//! component; taking a message off the queue first sets every component to
//! the larger of the local and the received one. So for events `a` and `b`,
//! `a → b` if and only if `V(a) < V(b)` (every component `<=`, one `<`).
//!
//! Components are `u64` and saturate instead of overflowing: a peer cannot
//! make a machine panic by sending `u64::MAX`.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::clock::LogicalClock;

/// What a message carries: the sender's vector, shared by every recipient of
/// one send.
pub type VectorStamp = Arc<[u64]>;

/// One machine's vector clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorClock {
    own: usize,
    values: Vec<u64>,
}

impl VectorClock {
    /// A zero clock for machine `machine_idx` (0-based) of `n_machines`.
    ///
    /// # Panics
    ///
    /// If `machine_idx >= n_machines`; the machine's parameters are checked first.
    pub fn new(machine_idx: usize, n_machines: usize) -> VectorClock {
        assert!(machine_idx < n_machines, "machine index {machine_idx} is outside 0..{n_machines}");
        VectorClock { own: machine_idx, values: vec![0; n_machines] }
    }

    /// A clock of machine `machine_idx` holding `values` (one per machine).
    ///
    /// # Panics
    ///
    /// If `machine_idx` is not an index of `values`.
    pub fn from_values(machine_idx: usize, values: &[u64]) -> VectorClock {
        assert!(machine_idx < values.len(), "machine index {machine_idx} is outside 0..{}", values.len());
        VectorClock { own: machine_idx, values: values.to_vec() }
    }

    /// The components, machine 1 first.
    pub fn values(&self) -> &[u64] {
        &self.values
    }

    fn advance_own(&mut self) {
        self.values[self.own] = self.values[self.own].saturating_add(1);
    }
}

impl LogicalClock for VectorClock {
    type Stamp = VectorStamp;

    fn local_event(&mut self, _physical_us: i64) {
        self.advance_own();
    }

    fn send_event(&mut self, _physical_us: i64) -> VectorStamp {
        self.advance_own();
        Arc::from(self.values.as_slice())
    }

    fn receive_event(&mut self, stamp: &VectorStamp, _physical_us: i64) {
        // A stamp of another length (only a hand-built one) merges over the
        // components both have.
        for (mine, &theirs) in self.values.iter_mut().zip(stamp.iter()) {
            *mine = (*mine).max(theirs);
        }
        self.advance_own();
    }

    fn scalar(&self) -> u64 {
        self.values[self.own]
    }
}

/// How two vectors compare: `Less` if `a → b` (`a <= b` component-wise and
/// `a != b`), `Greater` if `b → a`, `Equal` if equal, `None` if concurrent.
pub fn compare(a: &[u64], b: &[u64]) -> Option<Ordering> {
    let (mut less, mut greater) = (false, false);
    for (x, y) in a.iter().zip(b) {
        match x.cmp(y) {
            Ordering::Less => less = true,
            Ordering::Greater => greater = true,
            Ordering::Equal => {}
        }
    }
    match (less, greater) {
        (false, false) => Some(Ordering::Equal),
        (true, false) => Some(Ordering::Less),
        (false, true) => Some(Ordering::Greater),
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_component_counts_events_and_receive_merges_first() {
        let mut one = VectorClock::new(0, 3);
        let mut two = VectorClock::new(1, 3);
        one.local_event(0);
        let stamp = one.send_event(0);
        assert_eq!(&*stamp, &[2, 0, 0]);
        two.local_event(0);
        two.receive_event(&stamp, 0);
        assert_eq!(two.values(), &[2, 2, 0]);
        assert_eq!(two.scalar(), 2);
    }

    #[test]
    fn comparison_is_happens_before() {
        assert_eq!(compare(&[1, 0], &[1, 1]), Some(Ordering::Less));
        assert_eq!(compare(&[2, 1], &[1, 1]), Some(Ordering::Greater));
        assert_eq!(compare(&[1, 1], &[1, 1]), Some(Ordering::Equal));
        assert_eq!(compare(&[2, 0], &[1, 1]), None);
    }

    #[test]
    fn a_hostile_stamp_saturates_instead_of_panicking() {
        let mut clock = VectorClock::new(0, 2);
        clock.receive_event(&Arc::from([u64::MAX, u64::MAX].as_slice()), 0);
        assert_eq!(clock.values(), &[u64::MAX, u64::MAX]);
        clock.local_event(0);
        assert_eq!(clock.values(), &[u64::MAX, u64::MAX]);
    }
}
