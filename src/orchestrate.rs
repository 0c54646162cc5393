//! Runs plans with the real runtime: one `clocklab machine` process per
//! machine, several runs side by side.
//!
//! **Control protocol.** The orchestrator starts `clocklab machine <id>
//! --orchestrated` (the same executable) and talks to it over its stdin and
//! stdout, one JSON object per line ([`ToMachine`], [`FromMachine`]):
//!
//! 1. `launch` (everything the machine needs, the run token included: the
//!    token never touches the disk) → the machine binds port 0, so the system
//!    picks a free port and no two runs can collide, and answers `bound` with
//!    its port and drawn rate.
//! 2. `peers` (every machine's address, once all are bound) → the machine
//!    connects to every peer and answers `ready` once every connection is up.
//! 3. `start` (one wall-clock instant a little ahead, the same for the whole
//!    run: the start barrier) → the machine ticks until start + duration,
//!    drains, writes `Stopped` and answers `done` with its summary (tick
//!    lateness included).
//!
//! `stop` (an instant, the same for the whole run) tells a machine to stop
//! ticking then, or at once if it has not started; it ends as at the deadline
//! and answers `done`. The end of stdin is a stop request too: if the
//! orchestrator dies, its machines stop cleanly and no child outlives it. A
//! machine that gets SIGINT or SIGTERM itself answers `signalled` and stops;
//! the orchestrator then stops the rest of its run.
//!
//! **Interruption.** Machines run in their own process groups, so a
//! terminal's Ctrl-C reaches only the orchestrator, which alone decides: the
//! first SIGINT or SIGTERM stops every running run (each machine drains, logs
//! what is unprocessed and writes `Stopped`), starts no new one, and marks the
//! manifests `interrupted`; the second kills every machine at once and exits.
//! On every error path the machines are told to stop, and a guard kills and
//! reaps any that do not exit.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clocklab_config::{Config, MachineOutcome, RunManifest, RunPlan, RunStatus, Runtime, layout};
use clocklab_log::LogFormat;
use clocklab_model::MachineId;
use clocklab_model::wire::TOKEN_LEN;
use clocklab_net::{LatenessSummary, RunSummary, now_us};
use crossbeam_channel::{Receiver, Sender};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How far ahead of "all ready" the shared start instant is: enough for every
/// machine of the run to read its `start` line, even on a busy machine.
const START_LEAD_US: i64 = 100_000;

/// How many lines of a machine's stderr are kept for the failure cause.
const STDERR_LINES: usize = 20;

/// How far ahead a stop instant is: enough for every machine of the run to
/// read its `stop` line, so that they all stop at the same instant.
const STOP_LEAD_US: i64 = 50_000;

/// How long machines told to stop before they started ticking have to exit.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(5);

/// What the orchestrator tells a machine, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToMachine {
    /// Everything the machine needs.
    Launch(Launch),
    /// Every machine's address, by id.
    Peers(BTreeMap<MachineId, SocketAddr>),
    /// Start ticking at this instant, in microseconds since the Unix epoch.
    Start(i64),
    /// Stop ticking at this instant (at once if not ticking yet).
    Stop(i64),
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
}

fn default_queue_cap() -> usize {
    clocklab_net::DEFAULT_QUEUE_CAP
}

/// What SIGINT and SIGTERM do to `clocklab run`: the first stops every run
/// cleanly, the second kills every machine and exits.
#[derive(Debug)]
pub struct Interrupt {
    /// Dropped by the first signal, which every wait of every run sees as
    /// its receiver disconnecting.
    first_sender: Mutex<Option<Sender<()>>>,
    first: Receiver<()>,
    /// The first signal's number, 0 before it.
    signal: AtomicI32,
    /// The process ids of the machines not reaped yet. A pid is removed under
    /// this lock when its process is reaped, so the second signal never kills
    /// a process that is not ours.
    children: Mutex<BTreeSet<u32>>,
}

