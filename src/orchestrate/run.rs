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

use super::process::{Children, Report, describe, spawn_machine};
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
        Ok(deadline) => after(after(deadline, clocklab_net::longest_end(connect_timeout)), Duration::from_secs(5)),
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
            after(Instant::now(), clocklab_net::longest_end(connect_timeout) + ABANDON_TIMEOUT)
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
            token_hex: clocklab_model::wire::token_to_hex(&token),
            connect_timeout_s: config.connect_timeout,
            queue_cap: plan.queue_cap,
            duration_us,
            logs: plan.log_formats.iter().map(|&f| (f, layout::log_path(&plan.dir, machine.id, f))).collect(),
        }))?;
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
    Ok(deadline)
}

/// `at + later`, or as far as an `Instant` goes: no setting can make a
/// deadline overflow (validation bounds them too).
fn after(at: Instant, later: Duration) -> Instant {
    at.checked_add(later).or_else(|| at.checked_add(Duration::from_secs(1 << 32))).unwrap_or(at)
}
