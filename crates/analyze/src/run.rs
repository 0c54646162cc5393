//! One run's statistics, in one streaming pass over its logs merged in time
//! order.
//!
//! Rules (they are what the report says, and what the tests check):
//! - A tick is an `Internal`, `Sent` or `Processed` line. The reference writes
//!   one `Sent` line per recipient, so two consecutive `Sent` lines with the
//!   same logical clock are one tick (a double send): one tick, one jump, two
//!   messages. clocklab writes one line per tick, where this never happens.
//! - A jump is the increase of the logical clock over the clock before the
//!   tick; before the first tick that is the clock of `Initialized` (0).
//!   Lines that are not ticks are not jumps.
//! - Lines after `Stopped` (the reference writes some) are counted and
//!   reported, never used.
//! - Drift: at every instant the leader is the largest logical clock of the
//!   run; a machine's drift is the leader's clock minus its own. It is a step
//!   function of time: its mean is weighted by how long each state lasted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use clocklab_config::RunManifest;
use clocklab_log::{Event, LogReader, ReadLine, TimePrecision};
use serde::Serialize;

use crate::discover::RunDir;
use crate::stats::{Histogram, Series, Trend};

/// What was wrong with one log file. Nothing here stops the analysis.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileDiagnostics {
    /// The file.
    pub path: PathBuf,
    /// Lines skipped because they could not be read.
    pub skipped_lines: u64,
    /// The first skipped lines: number and reason.
    pub first_skipped: Vec<(u64, String)>,
    /// The last line was cut off (a writer stopped in its middle): not an error.
    pub truncated_last_line: bool,
    /// Lines after `Stopped`, ignored.
    pub lines_after_stop: u64,
    /// The file could not be opened: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_error: Option<String>,
}

impl FileDiagnostics {
    /// Whether there is anything to report.
    pub fn is_clean(&self) -> bool {
        self.skipped_lines == 0 && !self.truncated_last_line && self.lines_after_stop == 0 && self.open_error.is_none()
    }
}

/// Jump statistics of one machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JumpStats {
    /// Mean jump per tick.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// Jump size → how many ticks had it.
    pub distribution: BTreeMap<u64, u64>,
}

/// Queue statistics of one machine, sampled at its ticks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueStats {
    /// Mean queue length at a tick.
    pub mean: f64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// At the last tick.
    pub last: u64,
    /// Least-squares growth, in messages per second.
    pub growth_per_s: f64,
    /// Whether the queue kept up: it did not grow by 10 messages or more over the run.
    pub keeps_up: bool,
}

/// Drift statistics of one machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftStats {
    /// Time-weighted mean of (leader's clock − own clock).
    pub mean: f64,
    /// Largest.
    pub max: u64,
}

/// Tick counts by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventMix {
    /// Ticks that processed a message.
    pub processed: u64,
    /// Ticks that sent (one tick may send to several machines).
    pub sent: u64,
    /// Internal events.
    pub internal: u64,
}

/// One machine of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineSummary {
    /// Its number.
    pub id: u32,
    /// Its drawn clock rate, ticks per second (0 if no log says).
    pub rate: u32,
    /// Ticks done.
    pub ticks: u64,
    /// rate × duration.
    pub expected_ticks: f64,
    /// ticks / expected ticks.
    pub tick_ratio: f64,
    /// Logical clock at the end.
    pub final_clock: u64,
    /// Logical clock increase per second of the run.
    pub clock_rate_per_s: f64,
    /// Jumps.
    pub jump: JumpStats,
    /// Drift behind the leader.
    pub drift: DriftStats,
    /// The queue.
    pub queue: QueueStats,
    /// Ticks by kind.
    pub events: EventMix,
    /// Messages sent (a tick to two machines sends two).
    pub messages_sent: u64,
    /// Messages processed.
    pub messages_processed: u64,
    /// Messages left unprocessed at the end: the `Unprocessed` lines, or for
    /// logs without them (the reference's) the queue length on `Stopped`.
    pub messages_unprocessed: u64,
}

/// Time series of one machine, for the figures (not in `summary.json`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MachineSeries {
    /// Logical clock over time.
    pub clock: Series,
    /// Drift over time.
    pub drift: Series,
    /// Queue length over time.
    pub queue: Series,
}

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run folder's name.
    pub name: String,
    /// The run folder.
    pub path: PathBuf,
    /// Its duration in seconds (manifest, else from the logs).
    pub duration_s: f64,
    /// `us` for microsecond timestamps, `s` for whole seconds (the reference's).
    pub time_precision: &'static str,
    /// The runtime that wrote the logs, from the manifest (`real`, `sim`), or `reference`, or `unknown`.
    pub runtime: String,
    /// The machines, by id.
    pub machines: Vec<MachineSummary>,
    /// Series for the figures, in machine order.
    #[serde(skip)]
    pub series: Vec<MachineSeries>,
    /// Log lines read.
    pub lines: u64,
    /// File problems.
    #[serde(skip)]
    pub diagnostics: Vec<FileDiagnostics>,
}