impl Interrupt {
    /// Installs the handlers; `results_dir` is named when the second signal
    /// ends the command.
    pub fn install(results_dir: &Path) -> anyhow::Result<Arc<Interrupt>> {
        let (sender, first) = crossbeam_channel::bounded(0);
        let interrupt = Arc::new(Interrupt {
            first_sender: Mutex::new(Some(sender)),
            first,
            signal: AtomicI32::new(0),
            children: Mutex::new(BTreeSet::new()),
        });
        let mut signals =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
                .context("cannot install the signal handlers")?;
        let handler = Arc::clone(&interrupt);
        let results_dir = results_dir.to_path_buf();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if handler.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                        eprintln!(
                            "clocklab: {}: stopping every run (each machine drains and writes Stopped); press Ctrl-C again to kill them at once",
                            signal_name(signal)
                        );
                        drop(handler.first_sender.lock().expect("the signal lock is never poisoned").take());
                    } else {
                        handler.kill_all_and_exit(signal, &results_dir);
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(interrupt)
    }

    /// The first signal's number, if one came.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// Whether the first signal came.
    fn fired(&self) -> bool {
        self.signal().is_some()
    }

    /// What stopped the runs, for their manifests.
    fn cause(&self) -> String {
        format!("clocklab run got {}", signal_name(self.signal.load(Ordering::SeqCst)))
    }

    fn kill_all_and_exit(&self, signal: i32, results_dir: &Path) -> ! {
        // The lock is kept to the end: no pid in the set can be reaped (and
        // reused) while it is killed.
        let children = self.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for &pid in children.iter() {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        eprintln!(
            "clocklab: {} again: killed {} machines; results so far in {} (the logs of runs that were still going may end without Stopped)",
            signal_name(signal),
            children.len(),
            results_dir.display()
        );
        std::process::exit(128 + signal);
    }
}

/// The name of a signal `clocklab` handles.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Sends one control line.
pub fn send_line<W: Write, T: Serialize>(out: &mut W, message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// A token in hexadecimal.
pub fn token_to_hex(token: &[u8; TOKEN_LEN]) -> String {
    token.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A token from hexadecimal (32 digits).
pub fn token_from_hex(hex: &str) -> Option<[u8; TOKEN_LEN]> {
    if hex.len() != 2 * TOKEN_LEN || !hex.is_ascii() {
        return None;
    }
    let mut token = [0u8; TOKEN_LEN];
    for (idx, byte) in token.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * idx..2 * idx + 2], 16).ok()?;
    }
    Some(token)
}

/// An instant as RFC 3339, UTC, with microseconds.
pub fn rfc3339_us(time_us: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{time_us} us since the Unix epoch"))
}

