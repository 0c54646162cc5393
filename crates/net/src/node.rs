//! One machine's life: bind, connect, tick on the absolute schedule, drain.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clocklab_driver::{Driver, DriverParams};
use clocklab_log::{LogFormat, LogWriter, Record};
use clocklab_model::wire::{FrameCodec, Hello, TOKEN_LEN};
use clocklab_model::{Delivery, MachineId, schedule};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};

use crate::NetError;
use crate::lateness::{LatenessRecorder, LatenessSummary};
use crate::link::{self, AcceptContext, Inbound};

/// How many arrived messages may wait between the reader threads and the
/// processing thread. When it is full the readers block, and TCP's flow
/// control slows the sender down instead of this process growing without end.
const INBOUND_CAPACITY: usize = 1 << 16;

/// How many messages a machine's queue holds before it refuses (and counts)
/// new ones: far more than any sound run queues, few enough that a peer
/// flooding the machine cannot exhaust its memory.
pub const DEFAULT_QUEUE_CAP: usize = 1_000_000;

/// A request to stop ticking before the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopRequest {
    /// Stop at once (a signal, or the controller went away).
    Now,
    /// Stop at this instant, in microseconds since the Unix epoch: every
    /// machine of a run told the same instant stops together, so none of them
    /// takes the others' end for a disconnection.
    At(i64),
}

/// Everything one machine needs to run.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The machine: its id, the run's size, its seed, its clocks and its queue cap.
    pub machine: DriverParams,
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

impl NodeConfig {
    /// The machine's number.
    pub fn id(&self) -> MachineId {
        self.machine.id
    }

    /// This machine's hello, which its peers' hellos must match.
    pub fn hello(&self) -> Hello {
        Hello::new(self.machine.id, self.token, self.machine.clocks, self.machine.n_machines)
    }
}

/// A machine listening on its port, its log opened, waiting for its peers'
/// addresses.
#[derive(Debug)]
pub struct Bound {
    config: NodeConfig,
    driver: Driver,
    address: SocketAddr,
    logs: Logs,
    inbound: Receiver<Inbound>,
    /// What the acceptor shares: its count of refused connections.
    context: Arc<AcceptContext>,
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
    /// Messages refused because the queue was at its cap.
    #[serde(default)]
    pub refused: u64,
    /// Connections refused (a bad hello, or too many waiting for theirs).
    #[serde(default)]
    pub refused_connections: u64,
    /// How late the ticks ran.
    pub lateness: LatenessSummary,
}

impl RunSummary {
    /// The summary of a machine that never ticked.
    pub fn not_started() -> RunSummary {
        RunSummary {
            ticks: 0,
            sent: 0,
            processed: 0,
            unprocessed: 0,
            stopped_early: true,
            disconnected: Vec::new(),
            send_errors: 0,
            refused: 0,
            refused_connections: 0,
            lateness: LatenessSummary::default(),
        }
    }
}

/// Starts a machine: draws its rate, opens its log, binds its port and starts
/// accepting peers, then writes `Initialized`.
///
/// The port is bound before the log files are created, so a machine that
/// cannot listen leaves no empty log behind.
pub fn bind(config: NodeConfig) -> Result<Bound, NetError> {
    let listener =
        TcpListener::bind(config.listen).map_err(|source| NetError::Bind { address: config.listen, source })?;
    let logs = Logs::create(config.id(), &config.logs)?;
    bind_with_logs(config, listener, logs)
}

/// [`bind`] with the port bound and the log sinks open.
fn bind_with_logs(config: NodeConfig, listener: TcpListener, mut logs: Logs) -> Result<Bound, NetError> {
    let mut driver = Driver::new(config.machine, now_us()).map_err(NetError::Params)?;
    let address = listener.local_addr().map_err(|source| NetError::Bind { address: config.listen, source })?;
    let (sender, inbound) = crossbeam_channel::bounded(INBOUND_CAPACITY);
    let context = AcceptContext {
        hello: config.hello(),
        codec: FrameCodec::new(config.machine.clocks, config.machine.n_machines),
        hello_timeout: link::HELLO_TIMEOUT.min(config.connect_timeout),
        joined: Mutex::new(BTreeSet::new()),
        pending_hellos: AtomicUsize::new(0),
        refused_connections: AtomicUsize::new(0),
        refused_busy: AtomicUsize::new(0),
    };
    let context = Arc::new(context);
    link::spawn_acceptor(listener, Arc::clone(&context), sender);
    logs.write(driver.initialized(now_us(), &config.host, Some(address.port())));
    logs.check()?;
    Ok(Bound { config, driver, address, logs, inbound, context })
}

