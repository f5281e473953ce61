//! Prometheus's expanding notation for series values, as `promtool test rules`
//! reads it (`promql/parser/lex.go` and `parseSeriesDesc` in
//! `promql/parser/parse.go`):
//!
//! - `a+bxn` is `a a+b a+2b ... a+nb` (n + 1 values), `a-bxn` counts down;
//! - `axn` is `a` n + 1 times;
//! - `_` is one missing sample, `_xn` is n missing samples;
//! - `stale` is a staleness marker, which ends the series until its next sample;
//! - plain numbers (`1.5`, `-2`, `Inf`, `NaN`) are one sample each.

use std::collections::BTreeMap;

use promql_parser::label::{METRIC_NAME, MatchOp};
use promql_parser::parser::Expr;

use super::eval;

/// The labels of a series written as promtool writes one,
/// `metric{label="value", ...}` (the name as `__name__`), equalities only.
pub fn parse_series(text: &str) -> Result<BTreeMap<String, String>, String> {
    let not_a_series = |why: String| {
        format!("`{text}` is not a series such as `metric{{label=\"value\"}}` ({why})")
    };
    let expr = eval::parse(text).map_err(|e| not_a_series(e.to_string()))?;
    let Expr::VectorSelector(selector) = expr else {
        return Err(not_a_series("it is an expression, not a series".into()));
    };
    if selector.offset.is_some()
        || selector.at.is_some()
        || !selector.matchers.or_matchers.is_empty()
    {
        return Err(not_a_series("only a name and labels".into()));
    }
    let mut labels = BTreeMap::new();
    if let Some(name) = &selector.name {
        labels.insert(METRIC_NAME.to_string(), name.clone());
    }
    for matcher in &selector.matchers.matchers {
        if matcher.op != MatchOp::Equal {
            return Err(not_a_series(format!(
                "`{matcher}`: give labels with `=` only"
            )));
        }
        labels.insert(matcher.name.clone(), matcher.value.clone());
    }
    Ok(labels)
}

/// One scrape's worth of a series as written in a test file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SeriesValue {
    /// A sample with this value.
    Value(f64),
    /// No sample at this scrape (`_`).
    Missing,
    /// A staleness marker (`stale`): the series ended here.
    Stale,
}

/// Most values one series may expand to (a week of 15 s scrapes is 40,320).
pub const MAX_EXPANDED_VALUES: usize = 100_000;

/// Expands `text` into one value per scrape, or says which word cannot be read.
pub fn expand(text: &str) -> Result<Vec<SeriesValue>, String> {
    let mut values = Vec::new();
    for word in text.split_whitespace() {
        expand_word(word, &mut values)?;
        if values.len() > MAX_EXPANDED_VALUES {
            return Err(format!(
                "the values expand to more than {MAX_EXPANDED_VALUES} samples; use a longer interval"
            ));
        }
    }
    Ok(values)
}

