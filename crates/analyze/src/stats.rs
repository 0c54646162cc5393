//! Streaming statistics: exact histograms, bounded time series, and the
//! small-sample statistics used across runs.

use std::collections::BTreeMap;

/// An exact histogram of small non-negative integers (jump sizes, queue
/// lengths): percentiles from it are exact, and it stays small because the
/// values are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    counts: BTreeMap<u64, u64>,
    n: u64,
    sum: u128,
}

impl Histogram {
    /// Adds one value.
    pub fn add(&mut self, value: u64) {
        *self.counts.entry(value).or_insert(0) += 1;
        self.n += 1;
        self.sum += u128::from(value);
    }

    /// How many values were added.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The mean, or 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sum as f64 / self.n as f64 }
    }

    /// The largest value, or 0 when empty.
    pub fn max(&self) -> u64 {
        self.counts.keys().next_back().copied().unwrap_or(0)
    }

    /// The nearest-rank percentile: the smallest value whose cumulative count
    /// reaches `ceil(p * n)`; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        assert!((0.0..=1.0).contains(&p), "a percentile is in 0..=1");
        if self.n == 0 {
            return 0;
        }
        let rank = ((p * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (&value, &count) in &self.counts {
            seen += count;
            if seen >= rank {
                return value;
            }
        }
        self.max()
    }

    /// Each value and how often it occurred, in increasing order.
    pub fn counts(&self) -> &BTreeMap<u64, u64> {
        &self.counts
    }
}

/// How many buckets a [`Series`] keeps at most.
pub const MAX_POINTS: usize = 2_000;

/// A time series downsampled to at most [`MAX_POINTS`] buckets of equal
/// width, keeping the largest value of each bucket: a queue's peaks and a
/// drift's spikes survive downsampling, and memory does not grow with the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    bucket_us: i64,
    /// (bucket index, largest value in it), in increasing bucket order.
    buckets: Vec<(i64, f64)>,
}

impl Default for Series {
    fn default() -> Series {
        // 10 ms buckets to start: finer than any tick of the model.
        Series { bucket_us: 10_000, buckets: Vec::new() }
    }
}

impl Series {
    /// Adds `value` at `time_us` (relative to the run's start). Times must
    /// not decrease by more than one bucket; the merge of a run's logs feeds
    /// lines in time order.
    pub fn push(&mut self, time_us: i64, value: f64) {
        let bucket = time_us.max(0) / self.bucket_us;
        match self.buckets.last_mut() {
            Some((last, max)) if *last >= bucket => *max = max.max(value),
            _ => self.buckets.push((bucket, value)),
        }
        if self.buckets.len() > MAX_POINTS {
            self.coarsen();
        }
    }

    /// Doubles the bucket width, merging neighbours.
    fn coarsen(&mut self) {
        self.bucket_us *= 2;
        let mut merged: Vec<(i64, f64)> = Vec::with_capacity(self.buckets.len() / 2 + 1);
        for &(bucket, value) in &self.buckets {
            let bucket = bucket / 2;
            match merged.last_mut() {
                Some((last, max)) if *last == bucket => *max = max.max(value),
                _ => merged.push((bucket, value)),
            }
        }
        self.buckets = merged;
    }

    /// The points: (seconds since the run's start, value).
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.buckets.iter().map(|&(bucket, value)| ((bucket * self.bucket_us) as f64 / 1e6, value)).collect()
    }

    /// How many points it holds.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether it holds no point.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// A least-squares line through (time, value) points, kept as running sums.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trend {
    n: f64,
    sum_t: f64,
    sum_v: f64,
    sum_tt: f64,
    sum_tv: f64,
}

impl Trend {
    /// Adds a point.
    pub fn add(&mut self, time_s: f64, value: f64) {
        self.n += 1.0;
        self.sum_t += time_s;
        self.sum_v += value;
        self.sum_tt += time_s * time_s;
        self.sum_tv += time_s * value;
    }

    /// The slope, in value per second; 0 with fewer than two distinct times.
    pub fn slope(&self) -> f64 {
        let denominator = self.n * self.sum_tt - self.sum_t * self.sum_t;
        if self.n < 2.0 || denominator.abs() < 1e-9 {
            return 0.0;
        }
        (self.n * self.sum_tv - self.sum_t * self.sum_v) / denominator
    }
}

/// Mean, spread and 95% confidence interval of one metric across runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Spread {
    /// How many runs.
    pub n: usize,
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation (0 for one run).
    pub sd: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// Student's t 95% confidence interval of the mean; absent for fewer than
    /// three runs, where it is too wide to mean anything.
    pub ci95: Option<[f64; 2]>,
}

impl Spread {
    /// The spread of `values`.
    ///
    /// # Panics
    /// If `values` is empty.
    pub fn of(values: &[f64]) -> Spread {
        assert!(!values.is_empty(), "a spread needs at least one value");
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd =
            if n > 1 { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        let ci95 = (n > 2).then(|| {
            let half = t_975(n - 1) * sd / (n as f64).sqrt();
            [mean - half, mean + half]
        });
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Spread { n, mean, sd, min, max, ci95 }
    }
}

/// The 0.975 quantile of Student's t distribution with `df` degrees of freedom.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => 1.96,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut histogram = Histogram::default();
        for value in [1, 1, 1, 2, 2, 3, 7, 1, 1, 9] {
            histogram.add(value);
        }
        assert_eq!(histogram.len(), 10);
        assert_eq!(histogram.percentile(0.5), 1);
        assert_eq!(histogram.percentile(0.7), 2);
        assert_eq!(histogram.percentile(0.9), 7);
        assert_eq!(histogram.percentile(0.99), 9);
        assert_eq!(histogram.max(), 9);
        assert!((histogram.mean() - 2.8).abs() < 1e-12);
        assert_eq!(Histogram::default().percentile(0.99), 0);
    }

    #[test]
    fn series_stays_bounded_and_keeps_peaks() {
        let mut series = Series::default();
        for i in 0..1_000_000i64 {
            let value = if i == 777_777 { 1e6 } else { (i % 10) as f64 };
            series.push(i * 1_000, value);
        }
        assert!(series.len() <= MAX_POINTS);
        assert!(series.len() > MAX_POINTS / 4);
        assert_eq!(series.points().iter().map(|p| p.1).fold(0.0, f64::max), 1e6);
    }

    #[test]
    fn trend_slope() {
        let mut trend = Trend::default();
        for t in 0..10 {
            trend.add(t as f64, 3.0 + 2.0 * t as f64);
        }
        assert!((trend.slope() - 2.0).abs() < 1e-9);
        assert_eq!(Trend::default().slope(), 0.0);
    }

    #[test]
    fn spread_and_confidence_interval() {
        let spread = Spread::of(&[2.0, 4.0, 6.0]);
        assert_eq!(spread.mean, 4.0);
        assert_eq!(spread.sd, 2.0);
        let [low, high] = spread.ci95.unwrap();
        // 4 ± 4.303 * 2 / sqrt(3)
        assert!((high - 4.0 - 4.303 * 2.0 / 3f64.sqrt()).abs() < 1e-9);
        assert!((4.0 - low - 4.303 * 2.0 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(Spread::of(&[5.0]).ci95, None);
        assert_eq!(Spread::of(&[5.0, 6.0]).ci95, None);
    }
}
