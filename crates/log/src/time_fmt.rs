//! Time stamps as the log writes them, with a per-second cache: a machine
//! writes many lines in the same second, and formatting a date is the slow
//! part of a line.

use time::OffsetDateTime;

/// `YYYY-MM-DD HH:MM:SS` and `YYYY-MM-DDTHH:MM:SS` of the last second seen.
#[derive(Debug, Clone)]
pub(crate) struct SecondCache {
    second: i64,
    /// `YYYY-MM-DD HH:MM:SS`.
    text: [u8; 19],
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: the same second, with the microseconds
    /// of the last time stamp written.
    iso: [u8; 27],
    /// Whether `text` is `second` itself, not the epoch a second outside the
    /// calendar is clamped to.
    in_calendar: bool,
}

impl Default for SecondCache {
    fn default() -> Self {
        let mut cache = SecondCache { second: i64::MIN, text: [0; 19], iso: [0; 27], in_calendar: false };
        cache.set(0);
        cache
    }
}

impl SecondCache {
    fn set(&mut self, second: i64) {
        // Outside the years 0..=9999 the format has no room; clamp to the epoch.
        let in_calendar = OffsetDateTime::from_unix_timestamp(second).ok().filter(|dt| (0..=9999).contains(&dt.year()));
        self.in_calendar = in_calendar.is_some();
        let datetime = in_calendar.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (year, month, day) = (datetime.year() as u32, datetime.month() as u32, datetime.day() as u32);
        let (hour, minute, sec) = (datetime.hour() as u32, datetime.minute() as u32, datetime.second() as u32);
        let t = &mut self.text;
        put_digits(&mut t[0..4], year);
        t[4] = b'-';
        put_digits(&mut t[5..7], month);
        t[7] = b'-';
        put_digits(&mut t[8..10], day);
        t[10] = b' ';
        put_digits(&mut t[11..13], hour);
        t[13] = b':';
        put_digits(&mut t[14..16], minute);
        t[16] = b':';
        put_digits(&mut t[17..19], sec);
        self.iso[..19].copy_from_slice(t);
        self.iso[10] = b'T';
        self.iso[19] = b'.';
        self.iso[26] = b'Z';
        self.second = second;
    }

    /// The `System Time` text of `time_us`.
    pub(crate) fn system_time(&mut self, time_us: i64) -> &[u8; 19] {
        let second = time_us.div_euclid(1_000_000);
        if second != self.second {
            // Within the cached minute only the seconds' digits change: a
            // line a second or more after the last is the common case, and
            // the calendar is the slow part of a line.
            // (The calendar's ends are whole minutes, so a second in the
            // minute of one inside it is inside it too.)
            if self.in_calendar && second.div_euclid(60) == self.second.div_euclid(60) {
                put_digits(&mut self.text[17..19], second.rem_euclid(60) as u32);
                self.iso[17..19].copy_from_slice(&self.text[17..19]);
                self.second = second;
            } else {
                self.set(second);
            }
        }
        &self.text
    }

    /// Appends the RFC 3339 `Timestamp` of `time_us` (UTC, microseconds).
    pub(crate) fn push_timestamp(&mut self, out: &mut Vec<u8>, time_us: i64) {
        self.system_time(time_us);
        self.push_timestamp_in_second(out, time_us);
    }

    /// [`SecondCache::push_timestamp`] for a `time_us` in the second of the
    /// last [`SecondCache::system_time`].
    pub(crate) fn push_timestamp_in_second(&mut self, out: &mut Vec<u8>, time_us: i64) {
        debug_assert_eq!(time_us.div_euclid(1_000_000), self.second);
        let micros = time_us.rem_euclid(1_000_000) as usize;
        let (high, low) = (micros / 10_000, micros % 10_000);
        self.iso[20..22].copy_from_slice(&PAIRS[2 * high..2 * high + 2]);
        self.iso[22..24].copy_from_slice(&PAIRS[2 * (low / 100)..2 * (low / 100) + 2]);
        self.iso[24..26].copy_from_slice(&PAIRS[2 * (low % 100)..2 * (low % 100) + 2]);
        out.extend_from_slice(&self.iso);
    }
}

/// `00`, `01`, ... `99`, one after the other.
const PAIRS: [u8; 200] = {
    let mut pairs = [0; 200];
    let mut k = 0;
    while k < 100 {
        pairs[2 * k] = b'0' + (k / 10) as u8;
        pairs[2 * k + 1] = b'0' + (k % 10) as u8;
        k += 1;
    }
    pairs
};

/// Writes `value` zero-padded into all of `out`.
fn put_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The first instant the log format can write: 0000-01-01T00:00:00Z, in
/// microseconds since the Unix epoch.
pub const FIRST_WRITABLE_US: i64 = -62_167_219_200_000_000;

/// The last instant the log format can write: 9999-12-31T23:59:59.999999Z.
/// Past it a four-digit year has no room.
pub const LAST_WRITABLE_US: i64 = 253_402_300_799_999_999;

/// An instant as RFC 3339 in UTC with microseconds, as the log's `Timestamp`
/// writes it (`2026-11-24T04:43:13.482913Z`). Instants outside
/// [`FIRST_WRITABLE_US`]`..=`[`LAST_WRITABLE_US`] have no such form; callers
/// keep to the calendar (the configuration refuses runs that would leave it).
pub fn rfc3339_us(time_us: i64) -> String {
    let mut out = Vec::with_capacity(27);
    SecondCache::default().push_timestamp(&mut out, time_us);
    String::from_utf8(out).expect("digits and separators are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calendar_ends_are_written_as_they_are() {
        assert_eq!(rfc3339_us(FIRST_WRITABLE_US), "0000-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339_us(LAST_WRITABLE_US), "9999-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339_us(1_795_495_393_482_913), "2026-11-24T04:43:13.482913Z");
    }

    #[test]
    fn a_cache_walked_through_time_writes_what_a_fresh_one_does() {
        // Forwards and backwards, across minutes, hours, days, a leap day,
        // years, the epoch and the clamp at the calendar's ends.
        let starts =
            [-61, 0, 1_709_164_740, 1_735_689_540, 1_795_495_393, FIRST_WRITABLE_US / 1_000_000, 253_402_300_740];
        let mut cache = SecondCache::default();
        for start in starts {
            for step in [1, 7, 59, 60, 61, -1, -60, 3_599] {
                for k in 0..130i64 {
                    let time_us = (start + k * step) * 1_000_000 + k % 1_000_000;
                    let fresh = *SecondCache::default().system_time(time_us);
                    assert_eq!(cache.system_time(time_us), &fresh, "{time_us}");
                }
            }
        }
    }

    #[test]
    fn time_stamps_are_those_of_the_calendar_library() {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
        let mut cache = SecondCache::default();
        // Microseconds of every shape (leading zeros, each pair of digits),
        // walked forwards and backwards across seconds and days.
        let micros = [0, 1, 9, 10, 99, 100, 1_000, 9_999, 10_000, 99_999, 100_000, 123_456, 500_000, 999_999];
        for second in [-86_401, -1, 0, 59, 1_709_164_799, 1_795_495_393, 253_402_300_799] {
            for &micro in micros.iter().chain(micros.iter().rev()) {
                let time_us = second * 1_000_000 + micro;
                let expected = OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1_000)
                    .unwrap()
                    .format(&format)
                    .unwrap();
                let mut written = Vec::new();
                cache.push_timestamp(&mut written, time_us);
                assert_eq!(String::from_utf8(written).unwrap(), expected, "{time_us}");
            }
        }
    }
}
