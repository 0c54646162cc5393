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
//! - [`clock`]: the [`LogicalClock`] trait and its Lamport implementation.
//! - [`event`]: the event choice (`n` drawn from `1..=max_event_num`) and the
//!   ring rule that names the recipients.
//! - [`machine`]: the machine itself: queue, clock, tick.
//! - [`wire`]: the 4-byte big-endian clock frame and the connection hello.
//! - [`schedule`]: the absolute tick schedule both runtimes keep.
//! - [`seed`]: how every random draw derives from one seed.
//!
//! ```
//! use clocklab_model::{Machine, MachineParams, TickEvent, seed};
//!
//! let params = MachineParams { id: 1, n_machines: 3, rate: 4, max_event_num: 10 };
//! let mut machine: Machine = Machine::new(params).unwrap();
//! let mut rng = seed::rng_from_seed(42);
//!
//! // A message from machine 2 with clock 17 is waiting: the next tick takes it.
//! machine.deliver(2, 17);
//! let tick = machine.tick(&mut rng);
//! assert!(matches!(tick.event, TickEvent::Processed { from: 2, stamp: 17 }));
//! assert_eq!(tick.clock, 18);
//! assert_eq!(tick.queue_len, 1); // the length before the message was taken off
//! ```

pub mod clock;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod machine;
pub mod schedule;
pub mod seed;
pub mod wire;

pub use clock::{LamportClock, LogicalClock};
pub use event::{EventChoice, PeerRing, Recipients};
pub use machine::{Delivery, Machine, MachineParams, Message, ParamsError, Tick, TickEvent, draw_rate};

/// A machine's number: 1-based, as on the command line and in the logs.
pub type MachineId = u32;
