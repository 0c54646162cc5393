//! The configuration file and its validation.

use std::path::PathBuf;

use clocklab_faults::FaultSpec;
use clocklab_log::LogFormat;
use clocklab_model::ClockKinds;
use serde::{Deserialize, Serialize};

/// Which runtime executes the runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Real processes talking TCP, in real time.
    #[default]
    Real,
    /// The deterministic simulator, in virtual time.
    Sim,
}

/// Which log files each machine writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormats {
    /// `machine_<id>.log` only.
    #[default]
    Text,
    /// `machine_<id>.jsonl` only.
    Jsonl,
    /// Both files.
    Both,
}

impl LogFormats {
    /// The formats to write, text first.
    pub fn formats(self) -> Vec<LogFormat> {
        match self {
            LogFormats::Text => vec![LogFormat::Text],
            LogFormats::Jsonl => vec![LogFormat::Jsonl],
            LogFormats::Both => vec![LogFormat::Text, LogFormat::Jsonl],
        }
    }
}

/// How long the simulated network takes to deliver a message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DelayDistribution {
    /// Always the same delay.
    Constant {
        /// The delay, in microseconds.
        delay_us: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// The shortest delay, in microseconds.
        min_us: f64,
        /// The longest delay, in microseconds.
        max_us: f64,
    },
    /// A floor plus an exponential tail, with the given mean.
    Exponential {
        /// The shortest delay, in microseconds.
        min_us: f64,
        /// The mean delay (at least `min_us`), in microseconds.
        mean_us: f64,
    },
}

impl Default for DelayDistribution {
    /// Close to a message over loopback TCP between two processes.
    fn default() -> Self {
        DelayDistribution::Exponential { min_us: 30.0, mean_us: 60.0 }
    }
}

/// Settings of the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    /// Where virtual time starts, in microseconds since the Unix epoch.
    #[serde(default = "SimSettings::default_epoch_us")]
    pub epoch_us: i64,
    /// The network's delivery delay.
    #[serde(default)]
    pub network: DelayDistribution,
}

impl DelayDistribution {
    /// The longest delay this distribution can draw, in microseconds (see
    /// [`crate::limits::EXPONENTIAL_TAIL_MAX`] for the exponential tail).
    pub fn max_delay_us(&self) -> f64 {
        match *self {
            DelayDistribution::Constant { delay_us } => delay_us,
            DelayDistribution::Uniform { max_us, .. } => max_us,
            DelayDistribution::Exponential { min_us, mean_us } => {
                min_us + crate::limits::EXPONENTIAL_TAIL_MAX * (mean_us - min_us)
            }
        }
    }

    /// Its parameters by name, as a configuration file writes them.
    pub(crate) fn parameters(&self) -> Vec<(&'static str, f64)> {
        match *self {
            DelayDistribution::Constant { delay_us } => vec![("delay_us", delay_us)],
            DelayDistribution::Uniform { min_us, max_us } => vec![("min_us", min_us), ("max_us", max_us)],
            DelayDistribution::Exponential { min_us, mean_us } => vec![("min_us", min_us), ("mean_us", mean_us)],
        }
    }
}

impl SimSettings {
    /// 2026-01-01T00:00:00Z: a fixed epoch, so that the same seed gives the same bytes.
    pub const DEFAULT_EPOCH_US: i64 = 1_767_225_600_000_000;

    fn default_epoch_us() -> i64 {
        Self::DEFAULT_EPOCH_US
    }
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings { epoch_us: Self::DEFAULT_EPOCH_US, network: DelayDistribution::default() }
    }
}

/// How the machines' physical clocks stray from true time: each machine
/// draws its offset uniformly from `±offset_ms_max` and its drift from
/// `±drift_ppm_max`, from its own seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicalClockSettings {
    /// The largest offset from true time at the start, in milliseconds.
    #[serde(default)]
    pub offset_ms_max: f64,
    /// The largest drift, in parts per million (microseconds per second).
    #[serde(default)]
    pub drift_ppm_max: f64,
}

impl PhysicalClockSettings {
    /// Perfect clocks: every machine reads true time.
    pub fn is_perfect(&self) -> bool {
        self.offset_ms_max == 0.0 && self.drift_ppm_max == 0.0
    }

