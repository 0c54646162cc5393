//! The event loop: machines tick on their schedules, messages cross the
//! simulated network, all in virtual time.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::sync::atomic::{self, AtomicBool};

use clocklab_config::{RunPlan, SimSettings};
use clocklab_driver::Driver;
use clocklab_model::seed;
use clocklab_model::wire::FrameCodec;
use clocklab_model::{Delivery, MachineId, ParamsError, Stamp, schedule};

use crate::network::Network;
use crate::sink::Sink;

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
    /// Messages a full queue refused (the queue cap).
    pub refused: u64,
    /// Sends whose Lamport clock saturated on the 32-bit wire.
    pub saturated: u64,
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

/// One machine of the simulation with its schedule.
#[derive(Debug)]
struct SimMachine {
    driver: Driver,
    /// Ticks it makes in the run.
    n_ticks: u64,
    /// The index of its next tick.
    next_tick: u64,
    /// When the last message reached it, in microseconds after the start.
    last_arrival_us: u64,
}

/// What happens at a point of virtual time.
///
/// A delivery names only its link: the message itself waits in the link's
/// queue, so that the heap's entries stay small (the heap moves them on
/// every push and pop).
#[derive(Clone, Copy, Debug)]
enum Payload {
    /// Machine `id` ticks.
    Tick { id: MachineId },
    /// The oldest message on the link from `from` to `to` arrives at `to`'s queue.
    Delivery { from: MachineId, to: MachineId },
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

/// The messages in flight from one sender to one receiver, oldest first, and
/// when the last of them arrives.
#[derive(Clone, Debug)]
struct Link {
    to: MachineId,
    last_arrival_us: u64,
    messages: VecDeque<Stamp>,
}

/// The wire: messages in flight, in a heap with the pending ticks.
#[derive(Debug)]
struct Wire {
    heap: BinaryHeap<Pending>,
    network: Network,
    /// Per sender (`links[from - 1]`), the links with messages in flight: a
    /// later message never arrives before an earlier one on its link, as on a
    /// TCP connection. A link is dropped when its last message arrives, so
    /// memory grows with the machines and the messages in flight, never with
    /// the square of the machines.
    links: Vec<Vec<Link>>,
    /// Messages sent so far; also the order of simultaneous deliveries.
    n_sent: u64,
    in_flight: u64,
    max_in_flight: u64,
}

impl Wire {
    fn send(&mut self, now_us: u64, from: MachineId, to: MachineId, stamp: Stamp) {
        let links = &mut self.links[from as usize - 1];
        let delay_us = self.network.draw_delay_us();
        let arrival_us = match links.iter_mut().find(|link| link.to == to) {
            Some(link) => {
                link.last_arrival_us = now_us.saturating_add(delay_us).max(link.last_arrival_us);
                link.messages.push_back(stamp);
                link.last_arrival_us
            }
            None => {
                let last_arrival_us = now_us.saturating_add(delay_us);
                links.push(Link { to, last_arrival_us, messages: VecDeque::from([stamp]) });
                last_arrival_us
            }
        };
        // Fewer than 2^63 messages fit in any run, so the order never spills into the class bit.
        // On one link arrivals never decrease and the order rises with every
        // send, so the heap gives a link's messages in the order they were sent.
        let key = u128::from(arrival_us) << 64 | u128::from(self.n_sent);
        self.n_sent += 1;
        self.heap.push(Pending { key, payload: Payload::Delivery { from, to } });
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
    }

