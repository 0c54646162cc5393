//! Integration tests: one binary (see ARCHITECTURE.md).

mod analyze;
mod bounds;
mod calibrate;
mod config_errors;
mod driver;
mod fake_peer;
mod faults;
mod machine;
mod peers;
mod report_browser;
mod run_real;
mod sim;
mod stops;
mod util;
