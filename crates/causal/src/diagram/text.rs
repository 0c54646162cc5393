//! The log lines of a detail chunk, kept whole but small: each line is cut
//! into a template (its text with every run of digits taken out) and the
//! numbers those runs held.
//!
//! A log's lines are a few templates filled with numbers that change little
//! from one line to the next (the time, the clocks, the queue), so a chunk
//! holds each template once and, per line, the template's number and each
//! number as its difference from the same template's previous line. That is
//! a tenth of the text's bytes before compression, and compressing it costs
//! a tenth as much; the page puts a line back together only when its event
//! is selected. Any text comes back byte for byte: nothing here knows the
//! log's format.
//!
//! The bytes ([`LineTexts::write_to`]): the number of templates, each
//! template as its length and bytes, then per line its template's number,
//! then per line its numbers: for each group of [`GROUP`] of them, in the
//! template's order, a mask of those that changed since the template's
//! previous line (bit `k` for its `k`-th), then the difference of each that
//! did. Most numbers of a line are those of the line before it (the date,
//! the machine, often the queue), so a line is a few bytes.
//! In a template a number is the byte [`SLOT`] followed by its width: 0 for
//! a number written without leading zeros, else the number of digits it is
//! written in, padded with zeros where it has fewer (the page pads it back):
//! a line's `09` and the next line's `10` both fit a slot two digits wide,
//! and so their lines share a template. A NUL byte of the text
//! itself is [`SLOT`] followed by [`NUL`]. A run of more than [`MAX_DIGITS`]
//! digits (a double holds it inexactly) is cut into several numbers, all
//! but the first [`MAX_DIGITS`] wide: an HLC's microseconds are 16 digits,
//! and kept as text they made every line a template of its own.

use std::collections::BTreeMap;

use super::data::Varints;

/// Marks a number (or, followed by [`NUL`], a NUL byte) in a template.
pub const SLOT: u8 = 0;

/// After [`SLOT`]: the text's own NUL byte, not a number.
pub const NUL: u8 = 0x10;

/// The longest run of digits taken out as a number: below 2^53, which the
/// page's doubles hold exactly.
pub const MAX_DIGITS: usize = 15;

/// Numbers per mask of changed numbers: a mask is a varint below 2^32,
/// which the page reads with its 32-bit operators.
pub const GROUP: usize = 32;

/// How many templates of the last lines a line is matched against before
/// it is cut and its template looked up.
const RECENT: usize = 4;

/// One part of a template: a text (a range of the template's bytes) and
/// what follows it.
#[derive(Clone, Copy, Debug)]
struct Part {
    start: u32,
    end: u32,
    /// The width of the number after the text, [`NUL`] for a NUL byte, or
    /// [`END`] if the template ends with the text.
    next: u8,
}

/// After a [`Part`]'s text: the template's end.
const END: u8 = 0xff;

/// The lines of one chunk, being gathered.
#[derive(Debug, Default)]
pub struct LineTexts {
    /// The templates, in the order of their first line.
    templates: Vec<Box<[u8]>>,
    /// Each template as the parts a line is matched against.
    layouts: Vec<Box<[Part]>>,
    /// Each template's number.
    index: BTreeMap<Box<[u8]>, u32>,
    /// Per template, its numbers on its last line.
    last: Vec<Vec<u64>>,
    /// Per line, its template's number.
    ids: Varints,
    /// Per line, its numbers as differences.
    numbers: Varints,
    /// The templates of the last lines, the last first: tried before any
    /// other.
    recent: [Option<u32>; RECENT],
    /// The line being read: its template (when it is cut) and its numbers.
    template: Vec<u8>,
    values: Vec<u64>,
}

impl LineTexts {
    /// Adds one line (without its newline).
    pub fn push(&mut self, line: &[u8]) {
        let id = match self.recent_match(line) {
            Some(id) => id,
            None => {
                self.cut(line);
                self.template_id()
            }
        };
        self.ids.unsigned(u64::from(id));
        let last = &mut self.last[id as usize];
        for (last, values) in last.chunks_mut(GROUP).zip(self.values.chunks(GROUP)) {
            let changed = last.iter().zip(values).enumerate().filter(|(_, (last, value))| last != value);
            self.numbers.unsigned(changed.map(|(k, _)| 1u64 << k).sum());
            for (last, &value) in last.iter_mut().zip(values) {
                if *last != value {
                    self.numbers.signed(value as i64 - *last as i64);
                    *last = value;
                }
            }
        }
    }

