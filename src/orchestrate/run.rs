//! One real run: its machines spawned, taken through launch, bind, connect
//! and the start barrier, then waited for to the end, with everything that
//! happened kept in a [`RunRecord`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clocklab_config::{Config, RunManifest, RunPlan, RunStatus, layout};
use clocklab_model::MachineId;
use clocklab_model::wire::TOKEN_LEN;
use clocklab_net::{RunSummary, now_us};
use crossbeam_channel::Receiver;
use rand::Rng;

use super::faults::{Action, Addresses, Schedule, write_crash_line};
use super::process::{Children, Report, Who, describe, spawn_machine};
use super::progress::Progress;
use super::protocol::{FromMachine, Launch, ToMachine};
use crate::signals::Interrupt;

/// How far ahead of "all ready" the shared start instant is: enough for every
/// machine of the run to read its `start` line, even on a busy machine.
const START_LEAD_US: i64 = 100_000;

/// How far ahead a stop instant is: enough for every machine of the run to
/// read its `stop` line, so that they all stop at the same instant.
const STOP_LEAD_US: i64 = 50_000;

/// How long machines told to stop before they started ticking have to exit.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(5);

/// What a run collects as it goes, for its manifest.
#[derive(Default)]
pub(super) struct RunRecord {
    pub(super) ports: BTreeMap<MachineId, u16>,
    pub(super) summaries: BTreeMap<MachineId, RunSummary>,
    pub(super) exit_statuses: BTreeMap<MachineId, String>,
    pub(super) failures: Vec<String>,
    pub(super) start_us: Option<i64>,
    /// What interrupted the run, if something did.
    pub(super) interrupted: Option<String>,
    /// Machines whose stdout has closed.
    pub(super) closed: BTreeSet<MachineId>,
    /// Each machine's process id, for the manifest.
    pub(super) pids: BTreeMap<MachineId, u32>,
    /// A signal called the run off before it started ticking: a machine
    /// told to stop while connecting may fail because its peers left, which
    /// is no failure of the run.
    pub(super) called_off: bool,
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
pub(super) fn run_one(
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
    // Messages a machine could not write to a peer that stopped reading are
    // lost, and counted: the run is not sound.
    for (id, summary) in &record.summaries {
        for (peer, unsent) in &summary.unsent {
            if crashes(plan, *peer) {
                // Sent to a machine the fault plan crashed: the crash took them.
                continue;
            }
            record.failures.push(format!(
                "machine {id} declared machine {peer} gone (it stopped reading): {unsent} messages to it were never sent"
            ));
        }
    }
    let status = match (record.failures.first(), &record.interrupted) {
        (_, Some(_)) if record.called_off => RunStatus::Interrupted,
        (Some(cause), _) => RunStatus::Failed { cause: cause.clone() },
        (None, Some(_)) => RunStatus::Interrupted,
        (None, None) => RunStatus::from_behind(&record.summaries.iter().map(|(&id, s)| (id, s.behind)).collect()),
    };
    super::manifest::build(plan, &record, status, spawned_us, ended_us)
}

/// Whether the fault plan crashes machine `id` in `plan`'s run.
fn crashes(plan: &RunPlan, id: MachineId) -> bool {
    plan.experiment
        .faults
        .iter()
        .any(|f| matches!(f, clocklab_faults::FaultSpec::Crash { machine, .. } if *machine == id))
}

/// Waits until every machine in `pending` has said what `accept` takes, or
/// `deadline`; a machine whose stdout closes first has failed. A signal (to
/// `clocklab run`, or one a machine reports) ends the wait.
#[allow(clippy::too_many_arguments)] // One call site per phase; a struct would only rename them.
fn collect(
    reports: &Receiver<(Who, Report)>,
    children: &Children,
    record: &mut RunRecord,
    interrupt: &Interrupt,
    mut pending: Vec<MachineId>,
    deadline: Instant,
    what: &str,
    mut accept: impl FnMut(&mut RunRecord, MachineId, FromMachine) -> anyhow::Result<bool>,
) -> Result<(), Halt> {
    while !pending.is_empty() {
        let (Who { id, .. }, report) = crossbeam_channel::select! {
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

/// What a run that started knows.
struct Started {
    /// When the machines' ticking ends.
    deadline: Instant,
    /// The run's start instant, microseconds since the Unix epoch.
    start_us: i64,
    /// Where each machine listens.
    addresses: Addresses,
    /// The run's token (a restarted machine presents it too).
    token: [u8; TOKEN_LEN],
}

/// The run's processes while they tick: the machines' faults applied as
/// planned, restarted machines taken through bind, connect and start.
struct Ticking<'a> {
    exe: &'a Path,
    plan: &'a RunPlan,
    config: &'a Config,
    interrupt: &'a Arc<Interrupt>,
    report_tx: crossbeam_channel::Sender<(Who, Report)>,
    started: Started,
    schedule: Schedule,
    /// Machines stopped by a pause, not continued yet.
    paused: BTreeSet<MachineId>,
}

impl Ticking<'_> {
    /// Takes the actions of the fault plan that are due.
    fn act(&mut self, children: &mut Children, record: &mut RunRecord, pending: &mut Vec<Who>) -> anyhow::Result<()> {
        for (at_us, id, action) in self.schedule.take_due() {
            let Some(process) = children.0.iter_mut().rev().find(|p| p.id == id) else { continue };
            match action {
                Action::Crash => {
                    if process.status.is_some() {
                        continue;
                    }
                    process.kill();
                    process.crashed = true;
                    self.paused.remove(&id);
                    pending.retain(|who| who.id != id);
                    let machine = self.plan.machines.iter().find(|m| m.id == id).expect("the plan's machine");
                    write_crash_line(self.plan, machine, self.started.start_us, now_us())?;
                }
                Action::Restart(clock) => {
                    let who = Who { id, incarnation: process.incarnation + 1 };
                    let mut restarted = spawn_machine(self.exe, who, &self.report_tx, self.interrupt)?;
                    let machine = self.plan.machines.iter().find(|m| m.id == id).expect("the plan's machine");
                    let restart = self.schedule.restart_spec(at_us, clock);
                    let settings = launch(self.plan, self.config, machine, &self.started.token, Some(restart));
                    restarted.send(&ToMachine::Launch(Box::new(settings)))?;
                    record.pids.insert(id, restarted.child.id());
                    children.0.push(restarted);
                    pending.push(who);
                }
                Action::Pause | Action::Resume => {
                    if process.status.is_some() {
                        continue;
                    }
                    let signal = Schedule::signal_of(action).expect("a pause or a resume is a signal");
                    process.signal(signal)?;
                    if action == Action::Pause {
                        self.paused.insert(id);
                    } else {
                        self.paused.remove(&id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes a restarted machine's report of its port or its connections:
    /// its peers are told to connect to it, then it is told the start.
    fn restarted(
        &mut self,
        children: &mut Children,
        record: &mut RunRecord,
        who: Who,
        message: FromMachine,
    ) -> anyhow::Result<()> {
        let Some(process) = children.0.iter_mut().find(|p| p.id == who.id && p.incarnation == who.incarnation) else {
            return Ok(());
        };
        match message {
            FromMachine::Bound { port, .. } => {
                record.ports.insert(who.id, port);
                let address = resolve(&self.plan.host, port)?;
                self.started.addresses.insert(who.id, address);
                process.send(&ToMachine::Peers(self.started.addresses.clone()))?;
                for peer in children.0.iter_mut().filter(|p| p.id != who.id && p.status.is_none()) {
                    // A peer that has exited needs not hear it.
                    let _ = peer.send(&ToMachine::Rejoin { peer: who.id, address });
                }
            }
            FromMachine::Ready => process.send(&ToMachine::Start(self.started.start_us))?,
            _ => {}
        }
        Ok(())
    }

    /// Lets every paused machine go on (a run that stops must end whole).
    fn resume_all(&mut self, children: &Children) {
        for id in std::mem::take(&mut self.paused) {
            if let Some(process) = children.0.iter().rev().find(|p| p.id == id && p.status.is_none()) {
                let _ = process.signal(nix::sys::signal::Signal::SIGCONT);
            }
        }
    }
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
    clocklab_config::output::create_dir_all(&plan.dir)
        .with_context(|| format!("cannot create {}", plan.dir.display()))?;
    let connect_timeout = Duration::from_secs_f64(config.connect_timeout);
    let (report_tx, reports) = crossbeam_channel::unbounded();
    let mut children = Children(Vec::new());
    for machine in &plan.machines {
        let process = spawn_machine(exe, Who { id: machine.id, incarnation: 0 }, &report_tx, interrupt)?;
        record.pids.insert(machine.id, process.child.id());
        children.0.push(process);
    }

    let mut ticking = None;
    let end_deadline = match start(plan, config, progress, idx, interrupt, &reports, &mut children, record) {
        Ok(started) => {
            // A message the fault plan delays past the end still comes.
            let duration_us = clocklab_model::schedule::duration_us(plan.experiment.duration);
            let plan_delay =
                clocklab_faults::FaultPlan::new(&plan.experiment.faults, 0, duration_us).longest_delay_us();
            let end = clocklab_net::longest_end(connect_timeout).saturating_add(Duration::from_micros(plan_delay));
            let deadline = after(after(started.deadline, end), Duration::from_secs(5));
            let schedule = Schedule::new(plan, started.start_us);
            ticking =
                Some(Ticking { exe, plan, config, interrupt, report_tx, started, schedule, paused: BTreeSet::new() });
            deadline
        }
        Err(halt) => {
            drop(report_tx);
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
            after(Instant::now(), clocklab_net::longest_end(connect_timeout) + ABANDON_TIMEOUT)
        }
    };

    // From here on a machine that fails does not stop the others: they run to
    // the deadline and log its disconnection, and the run is marked failed. A
    // signal stops them all at one instant.
    let mut pending: Vec<Who> = plan
        .machines
        .iter()
        .map(|m| Who { id: m.id, incarnation: 0 })
        .filter(|who| !record.closed.contains(&who.id))
        .collect();
    let mut stopping = record.interrupted.is_some() || !record.failures.is_empty();
    while !pending.is_empty() {
        let mut halt = None;
        let next_action = ticking.as_ref().filter(|_| !stopping).and_then(|t| t.schedule.next_due());
        let wake = next_action.map_or(end_deadline, |at| at.min(end_deadline));
        crossbeam_channel::select! {
            recv(reports) -> report => match report {
                Ok((who, Report::Said(FromMachine::Done(summary)))) => {
                    record.summaries.insert(who.id, summary);
                    pending.retain(|&p| p != who);
                }
                Ok((who, Report::Said(FromMachine::Signalled { signal }))) => {
                    halt = Some(format!("machine {} got {signal}", who.id));
                }
                Ok((who, Report::Said(message @ (FromMachine::Bound { .. } | FromMachine::Ready)))) => {
                    // A restarted machine coming up; after a start called off,
                    // a machine may still report the step it was on.
                    if who.incarnation > 0 && !stopping && let Some(ticking) = &mut ticking {
                        if let Err(error) = ticking.restarted(&mut children, record, who, message) {
                            record.failures.push(format!("{error:#}"));
                        }
                    }
                }
                Ok((who, Report::Garbled(line))) => {
                    record.failures.push(format!("machine {} said something unexpected: {line:?}", who.id));
                }
                Ok((who, Report::Closed)) => {
                    record.closed.insert(who.id);
                    pending.retain(|&p| p != who);
                }
                Err(_) => break,
            },
            recv(interrupt.first) -> _ => halt = Some(interrupt.cause()),
            default(wake.saturating_duration_since(Instant::now())) => {
                if Instant::now() >= end_deadline {
                    let ids: Vec<MachineId> = pending.iter().map(|who| who.id).collect();
                    record.failures.push(format!("machines {ids:?} did not finish in time"));
                    break;
                }
            }
        }
        if !stopping && let Some(ticking) = &mut ticking {
            if let Err(error) = ticking.act(&mut children, record, &mut pending) {
                record.failures.push(format!("{error:#}"));
                halt.get_or_insert_with(|| "a fault of the plan could not be applied".into());
            }
        }
        if let Some(cause) = halt
            && !stopping
        {
            stopping = true;
            record.interrupted.get_or_insert(cause);
            if let Some(ticking) = &mut ticking {
                ticking.resume_all(&children);
            }
            children.stop_all(now_us() + STOP_LEAD_US);
        }
    }
    drop(ticking);

    // Closing stdin is harmless now: every machine that is still alive has stopped.
    let exit_deadline = Instant::now() + Duration::from_secs(5);
    for process in &mut children.0 {
        process.stdin = None;
        if process.crashed {
            record.exit_statuses.insert(process.id, "killed by the fault plan (a crash)".into());
            continue;
        }
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

/// The launch settings of `machine` in `plan`'s run (`restart`: of a new
/// incarnation after a crash).
fn launch(
    plan: &RunPlan,
    config: &Config,
    machine: &clocklab_config::MachinePlan,
    token: &[u8; TOKEN_LEN],
    restart: Option<clocklab_net::RestartSpec>,
) -> Launch {
    Launch {
        n_machines: plan.experiment.machines,
        max_clock_rate: plan.experiment.max_clock_rate,
        max_event_num: plan.experiment.max_event_num,
        seed: machine.seed,
        clocks: plan.experiment.clocks.names().into_iter().map(str::to_string).collect(),
        clock_offset_us: machine.clock_offset_us,
        clock_drift_ppm: machine.clock_drift_ppm,
        host: plan.host.clone(),
        token_hex: clocklab_model::wire::token_to_hex(token),
        connect_timeout_s: config.connect_timeout,
        queue_cap: plan.queue_cap,
        duration_us: clocklab_model::schedule::duration_us(plan.experiment.duration),
        logs: plan.log_formats.iter().map(|&f| (f, layout::log_path(&plan.dir, machine.id, f))).collect(),
        faults: plan.experiment.faults.clone(),
        run_seed: plan.run_seed,
        restart,
    }
}

/// The address of `host:port`.
fn resolve(host: &str, port: u16) -> anyhow::Result<std::net::SocketAddr> {
    let address = format!("{host}:{port}");
    std::net::ToSocketAddrs::to_socket_addrs(&address)
        .ok()
        .and_then(|mut all| all.next())
        .ok_or_else(|| anyhow!("cannot resolve {address}"))
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
    reports: &Receiver<(Who, Report)>,
    children: &mut Children,
    record: &mut RunRecord,
) -> Result<Started, Halt> {
    let mut token = [0u8; TOKEN_LEN];
    rand::rng().fill_bytes(&mut token);
    let duration_us = clocklab_model::schedule::duration_us(plan.experiment.duration);
    let connect_timeout = Duration::from_secs_f64(config.connect_timeout);
    let ids: Vec<MachineId> = plan.machines.iter().map(|m| m.id).collect();
    for (process, machine) in children.0.iter_mut().zip(&plan.machines) {
        process.send(&ToMachine::Launch(Box::new(launch(plan, config, machine, &token, None))))?;
    }
    let mut addresses = BTreeMap::new();
    let bound_deadline = after(Instant::now(), connect_timeout);
    collect(reports, children, record, interrupt, ids.clone(), bound_deadline, "its port", |record, id, message| {
        let FromMachine::Bound { port, rate } = message else { bail!("machine {id}: expected its port first") };
        let planned = plan.machines.iter().find(|m| m.id == id).map(|m| m.rate);
        if planned != Some(rate) {
            bail!("machine {id} drew rate {rate}, the plan says {planned:?}: the machine and the plan disagree");
        }
        record.ports.insert(id, port);
        addresses.insert(id, resolve(&plan.host, port)?);
        Ok(true)
    })?;
    for process in &mut children.0 {
        process.send(&ToMachine::Peers(addresses.clone()))?;
    }
    let connect_deadline = after(Instant::now(), connect_timeout + Duration::from_secs(1));
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
    let deadline = after(Instant::now(), Duration::from_micros(duration_us.saturating_add(START_LEAD_US as u64)));
    progress.started(idx, deadline);
    Ok(Started { deadline, start_us, addresses, token })
}

/// `at + later`, or as far as an `Instant` goes: no setting can make a
/// deadline overflow (validation bounds them too).
fn after(at: Instant, later: Duration) -> Instant {
    at.checked_add(later).or_else(|| at.checked_add(Duration::from_secs(1 << 32))).unwrap_or(at)
}
