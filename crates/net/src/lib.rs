//! The real runtime: one machine of the model as a process, talking TCP, in
//! real time.
//!
//! The rules of the model live in `clocklab_model::Machine`, and the step
//! from a tick to its log line and frame in `clocklab_driver::Driver`; this
//! crate only drives it, in real time. Start here: [`bind`] a machine (its rate drawn, its log opened,
//! its port listening), [`Bound::connect`] it to its peers, then
//! [`Connected::run`] it from a start instant that every machine of the run
//! shares. The modules:
//!
//! - `link`: the hello on each connection, the acceptor and one reader thread
//!   per accepted connection, which push [`Inbound`] events into one bounded
//!   channel.
//! - `node`: the processing thread, the only owner of the `Machine` and the
//!   only writer of the log: the absolute tick schedule, and the end (stop
//!   sending, read every peer to the end of its stream, log what is left as
//!   `Unprocessed`, then `Stopped`).
//! - [`lateness`]: how late ticks ran, as percentiles.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use clocklab_driver::DriverParams;
//! use clocklab_log::LogFormat;
//! use clocklab_model::ClockKinds;
//! use clocklab_net::{NodeConfig, bind, never_stop, now_us};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let config = |id: u32| NodeConfig {
//!     // Two machines; max_event_num 3: every tick with an empty queue sends.
//!     machine: DriverParams { clocks: ClockKinds::ALL, ..DriverParams::new(id, 2, 6, 3, u64::from(id)) },
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     host: "127.0.0.1".into(),
//!     token: [9; 16],
//!     connect_timeout: Duration::from_secs(10),
//!     end_grace: Duration::ZERO,
//!     logs: vec![(LogFormat::Text, dir.path().join(format!("machine_{id}.log")))],
//! };
//! let (one, two) = (bind(config(1)).unwrap(), bind(config(2)).unwrap());
//! let addresses = [(1, one.address()), (2, two.address())];
//! let peers = |id: u32| addresses.iter().filter(|(peer, _)| *peer != id).copied().collect::<BTreeMap<_, _>>();
//! let start_us = now_us() + 50_000;
//! let threads = [(one, peers(1)), (two, peers(2))].map(|(bound, peers)| {
//!     std::thread::spawn(move || {
//!         let (_keep, stop) = never_stop();
//!         bound.connect(&peers, &stop).unwrap().run(start_us, 500_000, &stop).unwrap()
//!     })
//! });
//! let [a, b] = threads.map(|t| t.join().unwrap());
//! // Every message sent was received: processed by a tick or left in the queue.
//! assert_eq!(a.sent, b.processed + b.unprocessed);
//! assert_eq!(b.sent, a.processed + a.unprocessed);
//! ```

pub mod lateness;
mod link;
mod node;

use std::net::SocketAddr;
use std::path::PathBuf;

use clocklab_model::{MachineId, ParamsError};

pub use lateness::LatenessSummary;
pub use link::Inbound;
pub use node::{Bound, Connected, DEFAULT_QUEUE_CAP, NodeConfig, RunSummary, StopRequest, bind, never_stop, now_us};

/// Why a machine could not run.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The machine's parameters break the model's rules.
    #[error("bad machine parameters: {0}")]
    Params(ParamsError),
    /// The listening address cannot be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A log file cannot be created or written.
    #[error("cannot write the log {}", path.display())]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The peers given are not the run's other machines.
    #[error("peers {given:?} given, expected machines {expected:?}")]
    Peers {
        /// The machines expected.
        expected: Vec<MachineId>,
        /// The machines given.
        given: Vec<MachineId>,
    },
    /// A peer did not accept a connection in time.
    #[error(
        "machine {peer} at {address} did not answer within the connect timeout of {timeout_s} s (last error: {last_error})"
    )]
    ConnectTimeout {
        /// The peer.
        peer: MachineId,
        /// Its address.
        address: SocketAddr,
        /// The connect timeout, in seconds.
        timeout_s: f64,
        /// The last attempt's error.
        last_error: String,
    },
    /// A peer's hello exchange failed.
    #[error("machine {peer} at {address} refused the connection: {reason}")]
    HelloRefused {
        /// The peer.
        peer: MachineId,
        /// Its address.
        address: SocketAddr,
        /// Why.
        reason: String,
    },
    /// Some peers did not connect back in time.
    #[error("machines {missing:?} did not connect within {timeout_s} s")]
    PeersSilent {
        /// The peers that did not connect.
        missing: Vec<MachineId>,
        /// The connect timeout, in seconds.
        timeout_s: f64,
    },
    /// A stop request came before every peer was connected; the log ends
    /// with `Stopped`.
    #[error("stopped before every peer was connected")]
    Stopped,
}
