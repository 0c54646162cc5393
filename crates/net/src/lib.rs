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
//! - `accept`: the receiving side: the acceptor, one thread with one epoll
//!   set for the listening socket and every accepted connection, with hello
//!   slots shared fairly under a flood of connections; it checks each
//!   connection's hello, reads its ready message, and hands it to the
//!   processing thread, pushing [`Inbound`] events into one bounded channel.
//! - `receive`: the processing thread's own reads of its peers'
//!   connections, through one epoll set, when it wakes to tick (and when
//!   bytes arrive, at most every `ABSORB_INTERVAL`): no other thread wakes
//!   for a message.
//! - `link`: one short-lived thread that connects to every peer at once
//!   (non-blocking connects and hellos, one `poll`, each peer retried
//!   until the connect timeout) and hands each connection over.
//! - `send`: the outbox: a frame due now to a peer with nothing queued is
//!   written by the processing thread at once (one non-blocking write);
//!   everything else (frames a fault delays, a full socket) goes to one
//!   thread that writes the queues, each frame at its due instant; a peer
//!   that stops reading is declared gone and what it did not get is counted.
//! - `logs`: the log files, written a whole line at a time.
//! - `node`: the processing thread, the only owner of the `Machine` and the
//!   only writer of the log: binding, connecting, and the start agreed with
//!   the peers.
//! - `ticking`: the same thread's run: its `clocklab_driver::Timeline` says
//!   when to tick and what the fault plan does to the machine; the thread
//!   waits, moves what arrived into the queue, and hands frames to the
//!   outbox; then the end (stop sending, read every peer to the end of its
//!   stream within the drain, log what is left as `Held` and `Unprocessed`,
//!   then `Stopped`).
//! - `peers`: peers that restart and go down under the fault plan, as the
//!   orchestrator tells of them: reconnections to restarted peers.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use clocklab_driver::DriverParams;
//! use clocklab_log::LogFormat;
//! use clocklab_model::ClockKinds;
//! use clocklab_net::{NodeConfig, bind, never_stop, no_news, now_us};
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
//!     duration_us: 500_000,
//!     faults: Vec::new(),
//!     run_seed: 0,
//! };
//! let (one, two) = (bind(config(1)).unwrap(), bind(config(2)).unwrap());
//! let addresses = [(1, one.address()), (2, two.address())];
//! let peers = |id: u32| addresses.iter().filter(|(peer, _)| *peer != id).copied().collect::<BTreeMap<_, _>>();
//! let start_us = now_us() + 50_000;
//! let threads = [(one, peers(1)), (two, peers(2))].map(|(bound, peers)| {
//!     std::thread::spawn(move || {
//!         let (_keep, stop) = never_stop();
//!         let (_keep_news, news) = no_news();
//!         bound.connect(&peers, &stop).unwrap().run(start_us, &stop, news).unwrap()
//!     })
//! });
//! let [a, b] = threads.map(|t| t.join().unwrap());
//! // Every message sent was received: processed by a tick or left in the queue.
//! assert_eq!(a.sent, b.processed + b.unprocessed);
//! assert_eq!(b.sent, a.processed + a.unprocessed);
//! ```

/// Writes one line on stderr, like `eprintln!`, except that a closed or full
/// stderr is not a panic: a machine's stderr is for a person (or the
/// orchestrator, which may have died), and its log matters more. The line is
/// formatted whole and written with one `write`, so lines of several threads
/// never interleave.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

mod accept;
mod link;
mod logs;
mod node;
mod peers;
mod receive;
mod send;
mod stop;
mod tests;
mod ticking;

use std::net::SocketAddr;
use std::path::PathBuf;

use clocklab_model::{MachineId, ParamsError};

pub use accept::Inbound;
pub use clocklab_driver::LatenessSummary;
pub use node::{
    Bound, Connected, DEFAULT_QUEUE_CAP, NodeConfig, RunSummary, START_LEAD_US, StopRequest, bind, bind_restarted,
    longest_end, never_stop, now_us,
};
pub use peers::{NewsSender, PeerNews, RestartSpec, news_channel, no_news};
pub use stop::{StopReceiver, StopSender, stop_channel};

