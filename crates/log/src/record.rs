//! The records a log is made of.

use clocklab_model::{HlcStamp, MachineId};

/// One log line.
///
/// Records are made by the driver step (`clocklab-driver`) in both runtimes
/// and read back by [`crate::LogReader`]; the fields after `time_us` are the
/// specification's "clocks beyond Lamport", present when the run keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The machine that wrote it.
    pub machine: MachineId,
    /// What happened.
    pub event: Event,
    /// The logical clock after the event's update.
    pub logical_clock: u64,
    /// The queue length (for a processed message, before it was taken off).
    pub queue_length: u64,
    /// When, in microseconds since the Unix epoch, UTC. Logs of the reference
    /// implementation carry whole seconds only.
    pub time_us: i64,
    /// The vector clock after the event, if the run keeps one.
    pub vector_clock: Option<Vec<u64>>,
    /// The hybrid logical clock after the event, if the run keeps one.
    pub hlc: Option<HlcStamp>,
    /// The machine's own physical clock at the line, in microseconds since
    /// the Unix epoch: written when the run keeps an HLC or the machine's
    /// clock is offset or drifts.
    pub physical_clock_us: Option<i64>,
}

impl Record {
    /// A line with the five fields of the classic exercise and no other clock.
    pub fn new(machine: MachineId, event: Event, logical_clock: u64, queue_length: u64, time_us: i64) -> Record {
        Record {
            machine,
            event,
            logical_clock,
            queue_length,
            time_us,
            vector_clock: None,
            hlc: None,
            physical_clock_us: None,
        }
    }
}

/// The recipients of a send, in increasing order: up to two are kept in the
/// record itself (every send of a three-machine run), more on the heap.
pub type Recipients = smallvec::SmallVec<[MachineId; 2]>;

/// What a line says happened.
///
/// Optional fields are those the reference implementation's logs leave out;
/// clocklab always writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The first line: where the machine listens and the rate it drew.
    Initialized {
        /// The listening host (absent in the reference's logs).
        host: Option<String>,
        /// The listening port.
        port: Option<u16>,
        /// The drawn clock rate, in ticks per second.
        rate: u32,
    },
    /// A connection to a peer is up; once per peer, before the first tick.
    Connected {
        /// The peer.
        peer: MachineId,
        /// The peer's host (absent in the reference's logs).
        host: Option<String>,
        /// The peer's port.
        port: Option<u16>,
    },
    /// A tick with an internal event.
    Internal,
    /// A tick that sent the clock to these machines, in increasing order.
    Sent {
        /// The recipients.
        to: Recipients,
    },
    /// A tick that took a message off the queue.
    Processed {
        /// Its sender (absent in the reference's logs).
        from: Option<MachineId>,
        /// The clock it carried (absent in the reference's logs).
        clock: Option<u64>,
    },
    /// A peer went away before the end.
    Disconnected {
        /// The peer.
        peer: MachineId,
    },
    /// The machine fell behind its schedule by more than one tick period: the
    /// tick `tick` (0-based) ran `lateness_us` after its due time. Written
    /// once as a machine falls behind (not a tick); its late ticks still all
    /// run, back to back.
    Behind {
        /// How late the tick ran, in microseconds.
        lateness_us: u64,
        /// The tick's index in the schedule, from 0.
        tick: u64,
    },
    /// A message the fault plan lost at the sender (a `loss` fault, or a
    /// partition in `drop` mode), written right after its `Sent` line.
    Lost {
        /// Its receiver.
        to: MachineId,
        /// The clock it carried.
        clock: u64,
    },
    /// At the end: a message the fault plan still held at the sender when the
    /// run's drain ended (a latency or a partition released it later), so it
    /// was never sent; written before the `Unprocessed` lines.
    Held {
        /// Its receiver.
        to: MachineId,
        /// The clock it carried.
        clock: u64,
    },
    /// The machine crashed: its queue, and what was on the wire to it, are
    /// gone with it. The incarnation's last line.
    Crashed,
    /// A new incarnation of the machine after a crash: the first line after
    /// `Crashed`, then `Connected` lines as after `Initialized`.
    Restarted {
        /// The listening host.
        host: Option<String>,
        /// The listening port.
        port: Option<u16>,
        /// The clock rate (the same as the first incarnation's).
        rate: u32,
        /// Whether its clocks came back as they were (else they start from 0).
        recovered: bool,
    },
    /// The machine's physical clock was stepped, or took a new drift (a clock fault).
    ClockChanged {
        /// The step, in microseconds (0 for none).
        step_us: i64,
        /// The new drift, in parts per billion, if it changed.
        drift_ppb: Option<i64>,
    },
    /// At the end: a message still in the queue.
    Unprocessed {
        /// Its sender.
        from: MachineId,
        /// The clock it carried.
        clock: u64,
    },
    /// The last line.
    Stopped,
}

