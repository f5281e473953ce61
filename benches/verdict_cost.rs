//! What a verdict costs beside its queries (issue 15): the release build of
//! `canary-gate serve` and `judge` against a real Prometheus with backfilled
//! data, each figure measured side by side in one run with the same PromQL
//! sent straight to Prometheus.
//!
//! Run with `cargo bench --bench verdict_cost`; it prints Markdown tables
//! (BENCHMARKS.md holds a run and says what each figure means). Settings,
//! from the environment:
//!
//! - `VERDICT_COST_RUNS` (default 11): timed runs per latency cell (medians);
//! - `VERDICT_COST_LOAD_SECS` (default 4): seconds per load level;
//! - `VERDICT_COST_72H=1`: add a 72-hour window (backfills three days);
//! - `VERDICT_COST_BIN`: the `canary-gate` binary to measure (default: the
//!   release build of this checkout), e.g. a copy built from an older commit.
//!
//! `judge`, a one-shot process, is also set beside the same queries sent by
//! one fresh `curl` process (spawn to exit, all at once with `--parallel`),
//! when `curl` is on the PATH: the physical limit of a one-shot client,
//! which pays a process start too. The bench does not need curl otherwise.
//!
//! The plan's exact queries are read from Prometheus's query log after one
//! untimed verdict of each case, and replayed as they were sent: all at
//! once, as the verdict sends them, and moved to each timed look's window.
//! Every figure is measured on a canary's first look (each timed verdict a
//! canary of its own, its window a step further back, so no two share a
//! query, which the server would coalesce, and none starts from an earlier
//! look's state) and, for latency, CPU and throughput, on its next looks too:
//! one canary asked again every `NEXT_LOOK_SECS`, as a pipeline step asks.

// The benchmark uses the generator only; its unit tests run with the binary's.
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/canary-gate/simulate.rs"]
mod simulate;
// The tests' Prometheus: installed, backfilled and started the same way.
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/prometheus.rs"]
mod prometheus;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use simulate::{SideTraffic, Simulation};

/// The step of every rule set here, as in `rules/http.yaml`.
const STEP_SECS: i64 = 15;
/// Concurrent clients of the load runs.
const CONCURRENCY: [usize; 4] = [1, 10, 50, 100];
/// Concurrent 24-hour verdicts of the memory figure.
const MEMORY_VERDICTS: usize = 16;
/// Looks at a hung store.
const HUNG_LOOKS: usize = 5;
/// Sequential verdicts whose CPU is summed, per window.
const CPU_VERDICTS: [(i64, usize); 3] = [(600, 60), (7200, 40), (86_400, 8)];
/// Fresh starts timed for start-to-ready.
const STARTS: usize = 5;
/// How much later a canary's next look comes: a pipeline step asking once a
/// minute (Argo Rollouts' and Flagger's usual interval), 4 steps.
const NEXT_LOOK_SECS: i64 = 60;
/// Canaries of the next-look load run, each looked at in turn: more than
/// the server judges at once, so each is asked again only after others.
const NEXT_LOOK_CANARIES: usize = 64;
/// Looks each canary of that run may have before its window starts over.
const NEXT_LOOK_LOOKS: usize = 40;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `canary-gate` binary measured.
fn binary() -> PathBuf {
    std::env::var_os("VERDICT_COST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_canary-gate")))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The status of a blocking HTTP/1.0 GET of `path` on `127.0.0.1:port`.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits until `path` answers 200; the time it took.
