//! Latency distributions end to end: a latency metric without
//! `threshold_seconds`, judged from a histogram in a real Prometheus and a
//! real VictoriaMetrics, beside the threshold form of the same histogram.

use serde_json::json;

use canary_gate::text::latency;

use crate::on_both_stores;
use crate::support::binary::{assert_exit, binary};
use crate::support::store::{StoreKind, TestStore};
use crate::support::{MINUTES, histogram_openmetrics, spawn_app, window_start};

/// The same histogram judged two ways: as a distribution and as the share
/// of requests slower than 250 ms.
pub(crate) const RULES: &str = "\
metrics:
  - name: latency
    kind: latency
    histogram: http_request_duration_seconds_bucket{service=\"$service\"}
    direction: increase
    tolerance: 0%
  - name: slow-requests
    kind: latency
    histogram: http_request_duration_seconds_bucket{service=\"$service\"}
    threshold_seconds: 0.25
    direction: increase
    tolerance: 0%
";

/// A bucket bound and the requests per scrape at or below it.
type Bucket = (&'static str, i64);

/// Cumulative requests per scrape up to each bound: the baseline's layout.
const BASELINE: [Bucket; 5] = [
    ("0.025", 30),
    ("0.05", 90),
    ("0.1", 140),
    ("0.25", 150),
    ("+Inf", 150),
];
/// A canary whose body is slower while every request stays under 250 ms.
const SLOWER_BODY: [Bucket; 5] = [
    ("0.025", 10),
    ("0.05", 50),
    ("0.1", 120),
    ("0.25", 150),
    ("+Inf", 150),
];
/// A canary pod with other buckets than the baseline's.
const OTHER_LAYOUT: [Bucket; 4] = [("0.05", 90), ("0.1", 140), ("0.5", 150), ("+Inf", 150)];

/// One pod a side for each service, scraped every 15 s: `steady`'s canary runs
/// like its baseline, `slower`'s has the slower body, `relaid`'s canary has
/// other buckets.
pub(crate) fn histograms(start: i64) -> String {
    let mut text = String::from("# TYPE http_request_duration_seconds histogram\n");
    let pods: [(&str, &str, &[Bucket]); 6] = [
        ("steady", "baseline", &BASELINE),
        ("steady", "canary", &BASELINE),
        ("slower", "baseline", &BASELINE),
        ("slower", "canary", &SLOWER_BODY),
        ("relaid", "baseline", &BASELINE),
        ("relaid", "canary", &OTHER_LAYOUT),
    ];
    for (service, track, buckets) in pods {
        let labels = format!("pod=\"{track}-a\",service=\"{service}\",track=\"{track}\"");
        histogram_openmetrics(&mut text, &labels, buckets, 150, start);
    }
    text.push_str("# EOF\n");
    text
}

/// The final look at `service`'s canary, judged by the rule set [`RULES`].
fn final_look(start: i64, service: &str) -> serde_json::Value {
    json!({
        "rules": "latency", "deployment": format!("{service}-1"),
        "canary": {"track": "canary"}, "baseline": {"track": "baseline"},
        "start": start, "end": start + MINUTES * 60, "vars": {"service": service}, "final": true,
    })
}

// A body slowdown that leaves every request under 250 ms is rolled back by the
// distribution form, naming the edge that moved, while the 250 ms threshold form
// passes it; a canary like its baseline passes both; a canary with other buckets
// is refused with both layouts named.
async fn the_distribution_catches_what_the_threshold_misses(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start_with_openmetrics(kind, histograms(start).as_bytes());
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::write(rules.path().join("latency.yaml"), RULES).expect("write rules");
    let app = spawn_app(store.url(), rules.path()).await;
    let ask = |service: &str| final_look(start, service);

    let (status, slower) = app.post_verdict(&ask("slower")).await;
    assert_eq!(status, 200, "{slower}");
    let (distribution, threshold) = (&slower["metrics"][0], &slower["metrics"][1]);
    assert_eq!(distribution["outcome"], "fail", "{slower:#}");
    let reason = distribution["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("Slower than tolerated (no percentile slower) above 100 ms")
            && reason.contains("p50 "),
        "{reason}"
    );
    // The answer carries both sides' percentiles; the canary's p50 is the higher.
    let p50 = |side: &str| distribution[side]["percentiles"][0]["seconds"].as_f64();
    assert!(p50("canary") > p50("baseline"), "{distribution:#}");
    assert_eq!(distribution["canary"]["percentiles"][2]["quantile"], 0.99);
    // Each percentile carries its time-uniform interval at bucket edges, around the
    // estimate, with the level both sides' reason figures are built from.
    for side in ["canary", "baseline"] {
        for percentile in distribution[side]["percentiles"]
            .as_array()
            .expect("percentiles")
        {
            let seconds = percentile["seconds"].as_f64().expect("seconds");
            let lower = percentile["lower"].as_f64().expect("lower");
            assert!(lower <= seconds, "{percentile}");
            if let Some(upper) = percentile["upper"].as_f64() {
                assert!(seconds <= upper, "{percentile}");
            }
            assert_eq!(percentile["confidence"], 0.995, "{percentile}");
        }
    }
    // The reason names the percentiles that rose and what the intervals guarantee.
    eprintln!("{reason}");
    assert!(
        reason.contains("slower at p50") && reason.contains("with 99% confidence"),
        "{reason}"
    );
    assert_eq!(threshold["outcome"], "pass", "{slower:#}");
    assert_eq!(slower["verdict"], "rollback", "{slower:#}");

    let (status, steady) = app.post_verdict(&ask("steady")).await;
    assert_eq!(status, 200, "{steady}");
    assert_eq!(steady["metrics"][0]["outcome"], "pass", "{steady:#}");
    assert_eq!(steady["verdict"], "promote", "{steady:#}");
    // Before the final look the same canary is undecided, with no evidence of a
    // slower canary, so no bucket edge is named as carrying it.
    let mut early = ask("steady");
    early["final"] = json!(false);
    early["end"] = json!(start + 10 * 60);
    let (status, undecided) = app.post_verdict(&early).await;
    assert_eq!(status, 200, "{undecided}");
    let reason = undecided["metrics"][0]["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with(
            "Not decided yet (no percentile slower): the evidence of a slower canary reached "
        ) && !reason.contains("most of it where"),
        "{reason}"
    );

    let (status, relaid) = app.post_verdict(&ask("relaid")).await;
    assert_eq!(status, 200, "{relaid}");
    let refused = &relaid["metrics"][0];
    assert_eq!(refused["outcome"], "error", "{relaid:#}");
    let reason = refused["reason"].as_str().expect("reason");
    assert!(
        reason.contains("the canary's histogram has buckets 0.05, 0.1, 0.5, +Inf")
            && reason.contains("the baseline's has buckets 0.025, 0.05, 0.1, 0.25, +Inf"),
        "{reason}"
    );
    app.stop().await;
}

on_both_stores!(the_distribution_catches_what_the_threshold_misses,);

/// `mixed`'s canary: a second pod on a client with fewer buckets, the
/// threshold's among them.
const FEWER_BUCKETS: [Bucket; 3] = [("0.1", 140), ("0.25", 150), ("+Inf", 150)];

// The threshold form quotes the p50, p90 and p99 of both sides, with the same
// intervals the distribution form gives on the same histogram (its query asks for
// every bucket, not the two it tests), and keeps the buckets its report figure is
// drawn from. A side whose pods have two bucket layouts, each with the threshold's
// bucket, is still judged by the threshold form, with no percentiles rather than
// percentiles of merged layouts.
async fn the_threshold_form_quotes_percentiles(kind: StoreKind) {
    let start = window_start();
    let mut text = histograms(start).replace("# EOF\n", "");
    for (pod, buckets) in [("baseline-a", &BASELINE[..]), ("canary-a", &BASELINE[..])] {
        let track = &pod[..pod.len() - 2];
        let labels = format!("pod=\"{pod}\",service=\"mixed\",track=\"{track}\"");
        histogram_openmetrics(&mut text, &labels, buckets, 150, start);
    }
    let labels = "pod=\"canary-b\",service=\"mixed\",track=\"canary\"";
    histogram_openmetrics(&mut text, labels, &FEWER_BUCKETS, 150, start);
    text.push_str("# EOF\n");
    let store = TestStore::start_with_openmetrics(kind, text.as_bytes());
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::write(rules.path().join("latency.yaml"), RULES).expect("write rules");
    let app = spawn_app(store.url(), rules.path()).await;
    let ask = |service: &str| final_look(start, service);

    for service in ["slower", "steady"] {
        let (status, verdict) = app.post_verdict(&ask(service)).await;
        assert_eq!(status, 200, "{verdict}");
        let (distribution, threshold) = (&verdict["metrics"][0], &verdict["metrics"][1]);
        assert_eq!(threshold["name"], "slow-requests", "{verdict:#}");
        assert_eq!(threshold["outcome"], "pass", "{verdict:#}");
        let promql = threshold["queries"][0]["promql"].as_str().expect("promql");
        assert!(!promql.contains("le="), "{promql}");
        for side in ["canary", "baseline"] {
            let quoted = threshold[side]["percentiles"]
                .as_array()
                .expect("percentiles");
            let quantiles: Vec<f64> = quoted
                .iter()
                .filter_map(|p| p["quantile"].as_f64())
                .collect();
            assert_eq!(
                quantiles,
                [0.5, 0.9, 0.99],
                "{service} {side}: {threshold:#}"
            );
            assert_eq!(
                threshold[side]["percentiles"], distribution[side]["percentiles"],
                "{service} {side}"
            );
            // Beside its own figures, which stay the slow share.
            assert_eq!(threshold[side]["value"], 0.0, "{threshold:#}");
        }
        assert_eq!(
            threshold["chart"]["bucket_edges_seconds"],
            json!([0.025, 0.05, 0.1, 0.25]),
            "{threshold:#}"
        );
        assert_eq!(
            threshold["chart"]["canary_buckets"],
            distribution["chart"]["canary_buckets"]
        );
        // `slower`'s canary p50 is above its baseline's, by the buckets (edges 50 ms
        // and 100 ms hold 1/3 and 4/5 of its requests, against 3/5 and 14/15).
        let p50 = |side: &str| threshold[side]["percentiles"][0]["seconds"].as_f64();
        assert_eq!(
            p50("canary") > p50("baseline"),
            service == "slower",
            "{verdict:#}"
        );
    }

    let (status, mixed) = app.post_verdict(&ask("mixed")).await;
    assert_eq!(status, 200, "{mixed}");
    let threshold = &mixed["metrics"][1];
    assert_eq!(threshold["outcome"], "pass", "{mixed:#}");
    // Both canary pods are counted, whatever their buckets.
    let count = |side: &str| threshold[side]["count"].as_f64().expect("count");
    assert_eq!(count("canary"), 2.0 * count("baseline"), "{mixed:#}");
    for side in ["canary", "baseline"] {
        assert!(threshold[side].get("percentiles").is_none(), "{mixed:#}");
    }
    assert!(
        threshold["chart"].get("bucket_edges_seconds").is_none(),
        "{mixed:#}"
    );
    app.stop().await;
}

on_both_stores!(the_threshold_form_quotes_percentiles,);

/// `canary-gate judge` on the `latency` rule set above for `service`, at the
/// final look, in `output` form (`json` or `text`), exiting with `code`.
fn judge_cli(
    store: &TestStore,
    rules: &std::path::Path,
    service: &str,
    output: &str,
    code: i32,
) -> String {
    let start = window_start();
    let ran = std::process::Command::new(binary())
        .args(["judge", "--prometheus", store.url(), "--rules", "latency"])
        .arg("--rules-dir")
        .arg(rules)
        .args(["--canary", "track=canary", "--baseline", "track=baseline"])
        .args(["--deployment", &format!("{service}-1"), "--var"])
        .arg(format!("service={service}"))
        .args(["--final", "--output", output])
        .args(["--start", &start.to_string()])
        .args(["--end", &(start + MINUTES * 60).to_string()])
        .output()
        .expect("run canary-gate judge");
    assert_exit(&ran, code)
}

/// "p50 41 ms [25 ms, 50 ms]" for one side's percentile in the JSON answer.
fn percentile_text(percentile: &serde_json::Value) -> String {
    let seconds = |field: &str| percentile[field].as_f64().expect("seconds");
    let upper = percentile["upper"]
        .as_f64()
        .map_or("unbounded".to_string(), latency);
    format!(
        "{} [{}, {upper}]",
        latency(seconds("seconds")),
        latency(seconds("lower"))
    )
}

// The text output of `judge` (and `wait`, which prints the same) gives every metric
// that carries percentiles a line of them: p50, p90 and p99 of both sides with their
// intervals, as in the JSON answer, and the level once, in the words of what it
// guarantees. The promote reason gives a distribution's medians as durations, and the
// threshold form says in plain words when neither side had a slow request.
#[test]
fn text_output_has_a_percentile_line() {
    let start = window_start();
    let store =
        TestStore::start_with_openmetrics(StoreKind::Prometheus, histograms(start).as_bytes());
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::write(rules.path().join("latency.yaml"), RULES).expect("write rules");

    for (service, code) in [("slower", 1), ("steady", 0)] {
        let answer: serde_json::Value =
            serde_json::from_str(&judge_cli(&store, rules.path(), service, "json", code))
                .expect("a JSON verdict");
        let text = judge_cli(&store, rules.path(), service, "text", code);
        let lines: Vec<&str> = text.lines().collect();
        for metric in answer["metrics"].as_array().expect("metrics") {
            let name = metric["name"].as_str().expect("name");
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("  - {name} (")))
                .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"));
            // Absent from the answer when a side has none.
            let list = |side: &str| {
                metric[side]["percentiles"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            };
            let (canary, baseline) = (list("canary"), list("baseline"));
            let next = lines.get(at + 1).copied().unwrap_or("");
            if canary.is_empty() {
                assert!(!next.contains("percentiles, canary vs baseline"), "{text}");
                continue;
            }
            assert!(
                next.starts_with("      percentiles, canary vs baseline (")
                    && next.matches("99.5% confidence").count() == 1,
                "{next}"
            );
            let quoted: Vec<String> = canary
                .iter()
                .zip(&baseline)
                .map(|(c, b)| {
                    let q = c["quantile"].as_f64().expect("quantile");
                    assert_eq!(b["quantile"], c["quantile"]);
                    format!(
                        "p{} {} vs {}",
                        canary_gate::text::number(q * 100.0),
                        percentile_text(c),
                        percentile_text(b)
                    )
                })
                .collect();
            assert_eq!(quoted.len(), 3, "{metric:#}");
            assert!(
                next.ends_with(&format!("): {}", quoted.join(" · "))),
                "{next}"
            );
        }
        if service == "steady" {
            let medians: Vec<String> = ["canary", "baseline"]
                .iter()
                .map(|side| {
                    latency(
                        answer["metrics"][0][side]["percentiles"][0]["seconds"]
                            .as_f64()
                            .expect("p50"),
                    )
                })
                .collect();
            let reason = answer["reason"].as_str().expect("reason");
            assert!(
                reason.contains(&format!(
                    "latency p50 {} against {}",
                    medians[0], medians[1]
                )),
                "{reason}"
            );
            // Every request of both sides is under 250 ms.
            let threshold = answer["metrics"][1]["reason"].as_str().expect("reason");
            assert!(
                threshold.contains("no request slower than 250 ms on either side")
                    && !threshold.contains("n/a"),
                "{threshold}"
            );
        }
    }
}
