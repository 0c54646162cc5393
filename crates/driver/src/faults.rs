//! The lines and state changes of faults: a message the fault plan lost, a
//! crash and the incarnation after it, a step of the physical clock. The
//! runtimes decide when (the fault plan, `clocklab-faults`, says what); the
//! driver, as for every other line, makes the record.

use clocklab_faults::{Fate, FaultPlan};
use clocklab_log::{Event, Record};
use clocklab_model::seed;
use clocklab_model::{ClockSet, HlcStamp, MachineId, MachineParams};

use crate::Driver;

/// Where one message of a send goes, as the fault plan decided.
#[derive(Debug)]
pub enum Route<'a> {
    /// The plan lost it: the sender's `Lost` line, to write.
    Lost(&'a Record),
    /// It goes to `to`, `extra_delay_us` later than the network alone would
    /// take it, and not before `hold_until_us` after the start of the run
    /// (a partition holds it; 0 if none).
    Deliver {
        /// The recipient.
        to: MachineId,
        /// The latency faults' delay, in microseconds.
        extra_delay_us: u64,
        /// The heal of a partition that holds it, microseconds after the start, or 0.
        hold_until_us: u64,
    },
}

/// The `Crashed` line of a machine whose last line was `last`: its clocks as
/// they were, an empty queue (what was in it is gone), at true time
/// `now_us`, with its physical clock's reading then (kept only if `last`
/// has one). The simulator's crash and the real runtime's (a process
/// killed, whose line the orchestrator writes for it) make it here.
pub fn crash_record(last: &Record, now_us: i64, physical_us: i64) -> Record {
    let mut record = last.clone();
    record.event = Event::Crashed;
    record.queue_length = 0;
    record.time_us = now_us;
    record.physical_clock_us = last.physical_clock_us.map(|_| physical_us);
    record
}

/// A machine's clocks as they were after a tick: what a machine that
/// recovers its clocks after a crash comes back with. A machine persists
/// them by writing its log: each tick's line is written whole, before the
/// tick's messages leave, so the last line of a crashed machine's log holds
/// its clocks ([`ClockSnapshot::of`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClockSnapshot {
    /// Lamport's clock.
    pub lamport: u64,
    /// The vector clock, if kept.
    pub vector: Option<Vec<u64>>,
    /// The HLC, if kept.
    pub hlc: Option<HlcStamp>,
}

impl ClockSnapshot {
    /// The clocks a log line carries.
    pub fn of(record: &Record) -> ClockSnapshot {
        ClockSnapshot { lamport: record.logical_clock, vector: record.vector_clock.clone(), hlc: record.hlc }
    }
}

