//! `clocklab bench`: how fast the simulator runs one experiment (its own
//! thread, and with `--logs` the threads that write the files beside it);
//! with `--runtime real`, what the real runtime costs (`bench_real`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use clocklab_config::{Config, LogFormats, Runtime, plan_runs};
use clocklab_sim::{CountingSink, LogFiles, SimSummary, Simulation};

/// Arguments of `clocklab bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many machines.
    #[arg(long, default_value_t = 3)]
    machines: u32,
    /// Virtual seconds the machines tick.
    #[arg(long, default_value_t = 3600.0)]
    duration: f64,
    /// Rates are drawn from 1..=this.
    #[arg(long, default_value_t = 6)]
    max_clock_rate: u32,
    /// Event draws are from 1..=this.
    #[arg(long, default_value_t = 10)]
    max_event_num: u32,
    /// The seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The clocks every machine keeps, e.g. `lamport,vector,hlc`.
    #[arg(long, value_delimiter = ',', value_name = "CLOCKS", default_value = "lamport")]
    clocks: Vec<String>,
    /// Write text logs into this folder (made if missing); without it, lines
    /// are only counted.
    #[arg(long)]
    logs: Option<PathBuf>,
    /// The simulator (the default), or real processes over TCP.
    #[arg(long, value_enum, default_value = "sim")]
    runtime: BenchRuntime,
    #[command(flatten)]
    real: super::bench_real::RealArgs,
}

/// What `clocklab bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchRuntime {
    /// The simulator, in this process.
    Sim,
    /// The real runtime: `clocklab run` child processes.
    Real,
}

