//! Logical clocks: the [`LogicalClock`] trait and Lamport's clock.
//!
//! Every clock advances on the same events (a local event, a send, the
//! receive of a message taken off the queue) and may read the machine's
//! physical clock, which the machine passes in: the model never reads time
//! itself. [`LamportClock`] is the clock of the classic exercise;
//! [`crate::vector::VectorClock`] and [`crate::hlc::HybridClock`] are the
//! others, and [`crate::clockset::ClockSet`] keeps any of them side by side.

use std::fmt::Debug;

/// A logical clock as the machine drives it: one update per event.
pub trait LogicalClock: Clone + Debug {
    /// What travels with a message. Not `Copy`: a vector clock's stamp has
    /// one component per machine.
    type Stamp: Clone + Debug + PartialEq;

    /// An internal event happened at physical time `physical_us` (the
    /// machine's own clock, microseconds since the Unix epoch).
    fn local_event(&mut self, physical_us: i64);

    /// A send event happened; returns the stamp that every recipient gets.
    fn send_event(&mut self, physical_us: i64) -> Self::Stamp;

    /// A message with `stamp` was taken off the queue.
    fn receive_event(&mut self, stamp: &Self::Stamp, physical_us: i64);

    /// The scalar written to the log's `Logical Clock` field.
    fn scalar(&self) -> u64;
}

/// Lamport's logical clock: +1 on a local or send event, `max(local, received) + 1`
/// on a receive.
///
/// The value is a `u64`: it cannot wrap in any run that clocklab can make, and
/// the 32-bit limit of the wire is handled in [`crate::wire`], not here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LamportClock {
    value: u64,
}

impl LamportClock {
    /// A clock that starts at `value`.
    pub fn starting_at(value: u64) -> LamportClock {
        LamportClock { value }
    }

    /// The current value.
    pub fn value(&self) -> u64 {
        self.value
    }

    fn advance_to(&mut self, floor: u64) {
        // An overflow would need 2^64 events: it is a bug, not an input.
        self.value = floor.checked_add(1).expect("Lamport clock overflowed u64");
    }
}

impl LogicalClock for LamportClock {
    type Stamp = u64;

    fn local_event(&mut self, _physical_us: i64) {
        self.advance_to(self.value);
    }

    fn send_event(&mut self, _physical_us: i64) -> u64 {
        self.advance_to(self.value);
        self.value
    }

    fn receive_event(&mut self, stamp: &u64, _physical_us: i64) {
        self.advance_to(self.value.max(*stamp));
    }

    fn scalar(&self) -> u64 {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn receive_takes_max_plus_one() {
        let mut clock = LamportClock::starting_at(5);
        clock.receive_event(&17, 0);
        assert_eq!(clock.value(), 18);
        clock.receive_event(&3, 0);
        assert_eq!(clock.value(), 19);
    }

    #[test]
    fn send_and_internal_add_one() {
        let mut clock = LamportClock::default();
        assert_eq!(clock.send_event(0), 1);
        clock.local_event(0);
        assert_eq!(clock.value(), 2);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Local,
        Send,
        Receive(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![Just(Op::Local), Just(Op::Send), (0u64..=u64::from(u32::MAX)).prop_map(Op::Receive),]
    }

    proptest! {
        #[test]
        fn every_event_strictly_increases(start in 0u64..1 << 40, ops in proptest::collection::vec(op(), 0..200)) {
            let mut clock = LamportClock::starting_at(start);
            for op in ops {
                let before = clock.value();
                match op {
                    Op::Local => {
                        clock.local_event(0);
                        prop_assert_eq!(clock.value(), before + 1);
                    }
                    Op::Send => {
                        let stamp = clock.send_event(0);
                        prop_assert_eq!(stamp, before + 1);
                        prop_assert_eq!(clock.value(), stamp);
                    }
                    Op::Receive(stamp) => {
                        clock.receive_event(&stamp, 0);
                        prop_assert_eq!(clock.value(), before.max(stamp) + 1);
                        prop_assert!(clock.value() > stamp);
                    }
                }
                prop_assert!(clock.value() > before);
            }
        }
    }
}