/// The running state of one machine during the merge.
#[derive(Debug, Default)]
struct MachineAcc {
    id: u32,
    rate: Option<u32>,
    clock: u64,
    stopped: bool,
    stop_queue: Option<u64>,
    last_tick_sent_clock: Option<u64>,
    ticks: u64,
    jumps: Histogram,
    queue: Histogram,
    queue_trend: Trend,
    last_queue: u64,
    mix: EventMix,
    messages_sent: u64,
    unprocessed_lines: u64,
    last_tick_time_us: Option<i64>,
    drift_weighted_us: f64,
    drift_max: u64,
    series: MachineSeries,
}

impl MachineAcc {
    /// Takes one line, which is not after `Stopped`.
    fn on_line(&mut self, line: &ReadLine, origin_us: i64) {
        let record = &line.record;
        let relative_us = record.time_us - origin_us;
        match &record.event {
            Event::Initialized { rate, .. } => {
                self.rate = Some(*rate);
                self.clock = record.logical_clock;
            }
            Event::Internal | Event::Sent { .. } | Event::Processed { .. } => {
                if let Event::Sent { to } = &record.event {
                    self.messages_sent += to.len() as u64;
                    if self.last_tick_sent_clock == Some(record.logical_clock) {
                        // The second line of a double send: the same tick.
                        return;
                    }
                    self.last_tick_sent_clock = Some(record.logical_clock);
                } else {
                    self.last_tick_sent_clock = None;
                }
                match record.event {
                    Event::Internal => self.mix.internal += 1,
                    Event::Sent { .. } => self.mix.sent += 1,
                    _ => self.mix.processed += 1,
                }
                self.ticks += 1;
                self.jumps.add(record.logical_clock.saturating_sub(self.clock));
                self.clock = record.logical_clock;
                self.queue.add(record.queue_length);
                self.queue_trend.add(relative_us as f64 / 1e6, record.queue_length as f64);
                self.last_queue = record.queue_length;
                self.last_tick_time_us = Some(relative_us);
                self.series.clock.push(relative_us, self.clock as f64);
                self.series.queue.push(relative_us, record.queue_length as f64);
            }
            Event::Unprocessed { .. } => self.unprocessed_lines += 1,
            Event::Stopped => {
                self.stopped = true;
                self.stop_queue = Some(record.queue_length);
            }
            Event::Connected { .. } | Event::Disconnected { .. } => {}
        }
    }
}

/// One machine's open log, with the next line read ahead for the merge.
struct Stream {
    reader: LogReader<BufReader<File>>,
    next: Option<ReadLine>,
}