    /// The template of one of the last lines that `line` fits, with
    /// `self.values` its numbers: most lines are of a template just seen,
    /// and walking a template along a line costs less than cutting the line
    /// and looking its template up.
    fn recent_match(&mut self, line: &[u8]) -> Option<u32> {
        let k = (0..RECENT).find(|&k| {
            self.recent[k].is_some_and(|id| {
                let id = id as usize;
                fill_values(&self.templates[id], &self.layouts[id], line, &mut self.values)
            })
        })?;
        let id = self.recent[k];
        self.recent.copy_within(0..k, 1);
        self.recent[0] = id;
        id
    }

    /// Cuts `line` into `self.template` and `self.values`.
    fn cut(&mut self, line: &[u8]) {
        self.template.clear();
        self.values.clear();
        let mut at = 0;
        while let Some(&byte) = line.get(at) {
            let start = at;
            if byte.is_ascii_digit() {
                let value;
                (at, value) = digit_run(line, at);
                let digits = &line[start..at];
                if digits.len() <= MAX_DIGITS {
                    self.template.extend_from_slice(&[SLOT, width_of(digits)]);
                    self.values.push(value);
                } else {
                    for (k, (piece, value)) in long_run(digits).enumerate() {
                        let width = if k == 0 { width_of(piece) } else { MAX_DIGITS as u8 };
                        self.template.extend_from_slice(&[SLOT, width]);
                        self.values.push(value);
                    }
                }
            } else if byte == SLOT {
                self.template.extend_from_slice(&[SLOT, NUL]);
                at += 1;
            } else {
                at = text_end(line, at);
                self.template.extend_from_slice(&line[start..at]);
            }
        }
    }

    /// The number of `self.template`, given one if it is new.
    fn template_id(&mut self) -> u32 {
        let id = match self.index.get(self.template.as_slice()) {
            Some(&id) => id,
            None => {
                let id = self.templates.len() as u32;
                let template: Box<[u8]> = self.template.as_slice().into();
                self.layouts.push(layout(&template));
                self.templates.push(template.clone());
                self.index.insert(template, id);
                self.last.push(vec![0; self.values.len()]);
                id
            }
        };
        self.recent.copy_within(0..RECENT - 1, 1);
        self.recent[0] = Some(id);
        id
    }

    /// Appends the chunk's lines to `out` (see the module's description).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut head = Varints::default();
        head.unsigned(self.templates.len() as u64);
        for template in &self.templates {
            head.unsigned(template.len() as u64);
            head.0.extend_from_slice(template);
        }
        out.extend_from_slice(&head.0);
        out.extend_from_slice(&self.ids.0);
        out.extend_from_slice(&self.numbers.0);
    }
}

/// The parts of `template`.
fn layout(template: &[u8]) -> Box<[Part]> {
    let mut parts = Vec::new();
    let mut start = 0;
    loop {
        let end = template[start..].iter().position(|&byte| byte == SLOT).map_or(template.len(), |k| start + k);
        let next = template.get(end + 1).copied().unwrap_or(END);
        parts.push(Part { start: start as u32, end: end as u32, next });
        if next == END {
            return parts.into();
        }
        start = end + 2;
    }
}

