//! The configuration file and its validation.

use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;
use clocklab_model::ClockKinds;
use serde::{Deserialize, Serialize};

use crate::source::{self, Field, Format, Schema};

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
mod clock_names {
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
    /// The clocks every machine keeps (Lamport's always).
    #[serde(default, with = "clock_names", skip_serializing_if = "clock_names::is_lamport_only")]
    pub clocks: ClockKinds,
    /// How far the machines' physical clocks stray from true time.
    #[serde(default, skip_serializing_if = "PhysicalClockSettings::is_perfect")]
    pub physical_clock: PhysicalClockSettings,
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

/// The file as written: every key optional; experiment keys at the top level
/// are defaults for every experiment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    host: Option<String>,
    // Wider than a port so that an out-of-range port is reported as such.
    ports: Option<Vec<i64>>,
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
    #[serde(default, with = "optional_clock_names")]
    clocks: Option<ClockKinds>,
    physical_clock: Option<PhysicalClockSettings>,
    experiments: Option<Vec<ExperimentFile>>,
}

/// An optional clock list, as written in a file.
mod optional_clock_names {
    use clocklab_model::ClockKinds;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ClockKinds>, D::Error> {
        super::clock_names::deserialize(deserializer).map(Some)
    }
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
    #[serde(default, with = "optional_clock_names")]
    clocks: Option<ClockKinds>,
    physical_clock: Option<PhysicalClockSettings>,
}

impl ConfigFile {
    /// Checks the values as written, so that an error names the key the user
    /// wrote (`max_clock_rate` at the top level, `experiments[1].runs` in a list).
    fn check(&self, source: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, value: String, reason: &str| ConfigError::Invalid {
            file: source.to_string(),
            key,
            value,
            reason: reason.to_string(),
        };
        for (idx, &port) in self.ports.iter().flatten().enumerate() {
            if !(1..=i64::from(u16::MAX)).contains(&port) {
                return Err(invalid(format!("ports[{idx}]"), port.to_string(), "must be a port in 1..=65535"));
            }
        }
        let defaults = ExperimentFile {
            name: None,
            machines: self.machines,
            max_clock_rate: self.max_clock_rate,
            max_event_num: self.max_event_num,
            runs: self.runs,
            duration: self.duration,
            seed: None,
            clocks: self.clocks,
            physical_clock: self.physical_clock,
        };
        defaults.check().map_err(|(key, value, reason)| invalid(key.to_string(), value, reason))?;
        for (idx, exp) in self.experiments.iter().flatten().enumerate() {
            exp.check().map_err(|(key, value, reason)| invalid(format!("experiments[{idx}].{key}"), value, reason))?;
        }
        Ok(())
    }
}

/// The keys of one experiment, in an `experiments` entry or at the top level.
const EXPERIMENT_FIELDS: &[Field] = &[
    Field::leaf("name"),
    Field::leaf("machines"),
    Field { name: "max_clock_rate", aliases: &["MAX_CLOCK_RATE"], schema: Schema::Any },
    Field { name: "max_event_num", aliases: &["MAX_EVENT_NUM"], schema: Schema::Any },
    Field::leaf("runs"),
    Field { name: "duration", aliases: &["DURATION"], schema: Schema::Any },
    Field::leaf("seed"),
    Field::leaf("clocks"),
    Field { name: "physical_clock", aliases: &[], schema: Schema::Table(PHYSICAL_CLOCK_FIELDS) },
];

/// The keys of `physical_clock`.
const PHYSICAL_CLOCK_FIELDS: &[Field] = &[Field::leaf("offset_ms_max"), Field::leaf("drift_ppm_max")];

/// The keys of `sim.network`, by `kind`.
const NETWORK_VARIANTS: &[(&str, &[Field])] = &[
    ("constant", &[Field::leaf("delay_us")]),
    ("uniform", &[Field::leaf("min_us"), Field::leaf("max_us")]),
    ("exponential", &[Field::leaf("min_us"), Field::leaf("mean_us")]),
];