    /// The largest offset, in milliseconds: a day.
    pub const OFFSET_MS_MAX: f64 = 86_400_000.0;

    /// The largest drift, in parts per million: 10%.
    pub const DRIFT_PPM_MAX: f64 = 100_000.0;
}

/// The clock set as a list of names in a configuration file and a manifest:
/// `["lamport", "vector", "hlc"]`.
pub(crate) mod clock_names {
    use clocklab_model::ClockKinds;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kinds: &ClockKinds, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(kinds.names())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ClockKinds, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        ClockKinds::parse(names.iter().map(String::as_str)).map_err(serde::de::Error::custom)
    }

    pub fn is_lamport_only(kinds: &ClockKinds) -> bool {
        *kinds == ClockKinds::LAMPORT
    }
}

/// One experiment: a setting of the model, run several times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Its name, also its folder's name.
    pub name: String,
    /// How many machines each run has.
    pub machines: u32,
    /// Rates are drawn from `1..=max_clock_rate`.
    pub max_clock_rate: u32,
    /// Event draws are from `1..=max_event_num`.
    pub max_event_num: u32,
    /// How many runs.
    pub runs: u32,
    /// How long each run ticks, in seconds.
    pub duration: f64,
    /// A fixed seed for this experiment; otherwise derived from the suite's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The experiment this one varies: it draws that experiment's seeds
    /// (the same rates and event draws, up to where the settings differ),
    /// and the report compares the two run by run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// The clocks every machine keeps (Lamport's always).
    #[serde(default, with = "clock_names", skip_serializing_if = "clock_names::is_lamport_only")]
    pub clocks: ClockKinds,
    /// How far the machines' physical clocks stray from true time.
    #[serde(default, skip_serializing_if = "PhysicalClockSettings::is_perfect")]
    pub physical_clock: PhysicalClockSettings,
    /// The faults every run of it goes through (see `clocklab_faults`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
}

impl Experiment {
    /// When each machine is down by the experiment's faults, in
    /// microseconds after the start (`[from, to)`; machines never down are
    /// left out): what the log check expects (see `clocklab_driver::Life`).
    pub fn down_windows(&self) -> std::collections::BTreeMap<clocklab_model::MachineId, Vec<(u64, u64)>> {
        let duration_us = clocklab_model::schedule::duration_us(self.duration);
        let plan = clocklab_faults::FaultPlan::new(&self.faults, 0, duration_us);
        let faulted: std::collections::BTreeSet<clocklab_model::MachineId> =
            self.faults.iter().filter_map(FaultSpec::machine).collect();
        faulted
            .into_iter()
            .filter_map(|id| {
                let windows = clocklab_driver::Life::of(&plan, id, duration_us).down_windows();
                (!windows.is_empty()).then_some((id, windows))
            })
            .collect()
    }
}

/// A whole configuration, resolved and checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The address machines listen on (loopback unless set).
    pub host: String,
    /// Fixed ports, one per machine, for `clocklab machine` started by hand;
    /// empty means `clocklab run` picks free ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// The runtime.
    pub runtime: Runtime,
    /// The log files to write.
    pub log_format: LogFormats,
    /// The suite's seed; random (and recorded) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The secret run token of machines started by hand (32 hexadecimal
    /// digits); without one, a token derived from `host` and `ports`. It is
    /// never written out: not by `clocklab config`, not in a results folder.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// How long a machine waits for its peers to come up, in seconds.
    pub connect_timeout: f64,
    /// How many messages a machine's queue holds before it refuses (and
    /// counts) new ones.
    #[serde(default = "default_queue_cap")]
    pub queue_cap: usize,
    /// The simulator's settings.
    #[serde(default)]
    pub sim: SimSettings,
    /// The experiments, in order.
    pub experiments: Vec<Experiment>,
}

