//! Reading a manifest back (`manifest.json`, or a machine's
//! `machine_<id>.json`): a file of bounded size, parsed with errors that
//! give the line and column or the key, and every number in it checked
//! against the configuration's ranges ([`crate::limits`]) before anything
//! sizes a table by it. A manifest is input like a configuration: a damaged
//! one is one error that names the file and the key.

use std::io::Read as _;
use std::path::Path;

use crate::config::ConfigError;
use crate::file::{ExperimentFile, show_number};
use crate::manifest::{MachineManifest, RunManifest};
use crate::{PhysicalClockSettings, limits};

/// The largest manifest read, in bytes: a run of 20,000 machines writes
/// about 5 MB.
pub const MANIFEST_BYTES_MAX: u64 = 64 << 20;

impl RunManifest {
    /// Reads the run manifest at `path` and checks it (see [`RunManifest::check`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file cannot be read (see
    /// [`ConfigError::is_missing`]), and one error naming the file and the
    /// key for anything else.
    pub fn read(path: &Path) -> Result<RunManifest, ConfigError> {
        let manifest: RunManifest = crate::source::parse_json(path, &read_text(path)?)?;
        manifest.check(path)?;
        Ok(manifest)
    }

    /// Checks every number against the configuration's ranges: the
    /// experiment's settings and faults as `Config::validate` does, and each
    /// machine's entry against them (`file` names the manifest in the error).
    pub fn check(&self, file: &Path) -> Result<(), ConfigError> {
        let fail = |key: String, value: String, reason: String| Err(invalid(file, key, value, reason));
        let experiment = &self.experiment;
        if let Err((key, value, reason)) = ExperimentFile::from(experiment).check() {
            return fail(format!("experiment.{key}"), value, reason);
        }
        let n_machines = experiment.machines;
        if experiment.clocks.vector && n_machines > limits::VECTOR_MACHINES_MAX {
            return fail(
                "experiment.machines".into(),
                n_machines.to_string(),
                format!("must be at most {} with vector clocks", limits::VECTOR_MACHINES_MAX),
            );
        }
        if let Err(error) = clocklab_faults::validate(&experiment.faults, n_machines, experiment.duration) {
            return fail(format!("experiment.faults[{}].{}", error.index, error.key), error.value, error.reason);
        }
        if !(1..=experiment.runs).contains(&self.run_idx) {
            return fail(
                "run_idx".into(),
                self.run_idx.to_string(),
                format!("must be a run of the experiment, in 1..={}", experiment.runs),
            );
        }
        if self.machines.len() != n_machines as usize {
            return fail(
                "machines".into(),
                format!("({} entries)", self.machines.len()),
                format!("must list every machine of the run, one entry each (experiment.machines = {n_machines})"),
            );
        }
        let clock = experiment.physical_clock;
        for (idx, machine) in self.machines.iter().enumerate() {
            let key = |name: &str| format!("machines[{idx}].{name}");
            if machine.id as usize != idx + 1 {
                return fail(
                    key("id"),
                    machine.id.to_string(),
                    format!("must be {}: machines are listed in order", idx + 1),
                );
            }
            if !(1..=experiment.max_clock_rate).contains(&machine.rate) {
                return fail(
                    key("rate"),
                    machine.rate.to_string(),
                    format!("must be in 1..={} (experiment.max_clock_rate)", experiment.max_clock_rate),
                );
            }
            check_clock(&key, machine.clock_offset_us, machine.clock_drift_ppm, clock, "experiment.physical_clock")
                .map_err(|b| invalid(file, b.0, b.1, b.2))?;
        }
        if let Some((&id, _)) = self.seeds.machines.iter().find(|&(&id, _)| !(1..=n_machines).contains(&id)) {
            return fail(
                format!("seeds.machines.{id}"),
                id.to_string(),
                format!("must be a machine of the run, in 1..={n_machines}"),
            );
        }
        Ok(())
    }
}

