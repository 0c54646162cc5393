//! The clocks against happens-before: Lamport's, the vector clock, the HLC.

use std::cmp::Ordering;

use clocklab_config::RunManifest;
use clocklab_model::PhysicalClock;
use clocklab_model::seed::rng_from_seed;
use clocklab_model::vector::compare;
use rand::RngExt;

use clocklab_log::thousands;

use super::{Check, CheckOptions, Findings, Tally};
use crate::graph::{EventRef, RunGraph};

/// How far `l - pt` may pass the bound: each physical reading is rounded to
/// a microsecond, and the bound compares two of them.
const HLC_TOLERANCE_US: i64 = 2;

fn edge_kind(is_message: bool) -> &'static str {
    if is_message { "a message" } else { "program order" }
}

/// `a → b` implies `L(a) < L(b)` on every edge between ticks.
pub(super) fn check_lamport(graph: &RunGraph, findings: &mut Findings, tallies: &mut Vec<Tally>) {
    let mut edges = 0u64;
    graph.for_each_tick_edge(|a, b, is_message| {
        edges += 1;
        let (la, lb) = (graph.row(a).lamport, graph.row(b).lamport);
        if la >= lb {
            findings.add_unless_forgetful(Check::Lamport, graph.forgetful(b), &[a, b], || {
                format!(
                    "{} → {} ({}), but Lamport clock {la} is not below {lb}",
                    graph.event_id(a),
                    graph.event_id(b),
                    edge_kind(is_message)
                )
            });
        }
    });
    tallies.push(Tally {
        check: Check::Lamport,
        covered: format!("{} edges", thousands(edges)),
        violations: findings.count(Check::Lamport),
    });
}

/// How two events relate, as a symbol.
fn relation(order: Option<Ordering>) -> &'static str {
    match order {
        Some(Ordering::Less) => "→",
        Some(Ordering::Greater) => "←",
        Some(Ordering::Equal) => "=",
        None => "∥",
    }
}

/// The logged vector of `at` with its components in the graph's machine
/// order (the log's component `i` belongs to machine `i`).
fn logged_in_machine_order(graph: &RunGraph, at: EventRef, out: &mut Vec<u64>) -> bool {
    out.clear();
    let Some(vector) = graph.vector(at) else { return false };
    for machine in &graph.machines {
        match vector.get(machine.id as usize - 1) {
            Some(&value) => out.push(value),
            None => return false,
        }
    }
    true
}

