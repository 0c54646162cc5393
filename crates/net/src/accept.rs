//! The receiving side of a machine: the acceptor, one thread with one epoll
//! set for the listening socket and every accepted connection, which checks
//! each connection's hello and reads its ready message, then hands the
//! connection to the processing thread (`receive`), which reads its frames.
//! A thread per connection cost every machine of a large run a thread
//! started and ended per peer.
//!
//! Each machine opens one outgoing connection per peer and uses it only for
//! sending (see `link`); the connections it accepts are only for receiving.
//! The connector speaks first (its [`Hello`]); the acceptor checks it and
//! answers with its own. A connection whose hello is wrong is closed without
//! an answer and reported on stderr; nothing it sent reaches the queue. After
//! the hello comes the connector's ready message, then its frames.
//!
//! **Hello slots.** At most [`hello_slots`] accepted connections wait for
//! their hello at once (more for more peers). When a new connection comes and
//! every slot is taken, the one that has waited longest is closed: a peer of
//! the run sends its hello at once, so a flood of silent connections only
//! ever evicts itself, and the run's peers still get in (they retry what
//! fails until `connect_timeout`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clocklab_model::wire::{self, FrameCodec, FrameDecoder, HELLO_HEADER_LEN, HELLO_LEN, Hello, READY_LEN};
use clocklab_model::{MachineId, Stamp};
use crossbeam_channel::Sender;

use crate::stop::Doorbell;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

pub use crate::receive::Handover;

/// How long an accepted connection has, in all, to deliver its whole hello.
/// A per-read timeout would not do: a sender dripping one byte at a time
/// would keep its hello slot forever.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// The fewest hello slots a machine has, however few its peers.
const MIN_HELLO_SLOTS: usize = 32;

/// The stack of the acceptor, a connector or the outbox thread: it holds a
/// few small values, so a run of a hundred machines, with a connector thread
/// per peer each, stays far from the memory that the default 2 MiB stacks
/// would reserve.
pub(crate) const THREAD_STACK_BYTES: usize = 256 * 1024;

/// How many accepted connections of a run of `n_machines` may wait for
/// their hello at once: twice the peers, and at least [`MIN_HELLO_SLOTS`].
pub(crate) fn hello_slots(n_machines: u32) -> usize {
    MIN_HELLO_SLOTS.max(2 * n_machines.saturating_sub(1) as usize)
}

/// What the acceptor (and, once it has a connection, the processing
/// thread's own reads) tell the processing thread.
#[derive(Debug)]
pub enum Inbound {
    /// A peer's connection passed its hello.
    Joined {
        /// The peer.
        from: MachineId,
    },
    /// A peer had every connection of the run up at `at_us` (its ready message).
    Ready {
        /// The peer.
        from: MachineId,
        /// When, in microseconds since the Unix epoch.
        at_us: i64,
    },
    /// A frame arrived.
    Message {
        /// The sender.
        from: MachineId,
        /// The clocks it carried.
        stamp: Stamp,
    },
    /// A peer's connection, its ready message read: the processing thread
    /// reads it from now on.
    Stream(Handover),
    /// A peer's connection ended (end of stream or an error).
    Closed {
        /// The peer.
        from: MachineId,
        /// What went wrong, if it did not end cleanly.
        error: Option<String>,
    },
}

/// What the acceptor needs to judge a hello, and what it counts.
#[derive(Debug)]
pub(crate) struct AcceptContext {
    /// This machine's hello: what a peer's must match, and the answer.
    pub(crate) hello: Hello,
    /// The run's frames.
    pub(crate) codec: FrameCodec,
    /// How long a connection has for its hello.
    pub(crate) hello_timeout: Duration,
    /// How many connections may wait for their hello at once.
    pub(crate) slots: usize,
    /// Peers whose connection passed its hello and is open: a second one is
    /// refused (after it ends, a restarted peer may connect again).
    pub(crate) joined: Mutex<BTreeSet<MachineId>>,
    /// Connections refused so far (a bad hello, evicted, or no room for it).
    pub(crate) refused_connections: AtomicUsize,
    /// Of those, the ones evicted because newer connections came.
    pub(crate) refused_busy: AtomicUsize,
    /// The processing thread's doorbell, rung with every event the acceptor
    /// sends it (and by the outbox and the connections to restarted peers).
    pub(crate) doorbell: Doorbell,
}

impl AcceptContext {
    /// A context for this machine's `hello`.
    pub(crate) fn new(hello: Hello, codec: FrameCodec, hello_timeout: Duration, doorbell: Doorbell) -> AcceptContext {
        AcceptContext {
            doorbell,
            slots: hello_slots(hello.n_machines),
            hello,
            codec,
            hello_timeout,
            joined: Mutex::new(BTreeSet::new()),
            refused_connections: AtomicUsize::new(0),
            refused_busy: AtomicUsize::new(0),
        }
    }
}

