//! One machine's life: bind, connect (and agree on a start), tick on the
//! absolute schedule, drain.

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clocklab_driver::{BehindSummary, ClockSnapshot, DriverParams, LatenessSummary, RunTimes, Timeline};
use clocklab_faults::{FaultPlan, FaultSpec};
use clocklab_log::LogFormat;
use clocklab_model::MachineId;
use clocklab_model::wire::{FrameCodec, Hello, TOKEN_LEN};
use crossbeam_channel::Receiver;
use serde::{Deserialize, Serialize};

use crate::NetError;
use crate::accept::{self, AcceptContext, Inbound};
use crate::logs::Logs;
use crate::peers::RestartSpec;
use crate::send::{Outbox, SEND_STALL_MIN};
use crate::stop::{Doorbell, StopReceiver, StopSender, stop_channel};
use crate::ticking::NetEffects;

mod join;

/// How many events may wait between the acceptor and the processing
/// thread. When it is full the acceptor blocks, and TCP's flow control slows
/// the senders down instead of this process growing without end. The
/// acceptor carries only a connection's first events (its hello, its ready message,
/// the frames of the read that brought it) before it hands the connection
/// over, so a few per peer are the usual load; and a bounded channel's
/// slots are all allocated and touched at once, which at 2^16 slots cost
/// each machine process megabytes of page faults at start-up.
const INBOUND_CAPACITY: usize = 1 << 12;

/// The least time between two looks at what has arrived while a machine
/// waits for its next tick: bytes that arrive wake it at once, but at most
/// this often, so that a slow machine keeps its queue in the order messages
/// came without a wake-up per message (and without waking at all while
/// nothing comes).
pub(crate) const ABSORB_INTERVAL: Duration = Duration::from_millis(50);

/// How many messages a machine's queue holds before it refuses (and counts)
/// new ones: far more than any sound run queues, few enough that a peer
/// flooding the machine cannot exhaust its memory.
pub const DEFAULT_QUEUE_CAP: usize = 1_000_000;

/// How far after the last machine was ready machines started by hand start:
/// enough for every machine's ready message to reach every peer.
pub const START_LEAD_US: i64 = 100_000;

/// A request to stop ticking before the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopRequest {
    /// Stop at once (a signal, or the controller went away).
    Now,
    /// Stop at this instant, in microseconds since the Unix epoch: every
    /// machine of a run told the same instant stops together. One told late
    /// ticks on until it hears; the others still read what it sends, and it
    /// takes their early end for no disconnection.
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
    /// every peer to finish sending; also how long a peer may stay
    /// unwritable before it is declared gone (at least 2 s).
    pub connect_timeout: Duration,
    /// A peer whose connection ends cleanly less than this before the
    /// deadline stopped on schedule, not early: it is not logged as
    /// `Disconnected` (nor is one that ends earlier but still reads what
    /// this machine sends). Zero when a start barrier gives every machine the same
    /// deadline; machines started by hand agree on their start instant, but
    /// their clocks may differ a little if they run on different computers.
    pub end_grace: Duration,
    /// The log files to write, one per format. They must not exist yet.
    pub logs: Vec<(LogFormat, PathBuf)>,
    /// How long the machines tick, in microseconds.
    pub duration_us: u64,
    /// The run's fault plan, which every machine applies (see `clocklab_faults`).
    pub faults: Vec<FaultSpec>,
    /// The run's seed, from which the plan's draws come.
    pub run_seed: u64,
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

    /// How long a write to a peer may block before the peer is declared gone.
    pub(crate) fn stall_limit(&self) -> Duration {
        self.connect_timeout.max(SEND_STALL_MIN)
    }

    /// The run's times for a start at `start_us`: the drain is the connect timeout.
    fn times(&self, start_us: i64) -> RunTimes {
        let drain_us = u64::try_from(self.connect_timeout.as_micros()).unwrap_or(u64::MAX);
        RunTimes { start_us, duration_us: self.duration_us, drain_us }
    }

    /// The run's fault plan.
    fn plan(&self) -> FaultPlan {
        FaultPlan::new(&self.faults, self.run_seed, self.duration_us)
    }

    /// The other machines of the run.
    fn peer_ids(&self) -> Vec<MachineId> {
        (1..=self.machine.n_machines).filter(|&peer| peer != self.id()).collect()
    }
}

/// A machine listening on its port, its log opened, waiting for its peers'
/// addresses.
#[derive(Debug)]
pub struct Bound {
    pub(crate) config: NodeConfig,
    pub(crate) timeline: Timeline,
    address: SocketAddr,
    pub(crate) logs: Logs,
    pub(crate) inbound: Receiver<Inbound>,
    /// What the acceptor shares: its count of refused connections.
    pub(crate) context: Arc<AcceptContext>,
}

