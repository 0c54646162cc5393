//! Connecting to peers: one short-lived thread that connects to every peer
//! at once, without blocking on any (retrying each until the connect
//! deadline, also when the peer closes or resets the connection during the
//! hello), exchanges hellos, and hands each stream over for sending (see
//! `send`). Peers are connected to at once, so a timeout can name every peer
//! that is missing.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clocklab_model::MachineId;
use clocklab_model::wire::{HELLO_HEADER_LEN, HELLO_LEN, Hello, HelloError};
use crossbeam_channel::{Receiver, Sender};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, connect, getsockopt, socket, sockopt};

use crate::NetError;
use crate::accept::THREAD_STACK_BYTES;

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

/// The processing thread's handle on a connector: one thread that connects
/// to one or many peers at once.
#[derive(Debug)]
pub(crate) struct Connector {
    thread: Option<JoinHandle<()>>,
    /// Per peer, why its last attempt failed, while the connector tries.
    last_errors: Arc<Mutex<BTreeMap<MachineId, String>>>,
}

impl Connector {
    /// Starts connecting to the peer of `config` on a thread of its own; it
    /// reports on `events`. A message on `cancel`, or its senders gone, stops it.
    pub(crate) fn spawn(
        config: LinkConfig,
        events: Sender<LinkEvent>,
        cancel: Receiver<()>,
    ) -> Result<Connector, NetError> {
        Connector::spawn_many(vec![config], events, cancel)
    }

    /// Starts connecting to the peer of every config on one thread, every
    /// peer at once (non-blocking connects and hellos, one `poll` for all);
    /// it reports on `events`, one event per peer. A message on `cancel`, or
    /// its senders gone, stops it.
    ///
    /// A thread per peer cost every machine of a large run a thread started
    /// and ended per peer, most of its start-up.
    pub(crate) fn spawn_many(
        configs: Vec<LinkConfig>,
        events: Sender<LinkEvent>,
        cancel: Receiver<()>,
    ) -> Result<Connector, NetError> {
        let last_errors = Arc::new(Mutex::new(BTreeMap::new()));
        let shared = Arc::clone(&last_errors);
        let Some(first) = configs.first() else {
            return Ok(Connector { thread: None, last_errors });
        };
        let name = match configs.as_slice() {
            [one] => format!("machine-{}-connect-{}", one.ours.machine, one.peer),
            _ => format!("machine-{}-connect", first.ours.machine),
        };
        let what = match configs.as_slice() {
            [one] => format!("the connection to machine {}", one.peer),
            _ => "the connections to its peers".into(),
        };
        let thread = std::thread::Builder::new()
            .name(name)
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let mut links: Vec<Link> = configs.into_iter().map(Link::new).collect();
                connect_all(&mut links, &shared, &events, &cancel);
            })
            .map_err(|source| NetError::Thread { what, source })?;
        Ok(Connector { thread: Some(thread), last_errors })
    }

    /// Why the last attempt to connect to `peer` failed.
    pub(crate) fn last_error(&self, peer: MachineId) -> String {
        let errors = self.last_errors.lock().expect("the connector's last errors are never poisoned");
        match errors.get(&peer) {
            Some(error) if !error.is_empty() => format!("it did not answer ({error})"),
            _ => "it did not answer in time".into(),
        }
    }

    /// Waits for the thread to end (after its reports, or a cancel).
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

/// The longest a connector sleeps in its `poll` before it looks for a cancel.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// Where one peer's connection is.
#[derive(Debug)]
enum State {
    /// Waiting to try (again) at this instant.
    Pause(Instant),
    /// A connect under way, given up at the instant.
    Connecting(OwnedFd, Instant),
    /// Our hello sent, its answer awaited until the instant.
    Answer { stream: TcpStream, bytes: [u8; HELLO_LEN], filled: usize, by: Instant },
    /// Reported.
    Done,
}

/// One peer being connected to.
#[derive(Debug)]
struct Link {
    config: LinkConfig,
    state: State,
    /// The wait before the next attempt.
    pause: Duration,
    last_error: String,
}

impl Link {
    fn new(config: LinkConfig) -> Link {
        Link {
            config,
            state: State::Pause(Instant::now()),
            pause: CONNECT_RETRY,
            last_error: "no attempt finished in time".into(),
        }
    }
}

/// What one step of a link came to.
enum Outcome {
    /// Nothing to tell yet.
    Pending,
    /// Try again after the pause (the peer is not up, or closed the connection).
    Again(String),
    /// The peer answered with a hello that does not match: not a machine of this run.
    Final(String),
    /// Up, hellos exchanged.
    Up(TcpStream),
    /// The answer came and passed (the caller has the stream).
    Answered,
}

