//! The verdict log keeps every acknowledged verdict: whole lines under
//! concurrency, torn lines skipped and reported, rotation by size and day
//! without loss, and nothing acknowledged lost to a SIGKILL mid-burst.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use canary_gate::http::admission::VerdictLimits;
use canary_gate::verdict::history::{self, Filter, Format};
use canary_gate::verdict::log::{LogRecord, VerdictLog, log_files};
use tokio::sync::Mutex;

use crate::support::fault::{Fault, FaultyPrometheus, svc_app, svc_final_look};
use crate::support::prometheus::TestPrometheus;
use crate::support::{TestApp, repo_root, request, two_services, window_start};

/// Longest wait for the server to come up; a guard against hangs.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A server against a healthy double, its log in `app.log_dir`.
async fn healthy_app() -> (TestApp, FaultyPrometheus) {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    let (app, _) = svc_app(&double.url, HANG_GUARD, VerdictLimits::new(16, 1024)).await;
    (app, double)
}

fn read_log(app: &TestApp) -> canary_gate::verdict::log::LogContents {
    VerdictLog::open(app.log_dir.path())
        .expect("log")
        .read_all()
        .expect("readable log")
}

/// A record as the server logs it, to copy into hand-made logs.
async fn logged_record() -> LogRecord {
    let (app, _double) = healthy_app().await;
    let (status, _) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200);
    let record = read_log(&app).records.remove(0);
    app.stop().await;
    record
}

/// What `canary-gate log --output json` prints for the log in `dir`: stdout and stderr.
fn show_log(dir: &std::path::Path) -> (String, String) {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    history::show(
        dir,
        &Filter::default(),
        Format::Json,
        false,
        &mut out,
        &mut errors,
    )
    .expect("show");
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&errors).into_owned(),
    )
}

// 64 verdicts asked at once land as 64 whole JSON lines: appends never interleave.
#[tokio::test]
async fn concurrent_verdicts_never_interleave_lines() {
    const REQUESTS: usize = 64;
    let (app, _double) = healthy_app().await;
    let app = Arc::new(app);
    let body = svc_final_look();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (app, body) = (Arc::clone(&app), body.clone());
            tokio::spawn(async move { app.post_verdict(&body).await })
        })
        .collect();
    let mut acknowledged = HashSet::new();
    for task in tasks {
        let (status, verdict) = task.await.expect("request task");
        assert_eq!(status, 200, "{verdict}");
        acknowledged.insert(verdict["id"].as_str().expect("id").to_string());
    }
    let contents = read_log(&app);
    assert!(contents.unreadable.is_empty(), "{:?}", contents.unreadable);
    let logged: HashSet<String> = contents.records.into_iter().map(|r| r.verdict.id).collect();
    assert_eq!(logged, acknowledged);
    let text = std::fs::read_to_string(&log_files(app.log_dir.path()).expect("files")[0])
        .expect("log text");
    assert_eq!(text.lines().count(), REQUESTS);
}

// A half line left by a crash is skipped and reported by every reader, and the next
// append starts on a line of its own.
#[tokio::test]
async fn torn_last_line_is_skipped_and_reported() {
    let (app, _double) = healthy_app().await;
    for _ in 0..2 {
        let (status, verdict) = app.post_verdict(&svc_final_look()).await;
        assert_eq!(status, 200, "{verdict}");
    }
    let file = log_files(app.log_dir.path()).expect("files")[0].clone();
    let mut bytes = std::fs::read(&file).expect("log bytes");
    bytes.extend_from_slice(br#"{"id":"0193-half","verdict":"prom"#);
    std::fs::write(&file, &bytes).expect("tear the log");
    let torn_at = format!("{}:3", file.display());

    let (status, history) = app.get_json("/v1/verdicts").await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["verdicts"].as_array().map(Vec::len), Some(2));
    assert_eq!(history["unreadable"], serde_json::json!([torn_at]));

    let (status, third) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200, "{third}");
    let contents = read_log(&app);
    assert_eq!(contents.records.len(), 3);
    assert_eq!(contents.unreadable, vec![torn_at.clone()]);
    assert_eq!(contents.records[2].verdict.id, third["id"]);

    // `canary-gate log` shows the three and names the torn line on stderr.
    let (out, errors) = show_log(app.log_dir.path());
    assert_eq!(out.lines().count(), 3);
    assert!(errors.contains(&torn_at), "{errors}");
    app.stop().await;
}

