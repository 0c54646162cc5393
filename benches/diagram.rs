//! How fast a space-time diagram opens: the first drawing of a
//! 1,000,000-event run's page in headless Chromium, beside a classic 60 s
//! run's, measured the same way in the same run.
//!
//! `cargo bench --bench diagram` (needs Chromium, as the browser tests do).
//! For each page: the time to write it, its size, then in five fresh tabs
//! the page's own `data-first-draw-ms` (from navigation start to the end of
//! the first drawing, `performance.now()`), the wall time from the
//! navigation command to the page saying it is ready (polled every 10 ms
//! over the DevTools protocol, whose round trips it includes), and the time to select an event (its
//! causal cone) and show its detail.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clocklab_causal::RunSource;
use clocklab_config::{Config, SimSettings, plan_runs};
use clocklab_model::ClockKinds;

// The browser helper of the integration tests, shared rather than copied.
#[path = "../tests/it/browser.rs"]
#[allow(dead_code)] // The bench uses only part of what the tests use.
mod browser;

const TABS: usize = 5;

/// Simulates one run of 3 machines at rates up to 6 for `duration_s`, with every clock.
fn simulate(root: &Path, duration_s: f64) -> PathBuf {
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.runs = 1;
    experiment.duration = duration_s;
    experiment.clocks = ClockKinds::ALL;
    let plan = plan_runs(&config, 1, root).remove(0);
    clocklab_sim::run_plan(&plan, &SimSettings::default()).expect("the simulation runs");
    plan.dir
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn measure(chromium: &browser::Chromium, name: &str, run_dir: &Path, out: &Path) {
    let source = RunSource::open(run_dir).expect("the run folder");
    let started = Instant::now();
    let summary = clocklab_causal::diagram::write_run_diagram(&source, out).expect("the page is written");
    let write_s = started.elapsed().as_secs_f64();
    let url = format!("file://{}", out.display());
    let (mut first_draw, mut wall, mut select) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..TABS {
        let page = chromium.open("about:blank");
        let started = Instant::now();
        page.tab.navigate_to(&url).expect("navigation starts");
        // Poll every 10 ms; while the page is being replaced an evaluation may fail.
        let ready = || {
            page.tab
                .evaluate("document.body?.dataset.state === 'ready'", false)
                .is_ok_and(|result| result.value == Some(serde_json::Value::Bool(true)))
        };
        while !ready() {
            assert!(started.elapsed() < Duration::from_secs(60), "the page never got ready");
            std::thread::sleep(Duration::from_millis(10));
        }
        wall.push(started.elapsed().as_secs_f64() * 1e3);
        first_draw.push(page.body_data("firstDrawMs").expect("the page reports its first drawing").parse().unwrap());
        let middle = format!("m2e{}", summary.n_events / 6);
        let ms = page.eval(&format!(
            "(async () => {{ const t = performance.now(); clocklabDiagram.select('{middle}'); \
             await clocklabDiagram.detail('{middle}'); return performance.now() - t; }})()"
        ));
        select.push(ms.as_f64().unwrap());
        assert!(page.problems().is_empty(), "{:?}", page.problems());
        page.tab.close(true).ok();
    }
    println!(
        "{name}: {} events, {} messages; page {:.1} MB written in {write_s:.2} s; first drawing {:.0} ms (median of \
         {TABS}; page's clock), {:.0} ms wall from navigation; select + detail {:.0} ms",
        summary.n_events,
        summary.n_messages,
        summary.bytes as f64 / 1e6,
        median(&mut first_draw),
        median(&mut wall),
        median(&mut select),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing to run.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let Some(chromium) = browser::launch() else { return };
    let root = tempfile::tempdir().expect("a temporary folder");
    let classic = simulate(&root.path().join("classic"), 60.0);
    measure(&chromium, "a 60 s run", &classic, &root.path().join("classic.html"));
    // With seed 1 the baseline's three machines draw rates that add up to 16
    // ticks per second: 1,000,000 events take 62,500 s (17 hours) of virtual time.
    let started = Instant::now();
    let long = simulate(&root.path().join("long"), 62_500.0);
    println!("simulated the long run in {:.1} s", started.elapsed().as_secs_f64());
    measure(&chromium, "a 62,500 s run", &long, &root.path().join("long.html"));
}
