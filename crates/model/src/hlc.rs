//! Hybrid logical clocks (Kulkarni, Demirbas, Madappa, Avva, Leone:
//! "Logical Physical Clocks", 2014).
//!
//! State `(l, c)`: `l` is the largest physical time the machine has heard
//! of, in microseconds since the Unix epoch, and `c` counts events that share
//! that `l`. With `pt` the machine's own physical clock at the event:
//!
//! - send or local event: `l' = max(l, pt)`; `c' = c + 1` if `l' == l`, else 0;
//! - receive of `(lm, cm)`: `l' = max(l, lm, pt)`; `c'` is `max(c, cm) + 1`
//!   if `l' == l == lm`, `c + 1` if only `l' == l`, `cm + 1` if only
//!   `l' == lm`, else 0.
//!
//! So `(l, c)` rises strictly on every event, `a → b` implies
//! `(l, c)(a) < (l, c)(b)`, and `l` stays within the clocks' largest skew of
//! `pt`. The counter saturates instead of overflowing, so no peer's stamp
//! can make a machine panic.

use crate::clock::LogicalClock;

/// An HLC value, ordered by `l`, then `c`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HlcStamp {
    /// The logical part of physical time, in microseconds since the Unix epoch.
    pub l_us: i64,
    /// The counter.
    pub c: u64,
}

/// One machine's hybrid logical clock, `(0, 0)` at the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HybridClock {
    now: HlcStamp,
}

impl HybridClock {
    /// A clock whose current value is `now` (to replay the rules from a logged value).
    pub fn at(now: HlcStamp) -> HybridClock {
        HybridClock { now }
    }

    /// The current value.
    pub fn value(&self) -> HlcStamp {
        self.now
    }

    fn local(&mut self, pt: i64) {
        let l = self.now.l_us.max(pt);
        self.now.c = if l == self.now.l_us { self.now.c.saturating_add(1) } else { 0 };
        self.now.l_us = l;
    }
}

impl LogicalClock for HybridClock {
    type Stamp = HlcStamp;

    fn local_event(&mut self, physical_us: i64) {
        self.local(physical_us);
    }

    fn send_event(&mut self, physical_us: i64) -> HlcStamp {
        self.local(physical_us);
        self.now
    }

    fn receive_event(&mut self, stamp: &HlcStamp, physical_us: i64) {
        let HlcStamp { l_us: l, c } = self.now;
        let HlcStamp { l_us: lm, c: cm } = *stamp;
        let new_l = l.max(lm).max(physical_us);
        let new_c = match (new_l == l, new_l == lm) {
            (true, true) => c.max(cm).saturating_add(1),
            (true, false) => c.saturating_add(1),
            (false, true) => cm.saturating_add(1),
            (false, false) => 0,
        };
        self.now = HlcStamp { l_us: new_l, c: new_c };
    }

    fn scalar(&self) -> u64 {
        u64::try_from(self.now.l_us).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_paper_rules() {
        let mut clock = HybridClock::default();
        clock.local_event(100);
        assert_eq!(clock.value(), HlcStamp { l_us: 100, c: 0 });
        // The physical clock did not move (or went back): the counter does.
        clock.local_event(100);
        clock.local_event(90);
        assert_eq!(clock.value(), HlcStamp { l_us: 100, c: 2 });
        // A message from the future: take its l, its counter + 1.
        clock.receive_event(&HlcStamp { l_us: 500, c: 7 }, 120);
        assert_eq!(clock.value(), HlcStamp { l_us: 500, c: 8 });
        // Same l on both sides: the larger counter + 1.
        clock.receive_event(&HlcStamp { l_us: 500, c: 20 }, 130);
        assert_eq!(clock.value(), HlcStamp { l_us: 500, c: 21 });
        // Physical time overtakes everything: counter back to 0.
        clock.receive_event(&HlcStamp { l_us: 400, c: 3 }, 600);
        assert_eq!(clock.value(), HlcStamp { l_us: 600, c: 0 });
        // Only l' == l: c + 1.
        clock.receive_event(&HlcStamp { l_us: 100, c: 50 }, 550);
        assert_eq!(clock.value(), HlcStamp { l_us: 600, c: 1 });
    }

    proptest! {
        /// `(l, c)` rises strictly on every event, `l >= pt`, and a receive is
        /// later than the stamp it received.
        #[test]
        fn strictly_monotone_and_never_behind_physical_time(
            ops in proptest::collection::vec((0u8..3, 0i64..1_000, 0i64..1_000, 0u64..5), 1..300)
        ) {
            let mut clock = HybridClock::default();
            for (kind, pt, lm, cm) in ops {
                let before = clock.value();
                match kind {
                    0 => clock.local_event(pt),
                    1 => { clock.send_event(pt); }
                    _ => {
                        let stamp = HlcStamp { l_us: lm, c: cm };
                        clock.receive_event(&stamp, pt);
                        prop_assert!(clock.value() > stamp);
                    }
                }
                prop_assert!(clock.value() > before);
                prop_assert!(clock.value().l_us >= pt);
            }
        }
    }
}
