//! One virtual machine: a queue of arrived messages, a logical clock, a tick.

use std::collections::VecDeque;

use rand::{Rng, RngExt};

use crate::MachineId;
use crate::clock::LogicalClock;
use crate::clockset::ClockSet;
use crate::event::{EventChoice, PeerRing, RecipientIter, Recipients};
use crate::physical::PhysicalClock;

/// What defines one machine of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineParams {
    /// This machine's number, `1..=n_machines`.
    pub id: MachineId,
    /// How many machines the run has (at least 2).
    pub n_machines: u32,
    /// Ticks per second, drawn at start-up (at least 1).
    pub rate: u32,
    /// The upper end of the event draw (at least 3).
    pub max_event_num: u32,
}

/// Why [`MachineParams`] cannot make a machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    /// A run needs at least two machines to exchange messages.
    #[error("n_machines is {0}, but a run needs at least 2 machines")]
    TooFewMachines(u32),
    /// The id is not one of the run's machines.
    #[error("machine id {id} is outside 1..={n_machines}")]
    IdOutOfRange {
        /// The id asked for.
        id: MachineId,
        /// The run's number of machines.
        n_machines: u32,
    },
    /// A machine must tick at least once a second.
    #[error("clock rate is 0, but it must be at least 1 tick per second")]
    ZeroRate,
    /// The draw must be able to reach all three send events.
    #[error("max_event_num is {0}, but it must be at least 3")]
    MaxEventNumTooSmall(u32),
}

impl MachineParams {
    /// Checks the parameters against the model's rules.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.n_machines < 2 {
            return Err(ParamsError::TooFewMachines(self.n_machines));
        }
        if !(1..=self.n_machines).contains(&self.id) {
            return Err(ParamsError::IdOutOfRange { id: self.id, n_machines: self.n_machines });
        }
        if self.rate == 0 {
            return Err(ParamsError::ZeroRate);
        }
        if self.max_event_num < 3 {
            return Err(ParamsError::MaxEventNumTooSmall(self.max_event_num));
        }
        Ok(())
    }
}

/// A message waiting in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<S> {
    /// Who sent it.
    pub from: MachineId,
    /// The sender's clocks at the send.
    pub stamp: S,
    /// When it arrived, in true time (microseconds since the Unix epoch).
    pub arrived_us: i64,
}

/// What [`Machine::deliver`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// It is in the queue.
    Queued,
    /// The queue was at its cap; the message was counted and dropped.
    Refused,
}

/// What one tick did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TickEvent<S> {
    /// A message was taken off the queue.
    Processed {
        /// Its sender.
        from: MachineId,
        /// The clock it carried.
        stamp: S,
    },
    /// The clock was sent; resolve the recipients with [`Machine::recipients`].
    Sent {
        /// Who gets it.
        recipients: Recipients,
        /// What every recipient gets.
        stamp: S,
    },
    /// Only the clock moved.
    Internal,
}

/// One tick's outcome: the event and the values its log line carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick<S> {
    /// What happened.
    pub event: TickEvent<S>,
    /// The logical clock after the event's update.
    pub clock: u64,
    /// The queue length: for a processed message, the length before it was
    /// taken off; otherwise the length at the tick (zero).
    pub queue_len: u64,
    /// The machine's physical clock at the tick: the reading its clocks used.
    pub physical_us: i64,
}

/// One virtual machine of the model, free of I/O.
///
/// Messages arrive through [`Machine::deliver`] at any time; each call to
/// [`Machine::tick`] is one instruction of the model. The caller decides when
/// ticks happen, says what time it is (true time, microseconds since the Unix
/// epoch: virtual in the simulator, the system clock in the real runtime), and
/// supplies the random number generator. The machine reads its own
/// [`PhysicalClock`] from that time; the clocks that need physical time (HLC)
/// use the reading.
#[derive(Clone, Debug)]
pub struct Machine<C: LogicalClock = ClockSet> {
    params: MachineParams,
    ring: PeerRing,
    clock: C,
    physical: PhysicalClock,
    queue: VecDeque<Message<C::Stamp>>,
    queue_cap: usize,
    refused: u64,
    n_ticks: u64,
}

impl<C: LogicalClock> Machine<C> {
    /// A machine with `clock` (fresh), a perfect physical clock and an empty
    /// queue of unlimited length.
    pub fn new(params: MachineParams, clock: C) -> Result<Machine<C>, ParamsError> {
        params.validate()?;
        Ok(Machine {
            params,
            ring: PeerRing::new(params.id, params.n_machines),
            clock,
            physical: PhysicalClock::perfect(),
            queue: VecDeque::new(),
            queue_cap: usize::MAX,
            refused: 0,
            n_ticks: 0,
        })
    }

