//! The summary's tables: the terminal table (`summary.txt`) and the CSV
//! files, written by the `csv` crate from one row type each.

use std::fmt::Write as _;

use serde::Serialize;

use crate::report::view::status_of;
use crate::run::FileDiagnostics;
use crate::summary::{METRICS, MetricSpread, Summary, run_metric};
use crate::words::{count, fixed};

/// The terminal summary: one table per experiment, its aggregates, what was
/// left out of them, then the problems of the logs.
pub fn render_table(summary: &Summary) -> String {
    let mut out = String::new();
    for experiment in &summary.experiments {
        let precision = if experiment.whole_seconds() { " (whole-second times: lag precise to 1 s)" } else { "" };
        let _ = writeln!(out, "== {} ({}){precision}", experiment.name, count(experiment.runs.len() as u64, "run"));
        // The run column is as wide as its longest name (a run of machines
        // started by hand is named after when they started), starred or not.
        let width = experiment.runs.iter().map(|run| run.name.chars().count() + 1).max().unwrap_or(0).max(9);
        let _ = writeln!(
            out,
            "{:<width$} {:>3} {:>4} {:>6} {:>5} {:>13} {:>5} {:>4} {:>4} {:>6} {:>6} {:>15} {:>5} {:>4} {:>15} {:>14} {:>4}",
            "run",
            "id",
            "rate",
            "ratio",
            "rho",
            "ticks/expect",
            "jump",
            "p99",
            "max",
            "lag",
            "lag s",
            "lag growth/s",
            "queue",
            "max",
            "queue growth/s",
            "proc/sent/int",
            "left"
        );
        for run in &experiment.runs {
            // A run left out of the aggregates is starred.
            let name = if run.is_sound() { run.name.clone() } else { format!("*{}", run.name) };
            for m in &run.machines {
                let _ = writeln!(
                    out,
                    "{:<width$} {:>3} {:>4} {:>6} {:>5} {:>13} {:>5} {:>4} {:>4} {:>6} {:>6} {:>15} {:>5} {:>4} {:>15} {:>14} {:>4}",
                    name,
                    m.id,
                    m.rate,
                    fixed(m.rate_ratio, 2),
                    fixed(m.load.utilisation, 2),
                    format!("{}/{}", m.ticks, fixed(m.expected_ticks, 0)),
                    fixed(m.jump.mean, 2),
                    m.jump.p99,
                    m.jump.max,
                    fixed(m.lag.mean_ticks, 2),
                    fixed(m.lag.mean_s, 2),
                    format!("{}±{}", fixed(m.lag.growth.per_s, 3), fixed(m.lag.growth.se, 3)),
                    fixed(m.queue.mean, 2),
                    m.queue.max,
                    format!("{}±{}", fixed(m.queue.growth.per_s, 3), fixed(m.queue.growth.se, 3)),
                    format!("{}/{}/{}", m.events.processed, m.events.sent, m.events.internal),
                    m.messages_unprocessed,
                );
            }
        }
        if !experiment.excluded.is_empty() {
            let _ = writeln!(out, "* left out of the aggregates:");
            for (run, why) in &experiment.excluded {
                let _ = writeln!(out, "  {run}: {why}");
            }
        }
        if !experiment.aggregate.is_empty() {
            let _ = writeln!(out, "across the runs that enter the aggregates: mean [95% t interval]");
        }
        for MetricSpread { metric, spread, coverage, .. } in &experiment.aggregate {
            let mut ci =
                spread.ci95.map(|[low, high]| format!(" [{}, {}]", fixed(low, 3), fixed(high, 3))).unwrap_or_default();
            if let Some(measured) = coverage.filter(|m| spread.ci95.is_some() && !m.kept()) {
                ci += &format!(" (covers {} in the simulator)", crate::words::percent(measured.coverage, 1.0));
            }
            let _ =
                writeln!(out, "  {metric:<17} {:>9}{ci} ({})", fixed(spread.mean, 3), count(spread.n as u64, "run"));
        }
        let _ = writeln!(out);
    }
    let problems = problem_lines(summary);
    if !problems.is_empty() {
        let _ = writeln!(out, "== problems with the files (skipped or flagged, never fatal)");
        for problem in &problems {
            let _ = writeln!(out, "{problem}");
        }
    }
    out
}