/// The keys of `sim`.
const SIM_FIELDS: &[Field] = &[
    Field::leaf("epoch_us"),
    Field { name: "network", aliases: &[], schema: Schema::Tagged { tag: "kind", variants: NETWORK_VARIANTS } },
];

/// Every key a configuration file may hold, for the unknown-key check. The
/// typed structs above deny unknown fields too; a test keeps the two in step.
const FILE_SCHEMA: Schema = Schema::Table(&[
    Field::leaf("host"),
    Field::leaf("ports"),
    Field::leaf("runtime"),
    Field::leaf("log_format"),
    Field::leaf("seed"),
    Field::leaf("connect_timeout"),
    Field::leaf("queue_cap"),
    Field { name: "sim", aliases: &[], schema: Schema::Table(SIM_FIELDS) },
    Field::leaf("machines"),
    Field { name: "max_clock_rate", aliases: &["MAX_CLOCK_RATE"], schema: Schema::Any },
    Field { name: "max_event_num", aliases: &["MAX_EVENT_NUM"], schema: Schema::Any },
    Field::leaf("runs"),
    Field { name: "duration", aliases: &["DURATION"], schema: Schema::Any },
    Field::leaf("clocks"),
    Field { name: "physical_clock", aliases: &[], schema: Schema::Table(PHYSICAL_CLOCK_FIELDS) },
    Field { name: "experiments", aliases: &[], schema: Schema::ArrayOf(&Schema::Table(EXPERIMENT_FIELDS)) },
]);

/// A value that breaks a rule: the key's last part, the value, and the rule.
type Broken = (&'static str, String, &'static str);

impl ExperimentFile {
    /// Checks the values this entry sets (unset ones come from elsewhere).
    fn check(&self) -> Result<(), Broken> {
        if let Some(machines) = self.machines
            && machines < 2
        {
            return Err(("machines", machines.to_string(), "must be at least 2"));
        }
        if self.max_clock_rate == Some(0) {
            return Err(("max_clock_rate", "0".into(), "must be at least 1"));
        }
        if let Some(max_event_num) = self.max_event_num
            && max_event_num < 3
        {
            return Err((
                "max_event_num",
                max_event_num.to_string(),
                "must be at least 3 (1, 2 and 3 are the send events)",
            ));
        }
        if self.runs == Some(0) {
            return Err(("runs", "0".into(), "must be at least 1"));
        }
        if let Some(duration) = self.duration
            && !(duration.is_finite() && duration > 0.0)
        {
            return Err(("duration", duration.to_string(), "must be a positive number of seconds"));
        }
        if let Some(physical) = self.physical_clock {
            let offset = physical.offset_ms_max;
            if !(offset.is_finite() && (0.0..=PhysicalClockSettings::OFFSET_MS_MAX).contains(&offset)) {
                return Err((
                    "physical_clock.offset_ms_max",
                    offset.to_string(),
                    "must be a number of milliseconds in 0..=86400000 (a day)",
                ));
            }
            let drift = physical.drift_ppm_max;
            if !(drift.is_finite() && (0.0..=PhysicalClockSettings::DRIFT_PPM_MAX).contains(&drift)) {
                return Err((
                    "physical_clock.drift_ppm_max",
                    drift.to_string(),
                    "must be a number of parts per million in 0..=100000 (10%)",
                ));
            }
        }
        Ok(())
    }
}