impl Driver {
    /// Sends the message of the send just made (its line said `clock`) to
    /// each of `recipients` through the fault plan, at `since_start_us`
    /// after the start of the run (true time `now_us`): `each` gets, in
    /// order, a `Lost` line to write for each message the plan loses, or
    /// where to deliver it. Both runtimes route their sends here.
    pub fn route<E>(
        &mut self,
        plan: &mut FaultPlan,
        since_start_us: u64,
        now_us: i64,
        recipients: &[MachineId],
        clock: u64,
        mut each: impl FnMut(Route<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let from = self.params.id;
        for &to in recipients {
            match plan.on_send(since_start_us, from, to) {
                Fate::Lost { .. } => each(Route::Lost(self.lost(now_us, to, clock)))?,
                Fate::Deliver { extra_delay_us, hold_until_us } => {
                    each(Route::Deliver { to, extra_delay_us, hold_until_us })?;
                }
            }
        }
        Ok(())
    }

    /// The line for a message to `to` with `clock` that the fault plan lost
    /// at the sender (written after the send's own line).
    pub fn lost(&mut self, now_us: i64, to: MachineId, clock: u64) -> &Record {
        let queue_len = self.machine.queue_len() as u64;
        self.line(Event::Lost { to, clock }, queue_len, now_us)
    }

    /// The machine crashes at true time `now_us`: its queue is gone (the
    /// messages in it are lost with the process) and this is the
    /// incarnation's last line, with the clocks as they were. Returns the line
    /// and how many queued messages were lost.
    pub fn crashed(&mut self, now_us: i64) -> (&Record, u64) {
        let lost = self.machine.drain_unprocessed().count() as u64;
        let physical_us = self.machine.physical_clock().read(now_us);
        self.record = crash_record(&self.record, now_us, physical_us);
        (&self.record, lost)
    }

    /// A new incarnation after a crash, at true time `now_us`, listening on
    /// `host:port`: its clocks back to 0, or `recovered` as they were. Its
    /// generator starts again from its seed (a new process draws what the
    /// first one drew); its physical clock is the machine's, as it was. Its
    /// first line.
    pub fn restarted(
        &mut self,
        now_us: i64,
        host: &str,
        port: Option<u16>,
        recovered: Option<&ClockSnapshot>,
    ) -> &Record {
        let params = self.params;
        let (rng, rate) = seed::start_machine(params.seed, params.max_clock_rate);
        let idx = (params.id - 1) as usize;
        let n = params.n_machines as usize;
        let clocks = match recovered {
            Some(snapshot) => {
                ClockSet::restored(params.clocks, idx, n, snapshot.lamport, snapshot.vector.as_deref(), snapshot.hlc)
            }
            None => ClockSet::new(params.clocks, idx, n),
        };
        let machine_params =
            MachineParams { id: params.id, n_machines: params.n_machines, rate, max_event_num: params.max_event_num };
        let physical = *self.machine.physical_clock();
        self.machine = clocklab_model::Machine::new(machine_params, clocks)
            .expect("the parameters made the first incarnation")
            .with_queue_cap(params.queue_cap)
            .with_physical_clock(physical);
        self.rng = rng;
        let event = Event::Restarted { host: Some(host.to_string()), port, rate, recovered: recovered.is_some() };
        self.line(event, 0, now_us)
    }

    /// The machine's physical clock steps by `step_us` (back, when negative)
    /// and, with `drift_ppm`, takes a new drift, at true time `at_us` (the
    /// plan's instant); the line is written at `now_us` (then or a little
    /// later, in real time).
    pub fn clock_changed(&mut self, now_us: i64, at_us: i64, step_us: i64, drift_ppm: Option<f64>) -> &Record {
        self.step_clock(at_us, step_us, drift_ppm);
        self.clock_line(now_us, step_us, drift_ppm)
    }

    /// The machine's physical clock steps by `step_us` and, with
    /// `drift_ppm`, takes a new drift, at true time `at_us`, without a line
    /// (the machine is down: its next incarnation writes the line).
    pub fn step_clock(&mut self, at_us: i64, step_us: i64, drift_ppm: Option<f64>) {
        let physical = self.machine.physical_clock_mut();
        if step_us != 0 {
            physical.step(at_us, step_us);
        }
        if let Some(drift) = drift_ppm {
            physical.set_drift(at_us, drift);
        }
    }

    /// The line of a clock change already made ([`Driver::step_clock`]), at
    /// true time `now_us`.
    pub fn clock_line(&mut self, now_us: i64, step_us: i64, drift_ppm: Option<f64>) -> &Record {
        let queue_len = self.machine.queue_len() as u64;
        let drift_ppb = drift_ppm.map(|ppm| (ppm * 1_000.0).round() as i64);
        self.line(Event::ClockChanged { step_us, drift_ppb }, queue_len, now_us)
    }

    /// The line for a message to `to` with `clock` that the fault plan still
    /// held when the run's drain ended (written at the end, before the
    /// `Unprocessed` lines).
    pub fn held(&mut self, now_us: i64, to: MachineId, clock: u64) -> &Record {
        let queue_len = self.machine.queue_len() as u64;
        self.line(Event::Held { to, clock }, queue_len, now_us)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ClockSnapshot, Driver, DriverParams};
    use clocklab_log::Event;
    use clocklab_model::{ClockKinds, Stamp};

    const T0: i64 = 1_767_225_600_000_000;

    fn driver() -> Driver {
        let params = DriverParams { clocks: ClockKinds::ALL, ..DriverParams::new(2, 3, 6, 10, 9) };
        Driver::new(params, T0).unwrap()
    }

    #[test]
    fn a_crash_loses_the_queue_and_a_fresh_restart_starts_from_zero() {
        let mut two = driver();
        for k in 0..5 {
            two.tick(T0 + k);
        }
        two.deliver(
            T0 + 10,
            1,
            Stamp { lamport: 40, vector: Some(vec![40, 0, 0].into()), hlc: Some(Default::default()) },
        );
        let (line, lost) = two.crashed(T0 + 20);
        assert_eq!((line.event.clone(), line.logical_clock, lost), (Event::Crashed, 5, 1));
        let line = two.restarted(T0 + 30, "127.0.0.1", Some(10_002), None).clone();
        assert_eq!(
            line.event,
            Event::Restarted { host: Some("127.0.0.1".into()), port: Some(10_002), rate: two.rate(), recovered: false }
        );
        assert_eq!(
            (line.logical_clock, line.vector_clock.as_deref(), line.hlc.map(|h| h.l_us)),
            (0, Some(&[0, 0, 0][..]), Some(0))
        );
        assert_eq!(two.machine().queue_len(), 0);
    }

    #[test]
    fn a_recovered_restart_keeps_its_clocks() {
        let mut two = driver();
        for k in 0..5 {
            two.tick(T0 + k);
        }
        let (crashed, _) = two.crashed(T0 + 20);
        // The crash line keeps the clocks as they were: the snapshot a
        // recovering machine reads back from its log.
        let snapshot = ClockSnapshot::of(crashed);
        assert_eq!(snapshot.lamport, 5);
        let line = two.restarted(T0 + 30, "127.0.0.1", None, Some(&snapshot)).clone();
        assert_eq!((line.logical_clock, line.vector_clock, line.hlc), (5, snapshot.vector.clone(), snapshot.hlc));
        assert!(matches!(line.event, Event::Restarted { recovered: true, .. }));
    }

    #[test]
    fn a_clock_step_moves_the_physical_clock_from_its_instant() {
        let mut one = driver();
        let line = one.clock_changed(T0 + 1_000, T0 + 1_000, -500_000, Some(12.5)).clone();
        assert_eq!(line.event, Event::ClockChanged { step_us: -500_000, drift_ppb: Some(12_500) });
        assert_eq!(line.physical_clock_us, Some(T0 + 1_000 - 500_000));
        let line = one.lost(T0 + 2_000, 3, 17).clone();
        assert_eq!(line.event, Event::Lost { to: 3, clock: 17 });
    }
}
