//! One machine's life: bind, connect, tick on the absolute schedule, drain.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clocklab_log::{Event, LogFormat, LogWriter, Record};
use clocklab_model::seed::{self, ModelRng};
use clocklab_model::wire::{TOKEN_LEN, encode_clock};
use clocklab_model::{Machine, MachineId, MachineParams, TickEvent, schedule};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};

use crate::NetError;
use crate::lateness::{LatenessRecorder, LatenessSummary};
use crate::link::{self, AcceptContext, Inbound};

/// How many arrived messages may wait between the reader threads and the
/// processing thread. When it is full the readers block, and TCP's flow
/// control slows the sender down instead of this process growing without end.
const INBOUND_CAPACITY: usize = 1 << 16;

/// Everything one machine needs to run.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Its number, `1..=n_machines`.
    pub id: MachineId,
    /// How many machines the run has.
    pub n_machines: u32,
    /// Rates are drawn from `1..=max_clock_rate`.
    pub max_clock_rate: u32,
    /// Event draws are from `1..=max_event_num`.
    pub max_event_num: u32,
    /// The machine's seed: its rate is the first draw, its events follow.
    pub seed: u64,
    /// Where to listen; port 0 lets the system pick a free port.
    pub listen: SocketAddr,
    /// The host name the logs show for this machine.
    pub host: String,
    /// The run's token: only connections that present it are accepted.
    pub token: [u8; TOKEN_LEN],
    /// How long to wait for every peer to be connected, and at the end for
    /// every peer to finish sending.
    pub connect_timeout: Duration,
    /// A peer whose connection ends cleanly less than this before the
    /// deadline stopped on schedule, not early: it is not logged as
    /// `Disconnected`. Zero when a start barrier gives every machine the same
    /// deadline; machines started by hand start a few milliseconds apart.
    pub end_grace: Duration,
    /// The log files to write, one per format. They must not exist yet.
    pub logs: Vec<(LogFormat, PathBuf)>,
}

/// A machine listening on its port, its log opened, waiting for its peers'
/// addresses.
#[derive(Debug)]
pub struct Bound {
    config: NodeConfig,
    machine: Machine,
    rng: ModelRng,
    address: SocketAddr,
    logs: Logs,
    inbound: Receiver<Inbound>,
}

/// A machine with every connection up, ready to tick.
#[derive(Debug)]
pub struct Connected {
    bound: Bound,
    outgoing: BTreeMap<MachineId, TcpStream>,
    /// What arrived while connecting: replayed before the first tick.
    early: VecDeque<Inbound>,
}

/// What a finished machine reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Ticks run.
    pub ticks: u64,
    /// Messages sent (one per recipient).
    pub sent: u64,
    /// Messages processed by a tick.
    pub processed: u64,
    /// Messages logged as unprocessed at the end.
    pub unprocessed: u64,
    /// Whether a stop signal ended ticking before the deadline.
    pub stopped_early: bool,
    /// Peers whose connection ended before the deadline.
    pub disconnected: Vec<MachineId>,
    /// Sends that could not be written (the peer was gone).
    pub send_errors: u64,
    /// How late the ticks ran.
    pub lateness: LatenessSummary,
}

/// Starts a machine: draws its rate, opens its log, binds its port and starts
/// accepting peers, then writes `Initialized`.
pub fn bind(config: NodeConfig) -> Result<Bound, NetError> {
    let (rng, rate) = seed::start_machine(config.seed, config.max_clock_rate);
    let params =
        MachineParams { id: config.id, n_machines: config.n_machines, rate, max_event_num: config.max_event_num };
    let machine = Machine::new(params).map_err(NetError::Params)?;
    let mut logs = Logs::create(config.id, &config.logs)?;
    let listener =
        TcpListener::bind(config.listen).map_err(|source| NetError::Bind { address: config.listen, source })?;
    let address = listener.local_addr().map_err(|source| NetError::Bind { address: config.listen, source })?;
    let (sender, inbound) = crossbeam_channel::bounded(INBOUND_CAPACITY);
    let context = AcceptContext {
        id: config.id,
        n_machines: config.n_machines,
        token: config.token,
        hello_timeout: config.connect_timeout,
        joined: Mutex::new(BTreeSet::new()),
    };
    link::spawn_acceptor(listener, Arc::new(context), sender);
    let event = Event::Initialized { host: Some(config.host.clone()), port: Some(address.port()), rate };
    logs.write(event, 0, 0)?;
    Ok(Bound { config, machine, rng, address, logs, inbound })
}

impl Bound {
    /// The address it listens on (with the port the system picked).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its drawn clock rate.
    pub fn rate(&self) -> u32 {
        self.machine.params().rate
    }

