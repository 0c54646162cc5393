//! Streaming statistics: histograms of bounded size (exact for small
//! values) and bounded time series (a metric across runs is in
//! [`crate::interval`], growth over a run in [`crate::growth`]).

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
}
