//! The clocks a run keeps, side by side on the same events: Lamport's
//! always (it is the log's `Logical Clock` field), a vector clock and a
//! hybrid logical clock when chosen.

use std::fmt;

use crate::clock::{LamportClock, LogicalClock};
use crate::hlc::{HlcStamp, HybridClock};
use crate::vector::{VectorClock, VectorStamp};

/// Which clocks a run keeps besides Lamport's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClockKinds {
    /// A vector clock.
    pub vector: bool,
    /// A hybrid logical clock.
    pub hlc: bool,
}

/// A clock name that [`ClockKinds::parse`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown clock `{0}` (the clocks are lamport, vector and hlc)")]
pub struct UnknownClock(pub String);

impl ClockKinds {
    /// Lamport's clock alone: the classic exercise.
    pub const LAMPORT: ClockKinds = ClockKinds { vector: false, hlc: false };

    /// Every clock.
    pub const ALL: ClockKinds = ClockKinds { vector: true, hlc: true };

    /// The names of the clocks kept, Lamport first: `lamport`, `vector`, `hlc`.
    pub fn names(self) -> Vec<&'static str> {
        let mut names = vec!["lamport"];
        if self.vector {
            names.push("vector");
        }
        if self.hlc {
            names.push("hlc");
        }
        names
    }

    /// The set named by `names` (`lamport` may be left out: it is always kept).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ClockKinds, UnknownClock> {
        let mut kinds = ClockKinds::LAMPORT;
        for name in names {
            match name.trim() {
                "lamport" => {}
                "vector" => kinds.vector = true,
                "hlc" => kinds.hlc = true,
                other => return Err(UnknownClock(other.to_string())),
            }
        }
        Ok(kinds)
    }

    /// The set as one byte on the wire: bit 0 vector, bit 1 HLC.
    pub fn to_bits(self) -> u8 {
        u8::from(self.vector) | u8::from(self.hlc) << 1
    }

    /// The set from its byte, if no unknown bit is set.
    pub fn from_bits(bits: u8) -> Option<ClockKinds> {
        (bits & !0b11 == 0).then_some(ClockKinds { vector: bits & 1 != 0, hlc: bits & 2 != 0 })
    }
}

impl fmt::Display for ClockKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// What a message carries: every stamp of the clocks the run keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's Lamport clock.
    pub lamport: u64,
    /// The sender's vector clock, if the run keeps one.
    pub vector: Option<VectorStamp>,
    /// The sender's HLC, if the run keeps one.
    pub hlc: Option<HlcStamp>,
}

impl Stamp {
    /// A stamp with a Lamport clock only.
    pub fn lamport(lamport: u64) -> Stamp {
        Stamp { lamport, vector: None, hlc: None }
    }
}

impl From<u64> for Stamp {
    fn from(lamport: u64) -> Stamp {
        Stamp::lamport(lamport)
    }
}

/// The clocks of one machine, advanced together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockSet {
    lamport: LamportClock,
    vector: Option<VectorClock>,
    hlc: Option<HybridClock>,
}

impl ClockSet {
    /// Fresh clocks of `kinds` for machine `machine_idx` (0-based) of `n_machines`.
    pub fn new(kinds: ClockKinds, machine_idx: usize, n_machines: usize) -> ClockSet {
        ClockSet {
            lamport: LamportClock::default(),
            vector: kinds.vector.then(|| VectorClock::new(machine_idx, n_machines)),
            hlc: kinds.hlc.then(HybridClock::default),
        }
    }

    /// Clocks of `kinds` for machine `machine_idx` of `n_machines` holding
    /// these values (a machine that recovered its clocks after a crash); a
    /// kept clock without a value starts fresh.
    pub fn restored(
        kinds: ClockKinds,
        machine_idx: usize,
        n_machines: usize,
        lamport: u64,
        vector: Option<&[u64]>,
        hlc: Option<HlcStamp>,
    ) -> ClockSet {
        let mut clocks = ClockSet::new(kinds, machine_idx, n_machines);
        clocks.lamport = LamportClock::starting_at(lamport);
        if let (Some(clock), Some(values)) = (&mut clocks.vector, vector) {
            *clock = VectorClock::from_values(machine_idx, values);
        }
        if let (Some(clock), Some(value)) = (&mut clocks.hlc, hlc) {
            *clock = HybridClock::at(value);
        }
        clocks
    }

