//! The words people read numbers, times and errors in: "3.1%", "36,012",
//! "2.4x", "2026-11-26T14:05:00Z", "cannot connect: connection refused".
//!
//! A leaf of the module tree: every stage may use it, it uses none of them.
//! The words for outcomes live beside their types in [`crate::verdict`].

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A fraction as a percentage with sensible precision: `0.0312` → `3.12%`.
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "n/a".to_string();
    }
    let p = fraction * 100.0;
    if p == 0.0 {
        "0%".to_string()
    } else if p.abs() >= 10.0 {
        format!("{p:.1}%")
    } else if p.abs() >= 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.3}%")
    }
}

/// A percentage without a needless decimal, for confidence levels and
/// tolerances: `0.99` → `99%`, `0.995` → `99.5%`, `0.1` → `10%`.
pub fn round_percent(fraction: f64) -> String {
    format!("{}%", number(fraction * 100.0))
}

/// A count with thousands separators: `36012.0` → `36,012`.
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

/// A ratio as a multiple: `3.049` → `3.05x`, `12.3` → `12x`.
pub fn times(ratio: f64) -> String {
    if ratio.is_nan() {
        "n/a".to_string()
    } else if ratio.is_infinite() {
        "unbounded".to_string()
    } else if ratio >= 10.0 {
        format!("{ratio:.0}x")
    } else {
        format!("{ratio:.2}x")
    }
}

/// A plain number with up to four significant digits: `0.123456` → `0.1235`.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    if value == 0.0 {
        return "0".to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A latency in seconds in words: `52 ms` below a second, `1.5 s` above.
pub fn latency(seconds: f64) -> String {
    if !seconds.is_finite() {
        "unknown".into()
    } else if seconds < 1.0 {
        format!("{} ms", number(seconds * 1000.0))
    } else {
        format!("{} s", number(seconds))
    }
}

/// A duration in seconds as people say it: `150` → `2m 30s`.
pub fn duration(seconds: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds.max(0) as u64)).to_string()
}

/// Unix seconds as RFC 3339 in UTC: `2026-11-26T14:05:00Z`.
pub fn time(unix_secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_secs.to_string())
}

/// An error and every cause under it, outermost first, joined by `: `, so
/// the innermost cause (what really went wrong) is said too.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    // Figures in reasons read the way a person writes them.
    #[test]
    fn figures_read_naturally() {
        assert_eq!(percent(0.0312), "3.12%");
        assert_eq!(percent(0.25), "25.0%");
        assert_eq!(percent(0.0004), "0.040%");
        assert_eq!(round_percent(0.99), "99%");
        assert_eq!(round_percent(0.995), "99.5%");
        assert_eq!(round_percent(0.1), "10%");
        assert_eq!(count(36012.4), "36,012");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1_000_000.0), "1,000,000");
        assert_eq!(times(3.049), "3.05x");
        assert_eq!(times(12.3), "12x");
        assert_eq!(number(0.123456), "0.1235");
        assert_eq!(number(1234.6), "1235");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(duration(150), "2m 30s");
        assert_eq!(latency(0.052), "52 ms");
        assert_eq!(latency(2.5), "2.5 s");
    }
}