/// A machine with every connection up and every peer ready, ready to tick.
#[derive(Debug)]
pub struct Connected {
    pub(crate) bound: Bound,
    /// Writes to the peers, off the processing thread.
    pub(crate) outbox: Outbox,
    /// The peers whose connection to this machine is open, in order.
    pub(crate) peers: Vec<MachineId>,
    /// What arrived while connecting: replayed before the first tick.
    pub(crate) early: VecDeque<Inbound>,
    /// When each machine of the run (this one included) had every
    /// connection up, in microseconds since the Unix epoch.
    ready_us: BTreeMap<MachineId, i64>,
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
    /// Peers logged `Disconnected`: gone before the deadline, or declared
    /// gone because they stopped reading.
    pub disconnected: Vec<MachineId>,
    /// Messages logged as sent that were never written whole to their peer,
    /// by peer (only peers declared gone have any).
    #[serde(default)]
    pub unsent: BTreeMap<MachineId, u64>,
    /// Messages refused because the queue was at its cap.
    #[serde(default)]
    pub refused: u64,
    /// Connections refused (a bad hello, evicted, or no thread for them).
    #[serde(default)]
    pub refused_connections: u64,
    /// How late the ticks ran.
    pub lateness: LatenessSummary,
    /// How far behind its schedule the machine fell.
    #[serde(default)]
    pub behind: BehindSummary,
    /// The fault plan crashed the machine: it wrote what was still at it
    /// (`Held`) and `Crashed`, sends nothing more, and its process is to be
    /// killed.
    #[serde(default)]
    pub crashed: bool,
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
            unsent: BTreeMap::new(),
            refused: 0,
            refused_connections: 0,
            lateness: LatenessSummary::default(),
            behind: BehindSummary::default(),
            crashed: false,
        }
    }

    /// Messages never written to their peer, over every peer.
    pub fn unsent_total(&self) -> u64 {
        self.unsent.values().sum()
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
    let logs = Logs::create(&config.logs)?;
    bind_with_logs(config, listener, logs)
}

/// Starts a machine that restarts after a crash (a new process, see
/// `crate::peers`): binds its port as [`bind`] does, opens its logs to write
/// after their last line, and writes `Restarted` instead of `Initialized`
/// (then the clock faults of the time it was down): its clocks from 0, or
/// (`restart.recovered`) as the log's last line has them; its physical
/// clock as the machine's is now, after the plan's clock faults so far.
pub fn bind_restarted(config: NodeConfig, restart: RestartSpec) -> Result<Bound, NetError> {
    let listener =
        TcpListener::bind(config.listen).map_err(|source| NetError::Bind { address: config.listen, source })?;
    let mut logs = Logs::append(&config.logs)?;
    let recovered = match (restart.recovered, logs.first_path()) {
        (true, Some(path)) => {
            let unreadable = |source| NetError::Log { path: path.to_path_buf(), source };
            let last = clocklab_log::last_record(path).map_err(unreadable)?;
            let last = last.ok_or_else(|| {
                unreadable(std::io::Error::new(std::io::ErrorKind::InvalidData, "no line to recover the clocks from"))
            })?;
            Some(ClockSnapshot::of(&last))
        }
        _ => None,
    };
    let (address, inbound, context) = listen(&config, listener)?;
    let restarted = Timeline::restarted(
        config.machine,
        config.plan(),
        config.times(restart.start_us),
        true,
        restart.at_us,
        recovered,
        (&config.host, Some(address.port())),
        now_us(),
        &mut NetEffects::lines(&mut logs),
    )
    .map_err(NetError::Params)?
    .ok_or(NetError::NoRestart { at_us: restart.at_us })?;
    // A line that could not be written is the logs' own error, taken below.
    let timeline = restarted.map_err(|_| logs.check().err().unwrap_or(NetError::NoRestart { at_us: restart.at_us }));
    let timeline = timeline?;
    logs.check()?;
    Ok(Bound { config, timeline, address, logs, inbound, context })
}

/// [`bind`] with the port bound and the log sinks open.
fn bind_with_logs(config: NodeConfig, listener: TcpListener, mut logs: Logs) -> Result<Bound, NetError> {
    let mut timeline =
        Timeline::new(config.machine, config.plan(), config.times(now_us()), true).map_err(NetError::Params)?;
    let (address, inbound, context) = listen(&config, listener)?;
    let _ = timeline.initialized(now_us(), &config.host, Some(address.port()), &mut NetEffects::lines(&mut logs));
    logs.check()?;
    Ok(Bound { config, timeline, address, logs, inbound, context })
}

/// Starts accepting on `listener`: its address, the channel the readers
/// feed, and what the acceptor shares.
fn listen(
    config: &NodeConfig,
    listener: TcpListener,
) -> Result<(SocketAddr, Receiver<Inbound>, Arc<AcceptContext>), NetError> {
    let address = listener.local_addr().map_err(|source| NetError::Bind { address: config.listen, source })?;
    let (sender, inbound) = crossbeam_channel::bounded(INBOUND_CAPACITY);
    let codec = FrameCodec::new(config.machine.clocks, config.machine.n_machines);
    // Without a file descriptor for it, the machine cannot listen either.
    let doorbell = Doorbell::new().map_err(|source| NetError::Bind { address: config.listen, source })?;
    let timeout = accept::HELLO_TIMEOUT.min(config.connect_timeout);
    let context = Arc::new(AcceptContext::new(config.hello(), codec, timeout, doorbell));
    accept::spawn_acceptor(listener, Arc::clone(&context), sender)
        .map_err(|source| NetError::Thread { what: "accepting connections".into(), source })?;
    Ok((address, inbound, context))
}

