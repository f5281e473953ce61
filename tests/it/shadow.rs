//! Shadow metrics end to end: a real Prometheus, the real server and the real
//! binary. A shadow metric is judged and shown everywhere a verdict is read,
//! and never changes the verdict.

use canary_gate::stats::family::per_metric_alpha;

use crate::support::binary::{assert_exit, binary};
use crate::support::prometheus::TestPrometheus;
use crate::support::simulate::{SideTraffic, Simulation};
use crate::support::{MINUTES, metric, request, spawn_app, window_start};

/// The rule set's alpha, shared by its live metrics.
const ALPHA: f64 = 0.02;

/// A live error rate and, in shadow, a strict latency rule being tried out.
fn rules_text() -> String {
    format!(
        "alpha: {ALPHA}\n\
         metrics:\n\
         \x20 - name: error-rate\n\
         \x20   kind: ratio\n\
         \x20   critical: true\n\
         \x20   bad: http_requests_total{{service=\"$service\", code=~\"5..\"}}\n\
         \x20   total: http_requests_total{{service=\"$service\"}}\n\
         \x20   direction: increase\n\
         \x20   tolerance: 0%\n\
         \x20 - name: slow-requests-v2\n\
         \x20   kind: latency\n\
         \x20   shadow: true\n\
         \x20   critical: true\n\
         \x20   histogram: http_request_duration_seconds_bucket{{service=\"$service\"}}\n\
         \x20   threshold_seconds: 0.25\n\
         \x20   direction: increase\n\
         \x20   tolerance: +10%\n"
    )
}

/// A canary with the baseline's error rate whose requests are slow three
/// times as often: healthy by the live rule, failing by the shadow one.
fn slow_canary(start_secs: i64) -> Simulation {
    let side = |track: &str, slow: f64| {
        let mut side = SideTraffic::new(&[("service", "checkout"), ("track", track)]);
        side.error_ratio = 0.01;
        side.slow_ratio = slow;
        side
    };
    Simulation {
        start_secs,
        duration_secs: MINUTES * 60,
        scrape_interval_secs: 15,
        seed: 7,
        sides: vec![side("baseline", 0.05), side("canary", 0.15)],
    }
}

// A shadow metric that fails leaves a healthy canary promoted; the answer, the log
// line, `canary-gate log`, the text output and the report all say that it would have
// failed, and the live metric keeps the whole alpha.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_shadow_metric_leaves_a_healthy_canary_promoted() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&slow_canary(start));
    let rules_dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(rules_dir.path().join("trial.yaml"), rules_text()).expect("rule file");
    let app = spawn_app(&prometheus.url, rules_dir.path()).await;

    let mut body = request("checkout", start, start + MINUTES * 60, true);
    body["rules"] = "trial".into();
    let (status, verdict) = app.post_verdict(&body).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
    let live = metric(&verdict, "error-rate");
    assert_eq!(live["shadow"], false);
    assert_eq!(live["outcome"], "pass", "{live:#}");
    let shadow = metric(&verdict, "slow-requests-v2");
    assert_eq!(shadow["shadow"], true);
    assert_eq!(shadow["outcome"], "fail", "{shadow:#}");
    let shadow_reason = shadow["reason"].as_str().expect("reason");
    assert!(
        shadow_reason.starts_with("shadow: would have failed."),
        "{shadow_reason}"
    );
    // The live metric splits the alpha as if the shadow one were absent; the shadow
    // one is judged at the share it would get once live.
    assert_eq!(
        live["evidence"]["alpha"].as_f64(),
        Some(per_metric_alpha(ALPHA, 1))
    );
    assert_eq!(
        shadow["evidence"]["alpha"].as_f64(),
        Some(per_metric_alpha(ALPHA, 2))
    );
    let reason = verdict["reason"].as_str().expect("reason");
    assert!(reason.starts_with("Promote:"), "{reason}");
    assert!(
        reason.ends_with("Not counted: slow-requests-v2, shadow: would have failed."),
        "{reason}"
    );
    // The score counts the live metric alone.
    assert_eq!(verdict["score"].as_f64(), Some(100.0));

    // The log line holds the same metric, marked shadow.
    let log_text: String = std::fs::read_dir(app.log_dir.path())
        .expect("log dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("log file"))
        .collect();
    let line: serde_json::Value =
        serde_json::from_str(log_text.lines().next().expect("one line")).expect("JSON line");
    assert_eq!(metric(&line, "slow-requests-v2")["shadow"], true);
    assert_eq!(metric(&line, "slow-requests-v2")["reason"], shadow_reason);

    // `canary-gate log` shows the verdict's reason, shadow failure included.
    let output = std::process::Command::new(binary())
        .arg("log")
        .arg("--log-dir")
        .arg(app.log_dir.path())
        .output()
        .expect("run canary-gate log");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(
        table.contains("promote") && table.contains("slow-requests-v2, shadow: would have failed"),
        "{table}"
    );

    // The report names the metric as shadow, with its reason.
    let id = verdict["id"].as_str().expect("id");
    let (status, html) = app.get_text(&format!("/verdicts/{id}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("slow-requests-v2 (shadow)"), "{html}");
    // Its row is muted, not highlighted like a failing live metric's, and its
    // badge outlined.
    assert!(
        html.contains(r##"<tr class="shadow"><td><a href="#metric-slow-requests-v2">slow-requests-v2 (shadow)</a></td><td><span class="badge fail shadow">fail</span>"##),
        "{html}"
    );
    assert!(!html.contains(r#"<tr class="failing">"#), "{html}");
    assert!(
        html.contains("shadow: not counted in the verdict"),
        "{html}"
    );
    assert!(html.contains("shadow: would have failed."), "{html}");

    // `/metrics` counts each outcome under its metric's kind: live or shadow.
    let (status, metrics) = app.get_text("/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    for counted in [
        r#"canary_gate_metric_outcomes_total{rules="trial",metric="error-rate",outcome="pass",shadow="false"} 1"#,
        r#"canary_gate_metric_outcomes_total{rules="trial",metric="slow-requests-v2",outcome="fail",shadow="true"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|line| line == counted),
            "no `{counted}` in:\n{metrics}"
        );
    }
    app.stop().await;

    // The CLI's text output (that of `judge` and `wait --output text`) marks it too.
    let output = std::process::Command::new(binary())
        .args(["judge", "--prometheus", &prometheus.url, "--rules", "trial"])
        .arg("--rules-dir")
        .arg(rules_dir.path())
        .args(["--canary", "track=canary", "--baseline", "track=baseline"])
        .args(["--deployment", "checkout-1", "--var", "service=checkout"])
        .args(["--final", "--output", "text"])
        .args(["--start", &start.to_string()])
        .args(["--end", &(start + MINUTES * 60).to_string()])
        .output()
        .expect("run canary-gate judge");
    let text = assert_exit(&output, 0);
    assert!(
        text.contains("  - slow-requests-v2 (fail, shadow): shadow: would have failed."),
        "{text}"
    );
}
