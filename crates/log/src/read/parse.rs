//! One line read as a record: clocklab's text and JSON Lines and the
//! reference implementation's text, each line recognised by itself.

use clocklab_model::HlcStamp;

use super::{LineError, TimePrecision};
use crate::record::{Event, Recipients, Record};
use crate::write::JsonLine;

/// The parser of one line in any of the known formats. It remembers the
/// last date and the last second it read: a log's lines share few dates,
/// and working out a date's day number was the largest part of reading a
/// time.
#[derive(Debug, Default)]
pub(super) struct LineParser {
    /// The last `YYYY-MM-DD` read, and its days since the Unix epoch.
    last_date: Option<([u8; 10], i64)>,
    /// The last `YYYY-MM-DD HH:MM:SS` read (any one byte between date and
    /// time), and its seconds since the epoch: a machine's consecutive
    /// lines often share their second.
    last_second: Option<([u8; 19], i64)>,
}

impl LineParser {
    pub(super) fn parse(&mut self, line: &str) -> Result<(Record, TimePrecision), LineError> {
        if line.starts_with('{') { self.parse_json(line) } else { self.parse_text(line) }
    }

    fn parse_text(&mut self, line: &str) -> Result<(Record, TimePrecision), LineError> {
        self.parse_text_with(line, true)
    }

    /// [`LineParser::parse_text`]; `canonical` reads the usual fields at
    /// their usual places first (the tests compare it with reading every
    /// field by itself).
    fn parse_text_with(&mut self, line: &str, canonical: bool) -> Result<(Record, TimePrecision), LineError> {
        // `let … else` rather than `ok_or`: an error built on every line only
        // to be dropped showed in profiles.
        let Some((id, rest)) = split_machine_id(line) else { return Err(LineError::NoMachineId) };
        let machine = match ascii_number(id) {
            Some(machine) => machine,
            None => id.parse().map_err(|_| LineError::NoMachineId)?,
        };
        let Some(rest) = rest.strip_prefix("Event: ") else { return Err(LineError::MissingField("Event")) };
        let mut fields = Fields::new(rest);
        let event = parse_event(fields.next().unwrap_or_default())?;
        let mut system_time = None;
        let mut logical_clock = None;
        let mut queue_length = None;
        let mut timestamp = None;
        let mut vector_clock = None;
        let mut hlc = None;
        let mut physical_clock_us = None;
        if !canonical {
        } else if let Some((canonical, rest)) = CanonicalFields::read(fields.rest.unwrap_or_default()) {
            system_time = Some(canonical.system_time);
            logical_clock = Some(canonical.logical_clock);
            queue_length = Some(canonical.queue_length);
            timestamp = canonical.timestamp;
            fields.rest = rest;
        }
        for field in fields {
            // Keys hold no colon, so the first one ends the key.
            let Some((key, value)) = field.split_once(':') else { continue };
            let Some(value) = value.strip_prefix(' ') else { continue };
            match key {
                "System Time" => system_time = Some(value),
                "Logical Clock" => logical_clock = Some(number::<u64>("Logical Clock", value)?),
                "Queue Length" => queue_length = Some(number::<u64>("Queue Length", value)?),
                "Timestamp" => timestamp = Some(value),
                "Vector Clock" => vector_clock = Some(parse_vector(value)?),
                "HLC" => hlc = Some(parse_hlc(value)?),
                "Physical Clock" => physical_clock_us = Some(self.timestamp_us_of("Physical Clock", value)?),
                // Further `Key: value` fields may follow; they are not ours to read.
                _ => {}
            }
        }
        let Some(system_time) = system_time else { return Err(LineError::MissingField("System Time")) };
        let Some(logical_clock) = logical_clock else { return Err(LineError::MissingField("Logical Clock")) };
        let Some(queue_length) = queue_length else { return Err(LineError::MissingField("Queue Length")) };
        let (time_us, precision) = match timestamp {
            Some(timestamp) => (self.timestamp_us(timestamp)?, TimePrecision::Micros),
            None => (self.second_of("System Time", system_time)? * 1_000_000, TimePrecision::Seconds),
        };
        let record =
            Record { machine, event, logical_clock, queue_length, time_us, vector_clock, hlc, physical_clock_us };
        Ok((record, precision))
    }

