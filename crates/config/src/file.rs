//! The configuration file as written: every key optional, the reference
//! implementation's spellings accepted, each value checked against its range
//! where the user wrote it, then resolved into a [`Config`].

use std::path::Path;

use clocklab_faults::FaultSpec;
use clocklab_model::ClockKinds;
use serde::{Deserialize, Deserializer};

use crate::config::{Config, ConfigError, Experiment, LogFormats, PhysicalClockSettings, Runtime, SimSettings};
use crate::limits;
use crate::source::{self, Field, Format, Schema};

/// The file as written: every key optional; experiment keys at the top level
/// are defaults for every experiment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(alias = "HOST")]
    host: Option<String>,
    #[serde(alias = "PORTS")]
    ports: Option<PortsFile>,
    runtime: Option<Runtime>,
    log_format: Option<LogFormats>,
    seed: Option<u64>,
    token: Option<String>,
    connect_timeout: Option<f64>,
    queue_cap: Option<usize>,
    sim: Option<SimSettings>,
    // Experiment keys at the top level: defaults for every experiment.
    machines: Option<u32>,
    #[serde(alias = "MAX_CLOCK_RATE")]
    max_clock_rate: Option<u32>,
    #[serde(alias = "MAX_EVENT_NUM")]
    max_event_num: Option<u32>,
    pub(crate) runs: Option<u32>,
    #[serde(alias = "DURATION", alias = "EXPERIMENT_DURATION")]
    duration: Option<f64>,
    #[serde(default, with = "optional_clock_names")]
    clocks: Option<ClockKinds>,
    physical_clock: Option<PhysicalClockSettings>,
    faults: Option<Vec<FaultSpec>>,
    experiments: Option<Vec<ExperimentFile>>,
}

/// `ports` as written: a list (`[5001, 5002, 5003]`), or a table from
/// machine id to port as the reference implementation writes it
/// (`{"1": 5001, "2": 5002, "3": 5003}`). Ports are wider than `u16` here so
/// that an out-of-range port is reported as such.
#[derive(Debug)]
enum PortsFile {
    /// One port per machine, machine 1 first.
    List(Vec<i64>),
    /// Machine id (as written) to port, in the file's order.
    ById(Vec<(String, i64)>),
}

impl<'de> Deserialize<'de> for PortsFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PortsFile, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PortsFile;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of ports, or a table from machine id to port")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<PortsFile, A::Error> {
                let mut ports = Vec::new();
                while let Some(port) = seq.next_element()? {
                    ports.push(port);
                }
                Ok(PortsFile::List(ports))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PortsFile, A::Error> {
                let mut ports = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    ports.push(entry);
                }
                Ok(PortsFile::ById(ports))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl PortsFile {
    /// The ports in machine order: a table's keys must be the machine ids
    /// `1..=n`, each once.
    fn in_order(&self) -> Result<Vec<i64>, Broken> {
        match self {
            PortsFile::List(ports) => Ok(ports.clone()),
            PortsFile::ById(entries) => {
                let mut ports = vec![None; entries.len()];
                for (key, port) in entries {
                    let slot = key.trim().parse::<usize>().ok().filter(|id| (1..=entries.len()).contains(id));
                    let Some(id) = slot else {
                        return Err((
                            format!("ports.{key}"),
                            port.to_string(),
                            format!(
                                "the table's keys must be the machine ids 1..={} (one port per machine)",
                                entries.len()
                            ),
                        ));
                    };
                    if ports[id - 1].replace(*port).is_some() {
                        return Err((format!("ports.{key}"), port.to_string(), format!("names machine {id} twice")));
                    }
                }
                Ok(ports.into_iter().flatten().collect())
            }
        }
    }
}

/// An optional clock list, as written in a file.
mod optional_clock_names {
    use clocklab_model::ClockKinds;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ClockKinds>, D::Error> {
        crate::config::clock_names::deserialize(deserializer).map(Some)
    }
}

/// One experiment as written, in an `experiments` entry or at the top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExperimentFile {
    pub(crate) name: Option<String>,
    pub(crate) machines: Option<u32>,
    #[serde(alias = "MAX_CLOCK_RATE")]
    pub(crate) max_clock_rate: Option<u32>,
    #[serde(alias = "MAX_EVENT_NUM")]
    pub(crate) max_event_num: Option<u32>,
    pub(crate) runs: Option<u32>,
    #[serde(alias = "DURATION", alias = "EXPERIMENT_DURATION")]
    pub(crate) duration: Option<f64>,
    pub(crate) seed: Option<u64>,
    pub(crate) control: Option<String>,
    #[serde(default, with = "optional_clock_names")]
    pub(crate) clocks: Option<ClockKinds>,
    pub(crate) physical_clock: Option<PhysicalClockSettings>,
    pub(crate) faults: Option<Vec<FaultSpec>>,
}