    /// The oldest message in flight from `from` to `to`, which has arrived.
    fn arrived(&mut self, from: MachineId, to: MachineId) -> Stamp {
        self.in_flight -= 1;
        let links = &mut self.links[from as usize - 1];
        let idx = links.iter().position(|link| link.to == to).expect("a delivery has its link");
        let stamp = links[idx].messages.pop_front().expect("a delivery has its message");
        if links[idx].messages.is_empty() {
            links.swap_remove(idx);
        }
        stamp
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
    codec: FrameCodec,
    host: String,
    epoch_us: i64,
    duration_us: u64,
}

impl Simulation {
    /// Sets up the run of `plan`: each machine's driver from its seed (its
    /// rate drawn as the real runtime draws it), the network's generator
    /// from the run seed.
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
            let driver = Driver::new(plan.driver_params(planned), settings.epoch_us)
                .map_err(|source| SimError::Params { id, source })?;
            if driver.rate() != planned.rate {
                return Err(SimError::RateMismatch { id, planned: planned.rate, drawn: driver.rate() });
            }
            let n_ticks = schedule::n_ticks(planned.rate, duration_us);
            machines.push(SimMachine { driver, n_ticks, next_tick: 0, last_arrival_us: 0 });
        }
        let n = n_machines as usize;
        let wire = Wire {
            heap: BinaryHeap::with_capacity(n * 2),
            network: Network::new(settings.network, seed::rng_from_seed(seed::network_seed(plan.run_seed))),
            links: vec![Vec::new(); n],
            n_sent: 0,
            in_flight: 0,
            max_in_flight: 0,
        };
        Ok(Simulation {
            machines,
            wire,
            codec: FrameCodec::new(experiment.clocks, n_machines),
            host: plan.host.clone(),
            epoch_us: settings.epoch_us,
            duration_us,
        })
    }

    /// Runs to the end and sends every line to `sink`, then calls
    /// [`Sink::finish`].
    ///
    /// At the start instant each machine logs `Initialized` and one
    /// `Connected` per peer. Each machine then ticks on the absolute
    /// schedule of `clocklab_model::schedule` until the deadline. A send's
    /// frame goes through the run's wire codec, as on a real connection, and
    /// a delivery goes through the machine's queue cap. Messages still on the
    /// wire at the deadline arrive afterwards; when the wire is empty, each
    /// machine writes the end of its log (what is left in its queue as
    /// `Unprocessed`, then `Stopped`) at the later of the deadline and the
    /// last arrival at that machine.
    pub fn run<S: Sink + ?Sized>(self, sink: &mut S) -> io::Result<SimSummary> {
        self.run_until(sink, &AtomicBool::new(false))
    }