fn wait_ok(port: u16, path: &str, most: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < most {
        if get_status(port, path) == Some(200) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("127.0.0.1:{port}{path} did not answer 200 within {most:?}");
}

/// A child process killed when dropped.
struct Process(Child);

impl Process {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User plus system CPU seconds of process `pid`, all threads.
fn cpu_secs(pid: u32, ticks_per_sec: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a number");
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 here.
    (ticks(11) + ticks(12)) / ticks_per_sec
}

/// A `VmRSS`-style line of `/proc/pid/status`, in MB.
fn status_mb(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .expect("status key");
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("kB");
    kb / 1024.0
}

fn ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn window_name(secs: i64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{} min", s / 60),
    }
}

/// Rule sets of `count` distinct metrics over the simulated histogram and
/// counter: ratio and latency metrics in turn, each with a matcher of its
/// own that selects nothing less (`pod!="none-N"`), so no two share a query.
fn generated_rules(count: usize) -> String {
    let mut text = format!(
        "description: {count} metrics for the verdict_cost benchmark.\nalpha: 0.01\non_timeout: promote\non_nodata: inconclusive\nstep: {STEP_SECS}s\nmetrics:\n"
    );
    let thresholds = ["0.1", "0.25", "0.5", "1"];
    for i in 0..count {
        if i % 2 == 0 {
            text.push_str(&format!(
                "  - name: errors-{i}\n    kind: ratio\n    bad: http_requests_total{{service=\"$service\", code=~\"5..\", pod!=\"none-{i}\"}}\n    total: http_requests_total{{service=\"$service\", pod!=\"none-{i}\"}}\n    direction: increase\n    tolerance: 0%\n    min_requests: 300\n"
            ));
        } else {
            text.push_str(&format!(
                "  - name: slow-{i}\n    kind: latency\n    histogram: http_request_duration_seconds_bucket{{service=\"$service\", pod!=\"none-{i}\"}}\n    threshold_seconds: {}\n    direction: increase\n    tolerance: +20%\n    min_requests: 300\n",
                thresholds[(i / 2) % thresholds.len()]
            ));
        }
    }
    text
}

/// One query as Prometheus's query log recorded it.
#[derive(Clone, Debug)]
struct LoggedQuery {
    promql: String,
    /// `(start, end, step)` in unix seconds for a range query, `None` for an instant one.
    range: Option<(i64, i64, i64)>,
    /// The instant of an instant query.
    at: i64,
}

fn rfc3339_secs(text: &str) -> i64 {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or_else(|e| panic!("query log time `{text}`: {e}"))
}

/// The tests' Prometheus with the backfilled data, and how much of its query log was read.
struct Prometheus {
    server: prometheus::TestPrometheus,
    /// Bytes of the query log already read.
    log_offset: usize,
}

impl Prometheus {
    fn start(simulation: &Simulation) -> Prometheus {
        Prometheus {
            server: prometheus::TestPrometheus::start(simulation),
            log_offset: 0,
        }
    }

    fn pid(&self) -> u32 {
        self.server.pid()
    }

    fn url(&self) -> String {
        self.server.url.clone()
    }

    /// The queries logged since the last call.
    fn new_queries(&mut self) -> Vec<LoggedQuery> {
        // The log is written as each query finishes; give the last a moment.
        std::thread::sleep(Duration::from_millis(100));
        let text =
            std::fs::read_to_string(self.server.dir.path().join("queries.log")).unwrap_or_default();
        let fresh = &text[self.log_offset.min(text.len())..];
        self.log_offset = text.len();
        fresh
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|entry| {
                let params = &entry["params"];
                let start = rfc3339_secs(params["start"].as_str().expect("start"));
                let end = rfc3339_secs(params["end"].as_str().expect("end"));
                let step = params["step"].as_i64().unwrap_or(0);
                LoggedQuery {
                    promql: params["query"].as_str().expect("query").to_string(),
                    range: (step > 0).then_some((start, end, step)),
                    at: end,
                }
            })
            .collect()
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, String)]) -> String {
    let encode = |text: &str| {
        let mut out = String::new();
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(byte as char)
                }
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The API path and form body of `query`, shifted by `shift_secs`.
/// A verdict's window: its start and end, in unix seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Look {
    start: i64,
    end: i64,
}

impl Look {
    /// The same window `secs` earlier.
    fn earlier(self, secs: i64) -> Look {
        Look {
            start: self.start - secs,
            end: self.end - secs,
        }
    }
}

/// How far back the start and the end of logged queries move to become
/// another look's: the queries of `logged` sent for `look`.
#[derive(Clone, Copy, Debug)]
struct Shift {
    start_secs: i64,
    end_secs: i64,
}

impl Shift {
    /// The queries as they were logged.
    const NONE: Shift = Shift {
        start_secs: 0,
        end_secs: 0,
    };

    fn between(logged: Look, look: Look) -> Shift {
        Shift {
            start_secs: logged.start - look.start,
            end_secs: logged.end - look.end,
        }
    }
}

