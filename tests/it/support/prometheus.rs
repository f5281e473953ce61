//! A real Prometheus server for tests: Debian's binaries (installed by
//! `scripts/install-prometheus` when missing), data backfilled with
//! `promtool tsdb create-blocks-from openmetrics`, listening on loopback.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::simulate::{self, Simulation};

/// Longest wait for Prometheus to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The folder holding `prometheus` and `promtool`, installed once per test run.
fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| installed("install-prometheus"))
}

/// Runs `scripts/<script>` (which installs a tool unless it is on the PATH)
/// and returns the folder it prints, the one holding the tool's binaries.
pub fn installed(script: &str) -> PathBuf {
    let path = super::repo_root().join("scripts").join(script);
    let output = Command::new("bash")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(
        output.status.success(),
        "scripts/{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// What Prometheus's `--web.config.file` asks of clients.
#[derive(Clone, Copy, Debug, Default)]
pub struct Web<'a> {
    /// Serve HTTPS only, with this PEM certificate (chain) and key.
    pub tls: Option<(&'a str, &'a str)>,
    /// Require basic auth of this user, whose password has this bcrypt hash.
    pub basic_auth: Option<(&'a str, &'a str)>,
}

/// A Prometheus process that is killed when dropped.
pub struct TestPrometheus {
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl TestPrometheus {
    /// Backfills `simulation`'s traffic and starts Prometheus on it.
    pub fn start(simulation: &Simulation) -> TestPrometheus {
        let mut text = Vec::new();
        simulate::write_openmetrics(simulation, &mut text).expect("write OpenMetrics");
        TestPrometheus::start_with_openmetrics(&text)
    }

    /// Backfills OpenMetrics `text` and starts Prometheus on it.
    pub fn start_with_openmetrics(text: &[u8]) -> TestPrometheus {
        let prometheus = TestPrometheus::launch(text, &Web::default(), "");
        prometheus.wait_ready();
        prometheus
    }

    /// Backfills `simulation`'s traffic and starts Prometheus on it, scraping
    /// `target` (`host:port`, its `/metrics`) every second as job `canary-gate`.
    pub fn start_scraping(simulation: &Simulation, target: &str) -> TestPrometheus {
        let mut text = Vec::new();
        simulate::write_openmetrics(simulation, &mut text).expect("write OpenMetrics");
        let scrape = format!(
            "scrape_configs:\n  - job_name: canary-gate\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let prometheus = TestPrometheus::launch(&text, &Web::default(), &scrape);
        prometheus.wait_ready();
        prometheus
    }

    /// Backfills `simulation`'s traffic and starts Prometheus serving HTTPS
    /// only, with the PEM certificate (chain) `cert_pem` and its key `key_pem`.
    /// Returns once the process is started: the readiness probe here speaks
    /// plain HTTP, so the caller waits with a client that trusts the certificate.
    pub fn start_https(simulation: &Simulation, cert_pem: &str, key_pem: &str) -> TestPrometheus {
        let web = Web {
            tls: Some((cert_pem, key_pem)),
            basic_auth: None,
        };
        TestPrometheus::start_web(simulation, &web)
    }

    /// Backfills `simulation`'s traffic and starts Prometheus with the web
    /// settings `web` (TLS, basic auth), without waiting for it.
    pub fn start_web(simulation: &Simulation, web: &Web<'_>) -> TestPrometheus {
        let mut text = Vec::new();
        simulate::write_openmetrics(simulation, &mut text).expect("write OpenMetrics");
        TestPrometheus::launch(&text, web, "")
    }

    /// Backfills `text` and starts Prometheus on it, with `web`'s TLS and
    /// basic auth and `extra_config` appended to its configuration file,
    /// without waiting for it.
    fn launch(text: &[u8], web: &Web<'_>, extra_config: &str) -> TestPrometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data.om");
        std::fs::write(&data, text).expect("write data");
        let tsdb = dir.path().join("tsdb");
        let output = Command::new(binaries().join("promtool"))
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&data)
            .arg(&tsdb)
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Every query Prometheus runs is written here, so tests can see what reached it.
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 15s\n  query_log_file: {}\n{extra_config}",
                dir.path().join("queries.log").display()
            ),
        )
        .expect("write config");
        let port = free_port();
        let mut command = Command::new(binaries().join("prometheus"));
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y");
        let mut web_config = String::new();
        if let Some((cert_pem, key_pem)) = web.tls {
            let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
            std::fs::write(&cert, cert_pem).expect("write certificate");
            std::fs::write(&key, key_pem).expect("write key");
            web_config.push_str(&format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some((user, bcrypt_hash)) = web.basic_auth {
            web_config.push_str(&format!("basic_auth_users:\n  {user}: '{bcrypt_hash}'\n"));
        }
        if !web_config.is_empty() {
            let path = dir.path().join("web.yml");
            std::fs::write(&path, web_config).expect("write web config");
            command.arg(format!("--web.config.file={}", path.display()));
        }
        let scheme = if web.tls.is_some() { "https" } else { "http" };
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("log file"))
            .spawn()
            .expect("start prometheus");
        TestPrometheus {
            url: format!("{scheme}://127.0.0.1:{port}"),
            dir,
            child,
        }
    }

    fn wait_ready(&self) {
        let ready = format!("{}/-/ready", self.url);
        assert!(
            answers_ok_within(&ready, READY_TIMEOUT),
            "Prometheus did not become ready within {READY_TIMEOUT:?}:\n{}",
            self.server_log()
        );
    }

    /// What Prometheus has written to stderr so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The queries Prometheus has run so far, from its query log.
    pub fn query_log(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("queries.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|entry| entry["params"]["query"].as_str().map(str::to_string))
            .collect()
    }
}

impl TestPrometheus {
    /// The folder holding `prometheus` and `promtool`.
    pub fn binary_dir() -> &'static Path {
        binaries()
    }

    /// The process id, for what `/proc` tells of it (the benchmark's CPU figures).
    // Only benches/verdict_cost.rs, which includes this file, asks for it.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails the test when any query reached Prometheus.
    pub fn assert_no_queries(&self) {
        let log = self.query_log();
        assert!(log.is_empty(), "queries reached Prometheus: {log:?}");
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub use probe::{answers_ok, send};

/// Whether a GET of `url` answers 200 within `timeout`, asked every 100 ms:
/// how the tests wait for a process they started.
pub fn answers_ok_within(url: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if matches!(answers_ok(url), Ok(true)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A blocking HTTP/1.0 client over std's TCP, so no blocking HTTP client is needed.
mod probe {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// Whether a GET of `url` (http://host:port/path) answers 200.
    pub fn answers_ok(url: &str) -> std::io::Result<bool> {
        Ok(send("GET", url, b"", Duration::from_secs(2))? == 200)
    }

    /// Sends `method` to `url` (http://host:port/path?query) with `body`,
    /// waiting at most `timeout` for each read, and returns the answer's status.
    pub fn send(method: &str, url: &str, body: &[u8], timeout: Duration) -> std::io::Result<u16> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(timeout))?;
        write!(
            stream,
            "{method} /{path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        stream.write_all(body)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        // "HTTP/1.1 204 No Content": the status is the second word.
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok());
        status.ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:.80}")))
    }
}
