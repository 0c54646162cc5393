//! Faults as a configuration writes them, and their validation.
//!
//! Every fault has a `kind`, a `start` in seconds after the start of the run
//! and, where it applies, an `end`:
//!
//! ```toml
//! [[faults]]
//! kind = "partition"          # the groups cannot reach each other from 10 s to 20 s
//! start = 10
//! end = 20
//! groups = [[1], [2, 3]]
//! direction = "both"          # or "one-way": the first group cannot reach the others
//! mode = "hold"               # or "drop"
//!
//! [[faults]]
//! kind = "latency"            # an extra delay on chosen directed links (all when absent)
//! links = [[1, 2]]
//! delay = { kind = "uniform", min_ms = 50, max_ms = 200 }
//!
//! [[faults]]
//! kind = "loss"
//! probability = 0.2
//!
//! [[faults]]
//! kind = "crash"              # machine 2 stops at 5 s and restarts at 8 s with a fresh clock
//! machine = 2
//! start = 5
//! end = 8
//! restart_clock = "fresh"     # or "recovered"
//!
//! [[faults]]
//! kind = "pause"              # machine 1 stops ticking from 12 s to 15 s
//! machine = 1
//! start = 12
//! end = 15
//!
//! [[faults]]
//! kind = "clock"              # machine 3's physical clock steps back half a second at 20 s
//! machine = 3
//! start = 20
//! step_ms = -500
//! ```

use std::fmt;

use clocklab_model::MachineId;
use serde::{Deserialize, Serialize};

/// The delay a `latency` fault adds to each message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DelaySpec {
    /// Always the same.
    Constant {
        /// The delay, in milliseconds.
        ms: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// The shortest, in milliseconds.
        min_ms: f64,
        /// The longest, in milliseconds.
        max_ms: f64,
    },
    /// Exponential with this mean.
    Exponential {
        /// The mean, in milliseconds.
        mean_ms: f64,
    },
}

/// Which way a partition cuts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// No group reaches another.
    #[default]
    Both,
    /// The first group cannot reach the others; they still reach it.
    OneWay,
}

/// What happens to a message that a partition cuts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionMode {
    /// It waits at the sender and arrives after the heal, as TCP would deliver it.
    #[default]
    Hold,
    /// It is lost.
    Drop,
}

/// A restarted machine's clocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartClock {
    /// Back to 0: Lamport's clock no longer only rises.
    #[default]
    Fresh,
    /// As they were at the crash (persisted after every tick): monotonic.
    Recovered,
}

/// One fault as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum FaultSpec {
    /// An extra delay on chosen directed links; each link keeps its order.
    Latency {
        /// Seconds after the start of the run.
        #[serde(default)]
        start: f64,
        /// When it ends (the run's end when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<f64>,
        /// The directed links `[from, to]` (every link when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        links: Option<Vec<[MachineId; 2]>>,
        /// The delay each message gets.
        delay: DelaySpec,
    },
    /// Each message on chosen links is lost with a probability.
    Loss {
        /// Seconds after the start of the run.
        #[serde(default)]
        start: f64,
        /// When it ends (the run's end when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<f64>,
        /// The directed links `[from, to]` (every link when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        links: Option<Vec<[MachineId; 2]>>,
        /// The chance that a message is lost, in `0..=1`.
        probability: f64,
    },
    /// Groups that cannot reach each other.
    Partition {
        /// Seconds after the start of the run.
        #[serde(default)]
        start: f64,
        /// When it heals (never, when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<f64>,
        /// The groups (a machine in no group reaches everyone).
        groups: Vec<Vec<MachineId>>,
        /// Which way it cuts.
        #[serde(default)]
        direction: Direction,
        /// What happens to a message it cuts.
        #[serde(default)]
        mode: PartitionMode,
    },
    /// A machine stops at an instant and, with an `end`, restarts then.
    Crash {
        /// The machine.
        machine: MachineId,
        /// When it stops.
        start: f64,
        /// When it restarts (never, when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<f64>,
        /// Its clocks when it restarts.
        #[serde(default)]
        restart_clock: RestartClock,
    },
    /// A machine stops ticking for a window (a long garbage collection, a stopped VM).
    Pause {
        /// The machine.
        machine: MachineId,
        /// When it stops.
        start: f64,
        /// When it goes on.
        end: f64,
    },
    /// A machine's physical clock steps, or changes its drift, at an instant.
    Clock {
        /// The machine.
        machine: MachineId,
        /// When.
        start: f64,
        /// The step, in milliseconds (back, when negative).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_ms: Option<f64>,
        /// The drift from then on, in parts per million.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drift_ppm: Option<f64>,
    },
}