    fn parse_json(&mut self, line: &str) -> Result<(Record, TimePrecision), LineError> {
        let json: JsonLine = serde_json::from_str(line).map_err(|error| LineError::Json(error.to_string()))?;
        let missing = |field| LineError::MissingField(field);
        let event = match json.event.as_str() {
            "initialized" => {
                Event::Initialized { host: json.host, port: json.port, rate: json.rate.ok_or(missing("rate"))? }
            }
            "connected" => {
                Event::Connected { peer: json.peer.ok_or(missing("peer"))?, host: json.host, port: json.port }
            }
            "internal" => Event::Internal,
            "sent" => Event::Sent { to: json.to.ok_or(missing("to"))?.into() },
            "processed" => Event::Processed { from: json.from, clock: json.clock },
            "disconnected" => Event::Disconnected { peer: json.peer.ok_or(missing("peer"))? },
            "behind" => Event::Behind {
                lateness_us: json.lateness_us.ok_or(missing("lateness_us"))?,
                tick: json.tick.ok_or(missing("tick"))?,
            },
            "unprocessed" => Event::Unprocessed {
                from: json.from.ok_or(missing("from"))?,
                clock: json.clock.ok_or(missing("clock"))?,
            },
            "lost" => Event::Lost { to: json.peer.ok_or(missing("peer"))?, clock: json.clock.ok_or(missing("clock"))? },
            "held" => Event::Held { to: json.peer.ok_or(missing("peer"))?, clock: json.clock.ok_or(missing("clock"))? },
            "crashed" => Event::Crashed,
            "restarted" => Event::Restarted {
                host: json.host,
                port: json.port,
                rate: json.rate.ok_or(missing("rate"))?,
                recovered: json.recovered.ok_or(missing("recovered"))?,
            },
            "clock_changed" => {
                Event::ClockChanged { step_us: json.step_us.ok_or(missing("step_us"))?, drift_ppb: json.drift_ppb }
            }
            "stopped" => Event::Stopped,
            other => return Err(LineError::UnknownEvent(other.to_string())),
        };
        let (time_us, precision) = match (json.time_us, json.timestamp) {
            (Some(time_us), _) => (time_us, TimePrecision::Micros),
            (None, Some(timestamp)) => (self.timestamp_us(&timestamp)?, TimePrecision::Micros),
            (None, None) => (self.second_of("system_time", &json.system_time)? * 1_000_000, TimePrecision::Seconds),
        };
        let record = Record {
            machine: json.machine,
            event,
            logical_clock: json.logical_clock,
            queue_length: json.queue_length,
            time_us,
            vector_clock: json.vector_clock,
            hlc: json.hlc.map(|hlc| HlcStamp { l_us: hlc.l_us, c: hlc.c }),
            physical_clock_us: json.physical_clock_us,
        };
        Ok((record, precision))
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fewer or no fraction digits allowed).
    fn timestamp_us(&mut self, value: &str) -> Result<i64, LineError> {
        self.timestamp_us_of("Timestamp", value)
    }

    /// [`LineParser::timestamp_us`] for the field `field`.
    fn timestamp_us_of(&mut self, field: &'static str, value: &str) -> Result<i64, LineError> {
        // The form clocklab writes, with six fraction digits: read at known
        // places (what the general reading below gives for it).
        let bytes = value.as_bytes();
        if bytes.len() == 27
            && bytes[10] == b'T'
            && bytes[19] == b'.'
            && bytes[26] == b'Z'
            && let Some(micros) = ascii_number::<i64>(&value[20..26])
            && let Some(second) = self.civil_second(&value[..19])
        {
            return Ok(second * 1_000_000 + micros);
        }
        self.timestamp_us_in_general(field, value)
    }

