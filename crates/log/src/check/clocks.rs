//! The rules of the vector clock and the hybrid logical clock, line by line.

use clocklab_model::hlc::HybridClock;
use clocklab_model::{HlcStamp, LogicalClock};

use super::Expectations;
use super::line::MachineState;
use crate::record::{Event, Record};

/// The vector clock's rules: zero at the start; a tick adds 1 to the own
/// component after a receive took the element-wise maximum with the sent
/// vector; other lines leave it as it was.
pub(super) fn check_vector(
    state: &mut MachineState,
    record: &Record,
    sent: Option<&[u64]>,
    expect: &Expectations,
    v: &mut impl FnMut(String),
) {
    let n = expect.n_machines as usize;
    let Some(vector) = &record.vector_clock else {
        if expect.clocks.vector {
            v("no Vector Clock, but the run keeps vector clocks".into());
        }
        return;
    };
    if !expect.clocks.vector {
        v("a Vector Clock, but the run keeps no vector clocks".into());
        return;
    }
    if vector.len() != n {
        v(format!("a Vector Clock of {} components in a run of {n} machines", vector.len()));
        return;
    }
    let own = record.machine as usize - 1;
    let before = state.vector.get_or_insert_with(|| vec![0; n]).clone();
    let mut want = before.clone();
    if record.event.is_tick() {
        if let Some(sent) = sent.filter(|sent| sent.len() == n) {
            for (mine, theirs) in want.iter_mut().zip(sent) {
                *mine = (*mine).max(*theirs);
            }
        } else if matches!(record.event, Event::Processed { .. }) {
            // Without the send's vector, only the own component is known.
            for (idx, (mine, seen)) in want.iter_mut().zip(vector).enumerate() {
                if idx != own && seen >= mine {
                    *mine = *seen;
                }
            }
        }
        if own < n {
            want[own] = want[own].saturating_add(1);
        }
    }
    if *vector != want {
        v(format!("{} has Vector Clock {vector:?}, the vector rule gives {want:?}", record.event.kind()));
    }
    state.vector = Some(vector.clone());
}

/// The HLC's rules, exactly as the paper gives them, with `pt` from the
/// line's `Physical Clock` and the received stamp from the paired send.
pub(super) fn check_hlc(
    state: &mut MachineState,
    record: &Record,
    sent: Option<Option<HlcStamp>>,
    expect: &Expectations,
    v: &mut impl FnMut(String),
) {
    let Some(hlc) = record.hlc else {
        if expect.clocks.hlc {
            v("no HLC, but the run keeps hybrid logical clocks".into());
        }
        return;
    };
    if !expect.clocks.hlc {
        v("an HLC, but the run keeps no hybrid logical clocks".into());
        return;
    }
    let Some(pt) = record.physical_clock_us else {
        v("an HLC without the Physical Clock it used".into());
        return;
    };
    let before = state.hlc;
    if record.event.is_tick() {
        let mut clock = HybridClock::at(before);
        match (&record.event, sent) {
            (Event::Processed { .. }, Some(Some(stamp))) => clock.receive_event(&stamp, pt),
            (Event::Processed { .. }, _) => {
                // The send is not in the logs: only what holds for any receive.
                if hlc <= before || hlc.l_us < pt {
                    v(format!(
                        "processed has HLC {}:{}, not after {}:{} and physical time {pt}",
                        hlc.l_us, hlc.c, before.l_us, before.c
                    ));
                }
                state.hlc = hlc;
                return;
            }
            _ => clock.local_event(pt),
        }
        let want = clock.value();
        if hlc != want {
            v(format!(
                "{} has HLC {}:{}, the HLC rule gives {}:{} (physical clock {pt})",
                record.event.kind(),
                hlc.l_us,
                hlc.c,
                want.l_us,
                want.c
            ));
        }
    } else if hlc != before {
        v(format!(
            "{} changed the HLC from {}:{} to {}:{}",
            record.event.kind(),
            before.l_us,
            before.c,
            hlc.l_us,
            hlc.c
        ));
    }
    state.hlc = hlc;
}