impl FaultSpec {
    /// The kind's name, as written.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultSpec::Latency { .. } => "latency",
            FaultSpec::Loss { .. } => "loss",
            FaultSpec::Partition { .. } => "partition",
            FaultSpec::Crash { .. } => "crash",
            FaultSpec::Pause { .. } => "pause",
            FaultSpec::Clock { .. } => "clock",
        }
    }

    /// When it starts, in seconds after the start of the run.
    pub fn start(&self) -> f64 {
        match *self {
            FaultSpec::Latency { start, .. }
            | FaultSpec::Loss { start, .. }
            | FaultSpec::Partition { start, .. }
            | FaultSpec::Crash { start, .. }
            | FaultSpec::Pause { start, .. }
            | FaultSpec::Clock { start, .. } => start,
        }
    }

    /// When it ends, if it does.
    pub fn end(&self) -> Option<f64> {
        match *self {
            FaultSpec::Latency { end, .. }
            | FaultSpec::Loss { end, .. }
            | FaultSpec::Partition { end, .. }
            | FaultSpec::Crash { end, .. } => end,
            FaultSpec::Pause { end, .. } => Some(end),
            FaultSpec::Clock { .. } => None,
        }
    }

    /// The machine it concerns, for the faults of one machine.
    pub fn machine(&self) -> Option<MachineId> {
        match *self {
            FaultSpec::Crash { machine, .. } | FaultSpec::Pause { machine, .. } | FaultSpec::Clock { machine, .. } => {
                Some(machine)
            }
            _ => None,
        }
    }
}

/// A fault that breaks a rule: which fault, which key, its value, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("faults[{index}] ({kind}): key `{key}` = {value}: {reason}")]
pub struct FaultError {
    /// The fault's position in the list, from 0.
    pub index: usize,
    /// Its kind.
    pub kind: &'static str,
    /// The key at fault.
    pub key: &'static str,
    /// Its value, as written.
    pub value: String,
    /// What it must be.
    pub reason: String,
}

/// The longest extra delay a latency fault may draw: an hour.
pub const DELAY_MS_MAX: f64 = 3_600_000.0;

/// The largest clock step: a day.
pub const STEP_MS_MAX: f64 = 86_400_000.0;

/// The largest drift: 10%.
pub const DRIFT_PPM_MAX: f64 = 100_000.0;

fn show(value: impl fmt::Debug) -> String {
    format!("{value:?}")
}

