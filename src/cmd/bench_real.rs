//! `clocklab bench --runtime real`: what the real runtime costs, in CPU time
//! (user and system, of the orchestrator and every machine process) per
//! machine-tick and per message, and how late its ticks run.
//!
//! Each run is a `clocklab run --runtime real` child process of a build (this
//! one, and `--baseline` if given, one after the other on the same plans and
//! seeds), so that two builds are measured alike in the same session. The CPU
//! time is the child's resource usage as the kernel counts it once the child
//! is reaped: the orchestrator's and, since it reaps them, its machines'.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use clocklab_config::{Config, RunManifest, RunStatus, Runtime};
use nix::sys::resource::{UsageWho, getrusage};

use super::UsageError;

/// The settings of `clocklab bench --runtime real`.
#[derive(Debug, Args)]
pub struct RealArgs {
    /// With `--runtime real`: the machine counts, one run each, e.g. `3,32,64`.
    #[arg(long, value_delimiter = ',', value_name = "N,N,...", default_value = "3,32,64")]
    sizes: Vec<u32>,
    /// With `--runtime real`: the seconds each run ticks.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    seconds: f64,
    /// With `--runtime real`: rates are drawn from 1..=this.
    #[arg(long, value_name = "R", default_value_t = 1000)]
    rates_up_to: u32,
    /// With `--runtime real`: how many times every run is repeated.
    #[arg(long, value_name = "K", default_value_t = 1)]
    repeat: u32,
    /// With `--runtime real`: another build of clocklab, run on the same
    /// plans right after this one, for a comparison in the same session.
    #[arg(long, value_name = "CLOCKLAB")]
    baseline: Option<PathBuf>,
}

/// The common settings `clocklab bench` passes on.
#[derive(Debug)]
pub struct Common<'a> {
    /// Event draws are from 1..=this.
    pub max_event_num: u32,
    /// The seed of every run.
    pub seed: u64,
    /// The clocks every machine keeps.
    pub clocks: &'a [String],
    /// Where the runs' folders are kept; without it, a temporary folder,
    /// removed after each run.
    pub logs: Option<&'a Path>,
}

/// This build's figure and the baseline's.
type Pair = (f64, f64);

/// One build under measurement.
struct Build {
    name: &'static str,
    binary: PathBuf,
}

/// What one run cost and how it went.
struct Measured {
    machines: usize,
    ticks: u64,
    exact_ticks: usize,
    messages: u64,
    user_s: f64,
    system_s: f64,
    wall_s: f64,
    /// Per machine, p50, p99 and max lateness in microseconds.
    lateness: Vec<[u64; 3]>,
    status: String,
}

impl Measured {
    fn cpu_s(&self) -> f64 {
        self.user_s + self.system_s
    }

    fn per(&self, count: u64) -> String {
        if count == 0 { "-".into() } else { format!("{:.1}", self.cpu_s() * 1e6 / count as f64) }
    }

    /// "median / worst" over the machines of quantile `idx`.
    fn lateness_of(&self, idx: usize) -> String {
        let mut values: Vec<u64> = self.lateness.iter().map(|l| l[idx]).collect();
        values.sort_unstable();
        match (values.get(values.len() / 2), values.last()) {
            (Some(median), Some(worst)) => format!("{median} / {worst}"),
            _ => "-".into(),
        }
    }
}

