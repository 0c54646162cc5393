//! Integration tests: one binary (see ARCHITECTURE.md).

mod analyze;
