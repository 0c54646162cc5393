//! The simulated network: how long a message is on the wire.

use clocklab_config::DelayDistribution;
use clocklab_model::seed::ModelRng;
use rand::RngExt;

/// Draws delivery delays from a [`DelayDistribution`] with the run's network
/// generator.
#[derive(Clone, Debug)]
pub struct Network {
    delay: DelayDistribution,
    rng: ModelRng,
}

impl Network {
    /// A network whose delays follow `delay`, drawn from `rng`.
    pub fn new(delay: DelayDistribution, rng: ModelRng) -> Network {
        Network { delay, rng }
    }

    /// The delay distribution.
    pub fn delay(&self) -> DelayDistribution {
        self.delay
    }

    /// The next message's delay, in whole microseconds (rounded to the nearest).
    ///
    /// A constant delay draws nothing, so it leaves the generator untouched.
    /// The exponential tail is drawn by inversion, `-ln(1 - u) x scale` with
    /// `u` uniform in `[0, 1)`; rounding to the microsecond makes the result
    /// the same on every platform in all but vanishingly rare cases.
    pub fn draw_delay_us(&mut self) -> u64 {
        let delay_us = match self.delay {
            DelayDistribution::Constant { delay_us } => delay_us,
            DelayDistribution::Uniform { min_us, max_us } => min_us + self.rng.random::<f64>() * (max_us - min_us),
            DelayDistribution::Exponential { min_us, mean_us } => {
                let u: f64 = self.rng.random();
                min_us - (1.0 - u).ln() * (mean_us - min_us)
            }
        };
        // The configuration rejects negative and non-finite parameters and
        // checks the calendar against the longest delay; the clamp keeps a
        // hand-built distribution from wrapping around or going past it.
        delay_us.min(self.delay.max_delay_us()).round().clamp(0.0, u64::MAX as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_model::seed::rng_from_seed;

    fn draws(delay: DelayDistribution, n: usize) -> Vec<u64> {
        let mut network = Network::new(delay, rng_from_seed(5));
        (0..n).map(|_| network.draw_delay_us()).collect()
    }

    #[test]
    fn constant_delay_is_rounded() {
        assert!(draws(DelayDistribution::Constant { delay_us: 41.6 }, 10).iter().all(|&d| d == 42));
        assert!(draws(DelayDistribution::Constant { delay_us: 0.0 }, 10).iter().all(|&d| d == 0));
    }

    #[test]
    fn uniform_delay_stays_in_bounds_and_spreads() {
        let values = draws(DelayDistribution::Uniform { min_us: 10.0, max_us: 20.0 }, 10_000);
        assert!(values.iter().all(|&d| (10..=20).contains(&d)));
        let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
        assert!((14.5..15.5).contains(&mean), "{mean}");
        assert!(values.contains(&11) && values.contains(&19));
    }

    #[test]
    fn exponential_delay_has_its_floor_and_mean() {
        let values = draws(DelayDistribution::Exponential { min_us: 30.0, mean_us: 60.0 }, 20_000);
        assert!(values.iter().all(|&d| d >= 30));
        let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
        assert!((58.5..61.5).contains(&mean), "{mean}");
        assert!(values.iter().any(|&d| d > 150), "the tail reaches several means");
    }

    #[test]
    fn same_seed_same_delays() {
        let delay = DelayDistribution::default();
        assert_eq!(draws(delay, 100), draws(delay, 100));
    }
}
