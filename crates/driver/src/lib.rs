//! The one step both runtimes take: a machine of the model, driven, turned
//! into log records and frames.
//!
//! `clocklab-model` decides what a tick does; this crate turns what it did
//! into the log's [`Record`] and the wire's frame, and it is the only place
//! that does: the real runtime (`clocklab-net`), the simulator
//! (`clocklab-sim`), the analysis fixtures and the benchmarks all drive a
//! [`Driver`] and only decide *when* (and what to do with the bytes). So a
//! rule about a line (which clocks it carries, what `Queue Length` means on
//! `Unprocessed`, which frame a send puts on the wire, the queue cap) is
//! written once.
//!
//! Start here: [`Driver::new`] draws the machine's rate from its seed;
//! [`Driver::initialized`] and [`Driver::connected`] are the preamble lines;
//! [`Driver::deliver`] puts an arrived message in the queue;
//! [`Driver::tick`] runs one tick and gives its line and, for a send, its
//! frame; [`Driver::end`] gives the end of the log (`Unprocessed` lines with
//! the queue counting down, then `Stopped`).
//!
//! ```
//! use clocklab_driver::{Driver, DriverParams};
//! use clocklab_log::Event;
//! use clocklab_model::ClockKinds;
//!
//! let params = |id| DriverParams { clocks: ClockKinds::ALL, ..DriverParams::new(id, 2, 6, 3, u64::from(id)) };
//! let t0 = 1_767_225_600_000_000;
//! let (mut one, mut two) = (Driver::new(params(1), t0).unwrap(), Driver::new(params(2), t0).unwrap());
//! // max_event_num 3: a tick with an empty queue always sends.
//! let codec = one.codec();
//! let step = one.tick(t0);
//! assert_eq!(step.record.event, Event::Sent { to: vec![2].into() });
//! // What the receiver gets: the frame, decoded by the run's codec.
//! let stamp = codec.decode(step.frame.unwrap());
//! two.deliver(t0 + 40, 1, stamp);
//! let record = two.tick(t0 + 100).record;
//! assert_eq!(record.event, Event::Processed { from: Some(1), clock: Some(1) });
//! assert_eq!(record.vector_clock.as_deref(), Some(&[1, 1][..]));
//! let end = two.end(t0 + 1_000);
//! assert_eq!(end.last().unwrap().event, Event::Stopped);
//! ```

mod faults;
mod lateness;
pub mod life;
pub mod timeline;

pub use faults::{ClockSnapshot, Route, crash_record};
use lateness::ScheduleWatch;
pub use lateness::{BehindSummary, LatenessRecorder, LatenessSummary};
pub use life::{Change, Life, LifeEvent};
pub use timeline::{Dispatch, Due, Effects, RunTimes, Timeline, Timeout, is_held};

use clocklab_log::{Event, Record};
use clocklab_model::seed::{self, ModelRng};
use clocklab_model::wire::FrameCodec;
use clocklab_model::{
    ClockKinds, ClockSet, Delivery, Machine, MachineId, MachineParams, ParamsError, PhysicalClock, Stamp, TickEvent,
};

/// Everything that defines one machine of a run before it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriverParams {
    /// Its number, `1..=n_machines`.
    pub id: MachineId,
    /// How many machines the run has.
    pub n_machines: u32,
    /// Its rate is drawn from `1..=max_clock_rate`.
    pub max_clock_rate: u32,
    /// Event draws are from `1..=max_event_num`.
    pub max_event_num: u32,
    /// Its seed: the rate is the first draw, the events follow.
    pub seed: u64,
    /// The clocks the run keeps besides Lamport's.
    pub clocks: ClockKinds,
    /// Its physical clock's offset from true time at the start, in microseconds.
    pub clock_offset_us: i64,
    /// Its physical clock's drift, in parts per million.
    pub clock_drift_ppm: f64,
    /// How many messages its queue holds before it refuses (and counts) more.
    pub queue_cap: usize,
}

impl DriverParams {
    /// A machine with Lamport's clock alone, a perfect physical clock and an
    /// unlimited queue.
    pub fn new(id: MachineId, n_machines: u32, max_clock_rate: u32, max_event_num: u32, seed: u64) -> DriverParams {
        DriverParams {
            id,
            n_machines,
            max_clock_rate,
            max_event_num,
            seed,
            clocks: ClockKinds::LAMPORT,
            clock_offset_us: 0,
            clock_drift_ppm: 0.0,
            queue_cap: usize::MAX,
        }
    }

    /// Whether lines carry the machine's physical clock: when the run keeps
    /// an HLC or the clock is not true time.
    pub fn writes_physical_clock(&self) -> bool {
        self.clocks.hlc || self.clock_offset_us != 0 || self.clock_drift_ppm != 0.0
    }
}

