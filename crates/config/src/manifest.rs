//! The record of one run, written as `manifest.json` beside its logs.

use std::collections::BTreeMap;

use clocklab_model::{ClockKinds, MachineId};
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
///
/// When several things happened, the status is the gravest: failed, then
/// interrupted, then degraded. Every status but `failed` loses no message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum RunStatus {
    /// Every machine finished and exited cleanly, on its schedule.
    Ok,
    /// Something went wrong; `cause` says what.
    Failed {
        /// What went wrong, for a person.
        cause: String,
    },
    /// A signal (Ctrl-C) stopped the run early.
    Interrupted,
    /// Every machine finished, but at least one fell behind its schedule by
    /// more than one tick period: its late ticks ran back to back (none is
    /// skipped), so the timing of those ticks is not what the rates say.
    Degraded {
        /// Which machine fell furthest behind, and by how much, for a person.
        cause: String,
        /// The worst lateness of a tick over the run, in microseconds.
        lateness_us_max: u64,
    },
}

impl RunStatus {
    /// Whether every machine ticked to the deadline (`ok` or `degraded`), so
    /// that its tick count is `ceil(rate x duration)`.
    pub fn ran_to_the_end(&self) -> bool {
        matches!(self, RunStatus::Ok | RunStatus::Degraded { .. })
    }

    /// `degraded` if any machine fell behind its schedule (by more than one
    /// tick period), naming the one that fell furthest; `ok` otherwise.
    pub fn from_behind(behind: &BTreeMap<MachineId, clocklab_driver::BehindSummary>) -> RunStatus {
        let late: Vec<(MachineId, &clocklab_driver::BehindSummary)> =
            behind.iter().filter(|(_, b)| b.episodes > 0).map(|(&id, b)| (id, b)).collect();
        let Some(&(worst_id, worst)) = late.iter().max_by_key(|(id, b)| (b.lateness_us_max, std::cmp::Reverse(*id)))
        else {
            return RunStatus::Ok;
        };
        let times = if worst.episodes == 1 { "once".to_string() } else { format!("{} times", worst.episodes) };
        let others = if late.len() > 1 { format!("; {} machines fell behind", late.len()) } else { String::new() };
        RunStatus::Degraded {
            cause: format!(
                "machine {worst_id} fell behind its schedule by up to {:.1} ms ({times}; its late ticks ran back to back){others}",
                worst.lateness_us_max as f64 / 1e3
            ),
            lateness_us_max: worst.lateness_us_max,
        }
    }

    /// The status's name, as `manifest.json` writes it (`ok`, `failed`, …).
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed { .. } => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Degraded { .. } => "degraded",
        }
    }
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
    /// What the log check expects of this run's logs, a tick count off by
    /// up to `tick_tolerance` allowed (0 for the simulator's).
    pub fn expectations(&self, tick_tolerance: u64) -> clocklab_log::check::Expectations {
        clocklab_log::check::Expectations {
            n_machines: self.experiment.machines,
            duration_s: self.experiment.duration,
            tick_tolerance,
            allow_loss: !self.status.ran_to_the_end(),
            clocks: self.experiment.clocks,
            planned_down: Some(self.experiment.down_windows()),
        }
    }

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

/// What a machine counted over its run: its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineCounts {
    /// Ticks run.
    pub ticks: u64,
    /// Messages sent (one per recipient).
    pub sent: u64,
    /// Messages processed by a tick.
    pub processed: u64,
    /// Messages logged as unprocessed at the end.
    pub unprocessed: u64,
    /// Messages refused because the queue was at its cap.
    pub refused: u64,
    /// Messages to peers declared gone that were never written to them, by peer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unsent: BTreeMap<MachineId, u64>,
    /// Peers whose connection ended before the deadline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disconnected: Vec<MachineId>,
    /// Connections refused (a bad hello, or too many waiting for theirs).
    pub refused_connections: u64,
    /// Whether ticking stopped before the deadline (a signal, a full disk).
    pub stopped_early: bool,
}

