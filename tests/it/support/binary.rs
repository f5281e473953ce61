//! The real `canary-gate` binary, for what only a process shows: signals,
//! exit codes, refusals at start-up and what it writes to stderr.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::prometheus::free_port;

/// Longest wait for the server to answer `/healthz` (a hang guard, not a timing check).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_canary-gate"))
}

/// A `canary-gate serve` process, killed when dropped; its stderr goes to a file.
pub struct ServeProcess {
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl ServeProcess {
    /// Starts `canary-gate serve` on a free loopback port with `rules_dir`, a
    /// fresh log folder, `extra` arguments and `env` variables, and waits until it answers.
    pub fn start(
        prometheus_url: &str,
        rules_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr file");
        let child = Command::new(binary())
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--prometheus-url")
            .arg(prometheus_url)
            .arg("--rules-dir")
            .arg(rules_dir)
            .arg("--log-dir")
            .arg(dir.path().join("verdicts"))
            .args(extra)
            .env_remove("CANARY_GATE_TOKENS")
            .envs(env.iter().copied())
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start canary-gate serve");
        let server = ServeProcess {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        server.wait_healthy();
        server
    }

    /// Starts the binary with exactly `args` and `env` (no flags of its own,
    /// nothing of the test's environment, a fresh temp folder as working
    /// directory, so defaults cannot find the repository's files), and waits
    /// until `url`'s `/healthz` answers: for commands written down elsewhere
    /// (a manifest, a unit file) that must start as they are.
    pub fn start_exact(url: &str, args: &[String], env: &[(String, String)]) -> ServeProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr file");
        let child = Command::new(binary())
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(name, value)| (name, value)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start canary-gate");
        let mut server = ServeProcess {
            url: url.to_string(),
            dir,
            child,
        };
        // A refusal to start is told at once, with its reason, not after START_TIMEOUT.
        let deadline = Instant::now() + START_TIMEOUT;
        let health = format!("{url}/healthz");
        while !matches!(super::prometheus::answers_ok(&health), Ok(true)) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("canary-gate exited ({status}):\n{}", server.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "canary-gate did not answer within {START_TIMEOUT:?}:\n{}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn wait_healthy(&self) {
        let health = format!("{}/healthz", self.url);
        assert!(
            super::prometheus::answers_ok_within(&health, START_TIMEOUT),
            "canary-gate serve did not answer within {START_TIMEOUT:?}:\n{}",
            self.stderr()
        );
    }

    /// Everything the server wrote to stderr so far (its tracing output).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The verdict log folder.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("verdicts")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with `args` to completion (no stdin) and returns what it did.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary())
        .args(args)
        .env_remove("CANARY_GATE_TOKENS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run canary-gate")
}

/// Asserts that a finished `canary-gate` run exited with `code`, showing its
/// stdout and stderr if not, and returns its stdout.
pub fn assert_exit(output: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