    /// Connects to every peer (retrying while they come up) and waits until
    /// every peer has connected back, within the connect timeout; then writes
    /// one `Connected` line per peer.
    pub fn connect(mut self, peers: &BTreeMap<MachineId, SocketAddr>) -> Result<Connected, NetError> {
        let id = self.config.id;
        let expected: BTreeSet<MachineId> = (1..=self.config.n_machines).filter(|&peer| peer != id).collect();
        let given: BTreeSet<MachineId> = peers.keys().copied().collect();
        if given != expected {
            return Err(NetError::Peers {
                expected: expected.into_iter().collect(),
                given: given.into_iter().collect(),
            });
        }
        let deadline = Instant::now() + self.config.connect_timeout;
        let mut outgoing = BTreeMap::new();
        for (&peer, &address) in peers {
            outgoing.insert(peer, link::connect_peer(id, peer, address, &self.config.token, deadline)?);
        }
        let mut missing = expected;
        let mut early = VecDeque::new();
        while !missing.is_empty() {
            match self.inbound.recv_deadline(deadline) {
                Ok(Inbound::Joined { from }) => {
                    missing.remove(&from);
                }
                Ok(other) => early.push_back(other),
                Err(_) => {
                    let timeout_s = self.config.connect_timeout.as_secs_f64();
                    return Err(NetError::PeersSilent { missing: missing.into_iter().collect(), timeout_s });
                }
            }
        }
        for (&peer, address) in peers {
            let event = Event::Connected { peer, host: Some(address.ip().to_string()), port: Some(address.port()) };
            self.logs.write(event, 0, 0)?;
        }
        Ok(Connected { bound: self, outgoing, early })
    }

    /// Ends the machine before it ticked (its run was called off): writes `Stopped`.
    pub fn abandon(mut self) -> Result<(), NetError> {
        self.logs.write(Event::Stopped, 0, 0)
    }
}

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wake {
    /// The time came.
    Due,
    /// The stop signal came.
    Stop,
}

/// Sleeps until `due`, unless a stop signal comes first. This is the one
/// place where the decision to stop early is taken: any message on `stop`, or
/// every sender of `stop` gone, means stop.
fn wait_until<T>(due: Instant, stop: &Receiver<T>) -> Wake {
    loop {
        if Instant::now() >= due {
            return Wake::Due;
        }
        match stop.recv_deadline(due) {
            Ok(_) | Err(RecvTimeoutError::Disconnected) => return Wake::Stop,
            Err(RecvTimeoutError::Timeout) => continue,
        }
    }
}

impl Connected {
    /// The drawn clock rate.
    pub fn rate(&self) -> u32 {
        self.bound.rate()
    }

    /// Ends the machine before it ticked (its run was called off): writes `Stopped`.
    pub fn abandon(self) -> Result<(), NetError> {
        self.bound.abandon()
    }

