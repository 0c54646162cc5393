//! Connections between machines: the hello on each side, and the reader
//! threads that turn arriving bytes into [`Inbound`] events.
//!
//! Each machine opens one outgoing connection per peer and uses it only for
//! sending; the connections it accepts are only for receiving. The connector
//! speaks first (its [`Hello`]); the acceptor checks it and answers with its
//! own, which the connector checks. A connection whose hello is wrong is
//! closed and reported on stderr; nothing it sent reaches the queue.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clocklab_model::wire::{FrameCodec, FrameDecoder, HELLO_HEADER_LEN, HELLO_LEN, Hello};
use clocklab_model::{MachineId, Stamp};
use crossbeam_channel::{Receiver, Sender};

use crate::NetError;
use crate::node::{StopRequest, Wake, wait_until};

/// The first wait between two connection attempts while a peer is not up yet;
/// each failed attempt doubles it, up to [`CONNECT_RETRY_MAX`].
const CONNECT_RETRY: Duration = Duration::from_millis(20);

/// The longest wait between two connection attempts.
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(500);

/// The longest a single connection attempt may block, so that a stop request
/// is noticed even when the peer's address swallows packets.
const CONNECT_ATTEMPT_MAX: Duration = Duration::from_secs(1);

/// How long an accepted connection has, in all, to deliver its whole hello.
/// A per-read timeout would not do: a sender dripping one byte at a time
/// would keep a reader thread forever.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// How many accepted connections may be waiting for their hello at once.
/// Beyond it new connections are closed at once: a flood of connections costs
/// at most this many threads, and the peers of the run need only a few.
pub(crate) const MAX_PENDING_HELLOS: usize = 32;

/// What the reader threads tell the processing thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A peer's connection passed its hello.
    Joined {
        /// The peer.
        from: MachineId,
    },
    /// A frame arrived.
    Message {
        /// The sender.
        from: MachineId,
        /// The clocks it carried.
        stamp: Stamp,
    },
    /// A peer's connection ended (end of stream or an error).
    Closed {
        /// The peer.
        from: MachineId,
        /// What went wrong, if it did not end cleanly.
        error: Option<String>,
    },
}

/// What the acceptor needs to judge a hello.
#[derive(Debug)]
pub(crate) struct AcceptContext {
    /// This machine's hello: what a peer's must match, and the answer.
    pub(crate) hello: Hello,
    /// The run's frames.
    pub(crate) codec: FrameCodec,
    pub(crate) hello_timeout: Duration,
    /// Peers whose connection passed its hello: a second one is refused.
    pub(crate) joined: Mutex<BTreeSet<MachineId>>,
    /// Accepted connections whose hello has not been judged yet.
    pub(crate) pending_hellos: AtomicUsize,
    /// Connections refused so far (bad hello, or too many waiting).
    pub(crate) refused_connections: AtomicUsize,
    /// Of those, the ones refused because too many were waiting.
    pub(crate) refused_busy: AtomicUsize,
}

/// Counts a connection waiting for its hello for as long as it lives.
struct PendingHello<'a>(&'a AtomicUsize);

impl Drop for PendingHello<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections for the life of the process, one thread each.
pub(crate) fn spawn_acceptor(listener: TcpListener, context: Arc<AcceptContext>, inbound: Sender<Inbound>) {
    let id = context.hello.machine;
    std::thread::Builder::new()
        .name(format!("machine-{id}-accept"))
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if context.pending_hellos.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING_HELLOS {
                            context.pending_hellos.fetch_sub(1, Ordering::SeqCst);
                            refuse(&context, &stream, Refusal::Busy);
                            continue;
                        }
                        let context = Arc::clone(&context);
                        let inbound = inbound.clone();
                        let spawned = std::thread::Builder::new()
                            .name(format!("machine-{id}-reader"))
                            .spawn(move || serve_connection(stream, &context, &inbound));
                        if let Err(error) = spawned {
                            eprintln!("machine {id}: cannot start a reader thread: {error}");
                        }
                    }
                    // A failed accept (a peer that reset before we took it, or
                    // no file descriptors left) concerns that connection only.
                    Err(error) => {
                        eprintln!("machine {id}: accept failed: {error}");
                        std::thread::sleep(CONNECT_RETRY);
                    }
                }
            }
        })
        .expect("the acceptor thread starts");
}

/// Checks an accepted connection's hello, answers it, then reads clock
/// frames until the peer closes.
fn serve_connection(mut stream: TcpStream, context: &AcceptContext, inbound: &Sender<Inbound>) {
    let pending = PendingHello(&context.pending_hellos);
    let from = match accept_hello(&mut stream, context) {
        Ok(from) => from,
        Err(reason) => {
            refuse(context, &stream, Refusal::Hello(&reason));
            return;
        }
    };
    drop(pending);
    if inbound.send(Inbound::Joined { from }).is_err() {
        return;
    }
    let mut decoder = FrameDecoder::new(context.codec);
    let mut buffer = [0u8; 4096];
    let error = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break None,
            Ok(n) => {
                let mut gone = false;
                decoder.feed(&buffer[..n], |stamp| gone |= inbound.send(Inbound::Message { from, stamp }).is_err());
                if gone {
                    // The processing thread has finished: nobody reads any more.
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => break Some(error.to_string()),
        }
    };
    let error = error.or_else(|| {
        (decoder.pending() > 0).then(|| format!("the stream ended inside a frame ({} bytes)", decoder.pending()))
    });
    let _ = inbound.send(Inbound::Closed { from, error });
}

/// Why a connection was refused.
enum Refusal<'a> {
    /// Too many connections were waiting for their hello.
    Busy,
    /// Its hello was missing or wrong; says how.
    Hello(&'a str),
}

