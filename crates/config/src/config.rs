//! The configuration file and its validation.

use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;
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

/// A bad configuration: names the file, the key and the value.
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
    /// The file does not parse, or a key is unknown or of the wrong type.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// The parser's message, with the key and position.
        message: String,
    },
    /// A value is out of its range.
    #[error("{file}: key `{key}` = {value}: {reason}")]
    Invalid {
        /// The file, or `built-in configuration` and the like.
        file: String,
        /// The key, with its experiment when it has one (`experiments[2].runs`).
        key: String,
        /// The value found.
        value: String,
        /// What it must be.
        reason: String,
    },
}

/// The file as written: every key optional; experiment keys at the top level
/// are defaults for every experiment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    host: Option<String>,
    ports: Option<Vec<u16>>,
    runtime: Option<Runtime>,
    log_format: Option<LogFormats>,
    seed: Option<u64>,
    connect_timeout: Option<f64>,
    queue_cap: Option<usize>,
    sim: Option<SimSettings>,
    // Experiment keys at the top level: defaults for every experiment.
    machines: Option<u32>,
    #[serde(alias = "MAX_CLOCK_RATE")]
    max_clock_rate: Option<u32>,
    #[serde(alias = "MAX_EVENT_NUM")]
    max_event_num: Option<u32>,
    runs: Option<u32>,
    #[serde(alias = "DURATION")]
    duration: Option<f64>,
    experiments: Option<Vec<ExperimentFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentFile {
    name: Option<String>,
    machines: Option<u32>,
    #[serde(alias = "MAX_CLOCK_RATE")]
    max_clock_rate: Option<u32>,
    #[serde(alias = "MAX_EVENT_NUM")]
    max_event_num: Option<u32>,
    runs: Option<u32>,
    #[serde(alias = "DURATION")]
    duration: Option<f64>,
    seed: Option<u64>,
}