impl Bound {
    /// The address it listens on (with the port the system picked).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its drawn clock rate.
    pub fn rate(&self) -> u32 {
        self.driver.rate()
    }

    /// Connects to every peer (retrying while they come up) and waits until
    /// every peer has connected back, within the connect timeout; then writes
    /// one `Connected` line per peer.
    ///
    /// Any message on `stop`, or its senders all gone, abandons the attempt
    /// ([`NetError::Stopped`]). On every error the log ends with `Stopped`.
    pub fn connect(
        mut self,
        peers: &BTreeMap<MachineId, SocketAddr>,
        stop: &Receiver<StopRequest>,
    ) -> Result<Connected, NetError> {
        match self.try_connect(peers, stop) {
            Ok((outgoing, early)) => Ok(Connected { bound: self, outgoing, early }),
            Err(error) => {
                // Best effort: the error to report is the first one.
                let _ = self.abandon();
                Err(error)
            }
        }
    }

    fn try_connect(
        &mut self,
        peers: &BTreeMap<MachineId, SocketAddr>,
        stop: &Receiver<StopRequest>,
    ) -> Result<(BTreeMap<MachineId, TcpStream>, VecDeque<Inbound>), NetError> {
        let id = self.config.id();
        let expected: BTreeSet<MachineId> = (1..=self.config.machine.n_machines).filter(|&peer| peer != id).collect();
        let given: BTreeSet<MachineId> = peers.keys().copied().collect();
        if given != expected {
            return Err(NetError::Peers {
                expected: expected.into_iter().collect(),
                given: given.into_iter().collect(),
            });
        }
        let timeout_s = self.config.connect_timeout.as_secs_f64();
        let deadline = Instant::now() + self.config.connect_timeout;
        let mut outgoing = BTreeMap::new();
        for (&peer, &address) in peers {
            let stream = link::connect_peer(&self.config.hello(), peer, address, deadline, timeout_s, stop)?;
            outgoing.insert(peer, stream);
        }
        let mut missing = expected;
        let mut early = VecDeque::new();
        while !missing.is_empty() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(self.inbound) -> event => match event {
                    Ok(Inbound::Joined { from }) => {
                        missing.remove(&from);
                    }
                    Ok(other) => early.push_back(other),
                    Err(_) => unreachable!("the acceptor keeps a sender for the life of the process"),
                },
                recv(stop) -> _ => return Err(NetError::Stopped),
                default(remaining) => {
                    return Err(NetError::PeersSilent { missing: missing.into_iter().collect(), timeout_s });
                }
            }
        }
        for (&peer, address) in peers {
            let host = address.ip().to_string();
            self.logs.write(self.driver.connected(now_us(), peer, &host, Some(address.port())));
        }
        self.logs.check()?;
        Ok((outgoing, early))
    }

    /// Ends the machine before it ticked (its run was called off): writes `Stopped`.
    pub fn abandon(mut self) -> Result<(), NetError> {
        let end = self.driver.end(now_us());
        self.logs.write_end(&end);
        self.logs.check()
    }
}

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The time came.
    Due,
    /// A request to stop at once came (or every sender of requests is gone).
    Stop,
    /// A request to stop at this instant came.
    StopAt(Instant),
}

/// Sleeps until `due`, unless a stop request comes first. This is the one
/// place where the decision to stop early is taken: [`StopRequest::Now`], or
/// every sender of `stop` gone, means stop now; [`StopRequest::At`] names the
/// instant.
pub(crate) fn wait_until(due: Instant, stop: &Receiver<StopRequest>) -> Wake {
    loop {
        if Instant::now() >= due {
            return Wake::Due;
        }
        match stop.recv_deadline(due) {
            Ok(StopRequest::Now) | Err(RecvTimeoutError::Disconnected) => return Wake::Stop,
            Ok(StopRequest::At(time_us)) => return Wake::StopAt(instant_of(time_us)),
            Err(RecvTimeoutError::Timeout) => continue,
        }
    }
}

