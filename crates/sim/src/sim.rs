//! The event loop: machines tick on their schedules, messages cross the
//! simulated network, all in virtual time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;

use clocklab_config::{RunPlan, SimSettings};
use clocklab_log::{Event, Record};
use clocklab_model::seed::{self, ModelRng};
use clocklab_model::{Machine, MachineId, MachineParams, ParamsError, TickEvent, schedule};

use crate::network::Network;
use crate::sink::Sink;

/// Machine `id` listens on virtual port `BASE_PORT + id`.
pub const BASE_PORT: u16 = 10_000;

/// The virtual port of machine `id`, if it has one.
pub fn virtual_port(id: MachineId) -> Option<u16> {
    u16::try_from(u32::from(BASE_PORT) + id).ok()
}

/// Why a [`RunPlan`] cannot be simulated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// The experiment's parameters do not make a machine.
    #[error("machine {id}: {source}")]
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
    /// The most messages on the wire at once.
    pub max_in_flight: u64,
    /// The longest queue any machine had.
    pub max_queue_len: u64,
    /// When the last machine stopped, in microseconds after the start.
    pub end_us: u64,
}

/// One machine of the simulation with its generator and schedule.
#[derive(Debug)]
struct SimMachine {
    machine: Machine,
    rng: ModelRng,
    /// Ticks it makes in the run.
    n_ticks: u64,
    /// The index of its next tick.
    next_tick: u64,
    /// When the last message reached it, in microseconds after the start.
    last_arrival_us: u64,
}

/// What happens at a point of virtual time.
#[derive(Clone, Copy, Debug)]
enum Payload {
    /// Machine `id` ticks.
    Tick { id: MachineId },
    /// A message arrives at `to`'s queue.
    Delivery { from: MachineId, to: MachineId, stamp: u64 },
}

/// A pending event, ordered by its key alone.
///
/// The key is `time_us << 64 | class << 63 | order`: earlier first; at the
/// same microsecond, deliveries (class 0, in the order they were sent) come
/// before ticks (class 1, by machine id). So a message that arrives at the
/// instant of a tick is already in the queue when the tick runs, and the
/// order of simultaneous events never depends on anything but the seed.
#[derive(Clone, Copy, Debug)]
struct Pending {
    key: u128,
    payload: Payload,
}

const TICK_CLASS: u128 = 1 << 63;

