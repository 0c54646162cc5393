//! The sending side of a machine: the outbox, one thread that writes what
//! the processing thread queues for each peer, so that the processing thread
//! never writes to a socket and a peer that stops reading never holds up a
//! tick.
//!
//! **Queues.** Every peer has a queue of (due instant, frame), written in
//! order, each frame at its due instant or later, many frames to a write.
//! A frame is due when it is made, unless a network fault (latency, a
//! partition) holds it at the sender with a later instant; the queue keeps
//! frames in the order they were sent, as a TCP connection does, so a held
//! frame holds up the later ones. The connections are non-blocking: a peer whose socket is full waits
//! (the thread polls for it) while the others are written.
//!
//! **A peer that stops reading.** A queue holds at most [`SEND_QUEUE_MAX`]
//! frames, and a peer may take nothing for at most the stall limit
//! (`connect_timeout`, at least [`SEND_STALL_MIN`]). When either gives, the
//! peer is declared gone: its connection is closed, the processing thread
//! logs `Disconnected from machine <j>`, and every frame it did not get (the
//! one cut, those queued, every later send to it) is counted as unsent, per
//! peer. So every message a machine logs as sent is received by its peer
//! (`Processed` or `Unprocessed`), or counted unsent by the sender, or lost
//! with the kernel's buffers of a peer that died (a failed run, or a crash
//! the fault plan made).
//!
//! **A peer that restarts** (a crash in the fault plan) gets a new
//! connection: the processing thread hands it over ([`Outbox::reconnect`]),
//! what was still queued for the old incarnation is counted as unsent, and
//! the ready message then every later frame go to the new one.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clocklab_model::MachineId;
use clocklab_model::wire;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::NetError;
use crate::accept::THREAD_STACK_BYTES;
use crate::stop::Doorbell;

/// The most frames the outbox holds for one peer. A peer that reads keeps its
/// queue near empty; a full queue means the peer has stopped reading long
/// enough for its socket buffers to fill, and it is declared gone. 2^18 frames
/// are a quarter of a second of sends at a million ticks a second.
pub(crate) const SEND_QUEUE_MAX: usize = 1 << 18;

/// The shortest time a peer may take nothing before it is declared gone,
/// whatever `connect_timeout` says: a busy computer may not run a peer's
/// reader for a second or more.
pub(crate) const SEND_STALL_MIN: Duration = Duration::from_secs(2);

/// The most frames one write carries.
const FRAMES_PER_WRITE: usize = 512;

/// The longest the outbox sleeps in a poll without looking at its queue.
const POLL_MAX: Duration = Duration::from_millis(100);

/// What the processing thread hands the outbox.
#[derive(Debug)]
enum Outgoing {
    /// The ready message, to every peer: every connection of this machine
    /// was up at this instant (microseconds since the Unix epoch).
    Ready(i64),
    /// A new connection to a restarted peer: it replaces the old one.
    Reconnect {
        /// The peer.
        peer: MachineId,
        /// The connection, hellos exchanged.
        stream: TcpStream,
        /// When the connection was up (microseconds since the Unix epoch),
        /// for the ready message.
        at_us: i64,
    },
    /// The queues close: what is due after this instant is held at the end.
    Cutoff(Instant),
    /// The processing thread left frames in a queue that was empty (a
    /// peer's socket was full): the thread must write them.
    Kick,
    /// A frame to `to`, to be written at `due` or later.
    Frame {
        /// When it may leave.
        due: Instant,
        /// Its bytes, shared by every recipient.
        bytes: Arc<[u8]>,
        /// Its recipients.
        to: Vec<MachineId>,
    },
}