/// Connects every link, retrying each with a growing pause while its peer
/// is not up or closes the connection during the hello, until its deadline
/// or `cancel`; reports each on `events`.
fn connect_all(
    links: &mut [Link],
    last_errors: &Mutex<BTreeMap<MachineId, String>>,
    events: &Sender<LinkEvent>,
    cancel: &Receiver<()>,
) {
    loop {
        if !matches!(cancel.try_recv(), Err(crossbeam_channel::TryRecvError::Empty)) {
            for link in links.iter_mut().filter(|link| !matches!(link.state, State::Done)) {
                link.state = State::Done;
                let (peer, attempt) = (link.config.peer, link.config.attempt);
                let _ = events.send(LinkEvent::Failed { peer, error: NetError::Stopped, attempt });
            }
            return;
        }
        let now = Instant::now();
        for link in links.iter_mut() {
            let outcome = match &link.state {
                State::Pause(at) if *at <= now => {
                    if link.config.deadline <= now {
                        let LinkConfig { peer, address, timeout_s, attempt, .. } = link.config;
                        let last_error = link.last_error.clone();
                        let error = NetError::ConnectTimeout { peer, address, timeout_s, last_error };
                        let _ = events.send(LinkEvent::Failed { peer, error, attempt });
                        link.state = State::Done;
                        continue;
                    }
                    start_connect(link, now)
                }
                State::Connecting(_, by) if *by <= now => Outcome::Again("connection timed out".into()),
                State::Answer { filled, by, .. } if *by <= now => {
                    Outcome::Again(closed_during_hello(&format!("{filled} of {HELLO_LEN} bytes in time")))
                }
                _ => Outcome::Pending,
            };
            settle(link, outcome, now, last_errors, events);
        }
        if links.iter().all(|link| matches!(link.state, State::Done)) {
            return;
        }
        let ready = wait_ready(links, now);
        let now = Instant::now();
        for idx in ready {
            let link = &mut links[idx];
            let outcome = match std::mem::replace(&mut link.state, State::Done) {
                State::Connecting(fd, _) => connected(link, fd, now),
                State::Answer { mut stream, mut bytes, mut filled, by } => {
                    match read_answer(link, &mut stream, &mut bytes, &mut filled) {
                        Outcome::Pending => {
                            link.state = State::Answer { stream, bytes, filled, by };
                            Outcome::Pending
                        }
                        Outcome::Answered => Outcome::Up(stream),
                        outcome => outcome,
                    }
                }
                other => {
                    link.state = other;
                    Outcome::Pending
                }
            };
            settle(link, outcome, now, last_errors, events);
        }
    }
}

/// Sleeps in one `poll` until a link's socket is ready, a link's instant
/// comes, or [`CANCEL_POLL`]; returns the links whose socket is ready.
fn wait_ready(links: &[Link], now: Instant) -> Vec<usize> {
    let mut until = now + CANCEL_POLL;
    let mut fds = Vec::new();
    let mut which = Vec::new();
    for (idx, link) in links.iter().enumerate() {
        match &link.state {
            State::Pause(at) => until = until.min(*at),
            State::Connecting(fd, by) => {
                until = until.min(*by);
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                which.push(idx);
            }
            State::Answer { stream, by, .. } => {
                until = until.min(*by);
                fds.push(PollFd::new(stream.as_fd(), PollFlags::POLLIN));
                which.push(idx);
            }
            State::Done => {}
        }
    }
    let timeout_ms = until.saturating_duration_since(now).as_millis().saturating_add(1);
    let timeout = PollTimeout::from(u16::try_from(timeout_ms).unwrap_or(u16::MAX));
    match nix::poll::poll(&mut fds, timeout) {
        Ok(n) if n > 0 => fds
            .iter()
            .zip(which)
            .filter(|(fd, _)| fd.revents().is_some_and(|events| !events.is_empty()))
            .map(|(_, idx)| idx)
            .collect(),
        _ => Vec::new(),
    }
}

/// Applies what a step of `link` came to.
fn settle(
    link: &mut Link,
    outcome: Outcome,
    now: Instant,
    last_errors: &Mutex<BTreeMap<MachineId, String>>,
    events: &Sender<LinkEvent>,
) {
    let LinkConfig { peer, address, attempt, .. } = link.config;
    match outcome {
        Outcome::Pending | Outcome::Answered => {}
        Outcome::Up(stream) => {
            link.state = State::Done;
            let _ = events.send(LinkEvent::Up { peer, stream, attempt });
        }
        Outcome::Final(reason) => {
            link.state = State::Done;
            let _ = events.send(LinkEvent::Failed {
                peer,
                error: NetError::HelloRefused { peer, address, reason },
                attempt,
            });
        }
        Outcome::Again(error) => {
            last_errors.lock().expect("the connector's last errors are never poisoned").insert(peer, error.clone());
            link.last_error = error;
            // Never past the deadline: the attempt due then reports the timeout.
            link.state = State::Pause((now + link.pause).min(link.config.deadline));
            link.pause = (link.pause * 2).min(CONNECT_RETRY_MAX);
        }
    }
}

