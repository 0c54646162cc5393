//! The sending side of a machine: one link per peer. A link is a thread that
//! connects to the peer (retrying until the connect deadline), exchanges
//! hellos, and then writes what the processing thread queues for it: the
//! ready message once, then frames, each at its due instant or later. The
//! processing thread never writes to a socket, so a peer that stops reading
//! never holds up a tick.
//!
//! **A peer that stops reading.** A link's queue is bounded
//! ([`SEND_QUEUE_MAX`] frames) and its writes time out after the stall limit
//! (`connect_timeout`, at least [`SEND_STALL_MIN`]). When either gives, the
//! peer is declared gone: the processing thread logs `Disconnected from
//! machine <j>`, the connection is closed, and every frame that was not
//! written whole (the one cut, those queued, and every later send to that
//! peer) is counted as unsent, per peer, in the machine's summary and its
//! manifest. So every message a machine logs as sent is received by its
//! peer (`Processed` or `Unprocessed`), or counted unsent by the sender, or,
//! if the peer died, lost with the peer's kernel buffers (a failed run).
//!
//! **Due instants.** Every frame is queued with the instant it may leave;
//! today that is the instant it was made. A network fault (latency, a
//! partition) holds frames at the sender by giving them a later instant: the
//! link keeps the queue's order, so a peer still gets its frames in the
//! order they were sent, as on a TCP connection.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clocklab_model::MachineId;
use clocklab_model::wire::{self, Hello, HelloError};
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

/// The most frames a link holds for its peer. A peer that reads keeps its
/// queue near empty (the link writes them in batches); a full queue means the
/// peer has stopped reading long enough for its socket buffers to fill, and
/// it is declared gone. 2^18 frames are a quarter of a second of sends at a
/// million ticks a second, and 16 MiB at most.
pub(crate) const SEND_QUEUE_MAX: usize = 1 << 18;

/// The shortest time a peer may stay unwritable before it is declared gone,
/// whatever `connect_timeout` says: a busy computer may not run a peer's
/// reader for a second or more.
pub(crate) const SEND_STALL_MIN: Duration = Duration::from_secs(2);

/// The most bytes one write carries.
const BATCH_BYTES: usize = 64 * 1024;

/// Everything a link needs.
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
    /// How long a write may block before the peer is declared gone.
    pub(crate) stall_limit: Duration,
    /// The bytes of one frame of the run.
    pub(crate) frame_len: usize,
}

/// What a link tells the processing thread while it connects.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The connection is up: hellos exchanged.
    Up {
        /// The peer.
        peer: MachineId,
    },
    /// The link gave up (its deadline passed, or the peer is not of the run).
    Failed {
        /// The peer.
        peer: MachineId,
        /// Why.
        error: NetError,
    },
}

/// One item of a link's queue.
#[derive(Debug)]
enum Outgoing {
    /// The ready message: every connection of this machine was up at this
    /// instant (microseconds since the Unix epoch).
    Ready(i64),
    /// A frame, to be written at `due` or later.
    Frame {
        /// When it may leave.
        due: Instant,
        /// Its bytes, shared by every recipient of a send.
        bytes: Arc<[u8]>,
    },
}

/// What the processing thread and a link thread share.
#[derive(Debug, Default)]
struct LinkShared {
    /// Frames in the queue.
    queued: AtomicUsize,
    /// Set once the peer is declared gone.
    gone: AtomicBool,
    /// Why, for a person.
    gone_reason: Mutex<Option<String>>,
    /// Frames never written whole.
    unsent: AtomicU64,
    /// The connection, to close it from the processing thread.
    stream: Mutex<Option<TcpStream>>,
    /// Why the last connection attempt failed, while connecting.
    last_error: Mutex<String>,
}

