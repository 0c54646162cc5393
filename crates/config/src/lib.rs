//! What a clocklab run is made of, before and after it runs.
//!
//! Start here: [`Config::load`] reads a JSON or TOML file (or
//! [`Config::default`] is the built-in suite) and [`Config::validate`]
//! checks it against the ranges of [`limits`] once the command line has had
//! its say; [`plan_runs`] turns a configuration and a seed into one
//! [`RunPlan`] per run, with every seed and drawn rate fixed, and
//! [`OutputEstimate`] says how much they will write; each runtime executes
//! plans and writes a [`RunManifest`] beside the logs (a machine started by
//! hand, a [`MachineManifest`]), in the folders that [`layout`] names.
//!
//! The modules: `config` (the types), `file` (the file as written, the
//! reference implementation's spellings included), `source` (parsing with
//! errors that name file, key and value), `validate`, [`limits`], `keys`
//! (what every key means, for `clocklab config --print-default`), `plan`,
//! `manifest`, `manifest_read` (a manifest read back, every number checked
//! against the ranges), [`layout`], and [`output`] (how every file is written and
//! every folder made: never through a planted link, never half).
//!
//! ```
//! use clocklab_config::{Config, plan_runs};
//!
//! let config = Config::default();
//! assert_eq!(config.experiments.len(), 4);
//! let plans = plan_runs(&config, 42, std::path::Path::new("results/x"));
//! assert_eq!(plans.len(), 20);
//! // The same seed gives the same draws.
//! assert_eq!(plans, plan_runs(&config, 42, std::path::Path::new("results/x")));
//! // A run of 1e300 seconds is refused before anything runs.
//! let mut huge = config.clone();
//! huge.experiments[0].duration = 1e300;
//! assert!(huge.validate("example").is_err());
//! ```

mod config;
mod file;
mod keys;
pub mod layout;
pub mod limits;
mod manifest;
mod manifest_read;
pub mod output;
mod plan;
mod source;
mod validate;

pub use config::{
    Config, ConfigError, DelayDistribution, Experiment, LogFormats, PhysicalClockSettings, Runtime, SimSettings,
};
pub use file::load_faults;
pub use keys::{KeyDoc, key_docs};
pub use manifest::{CommandRecord, MachineCounts, MachineManifest, MachineOutcome, RunManifest, RunStatus, SeedTree};
pub use manifest_read::MANIFEST_BYTES_MAX;
pub use plan::{MachinePlan, OutputEstimate, RunPlan, plan_runs};