impl Pending {
    fn time_us(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// The wire: messages in flight, in a heap with the pending ticks.
#[derive(Debug)]
struct Wire {
    heap: BinaryHeap<Pending>,
    network: Network,
    /// The arrival time of the last message per ordered pair,
    /// `fifo_us[(from - 1) * n + (to - 1)]`: a later message never arrives
    /// before it, as on a TCP connection.
    fifo_us: Vec<u64>,
    n_machines: usize,
    /// Messages sent so far; also the order of simultaneous deliveries.
    n_sent: u64,
    in_flight: u64,
    max_in_flight: u64,
}

impl Wire {
    fn send(&mut self, now_us: u64, from: MachineId, to: MachineId, stamp: u64) {
        let pair = (from as usize - 1) * self.n_machines + (to as usize - 1);
        let arrival_us = now_us.saturating_add(self.network.draw_delay_us()).max(self.fifo_us[pair]);
        self.fifo_us[pair] = arrival_us;
        // Fewer than 2^63 messages fit in any run, so the order never spills into the class bit.
        let key = u128::from(arrival_us) << 64 | u128::from(self.n_sent);
        self.n_sent += 1;
        self.heap.push(Pending { key, payload: Payload::Delivery { from, to, stamp } });
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
    }
}

fn tick_key(time_us: u64, id: MachineId) -> u128 {
    u128::from(time_us) << 64 | TICK_CLASS | u128::from(id)
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
    host: String,
    epoch_us: i64,
    duration_us: u64,
}

impl Simulation {
    /// Sets up the run of `plan`: each machine's generator and rate from its
    /// seed (as the real runtime does), the network's from the run seed.
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
        let mut machines = Vec::with_capacity(plan.machines.len());
        for planned in &plan.machines {
            let id = planned.id;
            let params = MachineParams { id, n_machines, rate: planned.rate, max_event_num: experiment.max_event_num };
            let machine = Machine::new(params).map_err(|source| SimError::Params { id, source })?;
            let (rng, drawn) = seed::start_machine(planned.seed, experiment.max_clock_rate);
            if drawn != planned.rate {
                return Err(SimError::RateMismatch { id, planned: planned.rate, drawn });
            }
            let n_ticks = schedule::n_ticks(planned.rate, duration_us);
            machines.push(SimMachine { machine, rng, n_ticks, next_tick: 0, last_arrival_us: 0 });
        }
        let n = n_machines as usize;
        let wire = Wire {
            heap: BinaryHeap::with_capacity(n * 2),
            network: Network::new(settings.network, seed::rng_from_seed(seed::network_seed(plan.run_seed))),
            fifo_us: vec![0; n * n],
            n_machines: n,
            n_sent: 0,
            in_flight: 0,
            max_in_flight: 0,
        };
        Ok(Simulation { machines, wire, host: plan.host.clone(), epoch_us: settings.epoch_us, duration_us })
    }

    /// Runs to the end and sends every line to `sink`, then calls
    /// [`Sink::finish`].
    ///
    /// At the start instant each machine logs `Initialized` and one
    /// `Connected` per peer. Each machine then ticks on the absolute
    /// schedule of `clocklab_model::schedule` until the deadline. Messages
    /// still on the wire at the deadline arrive afterwards; when the wire is
    /// empty, each machine logs what is left in its queue as `Unprocessed`
    /// (oldest first, Queue Length counting down to 1, as for `Processed`)
    /// and then `Stopped`, at the later of the deadline and the last arrival
    /// at that machine.
    pub fn run<S: Sink + ?Sized>(mut self, sink: &mut S) -> io::Result<SimSummary> {
        let mut summary = SimSummary::default();
        let n_machines = self.machines.len() as u32;
        let epoch_us = self.epoch_us;
        let at = |time_us: u64| epoch_us.saturating_add_unsigned(time_us);

        for (idx, sim) in self.machines.iter().enumerate() {
            let id = idx as MachineId + 1;
            let rate = sim.machine.params().rate;
            let port = virtual_port(id);
            let event = Event::Initialized { host: Some(self.host.clone()), port, rate };
            write(
                sink,
                &mut summary,
                Record { machine: id, event, logical_clock: 0, queue_length: 0, time_us: at(0) },
            )?;
            for peer in (1..=n_machines).filter(|&peer| peer != id) {
                let event = Event::Connected { peer, host: Some(self.host.clone()), port: virtual_port(peer) };
                write(
                    sink,
                    &mut summary,
                    Record { machine: id, event, logical_clock: 0, queue_length: 0, time_us: at(0) },
                )?;
            }
            if sim.n_ticks > 0 {
                self.wire.heap.push(Pending { key: tick_key(0, id), payload: Payload::Tick { id } });
            }
        }

        // Reused for every send, so that a tick allocates nothing.
        let mut recipients: Vec<MachineId> = Vec::with_capacity(n_machines as usize);
        while let Some(pending) = self.wire.heap.pop() {
            let now_us = pending.time_us();
            match pending.payload {
                Payload::Delivery { from, to, stamp } => {
                    self.wire.in_flight -= 1;
                    let sim = &mut self.machines[to as usize - 1];
                    sim.machine.deliver(from, stamp);
                    sim.last_arrival_us = now_us;
                    summary.max_queue_len = summary.max_queue_len.max(sim.machine.queue_len() as u64);
                }
                Payload::Tick { id } => {
                    let sim = &mut self.machines[id as usize - 1];
                    let tick = sim.machine.tick(&mut sim.rng);
                    let event = match tick.event {
                        TickEvent::Processed { from, stamp } => {
                            Event::Processed { from: Some(from), clock: Some(stamp) }
                        }
                        TickEvent::Internal => Event::Internal,
                        TickEvent::Sent { recipients: to, stamp } => {
                            recipients.clear();
                            for peer in sim.machine.recipients(to) {
                                recipients.push(peer);
                                self.wire.send(now_us, id, peer, stamp);
                            }
                            summary.messages += recipients.len() as u64;
                            Event::Sent { to: std::mem::take(&mut recipients) }
                        }
                    };
                    let record = Record {
                        machine: id,
                        event,
                        logical_clock: tick.clock,
                        queue_length: tick.queue_len,
                        time_us: at(now_us),
                    };
                    summary.ticks += 1;
                    summary.lines += 1;
                    sink.write(&record)?;
                    if let Event::Sent { to } = record.event {
                        recipients = to;
                    }
                    sim.next_tick += 1;
                    if sim.next_tick < sim.n_ticks {
                        let due_us = schedule::tick_offset_us(sim.next_tick, sim.machine.params().rate);
                        self.wire.heap.push(Pending { key: tick_key(due_us, id), payload: Payload::Tick { id } });
                    }
                }
            }
        }
        assert_eq!(self.wire.in_flight, 0, "the wire is empty when the heap is");

        for (idx, sim) in self.machines.iter_mut().enumerate() {
            let id = idx as MachineId + 1;
            assert_eq!(sim.next_tick, sim.n_ticks, "machine {id} made every tick of its schedule");
            let end_us = self.duration_us.max(sim.last_arrival_us);
            summary.end_us = summary.end_us.max(end_us);
            let logical_clock = sim.machine.clock();
            let mut queue_length = sim.machine.queue_len() as u64;
            summary.unprocessed += queue_length;
            let left: Vec<_> = sim.machine.drain_unprocessed().collect();
            for message in left {
                let event = Event::Unprocessed { from: message.from, clock: message.stamp };
                write(
                    sink,
                    &mut summary,
                    Record { machine: id, event, logical_clock, queue_length, time_us: at(end_us) },
                )?;
                queue_length -= 1;
            }
            let event = Event::Stopped;
            write(
                sink,
                &mut summary,
                Record { machine: id, event, logical_clock, queue_length: 0, time_us: at(end_us) },
            )?;
        }
        summary.max_in_flight = self.wire.max_in_flight;
        sink.finish()?;
        Ok(summary)
    }
}

fn write<S: Sink + ?Sized>(sink: &mut S, summary: &mut SimSummary, record: Record) -> io::Result<()> {
    summary.lines += 1;
    sink.write(&record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_config::{Config, DelayDistribution, plan_runs};

    /// Keeps every line.
    #[derive(Default)]
    struct VecSink(Vec<Record>);

    impl Sink for VecSink {
        fn write(&mut self, record: &Record) -> io::Result<()> {
            self.0.push(record.clone());
            Ok(())
        }
    }

    /// Two machines at rate 1 whose empty-queue ticks always send.
    fn always_sending_pair(duration_s: f64) -> RunPlan {
        let mut config = Config::default();
        config.experiments.truncate(1);
        let experiment = &mut config.experiments[0];
        (experiment.machines, experiment.max_clock_rate, experiment.max_event_num) = (2, 1, 3);
        experiment.duration = duration_s;
        plan_runs(&config, 7, std::path::Path::new("unused")).remove(0)
    }

    fn simulate(plan: &RunPlan, delay_us: f64) -> (SimSummary, Vec<Record>) {
        let settings = SimSettings { network: DelayDistribution::Constant { delay_us }, ..SimSettings::default() };
        let mut sink = VecSink::default();
        let summary = Simulation::new(plan, &settings).unwrap().run(&mut sink).unwrap();
        (summary, sink.0)
    }

    fn ticks_of(records: &[Record], id: MachineId) -> Vec<&Record> {
        records.iter().filter(|r| r.machine == id && r.event.is_tick()).collect()
    }

    #[test]
    fn a_delivery_at_the_instant_of_a_tick_is_processed_by_it() {
        // Each message takes exactly one tick interval, so it lands at the
        // instant of the receiver's next tick: that tick must take it.
        let plan = always_sending_pair(6.0);
        let (summary, records) = simulate(&plan, 1_000_000.0);
        for id in [1, 2] {
            let ticks = ticks_of(&records, id);
            assert_eq!(ticks.len(), 6);
            for (k, tick) in ticks.iter().enumerate() {
                assert_eq!(tick.time_us, SimSettings::DEFAULT_EPOCH_US + k as i64 * 1_000_000);
                let processed = matches!(tick.event, Event::Processed { .. });
                assert_eq!(processed, k % 2 == 1, "machine {id}, tick {k}: {tick:?}");
            }
        }
        assert_eq!(summary.ticks, 12);
        assert_eq!(summary.unprocessed, 0);
    }

    #[test]
    fn messages_on_the_wire_at_the_deadline_arrive_and_are_logged_unprocessed() {
        let plan = always_sending_pair(3.0);
        let (summary, records) = simulate(&plan, 10_000_000.0);
        let start = SimSettings::DEFAULT_EPOCH_US;
        for id in [1, 2] {
            let lines: Vec<&Record> = records.iter().filter(|r| r.machine == id).collect();
            // Initialized, Connected, three sends, three unprocessed, Stopped.
            assert_eq!(lines.len(), 9, "{lines:#?}");
            let tail = &lines[5..];
            for (idx, line) in tail[..3].iter().enumerate() {
                assert_eq!(line.event, Event::Unprocessed { from: 3 - id, clock: idx as u64 + 1 });
                assert_eq!(line.queue_length, 3 - idx as u64);
                assert_eq!(line.logical_clock, 3);
                // The last of them arrives 10 s after the tick at 2 s.
                assert_eq!(line.time_us, start + 12_000_000);
            }
            assert_eq!(tail[3].event, Event::Stopped);
            assert_eq!((tail[3].queue_length, tail[3].time_us), (0, start + 12_000_000));
        }
        assert_eq!((summary.messages, summary.unprocessed, summary.max_in_flight), (6, 6, 6));
        assert_eq!(summary.end_us, 12_000_000);
    }

    #[test]
    fn stopped_is_at_the_deadline_when_the_wire_is_quiet() {
        let plan = always_sending_pair(2.5);
        let (summary, records) = simulate(&plan, 0.0);
        let stopped: Vec<&Record> = records.iter().filter(|r| r.event == Event::Stopped).collect();
        assert_eq!(stopped.len(), 2);
        assert!(stopped.iter().all(|r| r.time_us == SimSettings::DEFAULT_EPOCH_US + 2_500_000));
        assert_eq!(summary.end_us, 2_500_000);
        assert_eq!(summary.ticks, 6, "ceil(1 x 2.5) ticks each");
    }

    #[test]
    fn bad_plans_are_refused() {
        let plan = always_sending_pair(1.0);
        let mut missing = plan.clone();
        missing.machines.pop();
        assert!(matches!(
            Simulation::new(&missing, &SimSettings::default()),
            Err(SimError::MachineList { expected: 2, .. })
        ));
        let mut too_many = plan.clone();
        too_many.experiment.machines = 60_000;
        too_many.machines = (1..=60_000).map(|id| clocklab_config::MachinePlan { id, seed: 0, rate: 1 }).collect();
        assert_eq!(Simulation::new(&too_many, &SimSettings::default()).unwrap_err(), SimError::TooManyMachines(60_000));
        let mut bad_event_num = plan;
        bad_event_num.experiment.max_event_num = 2;
        assert!(matches!(
            Simulation::new(&bad_event_num, &SimSettings::default()),
            Err(SimError::Params { id: 1, source: ParamsError::MaxEventNumTooSmall(2) })
        ));
    }

    #[test]
    fn simultaneous_events_are_ordered_by_key() {
        let delivery = |time_us: u64, seq: u64| Pending {
            key: u128::from(time_us) << 64 | u128::from(seq),
            payload: Payload::Delivery { from: 1, to: 2, stamp: 0 },
        };
        let tick = |time_us: u64, id: MachineId| Pending { key: tick_key(time_us, id), payload: Payload::Tick { id } };
        let mut heap =
            BinaryHeap::from([tick(5, 2), tick(5, 1), delivery(5, 9), delivery(5, 3), delivery(4, 10), tick(6, 1)]);
        let mut order = Vec::new();
        while let Some(pending) = heap.pop() {
            order.push(match pending.payload {
                Payload::Tick { id } => format!("t{}@{}", id, pending.time_us()),
                Payload::Delivery { .. } => format!("d{}@{}", pending.key as u64, pending.time_us()),
            });
        }
        assert_eq!(order, ["d10@4", "d3@5", "d9@5", "t1@5", "t2@5", "t1@6"]);
    }
}
