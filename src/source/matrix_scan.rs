//! A successful matrix answer of the Prometheus API, walked by hand: the
//! envelope's structure and every `[unix seconds, "value"]` pair read from
//! the bytes in one pass, each series' `metric` labels (and any member this
//! walk does not use) handed to serde_json where they stand.
//!
//! serde_json visiting every pair through `Deserialize` impls was about a
//! fifth of the server's CPU per verdict; borrowing each series' `values` as
//! a raw slice and scanning it was no cheaper, since serde_json still walks
//! the slice once to find its end (BENCHMARKS.md, "Session 6 (fast-decode)").
//!
//! Every pair is read exactly as the serde path in `prometheus.rs` reads it:
//! the time as serde_json reads a JSON number into an `f64`, then rounded to
//! whole seconds; the value with `str::parse::<f64>`. The walk knows only
//! the plain shape `{"status":"success","data":{"resultType":"matrix",
//! "result":[{"metric":{...},"values":[[t,"v"],...]},...]}}` (whitespace
//! anywhere JSON allows it, members in any order, unknown members skipped as
//! serde skips them). At anything else (a `warnings` or `error` member, an
//! escape in a key or a value, a third element in a pair, a time that is not
//! a number) it gives up, and the caller reads the whole answer with serde,
//! so an unusual answer is read, and a malformed one refused with its
//! reason, exactly as before.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::contract::Series;

/// Most digits of an integer time read without serde_json: any integer of
/// 18 digits fits in a `u64`, so serde_json reads it as an integer and widens
/// it to `f64`, which is what this walk does.
const MAX_INTEGER_TIME_DIGITS: usize = 18;

/// Most digits of an integer read as itself: below 2^53 every integer is an
/// `f64` exactly, so widening, rounding and parsing change nothing.
const MAX_EXACT_INTEGER_DIGITS: usize = 15;

/// Most brackets in a member this walk skips. serde_json refuses nesting
/// deeper than 128 levels, counted from the top of the body; a skipped member
/// is read from where it stands, so one nested near that depth is left to
/// the serde path, which counts as before.
const MAX_SKIPPED_BRACKETS: usize = 100;

/// The series of `body` when it is a successful matrix answer of the plain
/// shape, without warnings; `None` for anything else, for the caller to
/// read with serde.
pub(super) fn scan_matrix(body: &[u8]) -> Option<Vec<Series>> {
    let mut walk = Walk {
        bytes: body,
        at: 0,
        points_hint: 0,
    };
    let (mut success, mut series) = (false, None);
    walk.expect(b'{')?;
    loop {
        match walk.key()? {
            b"status" if !success => {
                walk.literal(b"\"success\"")?;
                success = true;
            }
            b"data" if series.is_none() => series = Some(walk.matrix()?),
            // Said twice (which serde refuses), or what only serde reads.
            b"status" | b"data" | b"warnings" | b"errorType" | b"error" => return None,
            _ => walk.skip_value()?,
        }
        if !walk.another_member(b'}')? {
            break;
        }
    }
    walk.skip_whitespace();
    if !success || walk.at != body.len() {
        return None;
    }
    series
}

/// A position in the body being walked.
struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Points of the last series read: the next one likely has as many, so
    /// its points are allocated once, at their size.
    points_hint: usize,
}

