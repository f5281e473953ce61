//! canary-gate's own metrics, in the Prometheus text exposition format
//! (the official `prometheus-client` crate): what the server serves at
//! `GET /metrics`. The registry and every metric live here; the pipe reports
//! to it through [`Recorder`], the HTTP door through the methods below.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::telemetry::{ERROR_KINDS, Recorder};

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The prefix of every metric name.
pub const PREFIX: &str = "canary_gate";

/// Histogram buckets in seconds, 5 ms doubling to about 20 s: a verdict or a
/// query is milliseconds when healthy and seconds near the verdict deadline.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    rules: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MetricLabels {
    rules: String,
    metric: String,
    outcome: String,
    /// `true` for a shadow metric's outcome (never counted in the verdict).
    shadow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RulesLabels {
    rules: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryErrorLabels {
    source: String,
    kind: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The registry and the metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    verdicts: Family<VerdictLabels, Counter>,
    metric_outcomes: Family<MetricLabels, Counter>,
    verdict_duration: HistogramFamily<RulesLabels>,
    query_duration: HistogramFamily<SourceLabels>,
    query_errors: Family<QueryErrorLabels, Counter>,
    in_flight: Gauge,
    queued: Gauge,
    refused: Counter,
    rule_reloads: Counter,
    rule_reload_failures: Counter,
    rules_last_reload_ok: Gauge,
    log_write_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix(PREFIX),
            verdicts: Family::default(),
            metric_outcomes: Family::default(),
            verdict_duration: Family::new_with_constructor(seconds_histogram),
            query_duration: Family::new_with_constructor(seconds_histogram),
            query_errors: Family::default(),
            in_flight: Gauge::default(),
            queued: Gauge::default(),
            refused: Counter::default(),
            rule_reloads: Counter::default(),
            rule_reload_failures: Counter::default(),
            rules_last_reload_ok: Gauge::default(),
            log_write_failures: Counter::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "verdicts",
            "Verdicts given, by rule set and verdict (promote, rollback, inconclusive)",
            metrics.verdicts.clone(),
        );
        registry.register(
            "metric_outcomes",
            "Metric outcomes of the verdicts given, by rule set, metric, outcome (pass, fail, inconclusive, nodata, error) and shadow (true for a shadow metric, not counted in the verdict)",
            metrics.metric_outcomes.clone(),
        );
        registry.register_with_unit(
            "verdict_duration",
            "Time from a verdict request entering the pipe to its logged verdict, by rule set",
            Unit::Seconds,
            metrics.verdict_duration.clone(),
        );
        registry.register_with_unit(
            "store_query_duration",
            "Time of each distinct metric-store query of a verdict, retries included, by source",
            Unit::Seconds,
            metrics.query_duration.clone(),
        );
        registry.register(
            "store_query_errors",
            "Metric-store queries that ended without an answer, by source and error kind",
            metrics.query_errors.clone(),
        );
        registry.register(
            "verdicts_in_flight",
            "Verdicts being judged now",
            metrics.in_flight.clone(),
        );
        registry.register(
            "verdicts_queued",
            "Verdict requests waiting for a slot now",
            metrics.queued.clone(),
        );
        registry.register(
            "verdicts_refused",
            "Verdict requests refused with 503 because the slots and the queue were full",
            metrics.refused.clone(),
        );
        registry.register(
            "rule_reloads",
            "Reloads of the rules folder (watched, SIGHUP, POST /v1/rules/reload)",
            metrics.rule_reloads.clone(),
        );
        registry.register(
            "rule_reload_failures",
            "Reloads of the rules folder in which a rule file was refused",
            metrics.rule_reload_failures.clone(),
        );
        registry.register(
            "rules_last_reload_successful",
            "1 when every rule file was accepted at the last load, 0 when one was refused",
            metrics.rules_last_reload_ok.clone(),
        );
        registry.register(
            "verdict_log_write_failures",
            "Verdicts that could not be written to the verdict log (and so were not given)",
            metrics.log_write_failures.clone(),
        );
        registry.register(
            "build",
            "The running build of canary-gate",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        metrics
    }

    /// Makes the error series of the source `name` exist from the start, at
    /// 0, so `increase()` sees its first error.
    pub fn declare_source(&self, name: &str) {
        for kind in ERROR_KINDS {
            let _ = self.query_errors.get_or_create(&QueryErrorLabels {
                source: name.to_string(),
                kind: kind.to_string(),
            });
        }
    }

    /// The counter of 503 refusals, for the admission layer to count on.
    pub fn refusals(&self) -> Counter {
        self.refused.clone()
    }

    /// The first load of the rules folder, at start-up, ended; `accepted`
    /// when no rule file was refused. Sets the state; it is not a reload.
    pub fn rules_loaded_at_start(&self, accepted: bool) {
        self.rules_last_reload_ok.set(i64::from(accepted));
    }

    /// A reload of the rules folder ended; `accepted` when no rule file was refused.
    pub fn rules_reloaded(&self, accepted: bool) {
        self.rule_reloads.inc();
        if !accepted {
            self.rule_reload_failures.inc();
        }
        self.rules_last_reload_ok.set(i64::from(accepted));
    }

    /// The metrics as Prometheus text, with the verdicts `in_flight` and
    /// `queued` as of now.
    pub fn encode(&self, in_flight: usize, queued: usize) -> String {
        self.in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        self.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Recorder for Metrics {
    fn query(&self, source: &str, seconds: f64, error_kind: Option<&str>) {
        let source = source.to_string();
        self.query_duration
            .get_or_create(&SourceLabels {
                source: source.clone(),
            })
            .observe(seconds);
        if let Some(kind) = error_kind {
            self.query_errors
                .get_or_create(&QueryErrorLabels {
                    source,
                    kind: kind.to_string(),
                })
                .inc();
        }
    }

    fn metric_outcome(&self, rules: &str, metric: &str, outcome: &str, shadow: bool) {
        self.metric_outcomes
            .get_or_create(&MetricLabels {
                rules: rules.to_string(),
                metric: metric.to_string(),
                outcome: outcome.to_string(),
                shadow: shadow.to_string(),
            })
            .inc();
    }

    fn verdict(&self, rules: &str, verdict: &str, seconds: f64) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                rules: rules.to_string(),
                verdict: verdict.to_string(),
            })
            .inc();
        self.verdict_duration
            .get_or_create(&RulesLabels {
                rules: rules.to_string(),
            })
            .observe(seconds);
    }

    fn log_write_failed(&self) {
        self.log_write_failures.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The text names every metric the README documents, with its labels and counts.
    #[test]
    fn text_carries_every_metric() {
        let metrics = Metrics::new();
        metrics.declare_source("prometheus");
        metrics.verdict("http", "promote", 0.02);
        metrics.metric_outcome("http", "errors", "pass", false);
        metrics.metric_outcome("http", "latency-v2", "fail", true);
        metrics.query("prometheus", 0.01, Some("unreachable"));
        metrics.refusals().inc();
        metrics.rules_reloaded(false);
        metrics.log_write_failed();
        let text = metrics.encode(2, 3);
        for line in [
            "canary_gate_verdicts_total{rules=\"http\",verdict=\"promote\"} 1",
            "canary_gate_metric_outcomes_total{rules=\"http\",metric=\"errors\",outcome=\"pass\",shadow=\"false\"} 1",
            "canary_gate_metric_outcomes_total{rules=\"http\",metric=\"latency-v2\",outcome=\"fail\",shadow=\"true\"} 1",
            "canary_gate_verdict_duration_seconds_count{rules=\"http\"} 1",
            "canary_gate_store_query_duration_seconds_count{source=\"prometheus\"} 1",
            "canary_gate_store_query_errors_total{source=\"prometheus\",kind=\"unreachable\"} 1",
            "canary_gate_store_query_errors_total{source=\"prometheus\",kind=\"deadline\"} 0",
            "canary_gate_verdicts_in_flight 2",
            "canary_gate_verdicts_queued 3",
            "canary_gate_verdicts_refused_total 1",
            "canary_gate_rule_reloads_total 1",
            "canary_gate_rule_reload_failures_total 1",
            "canary_gate_rules_last_reload_successful 0",
            "canary_gate_verdict_log_write_failures_total 1",
        ] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
        let version = format!(
            "canary_gate_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&version), "no `{version}` in:\n{text}");
    }
}
