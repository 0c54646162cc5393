//! What every key of a configuration means and which values it takes: the
//! comments of `clocklab config --print-default` (the README's configuration
//! table says the same, and a test keeps the two in step).

use crate::config::Config;
use crate::limits;

/// One key of the configuration file, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key as written (`sim.network`, `physical_clock.offset_ms_max`).
    pub key: &'static str,
    /// Other spellings it is read under (the reference implementation's).
    pub aliases: &'static [&'static str],
    /// What it sets.
    pub meaning: &'static str,
    /// The values it takes.
    pub range: String,
}

/// Every key, in the order a file lists them.
pub fn key_docs() -> Vec<KeyDoc> {
    let doc = |key, aliases, meaning, range: String| KeyDoc { key, aliases, meaning, range };
    vec![
        doc(
            "host",
            &["HOST"],
            "the address machines listen on",
            format!("an address or a host name, 1..={} bytes", limits::HOST_LEN_MAX),
        ),
        doc(
            "ports",
            &["PORTS"],
            "one port per machine, for `clocklab machine` started by hand (`clocklab run` ignores them and picks free ports)",
            "ports in 1..=65535, one per machine, none twice: a list, or a table from machine id to port".into(),
        ),
        doc("runtime", &[], "`real` (processes, TCP) or `sim` (the simulator)", "`real` or `sim`".into()),
        doc("log_format", &[], "the log files each machine writes", "`text`, `jsonl` or `both`".into()),
        doc(
            "seed",
            &[],
            "the suite's seed: the same seed gives the same draws (random and printed without one)",
            "a whole number in 0..=18446744073709551615".into(),
        ),
        doc(
            "token",
            &[],
            "the secret that every connection of machines started by hand presents; without one, a token derived from `host` and `ports`, which any program that can read the file can present (`clocklab config --init FILE` writes a file with a fresh one; clocklab never prints it)",
            "32 hexadecimal digits".into(),
        ),
        doc(
            "connect_timeout",
            &[],
            "seconds a machine waits for every peer to connect; also how long a peer may stay unwritable, and the drain: how long after ticking ends a message may still leave (the fault plan holds a later one at its sender, logged `Held`) and the end waits for the peers' last messages",
            format!("{}..={} seconds", limits::CONNECT_TIMEOUT_S_MIN, limits::CONNECT_TIMEOUT_S_MAX),
        ),
        doc(
            "queue_cap",
            &[],
            "messages a machine's queue holds; beyond it new messages are refused and counted",
            format!("1..={} messages", limits::QUEUE_CAP_MAX),
        ),
        doc(
            "machines",
            &[],
            "machines per run",
            format!(
                "2..={} (the real runtime: 2..={}; with vector clocks: 2..={})",
                limits::MACHINES_MAX,
                limits::REAL_MACHINES_MAX,
                limits::VECTOR_MACHINES_MAX
            ),
        ),
        doc(
            "max_clock_rate",
            &["MAX_CLOCK_RATE"],
            "rates are drawn from `1..=max_clock_rate` ticks per second",
            format!("1..={}", limits::MAX_CLOCK_RATE_MAX),
        ),
        doc(
            "max_event_num",
            &["MAX_EVENT_NUM"],
            "event draws are from `1..=max_event_num` (1, 2 and 3 send)",
            format!("3..={}", limits::MAX_EVENT_NUM_MAX),
        ),
        doc(
            "runs",
            &[],
            "runs per experiment",
            format!(
                "1..={} (and at most {} machine runs, runs x machines, in a suite)",
                limits::RUNS_MAX,
                limits::MACHINE_RUNS_MAX
            ),
        ),
        doc(
            "duration",
            &["DURATION", "EXPERIMENT_DURATION"],
            "seconds each run ticks",
            format!("{}..={} seconds (a year)", limits::DURATION_S_MIN, limits::DURATION_S_MAX),
        ),
        doc(
            "clocks",
            &[],
            "the clocks every machine keeps (Lamport's always)",
            "a list of `lamport`, `vector`, `hlc`".into(),
        ),
        doc(
            "physical_clock.offset_ms_max",
            &[],
            "each machine's physical clock starts off true time by up to this many milliseconds",
            "0..=86400000 milliseconds (a day)".into(),
        ),
        doc(
            "physical_clock.drift_ppm_max",
            &[],
            "each machine's physical clock drifts by up to this many parts per million",
            "0..=100000 (10%)".into(),
        ),
        doc(
            "faults",
            &[],
            "what goes wrong in every run of the experiment: a list of faults, each a table with a `kind` (`latency`, `loss`, `partition`, `crash`, `pause`, `clock`), a `start` and an `end` in seconds after the start of the run, and its targets (see the README's Faults section)",
            "a list of faults, each checked against its run: its machines, its duration, no overlapping crashes or pauses of one machine".into(),
        ),
        doc(
            "sim.epoch_us",
            &[],
            "where virtual time starts, in microseconds since the Unix epoch",
            "a whole number; every instant a simulated run writes must fall in the years 0 to 9999".into(),
        ),
        doc(
            "sim.network",
            &[],
            "the simulated delivery delay: `constant` (`delay_us`), `uniform` (`min_us`, `max_us`) or `exponential` (`min_us`, `mean_us`)",
            format!("each delay in 0..={} microseconds (an hour), min <= max or mean", limits::DELAY_US_MAX),
        ),
        doc(
            "experiments",
            &[],
            "the experiments, each a table of `name`, the experiment keys above, a fixed `seed`, and `control`: the name of the experiment this one varies, whose seeds it draws (the same rates and event draws) and which the report compares it with run by run",
            format!(
                "1..={} experiments; a name is a folder's: letters, digits, `-`, `_`, `.`, at most {} bytes, unique, not `analysis`, `config.toml`, `command.json`, `manifest.json` or `run_<k>`",
                limits::EXPERIMENTS_MAX,
                limits::NAME_LEN_MAX
            ),
        ),
    ]
}