impl<'a> Walk<'a> {
    /// Past JSON's whitespace (RFC 8259, section 2: space, tab, LF, CR).
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after any whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.at).copied()
    }

    /// Past `byte`, after any whitespace; `None` if something else is next.
    fn expect(&mut self, byte: u8) -> Option<()> {
        if self.peek()? != byte {
            return None;
        }
        self.at += 1;
        Some(())
    }

    /// Past `text`, after any whitespace; `None` if something else is next.
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        self.skip_whitespace();
        if !self.bytes.get(self.at..)?.starts_with(text) {
            return None;
        }
        self.at += text.len();
        Some(())
    }

    /// After a member or an element: past a `,` (true: another follows) or
    /// past `close` (false: the object or array ends).
    fn another_member(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            byte if byte == close => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// An object member's name and its `:`; `None` for one with an escape,
    /// which serde would read and match to a field by its unescaped text.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let key = &self.bytes[start..self.at];
        self.at += 1;
        std::str::from_utf8(key).ok()?;
        self.expect(b':')?;
        Some(key)
    }

    /// The value here, read by serde_json as the serde path reads it.
    fn serde<T: DeserializeOwned>(&mut self) -> Option<T> {
        let rest = self.bytes.get(self.at..)?;
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
        let value = values.next()?.ok()?;
        self.at += values.byte_offset();
        Some(value)
    }

    /// Past a member's value this walk does not use, as serde skips it.
    fn skip_value(&mut self) -> Option<()> {
        let start = self.at;
        self.serde::<IgnoredAny>()?;
        let brackets = self.bytes[start..self.at]
            .iter()
            .filter(|&&b| b == b'[' || b == b'{')
            .count();
        (brackets < MAX_SKIPPED_BRACKETS).then_some(())
    }

    /// `data`: a matrix's series, its `resultType` first as Prometheus
    /// writes it (the serde path reads the other order too).
    fn matrix(&mut self) -> Option<Vec<Series>> {
        self.expect(b'{')?;
        (self.key()? == b"resultType").then_some(())?;
        self.literal(b"\"matrix\"")?;
        self.expect(b',')?;
        (self.key()? == b"result").then_some(())?;
        self.expect(b'[')?;
        let mut series = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                series.push(self.series()?);
                if !self.another_member(b']')? {
                    break;
                }
            }
        }
        self.expect(b'}')?;
        Some(series)
    }

    /// One series: its `metric` labels and its `values`, either absent
    /// (empty, as the serde path's defaults make them).
    fn series(&mut self) -> Option<Series> {
        self.expect(b'{')?;
        let (mut labels, mut points) = (None, None);
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                match self.key()? {
                    b"metric" if labels.is_none() => {
                        labels = Some(self.serde::<BTreeMap<String, String>>()?);
                    }
                    b"values" if points.is_none() => points = Some(self.values()?),
                    b"metric" | b"values" => return None,
                    _ => self.skip_value()?,
                }
                if !self.another_member(b'}')? {
                    break;
                }
            }
        }
        Some(Series {
            labels: labels.unwrap_or_default(),
            points: points.unwrap_or_default(),
        })
    }

    /// A series' `values`: `[time, "value"]` pairs.
    fn values(&mut self) -> Option<Vec<(i64, f64)>> {
        self.expect(b'[')?;
        let mut points = Vec::with_capacity(self.points_hint);
        if self.peek()? == b']' {
            self.at += 1;
            return Some(points);
        }
        loop {
            self.expect(b'[')?;
            let time = self.time()?;
            self.expect(b',')?;
            let value = self.value()?;
            self.expect(b']')?;
            points.push((time, value));
            if !self.another_member(b']')? {
                break;
            }
        }
        self.points_hint = points.len();
        Some(points)
    }

    /// The run of ASCII digits from `from`: where it ends, and its value
    /// (wrapped past `u64::MAX`, so only the value of a short run is used).
    fn digit_run(&self, from: usize) -> (usize, u64) {
        let (mut at, mut value) = (from, 0_u64);
        while let Some(&digit @ b'0'..=b'9') = self.bytes.get(at) {
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit - b'0'));
            at += 1;
        }
        (at, value)
    }

    /// A pair's time: a JSON number, rounded to whole seconds as the serde
    /// path does (`f64` as serde_json reads it, then `.round() as i64`).
    fn time(&mut self) -> Option<i64> {
        self.skip_whitespace();
        let start = self.at;
        let negative = self.bytes.get(start) == Some(&b'-');
        let digits_start = start + usize::from(negative);
        let (mut at, magnitude) = self.digit_run(digits_start);
        let digits = at - digits_start;
        let integer = (1..=MAX_INTEGER_TIME_DIGITS).contains(&digits)
            // JSON writes no leading zero; serde_json refuses one.
            && (self.bytes[digits_start] != b'0' || digits == 1)
            && !matches!(self.bytes.get(at), Some(b'.' | b'e' | b'E' | b'+' | b'-'));
        if integer {
            self.at = at;
            // serde_json reads an integer as a u64 (an i64 when negative) and
            // widens it to f64, which is exact up to 15 digits; negating after
            // widening is the same, rounding to nearest being symmetric.
            let seconds = if digits <= MAX_EXACT_INTEGER_DIGITS {
                magnitude as i64
            } else {
                widened(magnitude)
            };
            return Some(if negative { -seconds } else { seconds });
        }
        // A decimal, an exponent, a long integer or not a JSON number at all:
        // serde_json's own reading, whatever its features make it.
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.bytes.get(at) {
            at += 1;
        }
        let token = &self.bytes[start..at];
        self.at = at;
        serde_json::from_slice::<f64>(token)
            .ok()
            .map(|seconds| seconds.round() as i64)
    }

    /// A pair's value: a float in a JSON string without escapes, read with
    /// `str::parse::<f64>` as the serde path does.
    fn value(&mut self) -> Option<f64> {
        self.expect(b'"')?;
        let start = self.at;
        // A counter's whole number, the usual value of a raw range, is read
        // as it goes; below 2^53 it is the float `parse` would give.
        let (mut at, whole) = self.digit_run(start);
        let digits = at - start;
        if self.bytes.get(at) == Some(&b'"') && (1..=MAX_EXACT_INTEGER_DIGITS).contains(&digits) {
            self.at = at + 1;
            return Some(whole as f64);
        }
        loop {
            match *self.bytes.get(at)? {
                b'"' => break,
                // An escape or a control character: serde's to read or refuse.
                b'\\' | 0..=0x1f => return None,
                _ => at += 1,
            }
        }
        self.at = at + 1;
        std::str::from_utf8(&self.bytes[start..at])
            .ok()?
            .parse::<f64>()
            .ok()
    }
}

