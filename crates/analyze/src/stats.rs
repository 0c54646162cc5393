//! Streaming statistics: histograms of bounded size (exact for small
//! values), bounded time series, and the small-sample statistics used
//! across runs.

use std::collections::BTreeMap;

/// Values below this are counted in an array (most jumps and queue
/// lengths: one increment, where a map's lookup showed in profiles); larger
/// ones in a high-dynamic-range histogram.
const DENSE_VALUES: usize = 256;

/// The significant decimal digits the histogram keeps of a value from
/// [`DENSE_VALUES`] on: values below 2,048 are kept exactly, larger ones in
/// buckets at most 1/1,024 of their value wide.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A histogram of non-negative integers (jump sizes, queue lengths) whose
/// size does not grow with the number of distinct values: exact below 2,048
/// ([`Histogram::EXACT_BELOW`]), which holds every value of an ordinary run,
/// and above that in buckets of at most 1/1,024 of their value
/// (`hdrhistogram`, three significant digits): two million distinct jump
/// sizes took 63 MB of `summary.json` and 148 MB of memory when every value
/// was kept. The count, the mean and the largest value stay exact whatever
/// the values; a percentile above the exact range is its bucket's highest
/// value (never above the largest value seen).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Counts of the values below [`DENSE_VALUES`], indexed by value, as
    /// long as the largest of them seen (so that equal histograms are equal).
    dense: Vec<u64>,
    /// The larger values, made at the first of them.
    sparse: Option<Box<hdrhistogram::Histogram<u64>>>,
    n: u64,
    sum: u128,
    max: u64,
}

impl Histogram {
    /// Values below this are counted one by one; larger ones in buckets.
    pub const EXACT_BELOW: u64 = 2_048;

    /// Adds one value.
    pub fn add(&mut self, value: u64) {
        match usize::try_from(value) {
            Ok(idx) if idx < DENSE_VALUES => {
                if idx >= self.dense.len() {
                    self.dense.resize(idx + 1, 0);
                }
                self.dense[idx] += 1;
            }
            _ => {
                let sparse = self.sparse.get_or_insert_with(|| {
                    Box::new(
                        hdrhistogram::Histogram::new(SIGNIFICANT_DIGITS)
                            .expect("three significant digits make a histogram"),
                    )
                });
                // The histogram grows its range to take the value; past 2^62
                // (no jump or queue of a run) a value counts in the last bucket.
                if sparse.record(value).is_err() {
                    sparse.saturating_record(value);
                }
            }
        }
        self.n += 1;
        self.sum += u128::from(value);
        self.max = self.max.max(value);
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
        self.max
    }

    /// The nearest-rank percentile: the smallest value whose cumulative count
    /// reaches `ceil(p * n)`; 0 when empty. Exact below
    /// [`Histogram::EXACT_BELOW`]; above, the highest value of its bucket.
    pub fn percentile(&self, p: f64) -> u64 {
        assert!((0.0..=1.0).contains(&p), "a percentile is in 0..=1");
        if self.n == 0 {
            return 0;
        }
        let rank = ((p * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (value, count) in self.iter() {
            seen += count;
            if seen >= rank {
                return value;
            }
        }
        self.max()
    }

    /// Each value seen and how often, in increasing order of value. Below
    /// [`Histogram::EXACT_BELOW`] each value is itself; above, a value
    /// stands for its bucket (the bucket's highest value, or the largest
    /// value seen if that is lower), with the count of every value in it.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, u64)> + '_ {
        let dense = self.dense.iter().enumerate().filter(|&(_, &count)| count > 0);
        let sparse: Vec<(u64, u64)> = self
            .sparse
            .iter()
            .flat_map(|sparse| sparse.iter_recorded())
            .map(|bucket| (bucket.value_iterated_to().min(self.max), bucket.count_at_value()))
            .collect();
        dense.map(|(value, &count)| (value as u64, count)).chain(sparse)
    }

    /// [`Histogram::iter`] as a map, for the summary: at most a few
    /// thousand entries for values up to millions, whatever their number.
    pub fn counts(&self) -> BTreeMap<u64, u64> {
        self.iter().collect()
    }
}

/// How many buckets a [`Series`] keeps at most.
pub const MAX_POINTS: usize = 2_000;

/// A time series downsampled to at most [`MAX_POINTS`] buckets of equal
/// width, keeping the largest value of each bucket: a queue's peaks and a
/// lag's spikes survive downsampling, and memory does not grow with the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    bucket_us: i64,
    /// (bucket index, largest value in it), in increasing bucket order.
    buckets: Vec<(i64, f64)>,
    /// Where the last bucket ends (0 with no bucket): most values fall
    /// before it, and are placed by one comparison.
    last_end_us: i64,
}

impl Default for Series {
    fn default() -> Series {
        // 10 ms buckets to start: finer than any tick of the model.
        Series { bucket_us: 10_000, buckets: Vec::new(), last_end_us: 0 }
    }
}

