//! What a run was and how it went, from its `manifest.json`: what the report
//! states at the top, and what decides whether a run enters the aggregates.

use std::path::Path;

use clocklab_config::{Experiment, RunManifest, layout};
use serde::Serialize;

/// A run's settings and outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunInfo {
    /// `ok`, `failed`, `interrupted`, `degraded`, or `unknown` without a manifest.
    pub status: String,
    /// Why, for a run that is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// `real`, `sim`, `reference` (the Python reference's logs) or `unknown`.
    pub runtime: String,
    /// The suite's seed (`--seed` reproduces the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite_seed: Option<u64>,
    /// The run's own seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_seed: Option<u64>,
    /// When ticking started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The clocklab version that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clocklab_version: Option<String>,
    /// The experiment's settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Experiment>,
    /// The clocks the machines kept.
    pub clocks: Vec<String>,
    /// The largest difference between two machines' physical clocks over the
    /// run (offsets at the start, and what the drifts add by the end), in
    /// microseconds: how far an HLC may run ahead of its machine's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skew_bound_us: Option<f64>,
}

impl RunInfo {
    /// Whether the run enters the aggregates: it finished as planned.
    pub fn is_sound(&self) -> bool {
        matches!(self.status.as_str(), "ok" | "unknown")
    }
}

/// The manifest of `run_dir`, or why it could not be used (`Ok(None)`: there
/// is none, as for the reference's logs). Machines started by hand write one
/// manifest each (`machine_<id>.json`): the run's is made from them.
pub(crate) fn read_manifest(run_dir: &Path) -> Result<Option<RunManifest>, String> {
    let path = layout::manifest_path(run_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(from_machine_manifests(run_dir)),
        Err(error) => return Err(format!("{}: cannot read: {error}", path.display())),
    };
    let manifest =
        RunManifest::from_json(&text).map_err(|error| format!("{}: not a manifest: {error}", path.display()))?;
    let duration = manifest.experiment.duration;
    if !(duration.is_finite() && duration > 0.0 && duration < 1e9) {
        return Err(format!("{}: duration {duration} is not a run's length; the logs' times are used", path.display()));
    }
    Ok(Some(manifest))
}

/// The key of a run manifest's `extra` that marks one made from the
/// manifests of machines started by hand.
const STARTED_BY_HAND: &str = "started_by_hand";

/// A run's manifest made from the manifests that machines started by hand
/// wrote beside their logs: their settings, rates and clocks, the start
/// instant they agreed on, and the worst status any of them saw.
fn from_machine_manifests(run_dir: &Path) -> Option<RunManifest> {
    let manifests = layout::read_machine_manifests(run_dir);
    let first = manifests.values().next()?;
    let status = manifests
        .values()
        .map(|m| m.status.clone())
        .find(|status| *status != clocklab_config::RunStatus::Ok)
        .unwrap_or(clocklab_config::RunStatus::Ok);
    Some(RunManifest {
        clocklab_version: first.clocklab_version.clone(),
        runtime: clocklab_config::Runtime::Real,
        experiment: Experiment {
            name: run_dir.file_name().map_or_else(|| "machines".into(), |n| n.to_string_lossy().into_owned()),
            machines: first.n_machines,
            max_clock_rate: first.max_clock_rate,
            max_event_num: first.max_event_num,
            runs: 1,
            duration: first.duration,
            seed: None,
            clocks: first.clocks,
            physical_clock: Default::default(),
            faults: Vec::new(),
        },
        run_idx: 1,
        seeds: clocklab_config::SeedTree {
            suite: 0,
            experiment: 0,
            run: 0,
            machines: manifests.iter().map(|(&id, m)| (id, m.seed)).collect(),
        },
        machines: manifests
            .values()
            .map(|m| clocklab_config::MachineOutcome {
                id: m.id,
                address: format!("{}:{}", m.host, m.port),
                rate: m.rate,
                seed: m.seed,
                clock_offset_us: m.clock_offset_us,
                clock_drift_ppm: m.clock_drift_ppm,
                exit_status: None,
                logs: Vec::new(),
            })
            .collect(),
        started_at: first.started_at.clone(),
        ended_at: manifests.values().map(|m| m.ended_at.clone()).max().unwrap_or_default(),
        status,
        extra: [(STARTED_BY_HAND.to_string(), serde_json::Value::Bool(true))].into_iter().collect(),
    })
}

/// The run's information from its manifest (or what the logs say without
/// one: whole-second times mean the reference's logs, and the first line's
/// time is when the run started).
pub(crate) fn run_info(manifest: Option<&RunManifest>, whole_seconds: bool, first_line_us: Option<i64>) -> RunInfo {
    let Some(manifest) = manifest else {
        return RunInfo {
            status: "unknown".into(),
            runtime: if whole_seconds { "reference" } else { "unknown" }.into(),
            clocks: vec!["lamport".into()],
            started_at: first_line_us.and_then(rfc3339),
            ..RunInfo::default()
        };
    };
    let status = serde_json::to_value(&manifest.status).unwrap_or_default();
    let runtime = serde_json::to_value(manifest.runtime).unwrap_or_default();
    RunInfo {
        status: status["status"].as_str().unwrap_or("unknown").to_string(),
        cause: status["cause"].as_str().map(str::to_string),
        runtime: runtime.as_str().unwrap_or("unknown").to_string(),
        // Machines started by hand have no suite or run seed, only their own.
        suite_seed: (!manifest.extra.contains_key(STARTED_BY_HAND)).then_some(manifest.seeds.suite),
        run_seed: (!manifest.extra.contains_key(STARTED_BY_HAND)).then_some(manifest.seeds.run),
        started_at: Some(manifest.started_at.clone()),
        clocklab_version: Some(manifest.clocklab_version.clone()),
        settings: Some(manifest.experiment.clone()),
        clocks: manifest.experiment.clocks.names().into_iter().map(str::to_string).collect(),
        skew_bound_us: skew_bound_us(manifest),
    }
}

/// Microseconds since the Unix epoch as RFC 3339 UTC, as the manifests write
/// it; `None` outside the calendar.
fn rfc3339(time_us: i64) -> Option<String> {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1_000).ok()?;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time.format(&format).ok()
}

/// See [`RunInfo::skew_bound_us`]: the spread of the machines' clocks is
/// linear in time, so its largest value is at the start or the end.
fn skew_bound_us(manifest: &RunManifest) -> Option<f64> {
    let duration_s = manifest.experiment.duration;
    let spread_at = |seconds: f64| {
        let readings: Vec<f64> =
            manifest.machines.iter().map(|m| m.clock_offset_us as f64 + m.clock_drift_ppm * seconds).collect();
        let max = readings.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = readings.iter().copied().fold(f64::INFINITY, f64::min);
        max - min
    };
    (!manifest.machines.is_empty()).then(|| spread_at(0.0).max(spread_at(duration_s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_without_a_manifest_date_the_run_by_their_first_line() {
        let info = run_info(None, true, Some(1_740_769_423_000_000));
        assert_eq!(info.started_at.as_deref(), Some("2025-02-28T19:03:43.000000Z"));
        assert_eq!(info.runtime, "reference");
        assert_eq!(run_info(None, false, Some(i64::MAX)).started_at, None);
    }
}