/// Checks `faults` against a run of `n_machines` lasting `duration_s`.
pub fn validate(faults: &[FaultSpec], n_machines: u32, duration_s: f64) -> Result<(), FaultError> {
    for (index, fault) in faults.iter().enumerate() {
        let kind = fault.kind();
        let error = |key: &'static str, value: String, reason: &str| FaultError {
            index,
            kind,
            key,
            value,
            reason: reason.to_string(),
        };
        let machine_ok = |id: MachineId| (1..=n_machines).contains(&id);
        let start = fault.start();
        if !(start.is_finite() && start >= 0.0 && start < duration_s) {
            return Err(error(
                "start",
                start.to_string(),
                &format!("must be in 0..{duration_s} (seconds into the run)"),
            ));
        }
        if let Some(end) = fault.end()
            && !(end.is_finite() && end > start)
        {
            return Err(error("end", end.to_string(), &format!("must come after the start ({start} s)")));
        }
        if let Some(machine) = fault.machine()
            && !machine_ok(machine)
        {
            return Err(error(
                "machine",
                machine.to_string(),
                &format!("is not a machine of the run (1..={n_machines})"),
            ));
        }
        match fault {
            FaultSpec::Latency { links, delay, .. } => {
                check_links(links, n_machines).map_err(|reason| {
                    error("links", links.as_ref().map_or_else(|| "all".to_string(), show), &reason)
                })?;
                let ok = match *delay {
                    DelaySpec::Constant { ms } => (0.0..=DELAY_MS_MAX).contains(&ms),
                    DelaySpec::Uniform { min_ms, max_ms } => {
                        0.0 <= min_ms && min_ms <= max_ms && max_ms <= DELAY_MS_MAX
                    }
                    DelaySpec::Exponential { mean_ms } => mean_ms > 0.0 && mean_ms <= DELAY_MS_MAX,
                };
                if !ok {
                    return Err(error(
                        "delay",
                        show(delay),
                        "milliseconds must be finite, in 0..=3600000 and ordered (min <= max); an exponential mean above 0",
                    ));
                }
            }
            FaultSpec::Loss { links, probability, .. } => {
                check_links(links, n_machines).map_err(|reason| {
                    error("links", links.as_ref().map_or_else(|| "all".to_string(), show), &reason)
                })?;
                if !(0.0..=1.0).contains(probability) {
                    return Err(error("probability", probability.to_string(), "must be in 0..=1"));
                }
            }
            FaultSpec::Partition { groups, .. } => {
                let mut seen = Vec::new();
                if groups.len() < 2 {
                    return Err(error("groups", show(groups), "must list at least two groups"));
                }
                for group in groups {
                    if group.is_empty() {
                        return Err(error("groups", show(groups), "a group is empty"));
                    }
                    for &id in group {
                        if !machine_ok(id) {
                            return Err(error(
                                "groups",
                                show(groups),
                                &format!("machine {id} is not a machine of the run (1..={n_machines})"),
                            ));
                        }
                        if seen.contains(&id) {
                            return Err(error("groups", show(groups), &format!("machine {id} is in two groups")));
                        }
                        seen.push(id);
                    }
                }
            }
            FaultSpec::Crash { machine, end, .. } => {
                // One machine crashes once at a time: its windows must not overlap.
                for (other_index, other) in faults.iter().enumerate().take(index) {
                    if let FaultSpec::Crash { machine: other_machine, start: other_start, end: other_end, .. } = other
                        && other_machine == machine
                        && start < other_end.unwrap_or(f64::INFINITY)
                        && *other_start < end.unwrap_or(f64::INFINITY)
                    {
                        return Err(error(
                            "start",
                            start.to_string(),
                            &format!("machine {machine} is already down then (faults[{other_index}])"),
                        ));
                    }
                }
            }
            FaultSpec::Pause { machine, end, .. } => {
                for (other_index, other) in faults.iter().enumerate() {
                    let overlaps = |other_start: f64, other_end: Option<f64>| {
                        start < other_end.unwrap_or(f64::INFINITY) && other_start < *end
                    };
                    let clash = match other {
                        FaultSpec::Pause { machine: m, start: s, end: e } if other_index < index => {
                            m == machine && overlaps(*s, Some(*e))
                        }
                        FaultSpec::Crash { machine: m, start: s, end: e, .. } => m == machine && overlaps(*s, *e),
                        _ => false,
                    };
                    if clash {
                        return Err(error(
                            "start",
                            start.to_string(),
                            &format!("machine {machine} is already paused or down then (faults[{other_index}])"),
                        ));
                    }
                }
            }
            FaultSpec::Clock { step_ms, drift_ppm, .. } => {
                if step_ms.is_none() && drift_ppm.is_none() {
                    return Err(error(
                        "step_ms",
                        "nothing".into(),
                        "a clock fault needs `step_ms`, `drift_ppm` or both",
                    ));
                }
                if let Some(step) = step_ms
                    && !(step.is_finite() && step.abs() <= STEP_MS_MAX)
                {
                    return Err(error("step_ms", step.to_string(), "must be in -86400000..=86400000 (a day)"));
                }
                if let Some(drift) = drift_ppm
                    && !(drift.is_finite() && drift.abs() <= DRIFT_PPM_MAX)
                {
                    return Err(error("drift_ppm", drift.to_string(), "must be in -100000..=100000 (10%)"));
                }
            }
        }
    }
    Ok(())
}

