//! Writing records.

use std::io::{self, Write};

use clocklab_model::ClockKinds;
use serde::Serialize;

use crate::record::{Event, LogFormat, Record};
use crate::time_fmt::SecondCache;

/// Formats records as lines of one format, appending each to a buffer the
/// caller owns: a writer that keeps its own buffer of whole lines (the
/// simulator's log files) formats straight into it.
#[derive(Debug, Clone)]
pub struct LineFormatter {
    format: LogFormat,
    seconds: SecondCache,
    /// A second cache for the physical clock, which may run in another second.
    physical_seconds: SecondCache,
}

impl LineFormatter {
    /// A formatter of `format` lines.
    pub fn new(format: LogFormat) -> LineFormatter {
        LineFormatter { format, seconds: SecondCache::default(), physical_seconds: SecondCache::default() }
    }

    /// The format this formatter writes.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Appends `record` to `out` as one whole line, newline included. On an
    /// error `out` is left as it was.
    pub fn push(&mut self, out: &mut Vec<u8>, record: &Record) -> io::Result<()> {
        match self.format {
            LogFormat::Text => {
                self.push_text(out, record);
                Ok(())
            }
            LogFormat::Jsonl => {
                let start = out.len();
                self.push_json(out, record).inspect_err(|_| out.truncate(start))
            }
        }
    }

    fn push_text(&mut self, line: &mut Vec<u8>, record: &Record) {
        let mut num = itoa::Buffer::new();
        line.extend_from_slice(num.format(record.machine).as_bytes());
        line.extend_from_slice(b"> Event: ");
        push_event_text(line, &record.event);
        line.extend_from_slice(b" | System Time: ");
        line.extend_from_slice(self.seconds.system_time(record.time_us));
        line.extend_from_slice(b" | Logical Clock: ");
        line.extend_from_slice(num.format(record.logical_clock).as_bytes());
        line.extend_from_slice(b" | Queue Length: ");
        line.extend_from_slice(num.format(record.queue_length).as_bytes());
        line.extend_from_slice(b" | Timestamp: ");
        self.seconds.push_timestamp_in_second(line, record.time_us);
        if let Some(vector) = &record.vector_clock {
            line.extend_from_slice(b" | Vector Clock: [");
            for (idx, value) in vector.iter().enumerate() {
                if idx > 0 {
                    line.extend_from_slice(b", ");
                }
                line.extend_from_slice(num.format(*value).as_bytes());
            }
            line.push(b']');
        }
        if let Some(hlc) = record.hlc {
            line.extend_from_slice(b" | HLC: ");
            line.extend_from_slice(num.format(hlc.l_us).as_bytes());
            line.push(b':');
            line.extend_from_slice(num.format(hlc.c).as_bytes());
        }
        if let Some(physical_us) = record.physical_clock_us {
            line.extend_from_slice(b" | Physical Clock: ");
            self.physical_seconds.push_timestamp(line, physical_us);
        }
        line.push(b'\n');
    }

    fn push_json(&mut self, line: &mut Vec<u8>, record: &Record) -> io::Result<()> {
        let system_time = String::from_utf8_lossy(self.seconds.system_time(record.time_us)).into_owned();
        let mut timestamp = Vec::with_capacity(27);
        self.seconds.push_timestamp(&mut timestamp, record.time_us);
        let timestamp = String::from_utf8_lossy(&timestamp).into_owned();
        let json = JsonLine::new(record, system_time, timestamp);
        serde_json::to_writer(&mut *line, &json)?;
        line.push(b'\n');
        Ok(())
    }
}

/// Writes records in one format, one `write_all` per line.
///
/// Each line is formatted whole before it is handed to the writer, so with an
/// unbuffered `File` a killed process loses at most the line being written
/// and never leaves half a line. A writer that buffers many lines formats
/// them with a [`LineFormatter`] straight into its buffer instead.
#[derive(Debug)]
pub struct LogWriter<W: Write> {
    out: W,
    formatter: LineFormatter,
    line: Vec<u8>,
}

impl<W: Write> LogWriter<W> {
    /// A writer of `format` lines to `out`.
    pub fn new(out: W, format: LogFormat) -> LogWriter<W> {
        LogWriter { out, formatter: LineFormatter::new(format), line: Vec::with_capacity(256) }
    }

    /// The format this writer writes.
    pub fn format(&self) -> LogFormat {
        self.formatter.format()
    }