/// What the outbox tells the processing thread about one peer.
#[derive(Debug, Default)]
struct PeerShared {
    /// The peer was declared gone.
    gone: AtomicBool,
    /// How many times it was declared gone (once per incarnation at most).
    times_gone: AtomicU64,
    /// Why, for a person.
    reason: Mutex<Option<String>>,
    /// Frames never written whole to it.
    unsent: AtomicU64,
    /// How many times any peer was declared gone: shared by every peer, so
    /// that the processing thread sees at one glance that nothing changed.
    goings: Arc<AtomicU64>,
    /// The processing thread's doorbell: rung when the peer is declared gone.
    doorbell: Option<Doorbell>,
}

/// The processing thread's handle on the outbox.
#[derive(Debug)]
pub(crate) struct Outbox {
    items: Option<Sender<Outgoing>>,
    /// The queues, shared with the thread.
    lanes: Arc<Mutex<Lanes>>,
    /// Written to wake the thread out of a poll.
    wake: UnixStream,
    /// The thread is in a poll (or about to be): a new item must wake it.
    polling: Arc<AtomicBool>,
    /// The thread must stop at once, writing nothing more.
    aborting: Arc<AtomicBool>,
    peers: BTreeMap<MachineId, Arc<PeerShared>>,
    /// Peers whose being gone the processing thread has heard of.
    /// Per peer, how many of its goings the processing thread has heard of.
    reported: BTreeMap<MachineId, u64>,
    /// How many goings of any peer the processing thread has heard of.
    goings_heard: u64,
    goings: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Outbox {
    /// Starts the outbox of machine `machine` over the connections to its
    /// peers; a peer that takes nothing for `stall_limit` is declared gone.
    /// `peers` are every peer of the run; `streams` the connections up now
    /// (a restarted machine starts with none, and gets each as it comes up,
    /// [`Outbox::reconnect`]). A peer declared gone rings `doorbell`.
    pub(crate) fn start(
        machine: MachineId,
        peers: &[MachineId],
        streams: BTreeMap<MachineId, TcpStream>,
        stall_limit: Duration,
        doorbell: &Doorbell,
    ) -> Result<Outbox, NetError> {
        let socket = |source| NetError::Thread { what: "sending (its connections)".into(), source };
        let (wake, woken) = UnixStream::pair().map_err(socket)?;
        let goings = Arc::new(AtomicU64::new(0));
        wake.set_nonblocking(true).map_err(socket)?;
        woken.set_nonblocking(true).map_err(socket)?;
        let shared: BTreeMap<MachineId, Arc<PeerShared>> = peers
            .iter()
            .map(|&peer| {
                let doorbell = Some(doorbell.clone());
                (peer, Arc::new(PeerShared { goings: Arc::clone(&goings), doorbell, ..PeerShared::default() }))
            })
            .collect();
        let mut outs = Vec::new();
        for (peer, stream) in streams {
            stream.set_nonblocking(true).map_err(socket)?;
            let shared = Arc::clone(shared.get(&peer).expect("a stream goes to a peer of the run"));
            outs.push(PeerOut { peer, stream, queue: VecDeque::new(), offset: 0, blocked_since: None, shared });
        }
        let peers = shared;
        let (items, taken) = crossbeam_channel::unbounded();
        let polling = Arc::new(AtomicBool::new(false));
        let aborting = Arc::new(AtomicBool::new(false));
        let lanes = Arc::new(Mutex::new(Lanes { peers: outs, cutoff: None, items: 0 }));
        let mut thread = SendThread {
            lanes: Arc::clone(&lanes),
            shared: peers.clone(),
            items: taken,
            woken,
            polling: Arc::clone(&polling),
            aborting: Arc::clone(&aborting),
            stall_limit,
        };
        let thread = std::thread::Builder::new()
            .name(format!("machine-{machine}-send"))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || thread.run())
            .map_err(|source| NetError::Thread { what: "sending".into(), source })?;
        Ok(Outbox {
            items: Some(items),
            lanes,
            wake,
            polling,
            aborting,
            peers,
            reported: BTreeMap::new(),
            goings_heard: 0,
            goings,
            thread: Some(thread),
        })
    }

