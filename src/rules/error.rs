//! The one error type of rule loading: a message that names file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

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
