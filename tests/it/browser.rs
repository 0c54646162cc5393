//! Headless Chromium for the tests of clocklab's pages, driven over the
//! DevTools protocol: open a page, wait until it says it is ready, read its
//! DOM, click, press keys, and collect every console error and uncaught
//! exception.
//!
//! Chromium is Debian's `chromium` (`apt-get install chromium`; `.ci/run`
//! installs it), or the binary named by `CLOCKLAB_CHROMIUM`. Without it the
//! browser tests fail and say how to install it, unless
//! `CLOCKLAB_SKIP_BROWSER_TESTS=1` asks them to skip (CI never sets it).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::browser::tab::point::Point;
use headless_chrome::protocol::cdp::Log::LogEntryLevel;
use headless_chrome::protocol::cdp::Runtime::ConsoleAPICalledEventTypeOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};

/// The variable that lets the browser tests skip on a machine without Chromium.
pub const SKIP_VAR: &str = "CLOCKLAB_SKIP_BROWSER_TESTS";

/// The Chromium binary: `CLOCKLAB_CHROMIUM`, else the first of the usual names on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CLOCKLAB_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium with a fresh profile.
pub struct Chromium {
    browser: Browser,
    _profile: tempfile::TempDir,
}

/// Starts Chromium; `None` when it is missing and the tests are told to skip.
///
/// # Panics
///
/// When Chromium is missing and the tests are not told to skip, or when it
/// does not start.
pub fn launch() -> Option<Chromium> {
    let Some(path) = chromium() else {
        if std::env::var_os(SKIP_VAR).is_some_and(|v| !v.is_empty() && v != "0") {
            eprintln!("browser test skipped: no Chromium, and {SKIP_VAR} is set");
            return None;
        }
        panic!(
            "the browser tests need Chromium: install it with `apt-get install chromium` (Debian), or name the \
             binary in CLOCKLAB_CHROMIUM; set {SKIP_VAR}=1 to skip these tests"
        );
    };
    let profile = tempfile::tempdir().expect("a temporary folder");
    // The flags that keep a headless Chromium quiet and offline on a CI machine.
    let flags = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let options = LaunchOptions::default_builder()
        .path(Some(path.clone()))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1400, 900)))
        .user_data_dir(Some(profile.path().to_path_buf()))
        .idle_browser_timeout(Duration::from_secs(300))
        .args(flags.iter().map(OsStr::new).collect())
        .build()
        .expect("launch options");
    let browser = Browser::new(options).unwrap_or_else(|e| panic!("{} does not start: {e:#}", path.display()));
    Some(Chromium { browser, _profile: profile })
}

/// One tab, with the problems it reported.
pub struct Page {
    pub tab: Arc<Tab>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Chromium {
    /// Opens `url` in a new tab, collecting console errors and exceptions.
    pub fn open(&self, url: &str) -> Page {
        let tab = self.browser.new_tab().expect("a new tab");
        tab.set_default_timeout(Duration::from_secs(60));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&problems);
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let problem = match event {
                Event::RuntimeConsoleAPICalled(call)
                    if matches!(call.params.Type, ConsoleAPICalledEventTypeOption::Error) =>
                {
                    let args: Vec<String> = call
                        .params
                        .args
                        .iter()
                        .map(|a| a.value.as_ref().map_or(String::new(), |v| v.to_string()))
                        .collect();
                    Some(format!("console.error: {}", args.join(" ")))
                }
                Event::RuntimeExceptionThrown(thrown) => Some(format!(
                    "uncaught exception: {} {:?}",
                    thrown.params.exception_details.text,
                    thrown.params.exception_details.exception.as_ref().and_then(|e| e.description.clone())
                )),
                Event::LogEntryAdded(entry) if matches!(entry.params.entry.level, LogEntryLevel::Error) => {
                    Some(format!("log error: {}", entry.params.entry.text))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                sink.lock().expect("the lock is never poisoned").push(problem);
            }
        }))
        .expect("an event listener");
        tab.call_method(headless_chrome::protocol::cdp::Runtime::Enable(None)).expect("Runtime.enable");
        tab.enable_log().expect("Log.enable");
        tab.navigate_to(url).expect("navigation starts").wait_until_navigated().expect("navigation ends");
        Page { tab, problems }
    }
}