fn expand_word(word: &str, values: &mut Vec<SeriesValue>) -> Result<(), String> {
    let bad = |why: &str| {
        format!(
            "`{word}` is not a value of the expanding notation ({why}); write e.g. `0+10x180`, `1-2x3`, `5x10`, `_`, `_x3`, `stale` or a number"
        )
    };
    if word == "stale" {
        values.push(SeriesValue::Stale);
        return Ok(());
    }
    if word == "_" {
        values.push(SeriesValue::Missing);
        return Ok(());
    }
    let (head, times) = match word.rsplit_once('x') {
        // `0x1f` is a hex number, not a repetition; Prometheus reads `x` after a digit
        // as the repetition only when a count follows, which hex digits also are, so
        // hex numbers are not supported here.
        Some((head, count)) if !head.is_empty() && !count.is_empty() => {
            let times: usize = count
                .parse()
                .map_err(|_| bad("the count after `x` must be a whole number"))?;
            (head, Some(times))
        }
        _ => (word, None),
    };
    if head == "_" {
        let times = times.ok_or_else(|| bad("`_` takes a count, as in `_x3`"))?;
        values.extend(std::iter::repeat_n(SeriesValue::Missing, times));
        return Ok(());
    }
    let Some(times) = times else {
        values.push(SeriesValue::Value(
            number(head).ok_or_else(|| bad("not a number"))?,
        ));
        return Ok(());
    };
    if times >= MAX_EXPANDED_VALUES {
        return Err(bad("the count is too large"));
    }
    // Split `a+b` / `a-b` at the sign that is not the first character nor after an `e`.
    let split = head
        .char_indices()
        .skip(1)
        .filter(|&(i, c)| (c == '+' || c == '-') && !matches!(head.as_bytes()[i - 1], b'e' | b'E'))
        .last();
    let (start, step) = match split {
        Some((i, sign)) => {
            let start = number(&head[..i]).ok_or_else(|| bad("the start is not a number"))?;
            let step = number(&head[i + 1..]).ok_or_else(|| bad("the step is not a number"))?;
            (start, if sign == '-' { -step } else { step })
        }
        None => (number(head).ok_or_else(|| bad("not a number"))?, 0.0),
    };
    // By repeated addition, as the `series_value signed_number TIMES uint` rule of
    // `promql/parser/generated_parser.y` does, so fractional steps round alike.
    let mut value = start;
    values.push(SeriesValue::Value(value));
    for _ in 0..times {
        value += step;
        values.push(SeriesValue::Value(value));
    }
    Ok(())
}

/// A number as PromQL writes one: decimal, exponent, `Inf`, `NaN`, with a sign.
fn number(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let plain = unsigned
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'));
    if !(plain || matches!(unsigned, "inf" | "nan")) || unsigned.is_empty() {
        return None;
    }
    lower.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeriesValue::{Missing, Stale, Value};

    // Pins promtool's documented examples: `a+bxn` gives n + 1 values, `_xn` n blanks.
    #[test]
    fn expands_like_promtool() {
        assert_eq!(
            expand("-2+4x3").unwrap(),
            [Value(-2.0), Value(2.0), Value(6.0), Value(10.0)]
        );
        assert_eq!(
            expand(" 1-2x4").unwrap(),
            [-1.0, -3.0, -5.0, -7.0]
                .iter()
                .fold(vec![Value(1.0)], |mut v, x| {
                    v.push(Value(*x));
                    v
                })
        );
        assert_eq!(expand("1x2").unwrap(), [Value(1.0); 3]);
        assert_eq!(
            expand("1 _x3 stale 2").unwrap(),
            [Value(1.0), Missing, Missing, Missing, Stale, Value(2.0)]
        );
        assert_eq!(
            expand("1e3+1e-1x1").unwrap(),
            [Value(1000.0), Value(1000.1)]
        );
        assert!(matches!(expand("NaN").unwrap()[0], Value(v) if v.is_nan()));
        assert_eq!(expand("-Inf").unwrap(), [Value(f64::NEG_INFINITY)]);
    }

    // Pins that a series gives a name and equalities, and nothing else.
    #[test]
    fn series_are_a_name_and_equalities() {
        let labels = parse_series(r#"http_requests_total{code="500", pod="a"}"#).unwrap();
        assert_eq!(labels["__name__"], "http_requests_total");
        assert_eq!(labels["code"], "500");
        for odd in [r#"x{code=~"5.."}"#, "rate(x[1m])", "x offset 1m", "x{"] {
            assert!(
                parse_series(odd).unwrap_err().contains("is not a series"),
                "{odd}"
            );
        }
    }

    // Pins that unreadable words are named rather than skipped.
    #[test]
    fn refuses_what_it_cannot_read() {
        for word in ["1+x3", "abc", "_x", "1+2xthree", "stalex2", "1++2x3"] {
            let error = expand(word).unwrap_err();
            assert!(error.contains(&format!("`{word}`")), "{word}: {error}");
        }
    }
}
