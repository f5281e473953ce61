//! Reading the verdict log as a person wants to: filtered, one line per
//! verdict, newest last, and `--follow` like `tail -f`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::verdict::Verdict;
pub use crate::verdict::log::Filter;
use crate::verdict::log::{LogRecord, RecordKey, log_files};

/// How to print verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One aligned line per verdict.
    Table,
    /// The verdict as one JSON line, as logged.
    Json,
}

/// The table's header line.
pub const TABLE_HEADER: &str =
    "JUDGED AT             VERDICT       DEPLOYMENT            RULES       REASON";

/// One verdict as a line of the table or as JSON.
pub fn render(verdict: &Verdict, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string(verdict).unwrap_or_default(),
        Format::Table => format!(
            "{:<21} {:<13} {:<21} {:<11} {}",
            verdict.judged_at,
            verdict.verdict.as_str(),
            verdict.deployment,
            verdict.rules,
            verdict.reason
        ),
    }
}

/// Reads whole new lines of `path` from `offset` on; returns them and the new offset.
fn read_new_lines(path: &Path, offset: u64) -> io::Result<(Vec<String>, u64)> {
    let mut file = File::open(path)?;
    let length = file.metadata()?.len();
    if length <= offset {
        return Ok((Vec::new(), offset.min(length)));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    // A line still being written (no newline yet) waits for the next read.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    Ok((
        text.lines().map(str::to_string).collect(),
        offset + complete as u64,
    ))
}

/// Prints the verdicts in `dir` that pass `filter`, oldest first; with
/// `follow`, keeps printing new ones as they are appended until interrupted.
/// Unreadable lines are reported on `errors`, not fatal.
pub fn show(
    dir: &Path,
    filter: &Filter,
    format: Format,
    follow: bool,
    out: &mut dyn Write,
    errors: &mut dyn Write,
) -> io::Result<()> {
    // Per file: bytes and lines already read.
    let mut offsets: HashMap<PathBuf, (u64, usize)> = HashMap::new();
    if format == Format::Table {
        writeln!(out, "{TABLE_HEADER}")?;
    }
    loop {
        for path in log_files(dir)? {
            let (offset, first_line) = offsets.get(&path).copied().unwrap_or((0, 0));
            let (lines, next) = read_new_lines(&path, offset)?;
            for (index, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                // The key first: the metrics' detail is parsed only for lines shown.
                let record = serde_json::from_str::<RecordKey>(line).and_then(|key| {
                    match filter.accepts(&key) {
                        true => serde_json::from_str::<LogRecord>(line).map(Some),
                        false => Ok(None),
                    }
                });
                match record {
                    Ok(Some(record)) => writeln!(out, "{}", render(&record.verdict, format))?,
                    Ok(None) => {}
                    Err(_) => writeln!(
                        errors,
                        "skipped an unreadable line: {}:{}",
                        path.display(),
                        first_line + index + 1
                    )?,
                }
            }
            offsets.insert(path, (next, first_line + lines.len()));
        }
        out.flush()?;
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A torn or edited line is reported with its file and line and the rest is still shown;
    // filters pick verdicts by deployment.
    #[test]
    fn unreadable_lines_are_reported_not_fatal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = |deployment: &str| {
            serde_json::json!({
                "id": format!("id-{deployment}"), "verdict": "rollback", "reason": "Rollback: because.",
                "deployment": deployment, "rules": "http", "rules_hash": "h", "canary": "{}", "baseline": "{}",
                "window": {"start": "s", "end": "e", "start_secs": 0, "end_secs": 60, "step_secs": 15},
                "final": false, "score": 0.0, "judged_at": "2026-11-26T10:00:00Z", "metrics": [],
                "request": {"rules": "http", "deployment": deployment, "canary": {"track": "canary"},
                            "baseline": {"track": "baseline"}, "start": 0},
            })
            .to_string()
        };
        let text = format!("{}\n{{\"id\": \"torn\n{}\n", record("a-1"), record("b-2"));
        std::fs::write(dir.path().join("verdicts-2026-11-26.jsonl"), text).expect("write log");

        let (mut out, mut errors) = (Vec::new(), Vec::new());
        let filter = Filter {
            deployment: Some("b-2".into()),
            ..Filter::default()
        };
        show(
            dir.path(),
            &filter,
            Format::Table,
            false,
            &mut out,
            &mut errors,
        )
        .expect("show");
        let out = String::from_utf8(out).expect("utf-8");
        let errors = String::from_utf8(errors).expect("utf-8");
        assert_eq!(out.lines().count(), 2, "header and one verdict: {out}");
        assert!(out.contains("b-2") && !out.contains("a-1"), "{out}");
        assert!(errors.contains("verdicts-2026-11-26.jsonl:2"), "{errors}");
    }
}
