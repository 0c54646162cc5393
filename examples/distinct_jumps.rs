//! Writes a run folder whose machine 1 has `n` ticks with `n` distinct jump
//! sizes (1, 2, …, n): the hostile input that made the analysis' histograms
//! and its `summary.json` grow with the number of distinct values. For
//! `scripts/distinct-jumps.sh`, which measures the analysis and the check on
//! it.
//!
//! `cargo run --release --example distinct_jumps -- <folder> [n] [ones]`
//!
//! With `ones`, every jump is 1 instead: the same lines, the same size, for
//! a comparison that tells what the distinct values cost.
//!
//! Machine 1 processes a message carrying its clock plus `k - 1` at its k-th
//! tick, so its clock jumps by `k` as Lamport's rule says; no sender logs
//! those messages (no machine of the model could: the log is made up, line
//! by line, as damaged input is). Machine 2 ticks once a millisecond.

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

/// The run starts here: 2026-01-01T00:00:00Z, in microseconds.
const START_US: i64 = 1_767_225_600_000_000;

fn line(id: u32, event: &str, clock: u64, time_us: i64) -> String {
    let stamp = clocklab_log::rfc3339_us(time_us);
    let seconds = stamp[..19].replace('T', " ");
    format!(
        "{id}> Event: {event} | System Time: {seconds} | Logical Clock: {clock} | Queue Length: 0 | Timestamp: {stamp}\n"
    )
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        clocklab_net::note!("usage: distinct_jumps <folder> [n]");
        return ExitCode::from(2);
    };
    let n: u64 = match args.next().map(|n| n.to_string_lossy().parse()) {
        None => 2_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            clocklab_net::note!("distinct_jumps: n must be a positive whole number");
            return ExitCode::from(2);
        }
    };
    let ones = match args.next() {
        None => false,
        Some(word) if word == "ones" => true,
        Some(_) => {
            clocklab_net::note!("distinct_jumps: the third argument can only be `ones`");
            return ExitCode::from(2);
        }
    };
    match write(&dir, n, ones) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            clocklab_net::note!("distinct_jumps: {}: {error}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn write(dir: &std::path::Path, n: u64, ones: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // Machine 1 ticks once a microsecond, for n microseconds.
    let end_us = START_US + n as i64 + 1;
    let mut one = BufWriter::new(std::fs::File::create(dir.join("machine_1.log"))?);
    one.write_all(line(1, "Initialized on 127.0.0.1:5001 with clock rate 1000000", 0, START_US).as_bytes())?;
    one.write_all(line(1, "Connected to machine 2 at 127.0.0.1:5002", 0, START_US).as_bytes())?;
    let mut clock = 0u64;
    for k in 1..=n {
        let jump = if ones { 1 } else { k };
        let carried = clock + jump - 1;
        clock += jump;
        let event = format!("Processed message from machine 2 with clock {carried}");
        one.write_all(line(1, &event, clock, START_US + k as i64).as_bytes())?;
    }
    one.write_all(line(1, "Stopped", clock, end_us).as_bytes())?;
    one.flush()?;
    let mut two = BufWriter::new(std::fs::File::create(dir.join("machine_2.log"))?);
    two.write_all(line(2, "Initialized on 127.0.0.1:5002 with clock rate 1000", 0, START_US).as_bytes())?;
    two.write_all(line(2, "Connected to machine 1 at 127.0.0.1:5001", 0, START_US).as_bytes())?;
    let ticks = (n / 1_000).max(1);
    for k in 1..=ticks {
        two.write_all(line(2, "Internal event", k, START_US + k as i64 * 1_000).as_bytes())?;
    }
    two.write_all(line(2, "Stopped", ticks, end_us).as_bytes())?;
    two.flush()
}
