//! The event loop: machines tick on their schedules, messages cross the
//! simulated network, faults happen, all in virtual time.
//!
//! - [`wire`]: the event heap (ticks, faults, deliveries, and their order at
//!   one instant) and the wire (per-link FIFO queues of messages in flight).
//! - [`faults`]: what a crash, a restart, a pause and a clock step do to a
//!   machine and its peers.

mod faults;
#[cfg(test)]
mod tests;
mod wire;

use std::io;
use std::sync::atomic::{self, AtomicBool};

use clocklab_config::{RunPlan, SimSettings};
use clocklab_driver::Route;
use clocklab_driver::{ClockSnapshot, Driver};
use clocklab_faults::{FaultPlan, MachineFault};
use clocklab_log::Record;
use clocklab_model::seed;
use clocklab_model::wire::FrameCodec;
use clocklab_model::{Delivery, MachineId, ParamsError, schedule};

use crate::network::Network;
use crate::sink::Sink;
use wire::{Hold, InFlight, Payload, Pending, Wire, fault_key, tick_key};

/// How many events the loop runs between two looks at the stop flag: often
/// enough that a stop request is seen within milliseconds, rarely enough to
/// cost nothing.
const STOP_POLL_EVENTS: u64 = 4_096;

/// Machine `id` listens on virtual port `BASE_PORT + id`.
pub const BASE_PORT: u16 = 10_000;

/// The virtual port of machine `id`, if it has one.
pub fn virtual_port(id: MachineId) -> Option<u16> {
    u16::try_from(u32::from(BASE_PORT) + id).ok()
}

/// Why a [`RunPlan`] cannot be simulated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// The experiment's parameters do not make a machine (its source says why).
    #[error("machine {id}")]
    Params {
        /// The machine.
        id: MachineId,
        /// What is wrong.
        source: ParamsError,
    },
    /// The plan's machines are not `1..=machines`, in order.
    #[error("the plan lists machines {listed:?}, expected 1..={expected}")]
    MachineList {
        /// The ids in the plan.
        listed: Vec<MachineId>,
        /// The experiment's number of machines.
        expected: u32,
    },
    /// The plan's rate is not the one the machine's seed draws.
    #[error("machine {id}: the plan says rate {planned}, its seed draws {drawn}")]
    RateMismatch {
        /// The machine.
        id: MachineId,
        /// The rate in the plan.
        planned: u32,
        /// The rate its seed gives.
        drawn: u32,
    },
    /// There are more machines than virtual ports.
    #[error("{0} machines: the simulator names machines by port, so at most {max} fit", max = u16::MAX - BASE_PORT)]
    TooManyMachines(u32),
}

/// What a simulation did, in numbers that depend only on the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimSummary {
    /// Ticks, over all machines.
    pub ticks: u64,
    /// Log lines, over all machines.
    pub lines: u64,
    /// Messages sent (one per recipient).
    pub messages: u64,
    /// Messages still queued at the end.
    pub unprocessed: u64,
    /// Messages a full queue refused (the queue cap).
    pub refused: u64,
    /// Sends whose Lamport clock saturated on the 32-bit wire.
    pub saturated: u64,
    /// Messages the fault plan lost at the sender (`Lost` lines).
    pub lost: u64,
    /// Messages a crash took: in the crashed machine's queue, or on the wire to it.
    pub crash_lost: u64,
    /// The most messages on the wire at once.
    pub max_in_flight: u64,
    /// The longest queue any machine had.
    pub max_queue_len: u64,
    /// When the last machine stopped, in microseconds after the start.
    pub end_us: u64,
    /// A stop request ended ticking at this instant (microseconds after the
    /// start), before the deadline.
    pub stopped_at_us: Option<u64>,
}

