//! Logging set up in one place, writing wherever the caller says, so tests can
//! silence or capture it. A leaf: the doors call it, it uses no stage.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber: human-readable lines, or JSON lines when
/// `json` is set, filtered by `RUST_LOG` (default `info`).
pub fn init<W>(writer: W, json: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // A second init (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
