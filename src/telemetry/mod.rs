//! Telemetry set up in one place: the process's logs, written wherever the
//! caller says so tests can silence or capture them, the [`Recorder`] a
//! verdict reports itself to, and canary-gate's own metrics ([`metrics`]).
//! A leaf: the doors and the pipe use it, it uses no stage.

pub mod metrics;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogStyle {
    /// JSON lines instead of text.
    pub json: bool,
    /// ANSI colours in text lines: only for a terminal, never for a file or a pipe.
    pub ansi: bool,
}

impl LogStyle {
    /// The format for standard error: colours only when it is a terminal.
    pub fn for_stderr(json: bool) -> LogStyle {
        use std::io::IsTerminal;
        LogStyle {
            json,
            ansi: std::io::stderr().is_terminal(),
        }
    }
}

/// Installs the global subscriber writing to `writer` in `format`, filtered
/// by `RUST_LOG` (default `info`).
pub fn init<W>(writer: W, format: LogStyle)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // A second init (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber(writer, format));
}

/// The subscriber [`init`] installs, for tests that capture one scope's logs.
pub fn subscriber<W>(writer: W, format: LogStyle) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if format.json {
        // JSON carries no colour codes whatever `ansi` says.
        Box::new(builder.json().with_ansi(false).finish())
    } else {
        Box::new(builder.with_ansi(format.ansi).finish())
    }
}

/// What a verdict reports about itself as it is made, for whoever keeps
/// count (the server's `/metrics`). Words, not types, so this leaf needs no
/// stage: outcomes as the API spells them, error kinds as [`ERROR_KINDS`].
pub trait Recorder: Send + Sync {
    /// One distinct query to the metric store took `seconds` (its retries
    /// included) and ended in `error_kind`, or in an answer when `None`.
    fn query(&self, source: &str, seconds: f64, error_kind: Option<&str>);
    /// A metric of rule set `rules` was judged `outcome` (`pass`, `fail`,
    /// ...); `shadow` when it was a shadow metric, not counted in the verdict.
    fn metric_outcome(&self, rules: &str, metric: &str, outcome: &str, shadow: bool);
    /// A verdict of rule set `rules` was `verdict`, made in `seconds`.
    fn verdict(&self, rules: &str, verdict: &str, seconds: f64);
    /// A verdict could not be written to the verdict log, so it was not given.
    fn log_write_failed(&self);
}

/// The kinds a failed store query is counted under: one per way a source
/// fails, and `deadline` for a query cut off by the verdict's deadline.
pub const ERROR_KINDS: [&str; 7] = [
    "unreachable",
    "timeout",
    "http",
    "query",
    "partial",
    "bad_response",
    "deadline",
];

/// A [`Recorder`] that keeps nothing: for the one-shot CLI and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRecorder;

impl Recorder for NoRecorder {
    fn query(&self, _source: &str, _seconds: f64, _error_kind: Option<&str>) {}
    fn metric_outcome(&self, _rules: &str, _metric: &str, _outcome: &str, _shadow: bool) {}
    fn verdict(&self, _rules: &str, _verdict: &str, _seconds: f64) {}
    fn log_write_failed(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // Text logs written to a file or a pipe (not a terminal) carry no ANSI colour codes.
    #[test]
    fn text_logs_to_a_non_terminal_carry_no_colour_codes() {
        let captured = Captured::default();
        let writer = captured.clone();
        let format = LogStyle {
            json: false,
            ansi: false,
        };
        tracing::subscriber::with_default(subscriber(move || writer.clone(), format), || {
            let span = tracing::info_span!("verdict", id = "v1", rules = "http");
            let _entered = span.enter();
            tracing::warn!(attempt = 1, "transient Prometheus fault; asking again");
        });
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(text.contains("asking again"), "{text:?}");
        assert!(!text.contains("\x1b["), "{text:?}");
    }
}
