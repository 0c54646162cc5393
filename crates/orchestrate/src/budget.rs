//! How many machine processes this computer holds at once: the system's
//! limits on tasks (every thread is one) and on open files, measured before
//! a suite starts, and the runs admitted within them.
//!
//! A run of `n` machines needs `n` processes with their threads and
//! sockets (`clocklab_net::machine_resources`), and the orchestrator keeps
//! two threads and three pipes per machine. The budget is what the system
//! allows less what is in use when the suite starts, less a reserve for
//! everything else. A run that does not fit alone is refused before
//! anything starts, with the limit named; the others wait their turn.

use std::sync::{Condvar, Mutex};

use clocklab_config::RunPlan;

use crate::control::RunControl;

/// Threads the orchestrator keeps per machine: its stdout and its stderr readers.
const ORCHESTRATOR_THREADS_PER_MACHINE: u64 = 2;

/// Descriptors the orchestrator keeps per machine: its three pipes.
const ORCHESTRATOR_FILES_PER_MACHINE: u64 = 3;

/// The tasks left for everything else on the computer, at least.
const RESERVED_TASKS: u64 = 512;

/// The orchestrator's descriptors for everything but machines.
const RESERVED_FILES: u64 = 128;

/// The limits, as measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most tasks (processes and threads) the system allows, and which
    /// limit that is (`pid_max`, `threads-max`, `ulimit -u`, or the cgroup's
    /// `pids.max`).
    pub tasks_max: (u64, &'static str),
    /// Tasks in use when measured.
    pub tasks_in_use: u64,
    /// The most open files a process may have (`ulimit -n`, raised to its
    /// hard limit when it can be).
    pub files_max: u64,
}

impl Limits {
    /// Measures this computer's limits, raising the soft limit on open
    /// files to the hard one (the machine processes inherit it).
    pub fn measure() -> Limits {
        let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse::<u64>().ok());
        // The fourth field of /proc/loadavg is "running/total" tasks.
        let system_in_use = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok())
            .unwrap_or(0);
        // Each limit with the tasks it already counts.
        let mut candidates: Vec<(u64, u64, &'static str)> = Vec::new();
        if let Some(max) = read("/proc/sys/kernel/pid_max") {
            candidates.push((max, system_in_use, "pid_max (/proc/sys/kernel/pid_max)"));
        }
        if let Some(max) = read("/proc/sys/kernel/threads-max") {
            candidates.push((max, system_in_use, "threads-max (/proc/sys/kernel/threads-max)"));
        }
        if let Some((max, current)) = cgroup_pids() {
            candidates.push((max, current, "the cgroup's pids.max"));
        }
        // Root is not held to `ulimit -u`.
        if !nix::unistd::geteuid().is_root()
            && let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC)
            && soft != nix::sys::resource::RLIM_INFINITY
        {
            candidates.push((soft, system_in_use, "ulimit -u"));
        }
        let (max, in_use, which) = candidates
            .into_iter()
            .min_by_key(|&(max, in_use, _)| max.saturating_sub(in_use))
            .unwrap_or((u64::MAX, 0, "no limit"));
        let files_max = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) => {
                if soft < hard
                    && nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).is_ok()
                {
                    hard
                } else {
                    soft
                }
            }
            Err(_) => 1_024,
        };
        Limits { tasks_max: (max, which), tasks_in_use: in_use, files_max }
    }

    /// The tasks a suite may use.
    fn tasks_available(&self) -> u64 {
        let reserve = RESERVED_TASKS.max(self.tasks_max.0 / 20);
        self.tasks_max.0.saturating_sub(self.tasks_in_use).saturating_sub(reserve)
    }
}

/// The limit and the count of the pids controller of this process's
/// cgroup (v1, or v2 alone or beside v1), if it limits.
fn cgroup_pids() -> Option<(u64, u64)> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut dirs = Vec::new();
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.split(',').any(|c| c == "pids") {
            dirs.push(format!("/sys/fs/cgroup/pids{path}"));
        } else if controllers.is_empty() {
            dirs.push(format!("/sys/fs/cgroup{path}"));
            dirs.push(format!("/sys/fs/cgroup/unified{path}"));
        }
    }
    let read = |path: String| std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse::<u64>().ok());
    dirs.into_iter().find_map(|dir| {
        let max = read(format!("{dir}/pids.max"))?;
        Some((max, read(format!("{dir}/pids.current")).unwrap_or(0)))
    })
}

/// What one run uses at most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Tasks: its machines' threads and the orchestrator's for them.
    pub tasks: u64,
    /// The orchestrator's descriptors for its machines.
    pub files: u64,
}

impl Cost {
    /// The cost of a run of `n_machines`.
    pub fn of(n_machines: u32) -> Cost {
        let machine = clocklab_net::machine_resources(n_machines);
        let n = u64::from(n_machines);
        Cost {
            tasks: n * (machine.threads + ORCHESTRATOR_THREADS_PER_MACHINE),
            files: n * ORCHESTRATOR_FILES_PER_MACHINE,
        }
    }
}

/// A run that this computer cannot hold even alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

/// The room left for runs, shared by the workers of a suite.
#[derive(Debug)]
pub struct Budget {
    tasks: u64,
    files: u64,
    used: Mutex<Cost>,
    freed: Condvar,
}