/// What one machine process uses at most, in a run of `n_machines`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// Threads (the system counts each as a task, against `pid_max`,
    /// `threads-max` and `ulimit -u`): the processing thread, its control
    /// and signal threads, the acceptor, the outbox and, while it connects,
    /// a connector per peer.
    pub threads: u64,
    /// File descriptors (`ulimit -n`): a connection each way per peer (and,
    /// while the outbox waits for full sockets, a second handle on each), the
    /// listener, the outbox's wake-up pair, the epoll sets, the stop bell, its
    /// timer and the doorbell, the log files and the standard streams, with
    /// room to spare.
    pub files: u64,
}

/// What one machine process of a run of `n_machines` uses at most.
pub fn machine_resources(n_machines: u32) -> Resources {
    let peers = u64::from(n_machines.saturating_sub(1));
    Resources { threads: peers + 6, files: 3 * peers + 24 }
}

/// A peer that was not connected by the connect deadline, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPeer {
    /// The peer.
    pub peer: MachineId,
    /// Its address.
    pub address: SocketAddr,
    /// What was missing, for a person.
    pub reason: String,
}

/// "machines 2 and 3" (or "machine 2").
fn machine_list(ids: &[MachineId]) -> String {
    let names: Vec<String> = ids.iter().map(u32::to_string).collect();
    match names.as_slice() {
        [] => "no machine".into(),
        [one] => format!("machine {one}"),
        [rest @ .., last] => format!("machines {} and {last}", rest.join(", ")),
    }
}

/// The message of [`NetError::NotConnected`].
fn describe_missing(missing: &[MissingPeer], timeout_s: f64) -> String {
    let ids: Vec<MachineId> = missing.iter().map(|m| m.peer).collect();
    let details: Vec<String> =
        missing.iter().map(|m| format!("machine {} at {}: {}", m.peer, m.address, m.reason)).collect();
    format!(
        "{} did not connect within the connect timeout of {timeout_s} s (`connect_timeout`, or --connect-timeout): {}",
        machine_list(&ids),
        details.join("; ")
    )
}

impl NetError {
    /// The peer whose going or silence this error is, if it is one's: a
    /// machine failing of it is seldom the first to fail.
    pub fn blames(&self) -> Option<MachineId> {
        match self {
            NetError::ConnectTimeout { peer, .. } => Some(*peer),
            NetError::NotConnected { missing, .. } => missing.first().map(|missing| missing.peer),
            _ => None,
        }
    }
}

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
    /// A thread could not be started: the system's limit on threads (or on
    /// processes, or memory) is reached.
    #[error(
        "cannot start a thread for {what}; the system's limit on threads, processes or memory is reached (ulimit -u, ulimit -v, /proc/sys/kernel/threads-max): run fewer machines at once"
    )]
    Thread {
        /// What the thread was for.
        what: String,
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
    /// A peer did not accept a connection in time (one link's error).
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
    /// A peer answered with a hello that is not its run's.
    #[error("machine {peer} at {address} refused the connection: {reason}")]
    HelloRefused {
        /// The peer.
        peer: MachineId,
        /// Its address.
        address: SocketAddr,
        /// Why.
        reason: String,
    },
    /// Some peers were not connected both ways, or not ready, by the connect
    /// deadline: every one is named, with what was missing.
    #[error("{}", describe_missing(missing, *timeout_s))]
    NotConnected {
        /// The peers, in order.
        missing: Vec<MissingPeer>,
        /// The connect timeout, in seconds.
        timeout_s: f64,
    },
    /// A stop request came before every peer was connected; the log ends
    /// with `Stopped`.
    #[error("stopped before every peer was connected")]
    Stopped,
    /// A restarted machine was told of a restart that its run's fault plan
    /// does not have.
    #[error("the fault plan has no restart of this machine {at_us} us after the start")]
    NoRestart {
        /// The restart it was told of, microseconds after the start.
        at_us: u64,
    },
}
