//! Reading logs: clocklab's text and JSON Lines, and the reference
//! implementation's text. Parsing a file never fails as a whole: a line that
//! cannot be read is skipped and reported in [`Diagnostics`]; so is a line
//! longer than [`MAX_LINE_BYTES`], without ever holding more than that of it
//! (a crash can leave gigabytes of NUL bytes without a newline).

use std::io::BufRead;

use crate::lines::{MAX_LINE_BYTES, RawLine, RawLines};
use crate::record::Record;

mod parse;

use parse::LineParser;

/// How precise a line's time is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePrecision {
    /// Microseconds, from `Timestamp` (clocklab).
    Micros,
    /// Whole seconds, from `System Time` only (the reference implementation).
    Seconds,
}

/// One line read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadLine {
    /// Its 1-based line number.
    pub line_no: u64,
    /// What it says.
    pub record: Record,
    /// How precise [`Record::time_us`] is.
    pub precision: TimePrecision,
}

/// Why a line could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not start with `<id>> `.
    #[error("no `<id>> ` prefix")]
    NoMachineId,
    /// A field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A number does not parse.
    #[error("field `{field}` has a bad value `{value}`")]
    BadValue {
        /// The field.
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// The event text is not one clocklab or the reference writes.
    #[error("unknown event `{0}`")]
    UnknownEvent(String),
    /// A JSON line that does not parse.
    #[error("bad JSON: {0}")]
    Json(String),
    /// The bytes are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// The line is longer than [`MAX_LINE_BYTES`]; its bytes were not kept.
    #[error("longer than {MAX_LINE_BYTES} bytes ({0} bytes)")]
    TooLong(u64),
}

/// What a reader skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Lines seen, including skipped and blank ones.
    pub n_lines: u64,
    /// Lines skipped because they could not be read (not counting a truncated last line).
    pub n_skipped: u64,
    /// The first few skipped lines: number and reason.
    pub first_skipped: Vec<(u64, String)>,
    /// The last line had no newline and could not be read: a writer was
    /// stopped in the middle of it. Not an error.
    pub truncated_last_line: bool,
}

impl Diagnostics {
    /// How many skipped lines [`Diagnostics::first_skipped`] keeps.
    pub const KEPT: usize = 10;

    fn skip(&mut self, line_no: u64, error: &LineError) {
        self.n_skipped += 1;
        if self.first_skipped.len() < Self::KEPT {
            self.first_skipped.push((line_no, error.to_string()));
        }
    }
}

/// Reads a log line by line; an iterator over the lines it could read.
///
/// Lines in clocklab's text format, the reference's text format and JSON
/// Lines may be mixed; each line is recognised by itself.
#[derive(Debug)]
pub struct LogReader<R> {
    lines: RawLines<R>,
    line_no: u64,
    parser: LineParser,
    diagnostics: Diagnostics,
}

impl<R: BufRead> LogReader<R> {
    /// A reader of `input`.
    pub fn new(input: R) -> LogReader<R> {
        LogReader {
            lines: RawLines::new(input),
            line_no: 0,
            parser: LineParser::default(),
            diagnostics: Diagnostics::default(),
        }
    }

    /// What was skipped so far; complete once the iterator is exhausted.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diagnostics
    }

    /// Gives back the diagnostics.
    pub fn into_diagnostics(self) -> Diagnostics {
        self.diagnostics
    }
}

/// What one line said.
enum Parsed {
    /// A record.
    Record(Record, TimePrecision),
    /// A blank line.
    Blank,
    /// A line that could not be read.
    Bad(LineError),
}

