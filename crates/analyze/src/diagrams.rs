//! The space-time diagram of every run (drawn by `clocklab-causal`), and the
//! report's list of them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Writes `<out>/diagrams/<experiment>/<run>.html` for every run, runs in
/// parallel as in the analysis.
pub fn write_diagrams(summary: &Summary, out: &Path) -> Result<Vec<DiagramLink>, AnalyzeError> {
    let jobs: Vec<(&str, &crate::run::RunSummary)> =
        summary.experiments.iter().flat_map(|e| e.runs.iter().map(move |r| (e.name.as_str(), r))).collect();
    // The folders are made here, one level at a time, so that none is a
    // link planted to take the pages elsewhere.
    let diagrams = out.join("diagrams");
    let folders =
        std::iter::once(diagrams.clone()).chain(summary.experiments.iter().map(|e| diagrams.join(safe_name(&e.name))));
    for folder in folders {
        clocklab_config::output::create_dir(&folder).map_err(|source| AnalyzeError::Io { path: folder, source })?;
    }
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
                    let link = write_one(experiment, &run.name, &run.path, out);
                    results.lock().expect("no thread panics while holding the lock")[idx] = Some(link);
                }
            });
        }
    });
    results.into_inner().expect("no thread panicked").into_iter().map(|r| r.expect("every run was drawn")).collect()
}

fn write_one(experiment: &str, run: &str, run_dir: &Path, out: &Path) -> Result<DiagramLink, AnalyzeError> {
    let href = format!("diagrams/{}/{}.html", safe_name(experiment), safe_name(run));
    let path = out.join(&href);
    let link = |n_events, problem| DiagramLink {
        experiment: experiment.to_string(),
        run: run.to_string(),
        path: path.clone(),
        href: href.clone(),
        n_events,
        problem,
    };
    // A run folder that cannot be read as a run has no diagram, and says
    // why; only failing to write stops the analysis.
    let source = match clocklab_causal::RunSource::open(run_dir) {
        Ok(source) => source,
        Err(error) => return Ok(link(0, Some(with_sources(&error)))),
    };
    match clocklab_causal::diagram::write_run_diagram(&source, &path) {
        Ok(summary) => Ok(link(summary.n_events, None)),
        Err(clocklab_causal::diagram::DiagramError::Source(error)) if error.is_bad_input() => {
            Ok(link(0, Some(with_sources(&error))))
        }
        Err(clocklab_causal::diagram::DiagramError::Write { path, source }) => Err(AnalyzeError::Io { path, source }),
        Err(clocklab_causal::diagram::DiagramError::Source(error)) => {
            Err(AnalyzeError::Io { path: path.clone(), source: std::io::Error::other(with_sources(&error)) })
        }
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