/// Waits until `due` or the (possibly moved) `deadline`, whichever is first;
/// a stop request for an instant moves `deadline` earlier. Returns whether to
/// stop at once.
fn wait_tick(due: Instant, deadline: &mut Instant, stop: &Receiver<StopRequest>) -> bool {
    loop {
        match wait_until(due.min(*deadline), stop) {
            Wake::Due => return false,
            Wake::Stop => return true,
            Wake::StopAt(at) => *deadline = (*deadline).min(at),
        }
    }
}

/// The state of a ticking machine that the end needs too.
struct Ticking<'a> {
    config: &'a NodeConfig,
    driver: Driver,
    logs: Logs,
    summary: RunSummary,
    /// Peers whose stream to us has not ended yet.
    open: BTreeSet<MachineId>,
    /// When ticking ends (moved earlier by a stop request for an instant).
    deadline: Instant,
}

impl Ticking<'_> {
    /// Takes one event from a reader thread. `ticking` is false once the
    /// machine has stopped ticking: a peer ending its stream then is the
    /// expected end, not a disconnection.
    fn absorb(&mut self, event: Inbound, ticking: bool) {
        match event {
            Inbound::Message { from, stamp } => {
                if self.driver.deliver(now_us(), from, stamp) == Delivery::Refused
                    && self.driver.machine().refused() == 1
                {
                    eprintln!(
                        "machine {}: the queue is full ({} messages): refusing messages from machine {from}; the total is reported at the end",
                        self.config.id(),
                        self.config.machine.queue_cap
                    );
                }
            }
            Inbound::Closed { from, error } => {
                self.open.remove(&from);
                let early_end = Instant::now() + self.config.end_grace < self.deadline;
                if ticking && (early_end || error.is_some()) {
                    if let Some(error) = error {
                        eprintln!("machine {}: connection from machine {from} failed: {error}", self.config.id());
                    }
                    self.summary.disconnected.push(from);
                    self.logs.write(self.driver.disconnected(now_us(), from));
                }
            }
            Inbound::Joined { .. } => {}
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
    /// A stop request ends ticking early: [`StopRequest::Now`] (or `stop`'s
    /// senders all gone) at once, [`StopRequest::At`] at that instant. The end
    /// goes as at the deadline.
    ///
    /// A log that cannot be written (a full disk) ends ticking too; the end
    /// still goes (every file that still takes lines gets them, `Stopped`
    /// included, and a line cut by the failure is cut off), and the first
    /// write error is returned.
    pub fn run(self, start_us: i64, duration_us: u64, stop: &Receiver<StopRequest>) -> Result<RunSummary, NetError> {
        let Connected { bound, mut outgoing, early } = self;
        let Bound { config, mut driver, logs, inbound, context, .. } = bound;
        let rate = driver.rate();
        let n_ticks = schedule::n_ticks(rate, duration_us);
        let start = instant_of(start_us);
        driver.start(start_us);
        let full_deadline = start + Duration::from_micros(duration_us);
        let mut lateness = LatenessRecorder::with_capacity(usize::try_from(n_ticks).unwrap_or(0).min(1 << 24));
        let open = outgoing.keys().copied().collect();
        let mut state = Ticking {
            config: &config,
            driver,
            logs,
            summary: RunSummary { stopped_early: false, ..RunSummary::not_started() },
            open,
            deadline: full_deadline,
        };
        for event in early {
            state.absorb(event, true);
        }

        for k in 0..n_ticks {
            let due = start + Duration::from_micros(schedule::tick_offset_us(k, rate));
            if state.logs.failed() || due >= state.deadline {
                break;
            }
            if wait_tick(due, &mut state.deadline, stop) {
                state.summary.stopped_early = true;
                break;
            }
            if due >= state.deadline {
                break;
            }
            lateness.record(Instant::now().saturating_duration_since(due));
            // Only what is there now: a peer flooding the channel must not
            // keep this thread from its schedule.
            for _ in 0..inbound.len() {
                let Ok(event) = inbound.try_recv() else { break };
                state.absorb(event, true);
            }
            let step = state.driver.tick(now_us());
            // The line goes out before the frames: a process killed in between
            // leaves a send that never arrived (which a failed run allows), never
            // a message that arrived without its send. A line that cannot be
            // written sends nothing either.
            if !state.logs.write(step.record) {
                break;
            }
            if let Some(frame) = step.frame {
                for &peer in step.recipients() {
                    let Some(stream) = outgoing.get_mut(&peer) else { continue };
                    if let Err(error) = stream.write_all(frame) {
                        state.summary.send_errors += 1;
                        eprintln!("machine {}: cannot send to machine {peer}: {error}", config.id());
                        outgoing.remove(&peer);
                    }
                }
            }
        }
        if !state.summary.stopped_early && !state.logs.failed() && wait_tick(state.deadline, &mut state.deadline, stop)
        {
            state.summary.stopped_early = true;
        }
        state.summary.stopped_early |= state.deadline < full_deadline || state.logs.failed();

        // The end: peers see the end of our stream after our last message,
        // and we read theirs to its end, so nothing on the wire is lost.
        for stream in outgoing.values() {
            let _ = stream.shutdown(Shutdown::Write);
        }
        drop(outgoing);
        let drain_deadline = Instant::now() + config.connect_timeout;
        while let Ok(event) = inbound.try_recv() {
            state.absorb(event, false);
        }
        while !state.open.is_empty() {
            match inbound.recv_deadline(drain_deadline) {
                Ok(event) => state.absorb(event, false),
                Err(_) => {
                    eprintln!(
                        "machine {}: machines {:?} did not finish sending within {} s; their connections are abandoned",
                        config.id(),
                        state.open,
                        config.connect_timeout.as_secs_f64()
                    );
                    let open = std::mem::take(&mut state.open);
                    for peer in open {
                        state.summary.disconnected.push(peer);
                        state.logs.write(state.driver.disconnected(now_us(), peer));
                    }
                    break;
                }
            }
        }
        let Ticking { mut driver, mut logs, mut summary, .. } = state;
        let end = driver.end(now_us());
        summary.unprocessed = end.len() as u64 - 1;
        logs.write_end(&end);
        let counts = driver.counts();
        (summary.ticks, summary.sent, summary.processed) = (counts.ticks, counts.sent, counts.processed);
        summary.refused = driver.machine().refused();
        summary.lateness = lateness.summary();
        if summary.refused > 0 {
            eprintln!(
                "machine {}: refused {} messages because the queue was full (queue_cap {})",
                config.id(),
                summary.refused,
                config.machine.queue_cap
            );
        }
        summary.refused_connections = context.refused_connections.load(std::sync::atomic::Ordering::SeqCst) as u64;
        logs.check()?;
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

/// Where log lines go: a file, or (in tests) a writer that fails on demand.
pub(crate) trait Sink: Write + Send + std::fmt::Debug {
    /// Cuts the sink back to its first `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl Sink for File {
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // The file is opened for appending, so later lines go after the cut.
        self.set_len(len)
    }
}

/// A sink that counts the bytes it took, to know where the last whole line ends.
#[derive(Debug)]
struct Counted {
    sink: Box<dyn Sink>,
    len: u64,
}

impl Write for Counted {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.sink.write(bytes)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

/// One log file.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    writer: LogWriter<Counted>,
    /// A write failed: no more lines go here, except a last try at `Stopped`.
    failed: bool,
    /// The logical clock of the last line written whole.
    last_clock: u64,
}

impl LogFile {
    /// Writes one line; a line cut by a failure is cut off, so that the file
    /// holds only whole lines.
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let before = self.writer.get_mut().len;
        let result = self.writer.write(record);
        if result.is_ok() {
            self.last_clock = record.logical_clock;
        } else {
            let counted = self.writer.get_mut();
            if counted.len > before && counted.sink.truncate(before).is_ok() {
                counted.len = before;
            }
        }
        result
    }
}

/// A machine's log files: one writer per format over an unbuffered file, so
/// that each line is one `write` and a killed process leaves whole lines.
///
/// A write error does not end the machine on the spot: the file is marked
/// failed, the error is kept, and the machine stops ticking and ends as at the
/// deadline, so its peers still get every message and what was written stays
/// readable.
#[derive(Debug)]
struct Logs {
    id: MachineId,
    files: Vec<LogFile>,
    /// The first write error.
    failure: Option<NetError>,
}

impl Logs {
    fn create(id: MachineId, files: &[(LogFormat, PathBuf)]) -> Result<Logs, NetError> {
        let mut sinks: Vec<(LogFormat, PathBuf, Box<dyn Sink>)> = Vec::new();
        for (format, path) in files {
            let file = OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(path)
                .map_err(|source| NetError::Log { path: path.clone(), source })?;
            sinks.push((*format, path.clone(), Box::new(file)));
        }
        Ok(Logs::over(id, sinks))
    }

    fn over(id: MachineId, sinks: Vec<(LogFormat, PathBuf, Box<dyn Sink>)>) -> Logs {
        let files = sinks
            .into_iter()
            .map(|(format, path, sink)| LogFile {
                path,
                writer: LogWriter::new(Counted { sink, len: 0 }, format),
                failed: false,
                last_clock: 0,
            })
            .collect();
        Logs { id, files, failure: None }
    }

    /// Writes one line to every file that has not failed; returns whether
    /// every file took it.
    fn write(&mut self, record: &Record) -> bool {
        for file in &mut self.files {
            if file.failed {
                continue;
            }
            if let Err(source) = file.write(record) {
                file.failed = true;
                eprintln!("machine {}: cannot write {}: {source}; stopping", self.id, file.path.display());
                self.failure.get_or_insert(NetError::Log { path: file.path.clone(), source });
            }
        }
        self.failure.is_none()
    }

    /// Writes the end of the log (the driver's `Unprocessed` lines and its
    /// `Stopped`): the lines to every file that has not failed, and `Stopped`
    /// to every file, those that failed before included (the cause, such as a
    /// full disk, may have passed). A failed file's `Stopped` carries the
    /// Lamport clock of its last whole line: the lines it lost are lost, but
    /// what it holds stays consistent.
    fn write_end(&mut self, end: &[Record]) {
        let Some((stopped, unprocessed)) = end.split_last() else { return };
        for record in unprocessed {
            self.write(record);
        }
        for file in &mut self.files {
            let mut record = stopped.clone();
            if file.failed {
                record.logical_clock = file.last_clock;
            }
            if let Err(source) = file.write(&record)
                && !file.failed
            {
                file.failed = true;
                self.failure.get_or_insert(NetError::Log { path: file.path.clone(), source });
            }
        }
    }

    /// Whether a write has failed.
    fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The first write error, if any, taken out.
    fn check(&mut self) -> Result<(), NetError> {
        match self.failure.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// A stop channel that never fires while the sender is kept, for a machine
/// that runs to its deadline.
pub fn never_stop() -> (Sender<StopRequest>, Receiver<StopRequest>) {
    crossbeam_channel::bounded(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_log::Event;

    /// A sink that takes `room` bytes, then cuts the line it is given and
    /// fails as a full disk does; with `recovers`, it takes everything again
    /// after that one failure.
    #[derive(Debug)]
    struct FullDisk {
        bytes: Arc<Mutex<Vec<u8>>>,
        room: usize,
        recovers: bool,
        failed: bool,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut bytes = self.bytes.lock().unwrap();
            if self.failed && self.recovers {
                bytes.extend_from_slice(buf);
                return Ok(buf.len());
            }
            let room = self.room.saturating_sub(bytes.len());
            if room == 0 {
                self.failed = true;
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
            }
            let n = room.min(buf.len());
            bytes.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for FullDisk {
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.bytes.lock().unwrap().truncate(len as usize);
            Ok(())
        }
    }

    fn config(id: MachineId, dir: &std::path::Path) -> NodeConfig {
        NodeConfig {
            machine: DriverParams {
                queue_cap: DEFAULT_QUEUE_CAP,
                ..DriverParams::new(id, 2, 6, 3, 40 + u64::from(id))
            },
            listen: "127.0.0.1:0".parse().unwrap(),
            host: "127.0.0.1".into(),
            token: [3; TOKEN_LEN],
            connect_timeout: Duration::from_secs(10),
            end_grace: Duration::ZERO,
            logs: vec![(LogFormat::Text, dir.join(format!("machine_{id}.log")))],
        }
    }

    /// Runs machine 1 over a failing sink and machine 2 over a file for
    /// `duration_us`; returns machine 1's result and bytes, and machine 2's
    /// summary and log.
    fn run_with_full_disk(room: usize, recovers: bool) -> (Result<RunSummary, NetError>, String, RunSummary, String) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = FullDisk { bytes: Arc::clone(&bytes), room, recovers, failed: false };
        let path = dir.path().join("machine_1.log");
        let logs = Logs::over(1, vec![(LogFormat::Text, path, Box::new(sink))]);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let one = bind_with_logs(config(1, dir.path()), listener, logs).unwrap();
        let two = bind(config(2, dir.path())).unwrap();
        let (a1, a2) = (one.address(), two.address());
        let start_us = now_us() + 100_000;
        let duration_us = 1_500_000;
        let first = std::thread::spawn(move || {
            let (_keep, stop) = never_stop();
            one.connect(&BTreeMap::from([(2, a2)]), &stop).unwrap().run(start_us, duration_us, &stop)
        });
        let second = std::thread::spawn(move || {
            let (_keep, stop) = never_stop();
            two.connect(&BTreeMap::from([(1, a1)]), &stop).unwrap().run(start_us, duration_us, &stop).unwrap()
        });
        let (result, summary) = (first.join().unwrap(), second.join().unwrap());
        let text = String::from_utf8(bytes.lock().unwrap().clone()).unwrap();
        let log = std::fs::read_to_string(dir.path().join("machine_2.log")).unwrap();
        (result, text, summary, log)
    }

    fn records(text: &str) -> Vec<Record> {
        let mut reader = clocklab_log::LogReader::new(text.as_bytes());
        let records: Vec<Record> = reader.by_ref().map(|line| line.record).collect();
        let diagnostics = reader.into_diagnostics();
        assert_eq!(diagnostics.n_skipped, 0, "{text}");
        assert!(!diagnostics.truncated_last_line, "{text}");
        records
    }

    #[test]
    fn a_full_disk_stops_the_machine_cleanly_and_leaves_whole_lines() {
        // Room for the first lines and part of a tick's line: the cut line is
        // cut off, the machine stops ticking, and its peer still ends soundly.
        let (result, text, summary, log) = run_with_full_disk(700, false);
        let error = result.unwrap_err();
        assert!(matches!(&error, NetError::Log { path, .. } if path.ends_with("machine_1.log")), "{error}");
        assert!(error.to_string().contains("machine_1.log"), "{error}");
        assert!(text.ends_with('\n') && text.len() <= 700, "{text:?}");
        let lines = records(&text);
        assert!(matches!(lines[0].event, Event::Initialized { .. }));
        // Machine 2 saw machine 1 go away early, kept its schedule and stopped.
        let rate = clocklab_model::seed::start_machine(42, 6).1;
        assert_eq!(summary.ticks, schedule::n_ticks(rate, 1_500_000));
        assert_eq!(summary.disconnected, [1]);
        let two = records(&log);
        assert!(matches!(two.last().unwrap().event, Event::Stopped));
        assert!(two.iter().any(|r| r.event == Event::Disconnected { peer: 1 }));
    }

    #[test]
    fn a_disk_that_frees_up_gets_the_end_of_the_log() {
        let (result, text, _, log) = run_with_full_disk(700, true);
        assert!(matches!(result, Err(NetError::Log { .. })));
        // Once the disk has room again the log gets its `Stopped`: whole lines,
        // consistent, and what it lost is what a failed run may lose.
        let one = records(&text);
        assert_eq!(one.last().unwrap().event, Event::Stopped);
        let logs = BTreeMap::from([(1, one), (2, records(&log))]);
        let expect = clocklab_log::check::Expectations {
            n_machines: 2,
            duration_s: 1.5,
            tick_tolerance: u64::MAX,
            allow_loss: true,
            clocks: clocklab_model::ClockKinds::LAMPORT,
        };
        let report = clocklab_log::check::check_run(&logs, &expect);
        assert!(report.is_ok(), "{:#?}\n{text}", report.violations);
    }
}
