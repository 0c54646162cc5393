//! Integration tests: one binary (see ARCHITECTURE.md).

mod analyze;
mod architecture;
mod bench_real;
mod bounds;
mod browser;
mod calibrate;
mod check;
mod config_errors;
mod damaged_runs;
mod diagram_page;
mod driver;
mod export;
mod fake_peer;
mod fault_cases;
mod fault_plan;
mod faults;
mod limits;
mod machine;
mod outputs;
mod peers;
mod report_browser;
mod run_real;
mod sim;
mod stops;
mod util;
