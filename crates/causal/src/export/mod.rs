//! Exports of runs for other tools.
//!
//! - [`shiviz`]: a log that ShiViz opens as it is (its parser regex on the
//!   first line, one execution per run);
//! - [`perfetto`]: Chrome Trace Event Format JSON (ui.perfetto.dev,
//!   `chrome://tracing`), one track per machine, one flow arrow per message;
//! - [`table`]: one row per event with its pairing, as CSV or JSON Lines;
//! - [`reference`](mod@reference): logs that the reference implementation's analyzer
//!   reads correctly.
//!
//! Each takes run folders ([`RunSource`]) and writes to any `io::Write`
//! (the reference export writes a folder of logs).

pub mod perfetto;
pub mod reference;
pub mod shiviz;
pub mod table;

use std::path::PathBuf;

use crate::source::{RunSource, SourceError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A run could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The logs break a rule the format needs (ShiViz's vector clocks).
    #[error("{run}: {message}")]
    Unfit {
        /// `experiment/run_<k>`.
        run: String,
        /// What is wrong, in a sentence.
        message: String,
    },
    /// The output could not be written (what the system said is its source).
    #[error("{path}")]
    Write {
        /// Where (`standard output` for a stream).
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

impl ExportError {
    /// Whether the error is the user's input to fix (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ExportError::Source(error) => error.is_bad_input(),
            ExportError::Unfit { .. } => true,
            ExportError::Write { .. } => false,
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Runs exported.
    pub runs: u64,
    /// Events (rows, trace events, ShiViz events or log lines) written.
    pub events: u64,
    /// Messages written as such (flows, paired rows, …).
    pub messages: u64,
    /// Things the reader of the export should know.
    pub notes: Vec<String>,
}

/// An `io::Error` while writing to `what`.
pub(crate) fn write_error(what: &str) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Write { path: PathBuf::from(what), source }
}

/// A label for a run that ShiViz and trace viewers show: `experiment/run_<k>`.
pub(crate) fn run_label(source: &RunSource) -> String {
    source.label.clone()
}
