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
//!   function of time: its mean is weighted by how long each state lasted,
//!   from the first tick of the run to its last line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use clocklab_config::RunManifest;
use clocklab_log::{Event, LogReader, ReadLine, TickCounter, TimePrecision};
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
    tick_counter: TickCounter,
    ticks: u64,
    jumps: Histogram,
    queue: Histogram,
    queue_trend: Trend,
    last_queue: u64,
    mix: EventMix,
    messages_sent: u64,
    unprocessed_lines: u64,
    first_tick_us: Option<i64>,
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
                }
                if self.tick_counter.continues_tick(record) {
                    // The second line of a double send: the same tick.
                    return;
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
                self.first_tick_us.get_or_insert(relative_us);
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
    // Before the first tick every clock is 0 and nobody drifts: the drift's
    // mean is taken over the ticking part of the run, from the first tick on.
    let first_tick_us = accs.iter().filter_map(|acc| acc.first_tick_us).min().unwrap_or(0);
    let ticking_us = end_us - first_tick_us;
    let machines = accs.iter().map(|acc| summarise(acc, duration_s, ticking_us)).collect();
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

fn summarise(acc: &MachineAcc, duration_s: f64, ticking_us: i64) -> MachineSummary {
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
        clock_rate_per_s: if duration_s > 0.0 { acc.clock as f64 / duration_s } else { 0.0 },
        jump: JumpStats {
            mean: acc.jumps.mean(),
            p50: acc.jumps.percentile(0.5),
            p99: acc.jumps.percentile(0.99),
            max: acc.jumps.max(),
            distribution: acc.jumps.counts().clone(),
        },
        drift: DriftStats {
            mean: if ticking_us > 0 { acc.drift_weighted_us / ticking_us as f64 } else { 0.0 },
            max: acc.drift_max,
        },
        queue: QueueStats {
            mean: acc.queue.mean(),
            p99: acc.queue.percentile(0.99),
            max: acc.queue.max(),
            last: acc.last_queue,
            growth_per_s: queue_growth,
            keeps_up: queue_growth * duration_s < 10.0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_log::{LogFormat, LogWriter, Record};

    const T0_US: i64 = 1_795_495_393_000_000;

    fn record(machine: u32, event: Event, logical_clock: u64, queue_length: u64, at_ms: i64) -> Record {
        Record::new(machine, event, logical_clock, queue_length, T0_US + at_ms * 1_000)
    }

    fn run_dir(dir: &Path, files: &[(u32, &str)]) -> RunDir {
        RunDir {
            name: "run_1".into(),
            path: dir.to_path_buf(),
            logs: files.iter().map(|&(id, name)| (id, dir.join(name))).collect(),
        }
    }

    /// Two machines whose statistics are worked out by hand below.
    fn hand_logs() -> [Vec<Record>; 2] {
        let init = |rate| Event::Initialized { host: Some("127.0.0.1".into()), port: Some(5000), rate };
        [
            vec![
                record(1, init(2), 0, 0, 0),
                record(1, Event::Internal, 1, 0, 500),
                record(1, Event::Sent { to: vec![2] }, 2, 0, 1_000),
                record(1, Event::Internal, 3, 0, 1_500),
                record(1, Event::Internal, 4, 0, 2_000),
                record(1, Event::Stopped, 4, 0, 2_000),
            ],
            vec![
                record(2, init(1), 0, 0, 0),
                record(2, Event::Processed { from: Some(1), clock: Some(2) }, 3, 1, 1_250),
                record(2, Event::Internal, 4, 2, 2_000),
                record(2, Event::Unprocessed { from: 1, clock: 9 }, 4, 0, 2_000),
                record(2, Event::Stopped, 4, 0, 2_000),
            ],
        ]
    }

    fn write_logs(dir: &Path, format: LogFormat) -> RunDir {
        let mut files = Vec::new();
        for (idx, records) in hand_logs().iter().enumerate() {
            let id = idx as u32 + 1;
            let name = clocklab_log::file_name(id, format);
            let mut writer = LogWriter::new(File::create(dir.join(&name)).unwrap(), format);
            for record in records {
                writer.write(record).unwrap();
            }
            files.push((id, name));
        }
        let files: Vec<(u32, &str)> = files.iter().map(|(id, name)| (*id, name.as_str())).collect();
        run_dir(dir, &files)
    }

    /// Clocks (m1, m2) over time: [0, 0.5) (0, 0); [0.5, 1) (1, 0);
    /// [1, 1.25) (2, 0); [1.25, 1.5) (2, 3); [1.5, 2) (3, 3); at 2 (4, 4).
    /// Ticking starts at 0.5 s, so the drift's mean is over 1.5 s.
    /// Machine 1 is behind by 1 for 0.25 s: mean 0.25 / 1.5, max 1.
    /// Machine 2 is behind by 1 for 0.5 s and by 2 for 0.25 s: mean 1 / 1.5, max 2.
    fn check_hand_statistics(summary: &RunSummary) {
        let [m1, m2] = [&summary.machines[0], &summary.machines[1]];
        assert_eq!(summary.duration_s, 2.0);
        assert_eq!(summary.time_precision, "us");

        assert_eq!((m1.rate, m1.ticks, m1.expected_ticks, m1.tick_ratio), (2, 4, 4.0, 1.0));
        assert_eq!((m1.jump.mean, m1.jump.p50, m1.jump.p99, m1.jump.max), (1.0, 1, 1, 1));
        assert_eq!(m1.jump.distribution, BTreeMap::from([(1, 4)]));
        assert!((m1.drift.mean - 0.25 / 1.5).abs() < 1e-12, "{}", m1.drift.mean);
        assert_eq!(m1.drift.max, 1);
        assert_eq!(m1.clock_rate_per_s, 2.0);
        assert_eq!(m1.events, EventMix { processed: 0, sent: 1, internal: 3 });
        assert_eq!((m1.messages_sent, m1.messages_unprocessed), (1, 0));

        assert_eq!((m2.rate, m2.ticks, m2.expected_ticks), (1, 2, 2.0));
        // Jumps 3 (from 0 to 3) and 1: mean 2, median 1 (nearest rank 1 of 2), p99 3.
        assert_eq!((m2.jump.mean, m2.jump.p50, m2.jump.p99, m2.jump.max), (2.0, 1, 3, 3));
        assert!((m2.drift.mean - 1.0 / 1.5).abs() < 1e-12, "{}", m2.drift.mean);
        assert_eq!(m2.drift.max, 2);
        // Queue 1 at 1.25 s, 2 at 2 s: mean 1.5, growth 1 / 0.75 s.
        assert_eq!((m2.queue.mean, m2.queue.max, m2.queue.last), (1.5, 2, 2));
        assert!((m2.queue.growth_per_s - 4.0 / 3.0).abs() < 1e-9, "{}", m2.queue.growth_per_s);
        assert_eq!(m2.events, EventMix { processed: 1, sent: 0, internal: 1 });
        assert_eq!((m2.messages_processed, m2.messages_unprocessed), (1, 1));

        // The drift series holds machine 2's step to 2 at 1 s.
        let drift_2 = summary.series[1].drift.points();
        assert!(drift_2.iter().any(|&(t, d)| (t - 1.0).abs() < 1e-9 && d == 2.0), "{drift_2:?}");
        assert!(summary.diagnostics.iter().all(FileDiagnostics::is_clean));
    }

    #[test]
    fn hand_computed_statistics_from_text_logs() {
        let dir = tempfile::tempdir().unwrap();
        let summary = analyze_run(&write_logs(dir.path(), LogFormat::Text));
        check_hand_statistics(&summary);
        assert_eq!(summary.lines, 11);
    }

    #[test]
    fn hand_computed_statistics_from_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let summary = analyze_run(&write_logs(dir.path(), LogFormat::Jsonl));
        check_hand_statistics(&summary);
    }

    /// The reference's format: whole seconds, one `Sent` line per recipient,
    /// `Processed message` without sender, a tick after `Stopped`.
    #[test]
    fn hand_computed_statistics_from_reference_logs() {
        let dir = tempfile::tempdir().unwrap();
        let line = |id: u32, event: &str, second: u32, clock: u64, queue: u64| {
            format!(
                "{id}> Event: {event} | System Time: 2025-02-28 19:03:{second} | Logical Clock: {clock} | Queue Length: {queue}\n"
            )
        };
        let process_1 = [
            line(1, "Initialized on 12345 with clock rate 2", 43, 0, 0),
            line(1, "Connected to machine 2 on port 54321", 43, 0, 0),
            line(1, "Sent message to machine 2", 43, 1, 0),
            line(1, "Sent message to machine 3", 43, 1, 0),
            line(1, "Sent message to machine 2", 44, 2, 0),
            line(1, "Internal event", 44, 3, 0),
            line(1, "Processed message", 45, 6, 1),
            line(1, "Stopped", 45, 6, 0),
            line(1, "Internal event", 45, 7, 0),
        ]
        .concat();
        let process_2 = [
            line(2, "Initialized on 54321 with clock rate 1", 43, 0, 0),
            line(2, "Processed message", 44, 2, 1),
            line(2, "Processed message", 45, 5, 2),
            line(2, "Stopped", 45, 5, 2),
        ]
        .concat();
        std::fs::write(dir.path().join("process_1.log"), process_1).unwrap();
        std::fs::write(dir.path().join("process_2.log"), process_2).unwrap();
        let summary = analyze_run(&run_dir(dir.path(), &[(1, "process_1.log"), (2, "process_2.log")]));
        let [m1, m2] = [&summary.machines[0], &summary.machines[1]];
        assert_eq!((summary.time_precision, summary.runtime.as_str(), summary.duration_s), ("s", "reference", 2.0));

        // The double send at 19:03:43 is one tick: 4 ticks, jumps 1, 1, 1, 3; three messages.
        assert_eq!((m1.ticks, m1.expected_ticks), (4, 4.0));
        assert_eq!(m1.jump.distribution, BTreeMap::from([(1, 3), (3, 1)]));
        assert_eq!((m1.jump.mean, m1.jump.max), (1.5, 3));
        assert_eq!(m1.events, EventMix { processed: 1, sent: 2, internal: 1 });
        assert_eq!(m1.messages_sent, 3);
        assert_eq!(m1.final_clock, 6, "the tick after Stopped is not used");

        // Jumps 2 and 3; the queue on `Stopped` is what was left.
        assert_eq!((m2.ticks, m2.jump.mean, m2.jump.max), (2, 2.5, 3));
        assert_eq!(m2.messages_unprocessed, 2);

        // Whole seconds: (1, 0) during [0, 1), (3, 2) during [1, 2), (6, 5) at 2.
        assert_eq!((m1.drift.mean, m1.drift.max), (0.0, 0));
        assert_eq!((m2.drift.mean, m2.drift.max), (1.0, 1));

        assert_eq!(summary.diagnostics[0].lines_after_stop, 1);
        assert_eq!(summary.diagnostics[1].lines_after_stop, 0);
    }

    #[test]
    fn damaged_lines_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let run = write_logs(dir.path(), LogFormat::Text);
        let path = &run.logs[&2];
        let mut text = std::fs::read_to_string(path).unwrap();
        text.insert_str(text.find('\n').unwrap() + 1, "2> Event: Teleported | nonsense\n");
        text.push_str("2> Event: Inter");
        std::fs::write(path, text).unwrap();
        let summary = analyze_run(&run);
        check_hand_statistics(&RunSummary { diagnostics: Vec::new(), ..summary.clone() });
        let diagnostics = &summary.diagnostics[1];
        assert_eq!((diagnostics.skipped_lines, diagnostics.truncated_last_line), (1, true));
        assert_eq!(diagnostics.first_skipped[0].0, 2);
    }

    #[test]
    fn unreadable_file_is_reported_and_the_others_analysed() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = write_logs(dir.path(), LogFormat::Text);
        run.logs.insert(3, dir.path().join("missing.log"));
        let summary = analyze_run(&run);
        assert_eq!(summary.machines[0].ticks, 4);
        assert!(summary.diagnostics[2].open_error.is_some());
        assert_eq!(summary.machines[2].ticks, 0);
    }
}
