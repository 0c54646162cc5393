//! Whether a machine's lag grows over its run: a slope over batch means.
//!
//! A lag is strongly autocorrelated (it stays up until the next message
//! from the leader arrives), so a least-squares slope over every tick with
//! its textbook standard error calls a stable machine's lag growing far
//! more often than 5% of the time (14–17% of clearly stable machines at
//! every run length). Here the run is cut into [`BATCHES`] batches of equal
//! time; the lag's time-weighted mean in each batch is one point, and the
//! slope through those points, the first batch left out
//! ([`WARM_UP_BATCHES`]: every lag starts at 0 and climbs to its usual
//! level, which is no growth), is tested with Student's t. Batch means a
//! few seconds long are nearly independent, which is what the t test needs;
//! `clocklab study lag-growth` measures the false positives on stable
//! machines and the power on overloaded ones (BENCHMARKS.md).
//!
//! A lag is said to grow only when the test says so at 5% (one-sided) and
//! the growth is large enough to matter: more than [`PRACTICAL_TICKS`] over
//! the time the machine was measured.
//!
//! The batches are built in one streaming pass without knowing the run's
//! length: time is cut into at most `MAX_BLOCKS` blocks of equal width,
//! and two neighbours merge when a value falls beyond the last one (the
//! integrals of a block are sums, so merging loses nothing); at the end the
//! blocks are grouped into batches.

use serde::Serialize;

/// How many batches the run is cut into.
pub const BATCHES: usize = 8;

/// How many of them, at the start, the test leaves out.
pub const WARM_UP_BATCHES: usize = 1;

/// How many blocks of time are kept at most (at least half of them hold
/// the run after merging, so [`BATCHES`] batches are sums of several).
const MAX_BLOCKS: usize = 80;

/// The width of a block to start with, in microseconds.
const FIRST_WIDTH_US: i64 = 50_000;

/// The level of the one-sided test.
pub const ALPHA: f64 = 0.05;

/// Growth over the measured time below which a lag is not said to grow, in
/// ticks (and a queue, in messages).
pub const PRACTICAL_TICKS: f64 = 1.0;

/// A value's integral over time, in blocks of equal width from the run's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocks {
    width_us: i64,
    /// Per block: (∫ value dt, ∫ dt), in microseconds.
    sums: Vec<(f64, f64)>,
}

impl Default for Blocks {
    fn default() -> Blocks {
        Blocks { width_us: FIRST_WIDTH_US, sums: Vec::new() }
    }
}

impl Blocks {
    /// Adds `value`, held from `from_us` for `duration_us`.
    pub fn add(&mut self, from_us: i64, duration_us: i64, value: f64) {
        if duration_us <= 0 {
            return;
        }
        let (from_us, end_us) = (from_us.max(0), from_us.max(0) + duration_us);
        while (end_us - 1) / self.width_us >= MAX_BLOCKS as i64 {
            self.coarsen();
        }
        let mut at = from_us;
        while at < end_us {
            let block = (at / self.width_us) as usize;
            let until = ((block as i64 + 1) * self.width_us).min(end_us);
            if self.sums.len() <= block {
                self.sums.resize(block + 1, (0.0, 0.0));
            }
            let span = (until - at) as f64;
            self.sums[block].0 += value * span;
            self.sums[block].1 += span;
            at = until;
        }
    }

    /// Doubles the width, merging neighbours.
    fn coarsen(&mut self) {
        self.width_us *= 2;
        self.sums =
            self.sums.chunks(2).map(|pair| pair.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))).collect();
    }

    /// The time measured, in seconds.
    pub fn measured_s(&self) -> f64 {
        self.sums.iter().map(|b| b.1).sum::<f64>() / 1e6
    }

    /// `n` batches of the measured time: (mean time in seconds, time-weighted
    /// mean value), each holding about the same time; fewer when there are
    /// fewer blocks with time in them.
    pub fn batches(&self, n: usize) -> Vec<(f64, f64)> {
        let measured: Vec<(f64, f64, f64)> = self
            .sums
            .iter()
            .enumerate()
            .filter(|(_, b)| b.1 > 0.0)
            .map(|(idx, b)| ((idx as f64 + 0.5) * self.width_us as f64 / 1e6, b.0, b.1))
            .collect();
        let total: f64 = measured.iter().map(|b| b.2).sum();
        if measured.is_empty() || n == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(n);
        let (mut time, mut value, mut weight) = (0.0, 0.0, 0.0);
        let mut seen = 0.0;
        for (idx, &(t, v, w)) in measured.iter().enumerate() {
            time += t * w;
            value += v;
            weight += w;
            seen += w;
            // Close the batch once it reaches its share of the measured time.
            let due = total * (out.len() + 1) as f64 / n as f64;
            if seen >= due * (1.0 - 1e-12) || idx + 1 == measured.len() {
                out.push((time / weight, value / weight));
                (time, value, weight) = (0.0, 0.0, 0.0);
            }
        }
        out
    }
}

