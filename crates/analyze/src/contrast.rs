//! Two experiments compared on one metric: a permutation test of the
//! difference of their means, and the difference with its 95% interval.
//!
//! Runs of two experiments with the same settings are draws from one
//! distribution, so their labels can be swapped: the share of the ways to
//! split the pooled runs into two groups of the same sizes whose means
//! differ at least as much as the observed ones is the test's p-value, and
//! a difference is called real when it is at most 5%. Whatever the shape of
//! the metric's distribution (a rare rate draw makes lag and queues large),
//! two experiments with identical settings are then called different in at
//! most 5% of the cases; `clocklab study comparison` measures it.
//!
//! The interval is the test turned around (a shift δ is in it when the test
//! does not reject the first experiment's values minus δ against the
//! second's), so it excludes 0 exactly when the difference is called real.
//! With few runs no split can be rare enough: 3 runs against 3 make 20
//! splits, the smallest p-value 2/20. Such experiments are not compared
//! ([`contrast`] returns `None`).

use serde::Serialize;

/// How small a p-value must be for a difference to be called real.
pub const ALPHA: f64 = 0.05;

/// Up to this many splits are enumerated; beyond, a fixed sample of them.
const MAX_EXACT_SPLITS: usize = 20_000;

/// How many random splits stand for all of them beyond [`MAX_EXACT_SPLITS`].
const SAMPLED_SPLITS: usize = 9_999;

/// One metric of two experiments compared.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Contrast {
    /// The first experiment's mean minus the second's.
    pub difference: f64,
    /// The shifts the test does not reject at 5%.
    pub ci95: [f64; 2],
    /// The two-sided permutation p-value of the difference.
    pub p_value: f64,
    /// Whether `p_value` ≤ [`ALPHA`].
    pub different: bool,
}

/// The splits of the pooled values into a first group of `a.len()` and a
/// second of `b.len()`: for each, the difference of its means at shift 0
/// and how that difference moves per unit of shift.
struct Splits {
    /// (difference of means at δ = 0, d(difference)/dδ).
    lines: Vec<(f64, f64)>,
}

impl Splits {
    fn new(a: &[f64], b: &[f64]) -> Splits {
        let (n_a, n_b) = (a.len(), b.len());
        let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
        let total: f64 = pooled.iter().sum();
        let mut lines = Vec::new();
        let mut push = |first: &[usize]| {
            let sum_first: f64 = first.iter().map(|&i| pooled[i]).sum();
            let k = first.iter().filter(|&&i| i < n_a).count() as f64;
            let difference = sum_first / n_a as f64 - (total - sum_first) / n_b as f64;
            // Shifting a's values by −δ lowers the first group's sum by k·δ
            // and the second's by (n_a − k)·δ.
            let slope = -k / n_a as f64 + (n_a as f64 - k) / n_b as f64;
            lines.push((difference, slope));
        };
        if binomial(n_a + n_b, n_a) <= MAX_EXACT_SPLITS {
            let mut first: Vec<usize> = (0..n_a).collect();
            loop {
                push(&first);
                // The next combination in lexicographic order.
                let Some(pos) = (0..n_a).rev().find(|&i| first[i] < n_a + n_b - n_a + i) else { break };
                first[pos] += 1;
                for i in pos + 1..n_a {
                    first[i] = first[i - 1] + 1;
                }
            }
        } else {
            use rand::seq::SliceRandom;
            // The same values always give the same test.
            let mut rng = clocklab_model::seed::rng_from_seed(0x7065_726d_7574_6573);
            push(&(0..n_a).collect::<Vec<_>>());
            let mut order: Vec<usize> = (0..n_a + n_b).collect();
            for _ in 0..SAMPLED_SPLITS {
                order.shuffle(&mut rng);
                push(&order[..n_a]);
            }
        }
        Splits { lines }
    }

    /// The p-value of the difference `observed` − δ at shift δ: the share
    /// of splits whose difference is at least as far from 0.
    fn p_value(&self, observed: f64, delta: f64) -> f64 {
        let target = (observed - delta).abs();
        // Sums of the same values in another order differ in their last bits.
        let tolerance = 1e-9 * (1.0 + target);
        let extreme = self.lines.iter().filter(|(d, s)| (d + s * delta).abs() >= target - tolerance).count();
        extreme as f64 / self.lines.len() as f64
    }