/// Runs `clocklab bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.runtime == BenchRuntime::Real {
        let common = super::bench_real::Common {
            max_event_num: args.max_event_num,
            seed: args.seed,
            clocks: &args.clocks,
            logs: args.logs.as_deref(),
        };
        return super::bench_real::run(&args.real, &common);
    }
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.name = "bench".into();
    experiment.machines = args.machines;
    experiment.duration = args.duration;
    experiment.max_clock_rate = args.max_clock_rate;
    experiment.max_event_num = args.max_event_num;
    experiment.runs = 1;
    experiment.clocks = super::parse_clocks(&args.clocks)?;
    config.log_format = LogFormats::Text;
    // The simulator's limits, not the real runtime's.
    config.runtime = Runtime::Sim;
    config.validate("the command line").context("invalid benchmark settings")?;
    let out = args.logs.clone().unwrap_or_default();
    let plan = plan_runs(&config, args.seed, &out).remove(0);

    let started = Instant::now();
    let process_cpu_started = process_cpu_s();
    let cpu_started_ns = thread_cpu_ns();
    let summary: SimSummary = match &args.logs {
        None => {
            let mut sink = CountingSink::default();
            let simulation = Simulation::new(&plan, &config.sim).context("setting up the simulation")?;
            simulation.run(&mut sink).context("simulating")?
        }
        Some(_) => {
            clocklab_config::output::create_dir_all(&plan.dir)
                .with_context(|| format!("cannot create {}", plan.dir.display()))?;
            let mut files = LogFiles::create(&plan.dir, args.machines, &plan.log_formats)
                .with_context(|| format!("cannot create the logs in {}", plan.dir.display()))?;
            let simulation = Simulation::new(&plan, &config.sim).context("setting up the simulation")?;
            simulation.run(&mut files).context("simulating")?
        }
    };
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_ns().zip(cpu_started_ns).map(|(end, start)| end.saturating_sub(start) as f64 / 1e9);
    let process_cpu_s = process_cpu_s().zip(process_cpu_started).map(|(end, start)| (end - start).max(0.0));

    let sink = match &args.logs {
        None => "counting sink".to_string(),
        Some(_) => format!("text logs in {}", plan.dir.display()),
    };
    say!(
        "clocklab bench: {} machines x {} s (max_clock_rate {}, max_event_num {}, clocks {}), seed {}, {sink}",
        args.machines,
        args.duration,
        args.max_clock_rate,
        args.max_event_num,
        plan.experiment.clocks,
        args.seed
    );
    say!(
        "  ticks {}, lines {}, messages {}, unprocessed {}, max in flight {}, max queue {}",
        summary.ticks,
        summary.lines,
        summary.messages,
        summary.unprocessed,
        summary.max_in_flight,
        summary.max_queue_len
    );
    say!("  wall {wall_s:.3} s: {}", speed(summary, wall_s));
    // On a shared machine the wall clock also counts the time other
    // processes had the core; the thread's own CPU time does not.
    if let Some(cpu_s) = cpu_s {
        let whose = if args.logs.is_some() { " (the simulation's thread)" } else { "" };
        say!("  cpu  {cpu_s:.3} s: {}{whose}", speed(summary, cpu_s));
    }
    // The log files are written and synced by threads of their own
    // (`clocklab_sim::LogFiles`): what the run costs in all is every thread's time.
    if let (Some(all_s), Some(_)) = (process_cpu_s, &args.logs) {
        say!("  cpu  {all_s:.3} s: {} (every thread, the log writers' too)", speed(summary, all_s));
    }
    // The yardstick, in the same process: a bare event loop over the same
    // machines and schedule (`clocklab_sim::bare`).
    let bare_cpu_started_ns = thread_cpu_ns();
    let bare = clocklab_sim::bare::bare_event_loop(&plan);
    let bare_cpu_s =
        thread_cpu_ns().zip(bare_cpu_started_ns).map(|(end, start)| end.saturating_sub(start) as f64 / 1e9);
    if let (Some(cpu_s), Some(bare_s)) = (cpu_s, bare_cpu_s)
        && cpu_s >= MEASURABLE_S
        && bare_s >= MEASURABLE_S
    {
        // Events: ticks and deliveries.
        let events = summary.ticks + summary.messages;
        let (ours, theirs) = (events as f64 / cpu_s, bare.events as f64 / bare_s);
        say!(
            "  events (ticks and deliveries): {:.2} million/s (cpu); a bare event loop over the same schedule: {:.2} million/s ({} events in {bare_s:.3} s): {:.0}% of it",
            ours / 1e6,
            theirs / 1e6,
            bare.events,
            100.0 * ours / theirs
        );
        // The same loop with the draws the model's bytes depend on: the
        // most a simulator that makes them can reach.
        let drawing_cpu_started_ns = thread_cpu_ns();
        let drawing = clocklab_sim::bare::drawing_event_loop(&plan, config.sim.network);
        let drawing_cpu_s =
            thread_cpu_ns().zip(drawing_cpu_started_ns).map(|(end, start)| end.saturating_sub(start) as f64 / 1e9);
        if let Some(drawing_s) = drawing_cpu_s.filter(|&s| s >= MEASURABLE_S) {
            let drawn = drawing.events as f64 / drawing_s;
            say!(
                "  the bare loop with the model's random draws (event draws, network delays): {:.2} million/s ({} events in {drawing_s:.3} s): {:.0}% of the bare loop, the most a simulator of these draws can reach",
                drawn / 1e6,
                drawing.events,
                100.0 * drawn / theirs
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The shortest time a speed is computed from: below it the clock's
/// resolution and the start-up dominate, and a rate would mean nothing.
const MEASURABLE_S: f64 = 0.001;

/// Ticks and lines a second over `seconds`, or why there is no figure.
fn speed(summary: SimSummary, seconds: f64) -> String {
    if seconds < MEASURABLE_S {
        return format!(
            "too short to measure a speed (under {} ms); raise --duration or --machines",
            MEASURABLE_S * 1e3
        );
    }
    format!(
        "{:.2} million ticks/s, {:.2} million lines/s",
        summary.ticks as f64 / seconds / 1e6,
        summary.lines as f64 / seconds / 1e6
    )
}

/// The user and system CPU time of every thread of this process, in seconds.
fn process_cpu_s() -> Option<f64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok()?;
    let seconds = |time: nix::sys::time::TimeVal| time.tv_sec() as f64 + time.tv_usec() as f64 / 1e6;
    Some(seconds(usage.user_time()) + seconds(usage.system_time()))
}

/// The CPU time this thread has used, in nanoseconds (Linux only: the first
/// field of `/proc/thread-self/schedstat`, which includes time in the kernel).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_too_short_gives_no_speed_and_says_so() {
        let summary = SimSummary { ticks: 12, lines: 20, ..SimSummary::default() };
        for seconds in [0.0, 1e-9, MEASURABLE_S / 2.0] {
            let said = speed(summary, seconds);
            assert!(said.starts_with("too short to measure a speed"), "{said}");
        }
        assert_eq!(speed(summary, 0.002), "0.01 million ticks/s, 0.01 million lines/s");
    }
}