    /// Caps the queue at `cap` messages; further deliveries are refused and counted.
    pub fn with_queue_cap(mut self, cap: usize) -> Machine<C> {
        self.queue_cap = cap;
        self
    }

    /// Gives the machine this physical clock.
    pub fn with_physical_clock(mut self, physical: PhysicalClock) -> Machine<C> {
        self.physical = physical;
        self
    }

    /// The machine's physical clock.
    pub fn physical_clock(&self) -> &PhysicalClock {
        &self.physical
    }

    /// The machine's physical clock, to step it or change its drift.
    pub fn physical_clock_mut(&mut self) -> &mut PhysicalClock {
        &mut self.physical
    }

    /// The parameters the machine was built with.
    pub fn params(&self) -> &MachineParams {
        &self.params
    }

    /// The ring that names this machine's peers.
    pub fn ring(&self) -> PeerRing {
        self.ring
    }

    /// The machines a send to `recipients` reaches, in increasing id order.
    pub fn recipients(&self, recipients: Recipients) -> RecipientIter {
        self.ring.resolve(recipients)
    }

    /// The logical clock's current value.
    pub fn clock(&self) -> u64 {
        self.clock.scalar()
    }

    /// The logical clock itself.
    pub fn logical_clock(&self) -> &C {
        &self.clock
    }

    /// How many messages wait in the queue.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// How many deliveries the queue cap refused.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// How many ticks have run.
    pub fn n_ticks(&self) -> u64 {
        self.n_ticks
    }

    /// A message from `from` carrying `stamp` has arrived at true time `now_us`.
    pub fn deliver(&mut self, now_us: i64, from: MachineId, stamp: C::Stamp) -> Delivery {
        if self.queue.len() >= self.queue_cap {
            self.refused += 1;
            return Delivery::Refused;
        }
        self.queue.push_back(Message { from, stamp, arrived_us: now_us });
        Delivery::Queued
    }

    /// Runs one tick at true time `now_us`: takes a message off the queue if
    /// there is one, otherwise draws the event from `rng`.
    pub fn tick<R: Rng + ?Sized>(&mut self, now_us: i64, rng: &mut R) -> Tick<C::Stamp> {
        self.n_ticks += 1;
        let physical_us = self.physical.read(now_us);
        if let Some(message) = self.queue.pop_front() {
            let queue_len = self.queue.len() as u64 + 1;
            self.clock.receive_event(&message.stamp, physical_us);
            return Tick {
                event: TickEvent::Processed { from: message.from, stamp: message.stamp },
                clock: self.clock.scalar(),
                queue_len,
                physical_us,
            };
        }
        let n = rng.random_range(1..=self.params.max_event_num);
        let event = match EventChoice::from_draw(n) {
            EventChoice::Send(recipients) => {
                let stamp = self.clock.send_event(physical_us);
                TickEvent::Sent { recipients, stamp }
            }
            EventChoice::Internal => {
                self.clock.local_event(physical_us);
                TickEvent::Internal
            }
        };
        Tick { event, clock: self.clock.scalar(), queue_len: 0, physical_us }
    }

    /// Takes every message still queued, oldest first: at the end of a run
    /// each is logged as unprocessed.
    pub fn drain_unprocessed(&mut self) -> impl Iterator<Item = Message<C::Stamp>> + '_ {
        self.queue.drain(..)
    }
}

