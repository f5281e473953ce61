//! The verdict log: every verdict appended as one JSON line to a file per day
//! (`verdicts-YYYY-MM-DD.jsonl`) in the log folder, readable with `jq` or
//! `tail -f`. A day's file that reaches the size limit is followed by
//! `verdicts-YYYY-MM-DD.1.jsonl`, `.2`, and so on; [`log_files`] lists them in
//! the order they were written. A line is written with one append and synced
//! (with the folder, when the append created the file) before the verdict is
//! answered; a torn last line left by a crash is closed off before the next
//! append and skipped (and reported) by readers.
//!
//! Readers that answer requests ([`VerdictLog::newest`], [`VerdictLog::find`],
//! [`VerdictLog::first_start`]) read only the files they need, newest first,
//! and keep only the lines they return, so a log of months costs the server
//! neither memory nor a full read per request.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::request::VerdictRequest;
use crate::verdict::{Outcome, Verdict};

/// One line of the verdict log: the verdict and the request that asked for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub request: VerdictRequest,
}

/// What reading the log found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogContents {
    /// Records, oldest first.
    pub records: Vec<LogRecord>,
    /// `file:line` of every line that could not be read (a torn or edited line).
    pub unreadable: Vec<String>,
}

/// The fields of a log line that filters and lookups read, parsed without
/// the metrics' detail, so scanning a line allocates little.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordKey {
    pub id: String,
    pub deployment: String,
    pub rules: String,
    pub verdict: Outcome,
    pub judged_at: String,
    pub window: WindowKey,
}

/// The part of a logged verdict's window that lookups read.
#[derive(Clone, Debug, Deserialize)]
pub struct WindowKey {
    pub start_secs: i64,
}

/// Which verdicts to show.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub deployment: Option<String>,
    pub rules: Option<String>,
    pub verdict: Option<Outcome>,
    /// Only verdicts judged at or after this unix time.
    pub since_secs: Option<i64>,
}

impl Filter {
    /// Whether the verdict keyed by `key` passes the filter.
    pub fn accepts(&self, key: &RecordKey) -> bool {
        self.deployment
            .as_ref()
            .is_none_or(|d| &key.deployment == d)
            && self.rules.as_ref().is_none_or(|r| &key.rules == r)
            && self.verdict.is_none_or(|o| key.verdict == o)
            && self.since_secs.is_none_or(|since| {
                OffsetDateTime::parse(&key.judged_at, &Rfc3339)
                    .is_ok_and(|t| t.unix_timestamp() >= since)
            })
    }
}

/// Default size past which a day's log file is followed by a new one: 64 MiB.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// A folder of verdict log files.
#[derive(Clone, Debug)]
pub struct VerdictLog {
    dir: PathBuf,
    max_bytes: u64,
    /// One writer at a time, so lines never interleave; holds the file last written.
    writer: Arc<Mutex<Option<Segment>>>,
}

/// One file of a day's log: number 0 is `verdicts-DAY.jsonl`, n is `verdicts-DAY.n.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Segment {
    day: String,
    number: u32,
}

impl Segment {
    fn file_name(&self) -> String {
        match self.number {
            0 => format!("verdicts-{}.jsonl", self.day),
            n => format!("verdicts-{}.{n}.jsonl", self.day),
        }
    }

    /// The segment a log file name stands for; `None` for other files.
    fn parse(name: &str) -> Option<Segment> {
        let stem = name.strip_prefix("verdicts-")?.strip_suffix(".jsonl")?;
        let (day, number) = match stem.split_once('.') {
            Some((day, number)) => (day, number.parse().ok()?),
            None => (stem, 0),
        };
        Some(Segment {
            day: day.to_string(),
            number,
        })
    }
}