impl Event {
    /// Whether the line is a tick (one instruction of the model).
    pub fn is_tick(&self) -> bool {
        matches!(self, Event::Internal | Event::Sent { .. } | Event::Processed { .. })
    }

    /// The event's kind as a `snake_case` word (the JSON Lines `event` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Initialized { .. } => "initialized",
            Event::Connected { .. } => "connected",
            Event::Internal => "internal",
            Event::Sent { .. } => "sent",
            Event::Processed { .. } => "processed",
            Event::Disconnected { .. } => "disconnected",
            Event::Behind { .. } => "behind",
            Event::Lost { .. } => "lost",
            Event::Held { .. } => "held",
            Event::Crashed => "crashed",
            Event::Restarted { .. } => "restarted",
            Event::ClockChanged { .. } => "clock_changed",
            Event::Unprocessed { .. } => "unprocessed",
            Event::Stopped => "stopped",
        }
    }
}

/// Tells the ticks of one machine's log apart from the second lines of the
/// reference implementation's double sends.
///
/// The reference logs a tick that sends to two machines as two `Sent` lines
/// with the same clock; clocklab logs it as one line (`Sent message to
/// machines 2, 3`), and its clock rises on every tick, so two `Sent` lines
/// in a row with the same clock are always one tick. Feed it a machine's
/// lines in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickCounter {
    /// The clock of the last tick, if it was a send.
    last_send_clock: Option<u64>,
}

impl TickCounter {
    /// Whether `record` continues the tick before it (the second line of a
    /// double send); `false` for any other line, tick or not.
    pub fn continues_tick(&mut self, record: &Record) -> bool {
        match record.event {
            Event::Sent { .. } if self.last_send_clock == Some(record.logical_clock) => true,
            Event::Sent { .. } => {
                self.last_send_clock = Some(record.logical_clock);
                false
            }
            Event::Internal | Event::Processed { .. } => {
                self.last_send_clock = None;
                false
            }
            _ => false,
        }
    }
}

/// The two forms of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// The line format of the specification (`machine_<id>.log`).
    Text,
    /// One JSON object per line (`machine_<id>.jsonl`).
    Jsonl,
}

impl LogFormat {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            LogFormat::Text => "log",
            LogFormat::Jsonl => "jsonl",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_double_send_on_two_lines_is_one_tick() {
        let sent = |to, clock| Record::new(1, Event::Sent { to: vec![to].into() }, clock, 0, 0);
        let mut counter = TickCounter::default();
        let lines = [
            sent(2, 1),
            sent(3, 1),
            sent(2, 2),
            Record::new(1, Event::Internal, 3, 0, 0),
            sent(3, 4),
            Record::new(1, Event::Stopped, 4, 0, 0),
            sent(2, 4),
        ];
        let continued: Vec<bool> = lines.iter().map(|line| counter.continues_tick(line)).collect();
        assert_eq!(continued, [false, true, false, false, false, false, true]);
    }
}