/// What the driver counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverCounts {
    /// Ticks run.
    pub ticks: u64,
    /// Messages sent (one per recipient).
    pub sent: u64,
    /// Messages processed by a tick.
    pub processed: u64,
    /// Sends whose Lamport clock saturated on the 32-bit wire.
    pub saturated: u64,
}

/// One tick's outcome: its line and, for a send, the frame every recipient gets.
#[derive(Debug)]
pub struct Step<'a> {
    /// The line.
    pub record: &'a Record,
    /// The frame to send, for a send (its recipients are in the record's `Sent`).
    pub frame: Option<&'a [u8]>,
}

impl Step<'_> {
    /// The machines a send goes to (empty for other ticks).
    pub fn recipients(&self) -> &[MachineId] {
        match &self.record.event {
            Event::Sent { to } => to,
            _ => &[],
        }
    }
}

/// One machine, driven: see the [crate documentation](crate).
#[derive(Debug)]
pub struct Driver {
    params: DriverParams,
    machine: Machine<ClockSet>,
    rng: ModelRng,
    codec: FrameCodec,
    /// The last line made; its buffers are reused so that a tick allocates nothing.
    record: Record,
    frame: Vec<u8>,
    counts: DriverCounts,
    /// Whether the ticks keep their schedule.
    watch: ScheduleWatch,
    /// [`DriverParams::writes_physical_clock`], asked once.
    physical_in_lines: bool,
    /// The buffer of the last send's recipients, while the record holds another event.
    spare_recipients: clocklab_log::Recipients,
}

impl Driver {
    /// The machine of `params`, its rate drawn from its seed, its physical
    /// clock set at true time `origin_us` (see [`Driver::start`]).
    pub fn new(params: DriverParams, origin_us: i64) -> Result<Driver, ParamsError> {
        if params.max_clock_rate == 0 {
            return Err(ParamsError::ZeroRate);
        }
        let (rng, rate) = seed::start_machine(params.seed, params.max_clock_rate);
        let machine_params =
            MachineParams { id: params.id, n_machines: params.n_machines, rate, max_event_num: params.max_event_num };
        machine_params.validate()?;
        let clocks = ClockSet::new(params.clocks, (params.id - 1) as usize, params.n_machines as usize);
        let machine = Machine::new(machine_params, clocks)?
            .with_queue_cap(params.queue_cap)
            .with_physical_clock(PhysicalClock::new(origin_us, params.clock_offset_us, params.clock_drift_ppm));
        let record = Record::new(params.id, Event::Stopped, 0, 0, origin_us);
        let frame = Vec::with_capacity(FrameCodec::new(params.clocks, params.n_machines).frame_len());
        Ok(Driver {
            params,
            machine,
            rng,
            codec: FrameCodec::new(params.clocks, params.n_machines),
            record,
            frame,
            counts: DriverCounts::default(),
            watch: ScheduleWatch::new(rate),
            physical_in_lines: params.writes_physical_clock(),
            spare_recipients: clocklab_log::Recipients::new(),
        })
    }

    /// The parameters it was made with.
    pub fn params(&self) -> &DriverParams {
        &self.params
    }

    /// Its drawn clock rate.
    pub fn rate(&self) -> u32 {
        self.machine.params().rate
    }

    /// The machine.
    pub fn machine(&self) -> &Machine<ClockSet> {
        &self.machine
    }

    /// The frame layout of the run.
    pub fn codec(&self) -> FrameCodec {
        self.codec
    }

    /// What was counted so far.
    pub fn counts(&self) -> DriverCounts {
        self.counts
    }

    /// The run starts at true time `start_us`: the physical clock's offset
    /// and drift are measured from there.
    pub fn start(&mut self, start_us: i64) {
        let clock = PhysicalClock::new(start_us, self.params.clock_offset_us, self.params.clock_drift_ppm);
        *self.machine.physical_clock_mut() = clock;
    }

    /// The first line: where it listens and the rate it drew.
    pub fn initialized(&mut self, now_us: i64, host: &str, port: Option<u16>) -> &Record {
        let rate = self.rate();
        self.line(Event::Initialized { host: Some(host.to_string()), port, rate }, 0, now_us)
    }

    /// The line for a connection to `peer` being up.
    pub fn connected(&mut self, now_us: i64, peer: MachineId, host: &str, port: Option<u16>) -> &Record {
        self.line(Event::Connected { peer, host: Some(host.to_string()), port }, 0, now_us)
    }

    /// The line for `peer` gone before the end.
    pub fn disconnected(&mut self, now_us: i64, peer: MachineId) -> &Record {
        let queue_len = self.machine.queue_len() as u64;
        self.line(Event::Disconnected { peer }, queue_len, now_us)
    }

