//! The `canary-gate` command, the CLI door into the pipe: parses the command
//! line (clap lives only here) and calls the library. `judge` runs the same
//! [`canary_gate::pipe::judge`] the server runs; `serve` starts the HTTP door.
//!
//! Exit codes are stable: 0 promote, 1 rollback, 2 inconclusive, 3 error
//! (bad arguments, an unreachable server, rules that cannot be read or are
//! invalid), for every command; `main` maps every error to 3 in one place.

mod check;
// Shared with the Monte Carlo tests, which use parts `plan` does not.
#[allow(dead_code)]
mod monte_carlo;
mod planning;
mod replay;
mod rule_test;
mod simulate;
mod wait;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use canary_gate::http::admission::VerdictLimits;
use canary_gate::http::auth::{self, AccessPolicy, Tokens};
use canary_gate::http::{self, AppState};
use canary_gate::pipe::{self, PipeError};
use canary_gate::request::{SideSelector, SideSpec, TimeSpec, VerdictRequest};
use canary_gate::rules::store;
use canary_gate::source::{
    self, PrometheusSource, RetryPolicy, Retrying, Sources, SourcesConfig, WindowCache,
};
use canary_gate::telemetry::{LogStyle, NoRecorder};
use canary_gate::verdict::history;
use canary_gate::verdict::log::VerdictLog;
use canary_gate::verdict::{MetricReport, Outcome, Percentile, Verdict};
use simulate::{SideTraffic, Simulation};

/// Exit code for an error: bad arguments, an unreachable server, rules that
/// cannot be read or are invalid.
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
    Wait(WaitArgs),
    Judge(JudgeArgs),
    Replay(ReplayArgs),
    Check(CheckArgs),
    Log(LogArgs),
    Simulate(SimulateArgs),
    Test(TestArgs),
    Plan(PlanArgs),
}

/// Validate rule files like `promtool check rules`: every problem as
/// `file:line:col: message` on stderr. For each valid file, prints the PromQL
/// every metric will send for an example canary and baseline.
///
/// Exit codes: 0 all valid, 3 any problem (1 stays "rollback" everywhere).
///
/// Example:
///   canary-gate check rules/
///   canary-gate check rules/http.yaml --canary 'track=canary' --var service=checkout
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct CheckArgs {
    /// Rule files or folders of them.
    #[arg(default_value = "rules")]
    paths: Vec<PathBuf>,
    /// Example canary labels for the shown queries.
    #[arg(long, default_value = "track=canary")]
    canary: String,
    /// Example baseline labels for the shown queries.
    #[arg(long, default_value = "track=baseline")]
    baseline: String,
    /// Example value for a `$var`: `name=value` (repeatable); others show as `$name`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
}