fn query_request(query: &LoggedQuery, shift: Shift) -> (&'static str, String) {
    match query.range {
        Some((start, end, step)) => (
            "/api/v1/query_range",
            form(&[
                ("query", query.promql.clone()),
                ("start", (start - shift.start_secs).to_string()),
                ("end", (end - shift.end_secs).to_string()),
                ("step", step.to_string()),
            ]),
        ),
        None => (
            "/api/v1/query",
            form(&[
                ("query", query.promql.clone()),
                ("time", (query.at - shift.end_secs).to_string()),
            ]),
        ),
    }
}

/// Sends `queries` straight to Prometheus, all at once, each moved by
/// `shift`, and reads every answer; whether all answered 200.
async fn replay(
    client: &reqwest::Client,
    url: &str,
    queries: &[LoggedQuery],
    shift: Shift,
) -> bool {
    let answers = join_all(queries.iter().map(|query| {
        let (path, body) = query_request(query, shift);
        async move {
            let response = client
                .post(format!("{url}{path}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .ok()?;
            let ok = response.status().is_success();
            response.bytes().await.ok()?;
            Some(ok)
        }
    }))
    .await;
    answers.iter().all(|a| *a == Some(true))
}

/// Whether a `curl` program is on the PATH (the one-shot client of the
/// `judge` table; the figure is left out without it).
fn curl_found() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends `queries` to Prometheus from one fresh `curl` process, all at once
/// (`--parallel`), as a one-shot client must: the time from spawn to exit,
/// or `None` if a query failed.
fn curl_replay(url: &str, queries: &[LoggedQuery]) -> Option<f64> {
    let mut command = Command::new("curl");
    command.args([
        "--silent",
        "--show-error",
        "--parallel",
        "--parallel-immediate",
    ]);
    command.args(["--parallel-max", "100"]);
    for (i, query) in queries.iter().enumerate() {
        if i > 0 {
            command.arg("--next");
        }
        let (path, body) = query_request(query, Shift::NONE);
        command.args(["--fail", "--output", "/dev/null"]);
        command.args([
            "--header",
            "content-type: application/x-www-form-urlencoded",
        ]);
        command
            .arg("--data-binary")
            .arg(body)
            .arg(format!("{url}{path}"));
    }
    let started = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let elapsed = started.elapsed().as_secs_f64();
    status.success().then_some(elapsed)
}

/// A verdict request for the simulated canary `deployment` over `look`.
fn verdict_body(rules: &str, deployment: &str, look: Look) -> serde_json::Value {
    json!({
        "rules": rules,
        "deployment": deployment,
        "canary": {"track": "canary"},
        "baseline": {"track": "baseline"},
        "start": look.start,
        "end": look.end,
        "vars": {"service": "checkout"},
    })
}

/// POSTs a verdict; its HTTP status and, for a 200, its verdict word.
async fn post_verdict(
    client: &reqwest::Client,
    server: &str,
    body: &serde_json::Value,
) -> (u16, Option<String>) {
    let Ok(response) = client
        .post(format!("{server}/v1/verdicts"))
        .json(body)
        .send()
        .await
    else {
        return (0, None);
    };
    let status = response.status().as_u16();
    let json: Option<serde_json::Value> = response.json().await.ok();
    let word = json.and_then(|j| j["verdict"].as_str().map(str::to_string));
    (status, word)
}

/// A running `canary-gate serve`.
struct Server {
    port: u16,
    process: Process,
    _log_dir: tempfile::TempDir,
}

impl Server {
    /// Starts the release binary against `store_url`; the time from spawn to
    /// the first 200 of `ready_path`.
    fn start(
        store_url: &str,
        rules_dir: &Path,
        extra: &[&str],
        ready_path: &str,
    ) -> (Server, Duration) {
        let log_dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let started = Instant::now();
        let child = Command::new(binary())
            .arg("serve")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--prometheus-url={store_url}"))
            .arg(format!("--rules-dir={}", rules_dir.display()))
            .arg(format!("--log-dir={}", log_dir.path().display()))
            .arg("--no-watch")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start canary-gate serve");
        let process = Process(child);
        wait_ok(port, ready_path, Duration::from_secs(30));
        let ready = started.elapsed();
        (
            Server {
                port,
                process,
                _log_dir: log_dir,
            },
            ready,
        )
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// What one load level measured.
struct Load {
    per_sec: f64,
    p50: f64,
    p99: f64,
    errors: usize,
    refused: usize,
}

/// `clients` loops, each sending `send(i)` for request number `i` until
/// `secs` have passed; `send` answers with the HTTP status (0: no answer).
async fn load<F, Fut>(clients: usize, secs: f64, send: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let send = Arc::new(send);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (send, counter) = (Arc::clone(&send), Arc::clone(&counter));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let sent = Instant::now();
                    let status = send(i).await;
                    seen.push((status, sent.elapsed().as_secs_f64()));
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = all
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, l)| *l)
        .collect();
    latencies.sort_by(f64::total_cmp);
    Load {
        per_sec: latencies.len() as f64 / elapsed,
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        errors: all.iter().filter(|(s, _)| *s != 200 && *s != 503).count(),
        refused: all.iter().filter(|(s, _)| *s == 503).count(),
    }
}

/// The simulated traffic: one service's canary and baseline, two pods each.
/// `hours` and 10 minutes, and `margin_secs` more before them (where the
/// next-look chains of the longest window begin).
fn simulation(hours: i64, margin_secs: i64) -> Simulation {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let duration_secs = hours * 3600 + 600 + margin_secs;
    let end = now - now % 60 - 300;
    let side = |track: &str| SideTraffic::new(&[("service", "checkout"), ("track", track)]);
    Simulation {
        start_secs: end - duration_secs,
        duration_secs,
        scrape_interval_secs: STEP_SECS,
        seed: 15,
        sides: vec![side("baseline"), side("canary")],
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let prometheus = Command::new(prometheus::TestPrometheus::binary_dir().join("prometheus"))
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").to_string()
        })
        .unwrap_or_default();
    let measured = binary().display().to_string();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "- cores (`nproc`): {}\n- CPU: {cpu}\n- Prometheus: {prometheus}\n- checkout: {commit}; binary measured: `{measured}`\n- load average at the start: {}\n- date: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    )
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let runs = env_number("VERDICT_COST_RUNS", 11).max(1) as usize;
    let load_secs = env_number("VERDICT_COST_LOAD_SECS", 4).max(1) as f64;
    let mut windows = vec![600_i64, 7200, 86_400];
    if env_number("VERDICT_COST_72H", 0) == 1 {
        windows.push(259_200);
    }
    let longest_hours = windows.iter().max().expect("a window") / 3600;
    let ticks = ticks_per_sec();

    println!("## verdict_cost\n\n{}\n", machine());
    println!(
        "Settings: {runs} timed runs per latency cell, {load_secs} s per load level; data: {longest_hours} h + 10 min of one service's canary and baseline (and {} min more before, where the next-look chains of the longest window start), 2 pods each, 20 requests/s per side, scraped every 15 s.\n",
        runs as i64 * NEXT_LOOK_SECS / 60
    );

    let chain_secs = runs as i64 * NEXT_LOOK_SECS;
    let simulation = simulation(longest_hours.max(1), chain_secs);
    let end = simulation.start_secs + simulation.duration_secs;
    let mut prometheus = Prometheus::start(&simulation);
    let store = prometheus.url();

    let rules_dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo_root().join("rules/http.yaml"),
        rules_dir.path().join("http.yaml"),
    )
    .expect("copy http.yaml");
    let generated = [(1, "metrics-1"), (10, "metrics-10"), (50, "metrics-50")];
    for (count, name) in generated {
        std::fs::write(
            rules_dir.path().join(format!("{name}.yaml")),
            generated_rules(count),
        )
        .expect("write rules");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    let (server, _) = Server::start(
        &store,
        rules_dir.path(),
        &["--verdict-timeout=120s"],
        "/readyz",
    );
    let server_url = server.url();

    // Latency: verdicts beside their queries, on a canary's first look and
    // on its next ones.
    println!("### Verdict latency beside its queries (medians)\n");
    println!(
        "First look: each timed verdict a canary of its own (its window a step further back each run), so none starts from an earlier look's state. Next look: one canary asked again every {} s ({} steps), as a pipeline step asks, each look beside its own queries; its first look untimed.\n",
        NEXT_LOOK_SECS,
        NEXT_LOOK_SECS / STEP_SECS
    );
    println!(
        "| rule set | metrics | window | queries | first look | its queries straight to Prometheus | ratio | next look | its queries | ratio | verdict |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut cases: Vec<(&str, usize)> = vec![("http", 2)];
    cases.extend(generated.iter().map(|(count, name)| (*name, *count)));
    let mut plans: Vec<((String, i64), Vec<LoggedQuery>)> = Vec::new();
    // Times `look` of `deployment` beside its queries: (verdict, replay) in seconds.
    let timed_look =
        |rules: &str, deployment: &str, look: Look, logged: Look, queries: &[LoggedQuery]| {
            let body = verdict_body(rules, deployment, look);
            let started = Instant::now();
            let (status, _) = runtime.block_on(post_verdict(&client, &server_url, &body));
            let verdict = started.elapsed().as_secs_f64();
            assert_eq!(status, 200, "{rules} {look:?}: verdict status");
            let started = Instant::now();
            assert!(
                runtime.block_on(replay(
                    &client,
                    &store,
                    queries,
                    Shift::between(logged, look)
                )),
                "replay"
            );
            (verdict, started.elapsed().as_secs_f64())
        };
    for &(rules, metrics) in &cases {
        for &window in &windows {
            let logged = Look {
                start: end - window,
                end,
            };
            prometheus.new_queries();
            let (status, word) = runtime.block_on(post_verdict(
                &client,
                &server_url,
                &verdict_body(rules, "logged", logged),
            ));
            assert_eq!(status, 200, "{rules} {window}: verdict status");
            let queries = prometheus.new_queries();
            let (mut first_secs, mut first_raw_secs) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let look = logged.earlier((run as i64 + 1) * STEP_SECS);
                let (verdict, raw) =
                    timed_look(rules, &format!("first-{run}"), look, logged, &queries);
                first_secs.push(verdict);
                first_raw_secs.push(raw);
            }
            // The chain's last look is the logged window grown by its looks.
            let chain_start = end - window - chain_secs;
            let (mut next_secs, mut next_raw_secs) = (Vec::new(), Vec::new());
            for look_number in 0..=runs {
                let look = Look {
                    start: chain_start,
                    end: chain_start + window + look_number as i64 * NEXT_LOOK_SECS,
                };
                if look_number == 0 {
                    let body = verdict_body(rules, "next-looks", look);
                    let (status, _) = runtime.block_on(post_verdict(&client, &server_url, &body));
                    assert_eq!(status, 200, "{rules} {window}: first look of the chain");
                    continue;
                }
                let (verdict, raw) = timed_look(rules, "next-looks", look, logged, &queries);
                next_secs.push(verdict);
                next_raw_secs.push(raw);
            }
            let (first, first_raw) = (median(&mut first_secs), median(&mut first_raw_secs));
            let (next, next_raw) = (median(&mut next_secs), median(&mut next_raw_secs));
            println!(
                "| {rules} | {metrics} | {} | {} | {} | {} | {:.2}x | {} | {} | {:.2}x | {} |",
                window_name(window),
                queries.len(),
                ms(first),
                ms(first_raw),
                first / first_raw,
                ms(next),
                ms(next_raw),
                next / next_raw,
                word.unwrap_or_default()
            );
            plans.push(((rules.to_string(), window), queries));
        }
    }
    let queries_of = |rules: &str, window: i64| -> Vec<LoggedQuery> {
        plans
            .iter()
            .find(|((r, w), _)| r == rules && *w == window)
            .map(|(_, q)| q.clone())
            .expect("planned")
    };

    // judge, the CLI: a process per verdict.
    println!("\n### `judge` (the CLI, one process per verdict) beside its queries (medians)\n");
    println!(
        "| rule set | window | judge | its queries straight to Prometheus | ratio | its queries from one `curl` process, spawn to exit | ratio to `curl` |"
    );
    println!("|---|---|---|---|---|---|---|");
    let curl = curl_found();
    for &window in &windows {
        let queries = queries_of("http", window);
        let (mut judge_secs, mut raw_secs, mut curl_secs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            let status = Command::new(binary())
                .arg("judge")
                .arg(format!("--prometheus-url={store}"))
                .arg(format!("--rules-dir={}", rules_dir.path().display()))
                .args(["--rules=http", "--deployment=checkout-bench"])
                .args(["--canary=track=canary", "--baseline=track=baseline"])
                .arg(format!("--start={}", end - window))
                .arg(format!("--end={end}"))
                .args(["--var=service=checkout", "--verdict-timeout=120s"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run judge");
            judge_secs.push(started.elapsed().as_secs_f64());
            assert!(
                matches!(status.code(), Some(0..=2)),
                "judge failed: {status}"
            );
            let started = Instant::now();
            assert!(runtime.block_on(replay(&client, &store, &queries, Shift::NONE)));
            raw_secs.push(started.elapsed().as_secs_f64());
            if curl {
                curl_secs.push(curl_replay(&store, &queries).expect("curl replay"));
            }
        }
        let (judge, raw) = (median(&mut judge_secs), median(&mut raw_secs));
        let (curl_cell, curl_ratio) = match curl_secs.is_empty() {
            true => ("no curl on this machine".to_string(), "-".to_string()),
            false => {
                let one_shot = median(&mut curl_secs);
                (ms(one_shot), format!("{:.2}x", judge / one_shot))
            }
        };
        println!(
            "| http | {} | {} | {} | {:.2}x | {curl_cell} | {curl_ratio} |",
            window_name(window),
            ms(judge),
            ms(raw),
            judge / raw
        );
    }

    // CPU per verdict.
    println!("\n### CPU per verdict (rule set http; user + system, /proc/PID/stat)\n");
    println!(
        "First looks: each verdict a canary of its own (its window a step further back each time); next looks: one canary asked every {NEXT_LOOK_SECS} s. Each beside the same looks' queries replayed.\n"
    );
    println!(
        "| window | looks | verdicts | canary-gate CPU per verdict | Prometheus CPU per verdict, during the verdicts | Prometheus CPU per replayed query set | ratio canary-gate / Prometheus |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (window, count) in CPU_VERDICTS {
        if !windows.contains(&window) {
            continue;
        }
        let logged = Look {
            start: end - window,
            end,
        };
        let queries = queries_of("http", window);
        let first_looks: Vec<(String, Look)> = (0..count)
            .map(|i| {
                let look = logged.earlier((i as i64 + 1) * STEP_SECS);
                (format!("cpu-first-{i}"), look)
            })
            .collect();
        // The chain ends where the logged window does, `count` looks long;
        // its untimed first look is made just before the count starts (after
        // the first looks, which would otherwise push its memory out of the
        // server's bounded store).
        let chain_start = end - window - count as i64 * NEXT_LOOK_SECS;
        let chain = |i: usize| Look {
            start: chain_start,
            end: chain_start + window + i as i64 * NEXT_LOOK_SECS,
        };
        let next_looks: Vec<(String, Look)> = (1..=count)
            .map(|i| ("cpu-next".to_string(), chain(i)))
            .collect();
        for (kind, looks) in [("first", first_looks), ("next", next_looks)] {
            if kind == "next" {
                runtime.block_on(post_verdict(
                    &client,
                    &server_url,
                    &verdict_body("http", "cpu-next", chain(0)),
                ));
            }
            let (gate_before, store_before) = (
                cpu_secs(server.process.pid(), ticks),
                cpu_secs(prometheus.pid(), ticks),
            );
            for (deployment, look) in &looks {
                let body = verdict_body("http", deployment, *look);
                runtime.block_on(post_verdict(&client, &server_url, &body));
            }
            let gate = (cpu_secs(server.process.pid(), ticks) - gate_before) / count as f64;
            let store_during = (cpu_secs(prometheus.pid(), ticks) - store_before) / count as f64;
            let before = cpu_secs(prometheus.pid(), ticks);
            for (_, look) in &looks {
                runtime.block_on(replay(
                    &client,
                    &store,
                    &queries,
                    Shift::between(logged, *look),
                ));
            }
            let store_alone = (cpu_secs(prometheus.pid(), ticks) - before) / count as f64;
            println!(
                "| {} | {kind} | {count} | {} | {} | {} | {:.2}x |",
                window_name(window),
                ms(gate),
                ms(store_during),
                ms(store_alone),
                gate / store_during
            );
        }
    }

    // Throughput under load, beside Prometheus alone answering the same query sets.
    let window = 7200;
    let logged = Look {
        start: end - window,
        end,
    };
    let queries = Arc::new(queries_of("http", window));
    // First looks: request `i` of level `level` a canary of its own, its
    // window `level * FIRST_LOOKS_PER_LEVEL + i` steps back (no two requests
    // of the run share a window, so none starts from another's state).
    const FIRST_LOOKS_PER_LEVEL: usize = 1300;
    let first_look = move |level: usize, i: usize| {
        let back = (level * FIRST_LOOKS_PER_LEVEL + i % FIRST_LOOKS_PER_LEVEL) as i64;
        (
            format!("load-first-{level}-{i}"),
            logged.earlier(back * STEP_SECS),
        )
    };
    // Next looks: NEXT_LOOK_CANARIES canaries per level, each with its own
    // start, asked in turn, each look NEXT_LOOK_SECS after that canary's last
    // one; look 0 of each is made untimed before its level.
    let chains_start = end - window - NEXT_LOOK_LOOKS as i64 * NEXT_LOOK_SECS;
    let chain_look = move |level: usize, canary: usize, look_number: usize| {
        let start = chains_start - (level * NEXT_LOOK_CANARIES + canary) as i64 * STEP_SECS;
        let end = start + window + look_number as i64 * NEXT_LOOK_SECS;
        (format!("load-next-{level}-{canary}"), Look { start, end })
    };
    let next_look = move |level: usize, i: usize| {
        let look_number = (i / NEXT_LOOK_CANARIES) % NEXT_LOOK_LOOKS + 1;
        chain_look(level, i % NEXT_LOOK_CANARIES, look_number)
    };
    type LookOf = Arc<dyn Fn(usize, usize) -> (String, Look) + Send + Sync>;
    let kinds: [(&str, &str, LookOf); 2] = [
        (
            "first looks",
            "each request a canary of its own, its window a step further back, so none share a query or resume from another's state",
            Arc::new(first_look),
        ),
        (
            "next looks",
            "64 canaries asked in turn, each look a minute after that canary's last, each canary's first look made untimed before the level",
            Arc::new(next_look),
        ),
    ];
    for (kind, how, look_of) in kinds {
        println!(
            "\n### Throughput, rule set http, {} window, {kind} ({load_secs} s per level; {how})\n",
            window_name(window)
        );
        println!(
            "| clients | verdicts/s | p50 | p99 | errors | 503s | Prometheus query sets/s | p50 | p99 | errors | throughput ratio |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for (level, clients) in CONCURRENCY.into_iter().enumerate() {
            if kind == "next looks" {
                runtime.block_on(join_all((0..NEXT_LOOK_CANARIES).map(|canary| {
                    let (deployment, look) = chain_look(level, canary, 0);
                    let body = verdict_body("http", &deployment, look);
                    let (client, url) = (client.clone(), server_url.clone());
                    async move { post_verdict(&client, &url, &body).await.0 }
                })));
            }
            let verdicts = runtime.block_on({
                let (client, server_url, look_of) =
                    (client.clone(), server_url.clone(), Arc::clone(&look_of));
                load(clients, load_secs, move |i| {
                    let (deployment, look) = look_of(level, i);
                    let body = verdict_body("http", &deployment, look);
                    let (client, server_url) = (client.clone(), server_url.clone());
                    async move { post_verdict(&client, &server_url, &body).await.0 }
                })
            });
            let raw = runtime.block_on({
                let (client, store, queries, look_of) = (
                    client.clone(),
                    store.clone(),
                    Arc::clone(&queries),
                    Arc::clone(&look_of),
                );
                load(clients, load_secs, move |i| {
                    let (_, look) = look_of(level, i);
                    let (client, store, queries) =
                        (client.clone(), store.clone(), Arc::clone(&queries));
                    async move {
                        match replay(&client, &store, &queries, Shift::between(logged, look)).await
                        {
                            true => 200,
                            false => 0,
                        }
                    }
                })
            });
            println!(
                "| {clients} | {:.1} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.2}x |",
                verdicts.per_sec,
                ms(verdicts.p50),
                ms(verdicts.p99),
                verdicts.errors,
                verdicts.refused,
                raw.per_sec,
                ms(raw.p50),
                ms(raw.p99),
                raw.errors,
                verdicts.per_sec / raw.per_sec
            );
        }
    }
    drop(server);

    // Start-to-ready and memory, on fresh servers: each is started, left
    // idle, then given MEMORY_VERDICTS concurrent verdicts. The peak depends on
    // how many verdicts' answers Prometheus has sent back at once, so it is
    // measured on every fresh server and given as a median and a range.
    let window = *windows
        .iter()
        .find(|w| **w == 86_400)
        .unwrap_or(&windows[windows.len() - 1]);
    let (mut ready_secs, mut idle_rss, mut peak_rss, mut after_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut answered = Vec::new();
    for _ in 0..STARTS {
        let (fresh, ready) = Server::start(
            &store,
            rules_dir.path(),
            &["--verdict-timeout=120s"],
            "/readyz",
        );
        ready_secs.push(ready.as_secs_f64());
        std::thread::sleep(Duration::from_millis(300));
        idle_rss.push(status_mb(fresh.process.pid(), "VmRSS:"));
        let fresh_url = fresh.url();
        let answers = runtime.block_on(join_all((0..MEMORY_VERDICTS).map(|i| {
            let look = Look {
                start: end - window,
                end,
            }
            .earlier(i as i64 * STEP_SECS);
            let body = verdict_body("http", &format!("memory-{i}"), look);
            let (client, url) = (client.clone(), fresh_url.clone());
            async move { post_verdict(&client, &url, &body).await.0 }
        })));
        peak_rss.push(status_mb(fresh.process.pid(), "VmHWM:"));
        after_rss.push(status_mb(fresh.process.pid(), "VmRSS:"));
        answered.push(answers.iter().filter(|s| **s == 200).count());
    }
    let spread = |values: &mut Vec<f64>| {
        let middle = median(values);
        let (low, high) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(*v), h.max(*v))
            });
        format!("{middle:.1} MB [{low:.1} to {high:.1}]")
    };
    println!(
        "\n### Start-up and memory ({STARTS} fresh servers, rule sets http and metrics-1/10/50 loaded; medians [range])\n"
    );
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| start to ready (spawn to the first 200 of /readyz), median of {STARTS} | {} |",
        ms(median(&mut ready_secs))
    );
    println!(
        "| resident memory idle (VmRSS) | {} |",
        spread(&mut idle_rss)
    );
    println!(
        "| peak resident memory over {MEMORY_VERDICTS} concurrent {} verdicts (VmHWM) | {} |",
        window_name(window),
        spread(&mut peak_rss)
    );
    println!(
        "| resident memory after them (VmRSS) | {} |",
        spread(&mut after_rss)
    );
    println!(
        "| statuses of those verdicts | {} of {} were 200 |",
        answered.iter().sum::<usize>(),
        STARTS * MEMORY_VERDICTS
    );

    // A store that accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_url = format!("http://{}", hung.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming().flatten() {
            held.push(stream);
        }
    });
    let (hung_server, _) = Server::start(&hung_url, rules_dir.path(), &[], "/healthz");
    let hung_server_url = hung_server.url();
    let looks = runtime.block_on(join_all((0..HUNG_LOOKS).map(|i| {
        let look = Look {
            start: end - 600,
            end,
        }
        .earlier(i as i64 * STEP_SECS);
        let body = verdict_body("http", &format!("hung-{i}"), look);
        let (client, url) = (client.clone(), hung_server_url.clone());
        async move {
            let started = Instant::now();
            let (status, word) = post_verdict(&client, &url, &body).await;
            (status, word, started.elapsed().as_secs_f64())
        }
    })));
    let slowest = looks.iter().map(|l| l.2).fold(0.0, f64::max);
    let words: Vec<String> = looks
        .iter()
        .map(|(status, word, _)| format!("{status} {}", word.clone().unwrap_or_default()))
        .collect();
    println!("\n### A hung store (accepts, never answers), default --verdict-timeout (8 s)\n");
    println!("| looks at once | slowest answer | answers |");
    println!("|---|---|---|");
    println!("| {HUNG_LOOKS} | {:.2} s | {} |", slowest, words.join(", "));
    drop(hung_server);
    drop(prometheus);
}