impl MachineManifest {
    /// Reads the manifest of a machine started by hand at `path` and checks
    /// it (see [`MachineManifest::check`]).
    ///
    /// # Errors
    ///
    /// As [`RunManifest::read`].
    pub fn read(path: &Path) -> Result<MachineManifest, ConfigError> {
        let manifest: MachineManifest = crate::source::parse_json(path, &read_text(path)?)?;
        manifest.check(path)?;
        Ok(manifest)
    }

    /// Checks every number against the configuration's ranges (`file` names
    /// the manifest in the error).
    pub fn check(&self, file: &Path) -> Result<(), ConfigError> {
        let fail = |key: &str, value: String, reason: String| Err(invalid(file, key.into(), value, reason));
        let settings = ExperimentFile {
            machines: Some(self.n_machines),
            max_clock_rate: Some(self.max_clock_rate),
            max_event_num: Some(self.max_event_num),
            duration: Some(self.duration),
            ..ExperimentFile::default()
        };
        if let Err((key, value, reason)) = settings.check() {
            let key = if key == "machines" { "n_machines".to_string() } else { key };
            return fail(&key, value, reason);
        }
        if !(1..=self.n_machines).contains(&self.id) {
            return fail(
                "id",
                self.id.to_string(),
                format!("must be a machine of the run, in 1..={}", self.n_machines),
            );
        }
        if self.port == 0 {
            return fail("port", "0".into(), "must be a port in 1..=65535".into());
        }
        if !(1..=self.max_clock_rate).contains(&self.rate) {
            return fail(
                "rate",
                self.rate.to_string(),
                format!("must be in 1..={} (max_clock_rate)", self.max_clock_rate),
            );
        }
        let widest = PhysicalClockSettings {
            offset_ms_max: PhysicalClockSettings::OFFSET_MS_MAX,
            drift_ppm_max: PhysicalClockSettings::DRIFT_PPM_MAX,
        };
        check_clock(
            &|name: &str| name.to_string(),
            self.clock_offset_us,
            self.clock_drift_ppm,
            widest,
            "the widest a configuration allows",
        )
        .map_err(|b| invalid(file, b.0, b.1, b.2))
    }
}

/// A machine's physical clock against `bounds`, which `source` names.
fn check_clock(
    key: &dyn Fn(&str) -> String,
    offset_us: i64,
    drift_ppm: f64,
    bounds: PhysicalClockSettings,
    source: &str,
) -> Result<(), (String, String, String)> {
    // Rounded as the plan rounds it before drawing the offset.
    let offset_max_us = (bounds.offset_ms_max * 1_000.0).round();
    if (offset_us as f64).abs() > offset_max_us {
        return Err((
            key("clock_offset_us"),
            offset_us.to_string(),
            format!("must be at most {offset_max_us} microseconds either way ({source})"),
        ));
    }
    // NaN is out of range too.
    if drift_ppm.is_nan() || drift_ppm.abs() > bounds.drift_ppm_max {
        return Err((
            key("clock_drift_ppm"),
            show_number(drift_ppm),
            format!("must be at most {} parts per million either way ({source})", bounds.drift_ppm_max),
        ));
    }
    Ok(())
}

/// The text of the manifest at `path`, read to at most
/// [`MANIFEST_BYTES_MAX`] bytes.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    read_text_within(path, MANIFEST_BYTES_MAX)
}

/// [`read_text`] with `max_bytes` as its bound.
fn read_text_within(path: &Path, max_bytes: u64) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read { file: path.to_path_buf(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|file| file.take(max_bytes + 1).read_to_end(&mut bytes)).map_err(read_error)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ConfigError::Parse {
            file: path.to_path_buf(),
            message: format!("larger than {max_bytes} bytes: not a manifest"),
        });
    }
    String::from_utf8(bytes).map_err(|error| ConfigError::Parse {
        file: path.to_path_buf(),
        message: format!("not UTF-8 text (byte {} is not): not a manifest", error.utf8_error().valid_up_to() + 1),
    })
}

