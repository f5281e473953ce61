//! The one error type of the YAML files people write (rule files, and the
//! config file's sources): a message that names file, line and column, and
//! the words that turn the YAML parser's errors into such messages.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// A problem in a rule file, pointing at the key or value to fix.
///
/// Displays as `path:line:col: message`. Problems that belong to no place in
/// the file (it cannot be read, the directory is missing) have `line` 0 and
/// display as `path: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The rule file (or directory) the problem is in.
    pub path: PathBuf,
    /// 1-based line, or 0 when the problem has no place in the file.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// One sentence saying what is wrong and what to write instead.
    pub message: String,
}

impl RuleError {
    /// An error at a place in a file.
    pub fn at(path: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about a whole file or directory.
    pub fn whole(path: &Path, message: impl Into<String>) -> Self {
        Self::at(path, 0, 0, message)
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for RuleError {}

/// Line and column of a place in a YAML file.
pub(crate) fn location_pos(location: Location) -> (usize, usize) {
    (
        usize::try_from(location.line()).unwrap_or(usize::MAX),
        usize::try_from(location.column()).unwrap_or(usize::MAX),
    )
}

/// Turns a YAML or shape error from serde-saphyr into a [`RuleError`].
pub(crate) fn yaml_error(path: &Path, error: &serde_saphyr::Error, what: &str) -> RuleError {
    let error = error.without_snippet();
    let (line, column) = error.location().map_or((1, 1), location_pos);
    let message = match error {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => format!(
            "unknown field `{field}`;{} expected one of {}",
            did_you_mean(field, expected),
            expected
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        serde_saphyr::Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => format!("found {unexpected} where {expected} belongs; write {expected}"),
        serde_saphyr::Error::InvalidScalar { ty, .. } => {
            format!("this value must be {}", describe_type(ty))
        }
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => match key {
            Some(key) => format!("key `{key}` appears twice in the same mapping; keep one"),
            None => "a key appears twice in the same mapping; keep one".to_string(),
        },
        other => {
            let text = other.to_string();
            format!("the file is not a valid {what}: {}", strip_position(&text))
        }
    };
    RuleError::at(path, line, column, message)
}

/// The words for a Rust scalar type that a rule writer understands.
fn describe_type(ty: &str) -> &str {
    match ty {
        "f64" | "f32" | "floating point" => "a number such as 0.5",
        "i64" | "u64" | "i32" | "u32" | "integer" => "a whole number such as 10",
        "bool" | "boolean" => "true or false",
        _ => ty,
    }
}

/// Drops a trailing " at line X column Y" that would repeat our own position.
fn strip_position(text: &str) -> &str {
    text.find(" at line ").map_or(text, |at| &text[..at])
}

/// ` did you mean `x`?` when a candidate is close to `word`, else nothing.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min()
        .map(|(_, candidate)| format!(" did you mean `{candidate}`?"))
        .unwrap_or_default()
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins the typo hint used for unknown keys, kinds and groups.
    #[test]
    fn suggests_close_words_only() {
        assert_eq!(
            did_you_mean("tolerence", &["tolerance", "total"]),
            " did you mean `tolerance`?"
        );
        assert_eq!(did_you_mean("zzz", &["tolerance", "total"]), "");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
