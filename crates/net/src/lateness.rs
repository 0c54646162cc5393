//! Tick lateness: how long after its scheduled time each tick ran.

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

/// Collects the lateness of every tick.
#[derive(Clone, Debug, Default)]
pub struct LatenessRecorder {
    samples_us: Vec<u64>,
}

impl LatenessRecorder {
    /// A recorder with room for `n_ticks` samples, so that recording never
    /// allocates inside the tick loop.
    pub fn with_capacity(n_ticks: usize) -> LatenessRecorder {
        LatenessRecorder { samples_us: Vec::with_capacity(n_ticks) }
    }

    /// Records one tick that ran `lateness` after its due time.
    pub fn record(&mut self, lateness: Duration) {
        self.samples_us.push(u64::try_from(lateness.as_micros()).unwrap_or(u64::MAX));
    }

    /// The percentiles (nearest rank) of everything recorded.
    pub fn summary(&self) -> LatenessSummary {
        let mut sorted = self.samples_us.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        if n == 0 {
            return LatenessSummary::default();
        }
        // Nearest rank: the smallest sample with at least p% of samples at or below it.
        let rank = |percent: usize| sorted[(n * percent).div_ceil(100).clamp(1, n) - 1];
        LatenessSummary { ticks: n as u64, p50_us: rank(50), p99_us: rank(99), max_us: sorted[n - 1] }
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

        let mut one = LatenessRecorder::with_capacity(1);
        one.record(Duration::from_micros(7));
        assert_eq!(one.summary(), LatenessSummary { ticks: 1, p50_us: 7, p99_us: 7, max_us: 7 });
    }
}
