//! Validation of a resolved configuration: every setting against its range
//! ([`crate::limits`]), the experiment names against the results layout, the
//! suite's size, and the simulated calendar.

use clocklab_log::{FIRST_WRITABLE_US, LAST_WRITABLE_US};

use crate::config::{Config, ConfigError, DelayDistribution, Runtime};
use crate::file::{ExperimentFile, show_number};
use crate::{layout, limits};

impl Config {
    /// Checks every value, and the limits of the runtime the configuration
    /// names (the real runtime takes at most
    /// [`limits::REAL_MACHINES_MAX`] machines); `source` names where the
    /// configuration came from (a file, `the command line`). Call it once
    /// every override is applied.
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        self.validate_settings(source)?;
        if self.runtime == Runtime::Real {
            for (idx, exp) in self.experiments.iter().enumerate() {
                if exp.machines > limits::REAL_MACHINES_MAX {
                    return Err(invalid(
                        source,
                        format!("experiments[{idx}].machines"),
                        exp.machines.to_string(),
                        format!(
                            "must be at most {} with the real runtime: every machine is a process with a thread \
                             and two connections per peer (experiment `{}`; the simulator takes up to {})",
                            limits::REAL_MACHINES_MAX,
                            exp.name,
                            limits::MACHINES_MAX
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`Config::validate`] without the limits of a runtime: what a file is
    /// checked against when it is read, before the command line picks the
    /// runtime.
    pub(crate) fn validate_settings(&self, source: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, value: String, reason: String| Err(invalid(source, key.to_string(), value, reason));
        if self.host.trim().is_empty() || self.host.len() > limits::HOST_LEN_MAX {
            return fail(
                "host",
                format!("{:?}", self.host),
                format!("must name an address (at most {} bytes)", limits::HOST_LEN_MAX),
            );
        }
        if let Some(token) = &self.token
            && clocklab_model::wire::token_from_hex(token).is_none()
        {
            // The token is a secret: the message does not repeat it.
            return fail(
                "token",
                format!("({} characters)", token.len()),
                "must be 32 hexadecimal digits (`clocklab config --init FILE` writes one)".into(),
            );
        }
        let timeout = self.connect_timeout;
        if !(limits::CONNECT_TIMEOUT_S_MIN..=limits::CONNECT_TIMEOUT_S_MAX).contains(&timeout) {
            return fail(
                "connect_timeout",
                show_number(timeout),
                format!(
                    "must be a number of seconds in {}..={}",
                    limits::CONNECT_TIMEOUT_S_MIN,
                    limits::CONNECT_TIMEOUT_S_MAX
                ),
            );
        }
        if !(1..=limits::QUEUE_CAP_MAX).contains(&self.queue_cap) {
            return fail(
                "queue_cap",
                self.queue_cap.to_string(),
                format!("must be a number of messages in 1..={}", limits::QUEUE_CAP_MAX),
            );
        }
        self.check_network(source)?;
        for (idx, &port) in self.ports.iter().enumerate() {
            if port == 0 {
                return fail(&format!("ports[{idx}]"), "0".into(), "must be a port in 1..=65535".into());
            }
            if self.ports[..idx].contains(&port) {
                return fail(
                    &format!("ports[{idx}]"),
                    port.to_string(),
                    "is used twice: each machine needs its own port".into(),
                );
            }
        }
        if self.experiments.is_empty() || self.experiments.len() > limits::EXPERIMENTS_MAX {
            return fail(
                "experiments",
                format!("({} experiments)", self.experiments.len()),
                format!("must list 1..={} experiments", limits::EXPERIMENTS_MAX),
            );
        }
        let mut machine_runs = 0u64;
        for (idx, exp) in self.experiments.iter().enumerate() {
            let key = |name: &str| format!("experiments[{idx}].{name}");
            if let Err(reason) = layout::check_experiment_name(&exp.name) {
                return fail(&key("name"), format!("{:?}", exp.name), reason);
            }
            if self.experiments[..idx].iter().any(|other| other.name.eq_ignore_ascii_case(&exp.name)) {
                return fail(&key("name"), format!("{:?}", exp.name), "is used twice (letter case aside)".into());
            }
            if let Some(control) = &exp.control {
                // The control need not be in this configuration (`--experiment`
                // may run a variation alone): its name is what the seeds derive from.
                if let Err(reason) = layout::check_experiment_name(control) {
                    return fail(&key("control"), format!("{control:?}"), reason);
                }
                if control == &exp.name {
                    return fail(&key("control"), format!("{control:?}"), "must name another experiment".into());
                }
            }
            if let Err((name, value, reason)) = ExperimentFile::from(exp).check() {
                return fail(&key(&name), value, format!("{reason} (experiment `{}`)", exp.name));
            }
            if exp.clocks.vector && exp.machines > limits::VECTOR_MACHINES_MAX {
                return fail(
                    &key("machines"),
                    exp.machines.to_string(),
                    format!(
                        "must be at most {} with vector clocks: every line carries one number per machine \
                         (experiment `{}`)",
                        limits::VECTOR_MACHINES_MAX,
                        exp.name
                    ),
                );
            }
            if !self.ports.is_empty() && self.ports.len() != exp.machines as usize {
                return fail(
                    "ports",
                    format!("{:?}", self.ports),
                    format!("must list one port per machine (experiment `{}` has {})", exp.name, exp.machines),
                );
            }
            machine_runs += u64::from(exp.runs) * u64::from(exp.machines);
            if machine_runs > limits::MACHINE_RUNS_MAX {
                return fail(
                    &key("runs"),
                    exp.runs.to_string(),
                    format!(
                        "the suite would plan more than {} machine runs (runs x machines, over every experiment)",
                        limits::MACHINE_RUNS_MAX
                    ),
                );
            }
            if let Err(error) = clocklab_faults::validate(&exp.faults, exp.machines, exp.duration) {
                return fail(
                    &key(&format!("faults[{}].{}", error.index, error.key)),
                    error.value,
                    format!("{} (a {} fault of experiment `{}`)", error.reason, error.kind, exp.name),
                );
            }
            self.check_calendar(source, idx)?;
        }
        Ok(())
    }

    /// The simulated network's delays: finite, in `0..=`[`limits::DELAY_US_MAX`], ordered.
    fn check_network(&self, source: &str) -> Result<(), ConfigError> {
        let network = self.sim.network;
        for (name, value) in network.parameters() {
            if !(0.0..=limits::DELAY_US_MAX).contains(&value) {
                return Err(invalid(
                    source,
                    format!("sim.network.{name}"),
                    show_number(value),
                    format!("must be a number of microseconds in 0..={} (an hour)", limits::DELAY_US_MAX),
                ));
            }
        }
        let ordered = match network {
            DelayDistribution::Constant { .. } => true,
            DelayDistribution::Uniform { min_us, max_us } => min_us <= max_us,
            DelayDistribution::Exponential { min_us, mean_us } => min_us <= mean_us,
        };
        if !ordered {
            return Err(invalid(
                source,
                "sim.network".into(),
                format!("{network:?}"),
                "the delays must be ordered (min_us <= mean_us, or min_us <= max_us)".into(),
            ));
        }
        Ok(())
    }

    /// Every instant a simulated run of experiment `idx` can write (its
    /// start, its end after the longest delay, its machines' physical clocks)
    /// lies in the calendar the logs can write: years 0 to 9999.
    fn check_calendar(&self, source: &str, idx: usize) -> Result<(), ConfigError> {
        let exp = &self.experiments[idx];
        let epoch_us = self.sim.epoch_us as f64;
        let offset_us = exp.physical_clock.offset_ms_max * 1_000.0;
        let end_us = exp.duration * 1e6 + self.sim.network.max_delay_us();
        let drift = exp.physical_clock.drift_ppm_max / 1e6;
        let earliest_us = epoch_us - offset_us;
        let latest_us = epoch_us + end_us * (1.0 + drift) + offset_us;
        if earliest_us < FIRST_WRITABLE_US as f64 || latest_us > LAST_WRITABLE_US as f64 {
            return Err(invalid(
                source,
                "sim.epoch_us".into(),
                self.sim.epoch_us.to_string(),
                format!(
                    "a simulated run of experiment `{}` would write times outside the years 0 to 9999 (from {:.0} \
                     to {:.0} us since the Unix epoch, with its duration, delays and clock offsets)",
                    exp.name, earliest_us, latest_us
                ),
            ));
        }
        Ok(())
    }
}

fn invalid(source: &str, key: String, value: String, reason: String) -> ConfigError {
    ConfigError::Invalid { file: source.to_string(), key, value, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::tests::load;

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            (
                "c.json",
                r#"{"max_clock_rate": 0}"#,
                "c.json: key `max_clock_rate` = 0: must be a number of ticks per second in 1..=1000000",
            ),
            (
                "c.json",
                r#"{"max_event_num": 2}"#,
                "c.json: key `max_event_num` = 2: must be at least 3 (1, 2 and 3 are the send events)",
            ),
            ("c.json", r#"{"machines": 1}"#, "c.json: key `machines` = 1: must be a number of machines in 2..=20000"),
            (
                "c.json",
                r#"{"duration": -1}"#,
                "c.json: key `duration` = -1: must be a positive number of seconds in 0.001..=31536000 (a year)",
            ),
            (
                "c.toml",
                "duration = 0",
                "c.toml: key `duration` = 0: must be a positive number of seconds in 0.001..=31536000 (a year)",
            ),
            (
                "c.toml",
                "duration = nan",
                "c.toml: key `duration` = NaN: must be a positive number of seconds in 0.001..=31536000 (a year)",
            ),
            ("c.toml", "runs = 0", "c.toml: key `runs` = 0: must be a number of runs in 1..=10000"),
            (
                "c.toml",
                "[[experiments]]\nname = \"a\"\n[[experiments]]\nname = \"b\"\nmax_clock_rate = 0\n",
                "c.toml: key `experiments[1].max_clock_rate` = 0: must be a number of ticks per second in 1..=1000000",
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
        let missing = Config::load(std::path::Path::new("/nonexistent/clocklab.toml")).unwrap_err().to_string();
        assert_eq!(missing, "/nonexistent/clocklab.toml: cannot read");
    }

    /// Every setting has an upper bound, checked where it was written: the
    /// values that once passed validation and then crashed a run, filled a
    /// disk or never ended.
    #[test]
    fn every_setting_has_an_upper_bound() {
        let cases = [
            ("duration = 1e300", "key `duration` = 1e300: must be a positive number of seconds in 0.001..=31536000"),
            ("duration = 1e14", "key `duration` = 1e14: must be a positive number of seconds"),
            ("connect_timeout = 1e30", "key `connect_timeout` = 1e30: must be a number of seconds in 0.1..=3600"),
            ("connect_timeout = 0.001", "key `connect_timeout` = 0.001: must be a number of seconds in 0.1..=3600"),
            ("runs = 4294967295", "key `runs` = 4294967295: must be a number of runs in 1..=10000"),
            ("machines = 50000", "key `machines` = 50000: must be a number of machines in 2..=20000"),
            (
                "max_clock_rate = 2000000",
                "key `max_clock_rate` = 2000000: must be a number of ticks per second in 1..=1000000",
            ),
            ("max_event_num = 4000000000", "key `max_event_num` = 4000000000: must be a whole number in 3..=1000000"),
            ("queue_cap = 0", "key `queue_cap` = 0: must be a number of messages in 1..=100000000"),
            (
                "queue_cap = 1000000000000",
                "key `queue_cap` = 1000000000000: must be a number of messages in 1..=100000000",
            ),
            (&format!("host = \"{}\"", "h".repeat(300)), "key `host`"),
            ("token = \"abc\"", "key `token` = (3 characters): must be 32 hexadecimal digits"),
            (
                "runs = 100\nmachines = 20000",
                "key `experiments[0].runs` = 100: the suite would plan more than 1000000 machine runs",
            ),
            (
                "machines = 2000\nclocks = [\"vector\"]",
                "key `experiments[0].machines` = 2000: must be at most 1000 with vector clocks",
            ),
            (
                "[sim.network]\nkind = \"constant\"\ndelay_us = 1e18",
                "key `sim.network.delay_us` = 1e18: must be a number of microseconds in 0..=3600000000",
            ),
            (
                "[sim.network]\nkind = \"uniform\"\nmin_us = 5\nmax_us = 2",
                "key `sim.network` = Uniform { min_us: 5.0, max_us: 2.0 }: the delays must be ordered",
            ),
        ];
        for (text, want) in cases {
            let message = load("c.toml", text).unwrap_err().to_string();
            assert!(message.contains(want), "{text}: {message}");
            assert!(!message.contains('\n'), "{text}: {message}");
        }
        // The largest values of every range pass.
        load(
            "c.toml",
            "duration = 31536000\nconnect_timeout = 3600\nruns = 50\nmachines = 20000\nmax_clock_rate = 1000000\n\
             max_event_num = 1000000\nqueue_cap = 100000000\n",
        )
        .unwrap();
    }

    #[test]
    fn the_real_runtime_takes_fewer_machines_than_the_simulator() {
        let mut config = load("c.toml", "machines = 500\nruns = 1\n").unwrap();
        let message = config.validate("c.toml").unwrap_err().to_string();
        assert!(
            message.contains("key `experiments[0].machines` = 500: must be at most 100 with the real runtime"),
            "{message}"
        );
        config.runtime = Runtime::Sim;
        config.validate("the command line").unwrap();
    }

    /// Names are checked against the results layout: each of these once
    /// passed and broke the run or its analysis.
    #[test]
    fn experiment_names_that_would_break_the_layout_are_refused() {
        let cases = [
            ("analysis", "reserved"),
            ("config.toml", "reserved"),
            ("..", "not starting with '.'"),
            ("a/b", "letters, digits"),
            ("", "must not be empty"),
            ("run_2", "run folder"),
        ];
        for (name, reason) in cases {
            let text = format!("[[experiments]]\nname = {name:?}\n");
            let message = load("c.toml", &text).unwrap_err().to_string();
            assert!(message.contains("key `experiments[0].name`") && message.contains(reason), "{name}: {message}");
        }
        let message =
            load("c.toml", "[[experiments]]\nname = \"a\"\n[[experiments]]\nname = \"A\"\n").unwrap_err().to_string();
        assert!(message.contains("key `experiments[1].name` = \"A\": is used twice"), "{message}");
        let message = load("c.toml", "[[experiments]]\nname = \"a\"\ncontrol = \"a\"\n").unwrap_err().to_string();
        assert!(message.contains("key `experiments[0].control` = \"a\": must name another experiment"), "{message}");
        let message = load("c.toml", "[[experiments]]\nname = \"a\"\ncontrol = \"../b\"\n").unwrap_err().to_string();
        assert!(message.contains("key `experiments[0].control`"), "{message}");
        let config = load("c.toml", "[[experiments]]\nname = \"a\"\n[[experiments]]\nname = \"b\"\ncontrol = \"a\"\n");
        assert_eq!(config.unwrap().experiments[1].control.as_deref(), Some("a"));
    }

    /// Simulated time stays in the calendar that logs and manifests can write.
    #[test]
    fn simulated_times_past_the_calendar_are_refused() {
        let cases = [
            "[sim]\nepoch_us = 253402300799000000\n",
            "[sim]\nepoch_us = -62167219200000000\n[physical_clock]\noffset_ms_max = 1000\n",
            "[sim]\nepoch_us = 9223372036854775807\n",
            "duration = 31536000\n[sim]\nepoch_us = 253380000000000000\n",
        ];
        for text in cases {
            let message = load("c.toml", text).unwrap_err().to_string();
            assert!(message.contains("key `sim.epoch_us`") && message.contains("years 0 to 9999"), "{text}: {message}");
        }
        load("c.toml", "[sim]\nepoch_us = 0\n").unwrap();
        load("c.toml", "[sim]\nepoch_us = 253000000000000000\n").unwrap();
    }
}
