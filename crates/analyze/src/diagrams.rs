//! The space-time diagram of every run (drawn by `clocklab-causal`), and the
//! report's list of them.
//!
//! A run's page is written while the analysis reads the run
//! ([`crate::analyze_with_diagrams`]): the analysis hands each event it
//! reads to the page (`RunPage`), so that the logs are parsed once for
//! both. A run whose logs the analysis does not all read (a log the
//! manifest does not list, or one that cannot be opened) has its page
//! written after its analysis, from the run folder alone, as `clocklab
//! diagram` would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clocklab_causal::RunSource;
use clocklab_causal::diagram::{DiagramError, DiagramFile, DiagramSummary};
use clocklab_log::{Diagnostics, RunEvent};

use crate::AnalyzeError;
use crate::report::safe_name;
use crate::summary::Summary;

/// One run's diagram.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DiagramLink {
    /// The experiment.
    pub experiment: String,
    /// The run folder's name.
    pub run: String,
    /// The page.
    #[serde(skip)]
    pub path: PathBuf,
    /// The page, relative to the analysis folder (for links).
    pub href: String,
    /// Events drawn.
    pub n_events: u64,
    /// Why the run has no diagram (its folder could not be read as a run:
    /// damaged input does not stop the analysis).
    pub problem: Option<String>,
}

/// Makes `<out>/diagrams/<experiment>/` for each of `experiments`, one
/// level at a time, so that none is a link planted to take the pages
/// elsewhere.
pub(crate) fn make_folders<'a>(experiments: impl Iterator<Item = &'a str>, out: &Path) -> Result<(), AnalyzeError> {
    let diagrams = out.join("diagrams");
    let folders = std::iter::once(diagrams.clone()).chain(experiments.map(|name| diagrams.join(safe_name(name))));
    for folder in folders {
        clocklab_config::output::create_dir(&folder).map_err(|source| AnalyzeError::Io { path: folder, source })?;
    }
    Ok(())
}

/// Writes `<out>/diagrams/<experiment>/<run>.html` for every run, reading
/// each run again, runs in parallel as in the analysis.
pub fn write_diagrams(summary: &Summary, out: &Path) -> Result<Vec<DiagramLink>, AnalyzeError> {
    let jobs: Vec<(&str, &crate::run::RunSummary)> =
        summary.experiments.iter().flat_map(|e| e.runs.iter().map(move |r| (e.name.as_str(), r))).collect();
    make_folders(summary.experiments.iter().map(|e| e.name.as_str()), out)?;
    let results: Mutex<Vec<Option<Result<DiagramLink, AnalyzeError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let idx = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(experiment, run)) = jobs.get(idx) else { break };
                    let link = write_one(&PageTarget { experiment, out }, &run.name, &run.path);
                    results.lock().expect("no thread panics while holding the lock")[idx] = Some(link);
                }
            });
        }
    });
    results.into_inner().expect("no thread panicked").into_iter().map(|r| r.expect("every run was drawn")).collect()
}

/// Where a run's page goes: its experiment, and the analysis folder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageTarget<'a> {
    /// The experiment's name.
    pub experiment: &'a str,
    /// The analysis folder.
    pub out: &'a Path,
}

impl PageTarget<'_> {
    /// The page of run `run`, relative to the analysis folder.
    fn href(&self, run: &str) -> String {
        format!("diagrams/{}/{}.html", safe_name(self.experiment), safe_name(run))
    }

    /// The link to the page of run `run`, with `n_events` drawn, or the
    /// problem that left it out.
    fn link(&self, run: &str, n_events: u64, problem: Option<String>) -> DiagramLink {
        let href = self.href(run);
        DiagramLink {
            experiment: self.experiment.to_string(),
            run: run.to_string(),
            path: self.out.join(&href),
            href,
            n_events,
            problem,
        }
    }

    /// The link for what writing the page of run `run` gave: a run folder
    /// that cannot be read as a run has no diagram, and says why; only
    /// failing to write stops the analysis.
    fn outcome(&self, run: &str, written: Result<DiagramSummary, DiagramError>) -> Result<DiagramLink, AnalyzeError> {
        match written {
            Ok(summary) => Ok(self.link(run, summary.n_events, None)),
            Err(DiagramError::Source(error)) if error.is_bad_input() => {
                Ok(self.link(run, 0, Some(with_sources(&error))))
            }
            Err(DiagramError::Write { path, source }) => Err(AnalyzeError::Io { path, source }),
            Err(DiagramError::Source(error)) => Err(AnalyzeError::Io {
                path: self.out.join(self.href(run)),
                source: std::io::Error::other(with_sources(&error)),
            }),
        }
    }
}

