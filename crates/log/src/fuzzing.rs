//! The body of the `log_reader` fuzz target in `fuzz/`, shared with the test
//! that replays its corpus on the stable compiler, so the two cannot drift.

use crate::{Diagnostics, LogFormat, LogReader, LogWriter, parse_line};

/// The `log_reader` target: a log of arbitrary bytes is read without a
/// panic, every line is accounted for, and every line parsed on its own
/// (text, reference or JSON) gives what the reader gave. A record read back
/// from its own JSON line is the same record.
pub fn fuzz_log_reader(data: &[u8]) {
    let mut reader = LogReader::new(data);
    let lines: Vec<_> = reader.by_ref().collect();
    let diagnostics = reader.into_diagnostics();

    let n_newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let has_tail = data.last().is_some_and(|&b| b != b'\n');
    assert_eq!(diagnostics.n_lines, n_newlines + u64::from(has_tail), "every line is counted");
    assert!(lines.len() as u64 + diagnostics.n_skipped <= diagnostics.n_lines);
    assert!(diagnostics.first_skipped.len() <= Diagnostics::KEPT);
    assert!(lines.windows(2).all(|pair| pair[0].line_no < pair[1].line_no), "line numbers increase");

    // The reader and `parse_line` agree on every line that is UTF-8.
    let mut read = lines.iter();
    for (idx, raw) in data.split(|&b| b == b'\n').enumerate() {
        let Ok(text) = std::str::from_utf8(raw) else { continue };
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        if let Ok((record, precision)) = parse_line(text) {
            let line = read.next().expect("the reader read every line parse_line reads");
            assert_eq!(line.line_no, idx as u64 + 1);
            assert_eq!((&line.record, line.precision), (&record, precision));
        }
    }
    assert!(read.next().is_none(), "the reader read a line parse_line refuses");

    // JSON Lines keep every field: a record read back from its line is itself.
    for line in &lines {
        let mut bytes = Vec::new();
        LogWriter::new(&mut bytes, LogFormat::Jsonl).write(&line.record).expect("writing to memory");
        let text = std::str::from_utf8(&bytes).expect("the writer writes UTF-8");
        let (again, _) = parse_line(text.trim_end_matches('\n')).expect("a written JSON line reads back");
        assert_eq!(again, line.record);
    }
}
