//! Lag behind the leader, as a step function of time over the merged logs.
//!
//! At every instant the leader is the machine with the largest logical
//! clock among those that count: a machine counts from its first tick until
//! its log ends, and not after a line of its log broke a rule. A machine's
//! lag is the leader's clock minus its own, in ticks, and in seconds of the
//! leader's clock (the ticks divided by the leader's rate). Means are
//! weighted by how long each state lasted, over the span in which the
//! machine counts; so a machine that died stops accumulating lag, and a
//! machine whose log is damaged never makes the others look behind.

use super::machine::MachineAcc;

/// The machines that count, and the leader among them: (clock, rate).
fn leader(accs: &[MachineAcc], at_us: i64) -> Option<(u64, u32)> {
    accs.iter()
        .filter(|acc| counts(acc, at_us))
        .map(|acc| (acc.clock, acc.rate.unwrap_or(1).max(1)))
        // The largest clock; between equal clocks the lower id, for determinism.
        .fold(None, |best: Option<(u64, u32)>, (clock, rate)| match best {
            Some((best_clock, _)) if best_clock >= clock => best,
            _ => Some((clock, rate)),
        })
}

/// Whether a machine's clock counts at `at_us`.
fn counts(acc: &MachineAcc, at_us: i64) -> bool {
    !acc.unsound && !acc.finished && !acc.down && acc.first_tick_us.is_some_and(|first| first <= at_us)
}

/// A machine's lag now, in ticks.
pub(crate) fn lag_of(accs: &[MachineAcc], idx: usize, at_us: i64) -> u64 {
    lag_behind(leader(accs, at_us), &accs[idx])
}

/// A machine's lag behind `leader` (the one [`close_state`] returned), in ticks.
pub(crate) fn lag_behind(leader: Option<(u64, u32)>, acc: &MachineAcc) -> u64 {
    leader.map_or(0, |(clock, _)| clock.saturating_sub(acc.clock))
}

/// Records every machine's current lag (largest, and the series) at `at_us`.
pub(crate) fn note(accs: &mut [MachineAcc], at_us: i64) {
    let Some((leader_clock, leader_rate)) = leader(accs, at_us) else { return };
    for acc in accs.iter_mut().filter(|acc| counts(acc, at_us)) {
        note_lag(acc, at_us, leader_clock.saturating_sub(acc.clock), leader_rate);
    }
}

/// The state that held from `since_us` for `duration_us` ends: [`note`]s
/// it, and adds it to every machine's lag integrals, in one pass. Returns
/// its leader, which is still the leader at the end of the state, until
/// the next line is applied: a machine counts from its first tick, and
/// every tick so far came at `since_us` or before; its clock and its
/// `finished`, `down` and `unsound` flags change only as a line is applied,
/// after that line's lag.
pub(crate) fn close_state(accs: &mut [MachineAcc], since_us: i64, duration_us: i64) -> Option<(u64, u32)> {
    let leader = leader(accs, since_us);
    let (leader_clock, leader_rate) = leader?;
    let duration = duration_us as f64;
    for acc in accs.iter_mut().filter(|acc| counts(acc, since_us)) {
        let lag = leader_clock.saturating_sub(acc.clock);
        let lag_s = note_lag(acc, since_us, lag, leader_rate);
        acc.lag_weighted_us += lag as f64 * duration;
        acc.lag_s_weighted_us += lag_s * duration;
        acc.alive_us += duration;
    }
    leader
}

/// Notes a machine's lag of `lag` ticks at `at_us`, the leader's rate
/// being `leader_rate`; returns the lag in seconds.
fn note_lag(acc: &mut MachineAcc, at_us: i64, lag: u64, leader_rate: u32) -> f64 {
    let lag_s = lag as f64 / f64::from(leader_rate);
    acc.lag_max = acc.lag_max.max(lag);
    acc.lag_max_s = acc.lag_max_s.max(lag_s);
    acc.series.lag.push(at_us, lag as f64);
    lag_s
}