/// One machine of the simulation with its schedule and its faults.
#[derive(Debug)]
struct SimMachine {
    driver: Driver,
    /// Ticks it makes in the run (less those due while it is down).
    n_ticks: u64,
    /// The index of its next tick.
    next_tick: u64,
    /// When the last message reached it, in microseconds after the start.
    last_arrival_us: u64,
    /// Its faults, in time order.
    faults: Vec<MachineFault>,
    /// Which incarnation runs: 0 at the start, one more per crash.
    incarnation: u32,
    /// It is down (crashed, not restarted).
    down: bool,
    /// It is paused until then.
    paused_until_us: Option<u64>,
    /// Its clocks at the crash, for a restart that recovers them.
    snapshot: Option<ClockSnapshot>,
}

/// One run of the model in virtual time.
///
/// Built from a [`RunPlan`]; [`Simulation::run`] sends every log line to a
/// [`Sink`]. Virtual time is whole microseconds after the start, which is
/// [`SimSettings::epoch_us`] in the log's `Timestamp`s.
#[derive(Debug)]
pub struct Simulation {
    machines: Vec<SimMachine>,
    wire: Wire,
    codec: FrameCodec,
    plan: FaultPlan,
    host: String,
    epoch_us: i64,
    duration_us: u64,
    /// Where a send's messages go (reused, so that a tick allocates nothing).
    deliveries: Vec<(MachineId, Hold)>,
}

impl Simulation {
    /// Sets up the run of `plan`: each machine's driver from its seed (its
    /// rate drawn as the real runtime draws it), the network's generator
    /// from the run seed, the fault plan from the experiment's faults.
    pub fn new(plan: &RunPlan, settings: &SimSettings) -> Result<Simulation, SimError> {
        let experiment = &plan.experiment;
        let n_machines = experiment.machines;
        let listed: Vec<MachineId> = plan.machines.iter().map(|m| m.id).collect();
        if !listed.iter().copied().eq(1..=n_machines) {
            return Err(SimError::MachineList { listed, expected: n_machines });
        }
        if virtual_port(n_machines).is_none() {
            return Err(SimError::TooManyMachines(n_machines));
        }
        let duration_us = schedule::duration_us(experiment.duration);
        let faults = FaultPlan::new(&experiment.faults, plan.run_seed, duration_us);
        let mut machines = Vec::with_capacity(plan.machines.len());
        for planned in &plan.machines {
            let id = planned.id;
            let driver = Driver::new(plan.driver_params(planned), settings.epoch_us)
                .map_err(|source| SimError::Params { id, source })?;
            if driver.rate() != planned.rate {
                return Err(SimError::RateMismatch { id, planned: planned.rate, drawn: driver.rate() });
            }
            let n_ticks = schedule::n_ticks(planned.rate, duration_us);
            machines.push(SimMachine {
                driver,
                n_ticks,
                next_tick: 0,
                last_arrival_us: 0,
                faults: faults.machine_faults(id),
                incarnation: 0,
                down: false,
                paused_until_us: None,
                snapshot: None,
            });
        }
        let network = Network::new(settings.network, seed::rng_from_seed(seed::network_seed(plan.run_seed)));
        Ok(Simulation {
            machines,
            wire: Wire::new(n_machines as usize, network),
            codec: FrameCodec::new(experiment.clocks, n_machines),
            plan: faults,
            host: plan.host.clone(),
            epoch_us: settings.epoch_us,
            duration_us,
            deliveries: Vec::with_capacity(n_machines as usize),
        })
    }

    /// Runs to the end and sends every line to `sink`, then calls
    /// [`Sink::finish`].
    ///
    /// At the start instant each machine logs `Initialized` and one
    /// `Connected` per peer. Each machine then ticks on the absolute
    /// schedule of `clocklab_model::schedule` until the deadline. A send's
    /// frame goes through the run's wire codec, as on a real connection, and
    /// its fate through the fault plan (lost, delayed, held by a partition);
    /// a delivery goes through the machine's queue cap. Messages still on the
    /// wire at the deadline arrive afterwards; when the wire is empty, each
    /// machine that is up writes the end of its log (what is left in its
    /// queue as `Unprocessed`, then `Stopped`) at the later of the deadline
    /// and the last arrival at that machine; one that crashed for good ends
    /// with `Crashed`.
    pub fn run<S: Sink + ?Sized>(self, sink: &mut S) -> io::Result<SimSummary> {
        self.run_until(sink, &AtomicBool::new(false))
    }