/// Writes the page of the run in `run_dir`, reading it.
fn write_one(target: &PageTarget, run: &str, run_dir: &Path) -> Result<DiagramLink, AnalyzeError> {
    let source = match RunSource::open(run_dir) {
        Ok(source) => source,
        Err(error) => return Ok(target.link(run, 0, Some(with_sources(&error)))),
    };
    let path = target.out.join(target.href(run));
    target.outcome(run, clocklab_causal::diagram::write_run_diagram(&source, &path))
}

/// A run's page, written as the analysis reads the run's events.
#[derive(Debug)]
pub(crate) struct RunPage<'a> {
    target: PageTarget<'a>,
    run: &'a str,
    run_dir: &'a Path,
    state: PageState,
}

/// How far a [`RunPage`] is.
#[derive(Debug)]
enum PageState {
    /// Its folder cannot be read as a run (the problem for its link).
    Unreadable(String),
    /// Written after the analysis, from the run folder: the analysis does
    /// not read every log of it.
    Later,
    /// Being written: the run (which the page borrows while it is written).
    Streaming(Box<RunSource>),
}

impl<'a> RunPage<'a> {
    /// The page of the run `run` in `run_dir`, of which the analysis reads
    /// the logs `read` (by machine id).
    pub(crate) fn new(
        target: PageTarget<'a>,
        run: &'a str,
        run_dir: &'a Path,
        read: &BTreeMap<u32, &Path>,
    ) -> RunPage<'a> {
        let state = match RunSource::open(run_dir) {
            Err(error) => PageState::Unreadable(with_sources(&error)),
            Ok(source)
                if source.logs.len() == read.len()
                    && source.logs.iter().all(|(id, path)| read.get(id) == Some(&path.as_path())) =>
            {
                PageState::Streaming(Box::new(source))
            }
            Ok(_) => PageState::Later,
        };
        RunPage { target, run, run_dir, state }
    }

    /// Starts writing, if the page is written as the analysis reads the run.
    pub(crate) fn start(&self, machines: &[u32]) -> Option<Result<DiagramFile<'_>, DiagramError>> {
        let PageState::Streaming(source) = &self.state else { return None };
        Some(DiagramFile::create(source, &self.target.out.join(self.target.href(self.run)), machines))
    }

    /// The page's link once the analysis has read the run: `written` is
    /// what [`RunPage::start`] gave, with every event pushed, and `skipped`
    /// what the readers skipped.
    pub(crate) fn finish(
        &self,
        written: Option<Result<DiagramFile<'_>, DiagramError>>,
        skipped: &BTreeMap<u32, Diagnostics>,
    ) -> Result<DiagramLink, AnalyzeError> {
        match (&self.state, written) {
            (PageState::Unreadable(problem), _) => Ok(self.target.link(self.run, 0, Some(problem.clone()))),
            (PageState::Streaming(_), Some(written)) => {
                self.target.outcome(self.run, written.and_then(|file| file.finish(skipped)))
            }
            _ => write_one(&self.target, self.run, self.run_dir),
        }
    }
}

/// Pushes `event` to the page being written, which is dropped (and its
/// file with it) at the first error, kept for [`RunPage::finish`].
pub(crate) fn push(page: &mut Option<Result<DiagramFile<'_>, DiagramError>>, event: &RunEvent) {
    if let Some(Ok(file)) = page
        && let Err(error) = file.push(event)
    {
        *page = Some(Err(error));
    }
}

/// An error and its sources, as one line: `a: b: c`.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(&format!(": {error}"));
        cause = error.source();
    }
    text
}
