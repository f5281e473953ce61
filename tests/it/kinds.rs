//! Series (Kayenta-style) and threshold metrics end to end, from gauges in a
//! real Prometheus and a real VictoriaMetrics.

use std::fmt::Write as _;

use serde_json::json;

use crate::on_both_stores;
use crate::support::store::{StoreKind, TestStore};
use crate::support::{MINUTES, histogram_openmetrics, spawn_app, window_start};

/// A rule set with a series metric and a threshold metric over a `cpu` gauge.
const RULES: &str = "\
description: CPU of a service, Kayenta style, and a hard cap.
metrics:
  - name: cpu
    kind: series
    query: avg by (pod) (cpu{service=\"$service\"})
    direction: increase
    min_samples: 20
  - name: cpu-cap
    kind: threshold
    query: max(cpu{service=\"$service\"})
    max: 2
";

/// Gauges for three services, two pods a side, scraped every 15 s: `steady`'s
/// canary runs like its baseline, `hungry`'s uses 60% more CPU, and `spiky`'s
/// matches its baseline but peaks above the cap at the end.
fn gauges(start: i64) -> String {
    let mut text = String::from("# TYPE cpu gauge\n");
    let scrapes = MINUTES * 4;
    for (service, canary_level, final_spike) in [
        ("steady", 0.5, None),
        ("hungry", 0.8, None),
        ("spiky", 0.5, Some(2.5)),
    ] {
        for (track, level) in [("baseline", 0.5), ("canary", canary_level)] {
            for pod in 0..2 {
                for scrape in 0..=scrapes {
                    // Deterministic wobble, different per pod and side.
                    let phase = scrape as f64 * 0.7
                        + pod as f64 * 1.3
                        + if track == "canary" { 0.4 } else { 0.0 };
                    let mut value: f64 = level + 0.05 * phase.sin();
                    if track == "canary" && scrape == scrapes {
                        value = final_spike.unwrap_or(value);
                    }
                    let time = start + scrape * 15;
                    writeln!(text, "cpu{{pod=\"{track}-{pod}\",service=\"{service}\",track=\"{track}\"}} {value:.4} {time}")
                        .expect("write to a string");
                }
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

// Series metrics wait for the final look, then judge Kayenta's way: a canary using 60%
// more CPU fails ("Higher than tolerated"), a steady one passes; the threshold metric
// checks the canary's value at the end against its cap.
async fn series_and_threshold_metrics_from_real_gauges(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start_with_openmetrics(kind, gauges(start).as_bytes());
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::write(rules.path().join("cpu.yaml"), RULES).expect("write rules");
    let app = spawn_app(store.url(), rules.path()).await;
    let ask = |service: &str, is_final: bool| {
        json!({
            "rules": "cpu", "deployment": format!("{service}-1"),
            "canary": {"track": "canary"}, "baseline": {"track": "baseline"},
            "start": start, "end": start + MINUTES * 60, "vars": {"service": service}, "final": is_final,
        })
    };

    let (status, early) = app.post_verdict(&ask("hungry", false)).await;
    assert_eq!(status, 200, "{early}");
    assert_eq!(early["metrics"][0]["outcome"], "inconclusive", "{early:#}");
    assert!(
        early["metrics"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("final look"),
        "{early:#}"
    );
    assert_ne!(early["verdict"], "promote");

    let (_, hungry) = app.post_verdict(&ask("hungry", true)).await;
    let cpu = &hungry["metrics"][0];
    assert_eq!(cpu["outcome"], "fail", "{hungry:#}");
    assert!(
        cpu["reason"]
            .as_str()
            .expect("reason")
            .starts_with("Higher than tolerated"),
        "{cpu:#}"
    );
    // The Hodges-Lehmann shift is near the true 0.3 and its interval excludes 0.
    let shift = cpu["estimate"]["value"].as_f64().expect("estimate");
    assert!((0.2..0.4).contains(&shift), "shift {shift}");
    assert!(cpu["estimate"]["lower"].as_f64().expect("lower") > 0.0);
    // 121 scrapes of two pods each, averaged per pod: 242 samples a side.
    assert_eq!(cpu["canary"]["count"], 242.0);
    assert_ne!(hungry["verdict"], "promote", "{hungry:#}");

    let (_, steady) = app.post_verdict(&ask("steady", true)).await;
    assert_eq!(steady["metrics"][0]["outcome"], "pass", "{steady:#}");
    assert_eq!(steady["metrics"][1]["outcome"], "pass", "{steady:#}");
    assert_eq!(steady["verdict"], "promote", "{steady:#}");
    let cap_query = steady["metrics"][1]["queries"][0]["promql"]
        .as_str()
        .expect("query");
    assert_eq!(cap_query, r#"max(cpu{service="steady",track="canary"})"#);
    assert_eq!(
        steady["metrics"][1]["queries"].as_array().map(Vec::len),
        Some(1),
        "thresholds ask the canary only"
    );

    let (_, spiky) = app.post_verdict(&ask("spiky", true)).await;
    let cap = &spiky["metrics"][1];
    assert_eq!(cap["outcome"], "fail", "{spiky:#}");
    assert_eq!(cap["canary"]["value"], 2.5);
    assert_ne!(spiky["verdict"], "promote", "{spiky:#}");
    app.stop().await;
}

/// A latency rule over `http_request_duration_seconds`, slow above 0.25 s.
const LATENCY_RULES: &str = "\
metrics:
  - name: slow-requests
    kind: latency
    histogram: http_request_duration_seconds_bucket{service=\"$service\"}
    threshold_seconds: 0.25
    direction: increase
    tolerance: 0%
";

/// Histograms of a baseline pod and two canary pods, scraped every 15 s, each
/// with 150 requests a scrape of which 5% are slower than 0.25 s. Canary pod
/// `canary-b` runs an older client with other buckets: no 0.25 bucket.
fn histograms(start: i64) -> String {
    let mut text = String::from("# TYPE http_request_duration_seconds histogram\n");
    // Cumulative requests per scrape up to each bound.
    let with_threshold = [("0.1", 100), ("0.25", 142), ("0.5", 148), ("+Inf", 150)];
    let without_threshold = [("0.1", 100), ("0.5", 148), ("+Inf", 150)];
    for (track, pod, buckets) in [
        ("baseline", "baseline-a", &with_threshold[..]),
        ("canary", "canary-a", &with_threshold[..]),
        ("canary", "canary-b", &without_threshold[..]),
    ] {
        let labels = format!("pod=\"{pod}\",service=\"web\",track=\"{track}\"");
        histogram_openmetrics(&mut text, &labels, buckets, 150, start);
    }
    text.push_str("# EOF\n");
    text
}

// Regression: a canary pod whose histogram lacks the threshold's bucket had all its
// requests counted as slow (bucket matching was global), rolling back a canary as fast
// as its baseline. Now the metric is an error naming that pod's series and buckets.
async fn a_pod_without_the_threshold_bucket_is_named_not_counted_as_all_slow(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start_with_openmetrics(kind, histograms(start).as_bytes());
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::write(rules.path().join("latency.yaml"), LATENCY_RULES).expect("write rules");
    let app = spawn_app(store.url(), rules.path()).await;
    let (status, verdict) = app
        .post_verdict(&json!({
            "rules": "latency", "deployment": "web-1",
            "canary": {"track": "canary"}, "baseline": {"track": "baseline"},
            "start": start, "end": start + MINUTES * 60, "vars": {"service": "web"}, "final": true,
        }))
        .await;
    assert_eq!(status, 200, "{verdict}");
    let slow = &verdict["metrics"][0];
    assert_eq!(slow["outcome"], "error", "{verdict:#}");
    let reason = slow["reason"].as_str().expect("reason");
    assert!(
        reason.contains(r#"pod="canary-b""#)
            && reason.contains("its buckets: 0.1, 0.5, +Inf")
            && reason.contains("a bound every series has (0.1, 0.5, +Inf)"),
        "{reason}"
    );
    assert_eq!(verdict["verdict"], "inconclusive", "{verdict:#}");
    app.stop().await;
}

on_both_stores!(
    series_and_threshold_metrics_from_real_gauges,
    a_pod_without_the_threshold_bucket_is_named_not_counted_as_all_slow,
);
