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
//! Any further line, or the end of stdin, tells a machine to stop: if the
//! orchestrator dies, its machines stop cleanly and no child outlives it. On
//! every error path a guard kills and reaps the run's children.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clocklab_config::{Config, MachineOutcome, RunManifest, RunPlan, RunStatus, Runtime, SeedTree, layout};
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
    /// The host to listen on.
    pub host: String,
    /// The run token, in hexadecimal.
    pub token_hex: String,
    /// The connect (and drain) timeout, in seconds.
    pub connect_timeout_s: f64,
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
    /// It has written `Stopped`.
    Done(RunSummary),
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
/// logs and manifest and returns the manifests in plan order.
pub fn run_real(
    plans: &[RunPlan],
    config: &Config,
    jobs: usize,
    results_dir: &Path,
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
                        let manifest = run_one(&exe, plan, config, &progress, idx);
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
        .map(|slot| slot.unwrap_or_else(|| Err(anyhow!("a run was never started"))))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
    println!(
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
}

impl MachineProcess {
    fn send(&mut self, message: &ToMachine) -> anyhow::Result<()> {
        let id = self.id;
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("machine {id}: its input is closed"))?;
        send_line(stdin, message).map_err(|error| anyhow!("machine {id}: cannot send it a control line: {error}"))
    }

    /// The last line the machine wrote on stderr, if any.
    fn last_error(&self) -> Option<String> {
        self.stderr.lock().expect("stderr lock").last().cloned()
    }
}

/// A run's children: whatever happens, none outlives the run.
struct Children(Vec<MachineProcess>);

impl Drop for Children {
    fn drop(&mut self) {
        for process in &mut self.0 {
            if process.status.is_none() {
                let _ = process.child.kill();
                process.status = process.child.wait().ok();
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
}

/// Runs one plan and returns its manifest; any failure is in its status.
fn run_one(exe: &Path, plan: &RunPlan, config: &Config, progress: &Progress, idx: usize) -> RunManifest {
    let spawned_us = now_us();
    let mut record = RunRecord::default();
    if let Err(error) = drive(exe, plan, config, progress, idx, &mut record) {
        record.failures.insert(0, format!("{error:#}"));
    }
    let ended_us = now_us();
    let status = match record.failures.first() {
        None => RunStatus::Ok,
        Some(cause) => RunStatus::Failed { cause: cause.clone() },
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
                });
                (id.to_string(), value)
            })
            .collect();
        extra.insert("messages".into(), serde_json::to_value(messages).expect("plain numbers serialise"));
    }
    RunManifest {
        clocklab_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: Runtime::Real,
        experiment: plan.experiment.clone(),
        run_idx: plan.run_idx,
        seeds: SeedTree {
            suite: plan.suite_seed,
            experiment: plan.experiment_seed,
            run: plan.run_seed,
            machines: plan.machines.iter().map(|m| (m.id, m.seed)).collect(),
        },
        machines,
        started_at: rfc3339_us(record.start_us.unwrap_or(spawned_us)),
        ended_at: rfc3339_us(ended_us),
        status,
        extra,
    }
}