impl Parsed {
    /// Parses one line's bytes, its newline included if it had one.
    fn of(parser: &mut LineParser, bytes: &[u8]) -> Parsed {
        // The line's end stripped as bytes (a `char` pattern costs more).
        let end = bytes.iter().rposition(|&byte| byte != b'\n' && byte != b'\r').map_or(0, |last| last + 1);
        // Checked with SIMD instructions, faster than the standard
        // library's check on lines this short.
        let text = match simdutf8::basic::from_utf8(&bytes[..end]) {
            Ok(text) => text,
            Err(_) => return Parsed::Bad(LineError::NotUtf8),
        };
        if text.trim().is_empty() {
            return Parsed::Blank;
        }
        match parser.parse(text) {
            Ok((record, precision)) => Parsed::Record(record, precision),
            Err(error) => Parsed::Bad(error),
        }
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = ReadLine;

    fn next(&mut self) -> Option<ReadLine> {
        loop {
            // Most lines are parsed where they lie in the input's buffer.
            let parsed = match self.lines.next_line() {
                Ok(None) => return None,
                Ok(Some(RawLine::Text(bytes))) => Parsed::of(&mut self.parser, bytes),
                Ok(Some(RawLine::TooLong { len, complete })) => {
                    self.line_no += 1;
                    self.diagnostics.n_lines += 1;
                    self.note_bad(complete, &LineError::TooLong(len));
                    continue;
                }
                Err(error) => {
                    // An I/O error mid-file ends the reading; it is reported like a bad line.
                    self.line_no += 1;
                    self.diagnostics.n_lines += 1;
                    self.diagnostics.skip(self.line_no, &LineError::Json(format!("read error: {error}")));
                    return None;
                }
            };
            self.line_no += 1;
            self.diagnostics.n_lines += 1;
            match parsed {
                Parsed::Record(record, precision) => {
                    return Some(ReadLine { line_no: self.line_no, record, precision });
                }
                Parsed::Blank => {}
                Parsed::Bad(error) => self.note_bad(!self.lines.last_unfinished(), &error),
            }
        }
    }
}

impl<R> LogReader<R> {
    fn note_bad(&mut self, complete: bool, error: &LineError) {
        if complete {
            self.diagnostics.skip(self.line_no, error);
        } else {
            self.diagnostics.truncated_last_line = true;
        }
    }
}

/// Parses one line (without its newline) in any of the known formats.
pub fn parse_line(line: &str) -> Result<(Record, TimePrecision), LineError> {
    LineParser::default().parse(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Event;
    use crate::{LogFormat, LogWriter};
    use clocklab_model::HlcStamp;
    use proptest::prelude::*;

    const T0: i64 = 1_795_495_393_482_913; // 2026-11-24T04:43:13.482913Z

    fn record(event: Event) -> Record {
        Record::new(2, event, 18, 2, T0)
    }

    /// The specification's example of a line with every clock.
    const SPEC_LINE: &str = "2> Event: Processed message from machine 3 with clock 17 | System Time: 2026-11-24 04:43:13 | Logical Clock: 18 | Queue Length: 2 | Timestamp: 2026-11-24T04:43:13.482913Z | Vector Clock: [4, 9, 12] | HLC: 1795495393482951:0 | Physical Clock: 2026-11-24T04:43:13.482951Z";

    fn spec_record() -> Record {
        Record {
            vector_clock: Some(vec![4, 9, 12]),
            hlc: Some(HlcStamp { l_us: 1_795_495_393_482_951, c: 0 }),
            physical_clock_us: Some(1_795_495_393_482_951),
            ..record(Event::Processed { from: Some(3), clock: Some(17) })
        }
    }

    #[test]
    fn every_clock_is_written_and_read_as_the_spec_says() {
        let text = String::from_utf8(written(LogFormat::Text, &[spec_record()])).unwrap();
        assert_eq!(text, format!("{SPEC_LINE}\n"));
        let (read, _) = parse_line(SPEC_LINE).unwrap();
        assert_eq!(read, spec_record());
        let json = String::from_utf8(written(LogFormat::Jsonl, &[spec_record()])).unwrap();
        assert!(
            json.contains(
                r#""vector_clock":[4,9,12],"hlc":{"l_us":1795495393482951,"c":0},"physical_clock_us":1795495393482951"#
            ),
            "{json}"
        );
        assert_eq!(parse_line(json.trim_end()).unwrap().0, spec_record());
        // The reference implementation's regex still reads the line.
        assert!(SPEC_LINE.starts_with("2> Event: Processed message from machine 3 with clock 17 | System Time: 2026-11-24 04:43:13 | Logical Clock: 18 | Queue Length: 2"));
    }

    #[test]
    fn bad_clock_fields_are_named() {
        for (field, bad) in [("Vector Clock", "[1, x]"), ("HLC", "12"), ("Physical Clock", "yesterday")] {
            let line = format!("{} | {field}: {bad}", &SPEC_LINE[..SPEC_LINE.find(" | Vector").unwrap()]);
            let error = parse_line(&line).unwrap_err();
            assert_eq!(error, LineError::BadValue { field, value: bad.to_string() });
        }
    }

    fn all_events() -> Vec<Event> {
        vec![
            Event::Initialized { host: Some("127.0.0.1".into()), port: Some(5001), rate: 4 },
            Event::Connected { peer: 3, host: Some("127.0.0.1".into()), port: Some(5003) },
            Event::Internal,
            Event::Sent { to: vec![1].into() },
            Event::Sent { to: vec![1, 3].into() },
            Event::Processed { from: Some(3), clock: Some(17) },
            Event::Disconnected { peer: 1 },
            Event::Behind { lateness_us: 124_312, tick: 5_021 },
            Event::Lost { to: 3, clock: 41 },
            Event::Held { to: 1, clock: 43 },
            Event::Crashed,
            Event::Restarted { host: Some("127.0.0.1".into()), port: Some(5002), rate: 4, recovered: false },
            Event::Restarted { host: Some("127.0.0.1".into()), port: Some(5002), rate: 4, recovered: true },
            Event::ClockChanged { step_us: -500_000, drift_ppb: None },
            Event::ClockChanged { step_us: 0, drift_ppb: Some(12_500) },
            Event::ClockChanged { step_us: 250, drift_ppb: Some(-200_000) },
            Event::Unprocessed { from: 1, clock: 9 },
            Event::Stopped,
        ]
    }

    fn written(format: LogFormat, records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = LogWriter::new(&mut out, format);
        for record in records {
            writer.write(record).unwrap();
        }
        out
    }

    #[test]
    fn text_lines_match_the_spec_wording() {
        let lines =
            String::from_utf8(written(LogFormat::Text, &all_events().into_iter().map(record).collect::<Vec<_>>()))
                .unwrap();
        let events: Vec<&str> = lines.lines().map(|l| l.split(" | ").next().unwrap()).collect();
        assert_eq!(
            events,
            [
                "2> Event: Initialized on 127.0.0.1:5001 with clock rate 4",
                "2> Event: Connected to machine 3 at 127.0.0.1:5003",
                "2> Event: Internal event",
                "2> Event: Sent message to machine 1",
                "2> Event: Sent message to machines 1, 3",
                "2> Event: Processed message from machine 3 with clock 17",
                "2> Event: Disconnected from machine 1",
                "2> Event: Behind schedule by 124312 us at tick 5021",
                "2> Event: Lost message to machine 3 with clock 41",
                "2> Event: Held message to machine 1 with clock 43",
                "2> Event: Crashed",
                "2> Event: Restarted on 127.0.0.1:5002 with clock rate 4 and a fresh clock",
                "2> Event: Restarted on 127.0.0.1:5002 with clock rate 4 and a recovered clock",
                "2> Event: Physical clock stepped by -500000 us",
                "2> Event: Physical clock drift set to 12.5 ppm",
                "2> Event: Physical clock stepped by 250 us and drift set to -200 ppm",
                "2> Event: Unprocessed message from machine 1 with clock 9",
                "2> Event: Stopped",
            ]
        );
        assert!(lines.lines().all(|l| l.ends_with(" | System Time: 2026-11-24 04:43:13 | Logical Clock: 18 | Queue Length: 2 | Timestamp: 2026-11-24T04:43:13.482913Z")));
    }

    #[test]
    fn both_formats_round_trip() {
        let records: Vec<Record> = all_events().into_iter().map(record).collect();
        for format in [LogFormat::Text, LogFormat::Jsonl] {
            let bytes = written(format, &records);
            let mut reader = LogReader::new(&bytes[..]);
            let read: Vec<Record> = reader.by_ref().map(|line| line.record).collect();
            assert_eq!(read, records, "{format:?}");
            assert_eq!(reader.diagnostics().n_skipped, 0);
        }
    }

    #[test]
    fn reads_the_reference_wording() {
        let log = "1> Event: Initialized on 12345 with clock rate 6 | System Time: 2025-02-28 19:03:43 | Logical Clock: 0 | Queue Length: 0\n\
                   1> Event: Connected to machine 2 on port 54321 | System Time: 2025-02-28 19:03:43 | Logical Clock: 0 | Queue Length: 0\n\
                   1> Event: Processed message | System Time: 2025-02-28 19:03:44 | Logical Clock: 7 | Queue Length: 3\n";
        let lines: Vec<ReadLine> = LogReader::new(log.as_bytes()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].record.event, Event::Initialized { host: None, port: Some(12345), rate: 6 });
        assert_eq!(lines[1].record.event, Event::Connected { peer: 2, host: None, port: Some(54321) });
        assert_eq!(lines[2].record.event, Event::Processed { from: None, clock: None });
        assert_eq!(lines[2].record.queue_length, 3);
        assert_eq!(lines[2].precision, TimePrecision::Seconds);
        assert_eq!(lines[2].record.time_us, 1_740_769_424_000_000);
    }

    #[test]
    fn damaged_lines_are_skipped_and_reported() {
        let mut bytes = written(LogFormat::Text, &[record(Event::Internal)]);
        bytes.extend_from_slice(
            b"garbage\n2> Event: Teleported | System Time: 2026-11-24 04:43:13 | Logical Clock: 1 | Queue Length: 0\n",
        );
        bytes.extend_from_slice(&written(LogFormat::Text, &[record(Event::Stopped)]));
        bytes.extend_from_slice(b"2> Event: Internal ev");
        let mut reader = LogReader::new(&bytes[..]);
        let read: Vec<_> = reader.by_ref().collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].line_no, 4);
        let diagnostics = reader.diagnostics();
        assert_eq!(diagnostics.n_skipped, 2);
        assert_eq!(diagnostics.first_skipped[0].0, 2);
        assert_eq!(diagnostics.first_skipped[1], (3, "unknown event `Teleported`".to_string()));
        assert!(diagnostics.truncated_last_line);
    }

    /// Reads one byte at a time, and counts the most it was asked to hand
    /// over at once: a reader that buffered a whole long line would show it
    /// only in its own memory, so the test watches its buffer instead.
    #[test]
    fn lines_past_the_limit_are_skipped_without_being_held() {
        let good = String::from_utf8(written(LogFormat::Text, &[record(Event::Internal)])).unwrap();
        let long_line = vec![0u8; 3 * MAX_LINE_BYTES];
        let mut bytes = good.clone().into_bytes();
        bytes.extend_from_slice(&long_line);
        bytes.push(b'\n');
        bytes.extend_from_slice(good.as_bytes());
        // A line of exactly the limit is still read (it is damaged, not too long).
        bytes.extend_from_slice(&vec![b'x'; MAX_LINE_BYTES]);
        bytes.push(b'\n');
        // A cut-off last line past the limit is a cut-off line, not a skipped one.
        bytes.extend_from_slice(&long_line);
        let mut reader = LogReader::new(std::io::BufReader::with_capacity(1024, &bytes[..]));
        let read: Vec<ReadLine> = reader.by_ref().collect();
        assert_eq!(read.iter().map(|l| l.line_no).collect::<Vec<_>>(), [1, 3]);
        assert!(reader.lines.held_bytes() <= MAX_LINE_BYTES + 1, "the reader held {} bytes", reader.lines.held_bytes());
        let diagnostics = reader.diagnostics();
        assert_eq!(diagnostics.n_lines, 5);
        assert_eq!(diagnostics.n_skipped, 2);
        assert_eq!(
            diagnostics.first_skipped[0],
            (2, format!("longer than 65536 bytes ({} bytes)", 3 * MAX_LINE_BYTES))
        );
        assert_eq!(diagnostics.first_skipped[1].0, 4);
        assert!(diagnostics.truncated_last_line);
    }

    #[test]
    fn extra_fields_after_timestamp_are_ignored() {
        let line = "1> Event: Internal event | System Time: 2026-11-24 04:43:13 | Logical Clock: 3 | Queue Length: 0 | Timestamp: 2026-11-24T04:43:13.5Z | Vector: [1, 2]";
        let (record, precision) = parse_line(line).unwrap();
        assert_eq!(record.time_us, 1_795_495_393_500_000);
        assert_eq!(precision, TimePrecision::Micros);
    }

    proptest! {
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = LogReader::new(&bytes[..]).count();
        }

        #[test]
        fn text_round_trips(machine in 1u32..100, clock in any::<u64>(), queue in any::<u64>(), time_us in 0i64..253_402_300_799_000_000, to in proptest::collection::btree_set(1u32..100, 1..5)) {
            let record = Record::new(machine, Event::Sent { to: to.into_iter().collect() }, clock, queue, time_us);
            let bytes = written(LogFormat::Text, std::slice::from_ref(&record));
            let read: Vec<_> = LogReader::new(&bytes[..]).collect();
            prop_assert_eq!(&read[0].record, &record);
        }
    }
}