/// The acceptor's token for the listening socket in its epoll set.
const LISTENER: u64 = u64::MAX;

/// The most connections one `epoll_wait` of the acceptor reports.
const ACCEPT_EVENTS_MAX: usize = 64;

/// Where an accepted connection is.
#[derive(Debug)]
enum Phase {
    /// Waiting for its hello (in a hello slot): the bytes so far.
    Hello { bytes: [u8; HELLO_LEN], filled: usize, by: Instant },
    /// Its hello passed: waiting for its ready message (and reading the
    /// frames that come with it).
    Ready { from: MachineId, ready: [u8; READY_LEN], filled: usize, decoder: FrameDecoder },
}

/// One accepted connection, before it is handed to the processing thread.
#[derive(Debug)]
struct Accepted {
    stream: TcpStream,
    phase: Phase,
}

/// What a read of an accepted connection came to.
enum Step {
    /// Nothing more for now.
    Wait,
    /// Refused (closed by the caller).
    Refuse(String),
    /// Closed by the peer or failed after its hello (closed by the caller).
    Closed(MachineId, Option<String>),
    /// Its ready message came: handed over.
    HandedOver,
}

/// The acceptor: one thread with one epoll set for the listening socket and
/// every accepted connection until its ready message, so that a peer's
/// connection costs no thread of its own.
struct Acceptor {
    listener: TcpListener,
    epoll: Epoll,
    context: Arc<AcceptContext>,
    inbound: Teller,
    /// By ticket, the connections not handed over yet.
    connections: BTreeMap<u64, Accepted>,
    /// The tickets of those waiting for their hello, oldest first.
    waiting: VecDeque<u64>,
    next_ticket: u64,
    buffer: Box<[u8]>,
}

/// The acceptor's channel to the processing thread: each event rings the
/// doorbell, so that a machine between two far ticks takes it at once.
struct Teller {
    inbound: Sender<Inbound>,
    doorbell: Doorbell,
}

impl Teller {
    fn send(&self, event: Inbound) {
        // The processing thread goes only with the process.
        let _ = self.inbound.send(event);
        self.doorbell.ring();
    }
}