/// The comment lines explaining `key`.
fn comment(key: &str) -> String {
    let docs = key_docs();
    let Some(doc) = docs.iter().find(|doc| doc.key == key) else { return String::new() };
    let mut text = format!("# {}: {}.\n# Takes: {}.", doc.key, upper_first(doc.meaning), doc.range);
    if !doc.aliases.is_empty() {
        text.push_str(&format!(" Also read as {}.", doc.aliases.join(", ")));
    }
    text.push('\n');
    text
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

impl Config {
    /// The configuration as TOML with a comment above every key saying what
    /// it sets and which values it takes, for `clocklab config
    /// --print-default`. Keys without a value (`ports`, `seed`, `token`) are
    /// shown commented out. Reading the text back gives this configuration.
    pub fn to_commented_toml(&self) -> String {
        let table = toml::Table::try_from(self).expect("a Config always serialises");
        let mut out = String::from(
            "# clocklab's configuration. Every key is optional; the experiment keys at the top level\n\
             # (machines, max_clock_rate, max_event_num, runs, duration, clocks, physical_clock, faults)\n\
             # are defaults for every experiment that does not set its own.\n",
        );
        let line = |out: &mut String, key: &str, value: &toml::Value| out.push_str(&format!("{key} = {value}\n"));
        for key in ["host", "ports", "runtime", "log_format", "seed", "token", "connect_timeout", "queue_cap"] {
            out.push('\n');
            out.push_str(&comment(key));
            match (table.get(key), key) {
                (Some(value), _) => line(&mut out, key, value),
                (None, "ports") => out.push_str("# ports = [5001, 5002, 5003]\n"),
                (None, "seed") => out.push_str("# seed = 42\n"),
                (None, "token") => out.push_str("# token = \"<32 hexadecimal digits>\"\n"),
                (None, _) => {}
            }
        }
        out.push_str("\n# The experiment keys, as defaults for every experiment:\n");
        for key in ["machines", "max_clock_rate", "max_event_num", "runs", "duration", "clocks"] {
            out.push_str(&comment(key));
        }
        for key in ["physical_clock.offset_ms_max", "physical_clock.drift_ppm_max", "faults"] {
            out.push_str(&comment(key));
        }
        if let Some(toml::Value::Table(sim)) = table.get("sim") {
            out.push_str("\n[sim]\n");
            out.push_str(&comment("sim.epoch_us"));
            if let Some(epoch) = sim.get("epoch_us") {
                line(&mut out, "epoch_us", epoch);
            }
            if let Some(toml::Value::Table(network)) = sim.get("network") {
                out.push_str("\n[sim.network]\n");
                out.push_str(&comment("sim.network"));
                let order = ["kind"].into_iter().chain(self.sim.network.parameters().into_iter().map(|(name, _)| name));
                for key in order {
                    if let Some(value) = network.get(key) {
                        line(&mut out, key, value);
                    }
                }
            }
        }
        out.push('\n');
        out.push_str(&comment("experiments"));
        if let Some(toml::Value::Array(experiments)) = table.get("experiments") {
            for experiment in experiments {
                out.push_str("\n[[experiments]]\n");
                if let toml::Value::Table(experiment) = experiment {
                    // In the order of the README's table, the name first.
                    let order =
                        ["name", "machines", "max_clock_rate", "max_event_num", "runs", "duration", "seed", "control"];
                    let rest = experiment.keys().filter(|key| !order.contains(&key.as_str())).map(String::as_str);
                    for key in order.into_iter().chain(rest) {
                        let Some(value) = experiment.get(key) else { continue };
                        match value {
                            toml::Value::Table(inner) => {
                                for (inner_key, inner_value) in inner {
                                    line(&mut out, &format!("{key}.{inner_key}"), inner_value);
                                }
                            }
                            _ => line(&mut out, key, value),
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::tests::load;

    #[test]
    fn the_commented_default_explains_every_key_and_reads_back() {
        let text = Config::default().to_commented_toml();
        assert_eq!(load("c.toml", &text).unwrap(), Config::default());
        for doc in key_docs() {
            assert!(text.contains(&format!("# {}: ", doc.key)), "{} is not explained:\n{text}", doc.key);
        }
        assert!(text.contains("# Takes: 2..=20000 (the real runtime: 2..=100"), "{text}");
        // A configuration with every kind of value reads back too.
        let mut config = load(
            "c.toml",
            "ports = [5001, 5002]\nmachines = 2\nseed = 9\n[physical_clock]\noffset_ms_max = 3\n\
             [sim.network]\nkind = \"uniform\"\nmin_us = 1\nmax_us = 2\n",
        )
        .unwrap();
        assert_eq!(load("c.toml", &config.to_commented_toml()).unwrap(), config);
        // The token is a secret: it is never printed.
        config.token = Some("00112233445566778899aabbccddeeff".into());
        assert!(!config.to_commented_toml().contains("0011223344"));
    }
}
