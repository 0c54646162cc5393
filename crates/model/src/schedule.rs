//! The absolute tick schedule, shared by both runtimes.
//!
//! Tick `k` (from 0) of a machine at rate `r` is due at `start + k / r`
//! seconds, rounded down to the microsecond: each tick's time is computed
//! from the start, never from the previous tick, so lateness never
//! accumulates. A machine ticks while the due time is before the deadline,
//! so in `D` seconds it makes exactly `ceil(r x D)` ticks.

/// Microseconds from the start to tick `k` at `rate` ticks per second.
///
/// # Panics
///
/// If `rate` is 0 (the configuration rejects it).
pub fn tick_offset_us(k: u64, rate: u32) -> u64 {
    assert!(rate > 0, "a machine ticks at least once a second");
    match k.checked_mul(1_000_000) {
        Some(product) => product / u64::from(rate),
        // u128 so that no run length can overflow the product (a 64-bit
        // division is several times cheaper, and does for any run shorter
        // than 18 million seconds of ticks at a million a second).
        None => (u128::from(k) * 1_000_000 / u128::from(rate)) as u64,
    }
}

/// How many ticks a machine at `rate` makes in `duration_us`.
pub fn n_ticks(rate: u32, duration_us: u64) -> u64 {
    // The number of k with floor(k * 1e6 / rate) < duration_us.
    (u128::from(duration_us) * u128::from(rate)).div_ceil(1_000_000) as u64
}

/// A duration in seconds as whole microseconds (rounded to the nearest).
pub fn duration_us(duration_s: f64) -> u64 {
    (duration_s * 1_000_000.0).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(tick_offset_us(0, 3), 0);
        assert_eq!(tick_offset_us(1, 3), 333_333);
        assert_eq!(tick_offset_us(3, 3), 1_000_000);
        assert_eq!(n_ticks(6, 60_000_000), 360);
        assert_eq!(n_ticks(3, 2_500_000), 8);
        assert_eq!(n_ticks(1, 1), 1);
        assert_eq!(duration_us(0.25), 250_000);
    }

    proptest! {
        #[test]
        fn the_fast_offset_is_the_exact_one(k in any::<u64>(), rate in 1u32..=1_000_000) {
            prop_assert_eq!(tick_offset_us(k, rate), (u128::from(k) * 1_000_000 / u128::from(rate)) as u64);
        }

        #[test]
        fn n_ticks_counts_ticks_before_the_deadline(rate in 1u32..50, duration_us in 0u64..5_000_000) {
            let n = n_ticks(rate, duration_us);
            if n > 0 {
                prop_assert!(tick_offset_us(n - 1, rate) < duration_us);
            }
            prop_assert!(tick_offset_us(n, rate) >= duration_us);
        }
    }
}
