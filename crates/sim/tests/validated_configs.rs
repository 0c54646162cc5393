//! Every configuration that passes validation can be run: it plans, every
//! duration it holds converts to the types the runtimes use, the instants it
//! leads to are in the calendar, and a simulation of it starts ticking.
//! Validation is what stands between a user's file and a panic.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clocklab_config::{
    Config, DelayDistribution, Experiment, OutputEstimate, PhysicalClockSettings, Runtime, SimSettings, limits,
    plan_runs,
};
use clocklab_model::{ClockKinds, schedule};
use clocklab_sim::{CountingSink, Simulation};
use proptest::prelude::*;

/// Whole numbers mostly small, sometimes at or past a bound. (Extremes are
/// rare in each value so that about half of the configurations, which hold
/// a dozen such values, pass validation.)
fn whole(small: std::ops::RangeInclusive<u32>, bound: u32) -> impl Strategy<Value = u32> {
    prop_oneof![200 => small, 1 => Just(bound), 1 => Just(bound.saturating_add(1)), 1 => Just(0), 1 => any::<u32>()]
}

/// Numbers mostly ordinary, sometimes extreme or not numbers at all.
fn real(ordinary: std::ops::Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![
        200 => ordinary,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1.0),
        1 => Just(0.0),
        1 => Just(1e300),
        1 => Just(1e14),
        1 => Just(limits::DURATION_S_MAX),
        1 => Just(limits::CONNECT_TIMEOUT_S_MAX),
        1 => Just(limits::DELAY_US_MAX),
    ]
}

fn experiment() -> impl Strategy<Value = Experiment> {
    (
        prop_oneof![200 => 2u32..=6, 1 => Just(limits::MACHINES_MAX), 1 => Just(limits::REAL_MACHINES_MAX), 1 => 0u32..=2],
        whole(1..=8, limits::MAX_CLOCK_RATE_MAX),
        whole(3..=12, limits::MAX_EVENT_NUM_MAX),
        prop_oneof![200 => 1u32..=2, 1 => Just(limits::RUNS_MAX), 1 => any::<u32>()],
        real(0.0..30.0),
        0u8..4,
        (real(0.0..50.0), real(0.0..200.0)),
    )
        .prop_map(|(machines, max_clock_rate, max_event_num, runs, duration, clocks, physical)| Experiment {
            name: String::new(),
            machines,
            max_clock_rate,
            max_event_num,
            runs,
            duration,
            seed: None,
            control: None,
            clocks: ClockKinds::from_bits(clocks).expect("two bits"),
            physical_clock: PhysicalClockSettings { offset_ms_max: physical.0, drift_ppm_max: physical.1 },
            faults: Vec::new(),
        })
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop::collection::vec(experiment(), 1..=2),
        real(0.0..20.0),
        prop_oneof![200 => 1usize..=1_000_000, 1 => Just(0usize), 1 => Just(limits::QUEUE_CAP_MAX), 1 => any::<usize>()],
        prop_oneof![
            100 => Just(SimSettings::DEFAULT_EPOCH_US),
            1 => any::<i64>(),
            1 => Just(clocklab_log::LAST_WRITABLE_US - 10_000_000),
            1 => Just(clocklab_log::FIRST_WRITABLE_US),
        ],
        (0u8..3, real(0.0..100.0), real(0.0..500.0)),
        any::<bool>(),
    )
        .prop_map(|(mut experiments, connect_timeout, queue_cap, epoch_us, (kind, a, b), sim_runtime)| {
            for (idx, experiment) in experiments.iter_mut().enumerate() {
                experiment.name = format!("experiment-{idx}");
            }
            let network = match kind {
                0 => DelayDistribution::Constant { delay_us: a },
                1 => DelayDistribution::Uniform { min_us: a, max_us: b },
                _ => DelayDistribution::Exponential { min_us: a, mean_us: b },
            };
            Config {
                runtime: if sim_runtime { Runtime::Sim } else { Runtime::Real },
                connect_timeout,
                queue_cap,
                sim: SimSettings { epoch_us, network },
                experiments,
                ..Config::default()
            }
        })
}

/// Checks one configuration; returns whether it passed validation.
fn runs_if_valid(config: &Config, seed: u64) -> Result<bool, TestCaseError> {
    if config.validate("the property test").is_err() {
        return Ok(false);
    }
    // The real runtime's durations.
    let connect_timeout = Duration::try_from_secs_f64(config.connect_timeout).expect("a connect timeout converts");
    prop_assert!(Instant::now().checked_add(connect_timeout * 3).is_some());
    let plans = plan_runs(config, seed, Path::new("results"));
    let runs: u64 = config.experiments.iter().map(|e| u64::from(e.runs)).sum();
    prop_assert_eq!(plans.len() as u64, runs);
    let _ = OutputEstimate::of_plans(&plans);
    for experiment in &config.experiments {
        let duration_us = schedule::duration_us(experiment.duration);
        prop_assert!(duration_us > 0 && duration_us <= 31_536_000_000_000);
        prop_assert!(Instant::now().checked_add(Duration::from_micros(duration_us)).is_some());
        let _ = Duration::try_from_secs_f64(experiment.duration + 1.0).expect("a run's length converts");
        // The instants a simulated run writes are in the calendar.
        let end_us = config.sim.epoch_us.checked_add_unsigned(duration_us).expect("the end fits");
        prop_assert!(end_us <= clocklab_log::LAST_WRITABLE_US);
        prop_assert_eq!(clocklab_log::rfc3339_us(end_us).len(), 27);
    }
    // A simulation of the first run starts ticking (a stop request, seen
    // after a few thousand events, ends it); a run of many machines is only
    // planned, its preamble alone being machines squared lines.
    let plan = &plans[0];
    if plan.experiment.machines <= 100 {
        let mut sink = CountingSink::default();
        let summary = Simulation::new(plan, &config.sim)
            .expect("a validated plan simulates")
            .run_until(&mut sink, &AtomicBool::new(true))
            .expect("a counting sink never fails");
        prop_assert_eq!(sink.lines, summary.lines);
    }
    Ok(true)
}

#[test]
fn every_configuration_that_passes_validation_runs() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 400, ..ProptestConfig::default() });
    let valid = std::cell::Cell::new(0u32);
    runner
        .run(&(config(), any::<u64>()), |(config, seed)| {
            valid.set(valid.get() + u32::from(runs_if_valid(&config, seed)?));
            Ok(())
        })
        .unwrap();
    // The property says nothing if validation refused nearly everything.
    assert!(valid.get() >= 120, "only {} of 400 configurations passed validation", valid.get());
}
