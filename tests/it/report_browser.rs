//! The report in a real browser: headless Chromium at a 1200 px window
//! loads `report.html` and measures what a reader sees. No text of any
//! figure is under 10 px, no table overflows its column, the embedded font
//! is the one the figures use, the console stays clean, and the top of the
//! page states the parameters, seed, runtime and status of every run.
//!
//! Without Chromium the test fails and says how to install it, unless
//! `CLOCKLAB_SKIP_BROWSER_TESTS=1` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions};

/// The Chromium binary on `PATH`.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium with a 1200 px window, or `None` when browser tests
/// are skipped on purpose.
fn browser(profile: &Path) -> Option<Browser> {
    if std::env::var("CLOCKLAB_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("CLOCKLAB_SKIP_BROWSER_TESTS=1: the report's browser test is skipped");
        return None;
    }
    let path = chromium().unwrap_or_else(|| {
        panic!(
            "this test needs headless Chromium: install it with `apt-get update && apt-get install -y chromium`, \
             or set CLOCKLAB_SKIP_BROWSER_TESTS=1 to skip it"
        )
    });
    let args: Vec<&std::ffi::OsStr> = [
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(std::ffi::OsStr::new)
    .collect();
    let options = LaunchOptions::default_builder()
        .path(Some(path))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1200, 900)))
        .user_data_dir(Some(profile.to_path_buf()))
        .args(args)
        .build()
        .expect("the launch options are complete");
    Some(Browser::new(options).expect("headless Chromium starts"))
}

/// What the page shows, measured in the browser.
const MEASURE: &str = r#"(() => {
  const out = { texts: 0, minFontPx: 1e9, smallest: '', minBoxPx: 1e9, svgs: 0, overflow: [],
                top: '', topFirst: false, fontLoaded: false, width: document.documentElement.clientWidth };
  for (const svg of document.querySelectorAll('figure svg')) {
    out.svgs++;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    for (const t of svg.querySelectorAll('text')) {
      if (!t.textContent.trim()) continue;
      out.texts++;
      const px = parseFloat(getComputedStyle(t).fontSize) * scale;
      if (px < out.minFontPx) { out.minFontPx = px; out.smallest = t.textContent; }
      out.minBoxPx = Math.min(out.minBoxPx, t.getBoundingClientRect().height);
    }
  }
  for (const wrap of document.querySelectorAll('.table-wrap')) {
    const table = wrap.querySelector('table');
    if (table.scrollWidth > wrap.clientWidth + 1) out.overflow.push(table.id || table.className);
  }
  const top = document.getElementById('what-was-run');
  out.top = top.innerText;
  const figure = document.querySelector('figure');
  out.topFirst = !figure || top.getBoundingClientRect().bottom <= figure.getBoundingClientRect().top;
  out.fontLoaded = [...document.fonts].some(f => f.family.replace(/"/g, '') === 'DejaVu Sans' && f.status === 'loaded');
  return JSON.stringify(out);
})()"#;

