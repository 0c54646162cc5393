//! One module per subcommand: its arguments and what it does.

pub mod analyze;
pub mod bench;
pub mod calibrate;
pub mod check;
pub mod config;
pub mod diagram;
pub mod export;
pub mod machine;
pub mod run;

use std::path::Path;

use anyhow::Context;
use clocklab_config::{Config, ConfigError};

/// Bad input that is the user's to fix: exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error: 2 for bad input, 1 for anything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let bad_input = error.chain().any(|cause| cause.is::<ConfigError>() || cause.is::<UsageError>());
    if bad_input { 2 } else { 1 }
}

/// The clock set named on the command line (`--clocks lamport,vector,hlc`).
pub fn parse_clocks(names: &[String]) -> anyhow::Result<clocklab_model::ClockKinds> {
    clocklab_model::ClockKinds::parse(names.iter().map(String::as_str))
        .map_err(|error| UsageError(format!("--clocks {}: {error}", names.join(","))).into())
}

/// The configuration from `path`, or the built-in one.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Config::load(path).context("invalid configuration"),
        None => Ok(Config::default()),
    }
}
