//! Happens-before from clocklab's logs.
//!
//! Start here: [`VectorReplay`] gives every event of a run the vector clock
//! that program order and the send/receive pairing imply, whether or not the
//! run kept vector clocks; [`Concurrency`] counts how many pairs of ticks are
//! concurrent and how many of those Lamport's clock orders anyway. Both take
//! the events of [`clocklab_log::RunEvents`] in its order.
//!
//! ```
//! use std::collections::BTreeMap;
//! use clocklab_causal::VectorReplay;
//! use clocklab_log::events::lines_of;
//! use clocklab_log::{Event, Record, RunEvents};
//!
//! let logs = BTreeMap::from([
//!     (1, vec![Record::new(1, Event::Sent { to: vec![2].into() }, 1, 0, 10)]),
//!     (2, vec![Record::new(2, Event::Processed { from: Some(1), clock: Some(1) }, 2, 1, 20)]),
//! ]);
//! let mut replay = VectorReplay::new([1, 2]);
//! let events = RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records))));
//! let vectors: Vec<Vec<u64>> = events.map(|event| replay.step(&event).to_vec()).collect();
//! assert_eq!(vectors, [vec![1, 0], vec![1, 1]]);
//! ```

pub mod check;
pub mod concurrency;
pub mod diagram;
pub mod export;
pub mod graph;
pub mod replay;
pub mod source;

pub use concurrency::{Concurrency, PairCounts};
pub use graph::{BuildOptions, Cone, EventRef, Kind, MessageStatus, RunGraph};
pub use replay::VectorReplay;
pub use source::{RunSource, SourceError};
