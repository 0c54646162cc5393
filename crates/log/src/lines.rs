//! A log's lines as bytes, none of them held past [`MAX_LINE_BYTES`]: the one
//! place where a log file is cut into lines, for the reader of records
//! ([`crate::LogReader`]) and for the tools that copy lines as they are
//! (`clocklab check` showing a violation's lines, the diagram's panel,
//! ShiViz's event text). A crash can leave gigabytes of NUL bytes without a
//! newline, and a damaged file a line of any length; past the limit a line's
//! bytes are read through and counted, never kept.

use std::io::{self, BufRead};

/// The longest line the reader reads, in bytes, newline excluded: a line of
/// clocklab's is a few hundred bytes (a vector clock of 1,000 machines is
/// under 10 KiB), so anything longer is damage, skipped and reported.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What one read of a line gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineRead {
    /// The end of the input.
    End,
    /// A line in the buffer, with its newline if it had one.
    Line,
    /// A line longer than [`MAX_LINE_BYTES`], of this many bytes (newline
    /// excluded), skipped; `complete` if it ended with a newline.
    TooLong { len: u64, complete: bool },
}

/// Reads the next line of `input` into `buf`, keeping at most
/// [`MAX_LINE_BYTES`] of it: past that the rest of the line is consumed
/// and counted, never held.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<LineRead> {
    buf.clear();
    let mut len = 0u64;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(match (len, too_long) {
                (0, _) => LineRead::End,
                (len, true) => LineRead::TooLong { len, complete: false },
                (_, false) => LineRead::Line,
            });
        }
        let (taken, ends) = match memchr::memchr(b'\n', available) {
            Some(idx) => (idx + 1, true),
            None => (available.len(), false),
        };
        len += taken as u64;
        if !too_long {
            if len - u64::from(ends) > MAX_LINE_BYTES as u64 {
                too_long = true;
                buf.clear();
            } else {
                // Grown by doubling, but never past the longest line kept.
                let needed = buf.len() + taken;
                if needed > buf.capacity() {
                    let capacity = needed.next_power_of_two().min(MAX_LINE_BYTES + 1).max(needed);
                    buf.reserve_exact(capacity - buf.len());
                }
                buf.extend_from_slice(&available[..taken]);
            }
        }
        input.consume(taken);
        if ends {
            return Ok(if too_long { LineRead::TooLong { len: len - 1, complete: true } } else { LineRead::Line });
        }
    }
}

/// One line as [`RawLines`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawLine<'a> {
    /// The line's bytes, without its newline (nor a `\r` before it).
    Text(&'a [u8]),
    /// A line longer than [`MAX_LINE_BYTES`]: its length in bytes (newline
    /// excluded), and whether it ended with a newline (a cut-off last line
    /// did not). Its bytes were not kept.
    TooLong {
        /// Its length in bytes.
        len: u64,
        /// Whether a newline ended it.
        complete: bool,
    },
}

impl RawLine<'_> {
    /// The line as text for a person: its bytes (invalid UTF-8 replaced),
    /// or for a line past the limit, what it was.
    pub fn to_text(&self) -> String {
        match *self {
            RawLine::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            RawLine::TooLong { len, .. } => {
                format!("(a line of {len} bytes, longer than the {MAX_LINE_BYTES} a log line may have: not shown)")
            }
        }
    }
}

/// A log's lines as bytes, in file order, one by one, without parsing them.
#[derive(Debug)]
pub struct RawLines<R> {
    input: R,
    buf: Vec<u8>,
    /// Bytes of the input's buffer that the last line, given where it lay,
    /// took: consumed at the next call.
    lent: usize,
    /// The last line ended the input without a newline.
    unfinished: bool,
}

impl<R: BufRead> RawLines<R> {
    /// The lines of `input`.
    pub fn new(input: R) -> RawLines<R> {
        RawLines { input, buf: Vec::with_capacity(256), lent: 0, unfinished: false }
    }