/// A value that breaks a rule: the key (its last part, or a path below the
/// table that holds it), the value, and the rule.
pub(crate) type Broken = (String, String, String);

impl ConfigFile {
    /// Checks the values as written, so that an error names the key the user
    /// wrote (`max_clock_rate` at the top level, `experiments[1].runs` in a list).
    fn check(&self, source: &str) -> Result<(), ConfigError> {
        let invalid =
            |(key, value, reason): Broken| ConfigError::Invalid { file: source.to_string(), key, value, reason };
        if let Some(ports) = &self.ports {
            let ports = ports.in_order().map_err(invalid)?;
            for (idx, &port) in ports.iter().enumerate() {
                if !(1..=i64::from(u16::MAX)).contains(&port) {
                    let key = match self.ports {
                        Some(PortsFile::ById(_)) => format!("ports.{}", idx + 1),
                        _ => format!("ports[{idx}]"),
                    };
                    return Err(invalid((key, port.to_string(), "must be a port in 1..=65535".into())));
                }
            }
        }
        self.defaults().check().map_err(invalid)?;
        for (idx, exp) in self.experiments.iter().flatten().enumerate() {
            exp.check()
                .map_err(|(key, value, reason)| invalid((format!("experiments[{idx}].{key}"), value, reason)))?;
        }
        Ok(())
    }

    /// The experiment keys of the top level: defaults for every experiment.
    fn defaults(&self) -> ExperimentFile {
        ExperimentFile {
            name: None,
            machines: self.machines,
            max_clock_rate: self.max_clock_rate,
            max_event_num: self.max_event_num,
            runs: self.runs,
            duration: self.duration,
            seed: None,
            control: None,
            clocks: self.clocks,
            physical_clock: self.physical_clock,
            faults: self.faults.clone(),
        }
    }
}

/// The keys of one experiment, in an `experiments` entry or at the top level.
const EXPERIMENT_FIELDS: &[Field] = &[
    Field::leaf("name"),
    Field::leaf("machines"),
    Field { name: "max_clock_rate", aliases: &["MAX_CLOCK_RATE"], schema: Schema::Any },
    Field { name: "max_event_num", aliases: &["MAX_EVENT_NUM"], schema: Schema::Any },
    Field::leaf("runs"),
    Field { name: "duration", aliases: &["DURATION", "EXPERIMENT_DURATION"], schema: Schema::Any },
    Field::leaf("seed"),
    Field::leaf("control"),
    Field::leaf("clocks"),
    Field { name: "physical_clock", aliases: &[], schema: Schema::Table(PHYSICAL_CLOCK_FIELDS) },
    Field { name: "faults", aliases: &[], schema: FAULTS },
];

/// The keys of a `delay` of a latency fault, by `kind`.
const FAULT_DELAY_VARIANTS: &[(&str, &[Field])] = &[
    ("constant", &[Field::leaf("ms")]),
    ("uniform", &[Field::leaf("min_ms"), Field::leaf("max_ms")]),
    ("exponential", &[Field::leaf("mean_ms")]),
];

/// The keys of each kind of fault (see `clocklab_faults::spec`).
const FAULT_VARIANTS: &[(&str, &[Field])] = &[
    (
        "latency",
        &[
            Field::leaf("start"),
            Field::leaf("end"),
            Field::leaf("links"),
            Field {
                name: "delay",
                aliases: &[],
                schema: Schema::Tagged { tag: "kind", variants: FAULT_DELAY_VARIANTS },
            },
        ],
    ),
    ("loss", &[Field::leaf("start"), Field::leaf("end"), Field::leaf("links"), Field::leaf("probability")]),
    (
        "partition",
        &[
            Field::leaf("start"),
            Field::leaf("end"),
            Field::leaf("groups"),
            Field::leaf("direction"),
            Field::leaf("mode"),
        ],
    ),
    ("crash", &[Field::leaf("machine"), Field::leaf("start"), Field::leaf("end"), Field::leaf("restart_clock")]),
    ("pause", &[Field::leaf("machine"), Field::leaf("start"), Field::leaf("end")]),
    ("clock", &[Field::leaf("machine"), Field::leaf("start"), Field::leaf("step_ms"), Field::leaf("drift_ppm")]),
];

/// A list of faults.
pub(crate) const FAULTS: Schema = Schema::ArrayOf(&Schema::Tagged { tag: "kind", variants: FAULT_VARIANTS });