/// Starts a non-blocking connect.
fn start_connect(link: &mut Link, now: Instant) -> Outcome {
    let address = link.config.address;
    let family = if address.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = match socket(family, SockType::Stream, flags, None) {
        Ok(fd) => fd,
        Err(errno) => return Outcome::Again(io::Error::from(errno).to_string()),
    };
    let by = (now + CONNECT_ATTEMPT_MAX).min(link.config.deadline);
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(address)) {
        Ok(()) => connected(link, fd, now),
        Err(Errno::EINPROGRESS | Errno::EINTR) => {
            link.state = State::Connecting(fd, by);
            Outcome::Pending
        }
        Err(errno) => Outcome::Again(io::Error::from(errno).to_string()),
    }
}

/// A connect finished (or failed): sends our hello and awaits the answer.
fn connected(link: &mut Link, fd: OwnedFd, now: Instant) -> Outcome {
    match getsockopt(&fd, sockopt::SocketError) {
        Ok(0) => {}
        Ok(error) => return Outcome::Again(io::Error::from_raw_os_error(error).to_string()),
        Err(errno) => return Outcome::Again(io::Error::from(errno).to_string()),
    }
    let mut stream = TcpStream::from(fd);
    if let Err(error) = stream.set_nodelay(true) {
        return Outcome::Again(error.to_string());
    }
    // Best effort: a system that refuses keeps its own size.
    let _ = nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER_BYTES);
    // A fresh connection's send buffer is empty: the hello goes whole.
    if let Err(error) = stream.write_all(&link.config.ours.encode()) {
        return Outcome::Again(format!("cannot send the hello ({error})"));
    }
    // An answer takes a moment even from a busy machine; waiting longer than
    // the hello timeout of the acceptor would only wait for a closed slot.
    let by = link.config.deadline.min(now + crate::accept::HELLO_TIMEOUT);
    link.state = State::Answer { stream, bytes: [0; HELLO_LEN], filled: 0, by };
    Outcome::Pending
}

/// Why a hello exchange that failed this way is tried again.
fn closed_during_hello(error: &str) -> String {
    format!(
        "it closed the connection during the hello ({error}): it refuses a hello of another run (another \
         token, clocks or number of machines), and closes connections it has no room for"
    )
}

/// Reads what there is of the peer's answer: its header first, so that a
/// peer of another protocol version is told at once.
fn read_answer(link: &Link, stream: &mut TcpStream, bytes: &mut [u8; HELLO_LEN], filled: &mut usize) -> Outcome {
    loop {
        let until = if *filled < HELLO_HEADER_LEN { HELLO_HEADER_LEN } else { HELLO_LEN };
        match stream.read(&mut bytes[*filled..until]) {
            Ok(0) => {
                return Outcome::Again(closed_during_hello(&format!(
                    "the connection closed after {filled} of {HELLO_LEN} bytes"
                )));
            }
            Ok(n) => *filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Outcome::Pending,
            Err(error) if worth_retrying(&error) => return Outcome::Again(closed_during_hello(&error.to_string())),
            Err(error) => return Outcome::Final(error.to_string()),
        }
        if *filled == HELLO_HEADER_LEN {
            let header: &[u8; HELLO_HEADER_LEN] = bytes[..HELLO_HEADER_LEN].try_into().expect("the header's length");
            if let Err(error) = Hello::check_header(header) {
                return Outcome::Final(refusal(error));
            }
        }
        if *filled == HELLO_LEN {
            let ours = &link.config.ours;
            let peer = link.config.peer;
            return match Hello::decode(bytes).and_then(|hello| hello.check(ours, |answered| answered == peer)) {
                Ok(()) => match stream.set_nonblocking(false) {
                    Ok(()) => Outcome::Answered,
                    Err(error) => Outcome::Again(error.to_string()),
                },
                Err(error) => Outcome::Final(refusal(error)),
            };
        }
    }
}

/// Why an answer that is not the peer's hello is final, for a person.
fn refusal(error: HelloError) -> String {
    match error {
        HelloError::Version { got, expected } => {
            format!("it speaks protocol version {got}, this build {expected}: every machine needs the same clocklab")
        }
        error => error.to_string(),
    }
}