    /// [`LineParser::timestamp_us_of`], for any form.
    fn timestamp_us_in_general(&mut self, field: &'static str, value: &str) -> Result<i64, LineError> {
        let bad = || LineError::BadValue { field, value: value.to_string() };
        let body = value.strip_suffix('Z').ok_or_else(bad)?;
        // The first `.`, found without a searcher: the date before it is short.
        let (date, fraction) = match body.bytes().position(|byte| byte == b'.') {
            Some(dot) => (&body[..dot], &body[dot + 1..]),
            None => (body, ""),
        };
        if date.len() != 19
            || date.as_bytes()[10] != b'T'
            || fraction.len() > 6
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let second = self.second_of(field, date)?;
        // The fraction is at most six digits, checked above.
        let micros = fraction.bytes().fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0'))
            * 10i64.pow(6 - fraction.len() as u32);
        Ok(second * 1_000_000 + micros)
    }

    /// Seconds since the epoch of `YYYY-MM-DD HH:MM:SS` (or with a `T`
    /// between date and time), UTC.
    fn second_of(&mut self, field: &'static str, value: &str) -> Result<i64, LineError> {
        self.civil_second(value).ok_or_else(|| LineError::BadValue { field, value: value.to_string() })
    }

    /// Seconds since the epoch of `YYYY-MM-DD HH:MM:SS` (the separator
    /// between date and time may be any one byte, `T` in RFC 3339), UTC, for
    /// years 0 to 9999 of the proleptic Gregorian calendar. The digits are
    /// read in place.
    fn civil_second(&mut self, value: &str) -> Option<i64> {
        let bytes = value.as_bytes();
        if let Some((last, second)) = &self.last_second
            && last.as_slice() == bytes
        {
            return Some(*second);
        }
        let second = self.civil_second_anew(bytes)?;
        self.last_second = Some((bytes.try_into().ok()?, second));
        Some(second)
    }

    /// [`LineParser::civil_second`] of a time not read just before.
    fn civil_second_anew(&mut self, bytes: &[u8]) -> Option<i64> {
        if bytes.len() != 19 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
            return None;
        }
        let date: [u8; 10] = bytes[..10].try_into().ok()?;
        let days = match self.last_date {
            Some((last, days)) if last == date => days,
            _ => {
                let days = days_of_date(&date)?;
                self.last_date = Some((date, days));
                days
            }
        };
        let (hour, minute, second) = (two_digits(bytes, 11)?, two_digits(bytes, 14)?, two_digits(bytes, 17)?);
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        Some(days * 86_400 + i64::from(hour * 3_600 + minute * 60 + second))
    }
}

