//! The clock laws on random simulated runs, against happens-before as the
//! logs alone show it (program order plus the send/receive pairing, walked
//! as a graph):
//!
//! - the vector clock characterises happens-before exactly: `a → b` if and
//!   only if `V(a) < V(b)`, and the vectors replayed from the pairing are the
//!   ones the machines logged;
//! - the HLC never falls behind the machine's physical clock, rises strictly,
//!   and stays within the largest skew between the machines' clocks over the
//!   run of it.

use std::collections::BTreeMap;
use std::io;

use clocklab_causal::VectorReplay;
use clocklab_config::{Config, DelayDistribution, PhysicalClockSettings, SimSettings, plan_runs};
use clocklab_log::events::lines_of;
use clocklab_log::{Event, EventId, Pairing, Record, RunEvents};
use clocklab_model::ClockKinds;
use clocklab_model::vector::compare;
use clocklab_sim::{Simulation, Sink};
use proptest::prelude::*;

#[derive(Default)]
struct Lines(Vec<Record>);

impl Sink for Lines {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
}

#[derive(Debug)]
struct Setting {
    machines: u32,
    max_clock_rate: u32,
    max_event_num: u32,
    duration_s: f64,
    network: DelayDistribution,
    physical: PhysicalClockSettings,
}

/// A simulated run: each machine's records, each machine's physical clock
/// (offset in microseconds, drift in ppm), and when the run ended
/// (microseconds after the start).
struct Simulated {
    logs: BTreeMap<u32, Vec<Record>>,
    clocks: Vec<(i64, f64)>,
    end_us: u64,
}

/// A simulated run with every clock.
fn simulate(seed: u64, setting: &Setting) -> Simulated {
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.machines = setting.machines;
    experiment.max_clock_rate = setting.max_clock_rate;
    experiment.max_event_num = setting.max_event_num;
    experiment.duration = setting.duration_s;
    experiment.clocks = ClockKinds::ALL;
    experiment.physical_clock = setting.physical;
    let plan = plan_runs(&config, seed, std::path::Path::new("unused")).remove(0);
    let clocks = plan.machines.iter().map(|m| (m.clock_offset_us, m.clock_drift_ppm)).collect();
    let settings = SimSettings { network: setting.network, ..SimSettings::default() };
    let mut lines = Lines::default();
    let summary = Simulation::new(&plan, &settings).unwrap().run(&mut lines).unwrap();
    let mut logs: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
    for record in lines.0 {
        logs.entry(record.machine).or_default().push(record);
    }
    Simulated { logs, clocks, end_us: summary.end_us }
}

fn setting() -> impl Strategy<Value = Setting> {
    (
        2u32..6,
        1u32..8,
        3u32..8,
        1.0f64..4.0,
        prop_oneof![
            Just(DelayDistribution::Constant { delay_us: 0.0 }),
            Just(DelayDistribution::default()),
            Just(DelayDistribution::Uniform { min_us: 0.0, max_us: 900_000.0 }),
        ],
        (0.0f64..500.0, 0.0f64..2_000.0),
    )
        .prop_map(
            |(machines, max_clock_rate, max_event_num, duration_s, network, (offset_ms_max, drift_ppm_max))| Setting {
                machines,
                max_clock_rate,
                max_event_num,
                duration_s,
                network,
                physical: PhysicalClockSettings { offset_ms_max, drift_ppm_max },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn vector_clocks_characterise_happens_before_exactly(seed in any::<u64>(), setting in setting()) {
        let logs = simulate(seed, &setting).logs;
        let machines: Vec<u32> = logs.keys().copied().collect();
        let mut replay = VectorReplay::new(machines.iter().copied());
        // The ticks, their logged vectors, and the graph edges the logs show.
        let mut ticks: Vec<(EventId, Vec<u64>)> = Vec::new();
        let mut index: BTreeMap<EventId, usize> = BTreeMap::new();
        let mut edges: Vec<Vec<usize>> = Vec::new();
        let mut last_tick: BTreeMap<u32, usize> = BTreeMap::new();
        for event in RunEvents::new(logs.iter().map(|(&id, records)| (id, lines_of(records)))) {
            let replayed = replay.step(&event).to_vec();
            let logged = event.record.vector_clock.clone().expect("every line has a vector");
            prop_assert_eq!(&replayed, &logged, "replayed and logged vectors differ at {}", event.id);
            if !event.record.event.is_tick() {
                continue;
            }
            let node = ticks.len();
            ticks.push((event.id, logged));
            index.insert(event.id, node);
            edges.push(Vec::new());
            if let Some(&previous) = last_tick.get(&event.id.machine) {
                edges[previous].push(node);
            }
            last_tick.insert(event.id.machine, node);
            if let (Event::Processed { .. }, Pairing::Paired(sent)) = (&event.record.event, &event.pairing) {
                edges[index[&sent.id.send]].push(node);
            }
        }
        // Reachability from every tick, by a walk of the graph.
        for (from, (a_id, a)) in ticks.iter().enumerate() {
            let mut reached = vec![false; ticks.len()];
            let mut stack = edges[from].clone();
            while let Some(node) = stack.pop() {
                if !std::mem::replace(&mut reached[node], true) {
                    stack.extend(&edges[node]);
                }
            }
            for (to, (b_id, b)) in ticks.iter().enumerate() {
                if to == from {
                    continue;
                }
                let before = compare(a, b) == Some(std::cmp::Ordering::Less);
                prop_assert_eq!(reached[to], before, "{} -> {}: V = {:?}, {:?}", a_id, b_id, a, b);
            }
        }
    }

    #[test]
    fn hlc_stays_ahead_of_physical_time_and_within_the_skew(seed in any::<u64>(), setting in setting()) {
        let Simulated { logs, clocks, end_us } = simulate(seed, &setting);
        // The largest difference between two machines' clocks over the run:
        // offsets at the start, plus what their drifts add by the end.
        let duration_us = end_us as f64;
        let readings = |at: f64| clocks.iter().map(move |&(offset, drift)| offset as f64 + drift * at / 1e6);
        let spread = |at: f64| {
            let values: Vec<f64> = readings(at).collect();
            values.iter().cloned().fold(f64::MIN, f64::max) - values.iter().cloned().fold(f64::MAX, f64::min)
        };
        let bound = spread(0.0).max(spread(duration_us)) + 1.0;
        for records in logs.values() {
            let mut last = None;
            for record in records.iter().filter(|r| r.event.is_tick()) {
                let hlc = record.hlc.expect("every line has an HLC");
                let pt = record.physical_clock_us.expect("and the physical clock it used");
                prop_assert!(hlc.l_us >= pt, "l {} behind pt {}", hlc.l_us, pt);
                prop_assert!(((hlc.l_us - pt) as f64) <= bound, "l - pt = {} beyond the skew bound {}", hlc.l_us - pt, bound);
                prop_assert!(last.is_none_or(|last| hlc > last), "{:?} after {:?}", hlc, last);
                last = Some(hlc);
            }
        }
    }
}