/// Every problem, one line each: the files' (damaged or skipped lines,
/// unreadable, not counted), then each run's folder's (a damaged manifest,
/// naming its file), then each machine's log's (an incomplete log, a
/// damaged line).
pub fn problem_lines(summary: &Summary) -> Vec<String> {
    let mut all: Vec<String> = summary.diagnostics.iter().map(describe_diagnostics).collect();
    for experiment in &summary.experiments {
        for run in &experiment.runs {
            all.extend(run.problems.iter().map(|p| format!("{} {}: {p}", experiment.name, run.name)));
            for m in &run.machines {
                all.extend(
                    m.problems.iter().map(|p| format!("{} {} machine {}: {p}", experiment.name, run.name, m.id)),
                );
            }
        }
    }
    all
}

/// One line about a file's problems.
pub fn describe_diagnostics(d: &FileDiagnostics) -> String {
    let mut parts = Vec::new();
    if let Some(error) = &d.open_error {
        parts.push(format!("unreadable: {error}"));
    }
    if d.skipped_lines > 0 {
        let first: Vec<String> = d.first_skipped.iter().map(|(line, why)| format!("{line} ({why})")).take(3).collect();
        parts.push(format!("{} skipped, first at line {}", count(d.skipped_lines, "damaged line"), first.join(", ")));
    }
    if d.truncated_last_line {
        parts.push("last line cut off (ignored)".to_string());
    }
    if d.lines_after_stop > 0 {
        parts.push(format!("{} after Stopped (ignored)", count(d.lines_after_stop, "line")));
    }
    parts.extend(d.problems.iter().cloned());
    format!("{}: {}", d.path.display(), parts.join("; "))
}

/// CSV text of `rows`.
fn csv_of<T: Serialize>(rows: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).expect("a row of numbers and strings always serialises");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// A row of `machines.csv`.
#[derive(Serialize)]
struct MachineCsvRow<'a> {
    experiment: &'a str,
    run: &'a str,
    run_status: String,
    in_aggregates: bool,
    machine: u32,
    rate: u32,
    rate_ratio: f64,
    utilisation: f64,
    overloaded: bool,
    ticks: u64,
    expected_ticks: f64,
    tick_ratio: f64,
    final_clock: u64,
    clock_rate_per_s: f64,
    jump_mean: f64,
    jump_p50: u64,
    jump_p99: u64,
    jump_max: u64,
    lag_mean_ticks: f64,
    lag_max_ticks: u64,
    lag_mean_s: f64,
    lag_max_s: f64,
    lag_growth_per_s: f64,
    lag_growth_se: f64,
    lag_grows: bool,
    lag_stationary_ticks: Option<f64>,
    queue_mean: f64,
    queue_p99: u64,
    queue_max: u64,
    queue_last: u64,
    queue_growth_per_s: f64,
    queue_growth_se: f64,
    queue_grows: bool,
    predicted_arrival_per_s: Option<f64>,
    predicted_utilisation: Option<f64>,
    predicted_queue_growth_per_s: Option<f64>,
    received: u64,
    processed: u64,
    sent: u64,
    internal: u64,
    messages_sent: u64,
    messages_unprocessed: u64,
    hlc_offset_max_us: Option<i64>,
    hlc_offset_mean_us: Option<f64>,
    hlc_counter_max: Option<u64>,
}

