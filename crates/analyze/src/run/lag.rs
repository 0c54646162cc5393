//! Lag behind the leader, as a step function of time over the merged logs.
//!
//! At every instant the leader is the machine with the largest logical
//! clock among those that count: a machine counts from its first tick until
//! its log ends, and not after a line of its log broke a rule. A machine's
//! lag is the leader's clock minus its own, in ticks (in seconds, the ticks
//! divided by the run's fastest rate: see [`super::machine::LagStats`]).
//! Means are weighted by how long each state lasted, over the span in which
//! the machine counts; so a machine that died stops accumulating lag, and a
//! machine whose log is damaged never makes the others look behind. The
//! same integrals, cut in blocks of time, feed the test of whether the lag
//! grows ([`crate::growth`]).

use super::machine::MachineAcc;

/// The leader's clock: the largest among the machines that count.
fn leader(accs: &[MachineAcc], at_us: i64) -> Option<u64> {
    accs.iter().filter(|acc| counts(acc, at_us)).map(|acc| acc.clock).max()
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
pub(crate) fn lag_behind(leader: Option<u64>, acc: &MachineAcc) -> u64 {
    leader.map_or(0, |clock| clock.saturating_sub(acc.clock))
}

/// Records every machine's current lag (largest, and the series) at `at_us`.
pub(crate) fn note(accs: &mut [MachineAcc], at_us: i64) {
    let Some(leader_clock) = leader(accs, at_us) else { return };
    for acc in accs.iter_mut().filter(|acc| counts(acc, at_us)) {
        note_lag(acc, at_us, leader_clock.saturating_sub(acc.clock));
    }
}

/// The state that held from `since_us` for `duration_us` ends: [`note`]s
/// it, and adds it to every machine's lag integrals, in one pass. Returns
/// its leader, which is still the leader at the end of the state, until
/// the next line is applied: a machine counts from its first tick, and
/// every tick so far came at `since_us` or before; its clock and its
/// `finished`, `down` and `unsound` flags change only as a line is applied,
/// after that line's lag.
pub(crate) fn close_state(accs: &mut [MachineAcc], since_us: i64, duration_us: i64) -> Option<u64> {
    let leader = leader(accs, since_us);
    let leader_clock = leader?;
    let duration = duration_us as f64;
    for acc in accs.iter_mut().filter(|acc| counts(acc, since_us)) {
        let lag = leader_clock.saturating_sub(acc.clock);
        note_lag(acc, since_us, lag);
        acc.lag_weighted_us += lag as f64 * duration;
        acc.alive_us += duration;
        acc.lag_blocks.add(since_us, duration_us, lag as f64);
    }
    leader
}

/// Notes a machine's lag of `lag` ticks at `at_us`.
fn note_lag(acc: &mut MachineAcc, at_us: i64, lag: u64) {
    acc.lag_max = acc.lag_max.max(lag);
    acc.series.lag.push(at_us, lag as f64);
}
