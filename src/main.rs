//! The `clocklab` command: the only place that knows about argv, stdout and
//! exit codes.
//!
//! Exit codes: 0 success; 1 a run or an analysis failed; 2 bad input (usage,
//! configuration), in which case nothing was started or written.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prints a line on stdout, like `println!`, except that a closed stdout
/// (`clocklab run | head`) is not an error: what stdout shows is for a
/// person, and the files the command writes matter more than its output.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod cmd;
mod orchestrate;
mod signals;

/// Scale models of asynchronous distributed systems with logical clocks.
#[derive(Debug, Parser)]
#[command(name = "clocklab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The command line. A negative number is taken as a value, not as a
/// flag, so that `--machines -3` is told it is out of range (naming the
/// flag) rather than that `-3` is an unknown argument.
fn parse() -> Cli {
    use clap::FromArgMatches as _;
    Cli::from_arg_matches(&cli_command().get_matches()).unwrap_or_else(|error| error.exit())
}

/// The command line's definition, as [`parse`] reads it.
fn cli_command() -> clap::Command {
    use clap::CommandFactory as _;
    /// `command` and every subcommand under it, each argument that takes a
    /// value taking a negative number.
    fn negative_numbers(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| {
                let takes_values = arg.get_action().takes_values();
                arg.allow_negative_numbers(takes_values)
            })
            .mut_subcommands(negative_numbers)
    }
    negative_numbers(Cli::command())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the experiment suite (built in, or from --config), then analyze it.
    Run(cmd::run::RunArgs),
    /// Run one virtual machine as this process.
    Machine(cmd::machine::MachineArgs),
    /// Analyze a results, experiment or run folder (also `clocklab analyse`).
    #[command(visible_alias = "analyse")]
    Analyze(cmd::analyze::AnalyzeArgs),
    /// Show the configuration, check a file, or write a starter file.
    Config(cmd::config::ConfigArgs),
    /// Measure the simulator's speed on one experiment, or the real runtime's CPU time per tick and per message (`--runtime real`).
    Bench(cmd::bench::BenchArgs),
    /// Run one experiment in both runtimes with the same seed and compare them.
    Calibrate(cmd::calibrate::CalibrateArgs),
    /// Check every clock in the logs against happens-before (exit 1 on a violation).
    Check(cmd::check::CheckArgs),
    /// Draw a run's space-time diagram: an SVG of a window, or the interactive page.
    Diagram(cmd::diagram::DiagramArgs),
    /// Write runs for other tools: ShiViz, Perfetto, CSV, JSON Lines, the reference's analyzer.
    Export(cmd::export::ExportArgs),
    /// Check the hosts of a file before a run: reachable, the same version, a free port, the clock.
    Hosts(cmd::hosts::HostsArgs),
    /// What `run --hosts` starts on another host, through its launcher.
    #[command(hide = true)]
    Agent(cmd::agent::AgentArgs),
    /// Measure the analysis' statistics against the simulator: coverage, false positives, power.
    Study(cmd::study::StudyArgs),
}

fn main() -> ExitCode {
    let cli = parse();
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Machine(args) => cmd::machine::run(args),
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Config(args) => cmd::config::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Calibrate(args) => cmd::calibrate::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Diagram(args) => cmd::diagram::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Hosts(args) => cmd::hosts::run(args),
        Command::Study(args) => cmd::study::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            clocklab_net::note!("clocklab: error: {error:#}");
            ExitCode::from(cmd::exit_code(&error))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        // clap's own checks, negative numbers among them (only where a value is taken).
        super::cli_command().debug_assert();
    }
}