/// Accepts connections for the life of the process, on one thread that
/// reads every connection's hello and ready message.
pub(crate) fn spawn_acceptor(
    listener: TcpListener,
    context: Arc<AcceptContext>,
    inbound: Sender<Inbound>,
) -> io::Result<()> {
    let inbound = Teller { inbound, doorbell: context.doorbell.clone() };
    let id = context.hello.machine;
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
    let mut acceptor = Acceptor {
        listener,
        epoll,
        context,
        inbound,
        connections: BTreeMap::new(),
        waiting: VecDeque::new(),
        next_ticket: 0,
        buffer: vec![0; 4096].into_boxed_slice(),
    };
    std::thread::Builder::new()
        .name(format!("machine-{id}-accept"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || acceptor.run())?;
    Ok(())
}

impl Acceptor {
    fn run(&mut self) {
        let mut events = vec![EpollEvent::empty(); ACCEPT_EVENTS_MAX];
        loop {
            // The oldest connection waiting for its hello is the first due.
            let timeout =
                self.waiting.front().and_then(|&ticket| self.hello_by(ticket)).map_or(EpollTimeout::NONE, |by| {
                    let ms = by.saturating_duration_since(Instant::now()).as_millis().saturating_add(1);
                    EpollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
                });
            let ready = match self.epoll.wait(&mut events, timeout) {
                Ok(ready) => ready,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(error) => {
                    crate::note!("machine {}: cannot wait for connections: {error}", self.context.hello.machine);
                    std::thread::sleep(Duration::from_millis(20));
                    0
                }
            };
            for event in &events[..ready] {
                match event.data() {
                    LISTENER => self.accept_all(),
                    ticket => self.read(ticket),
                }
            }
            self.refuse_late();
        }
    }

    /// When connection `ticket` must have sent its hello by.
    fn hello_by(&self, ticket: u64) -> Option<Instant> {
        match self.connections.get(&ticket)?.phase {
            Phase::Hello { by, .. } => Some(by),
            Phase::Ready { .. } => None,
        }
    }

    /// Accepts every connection waiting, each into a hello slot (closing
    /// the connection that has waited longest if every slot is taken).
    fn accept_all(&mut self) {
        let id = self.context.hello.machine;
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // A failed accept (a peer that reset before we took it, or
                // no file descriptors left) concerns that connection only.
                Err(error) => {
                    crate::note!("machine {id}: accept failed: {error}");
                    std::thread::sleep(Duration::from_millis(20));
                    return;
                }
            };
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            let registered = stream.set_nonblocking(true).and_then(|()| {
                self.epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, ticket))?;
                Ok(())
            });
            if let Err(error) = registered {
                refuse(&self.context, &stream, Refusal::Resources(&format!("cannot keep it ({error})")));
                continue;
            }
            if self.waiting.len() >= self.context.slots
                && let Some(oldest) = self.waiting.pop_front()
                && let Some(evicted) = self.close(oldest)
            {
                refuse(&self.context, &evicted, Refusal::Evicted);
            }
            let by = Instant::now() + self.context.hello_timeout;
            let phase = Phase::Hello { bytes: [0; HELLO_LEN], filled: 0, by };
            self.connections.insert(ticket, Accepted { stream, phase });
            self.waiting.push_back(ticket);
        }
    }

    /// Forgets connection `ticket` (it is closed when the stream is dropped).
    fn close(&mut self, ticket: u64) -> Option<TcpStream> {
        let accepted = self.connections.remove(&ticket)?;
        let _ = self.epoll.delete(&accepted.stream);
        if let Some(idx) = self.waiting.iter().position(|&waiting| waiting == ticket) {
            self.waiting.remove(idx);
        }
        Some(accepted.stream)
    }

    /// Refuses every connection whose hello is late.
    fn refuse_late(&mut self) {
        let now = Instant::now();
        while let Some(&oldest) = self.waiting.front() {
            let Some(Accepted { phase: Phase::Hello { filled, by, .. }, .. }) = self.connections.get(&oldest) else {
                self.waiting.pop_front();
                continue;
            };
            // The oldest has the earliest instant: the rest are in time.
            if *by > now {
                return;
            }
            let reason = format!(
                "no hello within {} s ({filled} of {HELLO_LEN} bytes in time)",
                self.context.hello_timeout.as_secs_f64()
            );
            if let Some(stream) = self.close(oldest) {
                refuse(&self.context, &stream, Refusal::Hello(&reason));
            }
        }
    }

    /// Reads what connection `ticket` has.
    fn read(&mut self, ticket: u64) {
        let Some(accepted) = self.connections.get_mut(&ticket) else { return };
        let step = match &mut accepted.phase {
            Phase::Hello { bytes, filled, .. } => hello_step(&mut accepted.stream, bytes, filled, &self.context)
                .map_or_else(Step::Refuse, |joined| match joined {
                    None => Step::Wait,
                    Some(from) => {
                        let decoder = FrameDecoder::new(self.context.codec);
                        accepted.phase = Phase::Ready { from, ready: [0; READY_LEN], filled: 0, decoder };
                        self.inbound.send(Inbound::Joined { from });
                        Step::Wait
                    }
                }),
            Phase::Ready { from, ready, filled, decoder } => {
                ready_step(&mut accepted.stream, *from, ready, filled, decoder, &mut self.buffer, &self.inbound)
            }
        };
        match step {
            Step::Wait => {
                // A connection past its hello leaves its hello slot (what
                // came after the hello is read when epoll reports it again).
                if matches!(self.connections.get(&ticket), Some(Accepted { phase: Phase::Ready { .. }, .. }))
                    && let Some(idx) = self.waiting.iter().position(|&waiting| waiting == ticket)
                {
                    self.waiting.remove(idx);
                }
            }
            Step::Refuse(reason) => {
                if let Some(stream) = self.close(ticket) {
                    refuse(&self.context, &stream, Refusal::Hello(&reason));
                }
            }
            Step::Closed(from, error) => {
                self.close(ticket);
                // A restarted peer (a new process after a crash) may connect again.
                self.context.joined.lock().expect("the joined set is never poisoned").remove(&from);
                self.inbound.send(Inbound::Closed { from, error });
            }
            Step::HandedOver => {
                if let Some(accepted) = self.connections.remove(&ticket) {
                    let _ = self.epoll.delete(&accepted.stream);
                    let Phase::Ready { from, decoder, .. } = accepted.phase else {
                        unreachable!("handed over when ready")
                    };
                    // From now on the processing thread reads the connection
                    // itself, when it looks (see `receive`).
                    self.inbound.send(Inbound::Stream(Handover { from, stream: accepted.stream, decoder }));
                }
            }
        }
    }
}