/// Plan a canary before running it: how fast a metric of a rule set would
/// roll back a canary with a given effect, and how often it would roll back or
/// promote early a healthy one, at your traffic. Simulates --canaries canaries
/// with the effect and as many healthy ones (Poisson traffic per step, seeded
/// by --seed) and judges each with the metric's own tests: its tolerance, its
/// share of the rule set's alpha, min_requests, the final-look test, early
/// promotion, on_timeout, the rule set's step, looks every --every over
/// --duration. For a latency metric, --base-rate is the baseline's share of
/// slow requests. Series and threshold metrics have no rate to simulate and
/// are refused.
///
/// Exit codes: 0 planned, 3 error.
///
/// Example: a 2x error regression at 1% errors, 20 requests/s of which the
/// canary gets a quarter:
///   canary-gate plan --rules http --metric error-rate --rps 20 --split 1:3 \
///     --base-rate 1% --effect 2x
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct PlanArgs {
    /// Folder of rule files.
    #[arg(long, env = "CANARY_GATE_RULES_DIR", default_value = "rules")]
    rules_dir: PathBuf,
    /// The rule set, by name (`http` for rules/http.yaml).
    #[arg(long)]
    rules: String,
    /// The metric of the rule set to plan for (a ratio or latency metric).
    #[arg(long)]
    metric: String,
    /// Requests per second the canary and the baseline serve together.
    #[arg(long)]
    rps: f64,
    /// The canary's and the baseline's shares of the requests, canary:baseline.
    #[arg(long, default_value = "1:1", value_parser = parse_split)]
    split: (f64, f64),
    /// The baseline's rate of bad events (for a latency metric, of slow
    /// requests), such as `1%` or `0.01`.
    #[arg(long, value_parser = parse_rate)]
    base_rate: f64,
    /// The canary's rate over the baseline's, such as `2x` (twice the errors).
    #[arg(long, value_parser = parse_effect)]
    effect: f64,
    /// Length of the analysis from the canary's start; its last look is final.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Time between looks, as `wait --every`.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Canaries simulated with the effect, and as many healthy ones.
    #[arg(long, default_value_t = 2000)]
    canaries: usize,
    /// Seed of the simulated canaries (the healthy ones use seed + 1).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Format of the plan on stdout.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

/// `1:3` as the canary's and the baseline's shares.
fn parse_split(text: &str) -> Result<(f64, f64), String> {
    let problem = || format!("`{text}` is not a split; write canary:baseline shares, such as 1:3");
    let (canary, baseline) = text.split_once(':').ok_or_else(problem)?;
    let share = |part: &str| part.trim().parse::<f64>().map_err(|_| problem());
    Ok((share(canary)?, share(baseline)?))
}

/// `1%` or `0.01` as a fraction.
fn parse_rate(text: &str) -> Result<f64, String> {
    let problem = || {
        format!("`{text}` is not a rate; write a percentage such as 1% or a fraction such as 0.01")
    };
    match text.trim().strip_suffix('%') {
        Some(percent) => percent
            .trim()
            .parse::<f64>()
            .map(|p| p / 100.0)
            .map_err(|_| problem()),
        None => text.trim().parse::<f64>().map_err(|_| problem()),
    }
}

/// `2x` or `2` as a ratio.
fn parse_effect(text: &str) -> Result<f64, String> {
    let number = text.trim();
    let number = number.strip_suffix(['x', 'X']).unwrap_or(number);
    number.trim().parse::<f64>().map_err(|_| {
        format!("`{text}` is not an effect; write the canary's rate over the baseline's, such as 2x or 1.5x")
    })
}

/// Run rule unit tests, like `promtool test rules`: each test file names a
/// rule file and gives the canary's and the baseline's series in the expanding
/// notation (`0+10x180`, `_`, `stale`), and the looks with the verdict and
/// metric outcomes they must give. Each look runs through the same pipe as a
/// real verdict, against an in-memory source that evaluates the planned PromQL.
/// Prints `ok` or the failure, with its figures, per look; exit 0 when all
/// pass, 3 when any fails or a file is invalid. See docs/rules.md, "Testing rules".
///
/// Example:
///   canary-gate test rules/tests/
///   canary-gate test rules/tests/http.yaml
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct TestArgs {
    /// Test files or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// What to judge: the same fields as a `POST /v1/verdicts` body.
#[derive(Debug, clap::Args)]
struct RequestArgs {
    /// Rule set to apply (a file stem in the rules folder), e.g. `http`.
    #[arg(long)]
    rules: String,
    /// The pipeline's name for this rollout, e.g. `checkout-1402`.
    #[arg(long)]
    deployment: String,
    /// The canary's labels: `label=value[,label=value...]` or a selector like '{track="canary",pod=~"web-.*"}'.
    #[arg(long)]
    canary: String,
    /// The baseline's labels, in the same forms as --canary.
    #[arg(long)]
    baseline: String,
    /// When the canary began taking traffic: RFC 3339 or unix seconds.
    #[arg(long)]
    start: String,
    /// A value for one of the rule set's `$vars`: `name=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
}

impl RequestArgs {
    fn to_request(&self) -> anyhow::Result<VerdictRequest> {
        Ok(VerdictRequest {
            rules: self.rules.clone(),
            deployment: self.deployment.clone(),
            canary: side_spec(&self.canary).context("--canary")?,
            baseline: side_spec(&self.baseline).context("--baseline")?,
            start: Some(TimeSpec::Text(self.start.clone())),
            end: None,
            vars: parse_vars(&self.vars)?,
            is_final: false,
            final_after: None,
        })
    }
}

/// `name=value` pairs from repeated `--var`.
fn parse_vars(pairs: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut vars = std::collections::BTreeMap::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--var `{pair}` must look like name=value"))?;
        vars.insert(name.trim().to_string(), value.to_string());
    }
    Ok(vars)
}

/// `label=value,label=value` or a `{...}` selector string, checked now so a
/// bad argument fails before anything is asked.
fn side_spec(text: &str) -> anyhow::Result<SideSpec> {
    SideSelector::parse(text)?;
    Ok(SideSpec::Selector(text.trim().to_string()))
}

/// How to print the final verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// The verdict as JSON, as the API answers it.
    Json,
    /// The verdict, its reason and one line per metric.
    Text,
}

