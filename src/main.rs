//! The `canary-gate` command: parses the command line and calls the library.
//!
//! Exit codes are stable: 0 promote, 1 rollback, 2 inconclusive, 3 error.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use canary_gate::log::VerdictLog;
use canary_gate::request::TimeSpec;
use canary_gate::server::{self, AppState};
use canary_gate::simulate::{self, SideTraffic, Simulation};
use canary_gate::source::PrometheusSource;

/// Exit code for an error (bad arguments, unreachable server).
const EXIT_ERROR: u8 = 3;

/// Observability-gated canary analysis: asks Prometheus how a canary and its
/// baseline behave, applies the statistical rules in your rule files, and
/// answers promote, rollback or inconclusive.
///
/// Exit codes: 0 promote, 1 rollback, 2 inconclusive, 3 error.
#[derive(Debug, Parser)]
#[command(name = "canary-gate", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(ServeArgs),
    Simulate(SimulateArgs),
}

/// Run the verdict service: `POST /v1/verdicts` judges a canary.
///
/// Example:
///   canary-gate serve --prometheus-url http://127.0.0.1:9090 --rules-dir rules
///   curl -s localhost:8080/v1/verdicts -d '{"rules":"http","deployment":"checkout-1402",
///     "canary":{"track":"canary"},"baseline":{"track":"baseline"},
///     "start":"2026-11-26T14:05:00Z","vars":{"service":"checkout"}}'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CANARY_GATE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL of Prometheus or a Prometheus-compatible store.
    #[arg(long, env = "PROMETHEUS_URL", default_value = "http://127.0.0.1:9090")]
    prometheus_url: String,
    /// Folder of rule files (`<name>.yaml`, one rule set each).
    #[arg(long, env = "CANARY_GATE_RULES_DIR", default_value = "rules")]
    rules_dir: PathBuf,
    /// Folder the verdict log is appended to (`verdicts-YYYY-MM-DD.jsonl`).
    #[arg(long, env = "CANARY_GATE_LOG_DIR", default_value = "verdicts")]
    log_dir: PathBuf,
    /// Client-side deadline for each Prometheus query, e.g. `30s`.
    #[arg(long, env = "CANARY_GATE_QUERY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    query_timeout: Duration,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CANARY_GATE_LOG_JSON")]
    log_json: bool,
}

/// Write synthetic canary and baseline traffic as OpenMetrics text, ready for
/// `promtool tsdb create-blocks-from openmetrics`. For demos and trials.
///
/// Example (a healthy baseline and a canary with three times its errors):
///   canary-gate simulate --out data.om --minutes 30 \
///     --side 'service=checkout,track=baseline;rps=20;errors=1%' \
///     --side 'service=checkout,track=canary;rps=20;errors=3%'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct SimulateArgs {
    /// File to write; `-` for standard output.
    #[arg(long)]
    out: PathBuf,
    /// Start of the traffic, RFC 3339 or unix seconds; default: `--minutes` before now.
    #[arg(long)]
    start: Option<String>,
    /// Minutes of traffic.
    #[arg(long, default_value_t = 30)]
    minutes: i64,
    /// Seconds between scrapes.
    #[arg(long, default_value_t = 15)]
    scrape_interval: i64,
    /// Seed of the random draws; the same seed gives the same traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A side: labels, then `;`-separated settings rps, errors, slow, pods, restart_after.
    #[arg(long = "side", required = true)]
    sides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("canary-gate: error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Simulate(args) => simulate(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    canary_gate::telemetry::init(std::io::stderr, args.log_json);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let source = PrometheusSource::new(&args.prometheus_url, args.query_timeout)
            .with_context(|| format!("--prometheus-url {}", args.prometheus_url))?;
        let log = VerdictLog::open(&args.log_dir)?;
        let state = Arc::new(AppState::new(source, args.rules_dir.clone(), log));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, prometheus = %args.prometheus_url, "canary-gate is serving");
        server::run(listener, state, shutdown_signal()).await?;
        tracing::info!("canary-gate stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let sides = args
        .sides
        .iter()
        .map(|s| SideTraffic::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let duration_secs = args.minutes * 60;
    let start_secs = match &args.start {
        Some(text) => {
            // The same forms a verdict request accepts.
            canary_gate::request::parse_time("start", &TimeSpec::Text(text.clone()))?
        }
        None => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            now - now % 60 - duration_secs
        }
    };
    let simulation = Simulation {
        start_secs,
        duration_secs,
        scrape_interval_secs: args.scrape_interval,
        seed: args.seed,
        sides,
    };
    if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        simulate::write_openmetrics(&simulation, &mut out)?;
        out.flush()?;
    } else {
        let file = std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        let mut out = std::io::BufWriter::new(file);
        simulate::write_openmetrics(&simulation, &mut out)?;
        out.flush()?;
    }
    eprintln!(
        "wrote {} minutes of traffic from {} for {} sides",
        args.minutes,
        canary_gate::request::format_time(start_secs),
        simulation.sides.len()
    );
    Ok(ExitCode::SUCCESS)
}
