//! Tick lateness: how long after its scheduled time each tick ran, and
//! whether a machine fell behind its schedule.
//!
//! **Late ticks are caught up, never skipped.** Both runtimes run every tick
//! of the absolute schedule (`clocklab_model::schedule`), so a machine makes
//! exactly `ceil(rate x duration)` ticks whatever happens to it: a machine
//! that could not run for a while (paused, or starved of a core) runs the
//! ticks it missed back to back as soon as it can. Their timing is then not
//! what the rate says; so when a tick runs more than one tick period late,
//! the machine has *fallen behind*: it writes a `Behind schedule` line (the
//! driver makes it, [`crate::Driver::before_tick`]) and its run is marked
//! `degraded` with the figure. The simulator runs every tick on time, so it
//! falls behind only when a `pause` fault stops a machine; it then catches
//! up the same way. Lateness that a planned pause caused is told (the
//! `Behind` line) but counted apart: it does not degrade the run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Percentiles of one machine's tick lateness (actual minus scheduled tick
/// time), in microseconds, over all its ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatenessSummary {
    /// How many ticks were measured.
    pub ticks: u64,
    /// The median.
    pub p50_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
    /// The worst tick.
    pub max_us: u64,
}

/// Below this many microseconds a lateness is counted exactly; above it, to
/// the millisecond (the maximum stays exact).
const EXACT_US: u64 = 1 << 16;

/// Collects the lateness of every tick in a histogram whose size does not
/// grow with the run: one counter per microsecond up to about 65 ms, one per
/// millisecond above (a machine at a million ticks a second for a minute
/// makes 60 million ticks, which a list of samples would hold in 480 MB).
#[derive(Clone, Debug, Default)]
pub struct LatenessRecorder {
    /// Ticks by lateness in microseconds, below [`EXACT_US`]; empty until
    /// the first tick.
    exact: Vec<u32>,
    /// Ticks by lateness in whole milliseconds, at and above [`EXACT_US`].
    coarse: std::collections::BTreeMap<u64, u64>,
    n: u64,
    max_us: u64,
}

impl LatenessRecorder {
    /// Records one tick that ran `lateness` after its due time.
    pub fn record(&mut self, lateness: Duration) {
        let us = u64::try_from(lateness.as_micros()).unwrap_or(u64::MAX);
        if us < EXACT_US {
            if self.exact.is_empty() {
                self.exact = vec![0; EXACT_US as usize];
            }
            let slot = &mut self.exact[us as usize];
            *slot = slot.saturating_add(1);
        } else {
            *self.coarse.entry(us / 1_000).or_default() += 1;
        }
        self.n += 1;
        self.max_us = self.max_us.max(us);
    }

    /// The percentiles (nearest rank: the smallest lateness with at least
    /// p% of the ticks at or below it) of everything recorded.
    pub fn summary(&self) -> LatenessSummary {
        if self.n == 0 {
            return LatenessSummary::default();
        }
        let rank = |percent: u64| -> u64 {
            let wanted = (self.n * percent).div_ceil(100).clamp(1, self.n);
            let mut seen = 0u64;
            for (us, &count) in self.exact.iter().enumerate() {
                seen += u64::from(count);
                if seen >= wanted {
                    return us as u64;
                }
            }
            for (&ms, &count) in &self.coarse {
                seen += count;
                if seen >= wanted {
                    return (ms * 1_000).max(EXACT_US).min(self.max_us);
                }
            }
            self.max_us
        };
        LatenessSummary { ticks: self.n, p50_us: rank(50), p99_us: rank(99), max_us: self.max_us }
    }
}

/// How far behind its schedule a machine fell, over its run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehindSummary {
    /// How many times it fell behind (by more than one tick period).
    pub episodes: u64,
    /// The worst lateness of a tick when it was behind, in microseconds.
    pub lateness_us_max: u64,
    /// How many times it fell behind because the fault plan paused it (not
    /// counted in `episodes`).
    #[serde(default)]
    pub paused_episodes: u64,
}

/// Watches the schedule tick by tick: see the [module](self) documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScheduleWatch {
    /// One tick period, in microseconds: how late a tick may run.
    period_us: u64,
    /// The last tick ran more than a period late.
    behind: bool,
    /// When the last `Behind` line was written.
    last_line_us: Option<i64>,
    /// What was seen.
    summary: BehindSummary,
}

