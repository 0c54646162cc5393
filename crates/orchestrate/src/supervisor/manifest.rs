//! A real run's record as its `manifest.json`.

use std::collections::BTreeMap;

use clocklab_config::{HostOutcome, MachineOutcome, RunHost, RunManifest, RunPlan, RunStatus, Runtime};
use clocklab_net::LatenessSummary;

use super::RunRecord;

/// The manifest of `plan`'s run, from what the run recorded: `status` is how
/// it ended, `spawned_us` and `ended_us` when its machines were started and
/// when the last one was done.
pub(crate) fn build(
    plan: &RunPlan,
    record: &RunRecord,
    status: RunStatus,
    spawned_us: i64,
    ended_us: i64,
    hosts: &[RunHost],
    host_commands: &[Vec<String>],
) -> RunManifest {
    let machines = plan
        .machines
        .iter()
        .map(|m| MachineOutcome {
            id: m.id,
            address: {
                let host = hosts.iter().find(|h| h.machines.contains(&m.id)).map_or(&plan.host, |h| &h.spec.address);
                match record.ports.get(&m.id) {
                    Some(port) => format!("{host}:{port}"),
                    None => format!("{host}:?"),
                }
            },
            rate: m.rate,
            seed: m.seed,
            clock_offset_us: m.clock_offset_us,
            clock_drift_ppm: m.clock_drift_ppm,
            exit_status: Some(record.exit_statuses.get(&m.id).cloned().unwrap_or_else(|| "not started".into())),
            logs: plan.log_formats.iter().map(|&format| clocklab_log::file_name(m.id, format)).collect(),
        })
        .collect();
    let mut extra = BTreeMap::new();
    if !record.summaries.is_empty() {
        let lateness: BTreeMap<String, LatenessSummary> =
            record.summaries.iter().map(|(id, s)| (id.to_string(), s.lateness)).collect();
        extra.insert("tick_lateness_us".into(), serde_json::to_value(lateness).expect("plain numbers serialise"));
        let messages: BTreeMap<String, serde_json::Value> = record
            .summaries
            .iter()
            .map(|(id, s)| {
                let value = serde_json::json!({
                    "sent": s.sent, "processed": s.processed, "unprocessed": s.unprocessed,
                    "unsent": s.unsent, "disconnected": s.disconnected,
                    "behind": s.behind,
                    "refused": s.refused, "refused_connections": s.refused_connections,
                    "stopped_early": s.stopped_early,
                });
                (id.to_string(), value)
            })
            .collect();
        extra.insert("messages".into(), serde_json::to_value(messages).expect("plain numbers serialise"));
    }
    if let Some(cause) = &record.interrupted {
        extra.insert("interrupted_by".into(), serde_json::Value::String(cause.clone()));
    }
    if !record.failures.is_empty() {
        let mut failures: Vec<&super::Failed> = record.failures.iter().collect();
        failures.sort_by_key(|failed| failed.at);
        let texts: Vec<&str> = failures.iter().map(|failed| failed.text.as_str()).collect();
        extra.insert("failures".into(), serde_json::to_value(texts).expect("strings serialise"));
    }
    if !record.pids.is_empty() {
        let pids: BTreeMap<String, u32> = record.pids.iter().map(|(id, pid)| (id.to_string(), *pid)).collect();
        extra.insert("pids".into(), serde_json::to_value(pids).expect("plain numbers serialise"));
    }
    let hosts = hosts
        .iter()
        .enumerate()
        .map(|(idx, host)| {
            let (start, end) = (record.clocks.get(&idx), record.clocks_end.get(&idx));
            HostOutcome {
                name: host.spec.name.clone(),
                address: host.spec.address.clone(),
                launcher: host_commands.get(idx).cloned().unwrap_or_default(),
                machines: host.machines.clone(),
                clock_offset_us: start.map_or(0, |clock| clock.offset_us),
                clock_offset_end_us: end.map(|clock| clock.offset_us),
                clock_offset_uncertainty_us: start.map_or(0, |clock| clock.uncertainty_us),
                clock_offset_end_uncertainty_us: end.map(|clock| clock.uncertainty_us),
                lost: record.lost.get(&idx).cloned(),
                gone: host.machines.iter().copied().filter(|id| record.gone.contains_key(id)).collect(),
            }
        })
        .collect();
    RunManifest {
        hosts,
        clocklab_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: Runtime::Real,
        experiment: plan.experiment.clone(),
        run_idx: plan.run_idx,
        seeds: plan.seed_tree(),
        machines,
        started_at: clocklab_log::rfc3339_us(record.start_us.unwrap_or(spawned_us)),
        ended_at: clocklab_log::rfc3339_us(ended_us),
        status,
        extra,
    }
}
