//! The compiled rule set: what a rule file means, in types that cannot be
//! wrong. Everything downstream of the rules works on these.

use std::path::PathBuf;

use crate::stats::Direction;

/// A compiled rule set, named by its file stem.
#[derive(Clone, Debug)]
pub struct RuleSet {
    /// The file stem, such as `http` for `rules/http.yaml`.
    pub name: String,
    /// What the rule set is for, as its writer put it.
    pub description: Option<String>,
    /// Family-wise false-rollback probability for a healthy canary.
    pub alpha: f64,
    /// What a metric still inconclusive on the final look resolves to.
    pub on_timeout: TimeoutPolicy,
    /// What a metric that never reached its minimum data does to the verdict.
    pub on_nodata: NodataPolicy,
    /// Resolution of the range queries, aligned to the canary's start.
    pub step_secs: u64,
    /// The planned length of the analysis from the canary's start, when the
    /// file gives one. Series metrics with several `looks` are judged only at
    /// the checkpoints that divide it evenly, so asking more often runs no
    /// more tests.
    pub window_secs: Option<u64>,
    /// The metric source (a name in the config file) the rule set is judged
    /// against; `None` for the default source.
    pub source: Option<String>,
    /// Whether the whole rule set runs in shadow (`shadow: true` at the top of
    /// the file): every metric is then shadow, and the verdict is inconclusive.
    pub shadow: bool,
    /// Score thresholds of the weighted verdict.
    pub scoring: Scoring,
    /// Metric groups and their weights; without declared groups, one group per metric.
    pub groups: Vec<Group>,
    /// The metrics, in file order.
    pub metrics: Vec<Metric>,
    /// Names of the `$vars` the rule set's queries use.
    pub vars: Vec<String>,
    /// SHA-256 of the file's bytes, hex.
    pub content_hash: String,
    /// The file the rule set was read from.
    pub path: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
/// What a metric still inconclusive on the final look resolves to.
pub enum TimeoutPolicy {
    /// Let the canary through (the default).
    Promote,
    /// Roll the canary back.
    Rollback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
/// What a metric that never reached its minimum data does to the verdict.
pub enum NodataPolicy {
    /// The verdict stays inconclusive (the default).
    Inconclusive,
    /// Too little data is treated as a failure of the metric.
    Rollback,
    /// The metric is left out of the verdict.
    Ignore,
}

/// Kayenta-style score thresholds, in percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scoring {
    /// A score at or above this passes.
    pub pass: f64,
    /// A score at or above this (and below `pass`) is marginal.
    pub marginal: f64,
}

/// A named set of metrics that counts with one weight in the score.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Name as declared (or the metric's name when groups are implicit).
    pub name: String,
    /// Weight in the score, above 0.
    pub weight: f64,
}

/// One metric of a rule set, compiled.
#[derive(Clone, Debug)]
pub struct Metric {
    /// Unique within the rule set: `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// Index into [`RuleSet::groups`].
    pub group: usize,
    /// A failing critical metric rolls back whatever the score.
    pub critical: bool,
    /// A shadow metric is judged, logged and shown, but never changes the
    /// verdict or the score and takes no share of the alpha; see
    /// [`crate::judge`] for the level it is judged at.
    pub shadow: bool,
    /// What is measured and how it is judged.
    pub kind: MetricKind,
    /// 1-based line of the metric in its file.
    pub line: usize,
}

/// A PromQL expression from a rule file, parsed.
#[derive(Clone, Debug)]
pub struct Query {
    pub expr: promql_parser::parser::Expr,
    /// As the rule writer wrote it.
    pub text: String,
}

impl Query {
    /// Whether the query is a bare selector, so each series it returns is one
    /// process's own counter rather than a combination (a `sum` over pods).
    pub fn reads_raw_series(&self) -> bool {
        let mut expr = &self.expr;
        while let promql_parser::parser::Expr::Paren(paren) = expr {
            expr = &paren.expr;
        }
        matches!(expr, promql_parser::parser::Expr::VectorSelector(_))
    }
}

/// What a counts test needs besides its queries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountsRule {
    /// Which change harms users.
    pub direction: Direction,
    /// Relative change allowed before the canary is worse (0.1 for 10%).
    pub tolerance: f64,
    /// Events each side must have seen before the metric may be judged.
    pub min_requests: f64,
    /// Whether a clearly healthy canary may be promoted before the final look.
    pub early_promotion: bool,
    /// Length of the window of the final-look test, if the rule asks for one:
    /// `judge::counts::FINAL_LOOK_ALPHA_SHARE` (0.9) of the metric's alpha goes
    /// to a single fixed-horizon test on the window's first
    /// `final_test_after_secs`, the rest to the sequential test.
    pub final_test_after_secs: Option<u64>,
}

/// The kinds of metric a rule file can declare.
#[derive(Clone, Debug)]
pub enum MetricKind {
    /// Bad events over all events, from two counters.
    Ratio {
        /// Counter of bad events.
        bad: Query,
        /// Counter of all events.
        total: Query,
        /// How the two proportions are compared.
        rule: CountsRule,
    },
    /// Requests slower than a threshold, from a histogram's buckets.
    Latency {
        /// The histogram's bucket counters, without an `le` matcher.
        histogram: Query,
        /// Requests slower than this count as bad events.
        threshold_seconds: f64,
        /// How the two proportions are compared.
        rule: CountsRule,
    },
    /// A gauge compared as two samples, Kayenta style.
    Series {
        /// The gauge, sampled at each step.
        query: Query,
        /// Which change harms users.
        direction: Direction,
        /// Kayenta's tolerance: the interval must clear this fraction of the estimate.
        tolerance: f64,
        /// Ratio of means (canary / baseline) still acceptable upwards.
        allowed_increase: f64,
        /// Ratio of means still acceptable downwards.
        allowed_decrease: f64,
        /// Ratio of means upwards that fails the metric as critical.
        critical_increase: Option<f64>,
        /// Ratio of means downwards that fails the metric as critical.
        critical_decrease: Option<f64>,
        /// Number of looks the alpha is split over: checkpoints spread evenly
        /// over [`RuleSet::window_secs`]; 1 without a window means the final look only.
        looks: u32,
        /// Samples each side must have before the metric may be judged.
        min_samples: usize,
    },
    /// The canary's value against absolute bounds.
    Threshold {
        /// The canary's expression.
        query: Query,
        /// Lowest acceptable value, if any.
        min: Option<f64>,
        /// Highest acceptable value, if any.
        max: Option<f64>,
    },
}
