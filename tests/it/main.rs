//! Integration tests: one binary (see ARCHITECTURE.md).

mod analyze;
mod browser;
mod calibrate;
mod check;
mod config_errors;
mod diagram_page;
mod driver;
mod export;
mod faults;
mod machine;
mod run_real;
mod sim;
mod util;