/// `machine_<id>.json`: what a machine started by hand (`clocklab machine`)
/// was and how it went, written beside its log so that the analysis knows
/// its schedule (start instant and deadline) without an orchestrator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineManifest {
    /// The clocklab version that made it.
    pub clocklab_version: String,
    /// The machine's number.
    pub id: MachineId,
    /// How many machines the run has.
    pub n_machines: u32,
    /// The host it listened on.
    pub host: String,
    /// The port it listened on.
    pub port: u16,
    /// Its drawn clock rate, in ticks per second.
    pub rate: u32,
    /// Its seed (the rate is the first draw, the events follow).
    pub seed: u64,
    /// Rates were drawn from `1..=max_clock_rate`.
    pub max_clock_rate: u32,
    /// Event draws were from `1..=max_event_num`.
    pub max_event_num: u32,
    /// The clocks it kept, as in the configuration (`["lamport", "vector"]`).
    #[serde(with = "crate::config::clock_names")]
    pub clocks: ClockKinds,
    /// The name of the configuration's experiment it ran (absent in the
    /// manifests of versions before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// Its physical clock's offset from true time at the start, in microseconds.
    pub clock_offset_us: i64,
    /// Its physical clock's drift, in parts per million.
    pub clock_drift_ppm: f64,
    /// How long it was to tick, in seconds.
    pub duration: f64,
    /// The instant its schedule started (tick 0; RFC 3339, UTC, microseconds),
    /// shared by every machine of the run.
    pub started_at: String,
    /// The instant its schedule ended: `started_at` plus `duration`.
    pub deadline_at: String,
    /// When it wrote `Stopped`.
    pub ended_at: String,
    /// How its run went, as far as this machine saw it.
    pub status: RunStatus,
    /// What it counted.
    pub counts: MachineCounts,
    /// How late its ticks ran.
    pub tick_lateness_us: clocklab_driver::LatenessSummary,
}

/// The key of a run manifest's `extra` that marks one made from the
/// manifests of machines started by hand.
pub const STARTED_BY_HAND: &str = "started_by_hand";