    /// The smallest p-value any data could give.
    fn smallest_p_value(&self) -> f64 {
        // The split that is the observed one, and its mirror for equal
        // sizes, are always at least as extreme.
        let mirrored = self.lines.iter().filter(|(_, slope)| (slope.abs() - 1.0).abs() < 1e-12).count();
        mirrored.max(1) as f64 / self.lines.len() as f64
    }
}

/// `n` choose `k`, saturating.
fn binomial(n: usize, k: usize) -> usize {
    let k = k.min(n - k);
    let mut out: usize = 1;
    for i in 0..k {
        out = out.saturating_mul(n - i) / (i + 1);
    }
    out
}

/// `a` against `b`; `None` when they hold too few values for the test ever
/// to call a difference real.
pub fn contrast(a: &[f64], b: &[f64]) -> Option<Contrast> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let splits = Splits::new(a, b);
    if splits.smallest_p_value() > ALPHA {
        return None;
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let observed = mean(a) - mean(b);
    let p_value = splits.p_value(observed, 0.0);
    let scale = a.iter().chain(b).map(|v| v.abs()).fold(0.0, f64::max).max(1e-12);
    let bound = |direction: f64| {
        // Out from the observed difference (p = 1) until the test rejects,
        // then halve the step between the last shift kept and the first
        // rejected.
        let mut inside = observed;
        let mut step = scale;
        let mut outside = observed + direction * step;
        while splits.p_value(observed, outside) > ALPHA {
            inside = outside;
            step *= 2.0;
            outside = observed + direction * step;
        }
        for _ in 0..100 {
            let middle = (inside + outside) / 2.0;
            if splits.p_value(observed, middle) > ALPHA {
                inside = middle;
            } else {
                outside = middle;
            }
        }
        inside
    };
    Some(Contrast { difference: observed, ci95: [bound(-1.0), bound(1.0)], p_value, different: p_value <= ALPHA })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_runs_against_five_split_252_ways() {
        assert_eq!(binomial(10, 5), 252);
        let splits = Splits::new(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(splits.lines.len(), 252);
        // Completely separated groups: only the split itself and its mirror are as extreme.
        let test = contrast(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!((test.p_value - 2.0 / 252.0).abs() < 1e-12, "{test:?}");
        assert!(test.different && test.difference == -5.0);
        assert!(test.ci95[0] < -5.0 && -5.0 < test.ci95[1] && test.ci95[1] < 0.0, "{test:?}");
    }

    #[test]
    fn the_interval_excludes_zero_exactly_when_the_test_rejects() {
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for trial in 0..300 {
            let shift = (trial % 7) as f64 * 0.3;
            let a: Vec<f64> = (0..5).map(|_| next() + shift).collect();
            let b: Vec<f64> = (0..5).map(|_| next()).collect();
            let test = contrast(&a, &b).unwrap();
            let covers_zero = test.ci95[0] <= 0.0 && 0.0 <= test.ci95[1];
            assert_eq!(test.different, !covers_zero, "{a:?} {b:?} {test:?}");
            assert!(test.ci95[0] <= test.difference && test.difference <= test.ci95[1]);
        }
    }

    #[test]
    fn too_few_runs_make_no_statement() {
        assert_eq!(contrast(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), None);
        assert_eq!(contrast(&[1.0], &[4.0, 5.0, 6.0, 7.0, 8.0]), None);
        assert!(contrast(&[1.0, 2.0, 3.0, 4.0], &[4.0, 5.0, 6.0, 7.0]).is_some());
    }

    #[test]
    fn large_groups_use_a_fixed_sample_of_splits() {
        let a: Vec<f64> = (0..20).map(f64::from).collect();
        let b: Vec<f64> = (0..20).map(|v| f64::from(v) + 0.5).collect();
        let test = contrast(&a, &b).unwrap();
        assert!(!test.different && test.p_value > 0.5, "{test:?}");
        assert_eq!(Some(test), contrast(&a, &b), "the same values give the same test");
    }
}