/// The vector clock: equal to happens-before's on every line, increasing on
/// every edge, and ordered exactly as happens-before over a sample of pairs.
pub(super) fn check_vector(
    graph: &RunGraph,
    options: &CheckOptions,
    findings: &mut Findings,
    tallies: &mut Vec<Tally>,
    not_checked: &mut Vec<String>,
) {
    if graph.width == 0 {
        return;
    }
    for anomaly in &graph.anomalies {
        findings.add(Check::Vector, &[anomaly.at], || format!("{}: {}", graph.event_id(anomaly.at), anomaly.message));
    }
    let ids_match = graph.machines.iter().enumerate().all(|(idx, m)| m.id as usize == idx + 1)
        && graph.machines.len() == graph.width;
    if !ids_match {
        not_checked.push(format!(
            "vector clocks: the logs have {} components but the run folder holds the logs of machines {:?}: \
             a log is missing, so happens-before is incomplete",
            graph.width,
            graph.machines.iter().map(|m| m.id).collect::<Vec<_>>()
        ));
        tallies.push(Tally {
            check: Check::Vector,
            covered: "nothing".into(),
            violations: findings.count(Check::Vector),
        });
        return;
    }
    // Every line against the vector happens-before gives it.
    let mut logged = Vec::new();
    let mut lines = 0u64;
    for &at in &graph.order {
        let Some(replayed) = graph.replayed(at) else { break };
        if !logged_in_machine_order(graph, at, &mut logged) {
            continue;
        }
        lines += 1;
        if logged != replayed {
            findings.add_unless_forgetful(Check::Vector, graph.forgetful(at), &[at], || {
                format!(
                    "{} ({}) has vector clock {logged:?}, but happens-before gives {replayed:?}",
                    graph.event_id(at),
                    graph.row(at).kind.name()
                )
            });
        }
    }
    // Every edge.
    let mut edges = 0u64;
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    graph.for_each_tick_edge(|a, b, is_message| {
        edges += 1;
        if logged_in_machine_order(graph, a, &mut va)
            && logged_in_machine_order(graph, b, &mut vb)
            && compare(&va, &vb) != Some(Ordering::Less)
        {
            findings.add_unless_forgetful(Check::Vector, graph.forgetful(b), &[a, b], || {
                format!(
                    "{} → {} ({}), but vector clock {va:?} is not below {vb:?}",
                    graph.event_id(a),
                    graph.event_id(b),
                    edge_kind(is_message)
                )
            });
        }
    });
    // A seeded sample of ticks, every pair of it on two machines.
    let sample = sample_ticks(graph, options);
    let mut pairs = 0u64;
    for (idx, &a) in sample.iter().enumerate() {
        for &b in &sample[idx + 1..] {
            if a.machine == b.machine {
                continue;
            }
            let (Some(ra), Some(rb)) = (graph.replayed(a), graph.replayed(b)) else { continue };
            if !(logged_in_machine_order(graph, a, &mut va) && logged_in_machine_order(graph, b, &mut vb)) {
                continue;
            }
            pairs += 1;
            let (truth, shown) = (compare(ra, rb), compare(&va, &vb));
            if truth != shown {
                let forgetful = graph.forgetful(a) || graph.forgetful(b);
                findings.add_unless_forgetful(Check::Vector, forgetful, &[a, b], || {
                    format!(
                        "happens-before has {} {} {}, but the vector clocks {va:?} and {vb:?} say {}",
                        graph.event_id(a),
                        relation(truth),
                        graph.event_id(b),
                        relation(shown)
                    )
                });
            }
        }
    }
    tallies.push(Tally {
        check: Check::Vector,
        covered: format!(
            "{} lines against happens-before, {} edges, {} sampled pairs (a → b ⇔ V(a) < V(b))",
            thousands(lines),
            thousands(edges),
            thousands(pairs)
        ),
        violations: findings.count(Check::Vector),
    });
}

/// A uniform sample of the run's ticks (reservoir sampling, seeded), in
/// the graph's order.
fn sample_ticks(graph: &RunGraph, options: &CheckOptions) -> Vec<EventRef> {
    let mut rng = rng_from_seed(options.seed);
    let mut sample: Vec<(usize, EventRef)> = Vec::with_capacity(options.sample_ticks);
    let mut seen = 0u64;
    for (order, &at) in graph.order.iter().enumerate() {
        if !graph.row(at).tick {
            continue;
        }
        if sample.len() < options.sample_ticks {
            sample.push((order, at));
        } else {
            let slot = rng.random_range(0..=seen);
            if let Ok(slot) = usize::try_from(slot)
                && slot < options.sample_ticks
            {
                sample[slot] = (order, at);
            }
        }
        seen += 1;
    }
    sample.sort_unstable();
    sample.into_iter().map(|(_, at)| at).collect()
}

/// One machine's physical clock over the run: as it was at the start, and
/// the clock faults the plan made to it.
struct PlannedClock {
    base: PhysicalClock,
    faults: Vec<clocklab_faults::MachineFault>,
}

impl PlannedClock {
    /// The largest reading it showed up to true time `at_us` (see
    /// `clocklab_faults::largest_reading`).
    fn read_max(&self, origin_us: i64, at_us: i64) -> i64 {
        clocklab_faults::largest_reading(&self.base, origin_us, &self.faults, at_us)
    }
}

