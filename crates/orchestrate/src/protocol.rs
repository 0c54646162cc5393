//! The control protocol between `clocklab run` and its machines: one JSON
//! object per line, over the machine's stdin and stdout.
//!
//! 1. `launch` (everything the machine needs, the run token included: the
//!    token never touches the disk nor a command line) → the machine binds
//!    port 0, so the system picks a free port and no two runs can collide,
//!    and answers `bound` with its port and drawn rate.
//! 2. `peers` (the address of every machine that is up, once all are bound)
//!    → the machine connects to them and answers `ready` once every
//!    connection is up.
//! 3. `start` (one wall-clock instant a little ahead, the same for the whole
//!    run: the start barrier) → the machine ticks until start + duration,
//!    drains, writes `Stopped` and answers `done` with its summary.
//!
//! `stop` (an instant, the same for the whole run) tells a machine to stop
//! ticking then, or at once if it has not started. `rejoin` and `down` tell
//! of a peer that restarted (where it listens now) or crashed. A machine
//! that the plan crashes writes its last lines and says `crashed`; the
//! orchestrator then kills it (`SIGKILL`), as it does one that does not say
//! so soon after the crash's instant. The end of
//! stdin is a stop request too: if the orchestrator dies, its machines stop
//! and no child outlives it. A machine that gets SIGINT or SIGTERM itself
//! answers `signalled`; one that fails says `failed` before it exits.
//!
//! On another host (`clocklab agent`, started through the host's launcher)
//! the same lines pass through an agent, which starts the machine process
//! there and adds its own: it says `hello` (its version and process id)
//! first; answers `ping` with `pong` (a four-timestamp exchange: the
//! orchestrator's clock offset to the host's), `port` with `probed` (a
//! port of the address bound, or why not); takes `launch` with its
//! `remote` settings (where the logs go on the host, and from which byte to
//! send them); sends each log home as it grows (`log`: an offset and the
//! bytes, whole lines only), then `exited` (how the machine process ended)
//! and `shipped` (each log's length and CRC-32, which the orchestrator's
//! copy must match). `kill`, `crash` (a kill, then the `Crashed` line) and
//! `pause` act on the machine process on its host. `fetch` asks an agent
//! without a machine for the rest of a machine's logs, from the bytes the
//! orchestrator has: what a broken channel left behind.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clocklab_faults::FaultSpec;
use clocklab_log::LogFormat;
use clocklab_model::MachineId;
use clocklab_net::{RestartSpec, RunSummary};
use serde::{Deserialize, Serialize};

/// What the orchestrator tells a machine, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToMachine {
    /// Everything the machine needs.
    Launch(Box<Launch>),
    /// Every machine's address, by id.
    Peers(BTreeMap<MachineId, SocketAddr>),
    /// Start ticking at this instant, in microseconds since the Unix epoch.
    Start(i64),
    /// Stop ticking at this instant (at once if not ticking yet).
    Stop(i64),
    /// A peer restarted after a crash (the fault plan's): connect to its
    /// new incarnation.
    Rejoin {
        /// The peer.
        peer: MachineId,
        /// Where its new incarnation listens.
        address: SocketAddr,
    },
    /// A peer crashed (the fault plan's): its connections are gone.
    Down {
        /// The peer.
        peer: MachineId,
    },
    /// To an agent: the orchestrator's clock now, in microseconds since
    /// the Unix epoch (`t1` of a four-timestamp exchange).
    Ping(i64),
    /// To an agent: bind a free port of this address and say which.
    Port {
        /// The address the host's machines listen on.
        address: String,
    },
    /// To an agent: kill the machine process (`SIGKILL`).
    Kill,
    /// To an agent: the fault plan's crash: kill the machine process, and
    /// write its `Crashed` line if it had not.
    Crash,
    /// To an agent: stop (`true`, `SIGSTOP`) or continue the machine process.
    Pause(bool),
    /// To an agent without a machine: send the rest of a machine's logs.
    Fetch(Box<Fetch>),
}

/// Where a machine's logs are on its host, and what the orchestrator has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// The folder the host's logs go in (default: `clocklab` under the
    /// host's temporary folder).
    pub workdir: Option<PathBuf>,
    /// The run's folder under it, the same for every incarnation.
    pub run_key: String,
    /// Each log's bytes that the orchestrator has already: the agent sends
    /// from there.
    pub ship_from: Vec<(LogFormat, u64)>,
}