    fn push(&self, item: Outgoing) {
        if let Some(items) = &self.items {
            // Counted before it is sent, so that no frame written at once
            // overtakes it (see `send_now`).
            lock(&self.lanes).items += 1;
            if items.send(item).is_err() {
                lock(&self.lanes).items -= 1;
            }
            self.wake_up();
        }
    }

    /// Wakes the thread if it is in a poll; never blocks (a wake already
    /// pending is enough).
    fn wake_up(&self) {
        if self.polling.load(Ordering::SeqCst) {
            let _ = (&self.wake).write(&[1]);
        }
    }

    /// Queues the ready message for every peer.
    pub(crate) fn send_ready(&self, at_us: i64) {
        self.push(Outgoing::Ready(at_us));
    }

    /// Queues a frame for `to`, to leave at `due`.
    pub(crate) fn send_frame(&self, due: Instant, bytes: Arc<[u8]>, to: &[MachineId]) {
        self.push(Outgoing::Frame { due, bytes, to: to.to_vec() });
    }

    /// Sends a frame to `to` now: written on this thread, without waking
    /// the outbox thread, to each recipient whose queue is empty (one
    /// non-blocking write each); queued for the outbox thread otherwise (a
    /// frame ahead of it, a full socket), so that the order of the frames
    /// to a peer is always the order they were sent in.
    pub(crate) fn send_now(&self, frame: &[u8], to: impl Iterator<Item = MachineId>) {
        if self.items.is_none() {
            return;
        }
        let mut lanes = lock(&self.lanes);
        if lanes.items > 0 || lanes.cutoff.is_some() || self.aborting.load(Ordering::SeqCst) {
            drop(lanes);
            self.send_frame(Instant::now(), Arc::from(frame), &to.collect::<Vec<_>>());
            return;
        }
        let now = Instant::now();
        let mut shared_bytes: Option<Arc<[u8]>> = None;
        let mut bytes = || Arc::clone(shared_bytes.get_or_insert_with(|| Arc::from(frame)));
        let mut kick = false;
        for peer in to {
            let Some(out) = lanes.peers.iter_mut().find(|out| out.peer == peer) else { continue };
            if out.gone() {
                out.shared.unsent.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if !out.queue.is_empty() {
                // The outbox thread has work for this peer already: it
                // writes this frame after it.
                out.queue.push_back(Queued { due: now, bytes: bytes(), counts: true });
                continue;
            }
            match (&out.stream).write(frame) {
                Ok(n) if n == frame.len() => {}
                Ok(n) => {
                    out.queue.push_back(Queued { due: now, bytes: bytes(), counts: true });
                    out.offset = n;
                    kick = true;
                }
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                    out.queue.push_back(Queued { due: now, bytes: bytes(), counts: true });
                    out.blocked_since.get_or_insert(now);
                    kick = true;
                }
                Err(error) => {
                    out.queue.push_back(Queued { due: now, bytes: bytes(), counts: true });
                    out.declare_gone(format!("cannot send to it ({error})"));
                }
            }
        }
        drop(lanes);
        if kick {
            self.push(Outgoing::Kick);
        }
    }

    /// Hands over a new connection to `peer`, a restarted machine: from now
    /// on its frames go there, after the ready message (`at_us`).
    pub(crate) fn reconnect(&self, peer: MachineId, stream: TcpStream, at_us: i64) {
        self.push(Outgoing::Reconnect { peer, stream, at_us });
    }

    /// The peers declared gone since the last call, with why.
    pub(crate) fn newly_gone(&mut self) -> Vec<(MachineId, String)> {
        let mut gone = Vec::new();
        let goings = self.goings.load(Ordering::SeqCst);
        if goings == self.goings_heard {
            return gone;
        }
        self.goings_heard = goings;
        for (&peer, shared) in &self.peers {
            let times = shared.times_gone.load(Ordering::SeqCst);
            let heard = self.reported.entry(peer).or_insert(0);
            if shared.gone.load(Ordering::SeqCst) && times > *heard {
                *heard = times;
                let reason = shared.reason.lock().expect("a peer's reason is never poisoned").clone();
                gone.push((peer, reason.unwrap_or_else(|| "its connection failed".into())));
            }
        }
        gone
    }