/// Whether `line` fits `template` (laid out as `parts`); if so, `values`
/// holds its numbers. The template's texts hold no digit and no NUL byte
/// (those are slots), so a line that has the template's texts with a run of
/// digits that fits the slot between each two is the template filled with
/// those numbers: the page puts it back byte for byte.
fn fill_values(template: &[u8], parts: &[Part], line: &[u8], values: &mut Vec<u64>) -> bool {
    values.clear();
    let mut at = 0;
    let mut parts = parts.iter();
    while let Some(part) = parts.next() {
        let text = &template[part.start as usize..part.end as usize];
        if !line.get(at..at + text.len()).is_some_and(|here| same(here, text)) {
            return false;
        }
        at += text.len();
        match part.next {
            END => return at == line.len(),
            NUL if line.get(at) == Some(&0) => at += 1,
            NUL => return false,
            width => {
                let start = at;
                let value;
                (at, value) = digit_run(line, at);
                let digits = &line[start..at];
                if digits.len() <= MAX_DIGITS {
                    if !fits(digits, width) {
                        return false;
                    }
                    values.push(value);
                    continue;
                }
                // A long run is several slots in a row, with empty texts
                // between them.
                for (k, (piece, value)) in long_run(digits).enumerate() {
                    let width = if k == 0 {
                        width
                    } else {
                        match parts.next() {
                            Some(part) if part.start == part.end => part.next,
                            _ => return false,
                        }
                    };
                    if !fits(piece, width) {
                        return false;
                    }
                    values.push(value);
                }
            }
        }
    }
    false
}

/// Whether `a` and `b`, of the same length, are the same: eight bytes at a
/// time, in line, since most texts between numbers are a few bytes and a
/// call to `memcmp` cost more than comparing them.
fn same(a: &[u8], b: &[u8]) -> bool {
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
    let (mut a, mut b) = (a.chunks_exact(8), b.chunks_exact(8));
    a.by_ref().zip(b.by_ref()).all(|(a, b)| word(a) == word(b))
        && a.remainder().iter().zip(b.remainder()).all(|(a, b)| a == b)
}

/// Whether the number `digits` fits a slot `width` wide.
fn fits(digits: &[u8], width: u8) -> bool {
    match width {
        _ if digits.is_empty() => false,
        0 => width_of(digits) == 0,
        width => digits.len() == usize::from(width),
    }
}

/// The end of the run of digits of `line` that starts at `at`, and its
/// value (meaningful for at most 19 digits), read in one pass.
fn digit_run(line: &[u8], mut at: usize) -> (usize, u64) {
    let mut value = 0u64;
    while let Some(digit) = line.get(at).map(|b| b.wrapping_sub(b'0')).filter(|&d| d < 10) {
        value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        at += 1;
    }
    (at, value)
}

/// The width a number is written in: the number of its digits if it is
/// padded with zeros, else 0.
fn width_of(digits: &[u8]) -> u8 {
    if digits.len() > 1 && digits[0] == b'0' { digits.len() as u8 } else { 0 }
}