/// Every link names two different machines of the run.
fn check_links(links: &Option<Vec<[MachineId; 2]>>, n_machines: u32) -> Result<(), String> {
    for &[from, to] in links.iter().flatten() {
        for id in [from, to] {
            if !(1..=n_machines).contains(&id) {
                return Err(format!("machine {id} is not a machine of the run (1..={n_machines})"));
            }
        }
        if from == to {
            return Err(format!("[{from}, {to}] is not a link: a machine does not send to itself"));
        }
    }
    if links.as_ref().is_some_and(Vec::is_empty) {
        return Err("lists no link (leave `links` out for every link)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<FaultSpec> {
        #[derive(Deserialize)]
        struct File {
            faults: Vec<FaultSpec>,
        }
        toml::from_str::<File>(text).unwrap().faults
    }

    #[test]
    fn the_documented_example_reads_and_passes() {
        let text = include_str!("spec.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! "))
            .skip_while(|line| !line.starts_with("```toml"))
            .skip(1)
            .take_while(|line| !line.starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n");
        let faults = parse(&text);
        assert_eq!(faults.len(), 6);
        assert_eq!(validate(&faults, 3, 60.0), Ok(()));
        assert!(matches!(
            faults[0],
            FaultSpec::Partition { mode: PartitionMode::Hold, direction: Direction::Both, .. }
        ));
    }

    /// One test per rule: the fault, and what the error must say (fault,
    /// key and value).
    macro_rules! rule {
        ($name:ident, $fault:expr, $want:expr) => {
            #[test]
            fn $name() {
                let faults = parse(&format!("[[faults]]\n{}\n", $fault));
                let message = validate(&faults, 3, 60.0).unwrap_err().to_string();
                assert!(message.contains($want), "{}: {message}", $fault);
            }
        };
    }

    rule!(
        a_machine_outside_the_run,
        "kind = \"pause\"\nmachine = 4\nstart = 1\nend = 2",
        "faults[0] (pause): key `machine` = 4: is not a machine of the run (1..=3)"
    );
    rule!(
        an_end_before_its_start,
        "kind = \"pause\"\nmachine = 1\nstart = 5\nend = 2",
        "faults[0] (pause): key `end` = 2: must come after the start (5 s)"
    );
    rule!(
        a_start_after_the_run,
        "kind = \"loss\"\nstart = 70\nprobability = 0.5",
        "faults[0] (loss): key `start` = 70: must be in 0..60 (seconds into the run)"
    );
    rule!(
        a_probability_above_one,
        "kind = \"loss\"\nprobability = 1.5",
        "faults[0] (loss): key `probability` = 1.5: must be in 0..=1"
    );
    rule!(
        a_link_to_itself,
        "kind = \"loss\"\nprobability = 0.5\nlinks = [[1, 1]]",
        "key `links` = [[1, 1]]: [1, 1] is not a link: a machine does not send to itself"
    );
    rule!(
        a_link_outside_the_run,
        "kind = \"loss\"\nprobability = 0.5\nlinks = [[1, 9]]",
        "machine 9 is not a machine of the run"
    );
    rule!(
        a_uniform_delay_upside_down,
        "kind = \"latency\"\ndelay = { kind = \"uniform\", min_ms = 5, max_ms = 1 }",
        "faults[0] (latency): key `delay`"
    );
    rule!(
        a_constant_delay_beyond_an_hour,
        "kind = \"latency\"\ndelay = { kind = \"constant\", ms = 3600001 }",
        "in 0..=3600000"
    );
    rule!(
        an_exponential_delay_of_mean_zero,
        "kind = \"latency\"\ndelay = { kind = \"exponential\", mean_ms = 0 }",
        "an exponential mean above 0"
    );
    rule!(a_machine_in_two_groups, "kind = \"partition\"\ngroups = [[1, 2], [2, 3]]", "machine 2 is in two groups");
    rule!(a_single_group, "kind = \"partition\"\ngroups = [[1, 2, 3]]", "must list at least two groups");
    rule!(an_empty_group, "kind = \"partition\"\ngroups = [[1], []]", "a group is empty");
    rule!(
        a_group_outside_the_run,
        "kind = \"partition\"\ngroups = [[1], [4]]",
        "machine 4 is not a machine of the run"
    );
    rule!(
        a_clock_fault_that_changes_nothing,
        "kind = \"clock\"\nmachine = 1\nstart = 3",
        "needs `step_ms`, `drift_ppm` or both"
    );
    rule!(
        a_step_beyond_a_day,
        "kind = \"clock\"\nmachine = 1\nstart = 3\nstep_ms = 1e12",
        "key `step_ms` = 1000000000000: must be in -86400000..=86400000 (a day)"
    );
    rule!(
        a_drift_beyond_ten_percent,
        "kind = \"clock\"\nmachine = 1\nstart = 3\ndrift_ppm = 200000",
        "key `drift_ppm` = 200000: must be in -100000..=100000 (10%)"
    );

    #[test]
    fn a_machine_is_down_or_paused_once_at_a_time() {
        let faults = parse(
            "[[faults]]\nkind = \"crash\"\nmachine = 2\nstart = 5\nend = 10\n\
             [[faults]]\nkind = \"crash\"\nmachine = 2\nstart = 8\n",
        );
        let message = validate(&faults, 3, 60.0).unwrap_err().to_string();
        assert!(
            message.starts_with("faults[1] (crash): key `start` = 8: machine 2 is already down then (faults[0])"),
            "{message}"
        );
        let faults = parse(
            "[[faults]]\nkind = \"crash\"\nmachine = 2\nstart = 5\nend = 10\n\
             [[faults]]\nkind = \"pause\"\nmachine = 2\nstart = 9\nend = 12\n",
        );
        assert!(validate(&faults, 3, 60.0).unwrap_err().to_string().contains("already paused or down"));
        // One after the other is fine.
        let faults = parse(
            "[[faults]]\nkind = \"crash\"\nmachine = 2\nstart = 5\nend = 10\n\
             [[faults]]\nkind = \"crash\"\nmachine = 2\nstart = 10\n",
        );
        assert_eq!(validate(&faults, 3, 60.0), Ok(()));
    }

    #[test]
    fn unknown_keys_and_kinds_are_refused_by_the_reader() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)] // Only its parse result matters.
        struct File {
            faults: Vec<FaultSpec>,
        }
        assert!(toml::from_str::<File>("[[faults]]\nkind = \"loss\"\nprobability = 0.1\nprob = 2\n").is_err());
        assert!(toml::from_str::<File>("[[faults]]\nkind = \"meteor\"\n").is_err());
    }
}
