//! The range of every setting: what validation checks, what
//! `clocklab config --print-default` explains in its comments and what the
//! README's configuration table lists. Each bound says why it is where it is.

/// The most machines a run may have. The simulator's memory grows with the
/// machines (not their square), but each machine logs one `Connected` line
/// per peer, so a run's preamble alone grows with the square.
pub const MACHINES_MAX: u32 = 20_000;

/// The most machines a run of the real runtime may have: every machine is a
/// process with a reader thread per peer and a connection each way, so a run
/// of `n` machines needs about `n^2` threads and `2 n^2` sockets, and `n`
/// processes that all want a core at every tick.
pub const REAL_MACHINES_MAX: u32 = 100;

/// The most machines a run on several hosts may have: each host holds at
/// most [`REAL_MACHINES_MAX`], and the orchestrator keeps a launcher process
/// and two threads per machine.
pub const HOSTS_MACHINES_MAX: u32 = 1_000;

/// The most hosts a configuration may list.
pub const HOSTS_MAX: usize = 1_000;

/// The most machines a run that keeps vector clocks may have: every line
/// carries a vector of one number per machine.
pub const VECTOR_MACHINES_MAX: u32 = 1_000;

/// The largest `max_clock_rate`, in ticks per second: a microsecond per tick,
/// the resolution of the schedule.
pub const MAX_CLOCK_RATE_MAX: u32 = 1_000_000;

/// The largest `max_event_num`: at a million, a send is drawn once in
/// 333,333 ticks; anything larger is the same as no sends.
pub const MAX_EVENT_NUM_MAX: u32 = 1_000_000;

/// The most runs an experiment may have.
pub const RUNS_MAX: u32 = 10_000;

/// The most experiments a configuration may list.
pub const EXPERIMENTS_MAX: usize = 1_000;

/// The most machine runs (runs times machines, over every experiment) a
/// suite may plan: every one is planned before the first starts.
pub const MACHINE_RUNS_MAX: u64 = 1_000_000;

/// The shortest run, in seconds: the schedule counts whole microseconds.
pub const DURATION_S_MIN: f64 = 0.001;

/// The longest run, in seconds: a year (365 days).
pub const DURATION_S_MAX: f64 = 31_536_000.0;

/// The shortest `connect_timeout`, in seconds: a machine must have time to
/// hear from its peers even on a busy computer.
pub const CONNECT_TIMEOUT_S_MIN: f64 = 0.1;

/// The longest `connect_timeout`, in seconds: an hour.
pub const CONNECT_TIMEOUT_S_MAX: f64 = 3_600.0;

/// The largest `queue_cap`, in messages (16 bytes each and more in memory).
pub const QUEUE_CAP_MAX: usize = 100_000_000;

/// The longest `host`, in bytes: the longest DNS name.
pub const HOST_LEN_MAX: usize = 253;

/// The longest experiment name, in bytes (it names a folder).
pub const NAME_LEN_MAX: usize = 100;

/// The largest simulated network delay parameter, in microseconds: an hour.
pub const DELAY_US_MAX: f64 = 3_600_000_000.0;

/// How far above `min_us` the exponential tail can reach, in means of the
/// tail: the delay is drawn as `-ln(1 - u)` times the tail's mean, with `u`
/// a 53-bit fraction, so at most `-ln(2^-53)`, about 36.7.
pub const EXPONENTIAL_TAIL_MAX: f64 = 37.0;

/// The most bytes a run may write without `--yes`: 10 GB (also never more
/// than the free space of the output's disk).
pub const OUTPUT_BYTES_MAX: u64 = 10_000_000_000;