/// A long integer time as serde_json's `f64` of it gives it back, apart so
/// the usual short time does not pay for the conversions (the compiler would
/// otherwise compute both and pick one).
#[cold]
#[inline(never)]
fn widened(magnitude: u64) -> i64 {
    magnitude as f64 as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matrix answer of one series whose `values` are `values`.
    fn answer(values: &str) -> String {
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"le":"+Inf"}},"values":{values}}}]}}}}"#
        )
    }

    // Plain pairs are read with whitespace anywhere JSON allows it.
    #[test]
    fn plain_pairs_are_read_with_any_whitespace() {
        let points =
            |values: &str| scan_matrix(answer(values).as_bytes()).map(|s| s[0].points.clone());
        assert_eq!(
            points(" [ [1, \"1.5\"] ,\n\t[ 2 ,\r\"-3\" ] ] "),
            Some(vec![(1, 1.5), (2, -3.0)])
        );
        assert_eq!(points("[]"), Some(vec![]));
        assert_eq!(points("[ \n ]"), Some(vec![]));
    }

    // Anything but the plain shape is left to serde, which reads or refuses it.
    #[test]
    fn unusual_shapes_are_left_to_serde() {
        for values in [
            "null",
            "{}",
            "[[1]]",
            "[[1,\"2\",3]]",
            "[[1,2]]",
            "[[\"1\",\"2\"]]",
            "[[1,\"\\u0031\"]]",
            "[[1,\"x\"]]",
            "[[1,\"\"]]",
            "[[01,\"1\"]]",
            "[[1,\"1\"],]",
            "[[1,\"1\",]]",
            "[[1,\"1\"]",
            "[[[1],\"1\"]]",
            "[[.5,\"1\"]]",
            "[[+1,\"1\"]]",
            "[[1e999,\"1\"]]",
        ] {
            assert_eq!(scan_matrix(answer(values).as_bytes()), None, "{values}");
        }
        for body in [
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            r#"{"status":"success","data":{"result":[],"resultType":"matrix"}}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":[]}"#,
            r#"{"status":"error","data":{"resultType":"matrix","result":[]}}"#,
            r#"{"status":"success","status":"success","data":{"resultType":"matrix","result":[]}}"#,
            r#"{"st\u0061tus":"success","data":{"resultType":"matrix","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}} x"#,
            r#"{"data":{"resultType":"matrix","result":[]}}"#,
        ] {
            assert_eq!(scan_matrix(body.as_bytes()), None, "{body}");
        }
    }

    // Members the walk does not use are skipped, as serde skips them.
    #[test]
    fn unknown_members_are_skipped() {
        let body = r#"{"status":"success","isPartial":false,"data":{"resultType":"matrix","result":[{"extra":[1,{"a":null}],"values":[[5,"2"]]}]},"stats":{"seriesFetched":"1"}}"#;
        let series = scan_matrix(body.as_bytes()).expect("plain shape");
        assert_eq!(
            series,
            vec![Series {
                labels: BTreeMap::new(),
                points: vec![(5, 2.0)]
            }]
        );
    }
}