/// Draws a clock rate uniformly from `1..=max_clock_rate`.
///
/// # Panics
///
/// If `max_clock_rate` is 0; the configuration rejects that first.
pub fn draw_rate<R: Rng + ?Sized>(rng: &mut R, max_clock_rate: u32) -> u32 {
    assert!(max_clock_rate >= 1, "max_clock_rate must be at least 1");
    rng.random_range(1..=max_clock_rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::LamportClock;
    use crate::seed::rng_from_seed;

    fn machine(id: MachineId, max_event_num: u32) -> Machine<LamportClock> {
        Machine::new(MachineParams { id, n_machines: 3, rate: 1, max_event_num }, LamportClock::default()).unwrap()
    }

    #[test]
    fn rejects_bad_params() {
        let ok = MachineParams { id: 1, n_machines: 3, rate: 1, max_event_num: 10 };
        assert_eq!(
            Machine::new(MachineParams { n_machines: 1, ..ok }, LamportClock::default()).unwrap_err(),
            ParamsError::TooFewMachines(1)
        );
        assert!(matches!(
            Machine::new(MachineParams { id: 4, ..ok }, LamportClock::default()),
            Err(ParamsError::IdOutOfRange { .. })
        ));
        assert!(matches!(
            Machine::new(MachineParams { id: 0, ..ok }, LamportClock::default()),
            Err(ParamsError::IdOutOfRange { .. })
        ));
        assert_eq!(
            Machine::new(MachineParams { rate: 0, ..ok }, LamportClock::default()).unwrap_err(),
            ParamsError::ZeroRate
        );
        assert_eq!(
            Machine::new(MachineParams { max_event_num: 2, ..ok }, LamportClock::default()).unwrap_err(),
            ParamsError::MaxEventNumTooSmall(2)
        );
    }

    #[test]
    fn queued_messages_come_first_in_order() {
        let mut m = machine(1, 10);
        let mut rng = rng_from_seed(1);
        m.deliver(0, 2, 10);
        m.deliver(0, 3, 4);
        let first = m.tick(0, &mut rng);
        assert_eq!(first.event, TickEvent::Processed { from: 2, stamp: 10 });
        assert_eq!((first.clock, first.queue_len), (11, 2));
        let second = m.tick(0, &mut rng);
        assert_eq!(second.event, TickEvent::Processed { from: 3, stamp: 4 });
        assert_eq!((second.clock, second.queue_len), (12, 1));
    }

    #[test]
    fn empty_queue_draws_sends_and_internal_events() {
        // With max_event_num = 3 every tick sends; with a large one most are internal.
        let mut m = machine(2, 3);
        let mut rng = rng_from_seed(7);
        for k in 1..=50 {
            let tick = m.tick(0, &mut rng);
            assert!(matches!(tick.event, TickEvent::Sent { stamp, .. } if stamp == k));
            assert_eq!(tick.clock, k);
            assert_eq!(tick.queue_len, 0);
        }
        let mut m = machine(2, 1000);
        let internal = (0..1000).filter(|_| m.tick(0, &mut rng).event == TickEvent::Internal).count();
        assert!(internal > 980, "{internal}");
    }

    #[test]
    fn every_draw_is_reached_with_default_odds() {
        let mut m = machine(1, 10);
        let mut rng = rng_from_seed(3);
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            let idx = match m.tick(0, &mut rng).event {
                TickEvent::Sent { recipients: Recipients::FirstPeer, .. } => 0,
                TickEvent::Sent { recipients: Recipients::SecondPeer, .. } => 1,
                TickEvent::Sent { recipients: Recipients::AllPeers, .. } => 2,
                TickEvent::Internal => 3,
                TickEvent::Processed { .. } => unreachable!("nothing was delivered"),
            };
            counts[idx] += 1;
        }
        // Expected 1000, 1000, 1000, 7000; allow generous sampling noise.
        for &count in &counts[..3] {
            assert!((850..1150).contains(&count), "{counts:?}");
        }
        assert!((6700..7300).contains(&counts[3]), "{counts:?}");
    }

    #[test]
    fn queue_cap_refuses_and_counts() {
        let mut m = machine(1, 10).with_queue_cap(2);
        assert_eq!(m.deliver(5, 2, 1), Delivery::Queued);
        assert_eq!(m.deliver(6, 2, 2), Delivery::Queued);
        assert_eq!(m.deliver(7, 3, 3), Delivery::Refused);
        assert_eq!((m.queue_len(), m.refused()), (2, 1));
        let left: Vec<_> = m.drain_unprocessed().collect();
        assert_eq!(left, [Message { from: 2, stamp: 1, arrived_us: 5 }, Message { from: 2, stamp: 2, arrived_us: 6 }]);
        assert_eq!(m.queue_len(), 0);
    }

    #[test]
    fn the_clocks_read_the_machine_s_own_physical_clock() {
        use crate::clockset::{ClockKinds, ClockSet};
        let params = MachineParams { id: 2, n_machines: 3, rate: 1, max_event_num: 1_000_000 };
        let physical = PhysicalClock::new(1_000_000, 500, 0.0);
        let mut m = Machine::new(params, ClockSet::new(ClockKinds::ALL, 1, 3)).unwrap().with_physical_clock(physical);
        let mut rng = rng_from_seed(4);
        let tick = m.tick(2_000_000, &mut rng);
        assert_eq!(tick.physical_us, 2_000_500);
        assert_eq!(m.logical_clock().hlc().map(|h| h.l_us), Some(2_000_500));
        assert_eq!(m.logical_clock().vector(), Some(&[0, 1, 0][..]));
        assert_eq!(tick.clock, 1);
    }

    #[test]
    fn rate_draw_covers_the_range() {
        let mut rng = rng_from_seed(11);
        let mut seen = [false; 6];
        for _ in 0..1000 {
            let rate = draw_rate(&mut rng, 6);
            seen[rate as usize - 1] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
