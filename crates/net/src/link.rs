//! Connecting to a peer: one short-lived thread per peer that connects
//! (retrying until the connect deadline, also when the peer closes or resets
//! the connection during the hello), exchanges hellos, and hands the stream
//! over for sending (see `send`). Peers are connected to at once, so a
//! timeout can name every peer that is missing.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clocklab_model::MachineId;
use clocklab_model::wire::{Hello, HelloError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::NetError;
use crate::accept::THREAD_STACK_BYTES;
use crate::hello::read_hello;

/// The first wait between two connection attempts while a peer is not up yet;
/// each failed attempt doubles it, up to [`CONNECT_RETRY_MAX`].
const CONNECT_RETRY: Duration = Duration::from_millis(20);

/// The longest wait between two connection attempts. Machines started by
/// hand no longer depend on it to start together (they agree on a start
/// instant), so it only bounds how soon a late peer is found.
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(250);

/// The longest a single connection attempt may block, so that a stop request
/// is noticed even when the peer's address swallows packets.
const CONNECT_ATTEMPT_MAX: Duration = Duration::from_secs(1);

/// The kernel's send buffer of a connection to a peer (Linux doubles it for
/// its bookkeeping). Without a limit it grows to megabytes, where frames sit
/// that a peer that stops reading would never get and that no count could
/// name; with it, what a peer has not taken waits in the sender's queue,
/// where it is counted. On loopback 64 KiB carries millions of frames a second.
const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Everything a connector needs.
#[derive(Clone, Debug)]
pub(crate) struct LinkConfig {
    /// This machine's hello.
    pub(crate) ours: Hello,
    /// The peer.
    pub(crate) peer: MachineId,
    /// Its address.
    pub(crate) address: SocketAddr,
    /// When connecting gives up.
    pub(crate) deadline: Instant,
    /// The connect timeout in seconds, for messages.
    pub(crate) timeout_s: f64,
    /// Which attempt to reach the peer this is (a restarted peer is reached
    /// again): its events say so, so that a late one of an attempt given
    /// up is told apart.
    pub(crate) attempt: u64,
}

/// What a connector tells the processing thread.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The connection is up, hellos exchanged: the stream to send on.
    Up {
        /// The peer.
        peer: MachineId,
        /// The connection.
        stream: TcpStream,
        /// The attempt's number (see [`LinkConfig::attempt`]).
        attempt: u64,
    },
    /// The connector gave up (its deadline passed, or the peer is not of the run).
    Failed {
        /// The peer.
        peer: MachineId,
        /// Why.
        error: NetError,
        /// The attempt's number.
        attempt: u64,
    },
}

/// The processing thread's handle on one peer's connector.
#[derive(Debug)]
pub(crate) struct Connector {
    thread: Option<JoinHandle<()>>,
    /// Why the last attempt failed, while the connector tries.
    last_error: Arc<Mutex<String>>,
}

impl Connector {
    /// Starts connecting to the peer of `config` on a thread of its own; it
    /// reports on `events`. A message on `cancel`, or its senders gone, stops it.
    pub(crate) fn spawn(
        config: LinkConfig,
        events: Sender<LinkEvent>,
        cancel: Receiver<()>,
    ) -> Result<Connector, NetError> {
        let (peer, attempt) = (config.peer, config.attempt);
        let last_error = Arc::new(Mutex::new(String::new()));
        let shared = Arc::clone(&last_error);
        let thread = std::thread::Builder::new()
            .name(format!("machine-{}-connect-{peer}", config.ours.machine))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let event = match connect_peer(&config, &shared, &cancel) {
                    Ok(stream) => LinkEvent::Up { peer, stream, attempt },
                    Err(error) => LinkEvent::Failed { peer, error, attempt },
                };
                let _ = events.send(event);
            })
            .map_err(|source| NetError::Thread { what: format!("the connection to machine {peer}"), source })?;
        Ok(Connector { thread: Some(thread), last_error })
    }

    /// Why the last attempt to connect failed.
    pub(crate) fn last_error(&self) -> String {
        let error = self.last_error.lock().expect("the connector's last error is never poisoned").clone();
        if error.is_empty() { "it did not answer in time".into() } else { format!("it did not answer ({error})") }
    }

    /// Waits for the thread to end (after its report, or a cancel).
    pub(crate) fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a hello exchange that failed is worth trying again: a connection
