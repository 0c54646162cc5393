//! The event loop: machines tick on their schedules, messages cross the
//! simulated network, faults happen, all in virtual time.
//!
//! - `wire`: the event heap (machines' timelines and deliveries, and
//!   their order at one instant) and the wire (per-link FIFO queues of
//!   messages in flight).
//!
//! When each machine ticks, and what its faults do, its
//! [`clocklab_driver::Timeline`] decides; this loop keeps virtual time, the
//! wire, and what one machine's crash or restart means to the others (its
//! peers see it go and come back; what was on the wire to it is gone).

#[cfg(test)]
mod tests;
mod wire;

use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;
use std::io;
use std::sync::atomic::{self, AtomicBool};

use clocklab_config::{RunPlan, SimSettings};
use clocklab_driver::{Dispatch, Effects, Timeline};
use clocklab_log::{Event, Record};
use clocklab_model::seed;
use clocklab_model::wire::FrameCodec;
use clocklab_model::{Delivery, MachineId, ParamsError};

use crate::network::Network;
use crate::sink::Sink;
use wire::{Hold, InFlight, Payload, Pending, Wire, wake_key};

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
    /// Messages the fault plan still held when the drain ended (`Held` lines).
    pub held: u64,
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

/// One run of the model in virtual time.
///
/// Built from a [`RunPlan`]; [`Simulation::run`] sends every log line to a
/// [`Sink`]. Virtual time is whole microseconds after the start, which is
/// [`SimSettings::epoch_us`] in the log's `Timestamp`s.
#[derive(Debug)]
pub struct Simulation {
    /// Each machine's timeline (`machines[id - 1]`): when it ticks, crashes,
    /// restarts, pauses and has its clock changed, and what it writes.
    machines: Vec<Timeline>,
    /// Everything but the machines: what their effects reach.
    world: World,
    /// Each machine's next timeout, one entry per machine that has one
    /// (the messages in flight wait in the wire's heap): the earliest is
    /// updated in place once its machine has run, which is one sift instead
    /// of a pop and a push.
    wakes: BinaryHeap<Pending>,
    /// When the last message reached each machine, in microseconds after the start.
    last_arrival_us: Vec<u64>,
    host: String,
    epoch_us: i64,
    duration_us: u64,
}

/// What a machine's timeline reaches in the simulator: the wire, and whom it
/// addresses.
#[derive(Debug)]
struct World {
    wire: Wire,
    /// Each machine's incarnation, as the wire addresses it.
    incarnations: Vec<u32>,
    codec: FrameCodec,
}

impl World {
    /// The effects of machine `id`'s timeline at `now_us`.
    fn effects<'a, S: Sink + ?Sized>(
        &'a mut self,
        sink: &'a mut S,
        summary: &'a mut SimSummary,
        id: MachineId,
        now_us: u64,
    ) -> SimEffects<'a, S> {
        SimEffects {
            sink,
            summary,
            wire: &mut self.wire,
            incarnations: &self.incarnations,
            codec: self.codec,
            id,
            now_us,
            crashed: false,
            restarted: false,
        }
    }
}

/// What a machine's timeline does, in the simulator: lines to the sink,
/// frames onto the wire.
struct SimEffects<'a, S: ?Sized> {
    sink: &'a mut S,
    summary: &'a mut SimSummary,
    wire: &'a mut Wire,
    incarnations: &'a [u32],
    codec: FrameCodec,
    /// The machine whose timeline runs, and the virtual instant.
    id: MachineId,
    now_us: u64,
    /// Its crash or restart, for the loop to tell its peers.
    crashed: bool,
    restarted: bool,
}