/// Waits until every machine in `pending` has said what `accept` takes, or
/// `deadline`; a machine whose stdout closes first has failed.
fn collect(
    reports: &Receiver<(MachineId, Report)>,
    children: &Children,
    mut pending: Vec<MachineId>,
    deadline: Instant,
    what: &str,
    mut accept: impl FnMut(MachineId, FromMachine) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    while !pending.is_empty() {
        let (id, report) = reports
            .recv_deadline(deadline)
            .map_err(|_| anyhow!("machines {pending:?} did not report {what} in time"))?;
        match report {
            Report::Said(message) => {
                if accept(id, message)? {
                    pending.retain(|&p| p != id);
                }
            }
            Report::Garbled(line) => bail!("machine {id} said something unexpected: {line:?}"),
            Report::Closed => {
                let process = children.0.iter().find(|p| p.id == id).expect("reports come from our children");
                // Its stderr may still be arriving: give the reader a moment.
                std::thread::sleep(Duration::from_millis(50));
                let cause = process.last_error().unwrap_or_else(|| "no error message".into());
                bail!("machine {id} exited before it reported {what}: {cause}");
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
    record: &mut RunRecord,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&plan.dir).with_context(|| format!("cannot create {}", plan.dir.display()))?;
    let mut token = [0u8; TOKEN_LEN];
    rand::rng().fill_bytes(&mut token);
    let duration_us = clocklab_model::schedule::duration_us(plan.experiment.duration);
    let connect_timeout = Duration::from_secs_f64(config.connect_timeout);
    let (report_tx, reports) = crossbeam_channel::unbounded();
    let mut children = Children(Vec::new());
    for machine in &plan.machines {
        children.0.push(spawn_machine(exe, machine.id, &report_tx)?);
    }
    drop(report_tx);
    let ids: Vec<MachineId> = plan.machines.iter().map(|m| m.id).collect();

    for (process, machine) in children.0.iter_mut().zip(&plan.machines) {
        process.send(&ToMachine::Launch(Launch {
            n_machines: plan.experiment.machines,
            max_clock_rate: plan.experiment.max_clock_rate,
            max_event_num: plan.experiment.max_event_num,
            seed: machine.seed,
            host: plan.host.clone(),
            token_hex: token_to_hex(&token),
            connect_timeout_s: config.connect_timeout,
            duration_us,
            logs: plan.log_formats.iter().map(|&f| (f, layout::log_path(&plan.dir, machine.id, f))).collect(),
        }))?;
    }
    let mut addresses = BTreeMap::new();
    collect(&reports, &children, ids.clone(), Instant::now() + connect_timeout, "its port", |id, message| {
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
    collect(&reports, &children, ids.clone(), connect_deadline, "its connections", |id, message| match message {
        FromMachine::Ready => Ok(true),
        _ => bail!("machine {id}: expected ready"),
    })?;

    let start_us = now_us() + START_LEAD_US;
    record.start_us = Some(start_us);
    for process in &mut children.0 {
        process.send(&ToMachine::Start(start_us))?;
    }
    let deadline = Instant::now() + Duration::from_micros(START_LEAD_US as u64 + duration_us);
    progress.started(idx, deadline);

    // From here on a machine that fails does not stop the others: they run to
    // the deadline and log its disconnection, and the run is marked failed.
    let end_deadline = deadline + connect_timeout + Duration::from_secs(5);
    let mut pending = ids.clone();
    while !pending.is_empty() {
        let Ok((id, report)) = reports.recv_deadline(end_deadline) else {
            record.failures.push(format!("machines {pending:?} did not finish in time"));
            break;
        };
        match report {
            Report::Said(FromMachine::Done(summary)) => {
                record.summaries.insert(id, summary);
                pending.retain(|&p| p != id);
            }
            Report::Said(other) => record.failures.push(format!("machine {id}: unexpected {other:?}")),
            Report::Garbled(line) => record.failures.push(format!("machine {id} said something unexpected: {line:?}")),
            Report::Closed => pending.retain(|&p| p != id),
        }
    }

    // Closing stdin is harmless now: every machine that is still alive has stopped.
    let exit_deadline = Instant::now() + Duration::from_secs(5);
    for process in &mut children.0 {
        process.stdin = None;
        let status = loop {
            match process.child.try_wait() {
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
            continue;
        };
        process.status = Some(status);
        record.exit_statuses.insert(process.id, describe(status));
        if !status.success() {
            let cause = process.last_error().unwrap_or_else(|| "no error message".into());
            record.failures.push(format!("machine {} failed ({}): {cause}", process.id, describe(status)));
        } else if !record.summaries.contains_key(&process.id) {
            record.failures.push(format!("machine {} exited without its summary", process.id));
        }
    }
    Ok(())
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
fn spawn_machine(exe: &Path, id: MachineId, reports: &Sender<(MachineId, Report)>) -> anyhow::Result<MachineProcess> {
    let mut child = Command::new(exe)
        .arg("machine")
        .arg(id.to_string())
        .arg("--orchestrated")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start machine {id} ({})", exe.display()))?;
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
    Ok(MachineProcess { id, child, stdin, status: None, stderr: lines })
}
