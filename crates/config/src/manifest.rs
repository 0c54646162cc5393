//! The record of one run, written as `manifest.json` beside its logs.

use std::collections::BTreeMap;

use clocklab_model::MachineId;
use serde::{Deserialize, Serialize};

use crate::config::{Experiment, Runtime};

/// Every seed of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedTree {
    /// The suite's seed (`--seed`).
    pub suite: u64,
    /// The experiment's.
    pub experiment: u64,
    /// The run's.
    pub run: u64,
    /// Each machine's, by id.
    pub machines: BTreeMap<MachineId, u64>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum RunStatus {
    /// Every machine finished and exited cleanly.
    Ok,
    /// Something went wrong; `cause` says what.
    Failed {
        /// What went wrong, for a person.
        cause: String,
    },
    /// A signal (Ctrl-C) stopped the run early.
    Interrupted,
}

/// One machine of a run, as it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineOutcome {
    /// Its number.
    pub id: MachineId,
    /// Its listening address (`host:port`; in the simulator, a virtual one).
    pub address: String,
    /// Its drawn clock rate.
    pub rate: u32,
    /// Its seed.
    pub seed: u64,
    /// Its physical clock's offset from true time at the start, in microseconds.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub clock_offset_us: i64,
    /// Its physical clock's drift, in parts per million.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub clock_drift_ppm: f64,
    /// Its exit status: `0` for success; a description otherwise. Absent in the simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<String>,
    /// Its log files, relative to the run folder.
    pub logs: Vec<String>,
}

fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

/// `manifest.json`: what a run was and how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// The clocklab version that made it.
    pub clocklab_version: String,
    /// The runtime that executed it.
    pub runtime: Runtime,
    /// The experiment's settings.
    pub experiment: Experiment,
    /// The run's number within the experiment, 1-based.
    pub run_idx: u32,
    /// All seeds: `--seed` with this value reproduces the draws.
    pub seeds: SeedTree,
    /// The machines.
    pub machines: Vec<MachineOutcome>,
    /// When ticking started (RFC 3339, UTC, microseconds).
    pub started_at: String,
    /// When the last machine stopped.
    pub ended_at: String,
    /// How it ended.
    pub status: RunStatus,
    /// Anything else the runtime records (network model, tick lateness, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl RunManifest {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest always serialises");
        text.push('\n');
        text
    }

    /// Parses a manifest.
    pub fn from_json(text: &str) -> Result<RunManifest, serde_json::Error> {
        serde_json::from_str(text)
    }
}