/// A run of more than [`MAX_DIGITS`] digits (an instant in microseconds)
/// as numbers of at most MAX_DIGITS digits from its end, each but the
/// first padded to all of them: their digits and values.
fn long_run(digits: &[u8]) -> impl Iterator<Item = (&[u8], u64)> {
    let (first, rest) = digits.split_at((digits.len() - 1) % MAX_DIGITS + 1);
    std::iter::once(first)
        .chain(rest.chunks(MAX_DIGITS))
        .map(|part| (part, part.iter().fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'))))
}

/// The end of the text of `line` from `at` on: its next digit or NUL byte,
/// or its end. Looked for eight bytes at a time: byte by byte, this was the
/// largest part of cutting a line.
fn text_end(line: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(bytes) = line.get(at..at + 8) {
        let word = u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
        // A byte is a digit when it is below 10 once XORed with `0`, and
        // `(x - 1) & !x & 0x80` flags the bytes of `x` below 1 (bit-twiddling
        // hacks' `hasless`). A borrow can flag a byte after a flagged one,
        // never before: the lowest flag, the first such byte, is exact.
        let shifted = word ^ (ONES * u64::from(b'0'));
        let digits = shifted.wrapping_sub(ONES * 10) & !shifted & HIGHS;
        let nuls = word.wrapping_sub(ONES) & !word & HIGHS;
        let found = digits | nuls;
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < line.len() && !line[at].is_ascii_digit() && line[at] != SLOT {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The page's decoder (`decodeChunk` and `lineOf` in diagram.js), in
    /// Rust: `n` lines from `bytes`.
    fn decode(bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut at = 0;
        let read = |at: &mut usize| {
            let (mut value, mut scale) = (0u64, 1u64);
            loop {
                let byte = bytes[*at];
                *at += 1;
                value += u64::from(byte & 0x7f) * scale;
                scale *= 128;
                if byte & 0x80 == 0 {
                    return value;
                }
            }
        };
        // Templates as text parts between numbers, and the numbers' widths.
        let mut templates: Vec<(Vec<Vec<u8>>, Vec<u8>)> = Vec::new();
        for _ in 0..read(&mut at) {
            let len = read(&mut at) as usize;
            let raw = bytes[at..at + len].to_vec();
            at += len;
            let (mut parts, mut widths) = (vec![Vec::new()], Vec::new());
            let mut k = 0;
            while k < raw.len() {
                if raw[k] == SLOT {
                    if raw[k + 1] == NUL {
                        parts.last_mut().unwrap().push(0);
                    } else {
                        widths.push(raw[k + 1]);
                        parts.push(Vec::new());
                    }
                    k += 2;
                } else {
                    parts.last_mut().unwrap().push(raw[k]);
                    k += 1;
                }
            }
            templates.push((parts, widths));
        }
        let ids: Vec<usize> = (0..n).map(|_| read(&mut at) as usize).collect();
        let mut last: Vec<Vec<i64>> = templates.iter().map(|(_, widths)| vec![0; widths.len()]).collect();
        let unzig = |v: u64| if v % 2 == 0 { (v / 2) as i64 } else { -(v.div_ceil(2) as i64) };
        ids.iter()
            .map(|&id| {
                let (parts, widths) = &templates[id];
                let mut mask = 0;
                for (k, last) in last[id].iter_mut().enumerate() {
                    if k % GROUP == 0 {
                        mask = read(&mut at);
                    }
                    if mask >> (k % GROUP) & 1 == 1 {
                        *last += unzig(read(&mut at));
                    }
                }
                let mut line = parts[0].clone();
                for (k, &width) in widths.iter().enumerate() {
                    let digits = format!("{:0width$}", last[id][k], width = usize::from(width));
                    line.extend_from_slice(digits.as_bytes());
                    line.extend_from_slice(&parts[k + 1]);
                }
                line
            })
            .collect()
    }

    /// `template` filled with `values`, as the page fills it.
    fn render(template: &[u8], values: &[u64]) -> Vec<u8> {
        let (mut out, mut values, mut k) = (Vec::new(), values.iter(), 0);
        while let Some(&byte) = template.get(k) {
            if byte != SLOT {
                out.push(byte);
            } else if template[k + 1] == NUL {
                out.push(0);
            } else {
                let width = usize::from(template[k + 1]);
                out.extend_from_slice(format!("{:0width$}", values.next().unwrap()).as_bytes());
            }
            k += if byte == SLOT { 2 } else { 1 };
        }
        out
    }

    fn round_trip(lines: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
        let mut texts = LineTexts::default();
        for line in lines {
            texts.push(line);
        }
        let mut bytes = Vec::new();
        texts.write_to(&mut bytes);
        (decode(&bytes, lines.len()), texts.templates.len())
    }

    #[test]
    fn log_lines_come_back_byte_for_byte_from_few_templates() {
        let vectors: Vec<Vec<u8>> = (0..2u64)
            .map(|shift| {
                let numbers: Vec<String> = (0..70u64).map(|k| (k * k + shift * (k % 3)).to_string()).collect();
                format!("Vector Clock: [{}]", numbers.join(", ")).into_bytes()
            })
            .collect();
        let lines: Vec<&[u8]> = vec![
            b"1> Event: Internal event | System Time: 2026-11-24 04:43:09 | Logical Clock: 9 | Queue Length: 0",
            b"1> Event: Internal event | System Time: 2026-11-24 04:43:10 | Logical Clock: 10 | Queue Length: 0",
            b"1> Event: Sent message to machines 2, 3 | System Time: 2026-11-24 04:43:10 | Logical Clock: 11 | \
              Queue Length: 12 | Timestamp: 2026-11-24T04:43:10.000917Z | Vector Clock: [11, 0, 3]",
            b"1> Event: Internal event | System Time: 2026-11-24 04:43:11 | Logical Clock: 12 | Queue Length: 0",
            b"{\"machine\":1,\"event\":\"internal\",\"logical_clock\":13}",
            b"",
            b"007 0 00 10000000000000000000 x 0000000000000000000000000000001",
            b"HLC: 1767225600123456:3 | Physical Clock: 2026-01-01T00:00:00.123456Z",
            b"HLC: 1767225600123999:0 | Physical Clock: 2026-01-01T00:00:00.123999Z",
            b"nul \0 here 5\0",
            "caf\u{e9} 12 \u{1F600}3".as_bytes(),
            // More numbers than a mask holds, some changing.
            &vectors[0],
            &vectors[1],
        ];
        let (decoded, n_templates) = round_trip(&lines);
        for (line, decoded) in lines.iter().zip(&decoded) {
            assert_eq!(String::from_utf8_lossy(decoded), String::from_utf8_lossy(line));
        }
        // The first, second and fourth lines share a template (the first's
        // `09` is padded, and the `10` after it fits its slot two digits
        // wide), and so do the two HLC lines and the last two.
        assert_eq!(n_templates, lines.len() - 4);
    }

    #[test]
    fn the_text_ends_at_the_first_digit_or_nul_byte() {
        // Every byte value, at every place of a word and past it.
        for byte in 0..=255u8 {
            for place in 0..20 {
                let mut line = vec![b'x'; 24];
                line[place] = byte;
                let expected = if byte.is_ascii_digit() || byte == 0 { place } else { line.len() };
                assert_eq!(text_end(&line, 0), expected, "byte {byte:#x} at {place}");
                // A digit after it does not hide it.
                line[place + 1] = b'7';
                let expected = if byte.is_ascii_digit() || byte == 0 { place } else { place + 1 };
                assert_eq!(text_end(&line, 0), expected, "byte {byte:#x} at {place}, a digit after it");
            }
        }
    }

    /// `line` with its runs of digits replaced, in turn, by `runs`.
    fn with_runs(line: &str, runs: &[String]) -> String {
        let mut runs = runs.iter().cycle();
        let mut out = String::new();
        let mut in_run = false;
        for c in line.chars() {
            if c.is_ascii_digit() {
                if !in_run {
                    out.push_str(runs.next().map_or("", String::as_str));
                }
            } else {
                out.push(c);
            }
            in_run = c.is_ascii_digit();
        }
        out
    }

    proptest! {
        #[test]
        fn a_line_fits_its_own_template_and_only_templates_that_give_it_back(
            line in "([0-9]{0,40}|[a-z \\x00|:]{0,3}){0,8}",
            runs in proptest::collection::vec("[0-9]{1,35}", 1..4),
        ) {
            // Lines of the same texts with other numbers: some fit the
            // template, some do not (another width, another length of run).
            let mut texts = LineTexts::default();
            texts.cut(line.as_bytes());
            let template = texts.template.clone();
            let parts = layout(&template);
            let others = [line.clone(), with_runs(&line, &runs), format!("{line}1"), format!("0{line}"), line.replace(|c: char| c.is_ascii_digit(), "")];
            for other in others {
                texts.cut(other.as_bytes());
                let mut values = Vec::new();
                let fits = fill_values(&template, &parts, other.as_bytes(), &mut values);
                if texts.template == template {
                    prop_assert!(fits, "{:?} does not fit its own template", other);
                    prop_assert_eq!(&values, &texts.values);
                }
                if fits {
                    let rendered = render(&template, &values);
                    prop_assert_eq!(String::from_utf8_lossy(&rendered), other.as_str(), "in {:?}", line);
                }
            }
        }

        #[test]
        fn any_text_comes_back(lines in proptest::collection::vec("([0-9]{0,40}|[a-z \\x00é|:.-]{0,5}){0,8}", 1..20)) {
            let refs: Vec<&[u8]> = lines.iter().map(|line| line.as_bytes()).collect();
            let (decoded, _) = round_trip(&refs);
            for (line, decoded) in refs.iter().zip(&decoded) {
                prop_assert_eq!(decoded.as_slice(), *line);
            }
        }
    }
}
