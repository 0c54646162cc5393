//! One real run, supervised, in four steps, one module each:
//!
//! - [`start`]: its machines spawned and taken through launch, bind,
//!   connect and the start barrier;
//! - [`watch`]: their reports taken until every machine is done, and the
//!   plan's machine faults applied as each machine's [`Life`] says
//!   ([`faults`]: a crash kills the process, a restart spawns the next
//!   incarnation and tells the peers, a pause stops and continues it);
//! - [`reap`]: every process reaped (killed if it does not exit);
//! - [`manifest`]: the run's record as its `manifest.json`.
//!
//! Everything that happened goes in a [`RunRecord`]; a failure names its
//! root cause: the first machine that failed of its own error, not the peers
//! that saw it go.

mod faults;
mod hosts;
mod manifest;
mod reap;
mod start;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clocklab_config::{Config, MachinePlan, RunHost, RunManifest, RunPlan, RunStatus};
use clocklab_driver::Life;
use clocklab_model::MachineId;
use clocklab_model::wire::TOKEN_LEN;
use clocklab_net::{RunSummary, now_us};
use crossbeam_channel::{Receiver, Sender};

use crate::control::RunControl;
use crate::launcher::{Launcher, Process, Report, Who};
use crate::protocol::{Launch, Remote, ToMachine};
use crate::remote::probe::ClockOffset;
use crate::{Failure, Observer};

/// How far ahead of "all ready" the shared start instant is: enough for every
/// machine of the run to read its `start` line, even on a busy machine.
const START_LEAD_US: i64 = 100_000;

/// How far ahead a stop instant is: enough for every machine of the run to
/// read its `stop` line, so that they all stop at the same instant.
const STOP_LEAD_US: i64 = 50_000;

/// How long machines that were told to stop, or whose input closed, have
/// to exit before they are killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after a crash's instant the machine has to say it wrote its
/// last lines (it keeps the same plan) before it is killed all the same.
const CRASH_GRACE: Duration = Duration::from_millis(250);

/// One failure of a run, as it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failed {
    /// When it was seen.
    pub(crate) at: Instant,
    /// The machine that failed, if one did.
    pub(crate) machine: Option<MachineId>,
    /// The peer whose going made it fail, if that is what it failed of.
    pub(crate) blames: Option<MachineId>,
    /// What happened, for a person.
    pub(crate) text: String,
}

/// What a run collects as it goes, for its manifest.
#[derive(Debug, Default)]
pub(crate) struct RunRecord {
    pub(crate) ports: BTreeMap<MachineId, u16>,
    pub(crate) summaries: BTreeMap<MachineId, RunSummary>,
    pub(crate) exit_statuses: BTreeMap<MachineId, String>,
    pub(crate) failures: Vec<Failed>,
    pub(crate) start_us: Option<i64>,
    /// What interrupted the run, if something did.
    pub(crate) interrupted: Option<String>,
    /// Each machine's process id (its latest incarnation's), for the manifest.
    pub(crate) pids: BTreeMap<MachineId, u32>,
    /// A stop called the run off before it started ticking: a machine told
    /// to stop while connecting may fail because its peers left, which is
    /// no failure of the run.
    pub(crate) called_off: bool,
    /// Machines whose control channel broke (their host's launcher died):
    /// gone, as a peer that stopped reading is; why, for a person.
    pub(crate) gone: BTreeMap<MachineId, String>,
    /// Each host's clock against the orchestrator's at the start, by host index.
    pub(crate) clocks: BTreeMap<usize, ClockOffset>,
    /// The same at the end.
    pub(crate) clocks_end: BTreeMap<usize, ClockOffset>,
    /// Hosts lost mid-run, by index: why.
    pub(crate) lost: BTreeMap<usize, String>,
}

impl RunRecord {
    /// Notes a failure seen now.
    pub(crate) fn fail(&mut self, machine: Option<MachineId>, blames: Option<MachineId>, text: String) {
        self.failures.push(Failed { at: Instant::now(), machine, blames, text });
    }

    /// The run's failure, if it failed: the first machine that failed of
    /// its own error (not of a peer it saw go), else the first failure.
    pub(crate) fn cause(&self) -> Option<&str> {
        let mut failures: Vec<&Failed> = self.failures.iter().collect();
        failures.sort_by_key(|failed| failed.at);
        let own = failures.iter().find(|failed| failed.machine.is_some() && failed.blames.is_none());
        own.or(failures.first()).map(|failed| failed.text.as_str())
    }
}