    /// The next line, `None` at the end of the input.
    ///
    /// A line that the input's buffer holds whole is given where it lies,
    /// without a copy (most lines); one that goes past it is gathered.
    ///
    /// # Errors
    ///
    /// What reading the input failed with.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        self.input.consume(std::mem::take(&mut self.lent));
        self.unfinished = false;
        let in_place = match self.input.fill_buf() {
            Ok(available) => memchr::memchr(b'\n', available).filter(|&end| end <= MAX_LINE_BYTES),
            Err(_) => None,
        };
        let line = match in_place {
            Some(end) => {
                self.lent = end + 1;
                // The buffer is still there: `fill_buf` gives it back as it is.
                &self.input.fill_buf()?[..end]
            }
            None => match read_line(&mut self.input, &mut self.buf)? {
                LineRead::End => return Ok(None),
                LineRead::TooLong { len, complete } => return Ok(Some(RawLine::TooLong { len, complete })),
                LineRead::Line => {
                    self.unfinished = !self.buf.ends_with(b"\n");
                    self.buf.strip_suffix(b"\n").unwrap_or(&self.buf)
                }
            },
        };
        Ok(Some(RawLine::Text(line.strip_suffix(b"\r").unwrap_or(line))))
    }

    /// Whether the last line given ended the input without a newline: its
    /// writer may have stopped in the middle of it.
    pub fn last_unfinished(&self) -> bool {
        self.unfinished
    }

    /// How many bytes the reader holds for a line (at most
    /// [`MAX_LINE_BYTES`] and its newline, whatever the input).
    pub fn held_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_lines_never_hold_a_line_past_the_limit() {
        let mut bytes = b"first\r\n".to_vec();
        bytes.extend(std::iter::repeat_n(0u8, 10 * MAX_LINE_BYTES));
        bytes.extend_from_slice(b"\nthird\n");
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES));
        bytes.extend_from_slice(b"\n");
        bytes.extend(std::iter::repeat_n(b'y', 2 * MAX_LINE_BYTES));
        let mut lines = RawLines::new(io::BufReader::with_capacity(4096, &bytes[..]));
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            seen.push(match line {
                RawLine::Text(text) => format!("text of {} bytes", text.len()),
                RawLine::TooLong { len, complete } => format!("{len} bytes skipped, complete {complete}"),
            });
        }
        assert_eq!(
            seen,
            [
                "text of 5 bytes".to_string(),
                format!("{} bytes skipped, complete true", 10 * MAX_LINE_BYTES),
                "text of 5 bytes".to_string(),
                format!("text of {MAX_LINE_BYTES} bytes"),
                format!("{} bytes skipped, complete false", 2 * MAX_LINE_BYTES),
            ]
        );
        assert!(lines.held_bytes() <= MAX_LINE_BYTES + 1, "the reader held {} bytes", lines.held_bytes());
        let too_long = RawLine::TooLong { len: 7_000_000, complete: true }.to_text();
        assert_eq!(too_long, "(a line of 7000000 bytes, longer than the 65536 a log line may have: not shown)");
    }

    proptest::proptest! {
        /// Lines given where they lie in the buffer and lines gathered across
        /// its refills are the same lines: the input's own, without `\n` or
        /// `\r\n`, whatever the buffer's size.
        #[test]
        fn lines_are_the_same_in_place_or_gathered(
            lines in proptest::collection::vec("[a-z0-9 \r]{0,40}", 0..40),
            capacity in 1usize..64,
            last_newline: bool,
        ) {
            let mut bytes = lines.join("\n").into_bytes();
            if last_newline && !lines.is_empty() {
                bytes.push(b'\n');
            }
            let mut expected: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
            if bytes.is_empty() || bytes.ends_with(b"\n") {
                expected.pop();
            }
            let expected: Vec<&[u8]> = expected.into_iter().map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
            let mut reader = RawLines::new(io::BufReader::with_capacity(capacity, &bytes[..]));
            let mut seen = Vec::new();
            while let Some(line) = reader.next_line().unwrap() {
                let RawLine::Text(text) = line else { panic!("a short line came as too long") };
                seen.push(text.to_vec());
            }
            proptest::prop_assert_eq!(seen, expected);
        }
    }
}