/// The keys of `physical_clock`.
pub(crate) const PHYSICAL_CLOCK_FIELDS: &[Field] = &[Field::leaf("offset_ms_max"), Field::leaf("drift_ppm_max")];

/// The keys of `sim.network`, by `kind`.
const NETWORK_VARIANTS: &[(&str, &[Field])] = &[
    ("constant", &[Field::leaf("delay_us")]),
    ("uniform", &[Field::leaf("min_us"), Field::leaf("max_us")]),
    ("exponential", &[Field::leaf("min_us"), Field::leaf("mean_us")]),
];

/// The keys of `sim`.
pub(crate) const SIM_FIELDS: &[Field] = &[
    Field::leaf("epoch_us"),
    Field { name: "network", aliases: &[], schema: Schema::Tagged { tag: "kind", variants: NETWORK_VARIANTS } },
];

/// Every key a configuration file may hold, for the unknown-key check. The
/// typed structs above deny unknown fields too; a test keeps the two in step.
pub(crate) const FILE_SCHEMA: Schema = Schema::Table(&[
    Field { name: "host", aliases: &["HOST"], schema: Schema::Any },
    Field { name: "ports", aliases: &["PORTS"], schema: Schema::Any },
    Field::leaf("runtime"),
    Field::leaf("log_format"),
    Field::leaf("seed"),
    Field::leaf("token"),
    Field::leaf("connect_timeout"),
    Field::leaf("queue_cap"),
    Field { name: "sim", aliases: &[], schema: Schema::Table(SIM_FIELDS) },
    Field::leaf("machines"),
    Field { name: "max_clock_rate", aliases: &["MAX_CLOCK_RATE"], schema: Schema::Any },
    Field { name: "max_event_num", aliases: &["MAX_EVENT_NUM"], schema: Schema::Any },
    Field::leaf("runs"),
    Field { name: "duration", aliases: &["DURATION", "EXPERIMENT_DURATION"], schema: Schema::Any },
    Field::leaf("clocks"),
    Field { name: "physical_clock", aliases: &[], schema: Schema::Table(PHYSICAL_CLOCK_FIELDS) },
    Field { name: "faults", aliases: &[], schema: FAULTS },
    Field { name: "experiments", aliases: &[], schema: Schema::ArrayOf(&Schema::Table(EXPERIMENT_FIELDS)) },
]);

/// A number as an error message shows it: `1e300` rather than its 301
/// digits, `60` rather than `60.0`.
pub(crate) fn show_number(value: f64) -> String {
    if value.is_finite() && value.abs() >= 1e9 { format!("{value:e}") } else { value.to_string() }
}

/// `value` is in `range`, or the rule it breaks.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: T,
    min: T,
    max: T,
    what: &str,
) -> Result<(), Broken> {
    if min <= value && value <= max {
        Ok(())
    } else {
        Err((key.into(), value.to_string(), format!("must be {what} in {min}..={max}")))
    }
}

impl ExperimentFile {
    /// Checks the values this entry sets (unset ones come from elsewhere)
    /// against their ranges (see [`crate::limits`]).
    pub(crate) fn check(&self) -> Result<(), Broken> {
        if let Some(machines) = self.machines {
            in_range("machines", machines, 2, limits::MACHINES_MAX, "a number of machines")?;
        }
        if let Some(rate) = self.max_clock_rate {
            in_range("max_clock_rate", rate, 1, limits::MAX_CLOCK_RATE_MAX, "a number of ticks per second")?;
        }
        if let Some(max_event_num) = self.max_event_num {
            if max_event_num < 3 {
                let reason = "must be at least 3 (1, 2 and 3 are the send events)".to_string();
                return Err(("max_event_num".into(), max_event_num.to_string(), reason));
            }
            in_range("max_event_num", max_event_num, 3, limits::MAX_EVENT_NUM_MAX, "a whole number")?;
        }
        if let Some(runs) = self.runs {
            in_range("runs", runs, 1, limits::RUNS_MAX, "a number of runs")?;
        }
        if let Some(duration) = self.duration {
            // NaN fails both comparisons, so it is out of range too.
            if !(limits::DURATION_S_MIN..=limits::DURATION_S_MAX).contains(&duration) {
                let reason = format!(
                    "must be a positive number of seconds in {}..={} (a year)",
                    limits::DURATION_S_MIN,
                    limits::DURATION_S_MAX
                );
                return Err(("duration".into(), show_number(duration), reason));
            }
        }
        if let Some(physical) = self.physical_clock {
            let offset = physical.offset_ms_max;
            if !(offset.is_finite() && (0.0..=PhysicalClockSettings::OFFSET_MS_MAX).contains(&offset)) {
                return Err((
                    "physical_clock.offset_ms_max".into(),
                    show_number(offset),
                    "must be a number of milliseconds in 0..=86400000 (a day)".into(),
                ));
            }
            let drift = physical.drift_ppm_max;
            if !(drift.is_finite() && (0.0..=PhysicalClockSettings::DRIFT_PPM_MAX).contains(&drift)) {
                return Err((
                    "physical_clock.drift_ppm_max".into(),
                    show_number(drift),
                    "must be a number of parts per million in 0..=100000 (10%)".into(),
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
            control: exp.control.clone(),
            clocks: Some(exp.clocks),
            physical_clock: Some(exp.physical_clock),
            faults: Some(exp.faults.clone()),
        }
    }
}

/// A file of faults alone (`clocklab run --faults FILE`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsFile {
    faults: Vec<FaultSpec>,
}

/// What a faults file holds: `faults` and nothing else.
const FAULTS_FILE_SCHEMA: Schema = Schema::Table(&[Field { name: "faults", aliases: &[], schema: FAULTS }]);

/// The format of a file, from its extension.
fn format_of(path: &Path) -> Result<Format, ConfigError> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("json") => Ok(Format::Json),
        Some("toml") => Ok(Format::Toml),
        _ => Err(ConfigError::Format { file: path.to_path_buf() }),
    }
}

