//! A range series' `values`, read by hand from their raw JSON text: the
//! `[unix seconds, "value"]` pairs of a Prometheus matrix answer.
//!
//! serde_json visiting every pair through its `Deserialize` impls was about a
//! fifth of the server's CPU per verdict (BENCHMARKS.md, session 6). This
//! reader walks the bytes once and reads every pair exactly as the serde path
//! in `prometheus.rs` does: the time as serde_json reads a JSON number into an
//! `f64`, rounded to whole seconds; the value with `str::parse::<f64>`. It
//! knows only the plain shape; at anything else (an escape in a value, a
//! third element, a nested structure, a time that is not a number) it gives
//! up, and the caller reads the whole answer with serde, so an unusual answer
//! is read, and a malformed one refused with its reason, just as before.

/// Most digits of an integer time read without serde_json: any integer of
/// 18 digits fits in a `u64`, so it is one serde_json reads as an integer and
/// then widens to `f64`, which is what this reader does.
const MAX_INTEGER_TIME_DIGITS: usize = 18;

/// Most digits of a value read without `str::parse`: below 2^53 every integer
/// is an `f64` exactly, so `digits as f64` is what `parse` gives.
const MAX_INTEGER_VALUE_DIGITS: usize = 15;

/// The points of `raw`, the JSON text of one series' `values` array, in the
/// order they are written; `None` when `raw` is not an array of plain
/// `[number, "float"]` pairs, for the caller to read it with serde instead.
pub(super) fn scan_values(raw: &str) -> Option<Vec<(i64, f64)>> {
    let mut cursor = Cursor { text: raw, at: 0 };
    cursor.expect(b'[')?;
    // Every pair opens one bracket: one pass counts them (a bracket inside a
    // value's string only over-counts, and such a value is refused anyway),
    // so the points are allocated once, and not twice the size they need.
    let pairs = raw.bytes().filter(|&b| b == b'[').count() - 1;
    let mut points = Vec::with_capacity(pairs);
    if cursor.peek()? == b']' {
        cursor.at += 1;
    } else {
        loop {
            cursor.expect(b'[')?;
            let time = cursor.time()?;
            cursor.expect(b',')?;
            let value = cursor.value()?;
            cursor.expect(b']')?;
            points.push((time, value));
            match cursor.peek()? {
                b',' => cursor.at += 1,
                b']' => {
                    cursor.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    cursor.skip_whitespace();
    (cursor.at == raw.len()).then_some(points)
}

/// A position in the text being read.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// Past JSON's whitespace (RFC 8259, section 2: space, tab, LF, CR).
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after any whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.at).copied()
    }

    /// Past `byte`, after any whitespace; `None` if something else is next.
    fn expect(&mut self, byte: u8) -> Option<()> {
        if self.peek()? != byte {
            return None;
        }
        self.at += 1;
        Some(())
    }

    /// A pair's time: a JSON number, rounded to whole seconds as the serde
    /// path does (`f64` as serde_json reads it, then `.round() as i64`).
    fn time(&mut self) -> Option<i64> {
        self.skip_whitespace();
        let start = self.at;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.bytes().get(self.at) {
            self.at += 1;
        }
        let token = &self.bytes()[start..self.at];
        let (negative, digits) = match token.split_first() {
            Some((b'-', digits)) => (true, digits),
            _ => (false, token),
        };
        let integer = !digits.is_empty()
            && digits.len() <= MAX_INTEGER_TIME_DIGITS
            && digits.iter().all(u8::is_ascii_digit)
            // JSON writes no leading zero; serde_json refuses one.
            && (digits[0] != b'0' || digits.len() == 1);
        let seconds = if integer {
            // serde_json reads an integer as a u64 (an i64 when negative)
            // and widens it to f64; negating after widening is the same,
            // since rounding to the nearest f64 is symmetric.
            let magnitude = digits
                .iter()
                .fold(0_u64, |n, d| n * 10 + u64::from(d - b'0'))
                as f64;
            if negative { -magnitude } else { magnitude }
        } else {
            // A decimal, an exponent, or not a JSON number at all:
            // serde_json's own reading, whatever its features make it.
            serde_json::from_slice::<f64>(token).ok()?
        };
        Some(seconds.round() as i64)
    }

    /// A pair's value: a float in a JSON string with no escape, read with
    /// `str::parse::<f64>` as the serde path does.
    fn value(&mut self) -> Option<f64> {
        self.expect(b'"')?;
        let start = self.at;
        let length = self.bytes()[start..].iter().position(|&b| b == b'"')?;
        self.at = start + length + 1;
        let text = &self.text[start..start + length];
        let bytes = text.as_bytes();
        if bytes.iter().any(|&b| b == b'\\' || b < 0x20) {
            // An escape or a control character: serde's to read or refuse.
            return None;
        }
        if !bytes.is_empty()
            && bytes.len() <= MAX_INTEGER_VALUE_DIGITS
            && bytes.iter().all(u8::is_ascii_digit)
        {
            // A counter's whole number, the usual value of a raw range.
            let whole = bytes
                .iter()
                .fold(0_u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Some(whole as f64);
        }
        text.parse::<f64>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Plain pairs are read with whitespace anywhere JSON allows it.
    #[test]
    fn plain_pairs_are_read_with_any_whitespace() {
        let points = scan_values(" [ [1, \"1.5\"] ,\n\t[ 2 ,\r\"-3\" ] ] ").expect("plain");
        assert_eq!(points, vec![(1, 1.5), (2, -3.0)]);
        assert_eq!(scan_values("[]"), Some(vec![]));
        assert_eq!(scan_values("[ \n ]"), Some(vec![]));
    }

    // Anything but plain pairs is left to serde, which reads or refuses it.
    #[test]
    fn unusual_shapes_are_left_to_serde() {
        for raw in [
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
            "[[1,\"1\"]] x",
            "[[[1],\"1\"]]",
            "[[.5,\"1\"]]",
            "[[+1,\"1\"]]",
            "[[1e999,\"1\"]]",
        ] {
            assert_eq!(scan_values(raw), None, "{raw}");
        }
    }
}
