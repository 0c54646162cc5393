//! `clocklab config`: print the configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

/// Arguments of `clocklab config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the built-in configuration (the four-experiment suite).
    #[arg(long)]
    print_default: bool,
    /// Check this file and print it resolved, with every default filled in.
    #[arg(long, conflicts_with = "print_default")]
    config: Option<PathBuf>,
    /// The format to print.
    #[arg(long, value_enum, default_value_t = Format::Toml)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Toml,
    Json,
}

/// Runs `clocklab config`.
pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    if !args.print_default && args.config.is_none() {
        return Err(
            super::UsageError("say what to print: --print-default, or --config FILE to check a file".into()).into()
        );
    }
    let config = super::load_config(args.config.as_deref())?;
    let text = match args.format {
        Format::Toml => config.to_toml(),
        Format::Json => config.to_json() + "\n",
    };
    {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(text.as_bytes());
    }
    Ok(ExitCode::SUCCESS)
}