    /// Lamport's clock alone.
    pub fn lamport_only() -> ClockSet {
        ClockSet { lamport: LamportClock::default(), vector: None, hlc: None }
    }

    /// Which clocks are kept.
    pub fn kinds(&self) -> ClockKinds {
        ClockKinds { vector: self.vector.is_some(), hlc: self.hlc.is_some() }
    }

    /// The Lamport clock's value.
    pub fn lamport(&self) -> u64 {
        self.lamport.value()
    }

    /// The vector clock's components, if kept.
    pub fn vector(&self) -> Option<&[u64]> {
        self.vector.as_ref().map(VectorClock::values)
    }

    /// The HLC's value, if kept.
    pub fn hlc(&self) -> Option<HlcStamp> {
        self.hlc.map(|hlc| hlc.value())
    }
}

impl LogicalClock for ClockSet {
    type Stamp = Stamp;

    fn local_event(&mut self, physical_us: i64) {
        self.lamport.local_event(physical_us);
        if let Some(vector) = &mut self.vector {
            vector.local_event(physical_us);
        }
        if let Some(hlc) = &mut self.hlc {
            hlc.local_event(physical_us);
        }
    }

    fn send_event(&mut self, physical_us: i64) -> Stamp {
        Stamp {
            lamport: self.lamport.send_event(physical_us),
            vector: self.vector.as_mut().map(|vector| vector.send_event(physical_us)),
            hlc: self.hlc.as_mut().map(|hlc| hlc.send_event(physical_us)),
        }
    }

    /// Each clock takes its own part of the stamp; a clock whose part is
    /// missing (a peer that keeps fewer clocks, which the hello refuses)
    /// counts the receive as a local event.
    fn receive_event(&mut self, stamp: &Stamp, physical_us: i64) {
        self.lamport.receive_event(&stamp.lamport, physical_us);
        if let Some(vector) = &mut self.vector {
            match &stamp.vector {
                Some(theirs) => vector.receive_event(theirs, physical_us),
                None => vector.local_event(physical_us),
            }
        }
        if let Some(hlc) = &mut self.hlc {
            match &stamp.hlc {
                Some(theirs) => hlc.receive_event(theirs, physical_us),
                None => hlc.local_event(physical_us),
            }
        }
    }

    fn scalar(&self) -> u64 {
        self.lamport.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        assert_eq!(ClockKinds::parse(["lamport", "vector", "hlc"]), Ok(ClockKinds::ALL));
        assert_eq!(ClockKinds::parse(["hlc"]).unwrap().to_string(), "lamport,hlc");
        assert_eq!(ClockKinds::LAMPORT.to_string(), "lamport");
        assert_eq!(ClockKinds::parse(["vectr"]), Err(UnknownClock("vectr".into())));
        for bits in 0..4 {
            assert_eq!(ClockKinds::from_bits(bits).unwrap().to_bits(), bits);
        }
        assert_eq!(ClockKinds::from_bits(4), None);
    }

    #[test]
    fn every_clock_advances_on_the_same_events() {
        let mut one = ClockSet::new(ClockKinds::ALL, 0, 2);
        let mut two = ClockSet::new(ClockKinds::ALL, 1, 2);
        one.local_event(1_000);
        let stamp = one.send_event(1_000);
        assert_eq!(stamp.lamport, 2);
        assert_eq!(stamp.vector.as_deref(), Some(&[2, 0][..]));
        assert_eq!(stamp.hlc, Some(HlcStamp { l_us: 1_000, c: 1 }));
        two.receive_event(&stamp, 900);
        assert_eq!(
            (two.lamport(), two.vector(), two.hlc()),
            (3, Some(&[2, 1][..]), Some(HlcStamp { l_us: 1_000, c: 2 }))
        );
    }
}