    /// Writes one record as one line.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        self.line.clear();
        self.formatter.push(&mut self.line, record)?;
        self.out.write_all(&self.line)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Gives back the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// About how many bytes one line of a run takes in `format`, newline
/// included: a typical tick line (a send to two machines, a seven-digit
/// clock, a queue of 10) of the last machine of `n_machines`, carrying every
/// clock the run keeps. For estimates of a run's size before it starts.
pub fn typical_line_bytes(format: LogFormat, n_machines: u32, clocks: ClockKinds, physical_clock: bool) -> u64 {
    const CLOCK: u64 = 1_234_567;
    const TIME_US: i64 = 1_795_495_393_482_913;
    let n = n_machines.max(2);
    let mut record = Record::new(n, Event::Sent { to: vec![n - 1, n].into() }, CLOCK, 10, TIME_US);
    record.vector_clock = clocks.vector.then(|| vec![CLOCK; n as usize]);
    record.hlc = clocks.hlc.then_some(clocklab_model::HlcStamp { l_us: TIME_US, c: 3 });
    record.physical_clock_us = physical_clock.then_some(TIME_US);
    let mut bytes = Vec::new();
    LogWriter::new(&mut bytes, format).write(&record).expect("a Vec takes every line");
    bytes.len() as u64
}

/// Appends the `Event:` text of `event`.
fn push_event_text(line: &mut Vec<u8>, event: &Event) {
    let mut num = itoa::Buffer::new();
    match event {
        Event::Initialized { host, port, rate } => {
            line.extend_from_slice(b"Initialized on ");
            push_address(line, host.as_deref(), *port);
            line.extend_from_slice(b" with clock rate ");
            line.extend_from_slice(num.format(*rate).as_bytes());
        }
        Event::Connected { peer, host, port } => {
            line.extend_from_slice(b"Connected to machine ");
            line.extend_from_slice(num.format(*peer).as_bytes());
            line.extend_from_slice(b" at ");
            push_address(line, host.as_deref(), *port);
        }
        Event::Internal => line.extend_from_slice(b"Internal event"),
        Event::Sent { to } => {
            line.extend_from_slice(if to.len() == 1 {
                b"Sent message to machine "
            } else {
                b"Sent message to machines "
            });
            for (idx, peer) in to.iter().enumerate() {
                if idx > 0 {
                    line.extend_from_slice(b", ");
                }
                line.extend_from_slice(num.format(*peer).as_bytes());
            }
        }
        Event::Processed { from, clock } => {
            line.extend_from_slice(b"Processed message");
            if let Some(from) = from {
                line.extend_from_slice(b" from machine ");
                line.extend_from_slice(num.format(*from).as_bytes());
            }
            if let Some(clock) = clock {
                line.extend_from_slice(b" with clock ");
                line.extend_from_slice(num.format(*clock).as_bytes());
            }
        }
        Event::Disconnected { peer } => {
            line.extend_from_slice(b"Disconnected from machine ");
            line.extend_from_slice(num.format(*peer).as_bytes());
        }
        Event::Behind { lateness_us, tick } => {
            line.extend_from_slice(b"Behind schedule by ");
            line.extend_from_slice(num.format(*lateness_us).as_bytes());
            line.extend_from_slice(b" us at tick ");
            line.extend_from_slice(num.format(*tick).as_bytes());
        }
        Event::Lost { to, clock } => {
            line.extend_from_slice(b"Lost message to machine ");
            line.extend_from_slice(num.format(*to).as_bytes());
            line.extend_from_slice(b" with clock ");
            line.extend_from_slice(num.format(*clock).as_bytes());
        }
        Event::Held { to, clock } => {
            line.extend_from_slice(b"Held message to machine ");
            line.extend_from_slice(num.format(*to).as_bytes());
            line.extend_from_slice(b" with clock ");
            line.extend_from_slice(num.format(*clock).as_bytes());
        }
        Event::Crashed => line.extend_from_slice(b"Crashed"),
        Event::Restarted { host, port, rate, recovered } => {
            line.extend_from_slice(b"Restarted on ");
            push_address(line, host.as_deref(), *port);
            line.extend_from_slice(b" with clock rate ");
            line.extend_from_slice(num.format(*rate).as_bytes());
            line.extend_from_slice(if *recovered { b" and a recovered clock" } else { b" and a fresh clock" });
        }
        Event::ClockChanged { step_us, drift_ppb } => {
            line.extend_from_slice(b"Physical clock ");
            if *step_us != 0 || drift_ppb.is_none() {
                line.extend_from_slice(b"stepped by ");
                line.extend_from_slice(num.format(*step_us).as_bytes());
                line.extend_from_slice(b" us");
                if drift_ppb.is_some() {
                    line.extend_from_slice(b" and ");
                }
            }
            if let Some(ppb) = drift_ppb {
                line.extend_from_slice(b"drift set to ");
                line.extend_from_slice(ppm_text(*ppb).as_bytes());
                line.extend_from_slice(b" ppm");
            }
        }
        Event::Unprocessed { from, clock } => {
            line.extend_from_slice(b"Unprocessed message from machine ");
            line.extend_from_slice(num.format(*from).as_bytes());
            line.extend_from_slice(b" with clock ");
            line.extend_from_slice(num.format(*clock).as_bytes());
        }
        Event::Stopped => line.extend_from_slice(b"Stopped"),
    }
}

/// Parts per billion as parts per million, with the decimals it needs: `200`, `12.5`, `-0.001`.
pub(crate) fn ppm_text(ppb: i64) -> String {
    let sign = if ppb < 0 { "-" } else { "" };
    let (whole, fraction) = (ppb.unsigned_abs() / 1_000, ppb.unsigned_abs() % 1_000);
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{}", format!("{fraction:03}").trim_end_matches('0'))
    }
}

