//! The receiving side of a machine: the acceptor, the hello of every
//! accepted connection, and one short-lived reader thread per connection
//! that checks its hello and reads its ready message, then hands the
//! connection to the processing thread (`receive`), which reads its frames.
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

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clocklab_model::wire::{self, FrameCodec, FrameDecoder, Hello, READY_LEN};
use clocklab_model::{MachineId, Stamp};
use crossbeam_channel::Sender;

use crate::hello::read_hello;
pub use crate::receive::Handover;

/// How long an accepted connection has, in all, to deliver its whole hello.
/// A per-read timeout would not do: a sender dripping one byte at a time
/// would keep a reader thread forever.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// The fewest hello slots a machine has, however few its peers.
const MIN_HELLO_SLOTS: usize = 32;

/// The stack of a reader, connector or outbox thread: it holds a 4 KiB
/// buffer and a few small values, so a run of a hundred machines, with a
/// reader thread per peer each, stays far from the memory that the default
/// 2 MiB stacks would reserve.
pub(crate) const THREAD_STACK_BYTES: usize = 256 * 1024;

/// How many accepted connections of a run of `n_machines` may wait for
/// their hello at once: twice the peers, and at least [`MIN_HELLO_SLOTS`].
pub(crate) fn hello_slots(n_machines: u32) -> usize {
    MIN_HELLO_SLOTS.max(2 * n_machines.saturating_sub(1) as usize)
}

/// What the reader threads (and, once it has a connection, the processing
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
    /// Connections waiting for their hello, oldest first, by ticket, with a
    /// handle to close them.
    pub(crate) pending: Mutex<VecDeque<(u64, TcpStream)>>,
    /// The next connection's ticket.
    pub(crate) next_ticket: AtomicU64,
    /// Connections refused so far (a bad hello, evicted, or no thread for it).
    pub(crate) refused_connections: AtomicUsize,
    /// Of those, the ones evicted because newer connections came.
    pub(crate) refused_busy: AtomicUsize,
}

impl AcceptContext {
    /// A context for this machine's `hello`.
    pub(crate) fn new(hello: Hello, codec: FrameCodec, hello_timeout: Duration) -> AcceptContext {
        AcceptContext {
            slots: hello_slots(hello.n_machines),
            hello,
            codec,
            hello_timeout,
            joined: Mutex::new(BTreeSet::new()),
            pending: Mutex::new(VecDeque::new()),
            next_ticket: AtomicU64::new(0),
            refused_connections: AtomicUsize::new(0),
            refused_busy: AtomicUsize::new(0),
        }
    }

    /// Takes connection `ticket` off the waiting list; whether it was still
    /// on it (not evicted).
    fn leave(&self, ticket: u64) -> bool {
        let mut pending = self.pending.lock().expect("the waiting list is never poisoned");
        match pending.iter().position(|(waiting, _)| *waiting == ticket) {
            Some(idx) => {
                pending.remove(idx);
                true
            }
            None => false,
        }
    }
}

/// Accepts connections for the life of the process, one reader thread each.
pub(crate) fn spawn_acceptor(
    listener: TcpListener,
    context: Arc<AcceptContext>,
    inbound: Sender<Inbound>,
) -> io::Result<()> {
    let id = context.hello.machine;
    std::thread::Builder::new().name(format!("machine-{id}-accept")).stack_size(THREAD_STACK_BYTES).spawn(
        move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => admit(&context, stream, &inbound),
                    // A failed accept (a peer that reset before we took it, or
                    // no file descriptors left) concerns that connection only.
                    Err(error) => {
                        crate::note!("machine {id}: accept failed: {error}");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        },
    )?;
    Ok(())
}