impl From<&Experiment> for ExperimentFile {
    fn from(exp: &Experiment) -> ExperimentFile {
        ExperimentFile {
            name: Some(exp.name.clone()),
            machines: Some(exp.machines),
            max_clock_rate: Some(exp.max_clock_rate),
            max_event_num: Some(exp.max_event_num),
            runs: Some(exp.runs),
            duration: Some(exp.duration),
            seed: exp.seed,
            clocks: Some(exp.clocks),
            physical_clock: Some(exp.physical_clock),
        }
    }
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
            clocks: ClockKinds::LAMPORT,
            physical_clock: PhysicalClockSettings::default(),
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
    ///
    /// Every error is one line naming the file, and the key and value when
    /// there is one; a syntax error gives its line and column.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let format = match extension.as_deref() {
            Some("json") => Format::Json,
            Some("toml") => Format::Toml,
            _ => return Err(ConfigError::Format { file: path.to_path_buf() }),
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
        let file: ConfigFile = source::parse(path, &text, format, &FILE_SCHEMA)?;
        let source = path.display().to_string();
        file.check(&source)?;
        let config = Config::from_file(file);
        config.validate(&source)?;
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
            clocks: file.clocks,
            physical_clock: file.physical_clock,
        };
        let resolve = |exp: &ExperimentFile, fallback: &Experiment| Experiment {
            name: exp.name.clone().or_else(|| defaults.name.clone()).unwrap_or_else(|| fallback.name.clone()),
            machines: exp.machines.or(defaults.machines).unwrap_or(fallback.machines),
            max_clock_rate: exp.max_clock_rate.or(defaults.max_clock_rate).unwrap_or(fallback.max_clock_rate),
            max_event_num: exp.max_event_num.or(defaults.max_event_num).unwrap_or(fallback.max_event_num),
            runs: exp.runs.or(defaults.runs).unwrap_or(fallback.runs),
            duration: exp.duration.or(defaults.duration).unwrap_or(fallback.duration),
            seed: exp.seed,
            clocks: exp.clocks.or(defaults.clocks).unwrap_or(fallback.clocks),
            physical_clock: exp.physical_clock.or(defaults.physical_clock).unwrap_or(fallback.physical_clock),
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
            // `ConfigFile::check` has made sure that every port fits.
            ports: file.ports.unwrap_or_default().into_iter().map(|port| port as u16).collect(),
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
            if let Err((key, value, reason)) = ExperimentFile::from(exp).check() {
                return invalid(
                    format!("experiments[{idx}].{key}"),
                    value,
                    &format!("{reason} (experiment `{}`)", exp.name),
                );
            }
            if !self.ports.is_empty() && self.ports.len() != exp.machines as usize {
                return invalid(
                    "ports".into(),
                    format!("{:?}", self.ports),
                    &format!("must list one port per machine (experiment `{}` has {})", exp.name, exp.machines),
                );
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
            ("c.json", r#"{"max_clock_rate": 0}"#, "c.json: key `max_clock_rate` = 0: must be at least 1"),
            (
                "c.json",
                r#"{"max_event_num": 2}"#,
                "c.json: key `max_event_num` = 2: must be at least 3 (1, 2 and 3 are the send events)",
            ),
            ("c.json", r#"{"machines": 1}"#, "c.json: key `machines` = 1: must be at least 2"),
            ("c.json", r#"{"duration": -1}"#, "c.json: key `duration` = -1: must be a positive number of seconds"),
            ("c.toml", "duration = 0", "c.toml: key `duration` = 0: must be a positive number of seconds"),
            ("c.toml", "duration = nan", "c.toml: key `duration` = NaN: must be a positive number of seconds"),
            ("c.toml", "runs = 0", "c.toml: key `runs` = 0: must be at least 1"),
            (
                "c.toml",
                "[[experiments]]\nname = \"a\"\n[[experiments]]\nname = \"b\"\nmax_clock_rate = 0\n",
                "c.toml: key `experiments[1].max_clock_rate` = 0: must be at least 1",
            ),
            (
                "c.json",
                r#"{"ports": [5000, 5000, 5001]}"#,
                "c.json: key `ports[1]` = 5000: is used twice: each machine needs its own port",
            ),
            (
                "c.json",
                r#"{"ports": [5000, 5001]}"#,
                "c.json: key `ports` = [5000, 5001]: must list one port per machine (experiment `experiment` has 3)",
            ),
            ("c.json", r#"{"ports": [70000, 1, 2]}"#, "c.json: key `ports[0]` = 70000: must be a port in 1..=65535"),
            ("c.json", r#"{"ports": [1, 0, 2]}"#, "c.json: key `ports[1]` = 0: must be a port in 1..=65535"),
            ("c.toml", "ports = [1, 2, -3]", "c.toml: key `ports[2]` = -3: must be a port in 1..=65535"),
            ("c.yaml", "runs: 1", "c.yaml: unknown configuration format (use a .json or .toml file)"),
        ];
        for (name, text, want) in cases {
            let message = load(name, text).unwrap_err().to_string();
            assert!(message.ends_with(want), "{text}: {message}");
        }
        let missing = Config::load(Path::new("/nonexistent/clocklab.toml")).unwrap_err().to_string();
        assert_eq!(missing, "/nonexistent/clocklab.toml: cannot read");
    }

    #[test]
    fn unknown_keys_are_named_with_their_path_and_the_nearest_key() {
        let cases = [
            (
                "c.json",
                r#"{"max_clock_rat": 6}"#,
                "c.json: unknown key `max_clock_rat` (did you mean `max_clock_rate`?)",
            ),
            ("c.toml", "MAX_EVENT_NUMS = 6", "c.toml: unknown key `MAX_EVENT_NUMS` (did you mean `max_event_num`?)"),
            (
                "c.toml",
                "[[experiments]]\nname = \"a\"\n[[experiments]]\nmax_evnt_num = 3\n",
                "c.toml: unknown key `experiments[1].max_evnt_num` (did you mean `max_event_num`?)",
            ),
            (
                "c.json",
                r#"{"experiments": [{"name": "a", "durations": 3}]}"#,
                "c.json: unknown key `experiments[0].durations` (did you mean `duration`?)",
            ),
            ("c.toml", "[sim]\nnetwrk = 1\n", "c.toml: unknown key `sim.netwrk` (did you mean `network`?)"),
            (
                "c.toml",
                "[sim.network]\nkind = \"constant\"\nx = 3\n",
                "c.toml: unknown key `sim.network.x` (expected one of `kind`, `delay_us`)",
            ),
            (
                "c.toml",
                "[sim.network]\nkind = \"uniform\"\nmean_us = 3\n",
                "c.toml: unknown key `sim.network.mean_us` (did you mean `max_us`?)",
            ),
            (
                "c.toml",
                "colour = 1",
                "c.toml: unknown key `colour` (expected one of `host`, `ports`, `runtime`, `log_format`, `seed`, \
                 `connect_timeout`, `queue_cap`, `sim`, `machines`, `max_clock_rate`, `max_event_num`, `runs`, `duration`, \
                 `clocks`, `physical_clock`, `experiments`)",
            ),
        ];
        for (name, text, want) in cases {
            let message = load(name, text).unwrap_err().to_string();
            assert!(message.ends_with(want), "{text}: {message}");
        }
    }

    #[test]
    fn wrong_types_name_key_and_value() {
        let cases = [
            (
                "c.json",
                r#"{"max_clock_rate": "six"}"#,
                "c.json: key `max_clock_rate` = \"six\": wrong type: expected a whole number (u32)",
            ),
            (
                "c.toml",
                "[[experiments]]\nruns = 2.5\n",
                "c.toml: key `experiments[0].runs` = 2.5: wrong type: expected a whole number (u32)",
            ),
            (
                "c.json",
                r#"{"machines": -3}"#,
                "c.json: key `machines` = -3: out of range: expected a whole number (u32)",
            ),
            ("c.json", r#"{"ports": 5}"#, "c.json: key `ports` = 5: wrong type: expected an array"),
            (
                "c.toml",
                "runtime = \"rael\"",
                "c.toml: key `runtime` = \"rael\": unknown variant `rael`, expected `real` or `sim`",
            ),
            (
                "c.json",
                r#"{"sim": {"network": {"delay_us": 4}}}"#,
                "c.json: key `sim.network` = {delay_us: 4}: missing field `kind`",
            ),
            ("c.json", "[1, 2]", "c.json: the file must hold a table of keys"),
        ];
        for (name, text, want) in cases {
            let message = load(name, text).unwrap_err().to_string();
            assert!(message.ends_with(want), "{text}: {message}");
        }
    }

    #[test]
    fn malformed_files_give_line_and_column() {
        let cases = [
            ("c.json", "{", "c.json:1:1: malformed JSON: EOF while parsing an object"),
            ("c.json", "", "c.json:1:1: malformed JSON: EOF while parsing a value"),
            ("c.json", "{\n  \"runs\": 1,\n  \"duration\" 3\n}", "c.json:3:14: malformed JSON: expected `:`"),
            ("c.toml", "runs = 1\nduration = = 3\n", "c.toml:2:12: malformed TOML: extra `=`, expected nothing"),
            ("c.toml", "[x\n", "c.toml:1:3: malformed TOML: unclosed table, expected `]`"),
            ("c.toml", "runs = 1\nruns = 2\n", "c.toml:2:1: malformed TOML: duplicate key `runs`"),
        ];
        for (name, text, want) in cases {
            let message = load(name, text).unwrap_err().to_string();
            assert!(message.ends_with(want), "{text:?}: {message}");
            assert!(!message.contains('\n'), "{text:?}: {message}");
        }
    }

    /// Every key the typed structs take is in the unknown-key schema and the
    /// other way round, so the two cannot drift apart.
    #[test]
    fn the_key_schema_matches_the_typed_structs() {
        use serde::de::{self, Deserializer, Visitor};

        /// A deserialiser that only records the field names it is asked for.
        struct FieldNames<'a>(&'a mut Vec<&'static str>);
        impl<'de> Deserializer<'de> for FieldNames<'_> {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("only structs"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.extend(fields);
                Err(de::Error::custom("done"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
                unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        fn fields_of<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
            let mut names = Vec::new();
            let _ = T::deserialize(FieldNames(&mut names));
            names.sort_unstable();
            names
        }
        fn schema_names(fields: &[Field]) -> Vec<&'static str> {
            let mut names: Vec<&'static str> =
                fields.iter().flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied())).collect();
            names.sort_unstable();
            names
        }
        // serde lists a field's aliases among its names only in some versions.
        let without_aliases = |mut names: Vec<&'static str>| {
            names.retain(|n| !n.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            names
        };
        let Schema::Table(top) = FILE_SCHEMA else { panic!("the file is a table") };
        assert_eq!(without_aliases(fields_of::<ConfigFile>()), without_aliases(schema_names(top)));
        assert_eq!(without_aliases(fields_of::<ExperimentFile>()), without_aliases(schema_names(EXPERIMENT_FIELDS)));
        assert_eq!(fields_of::<SimSettings>(), schema_names(SIM_FIELDS));
        assert_eq!(fields_of::<PhysicalClockSettings>(), schema_names(PHYSICAL_CLOCK_FIELDS));
        // Every key the schema knows is accepted by the typed step.
        let every_key = "host = \"h\"\nports = [1, 2, 3]\nruntime = \"sim\"\nlog_format = \"both\"\nseed = 1\n\
                         connect_timeout = 1\nmachines = 3\nmax_clock_rate = 2\nmax_event_num = 4\nruns = 1\n\
                         duration = 1\nMAX_CLOCK_RATE = 2\nMAX_EVENT_NUM = 4\nDURATION = 1\n\
                         [sim]\nepoch_us = 0\nnetwork = { kind = \"uniform\", min_us = 1, max_us = 2 }\n\
                         [[experiments]]\nname = \"a\"\nmachines = 3\nmax_clock_rate = 2\nmax_event_num = 4\n\
                         runs = 1\nduration = 1\nseed = 2\n";
        // The aliases and their keys together are a duplicate in serde's eyes; drop the aliases.
        let without_alias_lines: String =
            every_key.lines().filter(|l| !l.starts_with(char::is_uppercase)).map(|l| format!("{l}\n")).collect();
        load("c.toml", &without_alias_lines).unwrap();
        load("c.toml", "MAX_CLOCK_RATE = 2\nMAX_EVENT_NUM = 4\nDURATION = 1\n").unwrap();
        for (kind, extra) in [
            ("constant", "delay_us = 1"),
            ("uniform", "min_us = 1, max_us = 2"),
            ("exponential", "min_us = 1, mean_us = 2"),
        ] {
            load("c.toml", &format!("[sim]\nnetwork = {{ kind = \"{kind}\", {extra} }}\n")).unwrap();
        }
    }
}