impl<S: Sink + ?Sized> Effects for SimEffects<'_, S> {
    type Error = io::Error;

    fn line(&mut self, record: &Record) -> io::Result<()> {
        match record.event {
            Event::Lost { .. } => self.summary.lost += 1,
            Event::Held { .. } => self.summary.held += 1,
            Event::Unprocessed { .. } => self.summary.unprocessed += 1,
            _ => {}
        }
        write(self.sink, self.summary, record)
    }

    fn send(&mut self, frame: &[u8], to: &[Dispatch]) -> io::Result<()> {
        // What every recipient gets: the frame through the wire's codec.
        let stamp = self.codec.decode(frame);
        for dispatch in to {
            let message = InFlight {
                stamp: stamp.clone(),
                incarnation: self.incarnations[dispatch.to as usize - 1],
                release_us: dispatch.release_us,
                dropped: false,
            };
            let hold = Hold { extra_delay_us: dispatch.extra_delay_us, until_us: dispatch.hold_until_us };
            self.wire.send(self.now_us, self.id, dispatch.to, message, hold);
        }
        Ok(())
    }

    fn crashed(&mut self, lost: u64) -> io::Result<()> {
        self.summary.crash_lost += lost;
        self.crashed = true;
        Ok(())
    }

    fn restarted(&mut self) -> io::Result<()> {
        self.restarted = true;
        Ok(())
    }
}

