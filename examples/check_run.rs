//! Checks a run folder written by either runtime, for benchmarks of many
//! machines: every machine's tick count against `ceil(rate x duration)`,
//! every message sent against those received, the log check's rules, and
//! the tick lateness the manifest records.
//!
//! `cargo run --release --example check_run -- <run folder>`

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clocklab_config::layout;
use clocklab_log::LogFormat;
use clocklab_model::schedule;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        clocklab_net::note!("usage: check_run <run folder>");
        return ExitCode::from(2);
    };
    let run = match layout::read_run(&dir, LogFormat::Text) {
        Ok(run) => run,
        Err(error) => {
            clocklab_net::note!("{}: {error}", dir.display());
            return ExitCode::from(2);
        }
    };
    let manifest = &run.manifest;
    let duration_us = schedule::duration_us(manifest.experiment.duration);
    let report = run.check(0);
    let exact = manifest
        .machines
        .iter()
        .filter(|m| report.ticks.get(&m.id) == Some(&schedule::n_ticks(m.rate, duration_us)))
        .count();
    let sent: u64 = report.sent.values().sum();
    let received: u64 = report.received.values().sum();
    let lines: usize = run.logs.values().map(Vec::len).sum();
    let _ = writeln!(
        std::io::stdout(),
        "{} machines, status {}: {exact} with their exact tick count; {} ticks, {lines} lines; {sent} messages sent, {received} received; {} rule(s) broken",
        manifest.machines.len(),
        manifest.status.name(),
        report.ticks.values().sum::<u64>(),
        report.violations.len()
    );
    for violation in report.violations.iter().take(5) {
        let _ = writeln!(std::io::stdout(), "  {violation}");
    }
    // Tick lateness, per machine, as the manifest records it.
    let lateness: Vec<(u64, u64, u64)> = manifest
        .extra
        .get("tick_lateness_us")
        .and_then(|value| value.as_object())
        .map(|machines| {
            machines
                .values()
                .map(|m| {
                    let field = |name: &str| m[name].as_u64().unwrap_or(0);
                    (field("p50_us"), field("p99_us"), field("max_us"))
                })
                .collect()
        })
        .unwrap_or_default();
    if !lateness.is_empty() {
        let median_worst = |pick: fn(&(u64, u64, u64)) -> u64| {
            let mut values: Vec<u64> = lateness.iter().map(pick).collect();
            values.sort_unstable();
            (values[values.len() / 2], values[values.len() - 1])
        };
        let (p50, p99, max) = (median_worst(|l| l.0), median_worst(|l| l.1), median_worst(|l| l.2));
        let _ = writeln!(
            std::io::stdout(),
            "tick lateness (median / worst over machines, us): p50 {} / {}, p99 {} / {}, max {} / {}",
            p50.0,
            p50.1,
            p99.0,
            p99.1,
            max.0,
            max.1
        );
    }
    let sound = report.is_ok() && exact == manifest.machines.len() && sent == received;
    if sound { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
