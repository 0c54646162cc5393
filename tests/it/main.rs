//! Integration tests: one binary (see ARCHITECTURE.md).