    /// [`Simulation::run`], stopping early when `stop` is set (a signal to
    /// `clocklab run`): from the virtual instant the loop sees it, no machine
    /// ticks again; messages on the wire still arrive, and every log ends as
    /// at the deadline (`Unprocessed` lines, then `Stopped`), so the run loses
    /// nothing and its logs hold whole lines. A run that is not stopped is
    /// the same, byte for byte, whatever `stop` is.
    pub fn run_until<S: Sink + ?Sized>(mut self, sink: &mut S, stop: &AtomicBool) -> io::Result<SimSummary> {
        let mut summary = SimSummary::default();
        let n_machines = self.machines.len() as u32;
        for idx in 0..self.machines.len() {
            let id = idx as MachineId + 1;
            let at0 = self.at(0);
            let sim = &mut self.machines[idx];
            write(sink, &mut summary, sim.driver.initialized(at0, &self.host, virtual_port(id)))?;
            for peer in (1..=n_machines).filter(|&peer| peer != id) {
                write(sink, &mut summary, sim.driver.connected(at0, peer, &self.host, virtual_port(peer)))?;
            }
            if sim.n_ticks > 0 {
                self.wire.heap.push(Pending { key: tick_key(0, id), payload: Payload::Tick { id, incarnation: 0 } });
            }
            for (fault, machine_fault) in sim.faults.iter().enumerate() {
                let key = fault_key(machine_fault.at_us(), id, fault as u32);
                self.wire.heap.push(Pending { key, payload: Payload::Fault { id, idx: fault as u32 } });
            }
        }

        // Reused for every send, so that a tick allocates nothing.
        let mut recipients: Vec<MachineId> = Vec::with_capacity(n_machines as usize);
        let mut n_events = 0u64;
        while let Some(pending) = self.wire.heap.pop() {
            let now_us = pending.time_us();
            n_events += 1;
            if summary.stopped_at_us.is_none()
                && n_events % STOP_POLL_EVENTS == 0
                && stop.load(atomic::Ordering::Relaxed)
            {
                summary.stopped_at_us = Some(now_us);
            }
            match pending.payload {
                Payload::Delivery { from, to } => {
                    let message = self.wire.arrived(from, to);
                    let at = self.at(now_us);
                    let sim = &mut self.machines[to as usize - 1];
                    if sim.down || sim.incarnation != message.incarnation {
                        // Sent to an incarnation that crashed: gone with it.
                        summary.crash_lost += 1;
                        continue;
                    }
                    if sim.driver.deliver(at, from, message.stamp) == Delivery::Queued {
                        summary.max_queue_len = summary.max_queue_len.max(sim.driver.machine().queue_len() as u64);
                    }
                    sim.last_arrival_us = now_us;
                }
                Payload::Fault { id, idx } => self.fault(sink, &mut summary, now_us, id, idx)?,
                Payload::Restart { id, idx } => self.restart(sink, &mut summary, now_us, id, idx)?,
                // Events come in time order, so every tick from the stop on is dropped.
                Payload::Tick { .. } if summary.stopped_at_us.is_some() => {}
                Payload::Tick { id, incarnation } => {
                    let sim = &mut self.machines[id as usize - 1];
                    if sim.down || sim.incarnation != incarnation {
                        continue;
                    }
                    if let Some(until_us) = sim.paused_until_us.filter(|&until| now_us < until) {
                        // A paused machine does not tick; it runs what it missed when it goes on.
                        let key = tick_key(until_us, id);
                        self.wire.heap.push(Pending { key, payload: Payload::Tick { id, incarnation } });
                        continue;
                    }
                    self.tick(sink, &mut summary, now_us, id, &mut recipients)?;
                }
            }
        }
        assert_eq!(self.wire.in_flight, 0, "the wire is empty when the heap is");

        for idx in 0..self.machines.len() {
            let id = idx as MachineId + 1;
            let deadline_us = match summary.stopped_at_us {
                Some(stopped_at_us) => stopped_at_us,
                None => {
                    let sim = &self.machines[idx];
                    if sim.faults.is_empty() {
                        assert_eq!(sim.next_tick, sim.n_ticks, "machine {id} made every tick of its schedule");
                    }
                    self.duration_us
                }
            };
            let end_us = deadline_us.max(self.machines[idx].last_arrival_us);
            let at = self.at(end_us);
            let sim = &mut self.machines[idx];
            if !sim.down {
                summary.end_us = summary.end_us.max(end_us);
                for record in sim.driver.end(at) {
                    summary.unprocessed += u64::from(matches!(record.event, clocklab_log::Event::Unprocessed { .. }));
                    write(sink, &mut summary, &record)?;
                }
            }
            let counts = sim.driver.counts();
            summary.ticks += counts.ticks;
            summary.messages += counts.sent;
            summary.saturated += counts.saturated;
            summary.refused += sim.driver.machine().refused();
        }
        summary.max_in_flight = self.wire.max_in_flight;
        sink.finish()?;
        Ok(summary)
    }