/// A bad configuration: one line that names the file, and the key and the
/// value when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The extension is neither `.json` nor `.toml`.
    #[error("{file}: unknown configuration format (use a .json or .toml file)")]
    Format {
        /// The file.
        file: PathBuf,
    },
    /// The file is not well-formed JSON or TOML.
    #[error("{file}:{line}:{column}: malformed {format}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// `JSON` or `TOML`.
        format: &'static str,
        /// The 1-based line of the error.
        line: usize,
        /// The 1-based column (in characters) of the error.
        column: usize,
        /// The parser's message, without its position.
        message: String,
    },
    /// A key that no table of the configuration has.
    #[error("{file}: unknown key `{key}`{hint}")]
    UnknownKey {
        /// The file.
        file: PathBuf,
        /// The key with its path (`experiments[1].max_evnt_num`).
        key: String,
        /// ` (did you mean `x`?)`, or the keys the table takes.
        hint: String,
    },
    /// A value of the wrong type, or one its type cannot hold.
    #[error("{file}: key `{key}` = {value}: {message}")]
    Type {
        /// The file.
        file: PathBuf,
        /// The key with its path.
        key: String,
        /// The value found, as written.
        value: String,
        /// What was expected.
        message: String,
    },
    /// The file does not have the shape of a configuration.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of its range.
    #[error("{file}: key `{key}` = {value}: {reason}")]
    Invalid {
        /// The file, or `the command line` and the like.
        file: String,
        /// The key as written (`max_clock_rate`, `experiments[2].runs`).
        key: String,
        /// The value found.
        value: String,
        /// What it must be.
        reason: String,
    },
}