/// Runs `clocklab bench --runtime real`.
pub fn run(args: &RealArgs, common: &Common<'_>) -> anyhow::Result<ExitCode> {
    if args.sizes.is_empty() || args.sizes.iter().any(|&n| n < 2) {
        return Err(UsageError(format!("--sizes {:?}: every run needs at least 2 machines", args.sizes)).into());
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(UsageError(format!("--seconds {}: must be above 0 and at most 3600", args.seconds)).into());
    }
    if args.repeat == 0 {
        return Err(UsageError("--repeat 0: at least one repetition".into()).into());
    }
    // Each run's settings within the real runtime's limits, before anything runs.
    for &machines in &args.sizes {
        let mut config = Config::default();
        config.experiments.truncate(1);
        let experiment = &mut config.experiments[0];
        experiment.machines = machines;
        experiment.duration = args.seconds;
        experiment.max_clock_rate = args.rates_up_to;
        experiment.max_event_num = common.max_event_num;
        experiment.runs = 1;
        config.runtime = Runtime::Real;
        config.ports.clear();
        config.validate("the command line").context("invalid benchmark settings")?;
    }
    let this = std::env::current_exe().context("cannot find this program's own path")?;
    let mut builds = vec![Build { name: "this", binary: this }];
    if let Some(baseline) = &args.baseline {
        if !baseline.is_file() {
            return Err(UsageError(format!("--baseline {}: no such file", baseline.display())).into());
        }
        builds.push(Build { name: "baseline", binary: baseline.clone() });
    }
    let scratch = match common.logs {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("clocklab-bench-real-{}", std::process::id())),
    };
    clocklab_config::output::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    say!(
        "clocklab bench --runtime real: machines {:?}, rates up to {}, max_event_num {}, {} s, seed {}, {} repetition(s), load average {}",
        args.sizes,
        args.rates_up_to,
        common.max_event_num,
        args.seconds,
        common.seed,
        args.repeat,
        load_average()
    );
    say!(
        "{:<9} {:>4} {:>9} {:>10} {:>8} {:>8} {:>7} {:>8} {:>8} {:>15} {:>15} {:>17}  status",
        "build",
        "n",
        "ticks",
        "messages",
        "user s",
        "sys s",
        "wall s",
        "us/tick",
        "us/msg",
        "p50 us (med/max)",
        "p99 us (med/max)",
        "max us (med/max)"
    );
    // Per size, this build's and the baseline's CPU time per tick and per
    // message, of every repetition.
    let mut ratios: Vec<(u32, Vec<Pair>, Vec<Pair>)> = Vec::new();
    for repetition in 0..args.repeat {
        for &machines in &args.sizes {
            let mut per_build = Vec::new();
            for build in &builds {
                let dir = scratch.join(format!("{}-{machines}-{}", build.name, repetition + 1));
                let measured = measure(build, machines, args, common, &dir)?;
                say!(
                    "{:<9} {:>4} {:>9} {:>10} {:>8.2} {:>8.2} {:>7.1} {:>8} {:>8} {:>15} {:>15} {:>17}  {} ({} of {} exact tick counts)",
                    build.name,
                    machines,
                    measured.ticks,
                    measured.messages,
                    measured.user_s,
                    measured.system_s,
                    measured.wall_s,
                    measured.per(measured.ticks),
                    measured.per(measured.messages),
                    measured.lateness_of(0),
                    measured.lateness_of(1),
                    measured.lateness_of(2),
                    measured.status,
                    measured.exact_ticks,
                    measured.machines
                );
                per_build.push(measured);
                if common.logs.is_none() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            if let [this, baseline] = per_build.as_slice()
                && this.ticks > 0
                && this.messages > 0
                && baseline.ticks > 0
                && baseline.messages > 0
            {
                let tick = (this.cpu_s() / this.ticks as f64, baseline.cpu_s() / baseline.ticks as f64);
                let message = (this.cpu_s() / this.messages as f64, baseline.cpu_s() / baseline.messages as f64);
                match ratios.iter_mut().find(|(n, _, _)| *n == machines) {
                    Some((_, ticks, messages)) => {
                        ticks.push(tick);
                        messages.push(message);
                    }
                    None => ratios.push((machines, vec![tick], vec![message])),
                }
            }
        }
    }
    for (machines, ticks, messages) in &ratios {
        let said = |pairs: &[Pair]| {
            pairs.iter().map(|(this, baseline)| format!("{:.2}", this / baseline)).collect::<Vec<_>>().join(", ")
        };
        say!(
            "{machines} machines: this build's CPU time over the baseline's, per tick: {}; per message: {}",
            said(ticks),
            said(messages)
        );
    }
    if common.logs.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one plan with `build` into `dir` and measures it.
fn measure(build: &Build, machines: u32, args: &RealArgs, common: &Common<'_>, dir: &Path) -> anyhow::Result<Measured> {
    clocklab_config::output::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join("bench.toml");
    let text = format!(
        "machines = {machines}\nmax_clock_rate = {}\nmax_event_num = {}\nruns = 1\nduration = {}\n",
        args.rates_up_to, common.max_event_num, args.seconds
    );
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let stderr_path = dir.join("stderr.txt");
    let stderr =
        std::fs::File::create(&stderr_path).with_context(|| format!("cannot write {}", stderr_path.display()))?;
    let mut command = Command::new(&build.binary);
    command
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--runtime", "real", "--no-analyze", "--seed", &common.seed.to_string()])
        .arg("--clocks")
        .arg(common.clocks.join(","))
        .arg("--out")
        .arg(dir.join("results"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let before = children_cpu()?;
    let started = Instant::now();
    let status = command.status().with_context(|| format!("cannot start {}", build.binary.display()))?;
    let wall_s = started.elapsed().as_secs_f64();
    let after = children_cpu()?;
    let manifest = find_manifest(&dir.join("results")).with_context(|| {
        format!(
            "{} run exited with {status} and left no manifest; its errors are in {}",
            build.binary.display(),
            stderr_path.display()
        )
    })?;
    let mut measured = Measured {
        machines: manifest.machines.len(),
        ticks: 0,
        exact_ticks: 0,
        messages: 0,
        user_s: (after.0 - before.0).as_secs_f64(),
        system_s: (after.1 - before.1).as_secs_f64(),
        wall_s,
        lateness: Vec::new(),
        status: match &manifest.status {
            RunStatus::Ok => "ok".into(),
            RunStatus::Degraded { lateness_us_max, .. } => {
                format!("degraded ({:.1} ms)", *lateness_us_max as f64 / 1e3)
            }
            RunStatus::Failed { cause } => format!("failed: {cause}"),
            RunStatus::Interrupted => "interrupted".into(),
        },
    };
    let lateness = manifest.extra.get("tick_lateness_us").and_then(|v| v.as_object());
    let messages = manifest.extra.get("messages").and_then(|v| v.as_object());
    for machine in &manifest.machines {
        let id = machine.id.to_string();
        let of_lateness =
            |key: &str| lateness.and_then(|l| l.get(&id)).and_then(|l| l.get(key)).and_then(|v| v.as_u64());
        if let Some(ticks) = of_lateness("ticks") {
            measured.ticks += ticks;
            let expected = (f64::from(machine.rate) * manifest.experiment.duration).ceil() as u64;
            measured.exact_ticks += usize::from(ticks == expected);
        }
        if let (Some(p50), Some(p99), Some(max)) = (of_lateness("p50_us"), of_lateness("p99_us"), of_lateness("max_us"))
        {
            measured.lateness.push([p50, p99, max]);
        }
        measured.messages +=
            messages.and_then(|m| m.get(&id)).and_then(|m| m.get("sent")).and_then(|v| v.as_u64()).unwrap_or(0);
    }
    Ok(measured)
}

/// The user and system CPU time of every child process reaped so far (and
/// of every process they reaped).
fn children_cpu() -> anyhow::Result<(Duration, Duration)> {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("cannot read the children's CPU time")?;
    let duration = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    Ok((duration(usage.user_time()), duration(usage.system_time())))
}

/// The manifest of the one run under `results` (`<stamp>/<experiment>/run_1`).
fn find_manifest(results: &Path) -> anyhow::Result<RunManifest> {
    let mut found = Vec::new();
    let mut dirs = vec![(results.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() && depth < 3 {
                dirs.push((path, depth + 1));
            } else if path.file_name().is_some_and(|name| name == clocklab_config::layout::MANIFEST_FILE) {
                found.push(path);
            }
        }
    }
    let [path] = found.as_slice() else {
        anyhow::bail!("expected one manifest under {}, found {}", results.display(), found.len());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    RunManifest::from_json(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// The load average over the last minute, as `/proc/loadavg` says.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