impl Page {
    /// Evaluates `expression` (awaiting a promise) and returns its JSON value.
    pub fn eval(&self, expression: &str) -> serde_json::Value {
        // Objects come back by reference: they travel as JSON text instead.
        let wrapped = format!("(async () => JSON.stringify(await ({expression})) ?? 'null')()");
        let object = self.tab.evaluate(&wrapped, true).unwrap_or_else(|e| panic!("{expression}: {e:#}"));
        let Some(text) = object.value.as_ref().and_then(|v| v.as_str()) else {
            panic!("{expression}: {}", object.description.unwrap_or_else(|| "no value".into()))
        };
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{expression}: {e}: {text}"))
    }

    /// Evaluates `expression` until it is true, or panics after `timeout`.
    pub fn wait_until(&self, expression: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.eval(expression) != serde_json::Value::Bool(true) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {expression}; problems: {:?}",
                self.problems()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A `data-*` attribute of `<body>` (camelCase name), if set.
    pub fn body_data(&self, name: &str) -> Option<String> {
        self.eval(&format!("document.body.dataset.{name} ?? null")).as_str().map(str::to_string)
    }

    /// The text of the element with this id.
    pub fn text_of(&self, id: &str) -> String {
        self.eval(&format!("document.getElementById('{id}').textContent")).as_str().unwrap_or_default().to_string()
    }

    /// Clicks at a point of the viewport (CSS pixels), as a mouse does.
    pub fn click(&self, x: f64, y: f64) {
        self.tab.click_point(Point { x, y }).expect("a click");
    }

    /// Sends one mouse event at a point of the viewport: `"mousePressed"`,
    /// `"mouseMoved"`, `"mouseReleased"` (left button) or `"mouseWheel"`
    /// (scrolling by `delta_y`).
    pub fn mouse(&self, kind: &str, x: f64, y: f64, delta_y: f64) {
        use headless_chrome::protocol::cdp::Input::{DispatchMouseEvent, DispatchMouseEventTypeOption, MouseButton};
        let (event_type, button) = match kind {
            "mousePressed" => (DispatchMouseEventTypeOption::MousePressed, Some(MouseButton::Left)),
            "mouseMoved" => (DispatchMouseEventTypeOption::MouseMoved, Some(MouseButton::Left)),
            "mouseReleased" => (DispatchMouseEventTypeOption::MouseReleased, Some(MouseButton::Left)),
            "mouseWheel" => (DispatchMouseEventTypeOption::MouseWheel, None),
            other => panic!("no mouse event {other}"),
        };
        let wheel = kind == "mouseWheel";
        self.tab
            .call_method(DispatchMouseEvent {
                Type: event_type,
                x,
                y,
                button,
                click_count: if wheel { None } else { Some(1) },
                modifiers: None,
                timestamp: None,
                buttons: if kind == "mouseMoved" { Some(1) } else { None },
                force: None,
                tangential_pressure: None,
                tilt_x: None,
                tilt_y: None,
                twist: None,
                delta_x: wheel.then_some(0.0),
                delta_y: wheel.then_some(delta_y),
                pointer_Type: None,
            })
            .expect("a mouse event");
    }

    /// Presses a key, as a keyboard does.
    pub fn press(&self, key: &str) {
        self.tab.press_key(key).expect("a key press");
    }

    /// The console errors and exceptions so far.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().expect("the lock is never poisoned").clone()
    }
}

/// The `file://` address of a file.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().expect("the file exists").display())
}