/// The physical clocks of the run's machines, in graph order, from the
/// manifest (offsets, drifts and the fault plan's clock faults), with the
/// run's start; `None` if the run has no manifest or it lacks a machine.
fn physical_clocks(graph: &RunGraph, manifest: &RunManifest) -> Option<(i64, Vec<PlannedClock>)> {
    let origin = time::OffsetDateTime::parse(&manifest.started_at, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1000) as i64)?;
    let duration_us = clocklab_model::schedule::duration_us(manifest.experiment.duration);
    let plan = clocklab_faults::FaultPlan::new(&manifest.experiment.faults, 0, duration_us);
    // On several hosts a machine's clock reads its host's clock, which is
    // the host's offset ahead of the timeline's.
    let hosts = manifest.host_clock_offsets();
    let clocks = graph
        .machines
        .iter()
        .map(|machine| {
            let outcome = manifest.machines.iter().find(|m| m.id == machine.id)?;
            Some(PlannedClock {
                base: PhysicalClock::new(
                    origin,
                    outcome.clock_offset_us + hosts.get(&machine.id).map_or(0, |&(offset, _)| offset),
                    outcome.clock_drift_ppm,
                ),
                faults: plan.machine_faults(machine.id),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((origin, clocks))
}

/// The HLC: increasing on every edge, and `0 <= l - pt <=` the largest lead
/// of any machine's physical clock over this one's at that instant (a
/// clock stepped back by a fault leads by the largest reading it showed).
pub(super) fn check_hlc(
    graph: &RunGraph,
    manifest: Option<&RunManifest>,
    findings: &mut Findings,
    tallies: &mut Vec<Tally>,
    not_checked: &mut Vec<String>,
) {
    let keeps_hlc = graph.machines.iter().any(|m| m.hlc.iter().any(Option::is_some));
    if !keeps_hlc {
        return;
    }
    let mut edges = 0u64;
    graph.for_each_tick_edge(|a, b, is_message| {
        edges += 1;
        match (graph.hlc(a), graph.hlc(b)) {
            (Some(ha), Some(hb)) if ha < hb => {}
            (ha, hb) => {
                let show =
                    |h: Option<clocklab_model::HlcStamp>| h.map_or("none".into(), |h| format!("{}:{}", h.l_us, h.c));
                findings.add_unless_forgetful(Check::Hlc, graph.forgetful(b), &[a, b], || {
                    format!(
                        "{} → {} ({}), but HLC {} is not below {}",
                        graph.event_id(a),
                        graph.event_id(b),
                        edge_kind(is_message),
                        show(ha),
                        show(hb)
                    )
                });
            }
        }
    });
    // The bound: with the manifest's clocks; without one, only if every line
    // shows a perfect clock (its physical reading is the true time).
    let perfect = graph
        .machines
        .iter()
        .all(|m| m.rows.iter().zip(&m.physical_us).all(|(row, pt)| pt.is_none_or(|pt| pt == row.time_us)));
    let clocks = match manifest {
        Some(manifest) => physical_clocks(graph, manifest),
        None if perfect => Some((
            0,
            graph
                .machines
                .iter()
                .map(|_| PlannedClock { base: PhysicalClock::perfect(), faults: Vec::new() })
                .collect(),
        )),
        None => None,
    };
    let mut bounded = 0u64;
    let mut largest_lead_us = 0i64;
    // On several hosts the clocks' offsets are measured, each within its
    // uncertainty: the bound is known within two of them.
    let host_slack_us = 2 * manifest.map_or(0, |m| m.hosts.iter().map(|h| h.uncertainty_us()).max().unwrap_or(0));
    match &clocks {
        None => not_checked.push(
            "HLC: l - pt within the clocks' skew cannot be checked: without manifest.json the machines' clock \
             offsets and drifts are unknown"
                .to_string(),
        ),
        Some((origin_us, clocks)) => {
            for &at in &graph.order {
                let row = graph.row(at);
                let (true, Some(hlc), Some(pt)) = (row.tick, graph.hlc(at), graph.physical_us(at)) else {
                    continue;
                };
                bounded += 1;
                let lead = hlc.l_us - pt;
                let fastest = clocks.iter().map(|clock| clock.read_max(*origin_us, row.time_us)).max().unwrap_or(pt);
                let bound = fastest - pt;
                largest_lead_us = largest_lead_us.max(lead);
                if lead < 0 || lead > bound + HLC_TOLERANCE_US + host_slack_us {
                    findings.add(Check::Hlc, &[at], || {
                        format!(
                            "{}: HLC l = {} is {lead} µs from its physical clock {pt}, outside 0..={bound} µs (the \
                             largest lead of any machine's clock at that instant)",
                            graph.event_id(at),
                            hlc.l_us
                        )
                    });
                }
            }
        }
    }
    let bound_text = if clocks.is_some() {
        format!(
            "; {} ticks with l - pt within the skew (largest {} µs)",
            thousands(bounded),
            thousands(largest_lead_us as u64)
        )
    } else {
        String::new()
    };
    tallies.push(Tally {
        check: Check::Hlc,
        covered: format!("{} edges{bound_text}", thousands(edges)),
        violations: findings.count(Check::Hlc),
    });
}