/// Reports a refused connection on stderr and counts it; the caller drops
/// the stream, which closes it.
///
/// A flood of connections must not flood stderr too: of each kind, the first
/// ones are reported, then every power of two; the total is in the run's
/// summary.
fn refuse(context: &AcceptContext, stream: &TcpStream, refusal: Refusal<'_>) {
    let address = stream.peer_addr().map_or_else(|_| "an unknown address".to_string(), |a| a.to_string());
    let total = context.refused_connections.fetch_add(1, Ordering::SeqCst) + 1;
    let (reason, of_kind) = match refusal {
        Refusal::Busy => (
            "too many connections are waiting for their hello",
            context.refused_busy.fetch_add(1, Ordering::SeqCst) + 1,
        ),
        Refusal::Hello(reason) => (reason, total - context.refused_busy.load(Ordering::SeqCst)),
    };
    if of_kind <= 10 || of_kind.is_power_of_two() {
        eprintln!(
            "machine {}: refused a connection from {address}: {reason} ({total} refused so far)",
            context.hello.machine
        );
    }
}

/// Fills `bytes[filled..until]` before `deadline`, however the sender splits
/// them; errors count the bytes of all of `bytes` (a whole hello).
fn read_exact_by(
    stream: &mut TcpStream,
    bytes: &mut [u8],
    mut filled: usize,
    until: usize,
    deadline: Instant,
) -> io::Result<()> {
    let total = bytes.len();
    let late = |filled: usize| io::Error::new(io::ErrorKind::TimedOut, format!("{filled} of {total} bytes in time"));
    while filled < until {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(late(filled));
        }
        stream.set_read_timeout(Some(remaining))?;
        match stream.read(&mut bytes[filled..until]) {
            Ok(0) => {
                let message = format!("the connection closed after {filled} of {total} bytes");
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, message));
            }
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(late(filled));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads a hello before `deadline`: its header first, so that a peer of
/// another protocol version is told at once, then the rest.
fn read_hello(
    stream: &mut TcpStream,
    deadline: Instant,
) -> io::Result<Result<Hello, clocklab_model::wire::HelloError>> {
    let mut bytes = [0u8; HELLO_LEN];
    read_exact_by(stream, &mut bytes, 0, HELLO_HEADER_LEN, deadline)?;
    let header: &[u8; HELLO_HEADER_LEN] = bytes[..HELLO_HEADER_LEN].try_into().expect("the header's length");
    if let Err(error) = Hello::check_header(header) {
        return Ok(Err(error));
    }
    read_exact_by(stream, &mut bytes, HELLO_HEADER_LEN, HELLO_LEN, deadline)?;
    Ok(Hello::decode(&bytes))
}

/// Reads and checks the connector's hello and answers it; returns the peer.
fn accept_hello(stream: &mut TcpStream, context: &AcceptContext) -> Result<MachineId, String> {
    let deadline = Instant::now() + context.hello_timeout;
    let hello = read_hello(stream, deadline)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => format!("no whole hello: {e}"),
            _ => format!("no hello within {} s ({e})", context.hello_timeout.as_secs_f64()),
        })?
        .map_err(|e| e.to_string())?;
    let ours = &context.hello;
    let (id, n_machines) = (ours.machine, ours.n_machines);
    hello.check(ours, |peer| peer != id && (1..=n_machines).contains(&peer)).map_err(|e| e.to_string())?;
    {
        let mut joined = context.joined.lock().expect("the joined set is never poisoned");
        if !joined.insert(hello.machine) {
            return Err(format!("machine {} is already connected", hello.machine));
        }
    }
    stream.write_all(&ours.encode()).map_err(|e| format!("cannot answer the hello ({e})"))?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(hello.machine)
}

/// Connects to `peer` at `address`, retrying with a growing pause while it
/// is not up, until `deadline` or a stop request; exchanges hellos and
/// returns the stream for sending.
pub(crate) fn connect_peer(
    ours: &Hello,
    peer: MachineId,
    address: SocketAddr,
    deadline: Instant,
    timeout_s: f64,
    stop: &Receiver<StopRequest>,
) -> Result<TcpStream, NetError> {
    let timeout = |last_error: String| NetError::ConnectTimeout { peer, address, timeout_s, last_error };
    let mut pause = CONNECT_RETRY;
    let mut stream = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timeout("no attempt finished in time".into()));
        }
        match TcpStream::connect_timeout(&address, remaining.min(CONNECT_ATTEMPT_MAX)) {
            Ok(stream) => break stream,
            Err(error) => {
                if Instant::now() + pause >= deadline {
                    return Err(timeout(error.to_string()));
                }
                if wait_until(Instant::now() + pause, stop) == Wake::Stop {
                    return Err(NetError::Stopped);
                }
                pause = (pause * 2).min(CONNECT_RETRY_MAX);
            }
        }
    };
    let refused = |reason: String| NetError::HelloRefused { peer, address, reason };
    let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_nodelay(true).map_err(|e| refused(e.to_string()))?;
    stream.write_all(&ours.encode()).map_err(|e| refused(format!("cannot send the hello: {e}")))?;
    let hello = read_hello(&mut stream, Instant::now() + remaining)
        .map_err(|e| {
            refused(format!(
                "no answer to the hello ({e}); is it a machine of another run, with another token or other clocks?"
            ))
        })?
        .map_err(|e| refused(e.to_string()))?;
    hello.check(ours, |answered| answered == peer).map_err(|e| refused(e.to_string()))?;
    stream.set_read_timeout(None).map_err(|e| refused(e.to_string()))?;
    Ok(stream)
}
