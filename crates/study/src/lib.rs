//! The analysis' statistics measured against the simulator, which knows
//! the truth: an interval called 95% should hold the true value in 95% of
//! the cases, a test at 5% should call identical experiments different in
//! 5% of them. No peer measures this; clocklab can, because the same
//! machines run in a deterministic simulator in well under a millisecond.
//!
//! Start here: [`sample::simulate`] runs and analyses many runs of one
//! experiment exactly as `clocklab analyze` would. Then:
//!
//! - [`coverage`]: the truth of each run-level metric (its mean over
//!   thousands of runs), and how often the interval of a group of runs (five
//!   in the classic suite) holds it, missing below or above;
//! - [`comparison`]: how often two independent copies of one experiment are
//!   called different, and how often the interval of a difference between
//!   two experiments holds the true difference;
//! - [`growth`]: how often the lag-growth test flags a stable machine
//!   (ρ ≤ 0.9) and catches an overloaded one (ρ ≥ 1.1), by run length.
//!
//! Their rows are the tables `clocklab-analyze` ships (`data/*.tsv`), which
//! the report quotes; `clocklab study` prints and writes them.
//!
//! Every seed derives from the study's seed: the same command prints the
//! same table.
//!
//! ```
//! use clocklab_study::{Options, coverage};
//!
//! let mut experiment = clocklab_config::Config::default().experiments.remove(0);
//! experiment.duration = 2.0;
//! let options = Options { groups: 4, runs: 5, truth_runs: 40, seed: 1, threads: 1 };
//! let scratch = clocklab_study::scratch_folder().unwrap();
//! let rows = coverage::coverage(&experiment, &options, scratch.path()).unwrap();
//! let jump = rows.iter().find(|r| r.metric == "jump_mean").unwrap();
//! assert_eq!(jump.covered + jump.below + jump.above, 4);
//! ```

pub mod comparison;
pub mod coverage;
pub mod growth;
pub mod sample;

pub use sample::StudyError;

/// How large a study is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Groups of runs, each giving one interval or one test.
    pub groups: u32,
    /// Runs per group (an experiment's `runs`).
    pub runs: u32,
    /// Runs whose mean is the truth.
    pub truth_runs: u32,
    /// The study's seed.
    pub seed: u64,
    /// Threads that simulate and analyse runs side by side.
    pub threads: usize,
}

/// Where a study's runs are written, analysed and removed, one after the
/// other: in memory (`/dev/shm`) where the system has it, since every run's
/// manifest is synced to its disk (which made a study ten times slower);
/// otherwise the system's temporary folder.
pub fn scratch_folder() -> std::io::Result<tempfile::TempDir> {
    let in_memory = std::path::Path::new("/dev/shm");
    if in_memory.is_dir()
        && let Ok(dir) = tempfile::Builder::new().prefix("clocklab-study-").tempdir_in(in_memory)
    {
        return Ok(dir);
    }
    tempfile::Builder::new().prefix("clocklab-study-").tempdir()
}

/// The seed of one part of a study (`truth`, `groups`, …) of `seed`.
pub(crate) fn part_seed(seed: u64, part: &str) -> u64 {
    clocklab_model::seed::derive(seed, clocklab_model::seed::label_of(part))
}

/// The mean of `values` (0 when empty).
pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}
