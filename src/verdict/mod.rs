//! What canary-gate answers: the verdict, its reason, and every metric's figures.
//!
//! The HTTP answer, the verdict log line, the CLI's JSON and the report all use
//! these types, so a verdict reads the same wherever it is seen. The last
//! stage of the pipe: [`log`] keeps every verdict as a JSON line and
//! [`history`] reads them back for people. It uses the request (logged with
//! each verdict) and the plan's query roles, and nothing downstream.

pub mod history;
pub mod log;

use serde::{Deserialize, Serialize};

use crate::plan::Role;

/// The answer to "may this canary go on?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Promote,
    Rollback,
    /// Not enough evidence yet: ask again later.
    Inconclusive,
}

impl Outcome {
    /// The CLI's exit code: 0 promote, 1 rollback, 2 inconclusive.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Promote => 0,
            Outcome::Rollback => 1,
            Outcome::Inconclusive => 2,
        }
    }

    /// The outcome as the word users see.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promote => "promote",
            Outcome::Rollback => "rollback",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// Why a word is not an outcome.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a verdict; use promote, rollback or inconclusive")]
pub struct UnknownOutcome(pub String);

impl std::str::FromStr for Outcome {
    type Err = UnknownOutcome;

    /// The words [`Outcome::as_str`] gives, and nothing else.
    fn from_str(text: &str) -> Result<Outcome, UnknownOutcome> {
        [Outcome::Promote, Outcome::Rollback, Outcome::Inconclusive]
            .into_iter()
            .find(|outcome| outcome.as_str() == text.trim())
            .ok_or_else(|| UnknownOutcome(text.to_string()))
    }
}

/// What one metric concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricOutcome {
    /// Within tolerance.
    Pass,
    /// Worse than tolerated.
    Fail,
    /// Not decided yet.
    Inconclusive,
    /// Too little data to judge.
    Nodata,
    /// The data could not be fetched or read.
    Error,
}

impl MetricOutcome {
    /// The outcome in one word, as the report, `wait` and `log` show it.
    pub fn word(self) -> &'static str {
        match self {
            MetricOutcome::Pass => "pass",
            MetricOutcome::Fail => "fail",
            MetricOutcome::Inconclusive => "undecided",
            MetricOutcome::Nodata => "no data",
            MetricOutcome::Error => "error",
        }
    }

    /// The outcome as a state inside a sentence: "2 metrics are failing".
    pub fn state(self) -> &'static str {
        match self {
            MetricOutcome::Pass => "passing",
            MetricOutcome::Fail => "failing",
            MetricOutcome::Inconclusive => "still undecided",
            MetricOutcome::Nodata => "short of data",
            MetricOutcome::Error => "unreadable",
        }
    }
}

/// Which side a figure or query belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Canary,
    Baseline,
}

/// A query exactly as it was sent to the source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentQuery {
    pub side: Side,
    pub role: Role,
    pub promql: String,
}

/// One side's observed figures for a metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SideFigures {
    /// The observed value: a rate for counts metrics, the median for series,
    /// the value itself for thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Bad events (counts metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad: Option<f64>,
    /// All events (counts metrics) or samples (series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
    /// Latency metrics, both forms: p50, p90 and p99 pooled over the window,
    /// placed inside their bucket by linear interpolation as
    /// `histogram_quantile` places them, each with a time-uniform interval at
    /// bucket edges. Absent when the histogram's series do not share one
    /// bucket layout (the threshold form still judges its bucket then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percentiles: Vec<Percentile>,
}

/// One percentile of a side's latency.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Percentile {
    /// Which: 0.99 for p99.
    pub quantile: f64,
    /// The latency at it, in seconds (the largest finite bucket edge when it
    /// lies in the `+Inf` bucket).
    pub seconds: f64,
    /// Seconds the percentile is at least: a bucket edge, or 0. Holds, with
    /// `upper`, for all three percentiles of this side and at every look
    /// together, with probability at least `confidence`, if the side's
    /// requests are independent draws from one latency law over the window.
    #[serde(default)]
    pub lower: f64,
    /// Seconds the percentile is at most: a bucket edge; absent when it may
    /// lie beyond the largest finite edge (or in log lines written before
    /// intervals existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// The probability with which this side's `lower` and `upper` hold
    /// together (all three percentiles, every look); 0 in log lines written
    /// before intervals existed.
    #[serde(default)]
    pub confidence: f64,
}

/// A number the log wrote as `null`, read back as NaN: JSON has no NaN or
/// infinity, so serde_json writes them as `null`, and a verdict whose ratio is
/// undefined (no bad events on either side) must still read back.
fn number_or_nan<'de, D: serde::Deserializer<'de>>(input: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(input)?.unwrap_or(f64::NAN))
}

/// An estimate of the canary's change against the baseline, with its interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// What `value`, `lower` and `upper` measure: `ratio` (canary / baseline)
    /// for counts metrics, `shift` (canary - baseline) for series.
    pub unit: String,
    #[serde(deserialize_with = "number_or_nan")]
    pub value: f64,
    #[serde(deserialize_with = "number_or_nan")]
    pub lower: f64,
    #[serde(deserialize_with = "number_or_nan")]
    pub upper: f64,
    /// The confidence with which `lower` and `upper` hold together: for
    /// counts metrics at every look, 1 - 2 alpha for a direction of increase
    /// or decrease and 1 - alpha for `either`; for series metrics the
    /// two-sided level of the Mann-Whitney interval at that look.
    pub confidence: f64,
    /// The band of acceptable values of `value`.
    #[serde(deserialize_with = "number_or_nan")]
    pub tolerated_lower: f64,
    #[serde(deserialize_with = "number_or_nan")]
    pub tolerated_upper: f64,
}

