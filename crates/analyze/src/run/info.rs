//! What a run was and how it went, from its `manifest.json`: what the report
//! states at the top, and what decides whether a run enters the aggregates.

use std::path::Path;

use clocklab_config::{Experiment, RunManifest, layout};
use serde::Serialize;

/// A run's settings and outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunInfo {
    /// `ok`, `failed`, `interrupted`, `degraded`, or `unknown` without a
    /// manifest (or with one that could not be used).
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
    /// Each machine's seed, for machines started by hand (which have no run
    /// seed): `clocklab machine <id> --seed` derives it from a seed and the id.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub machine_seeds: std::collections::BTreeMap<u32, u64>,
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
    /// Its manifest is there but could not be used (not a manifest, or a
    /// number out of its range; the run's problems say how): the run is read
    /// from its logs alone, as one without a manifest.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manifest_damaged: bool,
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
pub(crate) fn read_manifest(run_dir: &Path) -> Result<Option<RunManifest>, Vec<String>> {
    let path = layout::manifest_path(run_dir);
    // Every number is checked against its range before the analysis sizes
    // anything by it; a damaged manifest is reported, and the run is read
    // from its logs alone.
    match RunManifest::read(&path) {
        Ok(manifest) => Ok(Some(manifest)),
        Err(error) if error.is_missing() => layout::machines_run_manifest(run_dir)
            .map_err(|damaged| damaged.iter().map(|error| with_source(error)).collect()),
        Err(error) => Err(vec![format!("{}", with_source(&error))]),
    }
}

/// An error and what the system said, if it said something: `a: b`.
fn with_source(error: &dyn std::error::Error) -> String {
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
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
        suite_seed: (!manifest.started_by_hand()).then_some(manifest.seeds.suite),
        run_seed: (!manifest.started_by_hand()).then_some(manifest.seeds.run),
        machine_seeds: if manifest.started_by_hand() { manifest.seeds.machines.clone() } else { Default::default() },
        started_at: Some(manifest.started_at.clone()),
        clocklab_version: Some(manifest.clocklab_version.clone()),
        settings: Some(manifest.experiment.clone()),
        clocks: manifest.experiment.clocks.names().into_iter().map(str::to_string).collect(),
        skew_bound_us: skew_bound_us(manifest),
        manifest_damaged: false,
    }
}

/// The run's information when its manifest is there but damaged: what the
/// logs say, as without a manifest, and that it was damaged.
pub(crate) fn damaged_manifest(whole_seconds: bool, first_line_us: Option<i64>) -> RunInfo {
    RunInfo { manifest_damaged: true, runtime: "unknown".into(), ..run_info(None, whole_seconds, first_line_us) }
}

/// Microseconds since the Unix epoch as RFC 3339 UTC, as the manifests write
/// it; `None` outside the calendar.
fn rfc3339(time_us: i64) -> Option<String> {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1_000).ok()?;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time.format(&format).ok()
}

/// See [`RunInfo::skew_bound_us`]: the largest lead of any machine's
/// clock (the largest reading it showed so far, see
/// `clocklab_faults::largest_reading`) over any other's. The clocks are
/// linear between the fault plan's clock faults, so the largest lead is at
/// the start, the end, or at a fault (just before it or at it).
fn skew_bound_us(manifest: &RunManifest) -> Option<f64> {
    use clocklab_faults::{FaultPlan, MachineFault, largest_reading, physical_reading};
    if manifest.machines.is_empty() {
        return None;
    }
    let duration_us = clocklab_model::schedule::duration_us(manifest.experiment.duration);
    let plan = FaultPlan::new(&manifest.experiment.faults, 0, duration_us);
    let clocks: Vec<(clocklab_model::PhysicalClock, Vec<MachineFault>)> = manifest
        .machines
        .iter()
        .map(|m| {
            (clocklab_model::PhysicalClock::new(0, m.clock_offset_us, m.clock_drift_ppm), plan.machine_faults(m.id))
        })
        .collect();
    let mut instants: Vec<i64> = vec![0, i64::try_from(duration_us).unwrap_or(i64::MAX)];
    for (_, faults) in &clocks {
        for fault in faults {
            if let MachineFault::Clock { at_us, .. } = *fault {
                let at = i64::try_from(at_us).unwrap_or(i64::MAX);
                instants.extend([at - 1, at]);
            }
        }
    }
    let lead_at = |t: i64| {
        let fastest = clocks.iter().map(|(base, faults)| largest_reading(base, 0, faults, t)).max().unwrap_or(0);
        let slowest = clocks.iter().map(|(base, faults)| physical_reading(base, 0, faults, t)).min().unwrap_or(0);
        fastest - slowest
    };
    instants.into_iter().filter(|&t| t >= 0).map(lead_at).max().map(|us| us as f64)
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