/// The default queue cap: far more than any sound run queues, few enough
/// that a peer flooding a machine cannot exhaust its memory.
fn default_queue_cap() -> usize {
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
        };
        Config {
            host: "127.0.0.1".to_string(),
            ports: Vec::new(),
            runtime: Runtime::Real,
            log_format: LogFormats::Text,
            seed: None,
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
    /// Reads and checks a configuration file, JSON or TOML by its extension.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let parse_error = |message: String| ConfigError::Parse { file: path.to_path_buf(), message };
        let file: ConfigFile = match extension.as_deref() {
            Some("json") => serde_json::from_str(&text).map_err(|e| parse_error(e.to_string()))?,
            Some("toml") => {
                toml::from_str(&text).map_err(|e| parse_error(e.to_string().trim_end().replace('\n', " ")))?
            }
            _ => return Err(ConfigError::Format { file: path.to_path_buf() }),
        };
        let config = Config::from_file(file);
        config.validate(&path.display().to_string())?;
        Ok(config)
    }

    fn from_file(file: ConfigFile) -> Config {
        let builtin = Config::default();
        let defaults = &ExperimentFile {
            name: None,
            machines: file.machines,
            max_clock_rate: file.max_clock_rate,
            max_event_num: file.max_event_num,
            runs: file.runs,
            duration: file.duration,
            seed: None,
        };
        let resolve = |exp: &ExperimentFile, fallback: &Experiment| Experiment {
            name: exp.name.clone().or_else(|| defaults.name.clone()).unwrap_or_else(|| fallback.name.clone()),
            machines: exp.machines.or(defaults.machines).unwrap_or(fallback.machines),
            max_clock_rate: exp.max_clock_rate.or(defaults.max_clock_rate).unwrap_or(fallback.max_clock_rate),
            max_event_num: exp.max_event_num.or(defaults.max_event_num).unwrap_or(fallback.max_event_num),
            runs: exp.runs.or(defaults.runs).unwrap_or(fallback.runs),
            duration: exp.duration.or(defaults.duration).unwrap_or(fallback.duration),
            seed: exp.seed,
        };
        let baseline = &builtin.experiments[0];
        let experiments = match &file.experiments {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(idx, exp)| {
                    let fallback = Experiment { name: format!("experiment-{}", idx + 1), ..baseline.clone() };
                    resolve(exp, &fallback)
                })
                .collect(),
            // A file without a list (such as the reference's config.json) is one experiment.
            None => {
                let fallback = Experiment { name: "experiment".to_string(), ..baseline.clone() };
                vec![resolve(&ExperimentFile::default(), &fallback)]
            }
        };
        Config {
            host: file.host.unwrap_or(builtin.host),
            ports: file.ports.unwrap_or_default(),
            runtime: file.runtime.unwrap_or(builtin.runtime),
            log_format: file.log_format.unwrap_or(builtin.log_format),
            seed: file.seed,
            connect_timeout: file.connect_timeout.unwrap_or(builtin.connect_timeout),
            queue_cap: file.queue_cap.unwrap_or(builtin.queue_cap),
            sim: file.sim.unwrap_or_default(),
            experiments,
        }
    }

    /// Checks every value; `source` names where the configuration came from.
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, value: String, reason: &str| {
            Err(ConfigError::Invalid { file: source.to_string(), key, value, reason: reason.to_string() })
        };
        if self.host.trim().is_empty() {
            return invalid("host".into(), format!("{:?}", self.host), "must name an address");
        }
        if !(self.connect_timeout.is_finite() && self.connect_timeout > 0.0) {
            return invalid(
                "connect_timeout".into(),
                self.connect_timeout.to_string(),
                "must be a positive number of seconds",
            );
        }
        if self.queue_cap == 0 {
            return invalid("queue_cap".into(), "0".into(), "must be at least 1 message");
        }
        let delay_ok = match self.sim.network {
            DelayDistribution::Constant { delay_us } => delay_us.is_finite() && delay_us >= 0.0,
            DelayDistribution::Uniform { min_us, max_us } => {
                min_us.is_finite() && max_us.is_finite() && 0.0 <= min_us && min_us <= max_us
            }
            DelayDistribution::Exponential { min_us, mean_us } => {
                min_us.is_finite() && mean_us.is_finite() && 0.0 <= min_us && min_us <= mean_us
            }
        };
        if !delay_ok {
            return invalid(
                "sim.network".into(),
                format!("{:?}", self.sim.network),
                "delays must be finite, non-negative and ordered (min <= mean or max)",
            );
        }
        for (idx, &port) in self.ports.iter().enumerate() {
            if port == 0 {
                return invalid(format!("ports[{idx}]"), "0".into(), "must be a port in 1..=65535");
            }
            if self.ports[..idx].contains(&port) {
                return invalid(
                    format!("ports[{idx}]"),
                    port.to_string(),
                    "is used twice: each machine needs its own port",
                );
            }
        }
        if self.experiments.is_empty() {
            return invalid("experiments".into(), "[]".into(), "must list at least one experiment");
        }
        for (idx, exp) in self.experiments.iter().enumerate() {
            let key = |name: &str| format!("experiments[{idx}].{name} ({})", exp.name);
            let name_ok = !exp.name.is_empty()
                && exp.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !exp.name.starts_with('.');
            if !name_ok {
                return invalid(
                    format!("experiments[{idx}].name"),
                    format!("{:?}", exp.name),
                    "must be letters, digits, '-', '_' or '.' (it names a folder)",
                );
            }
            if self.experiments[..idx].iter().any(|other| other.name == exp.name) {
                return invalid(format!("experiments[{idx}].name"), format!("{:?}", exp.name), "is used twice");
            }
            if exp.machines < 2 {
                return invalid(key("machines"), exp.machines.to_string(), "must be at least 2");
            }
            if !self.ports.is_empty() && self.ports.len() != exp.machines as usize {
                return invalid(
                    "ports".into(),
                    format!("{:?}", self.ports),
                    &format!("must list one port per machine ({})", exp.machines),
                );
            }
            if exp.max_clock_rate == 0 {
                return invalid(key("max_clock_rate"), "0".into(), "must be at least 1");
            }
            if exp.max_event_num < 3 {
                return invalid(
                    key("max_event_num"),
                    exp.max_event_num.to_string(),
                    "must be at least 3 (1, 2 and 3 are the send events)",
                );
            }
            if exp.runs == 0 {
                return invalid(key("runs"), "0".into(), "must be at least 1");
            }
            if !(exp.duration.is_finite() && exp.duration > 0.0) {
                return invalid(key("duration"), exp.duration.to_string(), "must be a positive number of seconds");
            }
        }
        Ok(())
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

    fn load(name: &str, text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

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
    fn reference_style_json_is_one_experiment() {
        let config = load("config.json", r#"{"host": "127.0.0.1", "ports": [12345, 54321, 8080], "max_clock_rate": 6, "max_event_num": 10, "duration": 60}"#).unwrap();
        assert_eq!(config.ports, [12345, 54321, 8080]);
        assert_eq!(config.experiments.len(), 1);
        assert_eq!(config.experiments[0].max_clock_rate, 6);
        assert_eq!(config.experiments[0].duration, 60.0);
    }

    #[test]
    fn top_level_keys_are_experiment_defaults() {
        let config = load("c.toml", "duration = 5\nruns = 2\n[[experiments]]\nname = \"a\"\nmax_clock_rate = 2\n[[experiments]]\nname = \"b\"\nruns = 1\n").unwrap();
        assert_eq!(
            (config.experiments[0].duration, config.experiments[0].runs, config.experiments[0].max_clock_rate),
            (5.0, 2, 2)
        );
        assert_eq!((config.experiments[1].runs, config.experiments[1].max_clock_rate), (1, 6));
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            ("c.json", r#"{"max_clock_rate": 0}"#, "key `experiments[0].max_clock_rate (experiment)` = 0"),
            ("c.json", r#"{"max_event_num": 2}"#, "max_event_num (experiment)` = 2"),
            ("c.json", r#"{"machines": 1}"#, "machines (experiment)` = 1"),
            ("c.json", r#"{"duration": -1}"#, "duration (experiment)` = -1"),
            ("c.json", r#"{"duration": 0}"#, "duration (experiment)` = 0"),
            ("c.json", r#"{"ports": [5000, 5000, 5001]}"#, "key `ports[1]` = 5000"),
            ("c.json", r#"{"ports": [5000, 5001]}"#, "key `ports` = [5000, 5001]"),
            ("c.json", r#"{"max_clock_rat": 6}"#, "unknown field `max_clock_rat`"),
            ("c.json", r#"{"max_clock_rate": "six"}"#, "invalid type"),
            ("c.json", r#"{"ports": [70000]}"#, "70000"),
            ("c.json", "{", "EOF"),
            ("c.toml", "runs = 0", "runs (experiment)` = 0"),
            ("c.yaml", "runs: 1", "unknown configuration format"),
        ];
        for (name, text, want) in cases {
            let message = load(name, text).unwrap_err().to_string();
            assert!(message.contains(want), "{text}: {message}");
            assert!(message.contains(name), "{text}: {message}");
        }
        let missing = Config::load(Path::new("/nonexistent/clocklab.toml")).unwrap_err().to_string();
        assert!(missing.starts_with("/nonexistent/clocklab.toml: cannot read"), "{missing}");
    }
}