/// The evidence figure of a sequential metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Largest e-value against "within tolerance" so far; rollback at `threshold`.
    pub harm: f64,
    /// Largest e-value against "worse than tolerated" so far; promote at `threshold`.
    pub safety: f64,
    pub threshold: f64,
    /// The alpha this metric was given out of the rule set's.
    pub alpha: f64,
    /// Seconds from the canary's start at which the decision was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_after_secs: Option<i64>,
}

/// Everything about one metric of a verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    pub name: String,
    pub kind: String,
    pub group: String,
    pub critical: bool,
    /// A shadow metric is judged and shown but never changes the verdict or
    /// the score; absent (false) in log lines written before it existed.
    #[serde(default)]
    pub shadow: bool,
    pub outcome: MetricOutcome,
    /// One sentence, with the numbers behind it.
    pub reason: String,
    pub canary: SideFigures,
    pub baseline: SideFigures,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    pub queries: Vec<SentQuery>,
    /// What the report charts, kept so a report renders after the source has
    /// dropped the data; absent in log lines written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
}

impl MetricReport {
    /// The metric's name as people read it in lists: `name (shadow)` for a shadow metric.
    pub fn label(&self) -> String {
        if self.shadow {
            format!("{} (shadow)", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// Most points a chart keeps: longer windows merge adjacent steps, so a log
/// line stays small (a day at 15 s steps is 5760 steps, kept as 240 points).
pub const MAX_CHART_POINTS: usize = 240;

/// The data behind a metric's charts in the report, compact enough for every
/// verdict log line. Counts metrics fill the per-point counts and evidence;
/// series metrics fill the quantiles of each side's pooled samples; latency
/// distributions add both sides' pooled bucket counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// Seconds each point covers: the window's step, or a multiple of it when
    /// adjacent steps were merged to keep at most [`MAX_CHART_POINTS`].
    pub step_secs: u64,
    /// Unix seconds at which the first point begins (the window's start).
    pub start_secs: i64,
    /// Bad events on the canary per point; `null` where the source had none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary_bad: Vec<Option<f64>>,
    /// All events on the canary per point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary_total: Vec<Option<f64>>,
    /// Bad events on the baseline per point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_bad: Vec<Option<f64>>,
    /// All events on the baseline per point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_total: Vec<Option<f64>>,
    /// Largest harm e-value within each point (3 significant digits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub harm: Vec<f64>,
    /// Largest safety e-value within each point (3 significant digits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety: Vec<f64>,
    /// The e-value either side must reach to decide (1 / alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The point during which the decision's boundary was first crossed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_step: Option<usize>,
    /// Evenly spaced quantiles (0 to 1) of the canary's pooled samples (series metrics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary_quantiles: Vec<f64>,
    /// Evenly spaced quantiles (0 to 1) of the baseline's pooled samples (series metrics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_quantiles: Vec<f64>,
    /// A latency metric's finite bucket edges in seconds, ascending (either form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bucket_edges_seconds: Vec<f64>,
    /// The canary's requests at or below each of `bucket_edges_seconds`,
    /// pooled over the window, then all its requests (the `+Inf` bucket).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary_buckets: Vec<f64>,
    /// The baseline's requests at or below each edge, then all its requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_buckets: Vec<f64>,
    /// The edge, in seconds, whose share of slower requests the counts above
    /// chart: the one that carries a latency distribution's evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_edge_seconds: Option<f64>,
}

/// The judged window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start: String,
    pub end: String,
    pub start_secs: i64,
    pub end_secs: i64,
    pub step_secs: u64,
}

/// A verdict, as answered and as logged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub verdict: Outcome,
    /// One sentence a person understands, with the numbers behind it.
    pub reason: String,
    pub deployment: String,
    pub rules: String,
    /// SHA-256 of the rule file the verdict used.
    pub rules_hash: String,
    pub canary: String,
    pub baseline: String,
    pub window: Window,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Kayenta-style score in percent: the weighted share of metrics that did not fail.
    pub score: f64,
    pub judged_at: String,
    pub metrics: Vec<MetricReport>,
    /// Where a person reads this verdict's report; set on answers, never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // An estimate whose ratio is undefined is logged with nulls and reads back
    // as NaN, not as an unreadable line.
    #[test]
    fn undefined_estimates_read_back() {
        let estimate = Estimate {
            unit: "ratio".into(),
            value: f64::NAN,
            lower: 0.5,
            upper: f64::INFINITY,
            confidence: 0.99,
            tolerated_lower: 0.0,
            tolerated_upper: 1.2,
        };
        let line = serde_json::to_string(&estimate).expect("serialises");
        assert!(line.contains(r#""value":null"#), "{line}");
        let read: Estimate = serde_json::from_str(&line).expect("reads back");
        assert!(read.value.is_nan() && read.upper.is_nan());
        assert_eq!((read.lower, read.tolerated_upper), (0.5, 1.2));
    }
}