/// The lag-growth test of one machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Growth {
    /// The slope through the batch means, in ticks per second.
    pub per_s: f64,
    /// Its standard error (from the batch means' scatter about the line).
    pub se: f64,
    /// Batches used, after the warm-up (the test needs at least 3).
    pub batches: usize,
    /// The one-sided p-value of a slope this large if the lag did not grow.
    pub p_value: f64,
    /// The growth over the measured time (ticks of a lag, messages of a
    /// queue): `per_s` × that time.
    pub over_run: f64,
    /// Whether it grows: `p_value` ≤ [`ALPHA`] and `over_run` > [`PRACTICAL_TICKS`].
    pub grows: bool,
}

/// The test on `blocks` (see the module's doc).
pub fn test(blocks: &Blocks) -> Growth {
    // The first batch is the warm-up: every lag starts at 0 and climbs to
    // its usual level, a rise that is no growth.
    let points: Vec<(f64, f64)> = blocks.batches(BATCHES).into_iter().skip(WARM_UP_BATCHES).collect();
    let k = points.len();
    if k < 3 {
        return Growth { batches: k, p_value: 1.0, ..Growth::default() };
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / k as f64;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / k as f64;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_v)).sum();
    if sxx <= 0.0 {
        return Growth { batches: k, p_value: 1.0, ..Growth::default() };
    }
    let per_s = sxy / sxx;
    let rss: f64 = points.iter().map(|p| (p.1 - mean_v - per_s * (p.0 - mean_t)).powi(2)).sum();
    let se = (rss / (k - 2) as f64 / sxx).sqrt();
    let p_value = if se > 0.0 {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let t = StudentsT::new(0.0, 1.0, (k - 2) as f64).expect("k > 2 makes a distribution");
        1.0 - t.cdf(per_s / se)
    } else if per_s > 0.0 {
        0.0
    } else {
        1.0
    };
    let over_run = per_s * blocks.measured_s();
    let grows = p_value <= ALPHA && over_run > PRACTICAL_TICKS;
    Growth { per_s, se, batches: k, p_value, over_run, grows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_every_integral_while_they_merge() {
        let mut blocks = Blocks::default();
        // Steps of 1.3 s over 100 s, the value the step's index.
        for k in 0..77 {
            blocks.add(k * 1_300_000, 1_300_000, k as f64);
        }
        assert!(blocks.sums.len() <= MAX_BLOCKS);
        let integral: f64 = blocks.sums.iter().map(|b| b.0).sum();
        let expected: f64 = (0..77).map(|k| k as f64 * 1.3e6).sum();
        assert!((integral - expected).abs() < 1e-6 * expected);
        assert!((blocks.measured_s() - 77.0 * 1.3).abs() < 1e-9);
        let batches = blocks.batches(BATCHES);
        assert_eq!(batches.len(), BATCHES);
        assert!(batches.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{batches:?}");
    }

    #[test]
    fn a_steady_climb_grows_and_a_flat_lag_does_not() {
        let mut climbing = Blocks::default();
        let mut flat = Blocks::default();
        for k in 0..600 {
            // 0.1 s steps over 60 s: a lag climbing 0.5 ticks/s, and one
            // going between 0 and 2.
            climbing.add(k * 100_000, 100_000, (k / 20) as f64);
            flat.add(k * 100_000, 100_000, ((k * 7919) % 3) as f64);
        }
        let growth = test(&climbing);
        assert!(growth.grows && (growth.per_s - 0.5).abs() < 0.05, "{growth:?}");
        assert!((growth.over_run - 30.0).abs() < 3.0);
        let growth = test(&flat);
        assert!(!growth.grows && growth.per_s.abs() < 0.05, "{growth:?}");
    }

    #[test]
    fn a_tiny_growth_is_not_said_to_grow() {
        let mut blocks = Blocks::default();
        // 0.5 ticks over 20 s, without noise: significant, and too small to matter.
        for k in 0..200 {
            blocks.add(k * 100_000, 100_000, k as f64 / 400.0);
        }
        let growth = test(&blocks);
        assert!(growth.p_value < 1e-6 && !growth.grows, "{growth:?}");
        assert_eq!(test(&Blocks::default()).batches, 0);
    }
}