impl Series {
    /// Adds `value` at `time_us` (relative to the run's start). Times must
    /// not decrease by more than one bucket; the merge of a run's logs feeds
    /// lines in time order.
    pub fn push(&mut self, time_us: i64, value: f64) {
        if time_us < self.last_end_us
            && let Some((_, max)) = self.buckets.last_mut()
        {
            *max = max.max(value);
            return;
        }
        let bucket = time_us.max(0) / self.bucket_us;
        match self.buckets.last_mut() {
            Some((last, max)) if *last >= bucket => *max = max.max(value),
            _ => self.buckets.push((bucket, value)),
        }
        if self.buckets.len() > MAX_POINTS {
            self.coarsen();
        }
        self.last_end_us = self.buckets.last().map_or(0, |&(last, _)| (last + 1) * self.bucket_us);
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

/// A least-squares line through (time, value) points, kept as running sums
/// (centred on the first point, so that large times and values lose no
/// precision).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trend {
    origin: Option<(f64, f64)>,
    n: f64,
    sum_t: f64,
    sum_v: f64,
    sum_tt: f64,
    sum_tv: f64,
    sum_vv: f64,
}

/// A fitted slope and its standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Slope {
    /// Value per second.
    pub per_s: f64,
    /// Its standard error (0 with fewer than three points). The residuals of
    /// a time series are correlated, so this understates the uncertainty;
    /// it is a yardstick, not a test.
    pub se: f64,
}

impl Slope {
    /// Whether the slope is above zero by more than twice its standard error.
    pub fn clearly_positive(&self) -> bool {
        self.per_s > 2.0 * self.se && self.per_s > 1e-9
    }
}

impl Trend {
    /// Adds a point.
    pub fn add(&mut self, time_s: f64, value: f64) {
        let (t0, v0) = *self.origin.get_or_insert((time_s, value));
        let (t, v) = (time_s - t0, value - v0);
        self.n += 1.0;
        self.sum_t += t;
        self.sum_v += v;
        self.sum_tt += t * t;
        self.sum_tv += t * v;
        self.sum_vv += v * v;
    }

    /// The slope, in value per second; 0 with fewer than two distinct times.
    pub fn slope(&self) -> f64 {
        self.fit().per_s
    }

    /// The slope and its standard error.
    pub fn fit(&self) -> Slope {
        if self.n < 2.0 {
            return Slope::default();
        }
        let sxx = self.sum_tt - self.sum_t * self.sum_t / self.n;
        let sxy = self.sum_tv - self.sum_t * self.sum_v / self.n;
        let syy = self.sum_vv - self.sum_v * self.sum_v / self.n;
        if sxx.abs() < 1e-12 {
            return Slope::default();
        }
        let per_s = sxy / sxx;
        let se = if self.n > 2.0 { ((syy - per_s * sxy).max(0.0) / (self.n - 2.0) / sxx).sqrt() } else { 0.0 };
        Slope { per_s, se }
    }
}

/// Mean, spread and a 95% confidence interval of one metric across runs.
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
    /// A 95% bootstrap percentile interval of the mean (2,000 resamples with
    /// a fixed seed); absent for fewer than three runs, where it would mean
    /// nothing. It never leaves the range of the values, so a quantity that
    /// cannot be negative never gets a negative bound.
    pub ci95: Option<[f64; 2]>,
}

/// Resamples of the bootstrap.
const BOOTSTRAP_RESAMPLES: usize = 2_000;

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
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ci95 = (n > 2).then(|| bootstrap_mean_ci(values));
        Spread { n, mean, sd, min, max, ci95 }
    }
}