/// The fewest microseconds between two `Behind` lines: a machine that keeps
/// falling behind and catching up writes one a second at most.
const BEHIND_LINE_INTERVAL_US: i64 = 1_000_000;

impl ScheduleWatch {
    /// A watch of a machine at `rate` ticks per second.
    pub(crate) fn new(rate: u32) -> ScheduleWatch {
        ScheduleWatch { period_us: 1_000_000 / u64::from(rate.max(1)), ..ScheduleWatch::default() }
    }

    /// Takes a tick that runs `lateness_us` late at true time `now_us`;
    /// returns whether to write a `Behind` line: the machine has just fallen
    /// behind, and no such line was written in the last second.
    /// With `paused`, the lateness is a planned pause's: told the same way,
    /// counted apart.
    pub(crate) fn observe(&mut self, now_us: i64, lateness_us: u64, paused: bool) -> bool {
        if lateness_us <= self.period_us {
            self.behind = false;
            return false;
        }
        if !paused {
            self.summary.lateness_us_max = self.summary.lateness_us_max.max(lateness_us);
        }
        if self.behind {
            return false;
        }
        self.behind = true;
        if paused {
            self.summary.paused_episodes += 1;
        } else {
            self.summary.episodes += 1;
        }
        if self.last_line_us.is_some_and(|last| now_us.saturating_sub(last) < BEHIND_LINE_INTERVAL_US) {
            return false;
        }
        self.last_line_us = Some(now_us);
        true
    }

    /// What was seen so far.
    pub(crate) fn summary(&self) -> BehindSummary {
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut recorder = LatenessRecorder::default();
        assert_eq!(recorder.summary(), LatenessSummary::default());
        for us in (1..=100).rev() {
            recorder.record(Duration::from_micros(us));
        }
        let summary = recorder.summary();
        assert_eq!(summary, LatenessSummary { ticks: 100, p50_us: 50, p99_us: 99, max_us: 100 });

        let mut one = LatenessRecorder::default();
        one.record(Duration::from_micros(7));
        assert_eq!(one.summary(), LatenessSummary { ticks: 1, p50_us: 7, p99_us: 7, max_us: 7 });
    }

    #[test]
    fn falling_behind_is_more_than_one_tick_period_and_is_told_once_an_episode() {
        // Rate 4: a period of 250 ms.
        let mut watch = ScheduleWatch::new(4);
        let t = |s: i64| s * 1_000_000;
        assert!(!watch.observe(t(0), 250_000, false), "one period late is on schedule");
        assert!(watch.observe(t(1), 250_001, false));
        assert!(!watch.observe(t(1), 900_000, false), "the same episode");
        assert!(!watch.observe(t(1) + 100_000, 10, false), "caught up");
        assert!(!watch.observe(t(1) + 300_000, 300_000, false), "a new episode, but within a second of the last line");
        assert!(!watch.observe(t(3), 0, false));
        assert!(watch.observe(t(5), 3_000_000, false), "a new episode, a line");
        assert_eq!(watch.summary(), BehindSummary { episodes: 3, lateness_us_max: 3_000_000, paused_episodes: 0 });
        // A planned pause is told, and counted apart.
        assert!(!watch.observe(t(8), 0, false));
        assert!(watch.observe(t(9), 2_000_000, true));
        assert_eq!(watch.summary(), BehindSummary { episodes: 3, lateness_us_max: 3_000_000, paused_episodes: 1 });
    }

    #[test]
    fn long_lateness_is_kept_to_the_millisecond_in_bounded_memory() {
        let mut recorder = LatenessRecorder::default();
        for _ in 0..98 {
            recorder.record(Duration::from_micros(10));
        }
        recorder.record(Duration::from_micros(2_345_678));
        recorder.record(Duration::from_secs(3_600));
        let summary = recorder.summary();
        assert_eq!(summary, LatenessSummary { ticks: 100, p50_us: 10, p99_us: 2_345_000, max_us: 3_600_000_000 });
        assert_eq!(recorder.coarse.len(), 2);
    }
}