/// Where a machine's current incarnation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Launched, its port not known yet.
    Launched,
    /// Listening.
    Bound,
    /// Connected.
    Ready,
    /// Told the start.
    Ticking,
    /// It wrote `Stopped` and said so.
    Done,
    /// Its output closed (it exited) before it was done.
    Exited,
    /// Crashed by the plan: no process until its restart.
    Down,
}

impl Phase {
    /// Whether its peers can reach it.
    fn is_up(self) -> bool {
        matches!(self, Phase::Bound | Phase::Ready | Phase::Ticking)
    }
}

/// One machine of the run and its current incarnation.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) plan: MachinePlan,
    pub(crate) life: Life,
    pub(crate) incarnation: u32,
    pub(crate) process: Option<Box<dyn Process>>,
    pub(crate) phase: Phase,
    pub(crate) address: Option<SocketAddr>,
    /// Its crash came before this incarnation was listening: it is killed
    /// as soon as it is (having written its first line), or at its restart.
    pub(crate) crash_pending: bool,
    /// Its crash is due: it is killed when it says it wrote its last lines,
    /// or at this instant.
    pub(crate) crash_by: Option<Instant>,
    pub(crate) paused: bool,
    /// What it said when it failed: the cause, and the peer it blamed.
    pub(crate) failed: Option<(String, Option<MachineId>)>,
}

/// Why the start of a run did not go through.
pub(crate) enum Halt {
    /// A stop request, or a machine that got a signal; says which.
    Interrupted(String),
    /// Something failed (already in the record).
    Failed,
}

/// One run under supervision.
pub(crate) struct Supervisor<'a> {
    pub(crate) plan: &'a RunPlan,
    pub(crate) connect_timeout: Duration,
    pub(crate) launcher: &'a dyn Launcher,
    pub(crate) control: &'a Arc<RunControl>,
    pub(crate) reports_tx: Sender<(Who, Report)>,
    pub(crate) reports: Receiver<(Who, Report)>,
    pub(crate) slots: BTreeMap<MachineId, Slot>,
    /// Incarnations the plan crashed (killed and reaped).
    pub(crate) retired: BTreeSet<Who>,
    /// The plan's machine faults, in the order they happen: (microseconds
    /// after the start, machine, index in its life).
    pub(crate) actions: Vec<(u64, u8, MachineId, usize)>,
    pub(crate) next_action: usize,
    pub(crate) record: RunRecord,
    pub(crate) token: [u8; TOKEN_LEN],
    pub(crate) stopping: bool,
    /// The hosts of a run on several computers (empty: all on this one).
    pub(crate) hosts: Vec<RunHost>,
    /// Each host's launcher command, filled in.
    pub(crate) host_commands: Vec<Vec<String>>,
    /// The run's folder on its hosts, under their workdir.
    pub(crate) run_key: String,
}

impl std::fmt::Debug for Supervisor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("run", &self.plan.dir).field("slots", &self.slots).finish_non_exhaustive()
    }
}

/// Runs one plan and returns its manifest; any failure is in its status.
pub(crate) fn run_one(
    plan: &RunPlan,
    config: &Config,
    launcher: &dyn Launcher,
    control: &Arc<RunControl>,
    observer: &dyn Observer,
    idx: usize,
) -> RunManifest {
    let spawned_us = now_us();
    let mut supervisor = Supervisor::new(plan, config, launcher, control);
    match supervisor.start(observer, idx) {
        Ok(deadline) => supervisor.watch(deadline),
        Err(halt) => supervisor.call_off(halt),
    }
    supervisor.reap();
    let ended_us = now_us();
    supervisor.measure_end_clocks();
    supervisor.unsent_failures();
    let record = &supervisor.record;
    let status = match (record.cause(), &record.interrupted) {
        (_, Some(_)) if record.called_off => RunStatus::Interrupted,
        (Some(cause), _) => RunStatus::Failed { cause: cause.to_string() },
        (None, Some(_)) => RunStatus::Interrupted,
        (None, None) => supervisor.gone_status(),
    };
    manifest::build(plan, record, status, spawned_us, ended_us, &supervisor.hosts, &supervisor.host_commands)
}

