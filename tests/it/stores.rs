//! The same data in Prometheus and in VictoriaMetrics gives the same verdict
//! figures: canary-gate differences counters on the client from raw-selector
//! range queries, so where the two dialects differ (`rate`/`increase`
//! extrapolation, lookback) its measurements do not, except where
//! VictoriaMetrics moves the evaluation times (its response cache aligns a
//! range's start to a multiple of the step). The README's
//! "Prometheus-compatible stores" quotes what these tests measure
//! (`cargo test --test it stores:: -- --nocapture` prints the figures).

use serde_json::Value;

use crate::support::store::{StoreKind, TestStore};
use crate::support::{
    MINUTES, TestApp, metric, repo_root, request, spawn_app, two_services, window_start,
};

/// The figures of one metric a verdict is judged on.
#[derive(Debug, PartialEq)]
struct Figures {
    outcome: Value,
    canary_count: Option<f64>,
    baseline_count: Option<f64>,
    estimate: Value,
}

/// The figures of metric `name` in `verdict`.
fn figures(verdict: &Value, name: &str) -> Figures {
    let metric = metric(verdict, name);
    Figures {
        outcome: metric["outcome"].clone(),
        canary_count: metric["canary"]["count"].as_f64(),
        baseline_count: metric["baseline"]["count"].as_f64(),
        estimate: metric["estimate"].clone(),
    }
}

/// The `http` rules' server against each store, each holding `two_services(start)`.
struct BothStores {
    // The stores live as long as the apps that query them.
    _stores: Vec<TestStore>,
    prometheus: TestApp,
    victoria: TestApp,
}

impl BothStores {
    async fn start(start: i64) -> BothStores {
        let simulation = two_services(start);
        let rules = repo_root().join("rules");
        let prometheus_store = TestStore::start(StoreKind::Prometheus, &simulation);
        let victoria_store = TestStore::start(StoreKind::VictoriaMetrics, &simulation);
        let prometheus = spawn_app(prometheus_store.url(), &rules).await;
        let victoria = spawn_app(victoria_store.url(), &rules).await;
        BothStores {
            _stores: vec![prometheus_store, victoria_store],
            prometheus,
            victoria,
        }
    }

    /// The verdict each store's server gives to `body`.
    async fn ask(&self, body: &Value) -> (Value, Value) {
        let (status, from_prometheus) = self.prometheus.post_verdict(body).await;
        assert_eq!(status, 200, "{from_prometheus:#}");
        let (status, from_victoria) = self.victoria.post_verdict(body).await;
        assert_eq!(status, 200, "{from_victoria:#}");
        (from_prometheus, from_victoria)
    }

    async fn stop(self) {
        self.prometheus.stop().await;
        self.victoria.stop().await;
    }
}

// On a window that starts on a multiple of the 15 s step, every look's counts
// per side and estimates are the same, to the last request, on both stores.
#[tokio::test]
async fn aligned_looks_agree_exactly() {
    let start = window_start();
    let stores = BothStores::start(start).await;
    let looks = [
        request("search", start, start + 5 * 60, false),
        request("search", start, start + 10 * 60, false),
        request("checkout", start, start + 10 * 60, false),
        request("checkout", start, start + MINUTES * 60, true),
    ];
    for look in &looks {
        let (from_prometheus, from_victoria) = stores.ask(look).await;
        assert_eq!(
            from_prometheus["verdict"], from_victoria["verdict"],
            "{look}"
        );
        for name in ["error-rate", "latency"] {
            let (p, v) = (
                figures(&from_prometheus, name),
                figures(&from_victoria, name),
            );
            println!(
                "{} {name}: Prometheus {p:?}\n  VictoriaMetrics {v:?}",
                look["end"]
            );
            assert_eq!(p, v, "{name} differs for {look}");
        }
    }
    stores.stop().await;
}

// A window that starts 7 s past a step boundary: VictoriaMetrics's response
// cache evaluates the range at multiples of the step instead (7 s earlier),
// so the first step is lost and each side counts one 15 s step fewer. The
// verdict is the same; the counts agree within one step of traffic (1/120 of
// a 30-minute window, under 1%).
#[tokio::test]
async fn unaligned_start_agrees_within_one_step() {
    let data_start = window_start();
    let start = data_start + 7;
    let stores = BothStores::start(data_start).await;
    let look = request("checkout", start, data_start + MINUTES * 60, true);
    let (from_prometheus, from_victoria) = stores.ask(&look).await;
    assert_eq!(from_prometheus["verdict"], from_victoria["verdict"]);
    for name in ["error-rate", "latency"] {
        let (p, v) = (
            figures(&from_prometheus, name),
            figures(&from_victoria, name),
        );
        println!("unaligned {name}: Prometheus {p:?}\n  VictoriaMetrics {v:?}");
        assert_eq!(p.outcome, v.outcome, "{name}");
        for (side, from_p, from_v) in [
            ("canary", p.canary_count, v.canary_count),
            ("baseline", p.baseline_count, v.baseline_count),
        ] {
            let (from_p, from_v) = (from_p.expect("count"), from_v.expect("count"));
            let steps = (MINUTES * 60 - 15) as f64 / 15.0;
            let relative = (from_p - from_v).abs() / from_p;
            println!("  {side}: {from_p} vs {from_v}, {:.3}%", relative * 100.0);
            assert!(
                relative <= 1.5 / steps,
                "{name} {side}: Prometheus {from_p}, VictoriaMetrics {from_v}"
            );
        }
    }
    stores.stop().await;
}