impl Budget {
    /// The budget of `limits` for the runs of `plans`; refuses a run that
    /// could not run even alone, naming the limit.
    pub fn for_plans(plans: &[RunPlan], limits: &Limits) -> Result<Budget, TooLarge> {
        let budget = Budget {
            tasks: limits.tasks_available(),
            files: limits.files_max.saturating_sub(RESERVED_FILES),
            used: Mutex::new(Cost::default()),
            freed: Condvar::new(),
        };
        let Some(largest) = plans.iter().map(|plan| plan.experiment.machines).max() else { return Ok(budget) };
        let machine = clocklab_net::machine_resources(largest);
        if machine.files > limits.files_max {
            return Err(TooLarge(format!(
                "a machine of a run of {largest} machines needs about {} open files, and this computer allows a \
                 process {} (ulimit -n): raise it, or run fewer machines",
                machine.files, limits.files_max
            )));
        }
        let cost = Cost::of(largest);
        if cost.tasks > budget.tasks {
            let (max, which) = limits.tasks_max;
            return Err(TooLarge(format!(
                "a run of {largest} machines needs about {} threads, and this computer allows {max} tasks ({which}), \
                 {} of them in use: run fewer machines, or raise {which}",
                cost.tasks, limits.tasks_in_use
            )));
        }
        if cost.files > budget.files {
            return Err(TooLarge(format!(
                "a run of {largest} machines needs {} open files in clocklab run (three pipes a machine), and this \
                 computer allows {} (ulimit -n): raise it, or run fewer machines",
                cost.files, limits.files_max
            )));
        }
        Ok(budget)
    }

    /// Waits until a run of `cost` fits beside those running, then takes
    /// its room; `false` (taking nothing) if a stop was asked meanwhile.
    pub fn acquire(&self, cost: Cost, control: &RunControl) -> bool {
        let mut used = self.used.lock().expect("the budget lock is never poisoned");
        loop {
            if control.stopped() {
                return false;
            }
            if Budget::take(&mut used, cost, self.tasks, self.files) {
                return true;
            }
            // Woken by a release; a stop is seen within the timeout.
            let (next, _) = self
                .freed
                .wait_timeout(used, std::time::Duration::from_millis(200))
                .expect("the budget lock is never poisoned");
            used = next;
        }
    }

    /// Takes the room of a run of `cost` if it fits beside those running
    /// now, or if nothing runs (it fits alone).
    fn take(used: &mut Cost, cost: Cost, tasks: u64, files: u64) -> bool {
        let fits = used.tasks + cost.tasks <= tasks && used.files + cost.files <= files;
        if !fits && *used != Cost::default() {
            return false;
        }
        used.tasks += cost.tasks;
        used.files += cost.files;
        true
    }

    /// Gives back the room of a run that ended.
    pub fn release(&self, cost: Cost) {
        let mut used = self.used.lock().expect("the budget lock is never poisoned");
        used.tasks = used.tasks.saturating_sub(cost.tasks);
        used.files = used.files.saturating_sub(cost.files);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(tasks: u64, in_use: u64, files: u64) -> Limits {
        Limits { tasks_max: (tasks, "pid_max"), tasks_in_use: in_use, files_max: files }
    }

    fn plans(machines: &[u32]) -> Vec<RunPlan> {
        let mut config = clocklab_config::Config::default();
        config.experiments.truncate(machines.len());
        for (experiment, &n) in config.experiments.iter_mut().zip(machines) {
            (experiment.machines, experiment.runs) = (n, 1);
        }
        clocklab_config::plan_runs(&config, 1, std::path::Path::new("unused"))
    }

    #[test]
    fn a_run_too_large_alone_is_refused_with_the_limit_named() {
        // A hundred machines need about 100 x (99 + 6 + 2) = 10,700 threads.
        let error = Budget::for_plans(&plans(&[100]), &limits(8_192, 500, 1_048_576)).unwrap_err();
        assert!(error.0.contains("pid_max") && error.0.contains("10700"), "{error}");
        let error = Budget::for_plans(&plans(&[100]), &limits(1 << 22, 500, 150)).unwrap_err();
        assert!(error.0.contains("ulimit -n"), "{error}");
        assert!(Budget::for_plans(&plans(&[100]), &limits(32_768, 500, 1_048_576)).is_ok());
    }

    #[test]
    fn runs_that_do_not_fit_together_take_turns() {
        let control = RunControl::default();
        // Room for 15,065 tasks: one run of a hundred machines (10,700), not two.
        let budget = Budget::for_plans(&plans(&[100, 100]), &limits(16_384, 500, 1_048_576)).unwrap();
        let cost = Cost::of(100);
        let mut used = Cost::default();
        assert!(Budget::take(&mut used, cost, budget.tasks, budget.files), "one fits");
        assert!(!Budget::take(&mut used, cost, budget.tasks, budget.files), "two runs of a hundred do not");
        assert_eq!(used, cost, "a run that does not fit takes nothing");
        // Ten machines fit beside them.
        assert!(Budget::take(&mut used, Cost::of(10), budget.tasks, budget.files));
        // Through the shared budget: taken, given back, taken again; a stop lets no run in.
        assert!(budget.acquire(cost, &control));
        budget.release(cost);
        assert!(budget.acquire(cost, &control));
        control.stop("test");
        assert!(!budget.acquire(cost, &control));
    }
}