/// Analyses one run folder.
pub fn analyze_run(run: &RunDir) -> RunSummary {
    let manifest = read_manifest(&run.path);
    let mut accs: Vec<MachineAcc> = Vec::new();
    let mut streams: Vec<Option<Stream>> = Vec::new();
    let mut diagnostics: Vec<FileDiagnostics> = Vec::new();
    for (&id, path) in &run.logs {
        let mut diagnostic = FileDiagnostics { path: path.clone(), ..FileDiagnostics::default() };
        let stream = match File::open(path) {
            Ok(file) => {
                let mut reader = LogReader::new(BufReader::with_capacity(1 << 16, file));
                let next = reader.next();
                Some(Stream { reader, next })
            }
            Err(error) => {
                diagnostic.open_error = Some(error.to_string());
                None
            }
        };
        let rate = manifest.as_ref().and_then(|m| m.machines.iter().find(|m| m.id == id)).map(|m| m.rate);
        accs.push(MachineAcc { id, rate, ..MachineAcc::default() });
        streams.push(stream);
        diagnostics.push(diagnostic);
    }

    let origin_us = streams.iter().flatten().filter_map(|s| s.next.as_ref()).map(|l| l.record.time_us).min();
    let origin_us = origin_us.unwrap_or(0);
    let mut precision_seconds = false;
    let mut lines = 0u64;
    // The drift step function: the time the current state began.
    let mut state_since_us = 0i64;
    let mut end_us = 0i64;
    loop {
        // The stream whose next line is earliest; ties go to the lower id, so
        // the merge is deterministic.
        let mut earliest: Option<(usize, i64)> = None;
        for (idx, stream) in streams.iter().enumerate() {
            if let Some(line) = stream.as_ref().and_then(|s| s.next.as_ref())
                && earliest.is_none_or(|(_, t)| line.record.time_us < t)
            {
                earliest = Some((idx, line.record.time_us));
            }
        }
        let Some((idx, time_us)) = earliest else { break };
        let stream = streams[idx].as_mut().expect("the earliest stream is open");
        let line = std::mem::replace(&mut stream.next, stream.reader.next()).expect("the earliest stream has a line");
        lines += 1;
        precision_seconds |= line.precision == TimePrecision::Seconds;
        let relative_us = time_us - origin_us;
        if accs[idx].stopped {
            // Lines after `Stopped` are counted, and take no part in time or drift.
            diagnostics[idx].lines_after_stop += 1;
            continue;
        }
        if relative_us > state_since_us {
            // The state that began at `state_since_us` lasted until now.
            note_drift(&mut accs, state_since_us);
            accumulate_drift(&mut accs, relative_us - state_since_us);
            state_since_us = relative_us;
        }
        accs[idx].on_line(&line, origin_us);
        end_us = end_us.max(relative_us);
    }
    note_drift(&mut accs, state_since_us);

    for (stream, diagnostic) in streams.into_iter().zip(&mut diagnostics) {
        if let Some(stream) = stream {
            let read = stream.reader.into_diagnostics();
            diagnostic.skipped_lines = read.n_skipped;
            diagnostic.first_skipped = read.first_skipped;
            diagnostic.truncated_last_line = read.truncated_last_line;
        }
    }

    let duration_s = manifest.as_ref().map(|m| m.experiment.duration).unwrap_or_else(|| {
        let seconds = end_us as f64 / 1e6;
        if precision_seconds { seconds.round() } else { seconds }
    });
    let runtime = match &manifest {
        Some(manifest) => serde_json::to_value(manifest.runtime)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string()),
        None if precision_seconds => "reference".to_string(),
        None => "unknown".to_string(),
    };
    let span_s = end_us as f64 / 1e6;
    let machines = accs.iter().map(|acc| summarise(acc, duration_s, span_s, end_us)).collect();
    RunSummary {
        name: run.name.clone(),
        path: run.path.clone(),
        duration_s,
        time_precision: if precision_seconds { "s" } else { "us" },
        runtime,
        machines,
        series: accs.into_iter().map(|acc| acc.series).collect(),
        lines,
        diagnostics,
    }
}

/// Records the current drift of every machine (max and series) at `at_us`.
fn note_drift(accs: &mut [MachineAcc], at_us: i64) {
    let leader = accs.iter().map(|acc| acc.clock).max().unwrap_or(0);
    for acc in accs {
        let drift = leader - acc.clock;
        acc.drift_max = acc.drift_max.max(drift);
        acc.series.drift.push(at_us, drift as f64);
    }
}

/// Adds `duration_us` of the current state to every machine's drift integral.
fn accumulate_drift(accs: &mut [MachineAcc], duration_us: i64) {
    let leader = accs.iter().map(|acc| acc.clock).max().unwrap_or(0);
    for acc in accs {
        acc.drift_weighted_us += (leader - acc.clock) as f64 * duration_us as f64;
    }
}

fn summarise(acc: &MachineAcc, duration_s: f64, span_s: f64, end_us: i64) -> MachineSummary {
    let rate = acc.rate.unwrap_or(0);
    let expected_ticks = f64::from(rate) * duration_s;
    let queue_growth = acc.queue_trend.slope();
    MachineSummary {
        id: acc.id,
        rate,
        ticks: acc.ticks,
        expected_ticks,
        tick_ratio: if expected_ticks > 0.0 { acc.ticks as f64 / expected_ticks } else { 0.0 },
        final_clock: acc.clock,
        clock_rate_per_s: if span_s > 0.0 { acc.clock as f64 / span_s } else { 0.0 },
        jump: JumpStats {
            mean: acc.jumps.mean(),
            p50: acc.jumps.percentile(0.5),
            p99: acc.jumps.percentile(0.99),
            max: acc.jumps.max(),
            distribution: acc.jumps.counts().clone(),
        },
        drift: DriftStats {
            mean: if end_us > 0 { acc.drift_weighted_us / end_us as f64 } else { 0.0 },
            max: acc.drift_max,
        },
        queue: QueueStats {
            mean: acc.queue.mean(),
            p99: acc.queue.percentile(0.99),
            max: acc.queue.max(),
            last: acc.last_queue,
            growth_per_s: queue_growth,
            keeps_up: queue_growth * duration_s.max(span_s) < 10.0,
        },
        events: acc.mix.clone(),
        messages_sent: acc.messages_sent,
        messages_processed: acc.mix.processed,
        messages_unprocessed: if acc.unprocessed_lines > 0 {
            acc.unprocessed_lines
        } else {
            acc.stop_queue.unwrap_or(acc.last_queue)
        },
    }
}

fn read_manifest(run_dir: &Path) -> Option<RunManifest> {
    let text = std::fs::read_to_string(clocklab_config::layout::manifest_path(run_dir)).ok()?;
    RunManifest::from_json(&text).ok()
}