impl Simulation {
    /// Sets up the run of `plan`: each machine's timeline from its seed (its
    /// rate drawn as the real runtime draws it) and the fault plan, the
    /// network's generator from the run seed.
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
        let faults = plan.fault_plan();
        let times = plan.run_times(settings.epoch_us);
        let mut machines = Vec::with_capacity(plan.machines.len());
        for planned in &plan.machines {
            let id = planned.id;
            let timeline = Timeline::new(plan.driver_params(planned), faults.clone(), times, false)
                .map_err(|source| SimError::Params { id, source })?;
            if timeline.rate() != planned.rate {
                return Err(SimError::RateMismatch { id, planned: planned.rate, drawn: timeline.rate() });
            }
            machines.push(timeline);
        }
        let network = Network::new(settings.network, seed::rng_from_seed(seed::network_seed(plan.run_seed)));
        Ok(Simulation {
            world: World {
                wire: Wire::new(n_machines as usize, network),
                incarnations: vec![0; machines.len()],
                codec: FrameCodec::new(experiment.clocks, n_machines),
            },
            last_arrival_us: vec![0; machines.len()],
            wakes: BinaryHeap::with_capacity(machines.len()),
            machines,
            host: plan.host.clone(),
            epoch_us: settings.epoch_us,
            duration_us: times.duration_us,
        })
    }

    /// Runs to the end and sends every line to `sink`, then calls
    /// [`Sink::finish`].
    ///
    /// At the start instant each machine logs `Initialized` and one
    /// `Connected` per peer. Each machine's [`Timeline`] then says when it
    /// ticks and what its faults do, until the deadline; the simulator only
    /// keeps the clock and the wire. A send's frame goes through the run's
    /// wire codec, as on a real connection; a delivery goes through the
    /// machine's queue cap. Messages still on the wire at the deadline arrive
    /// afterwards; when the wire is empty, each machine that is up writes the
    /// end of its log (what the plan held past the drain as `Held`, what is
    /// left in its queue as `Unprocessed`, then `Stopped`) at the later of
    /// the deadline and the last arrival at that machine; one that crashed
    /// for good ends with `Crashed`.
    pub fn run<S: Sink + ?Sized>(self, sink: &mut S) -> io::Result<SimSummary> {
        self.run_until(sink, &AtomicBool::new(false))
    }

    /// [`Simulation::run`], stopping early when `stop` is set (a signal to
    /// `clocklab run`): from the virtual instant the loop sees it, no machine
    /// ticks again; messages on the wire still arrive (those the plan holds
    /// past the drain are logged as held), and every log ends as at the
    /// deadline (`Unprocessed` lines, then `Stopped`), so the run loses
    /// nothing and its logs hold whole lines. A run that is not stopped is
    /// the same, byte for byte, whatever `stop` is.
    pub fn run_until<S: Sink + ?Sized>(mut self, sink: &mut S, stop: &AtomicBool) -> io::Result<SimSummary> {
        let mut summary = SimSummary::default();
        let n_machines = self.machines.len() as MachineId;
        let at0 = self.at(0);
        for id in 1..=n_machines {
            let mut effects = self.world.effects(sink, &mut summary, id, 0);
            let (timeline, host) = (&mut self.machines[id as usize - 1], &self.host);
            timeline.initialized(at0, host, virtual_port(id), &mut effects)?;
            for peer in (1..=n_machines).filter(|&peer| peer != id) {
                timeline.connected(at0, peer, (host, virtual_port(peer)), &mut effects)?;
            }
            self.wake(id, 0);
        }

        let mut n_events = 0u64;
        loop {
            // A delivery comes before a machine's timeout at the same instant.
            let delivery = self.world.wire.heap.peek().map(Pending::time_us);
            let wake = self.wakes.peek().map(Pending::time_us);
            let now_us = match (delivery, wake) {
                (Some(delivery), Some(wake)) => delivery.min(wake),
                (Some(at), None) | (None, Some(at)) => at,
                (None, None) => break,
            };
            n_events += 1;
            if summary.stopped_at_us.is_none()
                && n_events % STOP_POLL_EVENTS == 0
                && stop.load(atomic::Ordering::Relaxed)
            {
                summary.stopped_at_us = Some(now_us);
                for timeline in &mut self.machines {
                    timeline.stop_at(now_us);
                }
            }
            if delivery == Some(now_us) {
                let Some(Pending { payload: Payload::Delivery { from, to }, .. }) = self.world.wire.heap.pop() else {
                    unreachable!("the wire holds deliveries")
                };
                self.arrive(&mut summary, now_us, from, to);
                continue;
            }
            let Some(&Pending { payload: Payload::Wake { id }, .. }) = self.wakes.peek() else {
                unreachable!("the wakes hold one wake per machine")
            };
            let at = self.at(now_us);
            let mut effects = self.world.effects(sink, &mut summary, id, now_us);
            self.machines[id as usize - 1].handle_timeout(at, &mut effects)?;
            let (crashed, restarted) = (effects.crashed, effects.restarted);
            if crashed {
                self.crashed(sink, &mut summary, now_us, id)?;
            }
            if restarted {
                self.restarted(sink, &mut summary, now_us, id)?;
            }
            // Its next timeout, not before now (a machine catching up runs
            // its late ticks back to back), replaces its entry in place.
            let next = self.machines[id as usize - 1].poll_timeout();
            let mut top = self.wakes.peek_mut().expect("its entry is still the earliest");
            match next {
                Some(timeout) => top.key = wake_key(timeout.at_us.max(now_us), timeout.due, id),
                None => drop(PeekMut::pop(top)),
            }
        }
        assert_eq!(self.world.wire.in_flight, 0, "the wire is empty when the heap is");

        for idx in 0..self.machines.len() {
            let id = idx as MachineId + 1;
            let deadline_us = summary.stopped_at_us.unwrap_or(self.duration_us);
            let end_us = deadline_us.max(self.last_arrival_us[idx]);
            if self.machines[idx].is_up() {
                summary.end_us = summary.end_us.max(end_us);
            }
            let at = self.at(end_us);
            let mut effects = self.world.effects(sink, &mut summary, id, end_us);
            self.machines[idx].end(at, &mut effects)?;
            let driver = self.machines[idx].driver();
            let counts = driver.counts();
            summary.ticks += counts.ticks;
            summary.messages += counts.sent;
            summary.saturated += counts.saturated;
            summary.refused += driver.machine().refused();
            summary.crash_lost += self.machines[idx].unconnected().map(|(_, n)| n).sum::<u64>();
        }
        summary.max_in_flight = self.world.wire.max_in_flight;
        sink.finish()?;
        Ok(summary)
    }

    /// True time of `time_us` after the start.
    fn at(&self, time_us: u64) -> i64 {
        self.epoch_us.saturating_add_unsigned(time_us)
    }

    /// Puts machine `id`'s next timeout in the heap, not before `now_us`
    /// (a machine catching up runs its late ticks back to back).
    fn wake(&mut self, id: MachineId, now_us: u64) {
        if let Some(timeout) = self.machines[id as usize - 1].poll_timeout() {
            let key = wake_key(timeout.at_us.max(now_us), timeout.due, id);
            self.wakes.push(Pending { key, payload: Payload::Wake { id } });
        }
    }

    /// The oldest message on the link from `from` to `to` arrives at `now_us`.
    fn arrive(&mut self, summary: &mut SimSummary, now_us: u64, from: MachineId, to: MachineId) {
        let message = self.world.wire.arrived(from, to);
        let sender = &self.machines[from as usize - 1];
        // Its sender crashed before it left, or a stop ended the drain before
        // the plan released it: its sender's `Held` line tells it.
        if message.dropped || clocklab_driver::is_held(message.release_us, sender.drain_end_us()) {
            return;
        }
        let at = self.at(now_us);
        let receiver = &mut self.machines[to as usize - 1];
        if self.world.incarnations[to as usize - 1] != message.incarnation {
            // Sent to an incarnation that crashed: gone with it.
            summary.crash_lost += 1;
            return;
        }
        match receiver.deliver(at, from, message.stamp) {
            None => summary.crash_lost += 1,
            Some(Delivery::Queued) => {
                summary.max_queue_len = summary.max_queue_len.max(receiver.driver().machine().queue_len() as u64);
            }
            Some(Delivery::Refused) => {}
        }
        self.last_arrival_us[to as usize - 1] = now_us;
    }

    /// Machine `id` crashed at `now_us`: what is on the wire to it is gone
    /// with it (its incarnation moves on), and its peers see it go.
    fn crashed<S: Sink + ?Sized>(
        &mut self,
        sink: &mut S,
        summary: &mut SimSummary,
        now_us: u64,
        id: MachineId,
    ) -> io::Result<()> {
        let at = self.at(now_us);
        self.world.wire.sender_crashed(id, now_us);
        for peer in (1..=self.machines.len() as MachineId).filter(|&peer| peer != id) {
            let mut effects = self.world.effects(sink, summary, peer, now_us);
            self.machines[peer as usize - 1].disconnected(at, id, &mut effects)?;
        }
        Ok(())
    }

    /// Machine `id` restarted at `now_us`: it connects to every peer that is
    /// up, and each of them connects to it.
    fn restarted<S: Sink + ?Sized>(
        &mut self,
        sink: &mut S,
        summary: &mut SimSummary,
        now_us: u64,
        id: MachineId,
    ) -> io::Result<()> {
        let at = self.at(now_us);
        self.world.incarnations[id as usize - 1] = self.machines[id as usize - 1].incarnation();
        let peers: Vec<MachineId> = (1..=self.machines.len() as MachineId)
            .filter(|&peer| peer != id && self.machines[peer as usize - 1].is_up())
            .collect();
        for &peer in &peers {
            let mut effects = self.world.effects(sink, summary, id, now_us);
            let address = (self.host.as_str(), virtual_port(peer));
            self.machines[id as usize - 1].connected(at, peer, address, &mut effects)?;
        }
        for &peer in &peers {
            let mut effects = self.world.effects(sink, summary, peer, now_us);
            let address = (self.host.as_str(), virtual_port(id));
            self.machines[peer as usize - 1].connected(at, id, address, &mut effects)?;
        }
        Ok(())
    }
}

/// Sends one line to `sink`, counting it.
fn write<S: Sink + ?Sized>(sink: &mut S, summary: &mut SimSummary, record: &Record) -> io::Result<()> {
    summary.lines += 1;
    sink.write(record)
}
