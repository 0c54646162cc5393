//! `clocklab diagram`: a run's space-time diagram, as a static SVG of a
//! window of time (for slides and papers) or as the interactive page.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clocklab_causal::diagram::{self, svg};
use clocklab_causal::{BuildOptions, RunSource};

use super::UsageError;
use super::check::source_error;

/// Arguments of `clocklab diagram`.
#[derive(Debug, Args)]
pub struct DiagramArgs {
    /// A run folder.
    run_dir: PathBuf,
    /// The window's start, in seconds of true time after the run's start.
    #[arg(long, value_name = "S", requires = "to")]
    from: Option<f64>,
    /// The window's end, in seconds of true time after the run's start.
    #[arg(long, value_name = "S", requires = "from")]
    to: Option<f64>,
    /// Where the SVG goes (`-` for standard output; default `<RUN_DIR>/diagram_<from>-<to>s.svg`).
    #[arg(long, value_name = "FILE", requires = "from")]
    svg: Option<PathBuf>,
    /// Without --from/--to: where the interactive page goes (default `<RUN_DIR>/diagram.html`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "svg"])]
    html: Option<PathBuf>,
}

/// Runs `clocklab diagram`.
pub fn run(args: DiagramArgs) -> anyhow::Result<ExitCode> {
    let source = RunSource::open(&args.run_dir).map_err(source_error)?;
    let (Some(from_s), Some(to_s)) = (args.from, args.to) else {
        let out = args.html.unwrap_or_else(|| args.run_dir.join("diagram.html"));
        let summary = diagram::write_run_diagram(&source, &out).map_err(|error| match error {
            diagram::DiagramError::Source(error) => source_error(error),
            other => anyhow::Error::new(other),
        })?;
        say!("{}: {} events, {} messages: {}", source.label, summary.n_events, summary.n_messages, out.display());
        return Ok(ExitCode::SUCCESS);
    };
    let graph = source.graph(BuildOptions::default()).map_err(source_error)?;
    let origin = diagram::origin_us(&source, &graph);
    let title = source.label.replace('/', " / ");
    let window_error = |error| UsageError(format!("--from {from_s} --to {to_s}: {error}"));
    // An open end (`--to inf`) reaches the run's last event; the file is
    // named after the window drawn.
    let (from_s, to_s) = svg::resolve_window(&graph, origin, from_s, to_s).map_err(window_error)?;
    let text = svg::render_window(&graph, &title, origin, from_s, to_s).map_err(window_error)?;
    let out = args.svg.unwrap_or_else(|| args.run_dir.join(format!("diagram_{from_s}-{to_s}s.svg")));
    if out == Path::new("-") {
        let _ = std::io::stdout().write_all(text.as_bytes());
    } else {
        clocklab_config::output::write_file(&out, text.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
        say!("{}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