    /// [`Simulation::run`], stopping early when `stop` is set (a signal to
    /// `clocklab run`): from the virtual instant the loop sees it, no machine
    /// ticks again; messages on the wire still arrive, and every log ends as
    /// at the deadline (`Unprocessed` lines, then `Stopped`), so the run loses
    /// nothing and its logs hold whole lines. A run that is not stopped is
    /// the same, byte for byte, whatever `stop` is.
    pub fn run_until<S: Sink + ?Sized>(self, sink: &mut S, stop: &AtomicBool) -> io::Result<SimSummary> {
        let Simulation { mut machines, mut wire, codec, host, epoch_us, duration_us } = self;
        let mut summary = SimSummary::default();
        let n_machines = machines.len() as u32;
        let at = |time_us: u64| epoch_us.saturating_add_unsigned(time_us);
        let mut write = |sink: &mut S, record: &clocklab_log::Record| {
            summary.lines += 1;
            sink.write(record)
        };

        for (idx, sim) in machines.iter_mut().enumerate() {
            let id = idx as MachineId + 1;
            write(sink, sim.driver.initialized(at(0), &host, virtual_port(id)))?;
            for peer in (1..=n_machines).filter(|&peer| peer != id) {
                write(sink, sim.driver.connected(at(0), peer, &host, virtual_port(peer)))?;
            }
            if sim.n_ticks > 0 {
                wire.heap.push(Pending { key: tick_key(0, id), payload: Payload::Tick { id } });
            }
        }

        let mut n_events = 0u64;
        while let Some(pending) = wire.heap.pop() {
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
                    let stamp = wire.arrived(from, to);
                    let sim = &mut machines[to as usize - 1];
                    if sim.driver.deliver(at(now_us), from, stamp) == Delivery::Queued {
                        summary.max_queue_len = summary.max_queue_len.max(sim.driver.machine().queue_len() as u64);
                    }
                    sim.last_arrival_us = now_us;
                }
                // Events come in time order, so every tick from the stop on is dropped.
                Payload::Tick { .. } if summary.stopped_at_us.is_some() => {}
                Payload::Tick { id } => {
                    let sim = &mut machines[id as usize - 1];
                    let step = sim.driver.tick(at(now_us));
                    write(sink, step.record)?;
                    if let Some(frame) = step.frame {
                        // What every recipient gets: the frame through the wire's codec.
                        let stamp = codec.decode(frame);
                        for &peer in step.recipients() {
                            wire.send(now_us, id, peer, stamp.clone());
                        }
                    }
                    sim.next_tick += 1;
                    if sim.next_tick < sim.n_ticks {
                        let due_us = schedule::tick_offset_us(sim.next_tick, sim.driver.rate());
                        wire.heap.push(Pending { key: tick_key(due_us, id), payload: Payload::Tick { id } });
                    }
                }
            }
        }
        assert_eq!(wire.in_flight, 0, "the wire is empty when the heap is");

        for (idx, sim) in machines.iter_mut().enumerate() {
            let id = idx as MachineId + 1;
            let deadline_us = match summary.stopped_at_us {
                Some(stopped_at_us) => stopped_at_us,
                None => {
                    assert_eq!(sim.next_tick, sim.n_ticks, "machine {id} made every tick of its schedule");
                    duration_us
                }
            };
            let end_us = deadline_us.max(sim.last_arrival_us);
            summary.end_us = summary.end_us.max(end_us);
            for record in sim.driver.end(at(end_us)) {
                summary.unprocessed += u64::from(matches!(record.event, clocklab_log::Event::Unprocessed { .. }));
                write(sink, &record)?;
            }
            let counts = sim.driver.counts();
            summary.ticks += counts.ticks;
            summary.messages += counts.sent;
            summary.saturated += counts.saturated;
            summary.refused += sim.driver.machine().refused();
        }
        summary.max_in_flight = wire.max_in_flight;
        sink.finish()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_config::{Config, DelayDistribution, plan_runs};
    use clocklab_log::{Event, Record};

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
    fn a_stop_request_ends_ticking_and_loses_nothing() {
        let mut plan = always_sending_pair(3_600.0);
        plan.experiment.max_clock_rate = 1;
        let settings = SimSettings { network: DelayDistribution::Constant { delay_us: 5.0 }, ..SimSettings::default() };
        let (full, _) = simulate(&plan, 5.0);
        let mut sink = VecSink::default();
        let stop = AtomicBool::new(true);
        let summary = Simulation::new(&plan, &settings).unwrap().run_until(&mut sink, &stop).unwrap();
        let stopped_at_us = summary.stopped_at_us.expect("the stop was seen");
        assert!(summary.ticks < full.ticks && summary.ticks > 0, "{summary:?}");
        // Whole logs: the end of each, and every message sent is received.
        let logs: std::collections::BTreeMap<MachineId, Vec<Record>> =
            [1, 2].map(|id| (id, sink.0.iter().filter(|r| r.machine == id).cloned().collect())).into();
        for records in logs.values() {
            assert_eq!(records.last().unwrap().event, Event::Stopped);
            assert!(
                records
                    .iter()
                    .filter(|r| r.event.is_tick())
                    .all(|r| r.time_us < settings.epoch_us + stopped_at_us as i64)
            );
        }
        let expect = clocklab_log::check::Expectations {
            n_machines: 2,
            duration_s: 3_600.0,
            tick_tolerance: u64::MAX,
            allow_loss: false,
            clocks: clocklab_model::ClockKinds::LAMPORT,
        };
        let report = clocklab_log::check::check_run(&logs, &expect);
        assert!(report.is_ok(), "{:?}", report.violations);
        assert_eq!(report.sent, report.received);
        // Not set, the flag changes nothing.
        let mut again = VecSink::default();
        let unstopped =
            Simulation::new(&plan, &settings).unwrap().run_until(&mut again, &AtomicBool::new(false)).unwrap();
        assert_eq!(unstopped, full);
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
        too_many.machines = (1..=60_000)
            .map(|id| clocklab_config::MachinePlan { id, seed: 0, rate: 1, clock_offset_us: 0, clock_drift_ppm: 0.0 })
            .collect();
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
            payload: Payload::Delivery { from: 1, to: 2 },
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