/// Ask a canary-gate server until the verdict is promote or rollback; the
/// pipeline step for deploy jobs. Prints a progress line per look on stderr and
/// the final verdict on stdout. Sends `final: true` at the deadline.
///
/// Exit codes: 0 promote, 1 rollback, 2 inconclusive, 3 error.
///
/// Example:
///   canary-gate wait --server http://canary-gate:8080 --rules http \
///     --deployment checkout-1402 --canary track=canary --baseline track=baseline \
///     --start "$CANARY_STARTED_AT" --var service=checkout --timeout 30m --every 30s
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct WaitArgs {
    /// Base URL of the canary-gate server.
    #[arg(long, env = "CANARY_GATE_SERVER")]
    server: String,
    #[command(flatten)]
    request: RequestArgs,
    /// How long to keep asking before the final look, e.g. `30m`.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Pause between looks, e.g. `30s`.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// File whose first token line (blank and `#` lines skipped) is the bearer token for the server.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Format of the final verdict on stdout.
    #[arg(long, value_enum, default_value = "json")]
    output: Output,
}

/// Where the metrics come from: one Prometheus URL, or the named sources of a
/// config file.
#[derive(Debug, clap::Args)]
struct SourceArgs {
    /// Base URL of Prometheus or a Prometheus-compatible store (the one-source
    /// shortcut; --config replaces it).
    #[arg(
        long,
        visible_alias = "prometheus",
        env = "PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    prometheus_url: String,
    /// PEM file of CA certificates to trust for an https --prometheus-url, beside the system's.
    #[arg(long, env = "CANARY_GATE_PROMETHEUS_CA_FILE")]
    prometheus_ca_file: Option<PathBuf>,
    /// Client-side deadline for each query to --prometheus-url, e.g. `30s`.
    #[arg(long, env = "CANARY_GATE_QUERY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    query_timeout: Duration,
    /// Config file (YAML) declaring named metric sources: URLs, credentials,
    /// headers such as X-Scope-OrgID, TLS. Replaces --prometheus-url; see
    /// docs/deploying.md.
    #[arg(long, env = "CANARY_GATE_CONFIG")]
    config: Option<PathBuf>,
}

impl SourceArgs {
    /// The sources these arguments declare, their secrets and files read now.
    fn load(&self) -> anyhow::Result<SourcesConfig> {
        if let Some(path) = &self.config {
            return SourcesConfig::load(path, &|name| std::env::var(name).ok()).map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                anyhow::anyhow!("the config file has problems:\n  {}", lines.join("\n  "))
            });
        }
        let mut config = SourcesConfig::single(&self.prometheus_url, self.query_timeout);
        if let Some(path) = &self.prometheus_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --prometheus-ca-file {}", path.display()))?;
            for settings in config.sources.values_mut() {
                settings.tls.ca_pem = Some(pem.clone());
            }
        }
        Ok(config)
    }

    /// The clients for [`SourceArgs::load`]'s sources.
    fn build(&self) -> anyhow::Result<Sources<source::PrometheusStack>> {
        let config = self.load()?;
        let what = match &self.config {
            Some(path) => format!("--config {}", path.display()),
            None => format!("--prometheus-url {}", self.prometheus_url),
        };
        source::prometheus_sources(&config).with_context(|| what)
    }

    /// The clients for [`SourceArgs::load`]'s sources, each behind a
    /// [`WindowCache`] for looks that end by `end_secs`. One look at a time
    /// is judged, so nothing is in flight to coalesce.
    fn build_cached(
        &self,
        end_secs: i64,
    ) -> anyhow::Result<Sources<WindowCache<Retrying<PrometheusSource>>>> {
        let config = self.load()?;
        let mut caches = std::collections::BTreeMap::new();
        for (name, settings) in &config.sources {
            let client = PrometheusSource::from_settings(settings)
                .with_context(|| format!("metric source `{name}`"))?;
            let retrying = Retrying::new(client, RetryPolicy::default());
            caches.insert(name.clone(), WindowCache::new(retrying, end_secs));
        }
        Sources::new(caches, &config.default_source).map_err(anyhow::Error::msg)
    }

    /// Where the sources come from, for the start-up log line.
    fn origin(&self) -> String {
        match &self.config {
            Some(path) => path.display().to_string(),
            None => self.prometheus_url.clone(),
        }
    }
}

