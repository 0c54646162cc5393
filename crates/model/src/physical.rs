//! A machine's own physical clock: true time plus an offset plus a drift.
//!
//! The runtime passes true time in (virtual time in the simulator, the
//! system clock in the real runtime); the machine reads its physical clock
//! from it. The clock is piecewise linear, so that a fault can step it or
//! change its drift at an instant and later readings follow from there.

/// One machine's physical clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhysicalClock {
    /// The true time of the last change, microseconds since the Unix epoch.
    base_true_us: i64,
    /// The reading at that instant.
    base_reading_us: i64,
    /// How fast the clock runs against true time, in parts per million.
    drift_ppm: f64,
}

impl Default for PhysicalClock {
    /// A perfect clock: it reads true time.
    fn default() -> PhysicalClock {
        PhysicalClock::perfect()
    }
}

impl PhysicalClock {
    /// A perfect clock: it reads true time.
    pub const fn perfect() -> PhysicalClock {
        PhysicalClock { base_true_us: 0, base_reading_us: 0, drift_ppm: 0.0 }
    }

    /// A clock that reads `origin_us + offset_us` at true time `origin_us`
    /// and gains `drift_ppm` microseconds per second from then on (loses, if
    /// negative).
    pub fn new(origin_us: i64, offset_us: i64, drift_ppm: f64) -> PhysicalClock {
        PhysicalClock { base_true_us: origin_us, base_reading_us: origin_us.saturating_add(offset_us), drift_ppm }
    }

    /// Whether it always reads true time.
    pub fn is_perfect(&self) -> bool {
        self.base_true_us == self.base_reading_us && self.drift_ppm == 0.0
    }

    /// The drift, in parts per million.
    pub fn drift_ppm(&self) -> f64 {
        self.drift_ppm
    }

    /// The reading at true time `true_us`.
    pub fn read(&self, true_us: i64) -> i64 {
        let elapsed = true_us.saturating_sub(self.base_true_us);
        let drift = if self.drift_ppm == 0.0 { 0 } else { (elapsed as f64 * self.drift_ppm / 1e6).round() as i64 };
        self.base_reading_us.saturating_add(elapsed).saturating_add(drift)
    }

    /// Steps the clock by `by_us` at true time `at_us` (back, if negative).
    pub fn step(&mut self, at_us: i64, by_us: i64) {
        self.rebase(at_us);
        self.base_reading_us = self.base_reading_us.saturating_add(by_us);
    }

    /// From true time `at_us` on, the clock drifts by `drift_ppm`.
    pub fn set_drift(&mut self, at_us: i64, drift_ppm: f64) {
        self.rebase(at_us);
        self.drift_ppm = drift_ppm;
    }

    fn rebase(&mut self, at_us: i64) {
        self.base_reading_us = self.read(at_us);
        self.base_true_us = at_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_drift() {
        let clock = PhysicalClock::new(1_000_000, 250, 100.0);
        assert_eq!(clock.read(1_000_000), 1_000_250);
        // 100 ppm over 10 s is 1 ms.
        assert_eq!(clock.read(11_000_000), 11_001_250);
        assert!(PhysicalClock::perfect().is_perfect());
        assert_eq!(PhysicalClock::perfect().read(42), 42);
        assert!(!clock.is_perfect());
    }

    #[test]
    fn steps_and_drift_changes_take_effect_from_their_instant() {
        let mut clock = PhysicalClock::new(0, 0, 0.0);
        clock.step(5_000_000, -2_000_000);
        assert_eq!(clock.read(5_000_000), 3_000_000);
        assert_eq!(clock.read(6_000_000), 4_000_000);
        clock.set_drift(6_000_000, 1_000.0);
        assert_eq!(clock.read(7_000_000), 5_001_000);
    }
}
