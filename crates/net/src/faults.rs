//! The fault plan, as one machine process applies it for real.
//!
//! The plan (`clocklab_faults::FaultPlan`) decides; this module only applies
//! its decisions at the right instants:
//!
//! - **the network's faults** at the sender: a lost message is a `Lost` line
//!   and no frame; a delayed or held one is queued in the outbox with a later
//!   due instant, behind which the link's later frames wait (FIFO, as on TCP);
//! - **clock faults**: the machine steps its own physical clock (or changes
//!   its drift) at the planned instant, with a line;
//! - **pauses** come from outside (the orchestrator stops and continues the
//!   process): the ticks due meanwhile run late, back to back, and the
//!   `Behind` line says so, counted apart as planned;
//! - **crashes** come from outside too (the orchestrator kills the process and
//!   writes its `Crashed` line); a restarted machine is a new process that
//!   begins its log again with `Restarted` ([`RestartSpec`]), its clocks fresh
//!   or read back from its log's last line, and its ticks go on from the
//!   planned restart. Its peers hear of it from the orchestrator
//!   ([`Rejoin`]): each logs its disconnection if it had not seen it yet,
//!   connects to the new incarnation, and logs the reconnection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clocklab_faults::{FaultPlan, FaultSpec, MachineFault, physical_clock_at};
use clocklab_model::{MachineId, PhysicalClock, schedule};
use crossbeam_channel::{Receiver, Sender};

use crate::NetError;
use crate::link::{Connector, LinkConfig, LinkEvent};

/// A peer that restarted, and where its new incarnation listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejoin {
    /// The peer.
    pub peer: MachineId,
    /// Its new address.
    pub address: SocketAddr,
}

/// How a machine that crashed comes back (a new process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestartSpec {
    /// The run's start instant, microseconds since the Unix epoch.
    pub start_us: i64,
    /// The planned restart, microseconds after the start: the ticks due
    /// before it are gone.
    pub at_us: u64,
    /// Whether its clocks come back as the log's last line has them (else
    /// they start from 0).
    pub recovered: bool,
}

/// The fault plan of a run, as one machine takes part in it.
#[derive(Debug)]
pub struct RunFaults {
    /// The run's plan: the fate of each send, the pauses.
    pub(crate) plan: FaultPlan,
    /// This machine's clock faults not applied yet, in time order.
    clock_faults: Vec<MachineFault>,
    /// Peers that restarted, from the orchestrator.
    rejoins: Receiver<Rejoin>,
    /// Kept so that `rejoins` never reads as closed when no one sends.
    _keep: Option<Sender<Rejoin>>,
    /// The restart this incarnation is, if it is one.
    pub(crate) restart: Option<RestartSpec>,
}

impl RunFaults {
    /// No fault: every message goes as it is sent.
    pub fn none() -> RunFaults {
        let (keep, rejoins) = crossbeam_channel::bounded(1);
        RunFaults { plan: FaultPlan::none(), clock_faults: Vec::new(), rejoins, _keep: Some(keep), restart: None }
    }

    /// The plan of `faults` for a run seeded with `run_seed` that lasts
    /// `duration_us`, as machine `id` takes part: `rejoins` brings its
    /// restarted peers; `restart` says whether this process is a restart.
    pub fn new(
        faults: &[FaultSpec],
        run_seed: u64,
        duration_us: u64,
        id: MachineId,
        rejoins: Receiver<Rejoin>,
        restart: Option<RestartSpec>,
    ) -> RunFaults {
        let plan = FaultPlan::new(faults, run_seed, duration_us);
        // A restarted incarnation's earlier clock faults were applied by the
        // incarnations before it (their lines are in the log).
        let from_us = restart.map_or(0, |r| r.at_us);
        let clock_faults = plan
            .machine_faults(id)
            .into_iter()
            .filter(|f| matches!(f, MachineFault::Clock { at_us, .. } if *at_us >= from_us))
            .collect();
        RunFaults { plan, clock_faults, rejoins, _keep: None, restart }
    }