fn invalid(file: &Path, key: String, value: String, reason: String) -> ConfigError {
    ConfigError::Invalid { file: file.display().to_string(), key, value, reason }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Config, MachineCounts, MachineOutcome, RunStatus, Runtime, SeedTree};

    /// A change that breaks one rule of a manifest.
    type Change<T> = Box<dyn Fn(&mut T)>;

    /// A manifest as a run of the built-in suite's first experiment writes it.
    fn run_manifest() -> RunManifest {
        let experiment = Config::default().experiments.remove(0);
        let machines = (1..=experiment.machines)
            .map(|id| MachineOutcome {
                id,
                address: format!("127.0.0.1:{}", 5000 + id),
                rate: id,
                seed: u64::from(id),
                clock_offset_us: 0,
                clock_drift_ppm: 0.0,
                exit_status: None,
                logs: vec![format!("machine_{id}.log")],
            })
            .collect();
        RunManifest {
            clocklab_version: "0.1.0".into(),
            runtime: Runtime::Sim,
            run_idx: 2,
            seeds: SeedTree { suite: 1, experiment: 2, run: 3, machines: (1..=3).map(|id| (id, 9)).collect() },
            machines,
            experiment,
            started_at: "2026-01-01T00:00:00.000000Z".into(),
            ended_at: "2026-01-01T00:01:00.000000Z".into(),
            status: RunStatus::Ok,
            extra: BTreeMap::new(),
        }
    }

    fn machine_manifest() -> MachineManifest {
        MachineManifest {
            clocklab_version: "0.1.0".into(),
            id: 2,
            experiment: Some("baseline".into()),
            n_machines: 3,
            host: "127.0.0.1".into(),
            port: 5002,
            rate: 4,
            seed: 11,
            max_clock_rate: 6,
            max_event_num: 10,
            clocks: clocklab_model::ClockKinds::LAMPORT,
            clock_offset_us: 0,
            clock_drift_ppm: 0.0,
            duration: 60.0,
            started_at: "2026-01-01T00:00:00.000000Z".into(),
            deadline_at: "2026-01-01T00:01:00.000000Z".into(),
            ended_at: "2026-01-01T00:01:00.000000Z".into(),
            status: RunStatus::Ok,
            counts: MachineCounts::default(),
            tick_lateness_us: Default::default(),
        }
    }

    /// Writes `text` as a file and reads it as a manifest of each kind.
    fn read_as(dir: &Path, name: &str, text: &[u8]) -> (Result<RunManifest, String>, Result<MachineManifest, String>) {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        (RunManifest::read(&path).map_err(|e| e.to_string()), MachineManifest::read(&path).map_err(|e| e.to_string()))
    }

    #[test]
    fn every_number_of_a_run_manifest_is_checked_against_its_range() {
        let dir = tempfile::tempdir().unwrap();
        let good = run_manifest();
        assert_eq!(read_as(dir.path(), "manifest.json", good.to_json().as_bytes()).0, Ok(good.clone()));
        let file = dir.path().join("manifest.json").display().to_string();
        let cases: Vec<(Change<RunManifest>, &str)> = vec![
            (
                Box::new(|m| m.experiment.machines = 100_000_000),
                "key `experiment.machines` = 100000000: must be a number of machines in 2..=20000",
            ),
            (
                Box::new(|m| m.experiment.duration = 1e300),
                "key `experiment.duration` = 1e300: must be a positive number of seconds in 0.001..=31536000",
            ),
            (Box::new(|m| m.experiment.runs = 0), "key `experiment.runs` = 0: must be a number of runs in 1..=10000"),
            (Box::new(|m| m.run_idx = 6), "key `run_idx` = 6: must be a run of the experiment, in 1..=5"),
            (
                Box::new(|m| m.machines.truncate(2)),
                "key `machines` = (2 entries): must list every machine of the run, one entry each",
            ),
            (Box::new(|m| m.machines[2].id = 7), "key `machines[2].id` = 7: must be 3"),
            (Box::new(|m| m.machines[0].rate = 0), "key `machines[0].rate` = 0: must be in 1..=6"),
            (
                Box::new(|m| m.machines[1].clock_offset_us = 5),
                "key `machines[1].clock_offset_us` = 5: must be at most 0 microseconds either way (experiment.physical_clock)",
            ),
            (
                Box::new(|m| {
                    m.seeds.machines.insert(40_000, 1);
                }),
                "key `seeds.machines.40000` = 40000",
            ),
        ];
        for (change, expected) in cases {
            let mut manifest = good.clone();
            change(&mut manifest);
            let error = read_as(dir.path(), "manifest.json", manifest.to_json().as_bytes()).0.unwrap_err();
            assert!(error.starts_with(&format!("{file}: {expected}")), "{error}");
        }
    }

    #[test]
    fn every_number_of_a_machine_manifest_is_checked_against_its_range() {
        let dir = tempfile::tempdir().unwrap();
        let good = machine_manifest();
        assert_eq!(read_as(dir.path(), "machine_2.json", good.to_json().as_bytes()).1, Ok(good.clone()));
        let file = dir.path().join("machine_2.json").display().to_string();
        let cases: Vec<(Change<MachineManifest>, &str)> = vec![
            (
                Box::new(|m| m.n_machines = 100_000_000),
                "key `n_machines` = 100000000: must be a number of machines in 2..=20000",
            ),
            (Box::new(|m| m.id = 4), "key `id` = 4: must be a machine of the run, in 1..=3"),
            (Box::new(|m| m.rate = 7), "key `rate` = 7: must be in 1..=6"),
            (Box::new(|m| m.max_event_num = 2), "key `max_event_num` = 2: must be at least 3"),
            (Box::new(|m| m.duration = 1e300), "key `duration` = 1e300: must be a positive number of seconds"),
            (
                Box::new(|m| m.clock_drift_ppm = 1e6),
                "key `clock_drift_ppm` = 1000000: must be at most 100000 parts per million either way (the widest a configuration allows)",
            ),
        ];
        for (change, expected) in cases {
            let mut manifest = good.clone();
            change(&mut manifest);
            let error = read_as(dir.path(), "machine_2.json", manifest.to_json().as_bytes()).1.unwrap_err();
            assert!(error.starts_with(&format!("{file}: {expected}")), "{error}");
        }
    }

    #[test]
    fn a_manifest_that_is_no_json_is_one_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("manifest.json").display().to_string();
        for (text, expected) in [
            (&b"\xff\xfe{}"[..], "not UTF-8 text (byte 1 is not): not a manifest".to_string()),
            (b"{\"garbage", "1:9: malformed JSON: EOF while parsing a string".to_string()),
            (b"[1, 2]", "the file must hold a table of keys".to_string()),
            (b"{\"clocklab_version\": 3}", "key `clocklab_version` = 3: wrong type".to_string()),
        ] {
            let error = read_as(dir.path(), "manifest.json", text).0.unwrap_err();
            assert!(
                error.starts_with(&format!("{file}{}", if expected.starts_with("1:") { ":" } else { ": " })),
                "{error}"
            );
            assert!(error.contains(&expected), "{error}");
        }
        let missing = RunManifest::read(&dir.path().join("missing.json")).unwrap_err();
        assert!(missing.is_missing());
        std::fs::write(dir.path().join("big.json"), vec![b' '; 2000]).unwrap();
        let big = read_text_within(&dir.path().join("big.json"), 1000).unwrap_err().to_string();
        assert!(big.ends_with("big.json: larger than 1000 bytes: not a manifest"), "{big}");
    }
}