/// The two ASCII digits at `at`.
fn two_digits(bytes: &[u8], at: usize) -> Option<u32> {
    let (tens, units) = (bytes[at], bytes[at + 1]);
    (tens.is_ascii_digit() && units.is_ascii_digit()).then(|| u32::from(tens - b'0') * 10 + u32::from(units - b'0'))
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (a real date: the month's last day
/// at most, leap years included).
fn days_of_date(date: &[u8; 10]) -> Option<i64> {
    let year = i64::from(two_digits(date, 0)? * 100 + two_digits(date, 2)?);
    let (month, day) = (i64::from(two_digits(date, 5)?), i64::from(two_digits(date, 8)?));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    // Howard Hinnant's `days_from_civil`: years start in March, so that the
    // leap day is the last day of a year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The fields every line of clocklab's and the reference's starts with,
/// in the order they write them, with plain values: `System Time: <19
/// bytes> | Logical Clock: <digits> | Queue Length: <digits>`, then
/// `| Timestamp: <value>` in clocklab's lines. Read at known places, without
/// looking for each separator; any other line is read field by field, which
/// gives the same values for these.
struct CanonicalFields<'a> {
    system_time: &'a str,
    logical_clock: u64,
    queue_length: u64,
    timestamp: Option<&'a str>,
}

impl<'a> CanonicalFields<'a> {
    /// The fields at the start of `fields` (the line after its event), and
    /// the fields after them, if the line starts with them as written.
    fn read(fields: &'a str) -> Option<(CanonicalFields<'a>, Option<&'a str>)> {
        let rest = fields.strip_prefix("System Time: ")?;
        // Without a `|`, the 19 bytes hold no separator of their own.
        let system_time = rest.get(..19).filter(|time| !time.bytes().any(|byte| byte == b'|'))?;
        let rest = rest[19..].strip_prefix(" | Logical Clock: ")?;
        let (logical_clock, rest) = leading_number(rest)?;
        let rest = rest.strip_prefix(" | Queue Length: ")?;
        let (queue_length, rest) = leading_number(rest)?;
        let mut canonical = CanonicalFields { system_time, logical_clock, queue_length, timestamp: None };
        if rest.is_empty() {
            return Some((canonical, None));
        }
        let rest = rest.strip_prefix(" | Timestamp: ")?;
        // A timestamp as clocklab writes it, ending the line: without a `|`,
        // it is the last field (checked by hand: shorter than a search).
        if rest.len() == 27 && !rest.bytes().any(|byte| byte == b'|') {
            canonical.timestamp = Some(rest);
            return Some((canonical, None));
        }
        let mut after = Fields::new(rest);
        canonical.timestamp = after.next();
        Some((canonical, after.rest))
    }
}

/// The number the digits at the start of `text` make, and what follows them.
fn leading_number(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    Some((ascii_number(&text[..digits])?, &text[digits..]))
}

/// `<id>> rest`: the machine id and the rest of the line.
fn split_machine_id(line: &str) -> Option<(&str, &str)> {
    let end = line.bytes().position(|byte| byte == b'>')?;
    Some((&line[..end], line[end + 1..].strip_prefix(' ')?))
}

/// The ` | `-separated fields of a line, found by looking for `|` alone and
/// checking the spaces around it: splitting on a `&str` pattern builds a new
/// searcher per line, and even a searcher built once costs more than a byte
/// search on fields this short.
struct Fields<'a> {
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str) -> Fields<'a> {
        Fields { rest: Some(text) }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let text = self.rest?;
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(found) = memchr::memchr(b'|', &bytes[from..]) {
            let bar = from + found;
            if bar > 0 && bytes[bar - 1] == b' ' && bytes.get(bar + 1) == Some(&b' ') {
                self.rest = Some(&text[bar + 2..]);
                return Some(&text[..bar - 1]);
            }
            from = bar + 1;
        }
        self.rest = None;
        Some(text)
    }
}

/// `[1, 2, 3]`.
fn parse_vector(value: &str) -> Result<Vec<u64>, LineError> {
    let bad = || LineError::BadValue { field: "Vector Clock", value: value.to_string() };
    let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).ok_or_else(bad)?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(|part| part.trim().parse().map_err(|_| bad())).collect()
}

/// `<l>:<c>`.
fn parse_hlc(value: &str) -> Result<HlcStamp, LineError> {
    let bad = || LineError::BadValue { field: "HLC", value: value.to_string() };
    let (l, c) = value.split_once(':').ok_or_else(bad)?;
    Ok(HlcStamp { l_us: l.trim().parse().map_err(|_| bad())?, c: c.trim().parse().map_err(|_| bad())? })
}

fn number<T: std::str::FromStr + TryFrom<u64>>(field: &'static str, value: &str) -> Result<T, LineError> {
    match ascii_number(value) {
        Some(number) => Ok(number),
        None => value.trim().parse().map_err(|_| LineError::BadValue { field, value: value.to_string() }),
    }
}

/// `text` as a number when it is only ASCII digits (1 to 19 of them, so
/// that it fits a `u64`) and fits `T`: what `str::parse` gives for such
/// text, without its generality. `None` for anything else, which the caller
/// then gives to `str::parse`.
fn ascii_number<T: TryFrom<u64>>(text: &str) -> Option<T> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    let mut value = 0u64;
    for &byte in bytes {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
    }
    T::try_from(value).ok()
}

