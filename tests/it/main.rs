//! Integration tests: one binary (see ARCHITECTURE.md).

mod machine;
mod run_real;
mod util;