/// Runs every plan as real processes, `jobs` runs at a time; writes each run's
/// logs and manifest and returns the manifests in plan order. After an
/// interruption no new run starts: the manifests are those of the runs that
/// started.
pub fn run_real(
    plans: &[RunPlan],
    config: &Config,
    jobs: usize,
    results_dir: &Path,
    interrupt: &Arc<Interrupt>,
) -> anyhow::Result<Vec<RunManifest>> {
    let exe = std::env::current_exe().context("cannot find the clocklab executable to start machines")?;
    let jobs = jobs.clamp(1, plans.len().max(1));
    let progress = Progress::new(plans, jobs);
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<anyhow::Result<RunManifest>>>> = Mutex::new((0..plans.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let idx = next.fetch_add(1, Ordering::Relaxed);
                        let Some(plan) = plans.get(idx) else { break };
                        if interrupt.fired() {
                            break;
                        }
                        let manifest = run_one(&exe, plan, config, &progress, idx, interrupt);
                        let written = std::fs::write(layout::manifest_path(&plan.dir), manifest.to_json())
                            .with_context(|| format!("cannot write {}", layout::manifest_path(&plan.dir).display()))
                            .map(|()| manifest);
                        progress.finished(idx);
                        slots.lock().expect("no worker panics holding the slots")[idx] = Some(written);
                    }
                })
            })
            .collect();
        while !workers.iter().all(|worker| worker.is_finished()) {
            progress.refresh();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    progress.bar.finish_and_clear();
    let manifests = slots
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|slot| match slot {
            Some(manifest) => manifest.map(Some),
            None if interrupt.fired() => Ok(None),
            None => Err(anyhow!("a run was never started")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    print_lateness(&manifests, results_dir);
    Ok(manifests)
}

/// Prints one line: the worst p50, p99 and maximum tick lateness of all machines.
fn print_lateness(manifests: &[RunManifest], results_dir: &Path) {
    let summaries: Vec<LatenessSummary> = manifests
        .iter()
        .filter_map(|m| m.extra.get("tick_lateness_us"))
        .filter_map(|value| serde_json::from_value::<BTreeMap<String, LatenessSummary>>(value.clone()).ok())
        .flat_map(BTreeMap::into_values)
        .collect();
    if summaries.is_empty() {
        return;
    }
    let worst = |f: fn(&LatenessSummary) -> u64| summaries.iter().map(f).max().unwrap_or(0);
    say!(
        "tick lateness over {} machines: worst p50 {} us, worst p99 {} us, max {} us (per machine in each manifest.json under {})",
        summaries.len(),
        worst(|s| s.p50_us),
        worst(|s| s.p99_us),
        worst(|s| s.max_us),
        results_dir.display()
    );
}

/// The progress bar: runs done, and an estimate of the seconds left.
struct Progress {
    bar: ProgressBar,
    jobs: usize,
    /// Each run's deadline once it started; `None` while queued; removed when done.
    deadlines: Mutex<BTreeMap<usize, Option<Instant>>>,
    /// A run's expected length: its duration plus a second to connect and drain.
    lengths: Vec<Duration>,
}

impl Progress {
    fn new(plans: &[RunPlan], jobs: usize) -> Progress {
        let bar = ProgressBar::new(plans.len() as u64);
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs done, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let lengths = plans.iter().map(|p| Duration::from_secs_f64(p.experiment.duration + 1.0)).collect();
        Progress { bar, jobs, deadlines: Mutex::new((0..plans.len()).map(|idx| (idx, None)).collect()), lengths }
    }

    fn started(&self, idx: usize, deadline: Instant) {
        self.deadlines.lock().expect("progress lock").insert(idx, Some(deadline));
    }

    fn finished(&self, idx: usize) {
        self.deadlines.lock().expect("progress lock").remove(&idx);
        self.bar.inc(1);
    }

    fn refresh(&self) {
        let now = Instant::now();
        let deadlines = self.deadlines.lock().expect("progress lock");
        let running = deadlines.values().flatten().map(|d| d.saturating_duration_since(now)).max().unwrap_or_default();
        let queued: Duration = deadlines.iter().filter(|(_, d)| d.is_none()).map(|(idx, _)| self.lengths[*idx]).sum();
        let left = running + queued / self.jobs as u32;
        self.bar.set_message(format!("about {} s left", left.as_secs()));
        self.bar.tick();
    }
}

/// One machine process of a run, as the orchestrator sees it.
struct MachineProcess {
    id: MachineId,
    child: Child,
    stdin: Option<ChildStdin>,
    status: Option<ExitStatus>,
    stderr: Arc<Mutex<Vec<String>>>,
    interrupt: Arc<Interrupt>,
}

impl MachineProcess {
    fn send(&mut self, message: &ToMachine) -> anyhow::Result<()> {
        let id = self.id;
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("machine {id}: its input is closed"))?;
        send_line(stdin, message).map_err(|error| anyhow!("machine {id}: cannot send it a control line: {error}"))
    }

    /// The last line the machine wrote on stderr, if any, without the
    /// command's own `clocklab: error: ` prefix.
    fn last_error(&self) -> Option<String> {
        let last = self.stderr.lock().expect("stderr lock").last().cloned()?;
        Some(last.strip_prefix("clocklab: error: ").map(str::to_string).unwrap_or(last))
    }

    /// Reaps the process if it has exited (under the interrupt's lock, see
    /// [`Interrupt::children`]).
    fn try_reap(&mut self) -> std::io::Result<Option<ExitStatus>> {
        let mut children = self.interrupt.children.lock().expect("the children lock is never poisoned");
        let status = self.child.try_wait()?;
        if let Some(status) = status {
            children.remove(&self.child.id());
            self.status = Some(status);
        }
        Ok(status)
    }

    /// Kills and reaps the process.
    fn kill(&mut self) {
        let mut children = self.interrupt.children.lock().expect("the children lock is never poisoned");
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
        children.remove(&self.child.id());
    }
}

/// A run's children: whatever happens, none outlives the run.
struct Children(Vec<MachineProcess>);

impl Children {
    /// Tells every machine still running to stop at `at_us` (at once if it
    /// is not ticking yet).
    fn stop_all(&mut self, at_us: i64) {
        for process in &mut self.0 {
            if process.status.is_none() {
                // A machine that has exited cannot take it, and needs not.
                let _ = process.send(&ToMachine::Stop(at_us));
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for process in &mut self.0 {
            if process.status.is_none() {
                process.kill();
            }
        }
    }
}

/// What a machine said on stdout, or that its stdout closed.
enum Report {
    Said(FromMachine),
    Garbled(String),
    Closed,
}

/// What a run collects as it goes, for its manifest.
#[derive(Default)]
struct RunRecord {
    ports: BTreeMap<MachineId, u16>,
    summaries: BTreeMap<MachineId, RunSummary>,
    exit_statuses: BTreeMap<MachineId, String>,
    failures: Vec<String>,
    start_us: Option<i64>,
    /// What interrupted the run, if something did.
    interrupted: Option<String>,
    /// Machines whose stdout has closed.
    closed: BTreeSet<MachineId>,
    /// Each machine's process id, for the manifest.
    pids: BTreeMap<MachineId, u32>,
    /// A signal called the run off before it started ticking: a machine
    /// told to stop while connecting may fail because its peers left, which
    /// is no failure of the run.
    called_off: bool,
}

/// Why the start of a run did not go through.
enum Halt {
    /// A signal, to `clocklab run` or to one of the machines; says which.
    Interrupted(String),
    /// Something failed.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Halt {
    fn from(error: anyhow::Error) -> Halt {
        Halt::Failed(error)
    }
}

/// Runs one plan and returns its manifest; any failure is in its status.
fn run_one(
    exe: &Path,
    plan: &RunPlan,
    config: &Config,
    progress: &Progress,
    idx: usize,
    interrupt: &Arc<Interrupt>,
) -> RunManifest {
    let spawned_us = now_us();
    let mut record = RunRecord::default();
    if let Err(error) = drive(exe, plan, config, progress, idx, interrupt, &mut record) {
        record.failures.insert(0, format!("{error:#}"));
    }
    let ended_us = now_us();
    let status = match (record.failures.first(), &record.interrupted) {
        (_, Some(_)) if record.called_off => RunStatus::Interrupted,
        (Some(cause), _) => RunStatus::Failed { cause: cause.clone() },
        (None, Some(_)) => RunStatus::Interrupted,
        (None, None) => RunStatus::Ok,
    };
    let machines = plan
        .machines
        .iter()
        .map(|m| MachineOutcome {
            id: m.id,
            address: match record.ports.get(&m.id) {
                Some(port) => format!("{}:{port}", plan.host),
                None => format!("{}:?", plan.host),
            },
            rate: m.rate,
            seed: m.seed,
            clock_offset_us: m.clock_offset_us,
            clock_drift_ppm: m.clock_drift_ppm,
            exit_status: Some(record.exit_statuses.get(&m.id).cloned().unwrap_or_else(|| "not started".into())),
            logs: plan.log_formats.iter().map(|&format| clocklab_log::file_name(m.id, format)).collect(),
        })
        .collect();
    let mut extra = BTreeMap::new();
    if !record.summaries.is_empty() {
        let lateness: BTreeMap<String, LatenessSummary> =
            record.summaries.iter().map(|(id, s)| (id.to_string(), s.lateness)).collect();
        extra.insert("tick_lateness_us".into(), serde_json::to_value(lateness).expect("plain numbers serialise"));
        let messages: BTreeMap<String, serde_json::Value> = record
            .summaries
            .iter()
            .map(|(id, s)| {
                let value = serde_json::json!({
                    "sent": s.sent, "processed": s.processed, "unprocessed": s.unprocessed,
                    "send_errors": s.send_errors, "disconnected": s.disconnected,
                    "refused": s.refused, "refused_connections": s.refused_connections,
                    "stopped_early": s.stopped_early,
                });
                (id.to_string(), value)
            })
            .collect();
        extra.insert("messages".into(), serde_json::to_value(messages).expect("plain numbers serialise"));
    }
    if let Some(cause) = &record.interrupted {
        extra.insert("interrupted_by".into(), serde_json::Value::String(cause.clone()));
    }
    if !record.failures.is_empty() {
        extra.insert("failures".into(), serde_json::to_value(&record.failures).expect("strings serialise"));
    }
    if !record.pids.is_empty() {
        let pids: BTreeMap<String, u32> = record.pids.iter().map(|(id, pid)| (id.to_string(), *pid)).collect();
        extra.insert("pids".into(), serde_json::to_value(pids).expect("plain numbers serialise"));
    }
    RunManifest {
        clocklab_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: Runtime::Real,
        experiment: plan.experiment.clone(),
        run_idx: plan.run_idx,
        seeds: plan.seed_tree(),
        machines,
        started_at: rfc3339_us(record.start_us.unwrap_or(spawned_us)),
        ended_at: rfc3339_us(ended_us),
        status,
        extra,
    }
}

/// Waits until every machine in `pending` has said what `accept` takes, or
/// `deadline`; a machine whose stdout closes first has failed. A signal (to
/// `clocklab run`, or one a machine reports) ends the wait.
#[allow(clippy::too_many_arguments)] // One call site per phase; a struct would only rename them.
fn collect(
    reports: &Receiver<(MachineId, Report)>,
    children: &Children,
    record: &mut RunRecord,
    interrupt: &Interrupt,
    mut pending: Vec<MachineId>,
    deadline: Instant,
    what: &str,
    mut accept: impl FnMut(&mut RunRecord, MachineId, FromMachine) -> anyhow::Result<bool>,
) -> Result<(), Halt> {
    while !pending.is_empty() {
        let (id, report) = crossbeam_channel::select! {
            recv(reports) -> report => report.map_err(|_| anyhow!("every machine's output closed"))?,
            recv(interrupt.first) -> _ => return Err(Halt::Interrupted(interrupt.cause())),
            default(deadline.saturating_duration_since(Instant::now())) => {
                return Err(anyhow!("machines {pending:?} did not report {what} in time").into());
            }
        };
        match report {
            Report::Said(FromMachine::Signalled { signal }) => {
                return Err(Halt::Interrupted(format!("machine {id} got {signal}")));
            }
            Report::Said(message) => {
                if accept(record, id, message)? {
                    pending.retain(|&p| p != id);
                }
            }
            Report::Garbled(line) => return Err(anyhow!("machine {id} said something unexpected: {line:?}").into()),
            Report::Closed => {
                record.closed.insert(id);
                let process = children.0.iter().find(|p| p.id == id).expect("reports come from our children");
                // Its stderr may still be arriving: give the reader a moment.
                std::thread::sleep(Duration::from_millis(50));
                let cause = process.last_error().unwrap_or_else(|| "no error message".into());
                return Err(anyhow!("machine {id} exited before it reported {what}: {cause}").into());
            }
        }
    }
    Ok(())
}

/// Spawns the run's machines and takes them through bind, connect, start and
/// the end; fills `record` as it goes.
fn drive(
    exe: &Path,
    plan: &RunPlan,
    config: &Config,
    progress: &Progress,
    idx: usize,
    interrupt: &Arc<Interrupt>,
    record: &mut RunRecord,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&plan.dir).with_context(|| format!("cannot create {}", plan.dir.display()))?;
    let connect_timeout = Duration::from_secs_f64(config.connect_timeout);
    let (report_tx, reports) = crossbeam_channel::unbounded();
    let mut children = Children(Vec::new());
    for machine in &plan.machines {
        let process = spawn_machine(exe, machine.id, &report_tx, interrupt)?;
        record.pids.insert(machine.id, process.child.id());
        children.0.push(process);
    }
    drop(report_tx);

    let end_deadline = match start(plan, config, progress, idx, interrupt, &reports, &mut children, record) {
        Ok(deadline) => deadline + connect_timeout + Duration::from_secs(5),
        Err(halt) => {
            match halt {
                Halt::Interrupted(cause) => {
                    record.interrupted = Some(cause);
                    record.called_off = true;
                }
                Halt::Failed(error) => record.failures.push(format!("{error:#}")),
            }
            // Machines that have not started ticking stop at once, write
            // `Stopped` and exit.
            children.stop_all(now_us());
            Instant::now() + connect_timeout + ABANDON_TIMEOUT
        }
    };

    // From here on a machine that fails does not stop the others: they run to
    // the deadline and log its disconnection, and the run is marked failed. A
    // signal stops them all at one instant.
    let mut pending: Vec<MachineId> =
        plan.machines.iter().map(|m| m.id).filter(|id| !record.closed.contains(id)).collect();
    let mut stopping = record.interrupted.is_some() || !record.failures.is_empty();
    while !pending.is_empty() {
        let mut halt = None;
        crossbeam_channel::select! {
            recv(reports) -> report => match report {
                Ok((id, Report::Said(FromMachine::Done(summary)))) => {
                    record.summaries.insert(id, summary);
                    pending.retain(|&p| p != id);
                }
                Ok((id, Report::Said(FromMachine::Signalled { signal }))) => {
                    halt = Some(format!("machine {id} got {signal}"));
                }
                // After a start called off, a machine may still report the
                // step it was on before it takes the stop.
                Ok((_, Report::Said(FromMachine::Bound { .. } | FromMachine::Ready))) => {}
                Ok((id, Report::Garbled(line))) => {
                    record.failures.push(format!("machine {id} said something unexpected: {line:?}"));
                }
                Ok((id, Report::Closed)) => {
                    record.closed.insert(id);
                    pending.retain(|&p| p != id);
                }
                Err(_) => break,
            },
            recv(interrupt.first) -> _ => halt = Some(interrupt.cause()),
            default(end_deadline.saturating_duration_since(Instant::now())) => {
                record.failures.push(format!("machines {pending:?} did not finish in time"));
                break;
            }
        }
        if let Some(cause) = halt
            && !stopping
        {
            stopping = true;
            record.interrupted.get_or_insert(cause);
            children.stop_all(now_us() + STOP_LEAD_US);
        }
    }

    // Closing stdin is harmless now: every machine that is still alive has stopped.
    let exit_deadline = Instant::now() + Duration::from_secs(5);
    for process in &mut children.0 {
        process.stdin = None;
        let status = loop {
            match process.try_reap() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < exit_deadline => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => break None,
                Err(error) => {
                    record.failures.push(format!("machine {}: cannot wait for it: {error}", process.id));
                    break None;
                }
            }
        };
        let Some(status) = status else {
            record.failures.push(format!("machine {} did not exit after it stopped; killed", process.id));
            process.kill();
            continue;
        };
        record.exit_statuses.insert(process.id, describe(status));
        if status.code().is_none() {
            record.failures.push(format!(
                "machine {} was killed ({}); its log ends where it died",
                process.id,
                describe(status)
            ));
        } else if !status.success() {
            let cause = process.last_error().unwrap_or_else(|| "no error message".into());
            record.failures.push(format!("machine {} failed ({}): {cause}", process.id, describe(status)));
        } else if !record.summaries.contains_key(&process.id) {
            record.failures.push(format!("machine {} exited without its summary", process.id));
        }
    }
    Ok(())
}

/// Takes the run's machines through launch, bind, connect and the start
/// instant; returns the deadline.
#[allow(clippy::too_many_arguments)] // The run's context, passed through once.
fn start(
    plan: &RunPlan,
    config: &Config,
    progress: &Progress,
    idx: usize,
    interrupt: &Interrupt,
    reports: &Receiver<(MachineId, Report)>,
    children: &mut Children,
    record: &mut RunRecord,
) -> Result<Instant, Halt> {
    let mut token = [0u8; TOKEN_LEN];
    rand::rng().fill_bytes(&mut token);
    let duration_us = clocklab_model::schedule::duration_us(plan.experiment.duration);
    let connect_timeout = Duration::from_secs_f64(config.connect_timeout);
    let ids: Vec<MachineId> = plan.machines.iter().map(|m| m.id).collect();
    for (process, machine) in children.0.iter_mut().zip(&plan.machines) {
        process.send(&ToMachine::Launch(Launch {
            n_machines: plan.experiment.machines,
            max_clock_rate: plan.experiment.max_clock_rate,
            max_event_num: plan.experiment.max_event_num,
            seed: machine.seed,
            clocks: plan.experiment.clocks.names().into_iter().map(str::to_string).collect(),
            clock_offset_us: machine.clock_offset_us,
            clock_drift_ppm: machine.clock_drift_ppm,
            host: plan.host.clone(),
            token_hex: token_to_hex(&token),
            connect_timeout_s: config.connect_timeout,
            queue_cap: plan.queue_cap,
            duration_us,
            logs: plan.log_formats.iter().map(|&f| (f, layout::log_path(&plan.dir, machine.id, f))).collect(),
        }))?;
    }
    let mut addresses = BTreeMap::new();
    let bound_deadline = Instant::now() + connect_timeout;
    collect(reports, children, record, interrupt, ids.clone(), bound_deadline, "its port", |record, id, message| {
        let FromMachine::Bound { port, rate } = message else { bail!("machine {id}: expected its port first") };
        let planned = plan.machines.iter().find(|m| m.id == id).map(|m| m.rate);
        if planned != Some(rate) {
            bail!("machine {id} drew rate {rate}, the plan says {planned:?}: the machine and the plan disagree");
        }
        record.ports.insert(id, port);
        let address = format!("{}:{port}", plan.host);
        let address = std::net::ToSocketAddrs::to_socket_addrs(&address)
            .ok()
            .and_then(|mut all| all.next())
            .ok_or_else(|| anyhow!("cannot resolve {address}"))?;
        addresses.insert(id, address);
        Ok(true)
    })?;
    for process in &mut children.0 {
        process.send(&ToMachine::Peers(addresses.clone()))?;
    }
    let connect_deadline = Instant::now() + connect_timeout + Duration::from_secs(1);
    collect(reports, children, record, interrupt, ids, connect_deadline, "its connections", |_, id, message| {
        match message {
            FromMachine::Ready => Ok(true),
            _ => bail!("machine {id}: expected ready"),
        }
    })?;

    let start_us = now_us() + START_LEAD_US;
    record.start_us = Some(start_us);
    for process in &mut children.0 {
        process.send(&ToMachine::Start(start_us))?;
    }
    let deadline = Instant::now() + Duration::from_micros(START_LEAD_US as u64 + duration_us);
    progress.started(idx, deadline);
    Ok(deadline)
}

/// An exit status for the manifest: `0`, or what ended the process.
fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => code.to_string(),
        None => format!("{status}"),
    }
}