impl LinkShared {
    /// Declares the peer gone (the first reason wins) and closes the
    /// connection, which ends a write that blocks.
    fn declare_gone(&self, reason: String) {
        let mut slot = self.gone_reason.lock().expect("the link's reason is never poisoned");
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.gone.store(true, Ordering::SeqCst);
        if let Some(stream) = self.stream.lock().expect("the link's stream is never poisoned").as_ref() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The processing thread's handle on one peer's link.
#[derive(Debug)]
pub(crate) struct PeerLink {
    peer: MachineId,
    queue: Option<Sender<Outgoing>>,
    shared: Arc<LinkShared>,
    thread: Option<JoinHandle<()>>,
    /// The processing thread has logged the peer gone.
    reported: bool,
}

impl PeerLink {
    /// Starts the link's thread: it connects, reports on `events`, then
    /// sends what is queued. A message on `cancel` (or its senders gone)
    /// stops the connecting.
    pub(crate) fn spawn(
        config: LinkConfig,
        events: Sender<LinkEvent>,
        cancel: Receiver<()>,
    ) -> Result<PeerLink, NetError> {
        let (queue, items) = crossbeam_channel::unbounded();
        let shared = Arc::new(LinkShared::default());
        let peer = config.peer;
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("machine-{}-link-{peer}", config.ours.machine))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || run_link(&config, &thread_shared, &items, &events, &cancel))
            .map_err(|source| NetError::Thread { what: format!("the connection to machine {peer}"), source })?;
        Ok(PeerLink { peer, queue: Some(queue), shared, thread: Some(thread), reported: false })
    }