/// Reads a file of faults (`faults = [...]`, or `[[faults]]` tables in
/// TOML), JSON or TOML by its extension. Each fault is checked against its
/// run (its machines, its duration) by [`Config::validate`].
pub fn load_faults(path: &Path) -> Result<Vec<FaultSpec>, ConfigError> {
    let format = format_of(path)?;
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
    let file: FaultsFile = source::parse(path, &text, format, &FAULTS_FILE_SCHEMA)?;
    Ok(file.faults)
}

impl Config {
    /// Reads and checks a configuration file, JSON or TOML by its extension.
    ///
    /// Every error is one line naming the file, and the key and value when
    /// there is one; a syntax error gives its line and column. The file of
    /// the Python reference implementation (`HOST`, `PORTS` as a table from
    /// machine id to port, `MAX_CLOCK_RATE`, `MAX_EVENT_NUM`,
    /// `EXPERIMENT_DURATION`) is read as it is. The limits that depend on the
    /// runtime are checked by [`Config::validate`], once the command line
    /// has had its say.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let format = format_of(path)?;
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
        let file: ConfigFile = source::parse(path, &text, format, &FILE_SCHEMA)?;
        let source = path.display().to_string();
        file.check(&source)?;
        let config = Config::from_file(file);
        config.validate_settings(&source)?;
        Ok(config)
    }

    fn from_file(file: ConfigFile) -> Config {
        let builtin = Config::default();
        let defaults = &file.defaults();
        let resolve = |exp: &ExperimentFile, fallback: &Experiment| Experiment {
            name: exp.name.clone().or_else(|| defaults.name.clone()).unwrap_or_else(|| fallback.name.clone()),
            machines: exp.machines.or(defaults.machines).unwrap_or(fallback.machines),
            max_clock_rate: exp.max_clock_rate.or(defaults.max_clock_rate).unwrap_or(fallback.max_clock_rate),
            max_event_num: exp.max_event_num.or(defaults.max_event_num).unwrap_or(fallback.max_event_num),
            runs: exp.runs.or(defaults.runs).unwrap_or(fallback.runs),
            duration: exp.duration.or(defaults.duration).unwrap_or(fallback.duration),
            seed: exp.seed,
            control: exp.control.clone(),
            clocks: exp.clocks.or(defaults.clocks).unwrap_or(fallback.clocks),
            physical_clock: exp.physical_clock.or(defaults.physical_clock).unwrap_or(fallback.physical_clock),
            faults: exp.faults.clone().or_else(|| defaults.faults.clone()).unwrap_or_else(|| fallback.faults.clone()),
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
        // `ConfigFile::check` has made sure that the ports are in order and fit.
        let ports = file.ports.as_ref().and_then(|p| p.in_order().ok()).unwrap_or_default();
        Config {
            host: file.host.unwrap_or(builtin.host),
            ports: ports.into_iter().map(|port| port as u16).collect(),
            runtime: file.runtime.unwrap_or(builtin.runtime),
            log_format: file.log_format.unwrap_or(builtin.log_format),
            seed: file.seed,
            token: file.token,
            connect_timeout: file.connect_timeout.unwrap_or(builtin.connect_timeout),
            queue_cap: file.queue_cap.unwrap_or(builtin.queue_cap),
            sim: file.sim.unwrap_or_default(),
            experiments,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes `text` as `name` in a fresh folder and loads it.
    pub(crate) fn load(name: &str, text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    /// The Python reference implementation's `config_example.json`, as it is.
    const REFERENCE_CONFIG: &str = include_str!("../testdata/config_example.json");

    #[test]
    fn the_reference_configuration_is_read_as_it_is() {
        let config = load("config_example.json", REFERENCE_CONFIG).unwrap();
        assert_eq!(config.host, "localhost");
        assert_eq!(config.ports, [12345, 54321, 8080]);
        let experiment = &config.experiments[0];
        assert_eq!(config.experiments.len(), 1);
        assert_eq!((experiment.machines, experiment.max_clock_rate, experiment.max_event_num), (3, 6, 10));
        assert_eq!(experiment.duration, 60.0);
        // The table's order does not matter; its keys are the machine ids.
        let shuffled = load("c.json", r#"{"PORTS": {"3": 8080, "1": 12345, "2": 54321}}"#).unwrap();
        assert_eq!(shuffled.ports, [12345, 54321, 8080]);
        let cases = [
            (
                r#"{"PORTS": {"1": 5001, "4": 5002, "3": 5003}}"#,
                "key `ports.4` = 5002: the table's keys must be the machine ids 1..=3 (one port per machine)",
            ),
            (r#"{"PORTS": {"1": 5001, "2": 0, "3": 5003}}"#, "key `ports.2` = 0: must be a port in 1..=65535"),
            (r#"{"PORTS": {"1": 5001, "one": 5002}}"#, "key `ports.one` = 5002: the table's keys must be"),
        ];
        for (text, want) in cases {
            let message = load("c.json", text).unwrap_err().to_string();
            assert!(message.contains(want), "{text}: {message}");
        }
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
    fn faults_are_read_checked_and_named() {
        let config = load(
            "c.toml",
            "duration = 30\n[[faults]]\nkind = \"partition\"\nstart = 5\nend = 10\ngroups = [[1], [2, 3]]\n\
             [[experiments]]\nname = \"a\"\n[[experiments]]\nname = \"b\"\n[[experiments.faults]]\n\
             kind = \"latency\"\ndelay = { kind = \"constant\", ms = 5 }\n",
        )
        .unwrap();
        assert_eq!(config.experiments[0].faults.len(), 1, "top-level faults are every experiment's default");
        assert_eq!(config.experiments[1].faults[0].kind(), "latency");
        assert_eq!(load("c.toml", &config.to_toml()).unwrap(), config, "faults round-trip");
        let cases = [
            (
                "[[faults]]\nkind = \"pause\"\nmachine = 7\nstart = 1\nend = 2\n",
                "key `experiments[0].faults[0].machine` = 7: is not a machine of the run (1..=3) (a pause fault of experiment `experiment`)",
            ),
            (
                "[[faults]]\nkind = \"loss\"\nprobabilty = 0.5\n",
                "unknown key `faults[0].probabilty` (did you mean `probability`?)",
            ),
            (
                "[[faults]]\nkind = \"latency\"\ndelay = { kind = \"uniform\", min = 1 }\n",
                "unknown key `faults[0].delay.min` (did you mean `min_ms`?)",
            ),
        ];
        for (text, want) in cases {
            let message = load("c.toml", text).unwrap_err().to_string();
            assert!(message.contains(want), "{text}: {message}");
        }
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
                 `token`, `connect_timeout`, `queue_cap`, `sim`, `machines`, `max_clock_rate`, `max_event_num`, \
                 `runs`, `duration`, `clocks`, `physical_clock`, `faults`, `experiments`)",
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
            (
                "c.json",
                r#"{"ports": 5}"#,
                "c.json: key `ports` = 5: wrong type: expected an array of ports, or a table from machine id to port",
            ),
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
        use serde::de::{self, Visitor};

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
                         token = \"00112233445566778899aabbccddeeff\"\n\
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
        load("c.toml", "HOST = \"localhost\"\nPORTS = [1, 2, 3]\nEXPERIMENT_DURATION = 1\n").unwrap();
        for (kind, extra) in [
            ("constant", "delay_us = 1"),
            ("uniform", "min_us = 1, max_us = 2"),
            ("exponential", "min_us = 1, mean_us = 2"),
        ] {
            load("c.toml", &format!("[sim]\nnetwork = {{ kind = \"{kind}\", {extra} }}\n")).unwrap();
        }
    }
}