    /// Ticks from `start_us` (microseconds since the Unix epoch, the same
    /// instant for every machine of the run) for `duration_us`, tick `k` at
    /// `start + k / rate`; then stops sending, reads every peer's connection
    /// to its end, logs what is left in the queue as `Unprocessed`, and
    /// writes `Stopped`.
    ///
    /// A message on `stop`, or `stop`'s senders all gone, ends ticking early
    /// (the end goes as at the deadline).
    pub fn run<T>(self, start_us: i64, duration_us: u64, stop: &Receiver<T>) -> Result<RunSummary, NetError> {
        let Connected { bound, mut outgoing, early } = self;
        let Bound { config, mut machine, mut rng, mut logs, inbound, .. } = bound;
        let rate = machine.params().rate;
        let n_ticks = schedule::n_ticks(rate, duration_us);
        let start = instant_of(start_us);
        let deadline = start + Duration::from_micros(duration_us);
        let mut summary = RunSummary {
            ticks: 0,
            sent: 0,
            processed: 0,
            unprocessed: 0,
            stopped_early: false,
            disconnected: Vec::new(),
            send_errors: 0,
            lateness: LatenessSummary::default(),
        };
        let mut lateness = LatenessRecorder::with_capacity(usize::try_from(n_ticks).unwrap_or(0).min(1 << 24));
        let mut open: BTreeSet<MachineId> = outgoing.keys().copied().collect();
        let absorb = |event: Inbound,
                      machine: &mut Machine,
                      logs: &mut Logs,
                      summary: &mut RunSummary,
                      open: &mut BTreeSet<MachineId>,
                      ticking: bool|
         -> Result<(), NetError> {
            match event {
                Inbound::Message { from, clock } => {
                    machine.deliver(from, clock);
                }
                Inbound::Closed { from, error } => {
                    open.remove(&from);
                    let early_end = Instant::now() + config.end_grace < deadline;
                    if ticking && (early_end || error.is_some()) {
                        if let Some(error) = error {
                            eprintln!("machine {}: connection from machine {from} failed: {error}", config.id);
                        }
                        summary.disconnected.push(from);
                        logs.write(Event::Disconnected { peer: from }, machine.clock(), machine.queue_len() as u64)?;
                    }
                }
                Inbound::Joined { .. } => {}
            }
            Ok(())
        };
        for event in early {
            absorb(event, &mut machine, &mut logs, &mut summary, &mut open, true)?;
        }

        for k in 0..n_ticks {
            let due = start + Duration::from_micros(schedule::tick_offset_us(k, rate));
            if wait_until(due, stop) == Wake::Stop {
                summary.stopped_early = true;
                break;
            }
            lateness.record(Instant::now().saturating_duration_since(due));
            while let Ok(event) = inbound.try_recv() {
                absorb(event, &mut machine, &mut logs, &mut summary, &mut open, true)?;
            }
            let tick = machine.tick(&mut rng);
            summary.ticks += 1;
            let event = match tick.event {
                TickEvent::Processed { from, stamp } => {
                    summary.processed += 1;
                    Event::Processed { from: Some(from), clock: Some(stamp) }
                }
                TickEvent::Internal => Event::Internal,
                TickEvent::Sent { recipients, .. } => Event::Sent { to: machine.recipients(recipients).collect() },
            };
            // The line goes out before the frames: a process killed in between
            // leaves a send that never arrived (which a failed run allows), never
            // a message that arrived without its send.
            logs.write(event.clone(), tick.clock, tick.queue_len)?;
            if let Event::Sent { to } = event {
                let frame = encode_clock(tick.clock).frame;
                for peer in to {
                    summary.sent += 1;
                    let Some(stream) = outgoing.get_mut(&peer) else { continue };
                    if let Err(error) = stream.write_all(&frame) {
                        summary.send_errors += 1;
                        eprintln!("machine {}: cannot send to machine {peer}: {error}", config.id);
                        outgoing.remove(&peer);
                    }
                }
            }
        }
        if !summary.stopped_early && wait_until(deadline, stop) == Wake::Stop {
            summary.stopped_early = true;
        }

        // The end: peers see the end of our stream after our last message,
        // and we read theirs to its end, so nothing on the wire is lost.
        for stream in outgoing.values() {
            let _ = stream.shutdown(Shutdown::Write);
        }
        let drain_deadline = Instant::now() + config.connect_timeout;
        while let Ok(event) = inbound.try_recv() {
            absorb(event, &mut machine, &mut logs, &mut summary, &mut open, false)?;
        }
        while !open.is_empty() {
            match inbound.recv_deadline(drain_deadline) {
                Ok(event) => absorb(event, &mut machine, &mut logs, &mut summary, &mut open, false)?,
                Err(_) => {
                    eprintln!(
                        "machine {}: machines {open:?} did not finish sending within {} s; their connections are abandoned",
                        config.id,
                        config.connect_timeout.as_secs_f64()
                    );
                    for &peer in &open {
                        summary.disconnected.push(peer);
                        logs.write(Event::Disconnected { peer }, machine.clock(), machine.queue_len() as u64)?;
                    }
                    break;
                }
            }
        }
        let clock = machine.clock();
        let left: Vec<_> = machine.drain_unprocessed().collect();
        for (idx, message) in left.iter().enumerate() {
            // Like `Processed`, the queue length counts the message being logged.
            let queue_len = (left.len() - idx) as u64;
            logs.write(Event::Unprocessed { from: message.from, clock: message.stamp }, clock, queue_len)?;
        }
        summary.unprocessed = left.len() as u64;
        logs.write(Event::Stopped, clock, 0)?;
        summary.lateness = lateness.summary();
        Ok(summary)
    }
}

/// The monotonic instant of a wall-clock time in microseconds since the Unix
/// epoch. Waits use the monotonic clock, so a wall-clock step during a run
/// moves no tick.
fn instant_of(time_us: i64) -> Instant {
    let (now, now_us) = (Instant::now(), now_us());
    let offset = Duration::from_micros(time_us.abs_diff(now_us));
    if time_us >= now_us { now + offset } else { now.checked_sub(offset).unwrap_or(now) }
}

/// Now, in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// A machine's log files: one writer per format over an unbuffered file, so
/// that each line is one `write` and a killed process leaves whole lines.
#[derive(Debug)]
struct Logs {
    id: MachineId,
    writers: Vec<(PathBuf, LogWriter<File>)>,
}

impl Logs {
    fn create(id: MachineId, files: &[(LogFormat, PathBuf)]) -> Result<Logs, NetError> {
        let mut writers = Vec::new();
        for (format, path) in files {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|source| NetError::Log { path: path.clone(), source })?;
            writers.push((path.clone(), LogWriter::new(file, *format)));
        }
        Ok(Logs { id, writers })
    }

    /// Writes one line, stamped now, to every file.
    fn write(&mut self, event: Event, logical_clock: u64, queue_length: u64) -> Result<(), NetError> {
        let record = Record { machine: self.id, event, logical_clock, queue_length, time_us: now_us() };
        for (path, writer) in &mut self.writers {
            writer.write(&record).map_err(|source| NetError::Log { path: path.clone(), source })?;
        }
        Ok(())
    }
}

/// A stop channel that never fires, for a machine that runs to its deadline.
pub fn never_stop() -> (Sender<()>, Receiver<()>) {
    crossbeam_channel::bounded(1)
}