impl ConfigError {
    /// Whether the file is not there at all (a run folder without a
    /// manifest is no error: the reference's have none).
    pub fn is_missing(&self) -> bool {
        matches!(self, ConfigError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The default queue cap: far more than any sound run queues, few enough
/// that a peer flooding a machine cannot exhaust its memory.
pub(crate) fn default_queue_cap() -> usize {
    1_000_000
}

impl Default for Config {
    /// The built-in suite: four experiments, 5 runs of 60 s each, 3 machines.
    fn default() -> Config {
        let experiment = |name: &str, max_clock_rate, max_event_num| Experiment {
            name: name.to_string(),
            machines: 3,
            max_clock_rate,
            max_event_num,
            runs: 5,
            duration: 60.0,
            seed: None,
            control: None,
            clocks: ClockKinds::LAMPORT,
            physical_clock: PhysicalClockSettings::default(),
            faults: Vec::new(),
        };
        Config {
            host: "127.0.0.1".to_string(),
            ports: Vec::new(),
            runtime: Runtime::Real,
            log_format: LogFormats::Text,
            seed: None,
            token: None,
            connect_timeout: 10.0,
            queue_cap: default_queue_cap(),
            sim: SimSettings::default(),
            experiments: vec![
                experiment("baseline", 6, 10),
                experiment("small-rate-variation", 3, 10),
                experiment("fewer-internal-events", 6, 5),
                experiment("both", 3, 5),
            ],
        }
    }
}

impl Config {
    /// The built-in suite of faults (`clocklab run --suite faults`): the
    /// classic three machines (rates up to 6, events up to 10), every clock,
    /// one 30 s run per experiment, each fault from 10 s, each experiment
    /// on the seeds of the first, `no-faults`, its control:
    ///
    /// - `no-faults`: the same machines without a fault;
    /// - `partition-heal`: machine 1 cut off from machines 2 and 3 until
    ///   20 s, its messages held and delivered at the heal;
    /// - `lossy-link`: a third of the messages between machines 1 and 2 lost;
    /// - `crash-fresh`: machine 2 down from 10 s to 15 s, back with its clocks at 0;
    /// - `crash-recovered`: the same, back with its clocks as they were;
    /// - `long-pause`: machine 1 stopped from 10 s to 18 s;
    /// - `clock-step`: physical clocks up to 100 ms apart, and machine 3's
    ///   stepped back by 2 s at 15 s.
    pub fn faults_suite() -> Config {
        use clocklab_faults::{Direction, PartitionMode, RestartClock};
        let base = Config::default().experiments.remove(0);
        const CONTROL: &str = "no-faults";
        let experiment = |name: &str, faults: Vec<FaultSpec>| Experiment {
            name: name.to_string(),
            runs: 1,
            duration: 30.0,
            clocks: ClockKinds::ALL,
            control: Some(CONTROL.to_string()),
            faults,
            ..base.clone()
        };
        let crash = |restart_clock| FaultSpec::Crash { machine: 2, start: 10.0, end: Some(15.0), restart_clock };
        let mut clock_step = experiment(
            "clock-step",
            vec![FaultSpec::Clock { machine: 3, start: 15.0, step_ms: Some(-2000.0), drift_ppm: None }],
        );
        clock_step.physical_clock = PhysicalClockSettings { offset_ms_max: 100.0, drift_ppm_max: 200.0 };
        Config {
            experiments: vec![
                Experiment { control: None, ..experiment(CONTROL, Vec::new()) },
                experiment(
                    "partition-heal",
                    vec![FaultSpec::Partition {
                        start: 10.0,
                        end: Some(20.0),
                        groups: vec![vec![1], vec![2, 3]],
                        direction: Direction::Both,
                        mode: PartitionMode::Hold,
                    }],
                ),
                experiment(
                    "lossy-link",
                    vec![FaultSpec::Loss {
                        start: 10.0,
                        end: None,
                        links: Some(vec![[1, 2], [2, 1]]),
                        probability: 1.0 / 3.0,
                    }],
                ),
                experiment("crash-fresh", vec![crash(RestartClock::Fresh)]),
                experiment("crash-recovered", vec![crash(RestartClock::Recovered)]),
                experiment("long-pause", vec![FaultSpec::Pause { machine: 1, start: 10.0, end: 18.0 }]),
                clock_step,
            ],
            ..Config::default()
        }
    }

    /// The configuration as TOML, for `clocklab config --print-default`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a Config always serialises")
    }

    /// The configuration as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Config always serialises")
    }

    /// The experiment called `name`.
    pub fn experiment(&self, name: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|exp| exp.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::tests::load;

    #[test]
    fn default_is_the_four_experiment_suite_and_round_trips() {
        let config = Config::default();
        let rows: Vec<_> = config
            .experiments
            .iter()
            .map(|e| (e.name.as_str(), e.max_clock_rate, e.max_event_num, e.runs, e.duration))
            .collect();
        assert_eq!(
            rows,
            [
                ("baseline", 6, 10, 5, 60.0),
                ("small-rate-variation", 3, 10, 5, 60.0),
                ("fewer-internal-events", 6, 5, 5, 60.0),
                ("both", 3, 5, 5, 60.0)
            ]
        );
        assert_eq!(load("c.toml", &config.to_toml()).unwrap(), config);
        assert_eq!(load("c.json", &config.to_json()).unwrap(), config);
    }

    #[test]
    fn clocks_and_physical_clocks_are_experiment_keys() {
        let config = load(
            "c.toml",
            "clocks = [\"lamport\", \"vector\"]\n[physical_clock]\noffset_ms_max = 5\n\
             [[experiments]]\nname = \"a\"\n[[experiments]]\nname = \"b\"\nclocks = [\"hlc\"]\n",
        )
        .unwrap();
        assert_eq!(config.experiments[0].clocks, ClockKinds { vector: true, hlc: false });
        assert_eq!(config.experiments[1].clocks, ClockKinds { vector: false, hlc: true });
        assert_eq!(config.experiments[1].physical_clock.offset_ms_max, 5.0);
        assert_eq!(load("c.toml", &config.to_toml()).unwrap(), config);
        // The default stays out of the printed configuration, so default manifests do not change.
        assert!(!Config::default().to_toml().contains("clocks"));
        let error = load("c.json", r#"{"clocks": ["lamport", "vectr"]}"#).unwrap_err().to_string();
        assert!(error.contains("key `clocks`") && error.contains("unknown clock `vectr`"), "{error}");
        let error = load("c.json", r#"{"physical_clock": {"drift_ppm_max": -1}}"#).unwrap_err().to_string();
        assert!(
            error.ends_with(
                "key `physical_clock.drift_ppm_max` = -1: must be a number of parts per million in 0..=100000 (10%)"
            ),
            "{error}"
        );
        let error = load("c.json", r#"{"physical_clock": {"offset_ms": 3}}"#).unwrap_err().to_string();
        assert!(error.contains("unknown key `physical_clock.offset_ms` (did you mean `offset_ms_max`?)"), "{error}");
    }
}