impl RunManifest {
    /// The manifest of a run whose machines were started by hand, made from
    /// the manifests they wrote (`manifests`, by id; `folder` names the
    /// experiment when they do not): their settings, rates, seeds and
    /// clocks, the start instant they agreed on, and the gravest status any
    /// of them saw (failed, interrupted, then degraded, naming the machine
    /// that fell furthest behind). `None` without a manifest.
    pub fn of_machines(manifests: &BTreeMap<MachineId, MachineManifest>, folder: &str) -> Option<RunManifest> {
        let first = manifests.values().next()?;
        let gravest = |name: &'static str| manifests.values().filter(move |m| m.status.name() == name);
        let status = gravest("failed")
            .chain(gravest("interrupted"))
            .map(|m| m.status.clone())
            .next()
            .or_else(|| {
                gravest("degraded")
                    .max_by_key(|m| match m.status {
                        RunStatus::Degraded { lateness_us_max, .. } => (lateness_us_max, std::cmp::Reverse(m.id)),
                        _ => (0, std::cmp::Reverse(m.id)),
                    })
                    .map(|m| m.status.clone())
            })
            .unwrap_or(RunStatus::Ok);
        Some(RunManifest {
            clocklab_version: first.clocklab_version.clone(),
            runtime: Runtime::Real,
            experiment: Experiment {
                name: first.experiment.clone().unwrap_or_else(|| folder.to_string()),
                machines: first.n_machines,
                max_clock_rate: first.max_clock_rate,
                max_event_num: first.max_event_num,
                runs: 1,
                duration: first.duration,
                seed: None,
                control: None,
                clocks: first.clocks,
                physical_clock: Default::default(),
                faults: Vec::new(),
            },
            run_idx: 1,
            seeds: SeedTree {
                suite: 0,
                experiment: 0,
                run: 0,
                machines: manifests.iter().map(|(&id, m)| (id, m.seed)).collect(),
            },
            machines: manifests
                .values()
                .map(|m| MachineOutcome {
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

    /// Whether it was made from the manifests of machines started by hand.
    pub fn started_by_hand(&self) -> bool {
        self.extra.contains_key(STARTED_BY_HAND)
    }

    /// The name of a run: `run_<k>` for a run of a suite; for machines
    /// started by hand, which have no run number, the instant they started
    /// (`started 2026-12-07 10:00:00 UTC`).
    pub fn run_name(&self) -> String {
        if !self.started_by_hand() {
            return format!("run_{}", self.run_idx);
        }
        match (self.started_at.get(..10), self.started_at.get(11..19)) {
            (Some(date), Some(time)) => format!("started {date} {time} UTC"),
            _ => format!("started {}", self.started_at),
        }
    }
}

impl MachineManifest {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest always serialises");
        text.push('\n');
        text
    }

    /// Parses a machine manifest.
    pub fn from_json(text: &str) -> Result<MachineManifest, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_driver::BehindSummary;

    /// Three machines started by hand, two of them late: the run's status
    /// names the one that fell furthest behind, whatever its id.
    #[test]
    fn a_run_of_machines_started_by_hand_names_its_worst_machine() {
        let manifest = |id: MachineId, status: RunStatus| MachineManifest {
            clocklab_version: "0.1.0".into(),
            id,
            n_machines: 3,
            host: "127.0.0.1".into(),
            port: 5000 + id as u16,
            rate: id,
            seed: 100 + u64::from(id),
            max_clock_rate: 6,
            max_event_num: 10,
            clocks: ClockKinds::LAMPORT,
            experiment: Some("lab".into()),
            clock_offset_us: 0,
            clock_drift_ppm: 0.0,
            duration: 60.0,
            started_at: "2026-12-07T10:00:00.000000Z".into(),
            deadline_at: "2026-12-07T10:01:00.000000Z".into(),
            ended_at: format!("2026-12-07T10:01:0{id}.000000Z"),
            status,
            counts: MachineCounts::default(),
            tick_lateness_us: Default::default(),
        };
        let late = |id: MachineId, us: u64| {
            let behind = BehindSummary { episodes: 1, lateness_us_max: us, paused_episodes: 0 };
            RunStatus::from_behind(&BTreeMap::from([(id, behind)]))
        };
        let manifests = BTreeMap::from([
            (1, manifest(1, late(1, 566_000))),
            (2, manifest(2, RunStatus::Ok)),
            (3, manifest(3, late(3, 2_749_000))),
        ]);
        let run = RunManifest::of_machines(&manifests, "logs").unwrap();
        let RunStatus::Degraded { cause, lateness_us_max } = &run.status else { panic!("{:?}", run.status) };
        assert_eq!(*lateness_us_max, 2_749_000);
        assert!(cause.starts_with("machine 3 fell behind its schedule by up to 2749.0 ms"), "{cause}");
        assert_eq!((run.experiment.name.as_str(), run.run_name().as_str()), ("lab", "started 2026-12-07 10:00:00 UTC"));
        assert_eq!(run.seeds.machines, BTreeMap::from([(1, 101), (2, 102), (3, 103)]));
        assert_eq!(run.ended_at, "2026-12-07T10:01:03.000000Z");
        // A failure is graver than any lateness.
        let mut failed = manifests.clone();
        failed.insert(2, manifest(2, RunStatus::Failed { cause: "machine 1 went away".into() }));
        assert_eq!(RunManifest::of_machines(&failed, "logs").unwrap().status.name(), "failed");
        assert!(RunManifest::of_machines(&BTreeMap::new(), "logs").is_none());
    }

    #[test]
    fn a_run_whose_machine_fell_behind_is_degraded_with_the_figure() {
        let on_time = BehindSummary::default();
        let late = BehindSummary { episodes: 2, lateness_us_max: 124_312, paused_episodes: 0 };
        assert_eq!(RunStatus::from_behind(&BTreeMap::from([(1, on_time), (2, on_time)])), RunStatus::Ok);
        let status = RunStatus::from_behind(&BTreeMap::from([(1, on_time), (2, late)]));
        let cause = "machine 2 fell behind its schedule by up to 124.3 ms (2 times; its late ticks ran back to back)";
        assert_eq!(status, RunStatus::Degraded { cause: cause.into(), lateness_us_max: 124_312 });
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!((json["status"].as_str(), json["cause"].as_str()), (Some("degraded"), Some(cause)));
        assert!(status.ran_to_the_end());
        assert_eq!(status.name(), "degraded");
    }
}

/// What the command line changed in the configuration of a results folder
/// (`command.json` beside `config.toml`, which holds the result): the
/// settings it set for every experiment and, per experiment, the values
/// they replaced. The report says what the flags did from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The command, as typed after `clocklab`.
    pub args: Vec<String>,
    /// The settings the command line set for every experiment, as
    /// (configuration key, value), in the order of the flags' help.
    pub set: Vec<(String, String)>,
    /// Per experiment, the keys whose value the command line changed and the
    /// value each had before.
    pub replaced: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl CommandRecord {
    /// The record as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a command record always serialises") + "\n"
    }

    /// Reads a record; `None` when it does not parse.
    pub fn from_json(text: &str) -> Option<CommandRecord> {
        serde_json::from_str(text).ok()
    }
}
