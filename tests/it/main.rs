//! Integration tests: one binary (see ARCHITECTURE.md).

mod faults;
mod machine;
mod run_real;
mod util;