impl<'a> Supervisor<'a> {
    fn new(
        plan: &'a RunPlan,
        config: &Config,
        launcher: &'a dyn Launcher,
        control: &'a Arc<RunControl>,
    ) -> Supervisor<'a> {
        let (reports_tx, reports) = crossbeam_channel::unbounded();
        let fault_plan = plan.fault_plan();
        let duration_us = plan.duration_us();
        let mut slots = BTreeMap::new();
        let mut actions = Vec::new();
        for machine in &plan.machines {
            let life = Life::of(&fault_plan, machine.id, duration_us);
            for (idx, event) in life.events().iter().enumerate() {
                // Clock faults the machine makes itself.
                if !matches!(event.change, clocklab_driver::Change::Clock { .. }) {
                    actions.push((event.at_us, event.change.rank(), machine.id, idx));
                }
            }
            let slot = Slot {
                plan: machine.clone(),
                life,
                incarnation: 0,
                process: None,
                phase: Phase::Launched,
                address: None,
                crash_pending: false,
                crash_by: None,
                paused: false,
                failed: None,
            };
            slots.insert(machine.id, slot);
        }
        actions.sort_unstable();
        let mut token = [0u8; TOKEN_LEN];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut token);
        let hosts = clocklab_config::run_hosts(&config.hosts, plan.experiment.machines);
        let host_commands = hosts.iter().map(|host| launcher.host_command(&host.spec).unwrap_or_default()).collect();
        // Where the run's logs go on its hosts: a folder of its own, named
        // by a random number (the token stays secret), the same for every
        // incarnation of a machine.
        let run_key =
            format!("run-{:016x}-{}-{}", rand::Rng::next_u64(&mut rand::rng()), plan.experiment.name, plan.run_idx);
        Supervisor {
            plan,
            connect_timeout: Duration::from_secs_f64(config.connect_timeout),
            launcher,
            control,
            reports_tx,
            reports,
            slots,
            retired: BTreeSet::new(),
            actions,
            next_action: 0,
            record: RunRecord::default(),
            token,
            stopping: false,
            hosts,
            host_commands,
            run_key,
        }
    }

    /// The launch settings of machine `id` (`restart`: of a new incarnation
    /// after a crash).
    pub(crate) fn launch(&self, id: MachineId, restart: Option<clocklab_net::RestartSpec>) -> Launch {
        let plan = self.plan;
        let machine = &self.slots[&id].plan;
        Launch {
            n_machines: plan.experiment.machines,
            max_clock_rate: plan.experiment.max_clock_rate,
            max_event_num: plan.experiment.max_event_num,
            seed: machine.seed,
            clocks: plan.experiment.clocks.names().into_iter().map(str::to_string).collect(),
            clock_offset_us: machine.clock_offset_us,
            clock_drift_ppm: machine.clock_drift_ppm,
            host: match self.host_of(id) {
                Some(idx) => self.hosts[idx].spec.address.clone(),
                None => plan.host.clone(),
            },
            token_hex: clocklab_model::wire::token_to_hex(&self.token),
            connect_timeout_s: self.connect_timeout.as_secs_f64(),
            queue_cap: plan.queue_cap,
            duration_us: plan.duration_us(),
            logs: plan
                .log_formats
                .iter()
                .map(|&f| (f, clocklab_config::layout::log_path(&plan.dir, machine.id, f)))
                .collect(),
            faults: plan.experiment.faults.clone(),
            run_seed: plan.run_seed,
            restart,
            remote: None,
        }
    }

    /// Starts the process of machine `id`'s incarnation `incarnation` and
    /// sends it its launch settings.
    pub(crate) fn spawn(
        &mut self,
        id: MachineId,
        incarnation: u32,
        restart: Option<clocklab_net::RestartSpec>,
    ) -> Result<(), Failure> {
        let who = Who { id, incarnation };
        let mut launch = self.launch(id, restart);
        let spawned = match self.host_of(id) {
            None => self.launcher.spawn(who, &self.reports_tx, self.control),
            Some(idx) => crate::remote::spawn_machine(
                &self.host_commands[idx],
                who,
                &launch.logs,
                &self.reports_tx,
                self.control,
            )
            .map(|(process, ship_from)| {
                let workdir = self.hosts[idx].spec.workdir.as_ref().map(std::path::PathBuf::from);
                launch.remote = Some(Remote { workdir, run_key: self.run_key.clone(), ship_from });
                process
            }),
        };
        let mut process = spawned.map_err(|error| Failure(format!("cannot start machine {id}: {error}")))?;
        if let Some(pid) = process.pid() {
            self.record.pids.insert(id, pid);
        }
        let sent = process.send(&ToMachine::Launch(Box::new(launch)));
        let slot = self.slots.get_mut(&id).expect("a machine of the plan");
        slot.incarnation = incarnation;
        slot.process = Some(process);
        slot.phase = Phase::Launched;
        slot.address = None;
        slot.crash_pending = false;
        slot.crash_by = None;
        slot.paused = false;
        slot.failed = None;
        sent.map_err(|error| Failure(format!("machine {id}: cannot send it its settings: {error}")))
    }

    /// Sends machine `id`'s current process a control line; a process that
    /// cannot take it is noted, not fatal (it has exited, and its exit says why).
    pub(crate) fn send(&mut self, id: MachineId, message: &ToMachine) -> bool {
        let Some(process) = self.slots.get_mut(&id).and_then(|slot| slot.process.as_mut()) else { return false };
        process.send(message).is_ok()
    }

    /// Where every machine that is up listens, but `except`.
    pub(crate) fn up_addresses(&self, except: MachineId) -> BTreeMap<MachineId, SocketAddr> {
        self.slots
            .iter()
            .filter(|&(&id, slot)| id != except && slot.phase.is_up())
            .filter_map(|(&id, slot)| slot.address.map(|address| (id, address)))
            .collect()
    }

    /// Tells every machine still running to stop at `at_us` (at once if it
    /// is not ticking yet), letting a paused one go on first.
    pub(crate) fn stop_all(&mut self, at_us: i64) {
        let ids: Vec<MachineId> = self.slots.keys().copied().collect();
        for id in ids {
            let slot = self.slots.get_mut(&id).expect("listed");
            if let (true, Some(process)) = (slot.paused, slot.process.as_mut()) {
                let _ = process.pause(false);
                slot.paused = false;
            }
            if !matches!(slot.phase, Phase::Done | Phase::Exited | Phase::Down) {
                // A machine that has exited cannot take it, and needs not.
                let at_us = at_us + self.offset_us(id);
                self.send(id, &ToMachine::Stop(at_us));
            }
        }
    }

    /// The run was called off before it started ticking: every machine
    /// stops at once.
    fn call_off(&mut self, halt: Halt) {
        if let Halt::Interrupted(cause) = halt {
            self.record.interrupted = Some(cause);
            self.record.called_off = true;
        }
        self.stopping = true;
        self.stop_all(now_us());
    }

    /// Messages a machine could not write to a peer that stopped reading
    /// are lost, and counted: the run is not sound.
    fn unsent_failures(&mut self) {
        let crashed: BTreeSet<MachineId> = self
            .slots
            .iter()
            .filter(|(_, slot)| {
                slot.life.events().iter().any(|e| matches!(e.change, clocklab_driver::Change::Crash { .. }))
            })
            .map(|(&id, _)| id)
            .collect();
        let mut unsent = Vec::new();
        for (&id, summary) in &self.record.summaries {
            for (&peer, &n) in &summary.unsent {
                // Sent to a machine the fault plan crashed: the crash took
                // them; to one whose host's channel broke: it is gone.
                if !crashed.contains(&peer) && !self.record.gone.contains_key(&peer) {
                    unsent.push((id, peer, n));
                }
            }
        }
        for (id, peer, n) in unsent {
            self.record.fail(
                Some(id),
                Some(peer),
                format!(
                    "machine {id} declared machine {peer} gone (it stopped reading): {n} messages to it were never sent"
                ),
            );
        }
    }
}

/// `at + later`, or as far as an `Instant` goes.
pub(crate) fn after(at: Instant, later: Duration) -> Instant {
    at.checked_add(later).or_else(|| at.checked_add(Duration::from_secs(1 << 32))).unwrap_or(at)
}

/// The address of `host:port`.
pub(crate) fn resolve(host: &str, port: u16) -> Result<SocketAddr, Failure> {
    let address = format!("{host}:{port}");
    std::net::ToSocketAddrs::to_socket_addrs(&address)
        .ok()
        .and_then(|mut all| all.next())
        .ok_or_else(|| Failure(format!("cannot resolve {address}")))
}