/// The log files in `dir`, oldest first: by day, then by segment number.
pub fn log_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<(Segment, PathBuf)> = fs::read_dir(dir)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read the verdict log folder {}: {e}", dir.display()),
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter_map(|path| {
            let segment = Segment::parse(path.file_name()?.to_str()?)?;
            Some((segment, path))
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

impl VerdictLog {
    /// The log in `dir`, which is created if missing.
    pub fn open(dir: &Path) -> io::Result<VerdictLog> {
        fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create verdict log folder {}: {e}", dir.display()),
            )
        })?;
        Ok(VerdictLog {
            dir: dir.to_path_buf(),
            max_bytes: DEFAULT_LOG_MAX_BYTES,
            writer: Arc::new(Mutex::new(None)),
        })
    }

    /// The same log, starting a new file for the day once one holds `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> VerdictLog {
        self.max_bytes = max_bytes.max(1);
        self
    }

    /// The folder the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last segment written for `day`, from the folder.
    fn last_segment(&self, day: &str) -> io::Result<Segment> {
        let last = log_files(&self.dir)?
            .iter()
            .filter_map(|path| Segment::parse(path.file_name()?.to_str()?))
            .filter(|segment| segment.day == day)
            .max();
        Ok(last.unwrap_or(Segment {
            day: day.to_string(),
            number: 0,
        }))
    }

    /// Appends `record` as one line and syncs it to disk.
    pub fn append(&self, record: &LogRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let day = record
            .verdict
            .judged_at
            .get(..10)
            .unwrap_or("unknown")
            .to_string();
        let mut current = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut segment = match current.as_ref() {
            Some(segment) if segment.day == day => segment.clone(),
            _ => self.last_segment(&day)?,
        };
        let mut path = self.dir.join(segment.file_name());
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            segment.number += 1;
            path = self.dir.join(segment.file_name());
        }
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        // Another process (a one-shot `canary-gate judge --log-dir`) may append to
        // the same file: hold its lock from the torn-line check to the sync.
        file.lock()?;
        if ends_torn(&mut file)? {
            // Close off a half line from a crash so this record starts on its own line.
            line.insert(0, b'\n');
        }
        file.write_all(&line)?;
        file.sync_data()?;
        if created {
            // A new file's name must survive a crash too, not only its bytes.
            sync_dir(&self.dir)?;
        }
        *current = Some(segment);
        Ok(())
    }

    /// Appends on a blocking thread, for async callers.
    pub async fn append_async(&self, record: LogRecord) -> io::Result<()> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.append(&record))
            .await
            .map_err(io::Error::other)?
    }

    /// Reads every record in the folder, oldest first. For tools and tests:
    /// request handlers use the bounded readers below.
    pub fn read_all(&self) -> io::Result<LogContents> {
        let mut contents = LogContents::default();
        for path in log_files(&self.dir)? {
            let records = &mut contents.records;
            scan_file(&path, &mut contents.unreadable, |_, line, _| {
                serde_json::from_slice(line)
                    .map(|record| records.push(record))
                    .is_ok()
            })?;
        }
        Ok(contents)
    }

    /// The newest `limit` records that pass `filter`, newest first. Files are
    /// read newest first until `limit` records are found; `unreadable` lists
    /// the bad lines of the files read.
    pub fn newest(&self, filter: &Filter, limit: usize) -> io::Result<LogContents> {
        let mut contents = LogContents::default();
        for path in log_files(&self.dir)?.iter().rev() {
            let wanted = limit - contents.records.len();
            if wanted == 0 {
                break;
            }
            // The file's last `wanted` matching lines, kept raw until the end.
            let mut kept: VecDeque<(usize, Vec<u8>)> = VecDeque::with_capacity(wanted.min(64));
            scan_file(path, &mut contents.unreadable, |key, line, number| {
                if filter.accepts(&key) {
                    if kept.len() == wanted {
                        kept.pop_front();
                    }
                    kept.push_back((number, line.to_vec()));
                }
                true
            })?;
            for (number, line) in kept.iter().rev() {
                match serde_json::from_slice(line) {
                    Ok(record) => contents.records.push(record),
                    Err(_) => contents.unreadable.push(at_line(path, *number)),
                }
            }
        }
        Ok(contents)
    }

    /// The record with `id`, from the files of the day its id was made.
    /// Ids are UUIDv7, which carry the time they were made; any other id
    /// names no verdict.
    pub fn find(&self, id: &str) -> io::Result<Option<LogRecord>> {
        let Some(made_secs) = uuid_v7_secs(id) else {
            return Ok(None);
        };
        // The id is made a moment before the verdict's judged_at names its file:
        // take the neighbouring days too, for a verdict judged across midnight.
        let days: Vec<String> = [-1, 0, 1]
            .iter()
            .filter_map(|offset| day_of(made_secs + offset * SECS_PER_DAY))
            .collect();
        let mut found = None;
        let mut unreadable = Vec::new();
        for path in log_files(&self.dir)? {
            if !file_day(&path).is_some_and(|day| days.contains(&day)) {
                continue;
            }
            scan_file(&path, &mut unreadable, |key, line, _| {
                if key.id == id {
                    found = serde_json::from_slice(line).ok();
                    return found.is_some();
                }
                true
            })?;
        }
        Ok(found)
    }

    /// Runs `read` on a blocking thread with this log, for async callers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&VerdictLog) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || read(&log))
            .await
            .map_err(io::Error::other)?
    }
}

const SECS_PER_DAY: i64 = 24 * 3600;

/// The `YYYY-MM-DD` (UTC) of a unix time, as log files are named.
fn day_of(secs: i64) -> Option<String> {
    let date = OffsetDateTime::from_unix_timestamp(secs).ok()?.date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// The day a log file's name says it holds.
fn file_day(path: &Path) -> Option<String> {
    Some(Segment::parse(path.file_name()?.to_str()?)?.day)
}

/// `file:line`, as unreadable lines are reported.
fn at_line(path: &Path, number: usize) -> String {
    format!("{}:{number}", path.display())
}

/// The unix second a UUIDv7 was made; `None` for anything else.
fn uuid_v7_secs(id: &str) -> Option<i64> {
    let uuid = uuid::Uuid::try_parse(id).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let (secs, _) = uuid.get_timestamp()?.to_unix();
    i64::try_from(secs).ok()
}

/// Syncs a folder's entries (the names of the files in it) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn ends_torn(file: &mut File) -> io::Result<bool> {
    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(length - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Calls `visit` with the key, bytes and line number of every line of `path`
/// whose key reads, in order. The `file:line` of every unreadable line (no
/// key, or `visit` answered false) goes onto `unreadable`.
fn scan_file(
    path: &Path,
    unreadable: &mut Vec<String>,
    mut visit: impl FnMut(RecordKey, &[u8], usize) -> bool,
) -> io::Result<()> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let readable =
            serde_json::from_slice::<RecordKey>(&line).is_ok_and(|key| visit(key, &line, number));
        if !readable {
            unreadable.push(at_line(path, number));
        }
    }
}
