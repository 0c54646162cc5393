//! Integration tests: one binary (see ARCHITECTURE.md).

mod analyze;
mod calibrate;
mod config_errors;
mod driver;
mod faults;
mod machine;
mod report_browser;
mod run_real;
mod sim;
mod util;