/// Parses the `Event:` text, in clocklab's wording or the reference's.
fn parse_event(text: &str) -> Result<Event, LineError> {
    let unknown = || LineError::UnknownEvent(text.to_string());
    if text == "Internal event" {
        return Ok(Event::Internal);
    }
    if text == "Stopped" {
        return Ok(Event::Stopped);
    }
    if let Some(rest) =
        text.strip_prefix("Sent message to machines ").or_else(|| text.strip_prefix("Sent message to machine "))
    {
        // One recipient is the common case (and every line of the reference's).
        let to = match ascii_number(rest) {
            Some(peer) => smallvec::smallvec![peer],
            None => rest.split(", ").map(|peer| number("Event", peer)).collect::<Result<Recipients, _>>()?,
        };
        return Ok(Event::Sent { to });
    }
    if let Some(rest) = text.strip_prefix("Processed message") {
        if rest.is_empty() {
            // The reference's wording: no sender, no clock.
            return Ok(Event::Processed { from: None, clock: None });
        }
        let (from, clock) = parse_from_clock(rest).ok_or_else(unknown)?;
        return Ok(Event::Processed { from: Some(from), clock: Some(clock) });
    }
    if let Some(rest) = text.strip_prefix("Unprocessed message") {
        let (from, clock) = parse_from_clock(rest).ok_or_else(unknown)?;
        return Ok(Event::Unprocessed { from, clock });
    }
    if let Some(rest) = text.strip_prefix("Disconnected from machine ") {
        return Ok(Event::Disconnected { peer: number("Event", rest)? });
    }
    if text == "Crashed" {
        return Ok(Event::Crashed);
    }
    if let Some(rest) = text.strip_prefix("Lost message to machine ") {
        let (to, clock) = rest.split_once(" with clock ").ok_or_else(unknown)?;
        return Ok(Event::Lost { to: number("Event", to)?, clock: number("Event", clock)? });
    }
    if let Some(rest) = text.strip_prefix("Held message to machine ") {
        let (to, clock) = rest.split_once(" with clock ").ok_or_else(unknown)?;
        return Ok(Event::Held { to: number("Event", to)?, clock: number("Event", clock)? });
    }
    if let Some(rest) = text.strip_prefix("Restarted on ") {
        let (rest, recovered) = if let Some(rest) = rest.strip_suffix(" and a recovered clock") {
            (rest, true)
        } else {
            (rest.strip_suffix(" and a fresh clock").ok_or_else(unknown)?, false)
        };
        let (address, rate) = rest.split_once(" with clock rate ").ok_or_else(unknown)?;
        let (host, port) = parse_address(address).ok_or_else(unknown)?;
        return Ok(Event::Restarted { host, port, rate: number("Event", rate)?, recovered });
    }
    if let Some(rest) = text.strip_prefix("Physical clock ") {
        let (step, drift) = match rest.split_once(" and ") {
            Some((step, drift)) => (Some(step), Some(drift)),
            None if rest.starts_with("stepped by ") => (Some(rest), None),
            None => (None, Some(rest)),
        };
        let step_us = match step {
            Some(step) => {
                let us = step.strip_prefix("stepped by ").and_then(|s| s.strip_suffix(" us")).ok_or_else(unknown)?;
                number("Event", us)?
            }
            None => 0,
        };
        let drift_ppb = match drift {
            Some(drift) => {
                let ppm =
                    drift.strip_prefix("drift set to ").and_then(|d| d.strip_suffix(" ppm")).ok_or_else(unknown)?;
                Some(parse_ppm_as_ppb(ppm).ok_or_else(unknown)?)
            }
            None => None,
        };
        return Ok(Event::ClockChanged { step_us, drift_ppb });
    }
    if let Some(rest) = text.strip_prefix("Behind schedule by ") {
        let (lateness, tick) = rest.split_once(" us at tick ").ok_or_else(unknown)?;
        return Ok(Event::Behind { lateness_us: number("Event", lateness)?, tick: number("Event", tick)? });
    }
    if let Some(rest) = text.strip_prefix("Initialized on ") {
        let (address, rate) = rest.split_once(" with clock rate ").ok_or_else(unknown)?;
        let (host, port) = parse_address(address).ok_or_else(unknown)?;
        return Ok(Event::Initialized { host, port, rate: number("Event", rate)? });
    }
    if let Some(rest) = text.strip_prefix("Connected to machine ") {
        let (peer, host, port) = if let Some((peer, address)) = rest.split_once(" at ") {
            let (host, port) = parse_address(address).ok_or_else(unknown)?;
            (peer, host, port)
        } else if let Some((peer, port)) = rest.split_once(" on port ") {
            // The reference's wording.
            (peer, None, Some(number("Event", port)?))
        } else {
            return Err(unknown());
        };
        return Ok(Event::Connected { peer: number("Event", peer)?, host, port });
    }
    Err(unknown())
}