/// Reads what there is of a hello; the peer once it has passed (answered,
/// marked joined), or why it is refused.
fn hello_step(
    stream: &mut TcpStream,
    bytes: &mut [u8; HELLO_LEN],
    filled: &mut usize,
    context: &AcceptContext,
) -> Result<Option<MachineId>, String> {
    loop {
        // The header alone first, so that a peer of another protocol
        // version is told at once, whatever the length of its hello.
        let until = if *filled < HELLO_HEADER_LEN { HELLO_HEADER_LEN } else { HELLO_LEN };
        match stream.read(&mut bytes[*filled..until]) {
            Ok(0) => {
                return Err(format!("no whole hello: the connection closed after {filled} of {HELLO_LEN} bytes"));
            }
            Ok(n) => *filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(error) => {
                return Err(format!("no hello within {} s ({error})", context.hello_timeout.as_secs_f64()));
            }
        }
        if *filled == HELLO_HEADER_LEN {
            let header: &[u8; HELLO_HEADER_LEN] = bytes[..HELLO_HEADER_LEN].try_into().expect("the header's length");
            Hello::check_header(header).map_err(|e| e.to_string())?;
        }
        if *filled == HELLO_LEN {
            let hello = Hello::decode(bytes).map_err(|e| e.to_string())?;
            return hello_of(stream, hello, context).map(Some);
        }
    }
}

/// Reads a connection whose hello passed until its ready message, passing
/// on the frames that came with it.
fn ready_step(
    stream: &mut TcpStream,
    from: MachineId,
    ready: &mut [u8; READY_LEN],
    ready_len: &mut usize,
    decoder: &mut FrameDecoder,
    buffer: &mut [u8],
    inbound: &Teller,
) -> Step {
    loop {
        match stream.read(buffer) {
            Ok(0) => {
                let error = if *ready_len < READY_LEN {
                    Some(format!("the connection closed before its ready message ({ready_len} of {READY_LEN} bytes)"))
                } else {
                    (decoder.pending() > 0)
                        .then(|| format!("the stream ended inside a frame ({} bytes)", decoder.pending()))
                };
                return Step::Closed(from, error);
            }
            Ok(n) => {
                let mut bytes = &buffer[..n];
                let take = (READY_LEN - *ready_len).min(bytes.len());
                ready[*ready_len..*ready_len + take].copy_from_slice(&bytes[..take]);
                *ready_len += take;
                bytes = &bytes[take..];
                if take > 0 && *ready_len == READY_LEN {
                    inbound.send(Inbound::Ready { from, at_us: wire::decode_ready(*ready) });
                }
                decoder.feed(bytes, |stamp| inbound.send(Inbound::Message { from, stamp }));
                if *ready_len == READY_LEN {
                    return Step::HandedOver;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(error) => return Step::Closed(from, Some(error.to_string())),
        }
    }
}

/// Why a connection was refused.
enum Refusal<'a> {
    /// It waited longest for its hello when newer connections came.
    Evicted,
    /// Its hello was missing or wrong; says how.
    Hello(&'a str),
    /// The machine could not serve it; says why.
    Resources(&'a str),
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
        Refusal::Evicted => (
            "it sent no hello while newer connections came (too many waiting at once)",
            context.refused_busy.fetch_add(1, Ordering::SeqCst) + 1,
        ),
        Refusal::Hello(reason) | Refusal::Resources(reason) => {
            (reason, total - context.refused_busy.load(Ordering::SeqCst))
        }
    };
    if of_kind <= 10 || of_kind.is_power_of_two() {
        crate::note!(
            "machine {}: refused a connection from {address}: {reason} ({total} refused so far)",
            context.hello.machine
        );
    }
}

/// Judges the connector's hello and answers it; returns the peer. A peer is
/// marked joined only once its answer is written, so a connection that fails
/// before that never keeps the real peer out.
fn hello_of(stream: &mut TcpStream, hello: Hello, context: &AcceptContext) -> Result<MachineId, String> {
    let ours = &context.hello;
    let (id, n_machines) = (ours.machine, ours.n_machines);
    hello.check(ours, |peer| peer != id && (1..=n_machines).contains(&peer)).map_err(|e| e.to_string())?;
    let mut joined = context.joined.lock().expect("the joined set is never poisoned");
    if joined.contains(&hello.machine) {
        return Err(format!("machine {} is already connected", hello.machine));
    }
    // A fresh connection's send buffer is empty: the answer goes whole.
    stream.write_all(&ours.encode()).map_err(|e| format!("cannot answer the hello ({e})"))?;
    joined.insert(hello.machine);
    Ok(hello.machine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_slots_grow_with_the_peers() {
        assert_eq!(hello_slots(3), 32);
        assert_eq!(hello_slots(17), 32);
        assert_eq!(hello_slots(64), 126);
        assert_eq!(hello_slots(100), 198);
    }
}