/// that closed, reset or went quiet during the hello (a busy machine closes
/// connections it has no slot for; a machine still starting may not answer
/// at once). An answer that is not the peer's hello is final.
fn worth_retrying(error: &io::Error) -> bool {
    !matches!(error.kind(), io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput)
}

/// Connects to the peer, retrying with a growing pause while it is not up
/// or closes the connection during the hello, until the deadline or
/// `cancel`; exchanges hellos and returns the stream for sending.
fn connect_peer(config: &LinkConfig, last: &Mutex<String>, cancel: &Receiver<()>) -> Result<TcpStream, NetError> {
    let LinkConfig { ours, peer, address, deadline, timeout_s, .. } = *config;
    let mut pause = CONNECT_RETRY;
    let mut last_error = String::from("no attempt finished in time");
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(NetError::ConnectTimeout { peer, address, timeout_s, last_error });
        }
        match attempt(&ours, peer, address, deadline, remaining.min(CONNECT_ATTEMPT_MAX)) {
            Ok(stream) => return Ok(stream),
            Err(Attempt::Final(reason)) => return Err(NetError::HelloRefused { peer, address, reason }),
            Err(Attempt::Again(error)) => {
                last.lock().expect("the connector's last error is never poisoned").clone_from(&error);
                last_error = error;
            }
        }
        // Sleep, but never past the deadline: the last attempt is made at it.
        let remaining = deadline.saturating_duration_since(Instant::now());
        match cancel.recv_timeout(pause.min(remaining)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Err(NetError::Stopped),
        }
        pause = (pause * 2).min(CONNECT_RETRY_MAX);
    }
}

/// Why one connection attempt failed.
enum Attempt {
    /// Try again (the peer is not up, or closed the connection).
    Again(String),
    /// The peer answered with a hello that does not match: not a machine of
    /// this run.
    Final(String),
}

/// One connection attempt and hello exchange.
fn attempt(
    ours: &Hello,
    peer: MachineId,
    address: SocketAddr,
    deadline: Instant,
    connect_within: Duration,
) -> Result<TcpStream, Attempt> {
    let mut stream = TcpStream::connect_timeout(&address, connect_within).map_err(|e| Attempt::Again(e.to_string()))?;
    stream.set_nodelay(true).map_err(|e| Attempt::Again(e.to_string()))?;
    // Best effort: a system that refuses keeps its own size.
    let _ = nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER_BYTES);
    stream.write_all(&ours.encode()).map_err(|e| Attempt::Again(format!("cannot send the hello ({e})")))?;
    // An answer takes a moment even from a busy machine; waiting longer than
    // the hello timeout of the acceptor would only wait for a closed slot.
    let answer_by = deadline.min(Instant::now() + crate::accept::HELLO_TIMEOUT);
    let hello = match read_hello(&mut stream, answer_by) {
        Ok(hello) => hello,
        Err(error) if worth_retrying(&error) => {
            return Err(Attempt::Again(format!(
                "it closed the connection during the hello ({error}): it refuses a hello of another run (another \
                 token, clocks or number of machines), and closes connections it has no room for"
            )));
        }
        Err(error) => return Err(Attempt::Final(error.to_string())),
    };
    let check = hello.and_then(|hello| hello.check(ours, |answered| answered == peer));
    match check {
        Ok(()) => {}
        Err(HelloError::Version { got, expected }) => {
            return Err(Attempt::Final(format!(
                "it speaks protocol version {got}, this build {expected}: every machine needs the same clocklab"
            )));
        }
        Err(error) => return Err(Attempt::Final(error.to_string())),
    }
    stream.set_read_timeout(None).map_err(|e| Attempt::Again(e.to_string()))?;
    Ok(stream)
}