/// `12.5` (parts per million, at most three decimals) as parts per billion.
fn parse_ppm_as_ppb(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<3}").parse().ok()? };
    let ppb = whole.checked_mul(1_000)?.checked_add(fraction)?;
    Some(if negative { -ppb } else { ppb })
}

/// ` from machine <j> with clock <c>`.
fn parse_from_clock(rest: &str) -> Option<(u32, u64)> {
    let rest = rest.strip_prefix(" from machine ")?;
    // Digits, the separator, digits: read without building a searcher.
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if let Some(clock) = rest[digits..].strip_prefix(" with clock ")
        && let (Some(from), Some(clock)) = (ascii_number(&rest[..digits]), ascii_number(clock))
    {
        return Some((from, clock));
    }
    let (from, clock) = rest.split_once(" with clock ")?;
    Some((from.parse().ok()?, clock.parse().ok()?))
}

/// `host:port`, or a bare port as the reference writes it.
fn parse_address(address: &str) -> Option<(Option<String>, Option<u16>)> {
    match address.rsplit_once(':') {
        Some((host, port)) => Some((Some(host.to_string()), Some(port.parse().ok()?))),
        None => Some((None, Some(address.parse().ok()?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The calendar of the `time` crate: what `civil_second` replaced.
    fn civil_second_by_time(value: &str) -> Option<i64> {
        let bytes = value.as_bytes();
        if bytes.len() != 19 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
            return None;
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            bytes[range].iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
        };
        let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
        let date = time::Date::from_calendar_date(
            i32::try_from(digits(0..4)?).ok()?,
            month,
            u8::try_from(digits(8..10)?).ok()?,
        )
        .ok()?;
        let hms = time::Time::from_hms(
            u8::try_from(digits(11..13)?).ok()?,
            u8::try_from(digits(14..16)?).ok()?,
            u8::try_from(digits(17..19)?).ok()?,
        )
        .ok()?;
        Some(time::PrimitiveDateTime::new(date, hms).assume_utc().unix_timestamp())
    }

    /// What `parse_from_clock` did before its fast path, which must agree.
    fn parse_from_clock_by_split(rest: &str) -> Option<(u32, u64)> {
        let rest = rest.strip_prefix(" from machine ")?;
        let (from, clock) = rest.split_once(" with clock ")?;
        Some((from.parse().ok()?, clock.parse().ok()?))
    }

    #[test]
    fn dates_at_the_edges_of_months_and_years() {
        let mut parser = LineParser::default();
        for date in [
            "1970-01-01 00:00:00",
            "2024-02-29 23:59:59",
            "2000-02-29T12:00:00",
            "0000-01-01 00:00:00",
            "9999-12-31 23:59:59",
        ] {
            assert_eq!(parser.civil_second(date), civil_second_by_time(date), "{date}");
            assert!(parser.civil_second(date).is_some(), "{date}");
        }
        for bad in [
            "2023-02-29 00:00:00",
            "1900-02-29 00:00:00",
            "2026-04-31 00:00:00",
            "2026-13-01 00:00:00",
            "2026-01-01 24:00:00",
            "2026-01-01 00:60:00",
            "2026-01-01 00:00:60",
        ] {
            assert_eq!(parser.civil_second(bad), None, "{bad}");
        }
    }

    /// One of `options`, as an owned string.
    fn one_of(options: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
        proptest::sample::select(options).prop_map(String::from)
    }

    /// Lines from pieces of the canonical layout, some of them changed.
    fn line_pieces() -> impl Strategy<Value = String> {
        let event = one_of(&[
            "Internal event",
            "Sent message to machine 2",
            "Processed message",
            "Processed message from machine 3 with clock 17",
            "Stopped",
        ]);
        let time = one_of(&[
            "2026-11-24 04:43:13",
            "2026-11-24 04:43:1|",
            "2026-11-24 | 4:43:1",
            "2026-11-24 04:43",
            "2026-11-24T04:43:13",
        ]);
        let number = one_of(&["18", "+18", " 18", "", "99999999999999999999"]);
        let tail = one_of(&[
            "",
            " | Timestamp: 2026-11-24T04:43:13.482913Z",
            " | Timestamp: 2026-11-24T04:43:13Z | Logical Clock: 19",
            " | Timestamp: 2026-11-24T04:43:13.5Z | Vector Clock: [1, 2]",
            " |Timestamp: 2026-11-24T04:43:13Z",
            " | Timestamp: 2026-11-24T04:43:13.4829134Z",
            // 27 bytes, as long as a timestamp with six fraction digits.
            " | Timestamp: 2026-11-24T04:43:13Z | abcZ",
            " | Timestamp: 2026-11-24T04:43:13.48291|Z",
            " | Queue Length: 3",
        ]);
        (event, time, number.clone(), number, tail).prop_map(|(event, time, clock, queue, tail)| {
            format!("2> Event: {event} | System Time: {time} | Logical Clock: {clock} | Queue Length: {queue}{tail}")
        })
    }

    proptest! {
        #[test]
        fn dates_read_as_the_time_crate_reads_them(
            year in 0u32..=9999, month in 0u32..=13, day in 0u32..=32, hour in 0u32..=25, minute in 0u32..=61,
            second in 0u32..=61, separator in prop_oneof![Just(' '), Just('T'), Just('x')],
        ) {
            let value = format!("{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}");
            let mut parser = LineParser::default();
            // Twice: the second time from the remembered date.
            prop_assert_eq!(parser.civil_second(&value), civil_second_by_time(&value));
            prop_assert_eq!(parser.civil_second(&value), civil_second_by_time(&value));
        }

        #[test]
        fn timestamps_read_at_their_places_as_in_general(
            date in prop_oneof![Just("2026-12-01"), Just("1970-01-01"), Just("2026-02-30"), Just("2026-1-011")],
            separator in prop_oneof![Just('T'), Just(' ')], time in prop_oneof![Just("23:59:59"), Just("24:00:00")],
            fraction in "[0-9a]{0,7}", dot in prop_oneof![Just("."), Just("")], end in prop_oneof![Just("Z"), Just("")],
        ) {
            let value = format!("{date}{separator}{time}{dot}{fraction}{end}");
            let mut parser = LineParser::default();
            // Twice: the second time from the remembered second.
            for _ in 0..2 {
                prop_assert_eq!(
                    parser.timestamp_us_of("Timestamp", &value),
                    LineParser::default().timestamp_us_in_general("Timestamp", &value)
                );
            }
        }

        #[test]
        fn fields_split_as_str_split_does(text in "[ |ab]{0,16}") {
            let fields: Vec<&str> = Fields::new(&text).collect();
            prop_assert_eq!(fields, text.split(" | ").collect::<Vec<_>>());
        }

        #[test]
        fn numbers_read_as_str_parse_reads_them(text in "[0-9+ -]{0,22}") {
            let parsed_u64 = number::<u64>("n", &text).ok();
            prop_assert_eq!(parsed_u64, text.trim().parse::<u64>().ok());
            let parsed_u32 = number::<u32>("n", &text).ok();
            prop_assert_eq!(parsed_u32, text.trim().parse::<u32>().ok());
            let parsed_i64 = number::<i64>("n", &text).ok();
            prop_assert_eq!(parsed_i64, text.trim().parse::<i64>().ok());
        }

        #[test]
        fn senders_and_clocks_read_as_splitting_reads_them(from in "[0-9+ ]{0,12}", clock in "[0-9a ]{0,21}", joint in prop_oneof![Just(" with clock "), Just(" with clock  "), Just(" with ")]) {
            let rest = format!(" from machine {from}{joint}{clock}");
            prop_assert_eq!(parse_from_clock(&rest), parse_from_clock_by_split(&rest));
        }

        #[test]
        fn the_usual_fields_read_as_field_by_field(line in line_pieces()) {
            let at_their_places = LineParser::default().parse_text_with(&line, true);
            let one_by_one = LineParser::default().parse_text_with(&line, false);
            prop_assert_eq!(at_their_places, one_by_one);
        }
    }
}
