//! The verdict log: every verdict appended as one JSON line to a file per day
//! (`verdicts-YYYY-MM-DD.jsonl`) in the log folder, readable with `jq` or
//! `tail -f`. A day's file that reaches the size limit is followed by
//! `verdicts-YYYY-MM-DD.1.jsonl`, `.2`, and so on; [`log_files`] lists them in
//! the order they were written. A line is written with one append and synced
//! (with the folder, when the append created the file) before the verdict is
//! answered; a torn last line left by a crash is closed off before the next
//! append and skipped (and reported) by readers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::request::VerdictRequest;
use crate::verdict::Verdict;

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

    /// Reads every record in the folder, oldest first.
    pub fn read_all(&self) -> io::Result<LogContents> {
        let mut contents = LogContents::default();
        for path in log_files(&self.dir)? {
            read_file(&path, &mut contents)?;
        }
        Ok(contents)
    }

    /// Reads on a blocking thread, for async callers.
    pub async fn read_all_async(&self) -> io::Result<LogContents> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.read_all())
            .await
            .map_err(io::Error::other)?
    }
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

fn read_file(path: &Path, contents: &mut LogContents) -> io::Result<()> {
    let reader = BufReader::new(File::open(path)?);
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match serde_json::from_slice::<LogRecord>(&line) {
            Ok(record) => contents.records.push(record),
            Err(_) => contents
                .unreadable
                .push(format!("{}:{}", path.display(), index + 1)),
        }
    }
    Ok(())
}
