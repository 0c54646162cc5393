//! The receiving side of a ticking machine: the connections its peers send
//! on, read by the processing thread itself when it looks (at every tick, and
//! when bytes arrive between ticks, at most every
//! [`crate::node::ABSORB_INTERVAL`]), through one epoll set.
//!
//! A reader thread per connection woke once per arriving message, and each
//! wake-up was a context switch and two system calls; the processing thread
//! wakes anyway to tick, and one `epoll_wait` then tells it which
//! connections have bytes, so a message costs no wake-up at all. A
//! connection comes here once its hello passed and its ready message was
//! read (see `accept`), with what it had already decoded.
//!
//! Each look reads at most one buffer from each connection that has bytes,
//! so a peer that floods cannot keep the processing thread from its
//! schedule: what it sends past that waits in the kernel, and TCP's flow
//! control slows it down.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use clocklab_model::MachineId;
use clocklab_model::wire::FrameDecoder;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::accept::{AcceptContext, Inbound};

/// The most bytes one look reads from one connection.
const READ_BYTES: usize = 64 * 1024;

/// The most connections one `epoll_wait` reports.
const EVENTS_MAX: usize = 256;

/// A peer's connection to this machine, handed over by the acceptor
/// after the hello and the ready message.
#[derive(Debug)]
pub struct Handover {
    /// The peer.
    pub(crate) from: MachineId,
    /// The connection.
    pub(crate) stream: TcpStream,
    /// The frame decoder, holding the start of a frame that the reader
    /// thread had begun.
    pub(crate) decoder: FrameDecoder,
}

/// One connection being read.
#[derive(Debug)]
struct Connection {
    from: MachineId,
    stream: TcpStream,
    decoder: FrameDecoder,
}

/// Every connection the processing thread reads.
#[derive(Debug)]
pub(crate) struct Receivers {
    epoll: Epoll,
    /// By token (the index), the connections; a closed one leaves a hole,
    /// filled by the next.
    connections: Vec<Option<Connection>>,
    ready: Vec<EpollEvent>,
    buffer: Box<[u8]>,
    /// Where a closed connection's peer is forgotten, so that a restarted
    /// peer may connect again.
    context: Arc<AcceptContext>,
}

impl Receivers {
    /// An empty set.
    pub(crate) fn new(context: Arc<AcceptContext>) -> io::Result<Receivers> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        Ok(Receivers {
            epoll,
            connections: Vec::new(),
            ready: vec![EpollEvent::empty(); EVENTS_MAX],
            buffer: vec![0; READ_BYTES].into_boxed_slice(),
            context,
        })
    }

    /// Starts reading `handover`'s connection; if it cannot be read here, it
    /// is closed at once (its end goes to `events`).
    pub(crate) fn add(&mut self, handover: Handover, events: &mut Vec<Inbound>) {
        let Handover { from, stream, decoder } = handover;
        let slot = self.connections.iter().position(Option::is_none).unwrap_or(self.connections.len());
        let registered = stream.set_nonblocking(true).and_then(|()| {
            self.epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, slot as u64))?;
            Ok(())
        });
        match registered {
            Ok(()) => {
                let connection = Some(Connection { from, stream, decoder });
                if slot == self.connections.len() {
                    self.connections.push(connection);
                } else {
                    self.connections[slot] = connection;
                }
            }
            Err(error) => {
                self.forget(from);
                events.push(Inbound::Closed { from, error: Some(format!("cannot read the connection ({error})")) });
            }
        }
    }

    /// Reads what has arrived, one buffer at most from each connection,
    /// waiting up to `timeout` for something to arrive; every message, and
    /// every connection that ended, goes to `events`.
    pub(crate) fn read(&mut self, timeout: Duration, events: &mut Vec<Inbound>) {
        if self.connections.iter().all(Option::is_none) {
            if !timeout.is_zero() {
                std::thread::sleep(timeout);
            }
            return;
        }
        let timeout_ms = u16::try_from(timeout.as_millis().saturating_add(u128::from(!timeout.is_zero())));
        let timeout = EpollTimeout::from(timeout_ms.unwrap_or(u16::MAX));
        let ready = match self.epoll.wait(&mut self.ready, timeout) {
            Ok(ready) => ready,
            // A signal: the caller looks again soon.
            Err(_) => return,
        };
        for idx in 0..ready {
            let slot = self.ready[idx].data() as usize;
            let Some(connection) = self.connections.get_mut(slot).and_then(Option::as_mut) else { continue };
            let from = connection.from;
            let ended = match (&connection.stream).read(&mut self.buffer) {
                Ok(0) => Some(
                    (connection.decoder.pending() > 0)
                        .then(|| format!("the stream ended inside a frame ({} bytes)", connection.decoder.pending())),
                ),
                Ok(n) => {
                    connection.decoder.feed(&self.buffer[..n], |stamp| events.push(Inbound::Message { from, stamp }));
                    None
                }
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => None,
                Err(error) => Some(Some(error.to_string())),
            };
            if let Some(error) = ended {
                if let Some(connection) = self.connections[slot].take() {
                    let _ = self.epoll.delete(&connection.stream);
                }
                self.forget(from);
                events.push(Inbound::Closed { from, error });
            }
        }
    }

    /// The epoll set, to wait for bytes together with other things; `None`
    /// when there is no connection to read.
    pub(crate) fn ready_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.connections.iter().any(Option::is_some).then(|| self.epoll.0.as_fd())
    }

    /// A closed connection's peer may connect again (a restarted peer).
    fn forget(&self, from: MachineId) {
        self.context.joined.lock().expect("the joined set is never poisoned").remove(&from);
    }
}
