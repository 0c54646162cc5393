//! The I/O-free core of clocklab: one virtual machine of the scale model as a
//! state machine.
//!
//! Nothing here reads the system clock, opens a socket or a file, or touches a
//! global random number generator. The caller owns time and randomness and
//! passes them in; the real runtime (`clocklab-net`) and the simulator
//! (`clocklab-sim`) are two drivers of the same [`Machine`], so a rule of the
//! model lives in exactly one place.
//!
//! Start here: [`Machine::tick`] is one tick of the model. The modules:
//!
//! - [`clock`]: the [`LogicalClock`] trait and Lamport's clock; [`vector`]
//!   and [`hlc`] are the vector clock and the hybrid logical clock;
//!   [`clockset`] keeps the clocks a run chose side by side.
//! - [`physical`]: a machine's own physical clock (offset, drift, steps).
//! - [`event`]: the event choice (`n` drawn from `1..=max_event_num`) and the
//!   ring rule that names the recipients.
//! - [`machine`]: the machine itself: queue, clocks, tick.
//! - [`wire`]: the frames and the connection hello.
//! - [`schedule`]: the absolute tick schedule both runtimes keep.
//! - [`seed`]: how every random draw derives from one seed.
//!
//! ```
//! use clocklab_model::{ClockKinds, ClockSet, Machine, MachineParams, Stamp, TickEvent, seed};
//!
//! let params = MachineParams { id: 1, n_machines: 3, rate: 4, max_event_num: 10 };
//! let clocks = ClockSet::new(ClockKinds::LAMPORT, 0, 3);
//! let mut machine = Machine::new(params, clocks).unwrap();
//! let mut rng = seed::rng_from_seed(42);
//! let now_us = 1_767_225_600_000_000; // true time, passed in
//!
//! // A message from machine 2 with clock 17 is waiting: the next tick takes it.
//! machine.deliver(now_us, 2, Stamp::lamport(17));
//! let tick = machine.tick(now_us + 250_000, &mut rng);
//! assert!(matches!(tick.event, TickEvent::Processed { from: 2, ref stamp } if stamp.lamport == 17));
//! assert_eq!(tick.clock, 18);
//! assert_eq!(tick.queue_len, 1); // the length before the message was taken off
//! ```

pub mod clock;
pub mod clockset;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod hlc;
pub mod machine;
pub mod physical;
pub mod schedule;
pub mod seed;
pub mod vector;
pub mod wire;

pub use clock::{LamportClock, LogicalClock};
pub use clockset::{ClockKinds, ClockSet, Stamp, UnknownClock};
pub use event::{EventChoice, PeerRing, Recipients};
pub use hlc::{HlcStamp, HybridClock};
pub use machine::{Delivery, Machine, MachineParams, Message, ParamsError, Tick, TickEvent, draw_rate};
pub use physical::PhysicalClock;
pub use vector::{VectorClock, VectorStamp};

/// A machine's number: 1-based, as on the command line and in the logs.
pub type MachineId = u32;
