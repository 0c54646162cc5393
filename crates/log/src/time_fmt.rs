//! Time stamps as the log writes them, with a per-second cache: a machine
//! writes many lines in the same second, and formatting a date is the slow
//! part of a line.

/// `YYYY-MM-DD HH:MM:SS` and `YYYY-MM-DDTHH:MM:SS` of the last second seen.
#[derive(Debug, Clone)]
pub(crate) struct SecondCache {
    second: i64,
    /// `YYYY-MM-DD HH:MM:SS`; the ISO form swaps byte 10 for `T`.
    text: [u8; 19],
}

impl Default for SecondCache {
    fn default() -> Self {
        let mut cache = SecondCache { second: i64::MIN, text: [0; 19] };
        cache.set(0);
        cache
    }
}

impl SecondCache {
    fn set(&mut self, second: i64) {
        // Civil-date arithmetic instead of a date library: in virtual time a
        // machine writes only a few lines per second, so nearly every line
        // starts a new second, and this runs once per line.
        let (mut year, mut month, mut day) = civil_from_days(second.div_euclid(86_400));
        let mut second_of_day = second.rem_euclid(86_400);
        // Outside the years 0..=9999 the format has no room; clamp to the epoch.
        if !(0..=9999).contains(&year) {
            (year, month, day, second_of_day) = (1970, 1, 1, 0);
        }
        let year = year as u32;
        let (hour, minute, sec) =
            ((second_of_day / 3600) as u32, (second_of_day / 60 % 60) as u32, (second_of_day % 60) as u32);
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
        self.second = second;
    }

    /// The `System Time` text of `time_us`.
    pub(crate) fn system_time(&mut self, time_us: i64) -> &[u8; 19] {
        let second = time_us.div_euclid(1_000_000);
        if second != self.second {
            self.set(second);
        }
        &self.text
    }

    /// Appends the RFC 3339 `Timestamp` of `time_us` (UTC, microseconds).
    pub(crate) fn push_timestamp(&mut self, out: &mut Vec<u8>, time_us: i64) {
        let mut date = *self.system_time(time_us);
        date[10] = b'T';
        out.extend_from_slice(&date);
        out.push(b'.');
        let mut micros = [0u8; 6];
        put_digits(&mut micros, time_us.rem_euclid(1_000_000) as u32);
        out.extend_from_slice(&micros);
        out.push(b'Z');
    }
}

/// Writes `value` zero-padded into all of `out`.
fn put_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The proleptic Gregorian date `(year, month, day)` of a day number counted
/// from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::OffsetDateTime;

    /// The text as a date library gives it, with the same clamp.
    fn expected(second: i64) -> String {
        let datetime = OffsetDateTime::from_unix_timestamp(second)
            .ok()
            .filter(|dt| (0..=9999).contains(&dt.year()))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            datetime.year(),
            datetime.month() as u8,
            datetime.day(),
            datetime.hour(),
            datetime.minute(),
            datetime.second()
        )
    }

    fn text(second: i64) -> String {
        String::from_utf8(SecondCache::default().system_time(second * 1_000_000).to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(text(0), "1970-01-01 00:00:00");
        assert_eq!(text(1_795_495_393), "2026-11-24 04:43:13");
        assert_eq!(text(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(text(-1), "1969-12-31 23:59:59");
        assert_eq!(text(253_402_300_799), "9999-12-31 23:59:59");
        assert_eq!(text(253_402_300_800), "1970-01-01 00:00:00");
        assert_eq!(text(-62_167_219_200), "0000-01-01 00:00:00");
        assert_eq!(text(-62_167_219_201), "1970-01-01 00:00:00");
        assert_eq!(text(i64::MAX / 1_000_000), "1970-01-01 00:00:00");
    }

    proptest! {
        #[test]
        fn matches_the_date_library(second in -70_000_000_000i64..260_000_000_000) {
            prop_assert_eq!(text(second), expected(second));
        }

        #[test]
        fn consecutive_seconds_match(start in 1_700_000_000i64..1_900_000_000, n in 1usize..200) {
            let mut cache = SecondCache::default();
            for second in start..start + n as i64 {
                let got = String::from_utf8(cache.system_time(second * 1_000_000 + 17).to_vec()).unwrap();
                prop_assert_eq!(got, expected(second));
            }
        }
    }
}