    /// The line for a machine that fell behind its schedule: tick `tick`
    /// (0-based) runs `lateness_us` after its due time. Not a tick: the
    /// clocks are as they are.
    pub fn behind(&mut self, now_us: i64, lateness_us: u64, tick: u64) -> &Record {
        let queue_len = self.machine.queue_len() as u64;
        self.line(Event::Behind { lateness_us, tick }, queue_len, now_us)
    }

    /// Called before tick `tick` (0-based), which runs `lateness_us` after
    /// its due time, at true time `now_us`: the `Behind` line to write when
    /// the machine has just fallen behind its schedule by more than one tick
    /// period (see `lateness`), `None` otherwise. The tick runs all the
    /// same: late ticks are caught up, never skipped. `paused`: the fault
    /// plan paused the machine when the tick was due (see
    /// `clocklab_faults::FaultPlan::paused_at`).
    pub fn before_tick(&mut self, now_us: i64, tick: u64, lateness_us: u64, paused: bool) -> Option<&Record> {
        if self.watch.observe(now_us, lateness_us, paused) {
            Some(self.behind(now_us, lateness_us, tick))
        } else {
            None
        }
    }

    /// How far behind its schedule the machine fell so far.
    pub fn behind_summary(&self) -> BehindSummary {
        self.watch.summary()
    }

    /// A message from `from` arrived at true time `now_us`.
    pub fn deliver(&mut self, now_us: i64, from: MachineId, stamp: Stamp) -> Delivery {
        self.machine.deliver(now_us, from, stamp)
    }