fn push_address(line: &mut Vec<u8>, host: Option<&str>, port: Option<u16>) {
    if let Some(host) = host {
        line.extend_from_slice(host.as_bytes());
        line.push(b':');
    }
    if let Some(port) = port {
        line.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
    }
}

/// The JSON Lines form of a record: flat, with `snake_case` names; fields an
/// event does not have are left out.
#[derive(Debug, Serialize, serde::Deserialize, Default)]
pub(crate) struct JsonLine {
    pub(crate) machine: u32,
    pub(crate) event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) peer: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) from: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clock: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lateness_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tick: Option<u64>,
    pub(crate) system_time: String,
    pub(crate) logical_clock: u64,
    pub(crate) queue_length: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) time_us: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recovered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) step_us: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) drift_ppb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vector_clock: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hlc: Option<JsonHlc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) physical_clock_us: Option<i64>,
}

/// The JSON Lines form of an HLC value: `{"l_us": <int>, "c": <int>}`.
#[derive(Debug, Serialize, serde::Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonHlc {
    pub(crate) l_us: i64,
    pub(crate) c: u64,
}

impl JsonLine {
    fn new(record: &Record, system_time: String, timestamp: String) -> JsonLine {
        let mut json = JsonLine {
            machine: record.machine,
            event: record.event.kind().to_string(),
            system_time,
            logical_clock: record.logical_clock,
            queue_length: record.queue_length,
            timestamp: Some(timestamp),
            time_us: Some(record.time_us),
            vector_clock: record.vector_clock.clone(),
            hlc: record.hlc.map(|hlc| JsonHlc { l_us: hlc.l_us, c: hlc.c }),
            physical_clock_us: record.physical_clock_us,
            ..JsonLine::default()
        };
        match &record.event {
            Event::Initialized { host, port, rate } => {
                json.host = host.clone();
                json.port = *port;
                json.rate = Some(*rate);
            }
            Event::Connected { peer, host, port } => {
                json.peer = Some(*peer);
                json.host = host.clone();
                json.port = *port;
            }
            Event::Internal | Event::Stopped => {}
            Event::Sent { to } => json.to = Some(to.to_vec()),
            Event::Processed { from, clock } => {
                json.from = *from;
                json.clock = *clock;
            }
            Event::Disconnected { peer } => json.peer = Some(*peer),
            Event::Behind { lateness_us, tick } => {
                json.lateness_us = Some(*lateness_us);
                json.tick = Some(*tick);
            }
            Event::Unprocessed { from, clock } => {
                json.from = Some(*from);
                json.clock = Some(*clock);
            }
            Event::Lost { to, clock } | Event::Held { to, clock } => {
                json.peer = Some(*to);
                json.clock = Some(*clock);
            }
            Event::Crashed => {}
            Event::Restarted { host, port, rate, recovered } => {
                json.host = host.clone();
                json.port = *port;
                json.rate = Some(*rate);
                json.recovered = Some(*recovered);
            }
            Event::ClockChanged { step_us, drift_ppb } => {
                json.step_us = Some(*step_us);
                json.drift_ppb = *drift_ppb;
            }
        }
        json
    }
}