    /// True time of `time_us` after the start.
    fn at(&self, time_us: u64) -> i64 {
        self.epoch_us.saturating_add_unsigned(time_us)
    }

    /// Machine `id` ticks at `now_us`: its line, its sends through the fault
    /// plan, its next tick.
    fn tick<S: Sink + ?Sized>(
        &mut self,
        sink: &mut S,
        summary: &mut SimSummary,
        now_us: u64,
        id: MachineId,
        recipients: &mut Vec<MachineId>,
    ) -> io::Result<()> {
        let at = self.at(now_us);
        let sim = &mut self.machines[id as usize - 1];
        let rate = sim.driver.rate();
        let due_us = schedule::tick_offset_us(sim.next_tick, rate);
        // A tick run late (after a pause) says so, as in the real runtime.
        let paused = self.plan.paused_at(id, due_us);
        let sim = &mut self.machines[id as usize - 1];
        if let Some(behind) = sim.driver.before_tick(at, sim.next_tick, now_us.saturating_sub(due_us), paused) {
            write(sink, summary, behind)?;
        }
        let step = sim.driver.tick(at);
        write(sink, summary, step.record)?;
        recipients.clear();
        let stamp = step.frame.map(|frame| {
            recipients.extend_from_slice(step.recipients());
            // What every recipient gets: the frame through the wire's codec.
            self.codec.decode(frame)
        });
        let clock = step.record.logical_clock;
        if let Some(stamp) = stamp {
            let mut deliveries = std::mem::take(&mut self.deliveries);
            deliveries.clear();
            let driver = &mut self.machines[id as usize - 1].driver;
            driver.route(&mut self.plan, now_us, at, recipients, clock, |route| {
                match route {
                    Route::Lost(line) => {
                        summary.lost += 1;
                        write(sink, summary, line)?;
                    }
                    Route::Deliver { to, extra_delay_us, hold_until_us } => {
                        deliveries.push((to, Hold { extra_delay_us, until_us: hold_until_us }));
                    }
                }
                Ok::<(), io::Error>(())
            })?;
            for &(to, hold) in &deliveries {
                let message =
                    InFlight { stamp: stamp.clone(), incarnation: self.machines[to as usize - 1].incarnation };
                self.wire.send(now_us, id, to, message, hold);
            }
            self.deliveries = deliveries;
        }
        let sim = &mut self.machines[id as usize - 1];
        sim.next_tick += 1;
        if sim.next_tick < sim.n_ticks {
            let due_us = schedule::tick_offset_us(sim.next_tick, rate);
            let incarnation = sim.incarnation;
            // A machine catching up after a pause runs its late ticks back to back.
            let next_us = due_us.max(now_us);
            self.wire.heap.push(Pending { key: tick_key(next_us, id), payload: Payload::Tick { id, incarnation } });
        }
        Ok(())
    }
}

/// Sends one line to `sink`, counting it.
fn write<S: Sink + ?Sized>(sink: &mut S, summary: &mut SimSummary, record: &Record) -> io::Result<()> {
    summary.lines += 1;
    sink.write(record)
}
