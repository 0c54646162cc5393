//! `clocklab config`: print the configuration, check a file, or write a
//! starter file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use clocklab_config::Config;
use rand::Rng;

use super::UsageError;

/// Arguments of `clocklab config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the built-in configuration (the four-experiment suite), every
    /// key explained in a comment.
    #[arg(long)]
    print_default: bool,
    /// Check this file and print it resolved, with every default filled in.
    #[arg(long, conflicts_with_all = ["print_default", "init"])]
    config: Option<PathBuf>,
    /// Write a starter configuration for machines started by hand to FILE
    /// (`.toml`, or `.json`): three ports and a fresh secret `token`.
    #[arg(long, value_name = "FILE", conflicts_with = "print_default")]
    init: Option<PathBuf>,
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
    if let Some(path) = &args.init {
        return init(path);
    }
    if !args.print_default && args.config.is_none() {
        return Err(UsageError(
            "say what to do: --print-default, --config FILE to check a file, or --init FILE to write one".into(),
        )
        .into());
    }
    let config = super::load_config(args.config.as_deref())?;
    if let Some(path) = &args.config {
        // The limits of the runtime the file names, as `run` would check them.
        config.validate(&path.display().to_string()).context("invalid configuration")?;
    }
    let text = match (args.format, args.print_default) {
        (Format::Toml, true) => config.to_commented_toml(),
        (Format::Toml, false) => config.to_toml(),
        (Format::Json, _) => config.to_json() + "\n",
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// Writes a starter configuration for machines started by hand: the
/// built-in settings, ports 5001 to 5003 and a fresh random token, readable
/// by its owner only. An existing file is never overwritten.
fn init(path: &Path) -> anyhow::Result<ExitCode> {
    let mut token = [0u8; clocklab_model::wire::TOKEN_LEN];
    rand::rng().fill_bytes(&mut token);
    let token = clocklab_model::wire::token_to_hex(&token);
    let config = Config { ports: vec![5001, 5002, 5003], ..Config::default() };
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let text = match extension.as_deref() {
        // The commented form never prints a token; its placeholder line takes the new one.
        Some("toml") => config
            .to_commented_toml()
            .replace("# token = \"<32 hexadecimal digits>\"\n", &format!("token = \"{token}\"\n")),
        Some("json") => {
            let mut value = serde_json::to_value(&config).context("serialising the configuration")?;
            value["token"] = token.clone().into();
            serde_json::to_string_pretty(&value).context("serialising the configuration")? + "\n"
        }
        _ => {
            return Err(UsageError(format!(
                "--init {}: name a .toml or a .json file (the extension says which)",
                path.display()
            ))
            .into());
        }
    };
    write_new_private(path, text.as_bytes())?;
    // The file must read back as written, token included.
    let written = Config::load(path).context("invalid configuration")?;
    anyhow::ensure!(
        written.token.as_deref() == Some(token.as_str()),
        "{} does not read back its token",
        path.display()
    );
    say!(
        "wrote {}: machines started by hand with it (clocklab machine <1..3> --config {}) share its secret token",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` (never over an existing file), readable and writable by
/// its owner only, with `bytes`.
fn write_new_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let exists = || {
        anyhow::Error::new(UsageError(format!(
            "--init {}: the file exists; clocklab never overwrites it",
            path.display()
        )))
    };
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    let mut file = clocklab_config::output::OutputFile::create_with_mode(path, 0o600)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    file.commit_new().map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            exists()
        } else {
            anyhow::Error::new(error).context(format!("cannot write {}", path.display()))
        }
    })
}