// Files rotate by size (even past ten a day) and by day; readers see every line, in order.
#[tokio::test]
async fn rotation_by_size_and_day_loses_no_line() {
    let template = logged_record().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let line_bytes = serde_json::to_vec(&template).expect("JSON").len() as u64 + 1;
    // Two lines per file.
    let log = VerdictLog::open(dir.path())
        .expect("log")
        .with_max_bytes(2 * line_bytes + 10);
    let mut written = Vec::new();
    for (day, count) in [("2026-11-24", 23), ("2026-11-25", 3)] {
        for n in 0..count {
            let mut record = template.clone();
            record.verdict.judged_at = format!("{day}T10:{n:02}:00Z");
            record.verdict.id = format!("{day}-{n:02}");
            log.append(&record).expect("append");
            written.push(record.verdict.id);
        }
    }
    let files = log_files(dir.path()).expect("files");
    assert_eq!(files.len(), 12 + 2, "{files:?}");
    let read: Vec<String> = log
        .read_all()
        .expect("read")
        .records
        .into_iter()
        .map(|r| r.verdict.id)
        .collect();
    assert_eq!(read, written);

    let (out, _) = show_log(dir.path());
    let shown: Vec<String> = out
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            value["id"].as_str().expect("id").to_string()
        })
        .collect();
    assert_eq!(shown, written);
}

// Readers that answer requests read only the files they need: the newest
// verdicts from the newest files, a verdict by the day its id was made (even
// across midnight), and a first look only within the longest window.
#[tokio::test]
async fn request_readers_read_only_the_files_they_need() {
    let template = logged_record().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(dir.path()).expect("log");
    let at = |text: &str| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .expect("time")
            .unix_timestamp()
    };
    let mut written = Vec::new();
    // A verdict judged at `judged_at` whose id was made at `made_secs`.
    let mut append = |judged_at: &str, made_secs: i64, start_secs: i64| {
        let mut record = template.clone();
        record.verdict.judged_at = judged_at.to_string();
        let made = uuid::Timestamp::from_unix(uuid::NoContext, made_secs as u64, 999_000_000);
        record.verdict.id = uuid::Uuid::new_v7(made).to_string();
        record.verdict.deployment = "checkout-7".into();
        record.verdict.window.start_secs = start_secs;
        log.append(&record).expect("append");
        written.push(record.verdict.id.clone());
        record.verdict.id
    };
    for day in 20..=25 {
        for hour in [9, 10, 11] {
            let judged_at = format!("2026-11-{day}T{hour:02}:00:00Z");
            append(&judged_at, at(&judged_at), at(&judged_at) - 3600);
        }
    }
    // Made a moment before midnight, judged just after: filed under the next day.
    let across_midnight = append(
        "2026-11-26T00:00:00.2Z",
        at("2026-11-25T23:59:59Z"),
        at("2026-11-25T23:00:00Z"),
    );
    let oldest_file = dir.path().join("verdicts-2026-11-20.jsonl");
    let mut bytes = std::fs::read(&oldest_file).expect("oldest file");
    bytes.extend_from_slice(b"{\"edited by hand\n");
    std::fs::write(&oldest_file, bytes).expect("spoil the oldest file");

    let newest = log.newest(&Filter::default(), 4).expect("newest");
    let ids: Vec<&str> = newest
        .records
        .iter()
        .map(|r| r.verdict.id.as_str())
        .collect();
    let expected: Vec<&str> = written.iter().rev().take(4).map(String::as_str).collect();
    assert_eq!(ids, expected, "newest first");
    assert!(
        newest.unreadable.is_empty(),
        "the oldest file was not read: {:?}",
        newest.unreadable
    );

    let everything = log.newest(&Filter::default(), 1000).expect("all");
    assert_eq!(everything.records.len(), written.len());
    assert_eq!(
        everything.unreadable,
        vec![format!("{}:4", oldest_file.display())]
    );

    let found = log
        .find(&written[7])
        .expect("find")
        .expect("a verdict of the 22nd");
    assert_eq!(found.verdict.judged_at, "2026-11-22T10:00:00Z");
    let found = log
        .find(&across_midnight)
        .expect("find")
        .expect("the verdict across midnight");
    assert_eq!(found.verdict.id, across_midnight);
    assert!(log.find("not-an-id").expect("find").is_none());
    assert!(
        log.find(&uuid::Uuid::now_v7().to_string())
            .expect("find")
            .is_none()
    );
}

