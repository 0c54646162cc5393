//! The analysis of clocklab's logs (and the reference implementation's):
//! statistics per machine, run and experiment, figures, and one
//! self-contained HTML report.
//!
//! Start here: [`analyze`] finds the runs under a folder ([`discover`]),
//! reads each run's logs in one streaming pass merged in time order
//! ([`run::analyze_run`], where the counting rules are written down), and
//! aggregates runs per experiment ([`summary`]). [`report::write_outputs`]
//! writes `summary.json`, the CSV tables, the figures ([`figures`]) and
//! `report.html`.
//!
//! Memory is bounded by the figures, not by the logs: each machine keeps
//! exact histograms of small integers and time series of at most
//! [`stats::MAX_POINTS`] buckets.
//!
//! ```
//! use clocklab_log::{Event, LogFormat, LogWriter, Record};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let run = dir.path().join("baseline/run_1");
//! std::fs::create_dir_all(&run).unwrap();
//! for id in [1, 2] {
//!     let file = std::fs::File::create(run.join(format!("machine_{id}.log"))).unwrap();
//!     let mut log = LogWriter::new(file, LogFormat::Text);
//!     let line = |event, logical_clock, time_us| Record::new(id, event, logical_clock, 0, time_us);
//!     log.write(&line(Event::Initialized { host: None, port: Some(5000), rate: id }, 0, 0)).unwrap();
//!     log.write(&line(Event::Internal, 1, 500_000)).unwrap();
//!     log.write(&line(Event::Internal, 2, 1_000_000)).unwrap();
//!     log.write(&line(Event::Stopped, 2, 1_000_000)).unwrap();
//! }
//! let summary = clocklab_analyze::analyze(dir.path()).unwrap();
//! let machine = &summary.experiments[0].runs[0].machines[0];
//! assert_eq!((machine.ticks, machine.jump.max), (2, 1));
//! ```

pub mod compare;
pub mod contrast;
pub mod coverage;
pub mod diagrams;
pub mod discover;
pub mod faults;
pub mod figures;
#[doc(hidden)]
pub mod fuzzing;
pub mod growth;
pub mod interval;
pub mod predict;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;
pub mod tables;
pub mod words;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use diagrams::DiagramLink;
pub use report::{Outputs, write_outputs};
pub use summary::{ExperimentSummary, Summary};
pub use tables::render_table;

/// Why an analysis failed as a whole (damaged lines never make it fail).
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Nothing has the path.
    #[error("{0} does not exist")]
    Missing(PathBuf),
    /// The path is not a folder.
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    /// No run folder with machine logs was found.
    #[error("no logs found in {0} (expected machine_<id>.log, machine_<id>.jsonl or process_<id>.log in run folders)")]
    NoLogs(PathBuf),
    /// A folder or file could not be read or written. What the system said
    /// is its source, for the caller to print after the path (with `{:#}`).
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file that the analysis before wrote into the same folder, and this
    /// one did not, could not be removed.
    #[error("{path}: written by the analysis before into the same folder, and not by this one; it cannot be removed")]
    Stale {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error(transparent)]
    Draw(#[from] figures::DrawError),
}

impl AnalyzeError {
    /// Whether the error is the user's input (a path that is not a folder of
    /// runs) rather than the system failing.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, AnalyzeError::Missing(_) | AnalyzeError::NotAFolder(_) | AnalyzeError::NoLogs(_))
    }
}

/// Analyses every run under `dir` (a results, experiment or run folder).
///
/// Runs are read in parallel, one per thread, on up to as many threads as the
/// machine has cores; the result does not depend on the order.
pub fn analyze(dir: &Path) -> Result<Summary, AnalyzeError> {
    analyze_into(dir, None).map(|(summary, _)| summary)
}

/// [`analyze`], writing each run's space-time diagram page into
/// `<out>/diagrams/<experiment>/<run>.html` as the run is read (see
/// [`diagrams`]); returns the pages' links too, in the order of the runs,
/// or what stopped a page being written, for
/// [`report::write_outputs_with_diagrams`] to say when it comes to them, so
/// that the outputs before them are written first, as without this.
/// Nothing is written if `dir` holds no run.
pub fn analyze_with_diagrams(dir: &Path, out: &Path) -> Result<(Summary, Vec<PageOutcome>), AnalyzeError> {
    analyze_into(dir, Some(out))
}

/// A run's diagram page: its link, or what stopped it being written.
pub type PageOutcome = Result<DiagramLink, AnalyzeError>;

/// [`analyze`], with the diagram pages in `out` if it is given.
fn analyze_into(dir: &Path, out: Option<&Path>) -> Result<(Summary, Vec<PageOutcome>), AnalyzeError> {
    let experiments = discover::discover(dir)?;
    if let Some(out) = out {
        clocklab_config::output::create_dir_all(out)
            .map_err(|source| AnalyzeError::Io { path: out.to_path_buf(), source })?;
        diagrams::make_folders(experiments.iter().map(|e| e.name.as_str()), out)?;
    }
    let jobs: Vec<(usize, &discover::RunDir)> =
        experiments.iter().enumerate().flat_map(|(e, exp)| exp.runs.iter().map(move |run| (e, run))).collect();
    type Analysed = (run::RunSummary, Option<PageOutcome>);
    let results: Mutex<Vec<Option<Analysed>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(jobs.len()).max(1);
    // A run gets threads of its own to read its logs ahead only once a
    // core would otherwise wait: until then, every core has a run to analyse.
    let spare_core = AtomicBool::new(threads < cores);
    let work = || {
        loop {
            let idx = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(e, run)) = jobs.get(idx) else {
                // This core is spare from now on: the runs still being
                // read may read their logs ahead on it.
                spare_core.store(true, Ordering::Relaxed);
                break;
            };
            let page = out.map(|out| diagrams::PageTarget { experiment: &experiments[e].name, out });
            let (mut summary, link) = run::analyze_run_with_page(run, &spare_core, page);
            summary.faults = faults::effects(&summary);
            results.lock().expect("no thread panics while holding the lock")[idx] = Some((summary, link));
        }
    };
    // The calling thread is one of the workers: besides saving a thread,
    // the memory it frees stays in its allocator's pool, where the outputs,
    // written from this thread next, find it again (a thread's pool is its
    // own: memory freed by the others would not serve).
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    let mut results = results.into_inner().expect("no thread panicked").into_iter();
    // The results folder says what the command line changed: `dir`, or the
    // results folder above an experiment or run folder.
    let command = dir.ancestors().take(3).find_map(clocklab_config::layout::read_command);
    let mut summary = Summary { experiments: Vec::new(), diagnostics: Vec::new(), command };
    let mut links = Vec::new();
    for experiment in &experiments {
        let mut runs = Vec::new();
        for _ in &experiment.runs {
            let (run, link) = results.next().flatten().expect("every run was analysed");
            summary.diagnostics.extend(run.diagnostics.iter().filter(|d| !d.is_clean()).cloned());
            runs.push(run);
            links.extend(link);
        }
        summary.experiments.push(ExperimentSummary::new(experiment.name.clone(), runs));
    }
    Ok((summary, links))
}