/// `machines.csv`: one row per machine per run.
pub fn machines_csv(summary: &Summary) -> Vec<u8> {
    csv_of(summary.experiments.iter().flat_map(|e| {
        e.runs.iter().flat_map(move |r| {
            r.machines.iter().map(move |m| MachineCsvRow {
                experiment: &e.name,
                run: &r.name,
                run_status: status_of(r),
                in_aggregates: r.is_sound(),
                machine: m.id,
                rate: m.rate,
                rate_ratio: m.rate_ratio,
                utilisation: m.load.utilisation,
                overloaded: m.load.overloaded,
                ticks: m.ticks,
                expected_ticks: m.expected_ticks,
                tick_ratio: m.tick_ratio,
                final_clock: m.final_clock,
                clock_rate_per_s: m.clock_rate_per_s,
                jump_mean: m.jump.mean,
                jump_p50: m.jump.p50,
                jump_p99: m.jump.p99,
                jump_max: m.jump.max,
                lag_mean_ticks: m.lag.mean_ticks,
                lag_max_ticks: m.lag.max_ticks,
                lag_mean_s: m.lag.mean_s,
                lag_max_s: m.lag.max_s,
                lag_growth_per_s: m.lag.growth.per_s,
                lag_growth_se: m.lag.growth.se,
                lag_grows: m.lag.growth.grows,
                lag_stationary_ticks: m.lag.stationary_ticks,
                queue_mean: m.queue.mean,
                queue_p99: m.queue.p99,
                queue_max: m.queue.max,
                queue_last: m.queue.last,
                queue_growth_per_s: m.queue.growth.per_s,
                queue_growth_se: m.queue.growth.se,
                queue_grows: m.queue.growth.grows,
                predicted_arrival_per_s: m.fluid.map(|f| f.arrival_per_s),
                predicted_utilisation: m.fluid.map(|f| f.utilisation),
                predicted_queue_growth_per_s: m.fluid.map(|f| f.queue_growth_per_s),
                received: m.load.received,
                processed: m.events.processed,
                sent: m.events.sent,
                internal: m.events.internal,
                messages_sent: m.messages_sent,
                messages_unprocessed: m.messages_unprocessed,
                hlc_offset_max_us: m.hlc.as_ref().map(|h| h.offset_max_us),
                hlc_offset_mean_us: m.hlc.as_ref().map(|h| h.offset_mean_us),
                hlc_counter_max: m.hlc.as_ref().map(|h| h.counter_max),
            })
        })
    }))
}

/// A row of `jumps.csv`.
#[derive(Serialize)]
struct JumpCsvRow<'a> {
    experiment: &'a str,
    run: &'a str,
    machine: u32,
    rate: u32,
    jump: u64,
    ticks: u64,
}

/// `jumps.csv`: the jump-size distribution, one row per machine, run and jump size.
pub fn jumps_csv(summary: &Summary) -> Vec<u8> {
    csv_of(summary.experiments.iter().flat_map(|e| {
        e.runs.iter().flat_map(move |r| {
            r.machines.iter().flat_map(move |m| {
                m.jump.distribution.iter().map(move |(&jump, &ticks)| JumpCsvRow {
                    experiment: &e.name,
                    run: &r.name,
                    machine: m.id,
                    rate: m.rate,
                    jump,
                    ticks,
                })
            })
        })
    }))
}

/// A row of `experiments.csv`.
#[derive(Serialize)]
struct ExperimentCsvRow<'a> {
    experiment: &'a str,
    metric: &'a str,
    runs: usize,
    mean: f64,
    sd: f64,
    min: f64,
    max: f64,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
}

/// `experiments.csv`: one row per experiment and metric, over the runs that
/// enter the aggregates.
pub fn experiments_csv(summary: &Summary) -> Vec<u8> {
    csv_of(summary.experiments.iter().flat_map(|e| {
        e.aggregate.iter().map(move |MetricSpread { metric, spread: s, .. }| ExperimentCsvRow {
            experiment: &e.name,
            metric,
            runs: s.n,
            mean: s.mean,
            sd: s.sd,
            min: s.min,
            max: s.max,
            ci95_low: s.ci95.map(|c| c[0]),
            ci95_high: s.ci95.map(|c| c[1]),
        })
    }))
}

/// `runs.csv`: one row per run: its status, rate draws and run-level metrics.
pub fn runs_csv(summary: &Summary) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> =
        vec!["experiment", "run", "rates", "status", "in_aggregates", "runtime", "run_seed", "duration_s"];
    header.extend(METRICS.iter().map(|metric| metric.name));
    writer.write_record(&header).expect("writing to memory cannot fail");
    for e in &summary.experiments {
        for r in &e.runs {
            let rates: Vec<String> = r.machines.iter().map(|m| m.rate.to_string()).collect();
            let mut record = vec![
                e.name.clone(),
                r.name.clone(),
                rates.join(" "),
                status_of(r),
                r.is_sound().to_string(),
                r.info.runtime.clone(),
                r.info.run_seed.map(|s| s.to_string()).unwrap_or_default(),
                r.duration_s.to_string(),
            ];
            record.extend(METRICS.iter().map(|metric| {
                let value = run_metric(r, metric.name);
                if value.is_finite() { value.to_string() } else { String::new() }
            }));
            writer.write_record(&record).expect("writing to memory cannot fail");
        }
    }
    writer.into_inner().expect("writing to memory cannot fail")
}
