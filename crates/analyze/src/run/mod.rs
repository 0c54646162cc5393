//! One run's statistics, in one streaming pass over its logs merged in time
//! order ([`clocklab_log::RunEvents`], each receive paired with its send).
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
//! - Lag behind the leader: see [`lag`]. A machine whose log breaks
//!   Lamport's rule, or has no `Stopped`, is flagged, and stops counting for
//!   the leader from that line on.
//! - Utilisation ρ = messages received / (rate × duration): above 1 a
//!   machine receives more than it can process, whatever the run's length.
//! - Concurrency: over a seeded sample of the run's ticks, the share of pairs
//!   on different machines that are concurrent, and of those that Lamport's
//!   clock orders anyway ([`clocklab_causal::Concurrency`]); from the logged
//!   vector clocks, or replayed from the pairing when the run kept none.

mod info;
pub mod lag;
pub mod machine;
mod prefetch;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clocklab_causal::{Concurrency, PairCounts, VectorReplay};
use clocklab_log::{Pairing, RunEvents, TimePrecision};
use serde::Serialize;

pub use info::RunInfo;
pub use machine::{EventMix, HlcStats, JumpStats, LagStats, LoadStats, MachineSeries, MachineSummary, QueueStats};

use crate::AnalyzeError;
use crate::diagrams::{DiagramLink, PageTarget, RunPage};
use crate::discover::RunDir;
use machine::MachineAcc;

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
    /// What else is wrong with the file (it ignored, incomplete, a machine
    /// outside the run), one sentence each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl FileDiagnostics {
    /// Whether there is anything to report.
    pub fn is_clean(&self) -> bool {
        self.skipped_lines == 0
            && !self.truncated_last_line
            && self.lines_after_stop == 0
            && self.open_error.is_none()
            && self.problems.is_empty()
    }
}

/// How much of the run is concurrent (see [`clocklab_causal::concurrency`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CausalitySummary {
    /// Where the vector clocks came from: `logged`, or `replayed` from the pairing.
    pub vectors: &'static str,
    /// Ticks in the run.
    pub ticks: u64,
    /// Ticks sampled (all of them for runs of up to a few thousand ticks).
    pub sampled: u64,
    /// Pairs of sampled ticks on different machines.
    pub pairs: u64,
    /// Of those, concurrent.
    pub concurrent: u64,
    /// Of the concurrent ones, those Lamport's clock orders anyway (their clocks differ).
    pub falsely_ordered: u64,
    /// `concurrent / pairs`.
    pub concurrent_share: f64,
    /// `falsely_ordered / pairs`: Lamport's false ordering.
    pub false_ordering_share: f64,
    /// `falsely_ordered / concurrent`.
    pub false_ordering_of_concurrent: f64,
}

impl CausalitySummary {
    fn new(vectors: &'static str, counts: PairCounts) -> CausalitySummary {
        CausalitySummary {
            vectors,
            ticks: counts.ticks,
            sampled: counts.sampled,
            pairs: counts.pairs,
            concurrent: counts.concurrent,
            falsely_ordered: counts.falsely_ordered,
            concurrent_share: counts.concurrent_share(),
            false_ordering_share: counts.false_ordering_share(),
            false_ordering_of_concurrent: counts.false_ordering_of_concurrent(),
        }
    }
}

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run folder's name.
    pub name: String,
    /// The run folder.
    pub path: PathBuf,
    /// Its duration in seconds: the manifest's, else from the logs.
    pub duration_s: f64,
    /// `us` for microsecond timestamps, `s` for whole seconds (the reference's).
    pub time_precision: &'static str,
    /// What the run was and how it went.
    pub info: RunInfo,
    /// The machines, by id.
    pub machines: Vec<MachineSummary>,
    /// How much of the run is concurrent; absent when the logs cannot say
    /// (receives that name no sender, as in the reference's logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causality: Option<CausalitySummary>,
    /// Why there is no causality summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causality_missing: Option<String>,
    /// Series for the figures, in machine order.
    #[serde(skip)]
    pub series: Vec<MachineSeries>,
    /// Log lines read.
    pub lines: u64,
    /// What is wrong with the run as a whole (its manifest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// What each fault of its plan did (see [`crate::faults`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::faults::FaultEffect>,
    /// File problems.
    #[serde(skip)]
    pub diagnostics: Vec<FileDiagnostics>,
    /// Machines the manifest lists whose log is there but could not be
    /// counted (no line of it reads, or none gives the machine's rate):
    /// their id and why.
    #[serde(skip)]
    pub uncounted: Vec<(u32, String)>,
}