    /// Closes the queues: the thread writes what they hold that is due by
    /// `cutoff` (each peer within its stall limit), keeps what is due later
    /// as held at the end ([`Outbox::held`]), ends every stream, so that each
    /// peer sees the end after the last frame, and exits.
    pub(crate) fn close(&mut self, cutoff: Instant) {
        if self.items.is_some() {
            self.push(Outgoing::Cutoff(cutoff));
        }
        self.items = None;
        self.wake_up();
    }

    /// Waits for the thread to finish, once closed (each peer it still
    /// writes to within its stall limit).
    pub(crate) fn finish(&mut self) {
        self.items = None;
        self.wake_up();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the thread at once, writing nothing more, and leaves the
    /// connections as they are (the machine crashed: its process is about to
    /// be killed, and its peers see them end then).
    pub(crate) fn halt(&self) {
        self.aborting.store(true, Ordering::SeqCst);
        self.polling.store(true, Ordering::SeqCst);
        self.wake_up();
    }

    /// Whether `peer` no longer reads what this machine sends: declared
    /// gone, never connected, or its end of the connection closed (its
    /// process ended, or it stopped reading this connection and closed it).
    /// A peer that only stopped sending still reads to the end of this
    /// machine's stream.
    pub(crate) fn peer_closed(&self, peer: MachineId) -> bool {
        let lanes = lock(&self.lanes);
        let Some(out) = lanes.peers.iter().find(|out| out.peer == peer) else { return true };
        if out.gone() {
            return true;
        }
        // The peer never writes on this connection after its hello: the end
        // of the stream (or a reset) is all a look without waiting can find.
        match out.stream.peek(&mut [0; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => !matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted),
        }
    }

    /// By peer, the frames that were never written whole so far.
    pub(crate) fn unsent(&self) -> BTreeMap<MachineId, u64> {
        self.peers
            .iter()
            .map(|(&peer, shared)| (peer, shared.unsent.load(Ordering::SeqCst)))
            .filter(|&(_, unsent)| unsent > 0)
            .collect()
    }

    /// Stops the thread at once, writing nothing more (a run called off
    /// before it ticked): every connection is closed.
    pub(crate) fn abort(mut self) {
        self.aborting.store(true, Ordering::SeqCst);
        self.polling.store(true, Ordering::SeqCst);
        self.items = None;
        self.wake_up();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One frame (or the ready message) waiting for a peer.
#[derive(Debug)]
struct Queued {
    due: Instant,
    bytes: Arc<[u8]>,
    /// A frame (counted as unsent if it never goes), not the ready message.
    counts: bool,
}

/// One peer, as the outbox thread sees it.
#[derive(Debug)]
struct PeerOut {
    peer: MachineId,
    stream: TcpStream,
    queue: VecDeque<Queued>,
    /// Bytes of the front of the queue already written.
    offset: usize,
    /// Since when the peer's socket has been full with frames waiting.
    blocked_since: Option<Instant>,
    shared: Arc<PeerShared>,
}

/// What a round of writes to a peer did.
enum Wrote {
    /// Everything due is written.
    All,
    /// The socket is full: more is due.
    Blocked,
    /// The connection failed.
    Failed(io::Error),
}

impl PeerOut {
    fn gone(&self) -> bool {
        self.shared.gone.load(Ordering::SeqCst)
    }

    /// Whether a frame is due by `now`.
    fn has_due(&self, now: Instant) -> bool {
        !self.gone() && self.queue.front().is_some_and(|queued| queued.due <= now)
    }

    /// Writes what is due by `now`, many frames to a write, until the socket
    /// is full or nothing is due.
    fn write_due(&mut self, now: Instant) -> Wrote {
        let mut progress = false;
        loop {
            let slices: Vec<IoSlice<'_>> = self
                .queue
                .iter()
                .take_while(|queued| queued.due <= now)
                .take(FRAMES_PER_WRITE)
                .enumerate()
                .map(|(idx, queued)| IoSlice::new(if idx == 0 { &queued.bytes[self.offset..] } else { &queued.bytes }))
                .collect();
            if slices.is_empty() {
                if progress {
                    self.blocked_since = None;
                }
                return Wrote::All;
            }
            match self.stream.write_vectored(&slices) {
                Ok(0) => return Wrote::Failed(io::Error::new(io::ErrorKind::WriteZero, "the connection took nothing")),
                Ok(mut written) => {
                    progress = true;
                    while written > 0 {
                        let front = self.queue.front().expect("written bytes come from the queue");
                        let rest = front.bytes.len() - self.offset;
                        if written >= rest {
                            written -= rest;
                            self.queue.pop_front();
                            self.offset = 0;
                        } else {
                            self.offset += written;
                            written = 0;
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if progress {
                        self.blocked_since = None;
                    }
                    self.blocked_since.get_or_insert(now);
                    return Wrote::Blocked;
                }
                Err(error) => return Wrote::Failed(error),
            }
        }
    }

    /// Takes a new connection to the peer (a restarted machine): what was
    /// queued for the old one is counted as unsent; the ready message goes first.
    fn replace(&mut self, stream: TcpStream, at_us: i64) {
        if !self.gone() {
            let unsent = self.queue.iter().filter(|queued| queued.counts).count() as u64;
            self.shared.unsent.fetch_add(unsent, Ordering::SeqCst);
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        self.queue.clear();
        self.offset = 0;
        self.stream = stream;
        self.begin(at_us);
    }

    /// Starts over on the connection it has: an empty queue, then the ready
    /// message (`at_us`) first.
    fn begin(&mut self, at_us: i64) {
        if self.stream.set_nonblocking(true).is_err() {
            self.declare_gone("cannot use the new connection".into());
            return;
        }
        self.queue.clear();
        self.offset = 0;
        self.blocked_since = None;
        let ready = Arc::from(&wire::encode_ready(at_us)[..]);
        self.queue.push_back(Queued { due: Instant::now(), bytes: ready, counts: false });
        self.shared.gone.store(false, Ordering::SeqCst);
    }

    /// Declares the peer gone: counts every frame it did not get (the one
    /// cut included), closes the connection.
    fn declare_gone(&mut self, reason: String) {
        let unsent = self.queue.iter().filter(|queued| queued.counts).count() as u64;
        self.shared.unsent.fetch_add(unsent, Ordering::SeqCst);
        self.queue.clear();
        self.offset = 0;
        let _ = self.stream.shutdown(Shutdown::Both);
        *self.shared.reason.lock().expect("a peer's reason is never poisoned") = Some(reason);
        self.shared.times_gone.fetch_add(1, Ordering::SeqCst);
        self.shared.gone.store(true, Ordering::SeqCst);
        // Counted last: whoever sees the count sees the peer gone.
        self.shared.goings.fetch_add(1, Ordering::SeqCst);
        if let Some(doorbell) = &self.shared.doorbell {
            doorbell.ring();
        }
    }
}

/// The queues, which the outbox thread and (to write a frame at once) the
/// processing thread share.
#[derive(Debug)]
struct Lanes {
    peers: Vec<PeerOut>,
    /// Once the queues close: frames due after it are held at the end
    /// (their sender's timeline says so), not written.
    cutoff: Option<Instant>,
    /// Items sent to the thread and not yet taken: while there are any, no
    /// frame is written at once, since one of them may go first.
    items: usize,
}

/// Locks the queues; a panic of the other thread leaves them usable.
fn lock(lanes: &Mutex<Lanes>) -> std::sync::MutexGuard<'_, Lanes> {
    lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The outbox thread.
struct SendThread {
    lanes: Arc<Mutex<Lanes>>,
    /// Every peer's shared state, for one that connects late.
    shared: BTreeMap<MachineId, Arc<PeerShared>>,
    items: Receiver<Outgoing>,
    woken: UnixStream,
    polling: Arc<AtomicBool>,
    aborting: Arc<AtomicBool>,
    stall_limit: Duration,
}

impl Lanes {
    /// Puts an item in the queues of its recipients; a frame for a peer that
    /// is gone is counted as unsent.
    fn take(&mut self, item: Outgoing, shared: &BTreeMap<MachineId, Arc<PeerShared>>) {
        self.items = self.items.saturating_sub(1);
        let now = Instant::now();
        let (due, bytes, to, counts): (Instant, Arc<[u8]>, Option<Vec<MachineId>>, bool) = match item {
            Outgoing::Ready(at_us) => (now, Arc::from(&wire::encode_ready(at_us)[..]), None, false),
            Outgoing::Frame { due, bytes, to } => (due, bytes, Some(to), true),
            Outgoing::Reconnect { peer, stream, at_us } => {
                match self.peers.iter_mut().find(|out| out.peer == peer) {
                    Some(out) => out.replace(stream, at_us),
                    None => {
                        let Some(shared) = shared.get(&peer) else { return };
                        // A peer this incarnation had no connection to yet.
                        let mut out = PeerOut {
                            peer,
                            stream,
                            queue: VecDeque::new(),
                            offset: 0,
                            blocked_since: None,
                            shared: Arc::clone(shared),
                        };
                        out.begin(at_us);
                        self.peers.push(out);
                    }
                }
                return;
            }
            Outgoing::Cutoff(cutoff) => {
                self.cutoff = Some(cutoff);
                self.hold_past_cutoff();
                return;
            }
            Outgoing::Kick => return,
        };
        if self.cutoff.is_some_and(|cutoff| due > cutoff) {
            return;
        }
        for peer in &mut self.peers {
            if to.as_ref().is_some_and(|to| !to.contains(&peer.peer)) {
                continue;
            }
            if peer.gone() {
                peer.shared.unsent.fetch_add(u64::from(counts), Ordering::SeqCst);
            } else {
                peer.queue.push_back(Queued { due, bytes: Arc::clone(&bytes), counts });
            }
        }
    }

    /// Takes the frames due after the cutoff off every queue: they are held
    /// at the end (their sender's timeline logs them). A frame already begun
    /// is written whole.
    fn hold_past_cutoff(&mut self) {
        let Some(cutoff) = self.cutoff else { return };
        for peer in &mut self.peers {
            let keep_first = usize::from(peer.offset > 0);
            let mut idx = 0;
            peer.queue.retain(|queued| {
                let keep = idx < keep_first || !queued.counts || queued.due <= cutoff;
                idx += 1;
                keep
            });
        }
    }

    /// Writes what is due to every peer; returns the connections of the
    /// peers whose socket is full, with since when, to wait for.
    fn write_due(&mut self, stall_limit: Duration) -> Vec<(TcpStream, Option<Instant>)> {
        let now = Instant::now();
        let mut blocked = Vec::new();
        for peer in &mut self.peers {
            if !peer.has_due(now) {
                continue;
            }
            let wrote = peer.write_due(now);
            if let Wrote::Failed(error) = &wrote {
                peer.declare_gone(format!("cannot send to it ({error})"));
            }
            let stalled = peer.blocked_since.is_some_and(|since| since.elapsed() >= stall_limit);
            // Frames a fault delays wait their turn; only a peer that
            // takes nothing while frames are due is in trouble.
            if peer.queue.len() > SEND_QUEUE_MAX && peer.blocked_since.is_some() {
                peer.declare_gone(format!(
                    "it read nothing while {SEND_QUEUE_MAX} messages waited for it (its connection is unwritable)"
                ));
            } else if stalled {
                peer.declare_gone(format!(
                    "it took nothing for {} s (its connection is unwritable)",
                    stall_limit.as_secs_f64()
                ));
            }
            if matches!(wrote, Wrote::Blocked) && !peer.gone() {
                match peer.stream.try_clone() {
                    Ok(stream) => blocked.push((stream, peer.blocked_since)),
                    Err(error) => peer.declare_gone(format!("cannot wait for its connection ({error})")),
                }
            }
        }
        blocked
    }
}

impl SendThread {
    /// Takes every item waiting; returns false once the queues are closed.
    fn take_waiting(&mut self) -> bool {
        loop {
            match self.items.try_recv() {
                Ok(item) => lock(&self.lanes).take(item, &self.shared),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn run(&mut self) {
        let mut open = true;
        loop {
            if self.aborting.load(Ordering::SeqCst) {
                return;
            }
            // Once the queues are closed, what is left still leaves at its
            // due instant (a frame a fault delays past the end arrives as
            // late as it would have), then the streams end.
            let now = Instant::now();
            let (any_due, next_due) = {
                let lanes = lock(&self.lanes);
                let any_due = lanes.peers.iter().any(|peer| peer.has_due(now));
                let next_due =
                    lanes.peers.iter().filter(|peer| !peer.gone()).filter_map(|p| p.queue.front()).map(|q| q.due).min();
                (any_due, next_due)
            };
            if !any_due {
                if !open {
                    match next_due {
                        None => break,
                        Some(due) => {
                            std::thread::sleep(due.saturating_duration_since(now).min(POLL_MAX));
                            continue;
                        }
                    }
                }
                // A queue the processing thread fills while this thread
                // waits has a frame ahead (so it is this thread's already),
                // or the processing thread sends a `Kick`.
                let item = match next_due {
                    Some(due) => self.items.recv_deadline(due.min(now + POLL_MAX)),
                    None => self.items.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match item {
                    Ok(item) => lock(&self.lanes).take(item, &self.shared),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
            open &= self.take_waiting();
            let blocked = lock(&self.lanes).write_due(self.stall_limit);
            if !blocked.is_empty() {
                self.wait_writable(&blocked);
            }
        }
        // The end: every peer sees the end of the stream after the last frame.
        for peer in &lock(&self.lanes).peers {
            if !peer.gone() {
                let _ = peer.stream.shutdown(Shutdown::Write);
            }
        }
    }

    /// Waits until a blocked peer can take more, a new item comes, or a
    /// stall limit runs out.
    fn wait_writable(&mut self, blocked: &[(TcpStream, Option<Instant>)]) {
        self.polling.store(true, Ordering::SeqCst);
        if self.items.is_empty() && !self.aborting.load(Ordering::SeqCst) {
            let until_stall = blocked
                .iter()
                .filter_map(|(_, since)| *since)
                .map(|since| self.stall_limit.saturating_sub(since.elapsed()))
                .min()
                .unwrap_or(POLL_MAX);
            let timeout_ms = u16::try_from(until_stall.min(POLL_MAX).as_millis() + 1).unwrap_or(u16::MAX);
            let mut fds: Vec<PollFd<'_>> =
                blocked.iter().map(|(stream, _)| PollFd::new(stream.as_fd(), PollFlags::POLLOUT)).collect();
            fds.push(PollFd::new(self.woken.as_fd(), PollFlags::POLLIN));
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(timeout_ms));
        }
        self.polling.store(false, Ordering::SeqCst);
        let mut drained = [0u8; 64];
        while matches!((&self.woken).read(&mut drained), Ok(n) if n > 0) {}
    }
}
