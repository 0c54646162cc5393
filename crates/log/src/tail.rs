//! The last line of a log file, read from its end: what a machine that
//! crashed had written last.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::read::LogReader;
use crate::record::Record;

/// How much of a file's end is read to find its last line: a line is at most
/// [`crate::MAX_LINE_BYTES`] long.
const TAIL_BYTES: u64 = crate::MAX_LINE_BYTES as u64 + 1;

/// The last line of the log at `path` that reads as a record (a cut-off
/// last line is passed over), or `None` if it has none.
pub fn last_record(path: &Path) -> io::Result<Option<Record>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let from = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::with_capacity((len - from) as usize);
    file.read_to_end(&mut bytes)?;
    // Past the start of the file, the first bytes may be the end of a line.
    let whole = if from > 0 {
        bytes.iter().position(|&b| b == b'\n').map_or(&[][..], |at| &bytes[at + 1..])
    } else {
        &bytes[..]
    };
    Ok(LogReader::new(whole).map(|line| line.record).last())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, LogFormat, LogWriter};

    #[test]
    fn the_last_whole_line_of_either_format() {
        let dir = tempfile::tempdir().unwrap();
        for format in [LogFormat::Text, LogFormat::Jsonl] {
            let path = dir.path().join(crate::file_name(1, format));
            assert_eq!(std::fs::write(&path, "").ok(), Some(()));
            assert_eq!(last_record(&path).unwrap(), None, "an empty log has no last line");
            let mut writer = LogWriter::new(File::create(&path).unwrap(), format);
            for k in 0..2_000u64 {
                writer.write(&Record::new(1, Event::Internal, k + 1, 0, 1_767_225_600_000_000 + k as i64)).unwrap();
            }
            drop(writer);
            // A line cut off by a process that died mid-write is passed over.
            let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            io::Write::write_all(&mut file, b"1> Event: Intern").unwrap();
            let last = last_record(&path).unwrap().unwrap();
            assert_eq!(last.logical_clock, 2_000, "{format:?}");
        }
        assert!(last_record(&dir.path().join("missing.log")).is_err());
    }
}