impl RunSummary {
    /// Whether the run enters the aggregates: it finished as planned, at
    /// least one machine's log could be read, every machine's log counts
    /// and none is damaged, and none is missing or could not be opened.
    pub fn is_sound(&self) -> bool {
        self.unsound_reasons().is_empty()
    }

    /// Why the run does not enter the aggregates, one sentence per reason
    /// (none for a sound run): its status, if it did not finish as planned
    /// (what that did to its logs follows from it), else each machine's
    /// problems, each log that does not count, each log that is missing or
    /// could not be opened.
    pub fn unsound_reasons(&self) -> Vec<String> {
        if !self.info.is_sound() {
            return vec![match &self.info.cause {
                Some(cause) => format!("{}: {cause}", self.info.status),
                None => self.info.status.clone(),
            }];
        }
        let mut reasons = Vec::new();
        if self.machines.is_empty() {
            reasons.push("no machine's log could be read".to_string());
        }
        for machine in &self.machines {
            reasons.extend(machine.problems.iter().map(|problem| format!("machine {}: {problem}", machine.id)));
        }
        reasons.extend(self.uncounted.iter().map(|(id, why)| format!("machine {id}: {why}")));
        for diagnostic in &self.diagnostics {
            if let Some(error) = &diagnostic.open_error {
                let file = diagnostic.path.file_name().unwrap_or(diagnostic.path.as_os_str()).to_string_lossy();
                reasons.push(format!("{file}: {error}"));
            }
        }
        reasons
    }
}

/// Every machine's log.
type Reader = prefetch::RunLog;

/// Analyses one run folder.
pub fn analyze_run(run: &RunDir) -> RunSummary {
    analyze_run_with_page(run, &AtomicBool::new(true), None).0
}

/// [`analyze_run`] with every log read in the calling thread: for a run
/// analysed while other runs keep the other cores busy, where threads of
/// its own would only add the cost of handing lines over.
pub fn analyze_run_in_one_thread(run: &RunDir) -> RunSummary {
    analyze_run_with_page(run, &AtomicBool::new(false), None).0
}

/// How many lines the merge reads between two looks at whether a core is
/// spare.
const SPARE_CORE_EVERY: u64 = 4096;

