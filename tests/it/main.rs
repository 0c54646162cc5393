//! Integration tests: one binary (see ARCHITECTURE.md).

mod analyze;
mod config_errors;
mod machine;
mod run_real;
mod sim;
mod util;