    /// Queues the ready message.
    pub(crate) fn send_ready(&self, at_us: i64) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(Outgoing::Ready(at_us));
        }
    }

    /// Queues a frame to leave at `due`; returns whether it was queued. A
    /// frame for a peer that is gone, or one that would overfill the queue
    /// (which declares the peer gone), is counted as unsent.
    pub(crate) fn send_frame(&self, due: Instant, bytes: &Arc<[u8]>) -> bool {
        let shared = &self.shared;
        if !shared.gone.load(Ordering::SeqCst) {
            if shared.queued.load(Ordering::SeqCst) >= SEND_QUEUE_MAX {
                shared.declare_gone(format!(
                    "it read nothing while {SEND_QUEUE_MAX} messages waited for it (its connection is unwritable)"
                ));
            } else if let Some(queue) = &self.queue {
                shared.queued.fetch_add(1, Ordering::SeqCst);
                if queue.send(Outgoing::Frame { due, bytes: Arc::clone(bytes) }).is_ok() {
                    return true;
                }
                shared.queued.fetch_sub(1, Ordering::SeqCst);
            }
        }
        shared.unsent.fetch_add(1, Ordering::SeqCst);
        false
    }

    /// Why the peer was declared gone, the first time this is asked after it
    /// was; `None` otherwise.
    pub(crate) fn newly_gone(&mut self) -> Option<String> {
        if self.reported || !self.shared.gone.load(Ordering::SeqCst) {
            return None;
        }
        self.reported = true;
        let reason = self.shared.gone_reason.lock().expect("the link's reason is never poisoned").clone();
        Some(reason.unwrap_or_else(|| "its connection failed".into()))
    }

    /// The peer.
    pub(crate) fn peer(&self) -> MachineId {
        self.peer
    }

    /// Why the last attempt to connect failed (while the link is connecting).
    pub(crate) fn last_error(&self) -> String {
        let error = self.shared.last_error.lock().expect("the link's last error is never poisoned").clone();
        if error.is_empty() { "it did not answer in time".into() } else { format!("it did not answer ({error})") }
    }

    /// Closes the queue: the link writes what is left (each write within
    /// the stall limit), ends the stream so that the peer sees its end after
    /// the last frame, and exits.
    pub(crate) fn close(&mut self) {
        self.queue = None;
    }

    /// Closes the queue and waits for the link to finish; returns how many
    /// frames were never written whole.
    pub(crate) fn finish(mut self) -> u64 {
        self.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.unsent.load(Ordering::SeqCst)
    }

    /// Stops the link at once, whatever it holds (a run called off before it
    /// ticked): its connection is closed.
    pub(crate) fn abort(mut self) {
        self.shared.declare_gone("the machine stopped before its run started".into());
        self.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The link thread: connect, report, send.
fn run_link(
    config: &LinkConfig,
    shared: &LinkShared,
    items: &Receiver<Outgoing>,
    events: &Sender<LinkEvent>,
    cancel: &Receiver<()>,
) {
    let peer = config.peer;
    let stream = match connect_peer(config, shared, cancel) {
        Ok(stream) => stream,
        Err(error) => {
            let _ = events.send(LinkEvent::Failed { peer, error });
            return;
        }
    };
    *shared.stream.lock().expect("the link's stream is never poisoned") = stream.try_clone().ok();
    if events.send(LinkEvent::Up { peer }).is_err() {
        return;
    }
    send_loop(stream, config, shared, items);
}

/// Writes queued items until the queue is closed, in batches; on a write
/// that fails or blocks past the stall limit, declares the peer gone and
/// counts every frame not written whole.
fn send_loop(mut stream: TcpStream, config: &LinkConfig, shared: &LinkShared, items: &Receiver<Outgoing>) {
    let _ = stream.set_write_timeout(Some(config.stall_limit));
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH_BYTES);
    let mut held: Option<Outgoing> = None;
    'sending: loop {
        let first = match held.take() {
            Some(item) => item,
            None => match items.recv() {
                Ok(item) => item,
                Err(_) => break 'sending,
            },
        };
        batch.clear();
        let mut frames = 0u64;
        // Bytes before the first frame: the ready message, if the batch has it.
        let mut prefix = 0;
        match first {
            Outgoing::Ready(at_us) => {
                batch.extend_from_slice(&wire::encode_ready(at_us));
                prefix = batch.len();
            }
            Outgoing::Frame { due, bytes } => {
                wait_for(due);
                batch.extend_from_slice(&bytes);
                frames += 1;
            }
        }
        // Everything else that is due goes in the same write.
        while batch.len() < BATCH_BYTES {
            match items.try_recv() {
                Ok(Outgoing::Frame { due, bytes }) if due <= Instant::now() => {
                    batch.extend_from_slice(&bytes);
                    frames += 1;
                }
                Ok(item) => {
                    held = Some(item);
                    break;
                }
                Err(_) => break,
            }
        }
        shared.queued.fetch_sub(frames as usize, Ordering::SeqCst);
        if let Err((written, error)) = write_counted(&mut stream, &batch) {
            let whole = (written.saturating_sub(prefix) / config.frame_len.max(1)) as u64;
            shared.unsent.fetch_add(frames.saturating_sub(whole), Ordering::SeqCst);
            let reason = match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    format!("it took nothing for {} s (its connection is unwritable)", config.stall_limit.as_secs_f64())
                }
                _ => format!("cannot send to it ({error})"),
            };
            shared.declare_gone(reason);
            break 'sending;
        }
    }
    if shared.gone.load(Ordering::SeqCst) {
        // Everything still queued, and all that comes until the queue is
        // closed, is counted: nothing the processing thread queued is lost
        // without a count.
        let held_frames = u64::from(matches!(held, Some(Outgoing::Frame { .. })));
        shared.unsent.fetch_add(held_frames, Ordering::SeqCst);
        for item in items.iter() {
            if matches!(item, Outgoing::Frame { .. }) {
                shared.queued.fetch_sub(1, Ordering::SeqCst);
                shared.unsent.fetch_add(1, Ordering::SeqCst);
            }
        }
    } else {
        // The peer sees the end of the stream after the last frame.
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
}

/// Writes all of `bytes`; on an error, how many were written before it.
fn write_counted(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err((written, io::Error::new(io::ErrorKind::WriteZero, "the connection took nothing"))),
            Ok(n) => written += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err((written, error)),
        }
    }
    Ok(())
}

/// Sleeps until `due` (a frame held at the sender).
fn wait_for(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
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
fn connect_peer(config: &LinkConfig, shared: &LinkShared, cancel: &Receiver<()>) -> Result<TcpStream, NetError> {
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
                shared.last_error.lock().expect("the link's last error is never poisoned").clone_from(&error);
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
