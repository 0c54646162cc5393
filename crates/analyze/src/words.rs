//! Numbers and counts in sentences: one place for plurals and for how many
//! decimals a number gets, so that every output reads the same.

/// `n` and the noun, singular or plural: `1 run`, `2 runs`. The plural is
/// the noun plus `s`, or `plural` when given.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    format!("{} {}", thousands(n), noun_for(n, noun))
}

pub use clocklab_log::thousands;

/// The noun for `n` of it: `run` or `runs`; `message pair` gives `message pairs`.
pub fn noun_for(n: u64, noun: &str) -> String {
    if n == 1 {
        noun.to_string()
    } else if let Some(stem) = noun.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'o', 'u'])) {
        format!("{stem}ies")
    } else if noun.ends_with('s') || noun.ends_with("sh") || noun.ends_with("ch") || noun.ends_with('x') {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

/// `value` with `decimals` decimals, never `-0.00`: a value that rounds to
/// zero is written as zero.
pub fn fixed(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') { text[1..].to_string() } else { text }
}

/// A share as a percentage with one decimal: `42.0%`.
pub fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 { "0%".to_string() } else { format!("{}%", fixed(100.0 * part / whole, 1)) }
}

/// A list in prose: `a`, `a and b`, `a, b and c`.
pub fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(count(1u32, "run"), "1 run");
        assert_eq!(count(2u32, "run"), "2 runs");
        assert_eq!(count(0u32, "line"), "0 lines");
        assert_eq!(count(1u32, "machine pair"), "1 machine pair");
        assert_eq!(count(3u32, "machine pair"), "3 machine pairs");
        assert_eq!(count(2u32, "entry"), "2 entries");
        assert_eq!(count(2u32, "day"), "2 days");
        assert_eq!(noun_for(2, "message"), "messages");
        assert_eq!(count(1_573_200u64, "pair"), "1,573,200 pairs");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }

    #[test]
    fn no_negative_zero() {
        assert_eq!(fixed(-0.0001, 3), "0.000");
        assert_eq!(fixed(-0.2, 1), "-0.2");
        assert_eq!(fixed(1.23456, 2), "1.23");
        assert_eq!(fixed(f64::NAN, 2), "n/a");
        assert_eq!(percent(1.0, 3.0), "33.3%");
    }

    #[test]
    fn lists() {
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["a".into()]), "a");
        assert_eq!(list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
    }
}
