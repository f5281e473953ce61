//! The verdict log: every verdict appended as one JSON line to a file per day
//! (`verdicts-YYYY-MM-DD.jsonl`) in the log folder, readable with `jq` or
//! `tail -f`. A line is written with one append and synced before the verdict
//! is answered; a torn last line left by a crash is closed off before the next
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

/// A folder of verdict log files.
#[derive(Clone, Debug)]
pub struct VerdictLog {
    dir: PathBuf,
    /// One writer at a time, so lines never interleave.
    writer: Arc<Mutex<()>>,
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
            writer: Arc::new(Mutex::new(())),
        })
    }

    /// The folder the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_for(&self, record: &LogRecord) -> PathBuf {
        let day = record.verdict.judged_at.get(..10).unwrap_or("unknown");
        self.dir.join(format!("verdicts-{day}.jsonl"))
    }

    /// Appends `record` as one line and syncs it to disk.
    pub fn append(&self, record: &LogRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let path = self.file_for(record);
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        if ends_torn(&mut file)? {
            // Close off a half line from a crash so this record starts on its own line.
            line.insert(0, b'\n');
        }
        file.write_all(&line)?;
        file.sync_data()
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
        let mut files: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("verdicts-") && n.ends_with(".jsonl"))
            })
            .collect();
        files.sort();
        let mut contents = LogContents::default();
        for path in files {
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
