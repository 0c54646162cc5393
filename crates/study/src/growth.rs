//! How often the lag-growth test ([`clocklab_analyze::growth`]) says a lag
//! grows: on stable machines (ρ ≤ 0.9), whose lag does not grow, that is a
//! false positive; on overloaded ones (ρ ≥ 1.1), whose lag grows without
//! bound, it is the test's power.

use clocklab_analyze::coverage::GrowthRow;
use clocklab_analyze::run::RunSummary;

/// Utilisation at or below which a machine is stable.
pub const STABLE_MAX: f64 = 0.9;

/// Utilisation at or above which a machine is overloaded.
pub const OVERLOADED_MIN: f64 = 1.1;

/// The row of runs of `duration_s` seconds of `experiments` (their names).
pub fn row(experiments: &[String], duration_s: f64, runs: &[RunSummary]) -> GrowthRow {
    let mut row = GrowthRow {
        experiments: experiments.join("+"),
        duration_s,
        stable: 0,
        stable_flagged: 0,
        overloaded: 0,
        overloaded_flagged: 0,
    };
    for machine in runs.iter().filter(|r| r.is_sound()).flat_map(|r| &r.machines) {
        let grows = u32::from(machine.lag.growth.grows);
        if machine.load.utilisation <= STABLE_MAX {
            row.stable += 1;
            row.stable_flagged += grows;
        } else if machine.load.utilisation >= OVERLOADED_MIN {
            row.overloaded += 1;
            row.overloaded_flagged += grows;
        }
    }
    row
}