/// What an in-process verdict judges and with what: the metric sources, the
/// rules folder and the request.
#[derive(Debug, clap::Args)]
struct InProcessArgs {
    #[command(flatten)]
    sources: SourceArgs,
    /// Folder of rule files.
    #[arg(long, env = "CANARY_GATE_RULES_DIR", default_value = "rules")]
    rules_dir: PathBuf,
    #[command(flatten)]
    request: RequestArgs,
}

/// Judge a canary once, in process, straight against Prometheus: no server
/// needed. Prints the verdict on stdout.
///
/// Exit codes: 0 promote, 1 rollback, 2 inconclusive, 3 error.
///
/// Example:
///   canary-gate judge --prometheus http://127.0.0.1:9090 --rules http \
///     --deployment checkout-1402 --canary track=canary --baseline track=baseline \
///     --start 2026-11-26T14:05:00Z --var service=checkout --final
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct JudgeArgs {
    #[command(flatten)]
    judged: InProcessArgs,
    /// Judge as of this instant (RFC 3339 or unix seconds) instead of now.
    #[arg(long)]
    end: Option<String>,
    /// This is the last look: undecided metrics resolve by the rule set's on_timeout.
    #[arg(long = "final")]
    is_final: bool,
    /// Also append the verdict to the verdict log in this folder.
    #[arg(long, env = "CANARY_GATE_LOG_DIR")]
    log_dir: Option<PathBuf>,
    /// Budget of the whole verdict, every query and retry included; a query
    /// unanswered by then is an error and the verdict is never promote.
    #[arg(long, env = "CANARY_GATE_VERDICT_TIMEOUT", default_value_t = pipe::DEFAULT_VERDICT_TIMEOUT.into())]
    verdict_timeout: humantime::Duration,
    /// Format of the verdict on stdout.
    #[arg(long, value_enum, default_value = "json")]
    output: Output,
}

