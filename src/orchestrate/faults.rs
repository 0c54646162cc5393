//! The machines' faults of a real run, applied from outside the machines:
//! a crash is a `SIGKILL`, after which the orchestrator writes the
//! machine's `Crashed` line for it; a restart is a new process of the
//! machine, whose peers are told to connect to it; a pause is `SIGSTOP`,
//! then `SIGCONT`. The fault plan (`clocklab_faults`) says when; the
//! network's faults and clock faults the machines apply themselves.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clocklab_config::{MachinePlan, RunPlan, layout};
use clocklab_faults::{FaultPlan, MachineFault, RestartClock, physical_reading};
use clocklab_log::LogWriter;
use clocklab_model::{MachineId, PhysicalClock, schedule};
use clocklab_net::RestartSpec;
use nix::sys::signal::Signal;

/// What the orchestrator does to a machine, at an instant of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Action {
    /// Kill it (`SIGKILL`) and write its `Crashed` line.
    Crash,
    /// Start its next incarnation.
    Restart(RestartClock),
    /// Stop it (`SIGSTOP`).
    Pause,
    /// Let it go on (`SIGCONT`).
    Resume,
}

/// The machines' faults of a run, in time order.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    /// (microseconds after the start, machine, what), earliest last (popped first).
    actions: Vec<(u64, MachineId, Action)>,
    /// The run's start, microseconds since the Unix epoch.
    start_us: i64,
}

impl Schedule {
    /// The actions of `plan`'s faults for a run that starts at `start_us`.
    pub(super) fn new(plan: &RunPlan, start_us: i64) -> Schedule {
        let duration_us = schedule::duration_us(plan.experiment.duration);
        let faults = FaultPlan::new(&plan.experiment.faults, plan.run_seed, duration_us);
        let mut actions = Vec::new();
        for machine in &plan.machines {
            for fault in faults.machine_faults(machine.id) {
                match fault {
                    MachineFault::Crash { at_us, restart, .. } => {
                        actions.push((at_us, machine.id, Action::Crash));
                        if let Some((restart_us, clock)) = restart.filter(|&(us, _)| us < duration_us) {
                            actions.push((restart_us, machine.id, Action::Restart(clock)));
                        }
                    }
                    MachineFault::Pause { from_us, until_us, .. } => {
                        actions.push((from_us, machine.id, Action::Pause));
                        actions.push((until_us.min(duration_us), machine.id, Action::Resume));
                    }
                    // A machine steps its own clock.
                    MachineFault::Clock { .. } => {}
                }
            }
        }
        // Crashes and pauses before what they allow (a restart, a resume) at
        // the same instant; then by machine.
        let order = |action: &Action| match action {
            Action::Crash | Action::Pause => 0,
            Action::Restart(_) | Action::Resume => 1,
        };
        actions.sort_by_key(|&(at_us, id, action)| std::cmp::Reverse((at_us, order(&action), id)));
        Schedule { actions, start_us }
    }

    /// When the next action is due, if any.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let &(at_us, _, _) = self.actions.last()?;
        let due_us = self.start_us.saturating_add_unsigned(at_us);
        let wait_us = due_us.saturating_sub(clocklab_net::now_us()).max(0) as u64;
        Some(Instant::now() + Duration::from_micros(wait_us))
    }

    /// The actions due by now: when each was planned (microseconds after the
    /// start), the machine, and what.
    pub(super) fn take_due(&mut self) -> Vec<(u64, MachineId, Action)> {
        let now_rel_us = clocklab_net::now_us().saturating_sub(self.start_us);
        let mut due = Vec::new();
        while let Some(&(at_us, id, action)) = self.actions.last() {
            if i64::try_from(at_us).unwrap_or(i64::MAX) > now_rel_us {
                break;
            }
            self.actions.pop();
            due.push((at_us, id, action));
        }
        due
    }

    /// The restart of a machine planned at `at_us` after the start.
    pub(super) fn restart_spec(&self, at_us: u64, clock: RestartClock) -> RestartSpec {
        RestartSpec { start_us: self.start_us, at_us, recovered: clock == RestartClock::Recovered }
    }

    /// Whether a machine is stopped now (for the end of an interrupted run,
    /// which must let it go on first), given the actions taken.
    pub(super) fn signal_of(action: Action) -> Option<Signal> {
        match action {
            Action::Pause => Some(Signal::SIGSTOP),
            Action::Resume => Some(Signal::SIGCONT),
            Action::Crash | Action::Restart(_) => None,
        }
    }
}

/// Writes the `Crashed` line of `machine`, killed at true time `now_us`, to
/// each of its logs in `plan`'s run folder: its clocks as its last line has
/// them, its physical clock as it read then (its offset and drift, and the
/// clock faults planned so far, from the run's start `start_us`).
pub(super) fn write_crash_line(
    plan: &RunPlan,
    machine: &MachinePlan,
    start_us: i64,
    now_us: i64,
) -> anyhow::Result<()> {
    let duration_us = schedule::duration_us(plan.experiment.duration);
    let faults = FaultPlan::new(&plan.experiment.faults, plan.run_seed, duration_us).machine_faults(machine.id);
    let base = PhysicalClock::new(start_us, machine.clock_offset_us, machine.clock_drift_ppm);
    let physical_us = physical_reading(&base, start_us, &faults, now_us);
    for &format in &plan.log_formats {
        let path = layout::log_path(&plan.dir, machine.id, format);
        append_crash_line(&path, format, now_us, physical_us)
            .with_context(|| format!("machine {}: cannot write its crash to {}", machine.id, path.display()))?;
    }
    Ok(())
}

fn append_crash_line(
    path: &Path,
    format: clocklab_log::LogFormat,
    now_us: i64,
    physical_us: i64,
) -> anyhow::Result<()> {
    let last = clocklab_log::last_record(path)?.ok_or_else(|| anyhow!("the log has no line"))?;
    let line = clocklab_driver::crash_record(&last, now_us, physical_us);
    let mut file = OpenOptions::new().read(true).append(true).open(path)?;
    cut_partial_line(&mut file)?;
    let mut writer = LogWriter::new(BufWriter::new(file), format);
    writer.write(&line)?;
    writer.into_inner().into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_data()?;
    Ok(())
}

/// Cuts a line the killed process left half written, if any, so that the
/// next line starts on a line of its own.
fn cut_partial_line(file: &mut std::fs::File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let from = len.saturating_sub(clocklab_log::MAX_LINE_BYTES as u64 + 1);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last().is_some_and(|&b| b != b'\n') {
        let keep = tail.iter().rposition(|&b| b == b'\n').map_or(from, |at| from + at as u64 + 1);
        file.set_len(keep)?;
    }
    Ok(())
}

/// Where each machine listens now: its first address, or its latest
/// incarnation's.
pub(super) type Addresses = BTreeMap<MachineId, SocketAddr>;
