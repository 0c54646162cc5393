//! The reference export: logs that the reference implementation's analyzer
//! (and any parser written for the reference's logs) reads correctly.
//!
//! The reference logs a tick that sends to two machines as two `Sent
//! message to machine <j>` lines with the same clock, writes no line for a
//! message still queued at the end, and knows no disconnection. Its analyzer
//! counts every line it matches, except those containing `Initialized`,
//! `Connected` or `Stopped`, as a tick. So the export writes, per machine,
//! its log with: a send to several machines split into one `Sent` line per
//! recipient (same clock, same time), no `Unprocessed` lines and no
//! `Disconnected` lines. Every other line is as clocklab wrote it (its
//! extra fields after `Queue Length` are ignored by the reference's regex).
//! Files go to `<out>/<experiment>/run_<k>/process_<id>.log`, the
//! reference's names; its analyzer reads one experiment folder at a time.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use clocklab_config::output;
use clocklab_log::{Event, LogFormat, LogReader, LogWriter, Record};

use crate::export::{ExportError, ExportSummary};
use crate::source::{RunSource, SourceError};

/// The records of the reference's log for one of clocklab's lines: none,
/// one, or one per recipient of a send.
pub fn reference_records(record: &Record) -> Vec<Record> {
    match &record.event {
        Event::Unprocessed { .. } | Event::Disconnected { .. } => Vec::new(),
        Event::Sent { to } if to.len() > 1 => {
            to.iter().map(|&peer| Record { event: Event::Sent { to: vec![peer].into() }, ..record.clone() }).collect()
        }
        _ => vec![record.clone()],
    }
}

/// Writes the runs in `sources` under the folder `out`.
pub fn write(sources: &[RunSource], out: &Path) -> Result<ExportSummary, ExportError> {
    let mut summary = ExportSummary::default();
    let (mut dropped, mut split) = (0u64, 0u64);
    for source in sources {
        let (experiment, run) = source.label.rsplit_once('/').unwrap_or(("experiment", &source.label));
        let dir = out.join(experiment).join(run);
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ExportError::Write { path: path.clone(), source }
        };
        // The folders below `out` are made one level at a time, so that none
        // is a link planted to take the logs elsewhere.
        output::create_dir_all(out).map_err(write_err(out))?;
        for folder in [out.join(experiment), dir.clone()] {
            output::create_dir(&folder).map_err(write_err(&folder))?;
        }
        for (&id, path) in &source.logs {
            let file = File::open(path).map_err(|error| SourceError::Io { path: path.clone(), source: error })?;
            let target = clocklab_config::layout::reference_log_path(&dir, id);
            let mut target_file = output::OutputFile::create(&target).map_err(write_err(&target))?;
            let mut writer = LogWriter::new(BufWriter::new(&mut target_file), LogFormat::Text);
            for line in LogReader::new(BufReader::new(file)) {
                let records = reference_records(&line.record);
                match records.len() {
                    0 => dropped += 1,
                    1 => {}
                    _ => split += 1,
                }
                for record in &records {
                    writer.write(record).map_err(write_err(&target))?;
                    summary.events += 1;
                    // One `Sent` line per message, as the reference writes them.
                    summary.messages += u64::from(matches!(record.event, Event::Sent { .. }));
                }
            }
            writer.flush().map_err(write_err(&target))?;
            drop(writer);
            target_file.commit().map_err(write_err(&target))?;
        }
        summary.runs += 1;
    }
    summary.notes.push(format!(
        "{dropped} lines left out (Unprocessed, Disconnected), {split} sends to several machines split into one line \
         per recipient; point the reference's analyzer at one experiment folder"
    ));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_split_and_end_of_run_lines_dropped() {
        let send = Record::new(1, Event::Sent { to: vec![2, 3].into() }, 7, 0, 10);
        let split = reference_records(&send);
        assert_eq!(split.len(), 2);
        assert_eq!(split[1].event, Event::Sent { to: vec![3].into() });
        assert_eq!(split[1].logical_clock, 7);
        assert!(reference_records(&Record::new(1, Event::Unprocessed { from: 2, clock: 3 }, 7, 1, 10)).is_empty());
        assert_eq!(reference_records(&Record::new(1, Event::Internal, 8, 0, 10)).len(), 1);
    }
}