/// [`analyze_run`], with each log read ahead on a thread of its own once
/// `spare_core` is set (looked at every [`SPARE_CORE_EVERY`] lines, from
/// the first), if the run has at most [`prefetch::MAX_PREFETCHED_LOGS`]
/// logs; and with its diagram page written to `page`, if given, as its
/// events are read (its link, or what stopped it being written).
pub(crate) fn analyze_run_with_page(
    run: &RunDir,
    spare_core: &AtomicBool,
    page: Option<PageTarget>,
) -> (RunSummary, Option<Result<DiagramLink, AnalyzeError>>) {
    let mut may_read_ahead = run.logs.len() <= prefetch::MAX_PREFETCHED_LOGS;
    let mut run_problems = Vec::new();
    // A damaged manifest is one of the run's problems (naming the file and
    // the key); the run is read from its logs alone.
    let manifest = info::read_manifest(&run.path).unwrap_or_else(|problems| {
        run_problems.extend(problems);
        None
    });
    let manifest_damaged = !run_problems.is_empty();
    let mut diagnostics: Vec<FileDiagnostics> = Vec::new();
    let mut readers: Vec<(u32, Reader)> = Vec::new();
    for (&id, path) in &run.logs {
        let mut diagnostic = FileDiagnostics { path: path.clone(), ..FileDiagnostics::default() };
        let listed = manifest.as_ref().is_none_or(|m| m.machines.iter().any(|machine| machine.id == id));
        if !listed {
            diagnostic
                .problems
                .push(format!("machine {id} is not one of the run's machines in manifest.json: ignored"));
        } else {
            match File::open(path) {
                Ok(file) => readers.push((id, Reader::open(file))),
                Err(error) => diagnostic.open_error = Some(error.to_string()),
            }
        }
        diagnostics.push(diagnostic);
    }
    let diagnostic_of: BTreeMap<u32, usize> = run.logs.keys().enumerate().map(|(idx, &id)| (id, idx)).collect();
    // A machine the manifest lists whose log is missing, or is not a file,
    // is said: the run's statistics lack it, so the run is not sound.
    for machine in manifest.iter().flat_map(|m| &m.machines).filter(|m| !run.logs.contains_key(&m.id)) {
        let name = machine.logs.first().cloned().unwrap_or_else(|| format!("machine_{}.log", machine.id));
        let path = run.path.join(&name);
        let what = match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => "a folder, not a log",
            Ok(_) => "not a log file",
            Err(_) => "missing",
        };
        diagnostics.push(FileDiagnostics {
            path,
            open_error: Some(format!("{what} (manifest.json lists machine {})", machine.id)),
            ..FileDiagnostics::default()
        });
    }
    for (path, why) in &run.ignored {
        diagnostics.push(FileDiagnostics {
            path: path.clone(),
            problems: vec![format!("ignored: {why}")],
            ..FileDiagnostics::default()
        });
    }
    let planned_rate =
        |id: u32| manifest.as_ref().and_then(|m| m.machines.iter().find(|machine| machine.id == id)).map(|m| m.rate);
    let mut accs: Vec<MachineAcc> = readers.iter().map(|(id, _)| MachineAcc::new(*id, planned_rate(*id))).collect();
    // In id order, as the run's logs are listed: a machine's accumulator is
    // found by a binary search.
    let machine_ids: Vec<u32> = readers.iter().map(|(id, _)| *id).collect();
    debug_assert!(machine_ids.is_sorted());

    // A run on several hosts: each line's time in its host's clock, taken
    // to the orchestrator's by the host's measured offset.
    let offsets: BTreeMap<u32, i64> = manifest
        .as_ref()
        .map(|m| m.host_clock_offsets().into_iter().map(|(id, (offset, _))| (id, offset)).collect())
        .unwrap_or_default();
    // The page borrows the run folder it reads, and is written as the
    // analysis reads the same events.
    let read: BTreeMap<u32, &std::path::Path> = machine_ids.iter().map(|id| (*id, run.logs[id].as_path())).collect();
    let run_page = page.map(|target| RunPage::new(target, &run.name, &run.path, &read));
    let mut page_file = run_page.as_ref().and_then(|page| page.start(&machine_ids));
    let mut events = RunEvents::new(readers).with_clock_offsets(&offsets);
    let logged_vectors = manifest.as_ref().is_some_and(|m| m.experiment.clocks.vector);
    let mut replay = VectorReplay::new(machine_ids.iter().copied());
    let label = clocklab_model::seed::label_of(&run.path.to_string_lossy());
    // Replayed vectors follow the vector-clock rule by construction; logged
    // ones are taken as they are.
    let mut concurrency = if logged_vectors {
        Concurrency::new(machine_ids.len(), label)
    } else {
        Concurrency::replayed(replay.machines(), label)
    };
    let mut causality_missing: Option<String> = None;
    let mut origin_us: Option<i64> = None;
    let mut precision_seconds = false;
    let mut lines = 0u64;
    // The lag step function: the time the current state began.
    let mut state_since_us = 0i64;
    let mut end_us = 0i64;
    loop {
        if may_read_ahead && lines % SPARE_CORE_EVERY == 0 && spare_core.load(Ordering::Relaxed) {
            events.logs_mut().for_each(Reader::read_ahead);
            may_read_ahead = false;
        }
        // Bound by reference: moving each event out of its `Option` copied it.
        let next = events.next();
        let Some(event) = &next else { break };
        crate::diagrams::push(&mut page_file, event);
        lines += 1;
        let idx = machine_ids.binary_search(&event.id.machine).expect("events come from the run's logs");
        precision_seconds |= event.precision == TimePrecision::Seconds;
        let origin = *origin_us.get_or_insert(event.record.time_us);
        let relative_us = (event.record.time_us - origin).max(state_since_us);
        if accs[idx].stopped {
            // Lines after `Stopped` are counted, and take no part in time or lag.
            diagnostics[diagnostic_of[&event.id.machine]].lines_after_stop += 1;
            continue;
        }
        if relative_us > state_since_us {
            // The state that began at `state_since_us` lasted until now.
            let leader = lag::close_state(&mut accs, state_since_us, relative_us - state_since_us);
            state_since_us = relative_us;
            // Checked in debug builds (every test) only: it would double the
            // leader's cost on the analysis' hottest path.
            debug_assert_eq!(
                lag::lag_behind(leader, &accs[idx]),
                lag::lag_of(&accs, idx, relative_us),
                "the closed state's leader is the leader now"
            );
        }
        accs[idx].on_event(event, relative_us);
        end_us = end_us.max(relative_us);
        // Causality: a tick's vector clock, logged or replayed.
        if causality_missing.is_none() {
            if !logged_vectors && matches!(event.pairing, Pairing::Unnamed | Pairing::Unmatched) {
                causality_missing = Some(match event.pairing {
                    Pairing::Unnamed => "the logs' receives do not name their senders".to_string(),
                    _ => format!("a receive of machine {} pairs with no send in the logs", event.id.machine),
                });
            }
            let replayed = replay.step(event);
            if event.record.event.is_tick() {
                let vector = if logged_vectors { event.record.vector_clock.as_deref() } else { Some(replayed) };
                if let Some(vector) = vector {
                    concurrency.add(event.id.machine, event.record.logical_clock, vector);
                }
            }
        }
        if events.finished(event.id.machine) {
            accs[idx].finished = true;
        }
    }
    lag::note(&mut accs, state_since_us);

    let mut skipped = BTreeMap::new();
    for (id, reader) in events.into_logs() {
        let read = reader.into_diagnostics();
        skipped.insert(id, read.clone());
        let diagnostic = &mut diagnostics[diagnostic_of[&id]];
        diagnostic.skipped_lines = read.n_skipped;
        diagnostic.first_skipped = read.first_skipped;
        diagnostic.truncated_last_line = read.truncated_last_line;
    }
    // A file with no line that reads is no machine (a stray or empty file).
    // When the manifest lists the machine (every machine read is then one
    // it lists), the run lacks one of its machines: it is not sound.
    let mut kept = Vec::new();
    let mut uncounted = Vec::new();
    for acc in accs {
        if acc.records == 0 || acc.rate.is_none() {
            let (of_file, of_machine) = if acc.records == 0 {
                ("no line of it could be read", "no line of its log could be read")
            } else {
                ("no Initialized line gives its rate", "no Initialized line of its log gives its rate")
            };
            diagnostics[diagnostic_of[&acc.id]].problems.push(format!("{of_file}: not counted as a machine"));
            if manifest.is_some() {
                uncounted.push((acc.id, of_machine.to_string()));
            }
            continue;
        }
        kept.push(acc);
    }

    let duration_s = match &manifest {
        Some(manifest) => manifest.experiment.duration,
        None => {
            let seconds = end_us as f64 / 1e6;
            if precision_seconds { seconds.round() } else { seconds }
        }
    };
    let fastest = kept.iter().filter_map(|acc| acc.rate).max().unwrap_or(1);
    // clocklab's schedule makes exactly ceil(rate x duration) ticks; the
    // reference's relative sleeps aim at rate x duration.
    let schedule_ticks = |rate: u32| {
        if precision_seconds {
            f64::from(rate) * duration_s
        } else {
            clocklab_model::schedule::n_ticks(rate, clocklab_model::schedule::duration_us(duration_s)) as f64
        }
    };
    let mut machines: Vec<MachineSummary> =
        kept.iter().map(|acc| acc.summarise(duration_s, fastest, schedule_ticks)).collect();
    if let Some(model) = crate::predict::fluid_of_run(&machines, manifest.as_ref().map(|m| &m.experiment)) {
        for (machine, predicted) in machines.iter_mut().zip(model) {
            machine.fluid = Some(predicted);
        }
    }
    let causality = causality_missing
        .is_none()
        .then(|| CausalitySummary::new(if logged_vectors { "logged" } else { "replayed" }, concurrency.counts()));
    let link = run_page.as_ref().map(|page| page.finish(page_file.take(), &skipped));
    let summary = RunSummary {
        name: run.name.clone(),
        path: run.path.clone(),
        duration_s,
        time_precision: if precision_seconds { "s" } else { "us" },
        info: if manifest_damaged {
            info::damaged_manifest(precision_seconds, origin_us)
        } else {
            info::run_info(manifest.as_ref(), precision_seconds, origin_us)
        },
        machines,
        causality,
        causality_missing,
        series: kept.into_iter().map(|acc| acc.series).collect(),
        lines,
        problems: run_problems,
        faults: Vec::new(),
        diagnostics,
        uncounted,
    };
    (summary, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_log::{Event, LogFormat, LogWriter, Record};
    use std::path::Path;

    const T0_US: i64 = 1_795_495_393_000_000;

    fn record(machine: u32, event: Event, logical_clock: u64, queue_length: u64, at_ms: i64) -> Record {
        Record::new(machine, event, logical_clock, queue_length, T0_US + at_ms * 1_000)
    }

    fn run_dir(dir: &Path, files: &[(u32, &str)]) -> RunDir {
        RunDir {
            name: "run_1".into(),
            path: dir.to_path_buf(),
            logs: files.iter().map(|&(id, name)| (id, dir.join(name))).collect(),
            ignored: Vec::new(),
        }
    }

    /// Two machines whose statistics are worked out by hand below.
    fn hand_logs() -> [Vec<Record>; 2] {
        let init = |rate| Event::Initialized { host: Some("127.0.0.1".into()), port: Some(5000), rate };
        [
            vec![
                record(1, init(2), 0, 0, 0),
                record(1, Event::Internal, 1, 0, 500),
                record(1, Event::Sent { to: vec![2].into() }, 2, 0, 1_000),
                record(1, Event::Sent { to: vec![2].into() }, 3, 0, 1_500),
                record(1, Event::Internal, 4, 0, 2_000),
                record(1, Event::Stopped, 4, 0, 2_000),
            ],
            vec![
                record(2, init(1), 0, 0, 0),
                record(2, Event::Processed { from: Some(1), clock: Some(2) }, 3, 1, 1_250),
                record(2, Event::Internal, 4, 2, 2_000),
                record(2, Event::Unprocessed { from: 1, clock: 3 }, 4, 1, 2_000),
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
    /// Machine 1 counts from its first tick at 0.5 s, machine 2 from 1.25 s;
    /// each one's lag is averaged over the time it counts.
    /// Machine 1 (rate 2) is behind by 1 for 0.25 s of its 1.5 s: mean 1/6,
    /// max 1; in seconds, divided by the run's fastest rate r_max = 2: mean
    /// 1/12 s, max 0.5 s (not 1 s, though the rate-1 machine 2 leads then).
    /// Machine 2 (rate 1) is never behind while it counts: 0 of 0.75 s.
    fn check_hand_statistics(summary: &RunSummary) {
        let [m1, m2] = [&summary.machines[0], &summary.machines[1]];
        assert_eq!(summary.duration_s, 2.0);
        assert_eq!(summary.time_precision, "us");

        assert_eq!((m1.rate, m1.ticks, m1.expected_ticks, m1.tick_ratio), (2, 4, 4.0, 1.0));
        assert_eq!((m1.jump.mean, m1.jump.p50, m1.jump.p99, m1.jump.max), (1.0, 1, 1, 1));
        assert_eq!(m1.jump.distribution, BTreeMap::from([(1, 4)]));
        assert!((m1.lag.mean_ticks - 0.25 / 1.5).abs() < 1e-12, "{}", m1.lag.mean_ticks);
        assert!((m1.lag.mean_s - 0.25 / 1.5 / 2.0).abs() < 1e-12, "{}", m1.lag.mean_s);
        assert_eq!((m1.lag.max_ticks, m1.lag.max_s), (1, 0.5));
        assert_eq!(m1.rate_ratio, 1.0);
        assert_eq!(m1.clock_rate_per_s, 2.0);
        assert_eq!(m1.events, EventMix { processed: 0, sent: 2, internal: 2 });
        assert_eq!((m1.messages_sent, m1.messages_unprocessed), (2, 0));

        assert_eq!((m2.rate, m2.ticks, m2.expected_ticks), (1, 2, 2.0));
        // Jumps 3 (from 0 to 3) and 1: mean 2, median 1 (nearest rank 1 of 2), p99 3.
        assert_eq!((m2.jump.mean, m2.jump.p50, m2.jump.p99, m2.jump.max), (2.0, 1, 3, 3));
        assert_eq!((m2.lag.mean_ticks, m2.lag.max_ticks), (0.0, 0));
        assert_eq!(m2.rate_ratio, 2.0);
        // Received 2 (one processed, one left), capacity 1 x 2 s: at capacity, not over it.
        assert_eq!((m2.load.received, m2.load.utilisation, m2.load.overloaded), (2, 1.0, false));
        // Queue 1 at 1.25 s, 2 at 2 s: mean 1.5; held from tick to tick, it
        // stays at 1 from 1.25 s to 2 s: flat in every batch.
        assert_eq!((m2.queue.mean, m2.queue.max, m2.queue.last), (1.5, 2, 2));
        assert_eq!((m2.queue.growth.per_s, m2.queue.growth.grows), (0.0, false));
        assert_eq!(m2.events, EventMix { processed: 1, sent: 0, internal: 1 });
        assert_eq!((m2.messages_processed, m2.messages_unprocessed), (1, 1));

        // The lag series holds machine 1's step to 1 at 1.25 s.
        let lag_1 = summary.series[0].lag.points();
        assert!(lag_1.iter().any(|&(t, d)| (t - 1.25).abs() < 0.02 && d == 1.0), "{lag_1:?}");
        assert!(summary.diagnostics.iter().all(FileDiagnostics::is_clean), "{:?}", summary.diagnostics);
        // Every receive pairs: happens-before is known, and the pairs are counted.
        let causality = summary.causality.as_ref().expect("the logs name every sender");
        assert_eq!((causality.vectors, causality.ticks, causality.pairs), ("replayed", 6, 8));
    }

    /// Logs read in the merge's thread and on threads of their own (in
    /// batches, several of them here) give the same run.
    #[test]
    fn logs_read_ahead_or_in_the_merge_give_the_same_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for id in 1..=3u32 {
            let name = clocklab_log::file_name(id, LogFormat::Text);
            let mut writer = LogWriter::new(File::create(dir.path().join(&name)).unwrap(), LogFormat::Text);
            let init = Event::Initialized { host: None, port: Some(5000), rate: id };
            writer.write(&record(id, init, 0, 0, 0)).unwrap();
            for k in 1..=1_500u64 {
                let event = if k % 3 == 0 { Event::Sent { to: vec![id % 3 + 1].into() } } else { Event::Internal };
                writer.write(&record(id, event, k, 0, (k * 1_000 / u64::from(id)) as i64)).unwrap();
            }
            writer.write(&record(id, Event::Stopped, 1_500, 0, 1_500_000)).unwrap();
            files.push((id, name));
        }
        let files: Vec<(u32, &str)> = files.iter().map(|(id, name)| (*id, name.as_str())).collect();
        let run = run_dir(dir.path(), &files);
        let ahead = analyze_run(&run);
        assert_eq!(ahead.lines, 3 * 1_502);
        assert_eq!(ahead, analyze_run_in_one_thread(&run));
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
        assert_eq!(
            (summary.time_precision, summary.info.runtime.as_str(), summary.duration_s),
            ("s", "reference", 2.0)
        );
        assert_eq!(summary.causality, None);
        assert_eq!(summary.causality_missing.as_deref(), Some("the logs' receives do not name their senders"));

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

        // Whole seconds: (1, 0) during [0, 1), (3, 2) during [1, 2), (6, 5) at 2;
        // machine 2 counts from its first tick at 1 s, 1 behind for 1 s.
        assert_eq!((m1.lag.mean_ticks, m1.lag.max_ticks), (0.0, 0));
        assert_eq!((m2.lag.mean_ticks, m2.lag.max_ticks), (1.0, 1));

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
        // An unreadable log is no machine: the run has the two it can read.
        assert_eq!(summary.machines.len(), 2);
    }
}
