//! A real single-node VictoriaMetrics for tests: Debian's binary (installed
//! by `scripts/install-victoria-metrics` when missing), the same synthetic
//! data as [`TestPrometheus`](super::prometheus::TestPrometheus) loaded
//! through its import API, listening on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::prometheus::{READY_TIMEOUT, answers_ok_within, free_port, installed, send};
use super::simulate::{self, Simulation};

/// Longest wait for the import of a test's data to be answered.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// The folder holding `victoria-metrics`, installed once per test run.
fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| installed("install-victoria-metrics"))
}

/// A VictoriaMetrics process that is killed when dropped.
pub struct TestVictoria {
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl TestVictoria {
    /// Starts VictoriaMetrics and imports `simulation`'s traffic into it.
    pub fn start(simulation: &Simulation) -> TestVictoria {
        let mut text = Vec::new();
        simulate::write_openmetrics(simulation, &mut text).expect("write OpenMetrics");
        TestVictoria::start_with_openmetrics(&text)
    }

    /// Starts VictoriaMetrics and imports the OpenMetrics `text` into it;
    /// returns once every sample is visible to queries.
    pub fn start_with_openmetrics(text: &[u8]) -> TestVictoria {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new(binaries().join("victoria-metrics"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            // The default (1 month) would refuse nothing here, but the long
            // windows' backfill must never fall outside it; like Prometheus's 100y.
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("victoria.log")).expect("log file"))
            .spawn()
            .expect("start victoria-metrics");
        // The response cache, `-search.latencyOffset` (30 s) and lookback stay
        // at their defaults, as a team runs it: the data is in place before
        // the first query (nothing stale is cached) and ends minutes before now.
        let victoria = TestVictoria {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        victoria.wait_ready();
        victoria.import(&prometheus_text(text));
        victoria
    }

    fn wait_ready(&self) {
        let health = format!("{}/health", self.url);
        assert!(
            answers_ok_within(&health, READY_TIMEOUT),
            "VictoriaMetrics did not become ready within {READY_TIMEOUT:?}:\n{}",
            self.server_log()
        );
    }

    /// Imports Prometheus exposition `text`, then flushes VictoriaMetrics's
    /// in-memory buffers: without the flush, imported samples become
    /// searchable only at the next periodic flush, and a test could look too early.
    fn import(&self, text: &[u8]) {
        let import = format!("{}/api/v1/import/prometheus", self.url);
        let status = send("POST", &import, text, IMPORT_TIMEOUT).expect("import data");
        assert_eq!(status, 204, "import refused:\n{}", self.server_log());
        let flush = format!("{}/internal/force_flush", self.url);
        let status = send("GET", &flush, b"", IMPORT_TIMEOUT).expect("flush");
        assert_eq!(status, 200, "flush refused:\n{}", self.server_log());
    }

    /// What VictoriaMetrics has written to stderr so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("victoria.log")).unwrap_or_default()
    }
}

impl Drop for TestVictoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OpenMetrics `text` as the Prometheus exposition format that
/// `/api/v1/import/prometheus` documents: timestamps in milliseconds, not
/// OpenMetrics's seconds, and no `# EOF`. (1.79 happens to read second
/// timestamps too, by their size; the documented unit does not rely on that.)
pub fn prometheus_text(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        out.push_str(&with_millisecond_timestamp(line));
        out.push('\n');
    }
    out.into_bytes()
}

/// A sample line with its timestamp (the word after the value) in
/// milliseconds; comments and lines without a timestamp as they are.
fn with_millisecond_timestamp(line: &str) -> String {
    if line.starts_with('#') {
        return line.to_string();
    }
    // The value and timestamp follow the label set, or the name when there is none.
    let labels_end = line
        .rfind('}')
        .map(|i| i + 1)
        .or_else(|| line.find(' '))
        .unwrap_or(line.len());
    let (series, rest) = line.split_at(labels_end);
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words[..] {
        [value, seconds] => {
            let seconds: f64 = seconds.parse().expect("an OpenMetrics timestamp");
            format!("{series} {value} {}", (seconds * 1000.0).round() as i64)
        }
        _ => line.to_string(),
    }
}

mod tests {
    use super::prometheus_text;

    // Timestamps become milliseconds, label values keep their spaces, and `# EOF` goes.
    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let text = "# TYPE cpu gauge\ncpu{pod=\"a b\"} 0.5 1700000000\nup 1 1700000000.25\nbare 3\n# EOF\n";
        assert_eq!(
            String::from_utf8(prometheus_text(text.as_bytes())).expect("text"),
            "# TYPE cpu gauge\ncpu{pod=\"a b\"} 0.5 1700000000000\nup 1 1700000000250\nbare 3\n"
        );
    }
}
