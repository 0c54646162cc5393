//! Integration tests: one binary (see ARCHITECTURE.md).

mod config_errors;
