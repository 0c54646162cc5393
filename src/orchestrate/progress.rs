//! The progress bar of `clocklab run`: runs done, and the seconds left.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clocklab_config::RunPlan;
use indicatif::{ProgressBar, ProgressStyle};

/// The progress bar: runs done, and an estimate of the seconds left.
pub(super) struct Progress {
    pub(super) bar: ProgressBar,
    jobs: usize,
    /// Each run's deadline once it started; `None` while queued; removed when done.
    deadlines: Mutex<BTreeMap<usize, Option<Instant>>>,
    /// A run's expected length: its duration plus a second to connect and drain.
    lengths: Vec<Duration>,
}

impl Progress {
    pub(super) fn new(plans: &[RunPlan], jobs: usize) -> Progress {
        let bar = ProgressBar::new(plans.len() as u64);
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs done, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let lengths = plans.iter().map(|p| Duration::from_secs_f64(p.experiment.duration + 1.0)).collect();
        Progress { bar, jobs, deadlines: Mutex::new((0..plans.len()).map(|idx| (idx, None)).collect()), lengths }
    }

    pub(super) fn refresh(&self) {
        let now = Instant::now();
        let deadlines = self.deadlines.lock().expect("progress lock");
        let running = deadlines.values().flatten().map(|d| d.saturating_duration_since(now)).max().unwrap_or_default();
        let queued: Duration = deadlines.iter().filter(|(_, d)| d.is_none()).map(|(idx, _)| self.lengths[*idx]).sum();
        let left = running + queued / self.jobs as u32;
        self.bar.set_message(format!("about {} s left", left.as_secs()));
        self.bar.tick();
    }
}

impl clocklab_orchestrate::Observer for Progress {
    fn started(&self, idx: usize, deadline: Instant) {
        self.deadlines.lock().expect("progress lock").insert(idx, Some(deadline));
    }

    fn finished(&self, idx: usize) {
        self.deadlines.lock().expect("progress lock").remove(&idx);
        self.bar.inc(1);
    }
}