/// The 2.5% and 97.5% quantiles of the means of resamples of `values`.
fn bootstrap_mean_ci(values: &[f64]) -> [f64; 2] {
    use rand::RngExt;
    use statrs::statistics::{Data, OrderStatistics};
    // The same values always give the same interval.
    let mut rng = clocklab_model::seed::rng_from_seed(0x626f_6f74_7374_7261);
    let means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            (0..values.len()).map(|_| values[rng.random_range(0..values.len())]).sum::<f64>() / values.len() as f64
        })
        .collect();
    let mut data = Data::new(means);
    [data.quantile(0.025), data.quantile(0.975)]
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom.
///
/// # Panics
/// If `df` is 0.
pub fn t_quantile(p: f64, df: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    assert!(df > 0, "Student's t needs a degree of freedom");
    StudentsT::new(0.0, 1.0, df as f64).expect("df > 0 makes a distribution").inverse_cdf(p)
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
    fn large_values_count_like_small_ones() {
        let mut histogram = Histogram::default();
        let values = [3, 300, 255, 256, 3, 1 << 40, 0, 300];
        for value in values {
            histogram.add(value);
        }
        let expected: BTreeMap<u64, u64> =
            [(0, 1), (3, 2), (255, 1), (256, 1), (300, 2), (1 << 40, 1)].into_iter().collect();
        assert_eq!(histogram.counts(), expected);
        assert_eq!(histogram.max(), 1 << 40);
        assert_eq!(histogram.percentile(0.5), 255);
        assert_eq!(histogram.percentile(0.75), 300);
        assert_eq!(histogram.len(), values.len() as u64);
        // The same values in another order make an equal histogram.
        let mut reversed = Histogram::default();
        values.iter().rev().for_each(|&value| reversed.add(value));
        assert_eq!(reversed, histogram);
    }

    #[test]
    fn millions_of_distinct_values_keep_the_size_bounded_and_small_ones_exact() {
        let mut histogram = Histogram::default();
        let n = 2_000_000u64;
        for value in (0..n).rev() {
            histogram.add(value);
        }
        let counts = histogram.counts();
        assert!(counts.len() < 13_000, "{} entries for {n} distinct values", counts.len());
        assert_eq!(counts.values().sum::<u64>(), n, "every value is counted");
        let exact: Vec<(u64, u64)> = counts.range(..Histogram::EXACT_BELOW).map(|(&v, &c)| (v, c)).collect();
        assert_eq!(exact, (0..Histogram::EXACT_BELOW).map(|v| (v, 1)).collect::<Vec<_>>(), "exact below 2048");
        assert_eq!((histogram.len(), histogram.max(), histogram.mean()), (n, n - 1, (n - 1) as f64 / 2.0));
        // Above the exact range, a percentile is within its bucket: 1/1024 of its value.
        for (p, exact) in [(0.5, 999_999.0), (0.99, 1_979_999.0)] {
            let found = histogram.percentile(p) as f64;
            assert!((found - exact).abs() <= exact / 1024.0, "p{p}: {found} for {exact}");
        }
        assert_eq!(histogram.percentile(0.0005), 999, "and exact within it");
        assert!(counts.keys().all(|&value| value < n), "no bucket is named past the largest value");
    }

    #[test]
    fn series_keeps_the_largest_value_of_each_bucket_of_its_final_width() {
        let mut series = Series::default();
        let mut points = Vec::new();
        let (mut time_us, mut state) = (0i64, 12_345u64);
        for _ in 0..50_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            // Steps of 0 to 20 ms: many values share a bucket, and the
            // series coarsens several times.
            time_us += (state >> 33) as i64 % 20_000;
            let value = ((state >> 13) % 1_000) as f64;
            series.push(time_us, value);
            points.push((time_us, value));
        }
        let mut expected: BTreeMap<i64, f64> = BTreeMap::new();
        for (time_us, value) in points {
            let max = expected.entry(time_us / series.bucket_us).or_insert(value);
            *max = max.max(value);
        }
        assert!(series.bucket_us > 10_000, "the series coarsened");
        assert_eq!(series.buckets, expected.into_iter().collect::<Vec<_>>());
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
    fn spread_and_a_confidence_interval_inside_the_values() {
        let spread = Spread::of(&[2.0, 4.0, 6.0]);
        assert_eq!(spread.mean, 4.0);
        assert_eq!(spread.sd, 2.0);
        let [low, high] = spread.ci95.unwrap();
        assert!((2.0..4.0).contains(&low) && high > 4.0 && high <= 6.0, "[{low}, {high}]");
        assert_eq!(spread, Spread::of(&[2.0, 4.0, 6.0]), "the same values give the same interval");
        // A skewed non-negative metric: a t interval would go below 0, this never does.
        let skewed = Spread::of(&[0.0, 0.0, 0.0, 0.0, 120.0]);
        let [low, _] = skewed.ci95.unwrap();
        assert!(low >= 0.0, "{low}");
        assert!(skewed.mean - t_quantile(0.975, 4) * skewed.sd / 5f64.sqrt() < 0.0);
        assert_eq!(Spread::of(&[5.0]).ci95, None);
        assert_eq!(Spread::of(&[5.0, 6.0]).ci95, None);
    }

    #[test]
    fn t_quantiles_are_exact() {
        assert!((t_quantile(0.975, 4) - 2.776_445_105_197_793).abs() < 1e-9);
        assert!((t_quantile(0.975, 1) - 12.706_204_736_174_7).abs() < 1e-6);
    }

    #[test]
    fn slope_with_its_standard_error() {
        let mut exact = Trend::default();
        let mut noisy = Trend::default();
        for t in 0..100 {
            exact.add(1e9 + t as f64, 5e6 + 0.5 * t as f64);
            noisy.add(t as f64, if t % 2 == 0 { 1.0 } else { -1.0 });
        }
        let fit = exact.fit();
        assert!((fit.per_s - 0.5).abs() < 1e-9 && fit.se < 1e-6, "{fit:?}");
        assert!(fit.clearly_positive());
        let fit = noisy.fit();
        assert!(fit.per_s.abs() < 0.01 && fit.se > 0.001 && !fit.clearly_positive(), "{fit:?}");
    }
}