/// Starts `clocklab machine <id> --orchestrated` with its stdout and stderr read
/// by two threads.
///
/// The machine gets its own process group, so that a terminal's Ctrl-C
/// reaches only the orchestrator, which alone decides how the run stops.
fn spawn_machine(
    exe: &Path,
    id: MachineId,
    reports: &Sender<(MachineId, Report)>,
    interrupt: &Arc<Interrupt>,
) -> anyhow::Result<MachineProcess> {
    // The pid is registered before the second signal could miss it.
    let mut children = interrupt.children.lock().expect("the children lock is never poisoned");
    let mut child = Command::new(exe)
        .arg("machine")
        .arg(id.to_string())
        .arg("--orchestrated")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start machine {id} ({})", exe.display()))?;
    children.insert(child.id());
    drop(children);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let reports = reports.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let report = match serde_json::from_str::<FromMachine>(&line) {
                Ok(message) => Report::Said(message),
                Err(_) => Report::Garbled(line),
            };
            if reports.send((id, report)).is_err() {
                return;
            }
        }
        let _ = reports.send((id, Report::Closed));
    });
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut kept = kept.lock().expect("stderr lock");
            if kept.len() == STDERR_LINES {
                kept.remove(0);
            }
            kept.push(line);
        }
    });
    Ok(MachineProcess { id, child, stdin, status: None, stderr: lines, interrupt: Arc::clone(interrupt) })
}