/// Replay a rule set on a past window, look by look, straight against the
/// metric store: "had this rule set been in force for last Tuesday's deploy,
/// when would it have rolled back?". Looks are made every --every from
/// --start, as `wait` looking every --every would have (the first one --every
/// after --start), up to --end; each is judged with `final: false`, except
/// with --final-at, whose look is judged final (undecided metrics resolve by
/// the rule set's on_timeout) and is the last. Prints each look's metric
/// outcomes and verdict, then the first look decided (promote or rollback)
/// with its reason, then how many queries reached the store: each range query
/// is sent once for the whole window and every look is judged from its
/// answer, its statistics going on from the last look's (the answers are a
/// fresh look's); instant queries (threshold metrics) are sent at each look.
/// Nothing is written to the verdict log.
///
/// Exit codes: the first decided verdict's, 0 promote, 1 rollback; 2 never
/// decided; 3 error.
///
/// Example:
///   canary-gate replay --prometheus http://127.0.0.1:9090 --rules http \
///     --deployment checkout-1402 --canary track=canary --baseline track=baseline \
///     --start 2026-11-24T14:05:00Z --end 2026-11-24T14:35:00Z --var service=checkout
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct ReplayArgs {
    #[command(flatten)]
    judged: InProcessArgs,
    /// End of the replayed window, RFC 3339 or unix seconds; no look is made after it.
    #[arg(long)]
    end: String,
    /// Time between looks, e.g. `30s`.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Judge the look this long after --start as final, and stop there, e.g.
    /// `30m` (default: no final look).
    #[arg(long, value_parser = humantime::parse_duration)]
    final_at: Option<Duration>,
    /// Budget of each look's verdict, every query and retry included; the
    /// first look's queries ask for the whole window, so a long one may need more.
    #[arg(long, env = "CANARY_GATE_VERDICT_TIMEOUT", default_value_t = pipe::DEFAULT_VERDICT_TIMEOUT.into())]
    verdict_timeout: humantime::Duration,
    /// Format of the replay on stdout: one line per look, or one JSON document.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

/// Read the verdict log: one line per verdict, oldest first.
///
/// Example:
///   canary-gate log --deployment checkout-1402 --since 24h
///   canary-gate log --verdict rollback --follow
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct LogArgs {
    /// Folder of the verdict log.
    #[arg(long, env = "CANARY_GATE_LOG_DIR", default_value = "verdicts")]
    log_dir: PathBuf,
    /// Only this deployment.
    #[arg(long)]
    deployment: Option<String>,
    /// Only this rule set.
    #[arg(long)]
    rules: Option<String>,
    /// Only this verdict: promote, rollback or inconclusive.
    #[arg(long)]
    verdict: Option<String>,
    /// Only verdicts from the last span, e.g. `24h`, `30m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Keep printing verdicts as they are appended, like `tail -f`.
    #[arg(long)]
    follow: bool,
    /// One aligned line per verdict, or JSON lines.
    #[arg(long, value_enum, default_value = "table")]
    output: LogFormat,
}

/// How `log` prints verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One aligned line per verdict.
    Table,
    /// The verdict as one JSON line, as logged.
    Json,
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
    #[command(flatten)]
    sources: SourceArgs,
    /// Folder of rule files (`<name>.yaml`, one rule set each).
    #[arg(long, env = "CANARY_GATE_RULES_DIR", default_value = "rules")]
    rules_dir: PathBuf,
    /// Folder the verdict log is appended to (`verdicts-YYYY-MM-DD.jsonl`).
    #[arg(long, env = "CANARY_GATE_LOG_DIR", default_value = "verdicts")]
    log_dir: PathBuf,
    /// Budget of each whole verdict, every query and retry included, e.g. `8s`;
    /// a query unanswered by then is an error and the verdict is never promote.
    #[arg(long, env = "CANARY_GATE_VERDICT_TIMEOUT", default_value_t = pipe::DEFAULT_VERDICT_TIMEOUT.into())]
    verdict_timeout: humantime::Duration,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CANARY_GATE_LOG_JSON")]
    log_json: bool,
    /// File of bearer tokens, one per line, required by the write endpoints
    /// (more can be given comma-separated in CANARY_GATE_TOKENS).
    #[arg(long, env = "CANARY_GATE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Require a token for the read endpoints too (all but /healthz, /readyz, /metrics, /openapi.json).
    #[arg(long, env = "CANARY_GATE_PROTECT_READS")]
    protect_reads: bool,
    /// Serve on a non-loopback address without tokens (something in front checks access).
    #[arg(long)]
    insecure_no_auth: bool,
    /// Do not watch the rules folder; reload only on SIGHUP and POST /v1/rules/reload.
    #[arg(long, env = "CANARY_GATE_NO_WATCH")]
    no_watch: bool,
    /// Verdicts judged at the same time; more wait in line.
    #[arg(long, env = "CANARY_GATE_MAX_CONCURRENT_VERDICTS", default_value_t = canary_gate::http::admission::DEFAULT_MAX_CONCURRENT_VERDICTS)]
    max_concurrent_verdicts: usize,
    /// Verdict requests waiting in line; past them the answer is 503 with Retry-After.
    #[arg(long, env = "CANARY_GATE_MAX_QUEUED_VERDICTS", default_value_t = canary_gate::http::admission::DEFAULT_MAX_QUEUED_VERDICTS)]
    max_queued_verdicts: usize,
    /// Size in bytes past which the day's verdict log continues in a new file.
    #[arg(long, env = "CANARY_GATE_LOG_MAX_BYTES", default_value_t = canary_gate::verdict::log::DEFAULT_LOG_MAX_BYTES)]
    log_max_bytes: u64,
    /// Base URL people reach this server at, for the verdicts' `report_url`
    /// (e.g. `https://canary-gate.example.internal`); default: the request's Host.
    #[arg(long, env = "CANARY_GATE_PUBLIC_URL")]
    public_url: Option<String>,
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
    /// A side: labels, then `;`-separated settings rps, errors, slow, pods, restart_after, vanish_after.
    #[arg(long = "side", required = true)]
    sides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` are answers (exit 0); a bad argument is an
        // error, exit 3 as for every command, never clap's 2, which here
        // would read as "inconclusive".
        Err(error) => {
            let _ = error.print();
            return match error.use_stderr() {
                true => ExitCode::from(EXIT_ERROR),
                false => ExitCode::SUCCESS,
            };
        }
    };
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
        Command::Wait(args) => wait(args),
        Command::Judge(args) => judge(args),
        Command::Replay(args) => replay(args),
        Command::Check(args) => check(args),
        Command::Log(args) => log(args),
        Command::Simulate(args) => simulate(args),
        Command::Test(args) => test(args),
        Command::Plan(args) => plan(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    canary_gate::telemetry::init(std::io::stderr, LogStyle::for_stderr(args.log_json));
    let tokens_env = std::env::var(auth::TOKENS_ENV).ok();
    let tokens = Tokens::from_sources(args.token_file.as_deref(), tokens_env.as_deref())?;
    auth::check_listen(args.listen, &tokens, args.insecure_no_auth).map_err(anyhow::Error::msg)?;
    let access = AccessPolicy {
        tokens,
        protect_reads: args.protect_reads,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let sources = args.sources.build()?;
        let log = VerdictLog::open(&args.log_dir)?.with_max_bytes(args.log_max_bytes);
        let limits = VerdictLimits::new(args.max_concurrent_verdicts, args.max_queued_verdicts);
        let origin = args.sources.origin();
        let reload_args = args.sources;
        // A reload reads the config file and its secrets again.
        let loader = Box::new(move || reload_args.build().map_err(|e| format!("{e:#}")));
        let state = Arc::new(
            AppState::with_sources(sources, args.rules_dir.clone(), log)
                .with_sources_loader(loader)
                .with_limits(limits)
                .with_public_url(args.public_url)
                .with_verdict_timeout(args.verdict_timeout.into())
                .with_access(access),
        );
        if !args.no_watch && let Err(error) = store::watch(state.rules.clone()) {
            tracing::warn!(%error, "cannot watch the rules folder; reload with SIGHUP or POST /v1/rules/reload");
        }
        #[cfg(unix)]
        reload_on_sighup(state.clone()).context("cannot listen for SIGHUP")?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, sources = %origin, "canary-gate is serving");
        http::run(listener, state, shutdown_signal()).await?;
        tracing::info!("canary-gate stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Reads the config's sources and the rules folder again on every SIGHUP.
#[cfg(unix)]
fn reload_on_sighup(
    state: Arc<AppState<source::PrometheusStack>>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the sources and the rules");
            state.reload().await;
        }
    }))
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
        canary_gate::text::time(start_secs),
        simulation.sides.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_verdict(verdict: &Verdict, output: Output) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(verdict)?)?,
        Output::Text => {
            writeln!(out, "verdict: {}", verdict.verdict.as_str())?;
            writeln!(out, "reason:  {}", verdict.reason)?;
            for metric in &verdict.metrics {
                let shadow = if metric.shadow { ", shadow" } else { "" };
                writeln!(
                    out,
                    "  - {} ({}{shadow}): {}",
                    metric.name,
                    metric.outcome.word(),
                    metric.reason
                )?;
                if let Some(line) = percentile_line(metric) {
                    writeln!(out, "      {line}")?;
                }
            }
            if let Some(url) = &verdict.report_url {
                writeln!(out, "report:  {url}")?;
            }
        }
    }
    Ok(())
}

/// A metric's percentiles, canary against baseline, on one line of the text
/// output: "percentiles, canary vs baseline (...): p50 41 ms [25 ms, 50 ms] vs
/// 40 ms [25 ms, 50 ms] · p90 ...". Read from the answer's fields alone, so it
/// shows any metric that carries percentiles; `None` for one that has none.
fn percentile_line(metric: &MetricReport) -> Option<String> {
    use canary_gate::text::{latency, number, round_percent};
    let (canary, baseline) = (&metric.canary.percentiles, &metric.baseline.percentiles);
    if canary.is_empty() && baseline.is_empty() {
        return None;
    }
    let interval = |p: &Percentile| {
        let upper = p.upper.map_or("unbounded".to_string(), latency);
        format!("{} [{}, {upper}]", latency(p.seconds), latency(p.lower))
    };
    let estimate = |p: &Percentile| latency(p.seconds);
    // Log lines written before intervals existed carry confidence 0.
    let levels: Vec<f64> = canary
        .iter()
        .chain(baseline)
        .map(|p| p.confidence)
        .collect();
    let with_intervals = levels.iter().all(|c| *c > 0.0);
    let side = |p: Option<&Percentile>| match p {
        Some(p) if with_intervals => interval(p),
        Some(p) => estimate(p),
        None => "none".to_string(),
    };
    let mut quantiles: Vec<f64> = canary.iter().chain(baseline).map(|p| p.quantile).collect();
    quantiles.sort_by(f64::total_cmp);
    quantiles.dedup();
    let quoted: Vec<String> = quantiles
        .iter()
        .map(|q| {
            format!(
                "p{} {} vs {}",
                number(q * 100.0),
                side(canary.iter().find(|p| p.quantile == *q)),
                side(baseline.iter().find(|p| p.quantile == *q))
            )
        })
        .collect();
    let legend = if !with_intervals {
        "estimates inside buckets by linear interpolation, no intervals".to_string()
    } else if levels.iter().all(|c| *c == levels[0]) {
        format!(
            "estimates inside buckets by linear interpolation; [bounds at bucket edges]: each side's bounds hold together, at every look, with {} confidence",
            round_percent(levels[0])
        )
    } else {
        let level = |list: &[Percentile]| list.first().map_or(0.0, |p| p.confidence);
        format!(
            "estimates inside buckets by linear interpolation; [bounds at bucket edges]: the canary's bounds hold together, at every look, with {} confidence, the baseline's with {}",
            round_percent(level(canary)),
            round_percent(level(baseline))
        )
    };
    Some(format!(
        "percentiles, canary vs baseline ({legend}): {}",
        quoted.join(" · ")
    ))
}

fn wait(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let token = match &args.token_file {
        Some(path) => Some(read_token(path)?),
        None => None,
    };
    let options = wait::WaitOptions {
        server: args.server.clone(),
        request: args.request.to_request()?,
        timeout: args.timeout,
        every: args.every,
        token,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let verdict = runtime.block_on(async {
        let mut stderr = std::io::stderr();
        wait::wait(&options, &mut stderr).await
    })?;
    print_verdict(&verdict, args.output)?;
    Ok(ExitCode::from(verdict.verdict.exit_code()))
}

fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --token-file {}", path.display()))?;
    auth::token_lines(&text)
        .next()
        .map(str::to_string)
        .with_context(|| format!("--token-file {} holds no token", path.display()))
}

fn judge(args: JudgeArgs) -> anyhow::Result<ExitCode> {
    let mut request = args.judged.request.to_request()?;
    request.end = args.end.clone().map(TimeSpec::Text);
    request.is_final = args.is_final;
    let rules = canary_gate::rules::load_named(&args.judged.rules_dir, &request.rules);
    let sources = args.judged.sources.build()?;
    let log = match &args.log_dir {
        Some(dir) => Some(VerdictLog::open(dir)?),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let now = OffsetDateTime::now_utc();
    let verdict = runtime
        .block_on(async {
            let run = pipe::Run::within(args.verdict_timeout.into(), &NoRecorder);
            pipe::judge(&sources, &rules, log.as_ref(), request, now, run).await
        })
        .map_err(|error| pipe_error(error, &args.judged.rules_dir))?;
    print_verdict(&verdict, args.output)?;
    Ok(ExitCode::from(verdict.verdict.exit_code()))
}

/// `error` as the CLI tells it: an unknown rule set names the folder read and
/// the problems of its files.
fn pipe_error(error: PipeError, rules_dir: &std::path::Path) -> anyhow::Error {
    match error {
        PipeError::UnknownRules {
            message,
            rule_errors,
        } => {
            let mut message = format!("{message} (from {})", rules_dir.display());
            for error in rule_errors {
                message.push_str(&format!("\n  {error}"));
            }
            anyhow::Error::msg(message)
        }
        other => other.into(),
    }
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let time = |field, text: &str| {
        canary_gate::request::parse_time(field, &TimeSpec::Text(text.to_string()))
            .with_context(|| format!("--{field}"))
    };
    let options = replay::ReplayOptions {
        request: args.judged.request.to_request()?,
        start_secs: time("start", &args.judged.request.start)?,
        end_secs: time("end", &args.end)?,
        every: args.every,
        final_at: args.final_at,
        verdict_timeout: args.verdict_timeout.into(),
    };
    let now = OffsetDateTime::now_utc();
    anyhow::ensure!(
        options.end_secs <= now.unix_timestamp(),
        "--end ({}) lies in the future; replay judges past data only",
        canary_gate::text::time(options.end_secs)
    );
    let times = replay::look_times(&options)?;
    let rules = canary_gate::rules::load_named(&args.judged.rules_dir, &options.request.rules);
    let sources = args.judged.sources.build_cached(options.end_secs)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let replayed = runtime
        .block_on(replay::replay(&sources, &rules, &options, times, now))
        .map_err(|error| pipe_error(error, &args.judged.rules_dir))?;
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => replay::write_json(&replayed, &mut out)?,
        Output::Text => replay::write_text(&replayed, &mut out)?,
    }
    Ok(ExitCode::from(replayed.exit_code()))
}

fn log(args: LogArgs) -> anyhow::Result<ExitCode> {
    let verdict = match args.verdict.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<Outcome>().context("--verdict")?),
    };
    let format = match args.output {
        LogFormat::Table => history::Format::Table,
        LogFormat::Json => history::Format::Json,
    };
    let filter = history::Filter {
        deployment: args.deployment,
        rules: args.rules,
        verdict,
        since_secs: args
            .since
            .map(|d| OffsetDateTime::now_utc().unix_timestamp() - d.as_secs() as i64),
    };
    let mut out = std::io::stdout();
    let mut errors = std::io::stderr();
    history::show(
        &args.log_dir,
        &filter,
        format,
        args.follow,
        &mut out,
        &mut errors,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let example = check::Example {
        canary: side_spec(&args.canary)
            .context("--canary")?
            .selector()
            .context("--canary")?,
        baseline: side_spec(&args.baseline)
            .context("--baseline")?
            .selector()
            .context("--baseline")?,
        vars: parse_vars(&args.vars)?,
    };
    let mut out = std::io::stdout().lock();
    let mut errors = std::io::stderr().lock();
    let good = check::check(&args.paths, &example, &mut out, &mut errors)?;
    Ok(if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERROR)
    })
}

fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let whole_secs = |flag: &str, duration: Duration| {
        anyhow::ensure!(
            duration.subsec_nanos() == 0,
            "--{flag} must be a whole number of seconds"
        );
        Ok(duration.as_secs())
    };
    let options = planning::PlanOptions {
        rules: args.rules,
        metric: args.metric,
        requests_per_sec: args.rps,
        split: args.split,
        base_rate: args.base_rate,
        effect: args.effect,
        duration_secs: whole_secs("duration", args.duration)?,
        every_secs: whole_secs("every", args.every)?,
        canaries: args.canaries,
        seed: args.seed,
    };
    let rules = canary_gate::rules::load_named(&args.rules_dir, &options.rules);
    let planned = planning::plan(&rules, &options)?;
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&planned)?)?,
        Output::Text => planning::write_text(&planned, &mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut errors = std::io::stderr().lock();
    let good = rule_test::run(&args.paths, &mut out, &mut errors)?;
    Ok(if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERROR)
    })
}