impl Bound {
    /// The address it listens on (with the port the system picked).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its drawn clock rate.
    pub fn rate(&self) -> u32 {
        self.timeline.rate()
    }
}

impl Connected {
    /// The drawn clock rate.
    pub fn rate(&self) -> u32 {
        self.bound.rate()
    }

    /// The start instant machines started by hand agree on: the latest of
    /// every machine's ready instant, plus [`START_LEAD_US`]. Every machine of
    /// the run computes the same from the same ready messages, so they start
    /// together without an orchestrator (on one computer, or on computers
    /// whose clocks agree).
    pub fn agreed_start_us(&self) -> i64 {
        self.ready_us.values().copied().max().unwrap_or_else(now_us).saturating_add(START_LEAD_US)
    }

    /// Ends the machine before it ticked (its run was called off): writes `Stopped`.
    pub fn abandon(self) -> Result<(), NetError> {
        self.outbox.abort();
        self.bound.abandon()
    }
}

/// The longest a machine's end can take after its deadline, with
/// `connect_timeout`: the wait for its peers' streams to end, then the wait
/// for its links to write what they hold (each within its stall limit).
pub fn longest_end(connect_timeout: Duration) -> Duration {
    connect_timeout.saturating_add(connect_timeout.max(SEND_STALL_MIN))
}

/// `at + after`, or as far as an `Instant` goes.
pub(crate) fn checked_after(at: Instant, after: Duration) -> Instant {
    at.checked_add(after).or_else(|| at.checked_add(Duration::from_secs(1 << 32))).unwrap_or(at)
}

/// The monotonic instant of a wall-clock time in microseconds since the Unix
/// epoch. Waits use the monotonic clock, so a wall-clock step during a run
/// moves no tick.
pub(crate) fn instant_of(time_us: i64) -> Instant {
    // The wall clock read just before and just after the monotonic one: of a
    // few tries, the pair read closest together (a busy computer may
    // preempt this thread between two reads, which would move the schedule).
    let (now, now_us) = (0..4)
        .map(|_| {
            let before = now_us();
            let now = Instant::now();
            let after = now_us();
            (after.saturating_sub(before), now, before.saturating_add(after.saturating_sub(before) / 2))
        })
        .min_by_key(|&(gap, _, _)| gap)
        .map(|(_, now, now_us)| (now, now_us))
        .expect("four tries");
    let offset = Duration::from_micros(time_us.abs_diff(now_us));
    if time_us >= now_us { checked_after(now, offset) } else { now.checked_sub(offset).unwrap_or(now) }
}

/// Now, in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// A stop channel that never fires while the sender is kept, for a machine
/// that runs to its deadline.
///
/// # Panics
///
/// The system cannot make an `eventfd` (no file descriptor left).
pub fn never_stop() -> (StopSender, StopReceiver) {
    stop_channel().expect("an eventfd for the stop channel")
}

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::sync::Mutex;

    use super::*;
    use crate::logs::Sink;
    use clocklab_log::{Event, Record};

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
            duration_us: 1_500_000,
            faults: Vec::new(),
            run_seed: 0,
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
        let logs = Logs::over(vec![(LogFormat::Text, path, Box::new(sink))]);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let one = bind_with_logs(config(1, dir.path()), listener, logs).unwrap();
        let two = bind(config(2, dir.path())).unwrap();
        let (a1, a2) = (one.address(), two.address());
        let start_us = now_us() + 100_000;
        let first = std::thread::spawn(move || {
            let (_keep, stop) = never_stop();
            one.connect(&BTreeMap::from([(2, a2)]), &stop).unwrap().run(start_us, &stop, crate::no_news().1)
        });
        let second = std::thread::spawn(move || {
            let (_keep, stop) = never_stop();
            two.connect(&BTreeMap::from([(1, a1)]), &stop).unwrap().run(start_us, &stop, crate::no_news().1).unwrap()
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
        // Machine 1 stopped ticking but read machine 2's stream to its end, so
        // machine 2 did not take its early end for a disconnection: it kept
        // its schedule, sent to it, and stopped with nothing unsent.
        let rate = clocklab_model::seed::start_machine(42, 6).1;
        assert_eq!(summary.ticks, clocklab_model::schedule::n_ticks(rate, 1_500_000));
        assert!(summary.disconnected.is_empty() && summary.unsent.is_empty(), "{summary:?}");
        let two = records(&log);
        assert!(matches!(two.last().unwrap().event, Event::Stopped));
        assert!(!two.iter().any(|r| matches!(r.event, Event::Disconnected { .. })), "{log}");
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
            tick_tolerance: u64::MAX,
            allow_loss: true,
            ..clocklab_log::check::Expectations::new(2, 1.5, clocklab_model::ClockKinds::LAMPORT)
        };
        let report = clocklab_log::check::check_run(&logs, &expect);
        assert!(report.is_ok(), "{:#?}\n{text}", report.violations);
    }
}