/// The real `canary-gate serve` process, killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary on a free loopback port and waits until it answers.
async fn serve_binary(prometheus_url: &str, log_dir: &std::path::Path) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--prometheus-url", prometheus_url])
        .arg("--rules-dir")
        .arg(repo_root().join("rules"))
        .arg("--log-dir")
        .arg(log_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start canary-gate serve");
    let served = Served {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + HANG_GUARD;
    let client = reqwest::Client::new();
    loop {
        let health = client.get(format!("{}/healthz", served.url)).send().await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return served;
        }
        assert!(Instant::now() < deadline, "canary-gate serve never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// SIGKILL in the middle of a burst of concurrent verdicts: every verdict answered 200
// before the kill is in the log on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_loses_no_acknowledged_verdict() {
    const CLIENTS: usize = 32;
    const KILL_AFTER_ACKS: usize = 120;
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let log_dir = tempfile::tempdir().expect("temp dir");
    let served = Arc::new(Mutex::new(Some(
        serve_binary(&prometheus.url, log_dir.path()).await,
    )));
    let url = served.lock().await.as_ref().expect("served").url.clone();

    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let (client, url) = (client.clone(), url.clone());
            let (acknowledged, sent, failed) = (
                Arc::clone(&acknowledged),
                Arc::clone(&sent),
                Arc::clone(&failed),
            );
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                for look in 0.. {
                    let service = if (worker + look) % 2 == 0 {
                        "search"
                    } else {
                        "checkout"
                    };
                    let body =
                        request(service, start, start + 600 + 60 * (look % 10) as i64, false);
                    sent.fetch_add(1, Ordering::SeqCst);
                    let answer = client
                        .post(format!("{url}/v1/verdicts"))
                        .json(&body)
                        .send()
                        .await;
                    let verdict = match answer {
                        Ok(response) if response.status().as_u16() == 200 => {
                            response.json::<serde_json::Value>().await.ok()
                        }
                        _ => None,
                    };
                    let Some(verdict) = verdict else {
                        // The server is gone: this request was never acknowledged.
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let count = {
                        let mut ids = acknowledged.lock().expect("ids");
                        ids.push(verdict["id"].as_str().expect("id").to_string());
                        ids.len()
                    };
                    if count == KILL_AFTER_ACKS {
                        // SIGKILL: no shutdown, no flush, no goodbye.
                        drop(served.lock().await.take());
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }

    let acknowledged: HashSet<String> = acknowledged.lock().expect("ids").iter().cloned().collect();
    let contents = VerdictLog::open(log_dir.path())
        .expect("log")
        .read_all()
        .expect("readable log");
    let on_disk: HashSet<String> = contents
        .records
        .iter()
        .map(|r| r.verdict.id.clone())
        .collect();
    eprintln!(
        "kill -9 burst: {} sent, {} acknowledged, {} failed by the kill, {} on disk, {} torn lines",
        sent.load(Ordering::SeqCst),
        acknowledged.len(),
        failed.load(Ordering::SeqCst),
        on_disk.len(),
        contents.unreadable.len()
    );
    assert!(acknowledged.len() >= KILL_AFTER_ACKS);
    let lost: Vec<&String> = acknowledged.difference(&on_disk).collect();
    assert!(lost.is_empty(), "acknowledged but not on disk: {lost:?}");
    // The kill came while requests were in flight: some never got an answer.
    assert!(failed.load(Ordering::SeqCst) > 0);
}
