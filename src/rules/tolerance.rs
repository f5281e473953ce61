//! Tolerance strings such as `+10%`, `-5%`, `±10%` or `10%`.

use crate::stats::Direction;

/// The largest tolerance a rule may give, in percent.
pub(crate) const MAX_TOLERANCE_PERCENT: f64 = 1000.0;

/// Which sign a tolerance string was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sign {
    /// `10%`: the sign follows the metric's direction.
    Implied,
    /// `+10%`.
    Plus,
    /// `-10%`.
    Minus,
    /// `±10%` or `+-10%`.
    Both,
}

/// Reads a tolerance written as a percentage and checks it against the
/// metric's direction. Returns the fraction (`0.1` for `10%`).
pub(crate) fn parse(text: &str, direction: Direction) -> Result<f64, String> {
    let trimmed = text.trim();
    let (sign, rest) = if let Some(rest) = trimmed.strip_prefix("+-") {
        (Sign::Both, rest)
    } else if let Some(rest) = trimmed.strip_prefix('±') {
        (Sign::Both, rest)
    } else if let Some(rest) = trimmed.strip_prefix('+') {
        (Sign::Plus, rest)
    } else if let Some(rest) = trimmed.strip_prefix('-') {
        (Sign::Minus, rest)
    } else {
        (Sign::Implied, trimmed)
    };
    let number = rest
        .strip_suffix('%')
        .ok_or_else(|| format!("tolerance `{text}` must be a percentage such as '+10%'"))?;
    let percent: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite())
        .ok_or_else(|| format!("tolerance `{text}` must be a percentage such as '+10%'"))?;
    if !(0.0..=MAX_TOLERANCE_PERCENT).contains(&percent) {
        return Err(format!(
            "tolerance `{text}` must lie between 0% and {MAX_TOLERANCE_PERCENT}%"
        ));
    }
    match (sign, direction) {
        (Sign::Plus, Direction::Decrease) | (Sign::Minus, Direction::Increase) => {
            return Err(format!(
                "tolerance `{text}` points the other way than direction `{}`; write '{}{number}%'",
                direction_name(direction),
                if direction == Direction::Increase {
                    '+'
                } else {
                    '-'
                },
            ));
        }
        (Sign::Plus | Sign::Minus, Direction::Either) => {
            return Err(format!(
                "tolerance `{text}` is one-sided but direction is `either`; write '±{number}%'"
            ));
        }
        (Sign::Both, Direction::Increase | Direction::Decrease) => {
            return Err(format!(
                "tolerance `{text}` is two-sided but direction is `{}`; write '{}{number}%' or set direction `either`",
                direction_name(direction),
                if direction == Direction::Increase {
                    '+'
                } else {
                    '-'
                },
            ));
        }
        _ => {}
    }
    if direction == Direction::Decrease && percent >= 100.0 {
        return Err(format!(
            "tolerance `{text}` must be below 100% for direction `decrease`, since a metric cannot fall by all of itself or more"
        ));
    }
    Ok(percent / 100.0)
}

/// The word a rule file uses for a direction.
pub(crate) fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Increase => "increase",
        Direction::Decrease => "decrease",
        Direction::Either => "either",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins each accepted spelling and the fraction it compiles to.
    #[test]
    fn accepted_spellings() {
        assert_eq!(parse("+10%", Direction::Increase), Ok(0.1));
        assert_eq!(parse("10%", Direction::Increase), Ok(0.1));
        assert_eq!(parse("-5%", Direction::Decrease), Ok(0.05));
        assert_eq!(parse("±20%", Direction::Either), Ok(0.2));
        assert_eq!(parse("+-20%", Direction::Either), Ok(0.2));
        assert_eq!(parse("0%", Direction::Either), Ok(0.0));
        assert_eq!(parse("1000%", Direction::Increase), Ok(10.0));
    }

    // Pins that a sign contradicting the direction is refused with a fix.
    #[test]
    fn sign_must_fit_direction() {
        let err = parse("+10%", Direction::Decrease).unwrap_err();
        assert!(err.contains("write '-10%'"), "{err}");
        let err = parse("-10%", Direction::Increase).unwrap_err();
        assert!(err.contains("write '+10%'"), "{err}");
        let err = parse("+10%", Direction::Either).unwrap_err();
        assert!(err.contains("write '±10%'"), "{err}");
        assert!(parse("±10%", Direction::Increase).is_err());
    }

    // Pins the range: above 1000%, and 100% or more for decrease, are refused.
    #[test]
    fn range_is_bounded() {
        assert!(parse("1001%", Direction::Increase).is_err());
        assert!(parse("100%", Direction::Decrease).is_err());
        assert!(parse("99%", Direction::Decrease).is_ok());
        assert!(parse("-1%", Direction::Either).is_err());
    }

    // Pins that text without a percent sign is refused with the house sentence.
    #[test]
    fn not_a_percentage() {
        let err = parse("0.1", Direction::Increase).unwrap_err();
        assert!(err.contains("must be a percentage such as '+10%'"), "{err}");
        assert!(parse("abc%", Direction::Increase).is_err());
        assert!(parse("NaN%", Direction::Increase).is_err());
    }
}
