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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clocklab_model::MachineId;
use clocklab_model::wire::{FrameDecoder, HELLO_LEN, Hello, TOKEN_LEN};
use crossbeam_channel::Sender;

use crate::NetError;

/// How long a connector waits between two attempts while a peer is not up yet.
const CONNECT_RETRY: Duration = Duration::from_millis(20);

/// What the reader threads tell the processing thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A peer's connection passed its hello.
    Joined {
        /// The peer.
        from: MachineId,
    },
    /// A clock frame arrived.
    Message {
        /// The sender.
        from: MachineId,
        /// The clock it carried.
        clock: u64,
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
    pub(crate) id: MachineId,
    pub(crate) n_machines: u32,
    pub(crate) token: [u8; TOKEN_LEN],
    pub(crate) hello_timeout: Duration,
    /// Peers whose connection passed its hello: a second one is refused.
    pub(crate) joined: Mutex<BTreeSet<MachineId>>,
}

/// Accepts connections for the life of the process, one thread each.
pub(crate) fn spawn_acceptor(listener: TcpListener, context: Arc<AcceptContext>, inbound: Sender<Inbound>) {
    let id = context.id;
    std::thread::Builder::new()
        .name(format!("machine-{id}-accept"))
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
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
    let id = context.id;
    let address = stream.peer_addr().map_or_else(|_| "an unknown address".to_string(), |a| a.to_string());
    let from = match accept_hello(&mut stream, context) {
        Ok(from) => from,
        Err(reason) => {
            eprintln!("machine {id}: refused a connection from {address}: {reason}");
            return;
        }
    };
    if inbound.send(Inbound::Joined { from }).is_err() {
        return;
    }
    let mut decoder = FrameDecoder::new();
    let mut buffer = [0u8; 4096];
    let error = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break None,
            Ok(n) => {
                let mut gone = false;
                decoder.feed(&buffer[..n], |clock| gone |= inbound.send(Inbound::Message { from, clock }).is_err());
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

/// Reads and checks the connector's hello and answers it; returns the peer.
fn accept_hello(stream: &mut TcpStream, context: &AcceptContext) -> Result<MachineId, String> {
    stream.set_read_timeout(Some(context.hello_timeout)).map_err(|e| e.to_string())?;
    let mut bytes = [0u8; HELLO_LEN];
    stream.read_exact(&mut bytes).map_err(|e| format!("no hello ({e})"))?;
    let hello = Hello::decode(&bytes).map_err(|e| e.to_string())?;
    let (id, n_machines) = (context.id, context.n_machines);
    hello.check(&context.token, |peer| peer != id && (1..=n_machines).contains(&peer)).map_err(|e| e.to_string())?;
    {
        let mut joined = context.joined.lock().expect("the joined set is never poisoned");
        if !joined.insert(hello.machine) {
            return Err(format!("machine {} is already connected", hello.machine));
        }
    }
    stream.write_all(&Hello::new(id, context.token).encode()).map_err(|e| format!("cannot answer the hello ({e})"))?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(hello.machine)
}

/// Connects to `peer` at `address`, retrying while it is not up, until
/// `deadline`; exchanges hellos and returns the stream for sending.
pub(crate) fn connect_peer(
    id: MachineId,
    peer: MachineId,
    address: SocketAddr,
    token: &[u8; TOKEN_LEN],
    deadline: Instant,
) -> Result<TcpStream, NetError> {
    let timeout = |last_error: String| NetError::ConnectTimeout { peer, address, last_error };
    let mut stream = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timeout("no attempt finished in time".into()));
        }
        match TcpStream::connect_timeout(&address, remaining) {
            Ok(stream) => break stream,
            Err(error) => {
                if Instant::now() + CONNECT_RETRY >= deadline {
                    return Err(timeout(error.to_string()));
                }
                std::thread::sleep(CONNECT_RETRY);
            }
        }
    };
    let refused = |reason: String| NetError::HelloRefused { peer, address, reason };
    let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_nodelay(true).map_err(|e| refused(e.to_string()))?;
    stream.set_read_timeout(Some(remaining)).map_err(|e| refused(e.to_string()))?;
    stream.write_all(&Hello::new(id, *token).encode()).map_err(|e| refused(format!("cannot send the hello: {e}")))?;
    let mut bytes = [0u8; HELLO_LEN];
    stream.read_exact(&mut bytes).map_err(|e| {
        refused(format!("no answer to the hello ({e}); is it a machine of another run, with another token?"))
    })?;
    let hello = Hello::decode(&bytes).map_err(|e| refused(e.to_string()))?;
    hello.check(token, |answered| answered == peer).map_err(|e| refused(e.to_string()))?;
    stream.set_read_timeout(None).map_err(|e| refused(e.to_string()))?;
    Ok(stream)
}