    /// Runs one tick at true time `now_us`.
    pub fn tick(&mut self, now_us: i64) -> Step<'_> {
        let tick = self.machine.tick(now_us, &mut self.rng);
        self.counts.ticks += 1;
        let mut sends = false;
        match tick.event {
            TickEvent::Processed { from, stamp } => {
                self.counts.processed += 1;
                self.set_event(Event::Processed { from: Some(from), clock: Some(stamp.lamport) });
            }
            TickEvent::Internal => self.set_event(Event::Internal),
            TickEvent::Sent { recipients, stamp } => {
                // The recipients' buffer is the last send's (beyond two, on the heap).
                let mut to = match &mut self.record.event {
                    Event::Sent { to } => std::mem::take(to),
                    _ => std::mem::take(&mut self.spare_recipients),
                };
                to.clear();
                to.extend(self.machine.recipients(recipients));
                self.set_event(Event::Sent { to });
                let Event::Sent { to } = &self.record.event else { unreachable!("just written") };
                self.counts.sent += to.len() as u64;
                self.frame.clear();
                self.counts.saturated += u64::from(self.codec.encode(&stamp, &mut self.frame));
                sends = true;
            }
        }
        self.fill_clocks(tick.queue_len, now_us, tick.physical_us);
        Step { record: &self.record, frame: sends.then_some(self.frame.as_slice()) }
    }

    /// The end of the log at true time `now_us`: one `Unprocessed` line per
    /// message still queued, oldest first, `Queue Length` counting it and
    /// those after it (as for `Processed`), then `Stopped` with an empty
    /// queue. The machine's queue is empty afterwards.
    pub fn end(&mut self, now_us: i64) -> Vec<Record> {
        let left: Vec<_> = self.machine.drain_unprocessed().collect();
        let mut lines = Vec::with_capacity(left.len() + 1);
        let n_left = left.len() as u64;
        for (idx, message) in left.into_iter().enumerate() {
            let event = Event::Unprocessed { from: message.from, clock: message.stamp.lamport };
            lines.push(self.line(event, n_left - idx as u64, now_us).clone());
        }
        lines.push(self.line(Event::Stopped, 0, now_us).clone());
        lines
    }

    /// A line that is not a tick: the clocks as they are.
    fn line(&mut self, event: Event, queue_length: u64, now_us: i64) -> &Record {
        let physical_us = self.machine.physical_clock().read(now_us);
        self.fill(event, queue_length, now_us, physical_us);
        &self.record
    }

    /// Makes the current record: the event, and every clock the run keeps.
    fn fill(&mut self, event: Event, queue_length: u64, now_us: i64, physical_us: i64) {
        self.set_event(event);
        self.fill_clocks(queue_length, now_us, physical_us);
    }

    /// The current record's event is `event`; a send's recipients' buffer is
    /// kept for the next send.
    fn set_event(&mut self, event: Event) {
        if let Event::Sent { to } = std::mem::replace(&mut self.record.event, event) {
            self.spare_recipients = to;
        }
    }

    /// Makes the current record's every field but its event: the clocks the
    /// run keeps, the queue and the time.
    fn fill_clocks(&mut self, queue_length: u64, now_us: i64, physical_us: i64) {
        let clocks = self.machine.logical_clock();
        let record = &mut self.record;
        record.logical_clock = clocks.lamport();
        record.queue_length = queue_length;
        record.time_us = now_us;
        match (clocks.vector(), &mut record.vector_clock) {
            (Some(values), Some(buffer)) => {
                buffer.clear();
                buffer.extend_from_slice(values);
            }
            (Some(values), slot) => *slot = Some(values.to_vec()),
            (None, slot) => *slot = None,
        }
        record.hlc = clocks.hlc();
        record.physical_clock_us = self.physical_in_lines.then_some(physical_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000_000;

    fn driver(id: MachineId, clocks: ClockKinds, max_event_num: u32) -> Driver {
        Driver::new(DriverParams { clocks, ..DriverParams::new(id, 3, 6, max_event_num, 7 + u64::from(id)) }, T0)
            .unwrap()
    }

    #[test]
    fn lamport_alone_writes_the_classic_fields_and_the_four_byte_frame() {
        let mut one = driver(1, ClockKinds::LAMPORT, 3);
        let step = one.tick(T0);
        assert_eq!(step.frame, Some(&[0, 0, 0, 1][..]));
        assert_eq!(
            (step.record.vector_clock.as_ref(), step.record.hlc, step.record.physical_clock_us),
            (None, None, None)
        );
    }

    #[test]
    fn every_line_carries_every_clock_the_run_keeps() {
        let mut one = driver(1, ClockKinds::ALL, 3);
        let init = one.initialized(T0, "127.0.0.1", Some(5001)).clone();
        assert_eq!(init.vector_clock, Some(vec![0, 0, 0]));
        assert_eq!(init.hlc, Some(clocklab_model::HlcStamp::default()));
        assert_eq!(init.physical_clock_us, Some(T0));
        let step = one.tick(T0 + 10);
        assert_eq!(step.frame.map(<[u8]>::len), Some(4 + 24 + 16));
        assert_eq!(step.record.hlc.map(|h| h.l_us), Some(T0 + 10));
    }

    #[test]
    fn the_end_counts_the_queue_down_then_stops() {
        let mut two = driver(2, ClockKinds::LAMPORT, 10);
        for clock in [5, 6, 7] {
            two.deliver(T0, 1, Stamp::lamport(clock));
        }
        let end = two.end(T0 + 5);
        let shape: Vec<(Event, u64)> = end.iter().map(|r| (r.event.clone(), r.queue_length)).collect();
        assert_eq!(
            shape,
            [
                (Event::Unprocessed { from: 1, clock: 5 }, 3),
                (Event::Unprocessed { from: 1, clock: 6 }, 2),
                (Event::Unprocessed { from: 1, clock: 7 }, 1),
                (Event::Stopped, 0),
            ]
        );
        assert_eq!(two.machine().queue_len(), 0);
    }

    #[test]
    fn the_queue_cap_refuses_and_counts() {
        let params = DriverParams { queue_cap: 1, ..DriverParams::new(1, 3, 6, 10, 1) };
        let mut one = Driver::new(params, T0).unwrap();
        assert_eq!(one.deliver(T0, 2, Stamp::lamport(1)), Delivery::Queued);
        assert_eq!(one.deliver(T0, 2, Stamp::lamport(2)), Delivery::Refused);
        assert_eq!(one.machine().refused(), 1);
    }

    #[test]
    fn a_machine_behind_its_schedule_says_so_once() {
        let mut one = driver(1, ClockKinds::LAMPORT, 10);
        let period_us = 1_000_000 / u64::from(one.rate());
        assert!(one.before_tick(T0, 0, period_us, false).is_none());
        let line = one.before_tick(T0 + 5_000_000, 7, 4_000_000, false).expect("four seconds late is behind").clone();
        assert_eq!(line.event, Event::Behind { lateness_us: 4_000_000, tick: 7 });
        assert_eq!((line.logical_clock, line.time_us), (0, T0 + 5_000_000));
        assert!(one.before_tick(T0 + 5_000_001, 8, 3_999_000, false).is_none(), "the ticks it missed run back to back");
        assert_eq!(one.behind_summary(), BehindSummary { episodes: 1, lateness_us_max: 4_000_000, paused_episodes: 0 });
        // The line is not a tick: nothing is counted.
        assert_eq!(one.counts().ticks, 0);
    }

    #[test]
    fn an_offset_clock_is_written_without_hlc() {
        let params = DriverParams { clock_offset_us: 2_500, ..DriverParams::new(1, 3, 6, 10, 1) };
        let mut one = Driver::new(params, T0).unwrap();
        one.start(T0 + 1_000);
        assert_eq!(one.tick(T0 + 1_000).record.physical_clock_us, Some(T0 + 3_500));
    }
}