/// The rest of a machine's logs, asked of an agent without a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// The machine.
    pub machine: MachineId,
    /// Where its logs are, and from which byte to send them.
    pub remote: Remote,
    /// How long the logs may go without growing before they are taken as
    /// they are (a machine that lost its channel ends its log within the
    /// drain), in microseconds.
    pub quiet_us: u64,
}

/// One log's end, as its host has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEnd {
    /// The log.
    pub format: LogFormat,
    /// Its length in bytes.
    pub len: u64,
    /// The CRC-32 of its bytes.
    pub crc32: u32,
}

/// The settings of one orchestrated machine.
#[derive(Debug, Serialize, Deserialize)]
pub struct Launch {
    /// How many machines the run has.
    pub n_machines: u32,
    /// Rates are drawn from `1..=max_clock_rate`.
    pub max_clock_rate: u32,
    /// Event draws are from `1..=max_event_num`.
    pub max_event_num: u32,
    /// The machine's seed.
    pub seed: u64,
    /// The clocks the run keeps (`lamport`, `vector`, `hlc`).
    #[serde(default)]
    pub clocks: Vec<String>,
    /// The machine's physical clock's offset at the start, in microseconds.
    #[serde(default)]
    pub clock_offset_us: i64,
    /// The machine's physical clock's drift, in parts per million.
    #[serde(default)]
    pub clock_drift_ppm: f64,
    /// The host to listen on.
    pub host: String,
    /// The run token, in hexadecimal.
    pub token_hex: String,
    /// The connect (and drain) timeout, in seconds.
    pub connect_timeout_s: f64,
    /// How many messages the queue holds before refusing new ones.
    #[serde(default = "default_queue_cap")]
    pub queue_cap: usize,
    /// How long to tick, in microseconds.
    pub duration_us: u64,
    /// The log files to write.
    pub logs: Vec<(LogFormat, PathBuf)>,
    /// The run's fault plan, which every machine applies.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// The run's seed: the fault plan's draws come from it.
    #[serde(default)]
    pub run_seed: u64,
    /// This process restarts the machine after a crash: how.
    #[serde(default)]
    pub restart: Option<RestartSpec>,
    /// The machine runs on another host, through an agent: where its logs go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Remote>,
}

/// What a machine tells the orchestrator, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromMachine {
    /// It listens on `port` and drew `rate`.
    Bound {
        /// The port the system picked.
        port: u16,
        /// The drawn clock rate.
        rate: u32,
    },
    /// Every connection is up.
    Ready,
    /// It got SIGINT or SIGTERM and is stopping.
    Signalled {
        /// The signal's name.
        signal: String,
    },
    /// It has written `Stopped`.
    Done(RunSummary),
    /// The fault plan crashed it: it has written what was still at it
    /// (`Held`) and `Crashed`, and waits to be killed.
    Crashed,
    /// It failed, and is about to exit with an error: why, and the peer it
    /// saw go (a machine that blames a peer is seldom the first to fail).
    Failed {
        /// The error, for a person.
        cause: String,
        /// The peer whose going made it fail, if that is what it failed of.
        blames: Option<MachineId>,
    },
    /// An agent started: its clocklab version and process id.
    Hello {
        /// `clocklab --version`'s number.
        version: String,
        /// The agent's process id on its host.
        pid: u32,
    },
    /// An agent's answer to `ping`: `t1` as sent, `t2` when the ping was
    /// read and `t3` when the answer left, both by the host's clock.
    Pong {
        /// The orchestrator's clock when it sent the ping.
        t1: i64,
        /// The host's clock when the ping arrived.
        t2: i64,
        /// The host's clock when the answer left.
        t3: i64,
    },
    /// An agent's answer to `port`: the port it could bind, or why not.
    Probed {
        /// The port the system gave.
        port: Option<u16>,
        /// Why no port could be bound.
        error: Option<String>,
    },
    /// The agent started the machine process: its id on the host.
    Spawned {
        /// The process id.
        pid: u32,
    },
    /// Bytes of a log, from `offset`, base64-encoded: whole lines.
    Log {
        /// The log.
        format: LogFormat,
        /// Where the bytes start in it.
        offset: u64,
        /// The bytes, base64-encoded.
        data: String,
    },
    /// How the machine process ended on its host.
    Exited {
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that ended it, if one did.
        signal: Option<i32>,
    },
    /// Every log was sent: each one's length and checksum on the host.
    Shipped(Vec<LogEnd>),
}

fn default_queue_cap() -> usize {
    clocklab_net::DEFAULT_QUEUE_CAP
}

/// Sends one control line.
pub fn send_line<W: Write, T: Serialize>(out: &mut W, message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}