#[test]
fn report_reads_well_at_1200_px() {
    let root = tempfile::tempdir().unwrap();
    crate::analyze::fixture(root.path());
    // One failed run, to be marked at the top.
    let manifest_path = clocklab_config::layout::manifest_path(&root.path().join("fewer-internal-events/run_2"));
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["status"] = serde_json::json!({"status": "failed", "cause": "machine 2 was killed"});
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let out = root.path().join("analysis");
    let status = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .arg("analyze")
        .arg(root.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    let profile = tempfile::tempdir().unwrap();
    let Some(browser) = browser(profile.path()) else { return };
    let tab = browser.new_tab().unwrap();
    let console: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&console);
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let line = match event {
            Event::LogEntryAdded(entry) => format!("{:?}: {}", entry.params.entry.level, entry.params.entry.text),
            Event::RuntimeExceptionThrown(thrown) => format!("Error: {}", thrown.params.exception_details.text),
            Event::RuntimeConsoleAPICalled(call) => format!("{:?}: console", call.params.Type),
            _ => return,
        };
        seen.lock().unwrap().push(line);
    }))
    .unwrap();
    tab.enable_log().unwrap();
    tab.enable_runtime().unwrap();
    let url = format!("file://{}", out.join("report.html").display());
    tab.navigate_to(&url).unwrap().wait_until_navigated().unwrap();
    let measured = tab.evaluate(MEASURE, false).unwrap().value.expect("the script returns a value");
    let page: serde_json::Value = serde_json::from_str(measured.as_str().unwrap()).unwrap();

    assert!(page["svgs"].as_u64().unwrap() >= 10, "{page}");
    assert!(page["texts"].as_u64().unwrap() > 200, "{page}");
    let smallest = page["minFontPx"].as_f64().unwrap();
    assert!(smallest >= 10.0, "a figure's text {:?} is {smallest:.1} px high: {page}", page["smallest"]);
    assert!(page["minBoxPx"].as_f64().unwrap() >= 10.0, "{page}");
    assert_eq!(page["overflow"], serde_json::json!([]), "tables wider than their column: {page}");
    assert_eq!(page["fontLoaded"], true, "the embedded DejaVu Sans is used: {page}");
    assert_eq!(page["topFirst"], true, "what was run comes before any figure");

    // The top states the parameters, seed, runtime and the status of every run.
    let top = page["top"].as_str().unwrap();
    for needed in ["max_clock_rate", "max_event_num", "machines", "duration (s)", "runs", "simulated", "Suite seed"] {
        assert!(top.contains(needed), "{needed:?} missing at the top: {top}");
    }
    for seed in [10, 20, 1010, 1020] {
        assert!(top.contains(&seed.to_string()), "seed {seed} missing at the top: {top}");
    }
    for (experiment, run, rates, status) in [
        ("baseline", 1, "1, 4, 6", "ok"),
        ("baseline", 2, "2, 2, 5", "ok"),
        ("fewer-internal-events", 1, "1, 3, 6", "ok"),
        ("fewer-internal-events", 2, "4, 1, 2", "failed"),
    ] {
        let row = format!("{experiment}\trun_{run} (rates {rates})\t{status}");
        assert!(top.contains(&row), "{row:?} missing at the top: {top}");
    }
    assert!(top.contains("1 of 4 runs is left out of the aggregates and marked wherever it appears"), "{top}");

    let errors: Vec<String> =
        console.lock().unwrap().iter().filter(|line| line.to_lowercase().contains("error")).cloned().collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// The classic suite's report, in the browser: every interval the study
/// measured outside 93–97% carries its coverage, the method section holds
/// the study's table, and no comparison is a row of words without numbers.
#[test]
fn the_classic_suites_intervals_carry_what_the_simulator_measured() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    let args = ["run", "--runtime", "sim", "--seed", "42", "--no-analyze", "--out", out.to_str().unwrap()];
    let output = Command::new(env!("CARGO_BIN_EXE_clocklab")).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let output = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["analyze", results.to_str().unwrap(), "--no-diagrams"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let profile = tempfile::tempdir().unwrap();
    let Some(browser) = browser(profile.path()) else { return };
    let tab = browser.new_tab().unwrap();
    let url = format!("file://{}", results.join("analysis/report.html").display());
    tab.navigate_to(&url).unwrap().wait_until_navigated().unwrap();
    let script = r#"(() => JSON.stringify({
      labels: [...document.querySelectorAll('#aggregates span.coverage')].map((s) => s.textContent),
      coverageRows: document.querySelectorAll('#coverage tr').length - 1,
      missedRows: document.querySelectorAll('#coverage tr.missed').length,
      between: document.querySelector('section#experiments').innerText,
      ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
      method: document.getElementById('method').innerText,
      text: document.body.innerText,
    }))()"#;
    let value = tab.evaluate(script, false).unwrap().value.expect("the script returns a value");
    let page: serde_json::Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
    // The study's rows for the four experiments and their eleven intervals,
    // and a label under each interval whose row misses 93–97%.
    assert_eq!(page["coverageRows"], 44, "{page}");
    let missed = page["missedRows"].as_u64().unwrap();
    let labels: Vec<&str> = page["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(missed > 0 && labels.len() as u64 == missed, "{missed} rows missed, {labels:?}");
    assert!(labels.iter().all(|l| l.starts_with("covers ") && l.ends_with("% in the simulator")), "{labels:?}");
    let method = page["method"].as_str().unwrap();
    assert!(method.contains("Student's t interval") && method.contains("permutation test"), "{method}");
    let between = page["between"].as_str().unwrap();
    assert!(between.contains("small-rate-variation against baseline (max_clock_rate 3 instead of 6)"), "{between}");
    // Every id once: the section between experiments and the table of
    // settings at the top once shared one.
    let ids: Vec<&str> = page["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let text = page["text"].as_str().unwrap();
    for slip in ["too few runs for an interval", "bootstrap", "intervals overlap", " µs", "1 slower ones"] {
        assert!(!text.contains(slip), "{slip:?} in the page");
    }
}