    /// The first tick of this incarnation at `rate`: 0, or the first due at
    /// or after the planned restart.
    pub(crate) fn first_tick(&self, rate: u32) -> u64 {
        self.restart.map_or(0, |r| schedule::n_ticks(rate, r.at_us))
    }

    /// The next clock fault due at or before `until_us` after the start, if any:
    /// when, the step and the new drift.
    pub(crate) fn next_clock_fault(&mut self, until_us: u64) -> Option<(u64, i64, Option<f64>)> {
        match self.clock_faults.first() {
            Some(&MachineFault::Clock { at_us, step_us, drift_ppm, .. }) if at_us <= until_us => {
                self.clock_faults.remove(0);
                Some((at_us, step_us, drift_ppm))
            }
            _ => None,
        }
    }

    /// The longest the plan can delay a message: how much longer than
    /// usual the end waits for its peers' last messages.
    pub(crate) fn longest_delay(&self) -> Duration {
        Duration::from_micros(self.plan.longest_delay_us())
    }

    /// Whether a tick due `due_us` after the start fell in a planned pause of `id`.
    pub(crate) fn paused_at(&self, id: MachineId, due_us: u64) -> bool {
        self.plan.paused_at(id, due_us)
    }

    /// Peers that restarted since the last call.
    pub(crate) fn rejoins(&self) -> Vec<Rejoin> {
        self.rejoins.try_iter().collect()
    }
}

/// The physical clock of machine `id`, whose clock was `base` at the start of
/// the run (`start_us`), as it is at true time `now_us` after the clock
/// faults the plan made before then: what a restarted process takes over.
pub(crate) fn physical_clock_now(
    base: &PhysicalClock,
    start_us: i64,
    faults: &[FaultSpec],
    id: MachineId,
    now_us: i64,
) -> PhysicalClock {
    let plan = FaultPlan::new(faults, 0, 0);
    physical_clock_at(base, start_us, &plan.machine_faults(id), now_us)
}

/// The connections to restarted peers being made.
#[derive(Debug)]
pub(crate) struct Reconnects {
    connectors: BTreeMap<MachineId, (Connector, SocketAddr)>,
    events_tx: Sender<LinkEvent>,
    pub(crate) events: Receiver<LinkEvent>,
    /// Dropped to stop every connector still trying.
    cancel: Option<Sender<()>>,
    cancelled: Receiver<()>,
}

impl Reconnects {
    pub(crate) fn new() -> Reconnects {
        let (events_tx, events) = crossbeam_channel::unbounded();
        let (cancel, cancelled) = crossbeam_channel::bounded(0);
        Reconnects { connectors: BTreeMap::new(), events_tx, events, cancel: Some(cancel), cancelled }
    }

    /// Starts connecting to a restarted peer, within `timeout`.
    pub(crate) fn start(
        &mut self,
        ours: clocklab_model::wire::Hello,
        rejoin: Rejoin,
        timeout: Duration,
    ) -> Result<(), NetError> {
        let config = LinkConfig {
            ours,
            peer: rejoin.peer,
            address: rejoin.address,
            deadline: Instant::now() + timeout,
            timeout_s: timeout.as_secs_f64(),
        };
        let connector = Connector::spawn(config, self.events_tx.clone(), self.cancelled.clone())?;
        if let Some((old, _)) = self.connectors.insert(rejoin.peer, (connector, rejoin.address)) {
            old.join();
        }
        Ok(())
    }

    /// Where the connector to `peer` was connecting.
    pub(crate) fn address(&self, peer: MachineId) -> Option<SocketAddr> {
        self.connectors.get(&peer).map(|(_, address)| *address)
    }

    /// Stops every connector still trying, and waits for them.
    pub(crate) fn finish(&mut self) {
        self.cancel = None;
        for (connector, _) in std::mem::take(&mut self.connectors).into_values() {
            connector.join();
        }
    }
}