/// Gives an accepted connection a hello slot (evicting the connection that
/// has waited longest if every slot is taken) and a reader thread.
fn admit(context: &Arc<AcceptContext>, stream: TcpStream, inbound: &Sender<Inbound>) {
    let id = context.hello.machine;
    let ticket = context.next_ticket.fetch_add(1, Ordering::SeqCst);
    let handle = match stream.try_clone() {
        Ok(handle) => handle,
        Err(error) => {
            refuse(context, &stream, Refusal::Resources(&format!("cannot keep it ({error})")));
            return;
        }
    };
    {
        let mut pending = context.pending.lock().expect("the waiting list is never poisoned");
        if pending.len() >= context.slots
            && let Some((_, oldest)) = pending.pop_front()
        {
            // Its reader sees the connection end and reports the eviction.
            let _ = oldest.shutdown(Shutdown::Both);
        }
        pending.push_back((ticket, handle));
    }
    let reader_context = Arc::clone(context);
    let inbound = inbound.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("machine-{id}-reader"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || serve_connection(stream, ticket, &reader_context, &inbound));
    if let Err(error) = spawned {
        context.leave(ticket);
        context.refused_connections.fetch_add(1, Ordering::SeqCst);
        crate::note!(
            "machine {id}: cannot start a thread for a new connection: {error}; the system's limit on threads, \
             processes or memory is reached (ulimit -u, ulimit -v, /proc/sys/kernel/threads-max): run fewer machines \
             at once"
        );
    }
}

/// Checks an accepted connection's hello and answers it, then reads its
/// ready message and its frames until the peer closes.
fn serve_connection(mut stream: TcpStream, ticket: u64, context: &AcceptContext, inbound: &Sender<Inbound>) {
    let hello = read_hello(&mut stream, Instant::now() + context.hello_timeout);
    if !context.leave(ticket) {
        refuse(context, &stream, Refusal::Evicted);
        return;
    }
    let from = match hello_of(&mut stream, hello, context) {
        Ok(from) => from,
        Err(reason) => {
            refuse(context, &stream, Refusal::Hello(&reason));
            return;
        }
    };
    if inbound.send(Inbound::Joined { from }).is_err() {
        return;
    }
    let mut decoder = FrameDecoder::new(context.codec);
    let mut ready = [0u8; READY_LEN];
    let mut ready_len = 0;
    let mut buffer = [0u8; 4096];
    let error = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break None,
            Ok(n) => {
                let mut bytes = &buffer[..n];
                if ready_len < READY_LEN {
                    let take = (READY_LEN - ready_len).min(bytes.len());
                    ready[ready_len..ready_len + take].copy_from_slice(&bytes[..take]);
                    ready_len += take;
                    bytes = &bytes[take..];
                    if ready_len == READY_LEN
                        && inbound.send(Inbound::Ready { from, at_us: wire::decode_ready(ready) }).is_err()
                    {
                        return;
                    }
                }
                let mut gone = false;
                decoder.feed(bytes, |stamp| gone |= inbound.send(Inbound::Message { from, stamp }).is_err());
                if gone {
                    // The processing thread has finished: nobody reads any more.
                    return;
                }
                if ready_len == READY_LEN {
                    // From now on the processing thread reads the connection
                    // itself, when it looks (see `receive`).
                    let _ = inbound.send(Inbound::Stream(Handover { from, stream, decoder }));
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => break Some(error.to_string()),
        }
    };
    let error = error.or_else(|| {
        if ready_len < READY_LEN {
            Some(format!("the connection closed before its ready message ({ready_len} of {READY_LEN} bytes)"))
        } else {
            (decoder.pending() > 0).then(|| format!("the stream ended inside a frame ({} bytes)", decoder.pending()))
        }
    });
    // A restarted peer (a new process after a crash) may connect again.
    context.joined.lock().expect("the joined set is never poisoned").remove(&from);
    let _ = inbound.send(Inbound::Closed { from, error });
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
fn hello_of(
    stream: &mut TcpStream,
    hello: io::Result<Result<Hello, wire::HelloError>>,
    context: &AcceptContext,
) -> Result<MachineId, String> {
    let hello = hello
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => format!("no whole hello: {e}"),
            _ => format!("no hello within {} s ({e})", context.hello_timeout.as_secs_f64()),
        })?
        .map_err(|e| e.to_string())?;
    let ours = &context.hello;
    let (id, n_machines) = (ours.machine, ours.n_machines);
    hello.check(ours, |peer| peer != id && (1..=n_machines).contains(&peer)).map_err(|e| e.to_string())?;
    let mut joined = context.joined.lock().expect("the joined set is never poisoned");
    if joined.contains(&hello.machine) {
        return Err(format!("machine {} is already connected", hello.machine));
    }
    stream.write_all(&ours.encode()).map_err(|e| format!("cannot answer the hello ({e})"))?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
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
