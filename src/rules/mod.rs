//! Rule files: what a team writes in `rules/*.yaml`, turned once into a
//! validated [`RuleSet`] that cannot be wrong.
//!
//! Loading goes in two stages: `raw` holds what serde read from the YAML,
//! with the line and column of every value, and `compile` turns that into
//! the types below, reporting every problem of a file as a [`RuleError`]
//! that names file, line and column. The format is described in
//! `docs/rules.md`.

mod compile;
mod error;
mod query;
mod raw;
mod tolerance;
pub(crate) mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::stats::Direction;

pub use compile::{
    DEFAULT_ALPHA, DEFAULT_MARGINAL_PERCENT, DEFAULT_MIN_REQUESTS, DEFAULT_MIN_SAMPLES,
    DEFAULT_PASS_PERCENT, DEFAULT_SERIES_TOLERANCE, DEFAULT_STEP_SECS, MAX_ALPHA, MAX_LOOKS,
    MAX_METRICS, MAX_STEP_SECS,
};
pub use error::RuleError;
pub(crate) use query::{SelectorNode, for_each_selector, parse_promql, reads_back_as};

/// The largest rule file read, in bytes; a rule set is a page of YAML.
pub const MAX_RULE_FILE_BYTES: u64 = 1024 * 1024;

/// Every rule set of a directory, and the problems of the files that failed.
#[derive(Clone, Debug, Default)]
pub struct LoadedRules {
    /// Rule sets by name (file stem). A file with any problem is absent.
    pub sets: BTreeMap<String, Arc<RuleSet>>,
    /// Problems of all files, in file order.
    pub errors: Vec<RuleError>,
}

impl LoadedRules {
    /// Why `name` cannot be used: no such rule set (with the closest loaded
    /// name, when one is close), and the names that are loaded.
    pub fn missing(&self, name: &str) -> String {
        let names: Vec<&str> = self.sets.keys().map(String::as_str).collect();
        let loaded = match names.is_empty() {
            true => "none (see the rule file errors)".to_string(),
            false => names.join(", "),
        };
        format!(
            "there is no rule set `{name}`;{} loaded rule sets: {loaded}",
            compile::did_you_mean(name, &names)
        )
    }
}

/// Reads and compiles one rule file; the rule set is named by the file stem.
pub fn load_file(path: &Path) -> Result<RuleSet, Vec<RuleError>> {
    let too_big = std::fs::metadata(path)
        .map(|meta| meta.len() > MAX_RULE_FILE_BYTES)
        .unwrap_or(false);
    if too_big {
        return Err(vec![RuleError::whole(
            path,
            format!(
                "the file is larger than {MAX_RULE_FILE_BYTES} bytes; a rule file should be a page of YAML"
            ),
        )]);
    }
    let bytes = std::fs::read(path).map_err(|e| {
        vec![RuleError::whole(
            path,
            format!("cannot read the rule file: {e}"),
        )]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        vec![RuleError::whole(
            path,
            format!(
                "the file is not UTF-8 text (bad byte at offset {}); save it as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )]
    })?;
    load_str(path, &text)
}

/// Compiles rule-file text as if read from `path` (which names the rule set
/// and appears in errors). [`load_file`] is this plus reading the file.
pub fn load_str(path: &Path, text: &str) -> Result<RuleSet, Vec<RuleError>> {
    compile::compile_text(path, text)
}

/// Loads every `*.yaml` and `*.yml` file of `dir`, in name order.
///
/// A missing or unreadable directory is one error entry. Two files with the
/// same stem (`http.yaml` and `http.yml`) are an error for the second one.
pub fn load_dir(dir: &Path) -> LoadedRules {
    let mut loaded = LoadedRules::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            loaded.errors.push(RuleError::whole(
                dir,
                format!("cannot read the rules directory: {e}"),
            ));
            return loaded;
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(e) => loaded.errors.push(RuleError::whole(
                dir,
                format!("cannot list the rules directory: {e}"),
            )),
        }
    }
    paths.retain(|path| {
        path.is_file()
            && path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
    });
    paths.sort();
    for path in paths {
        match load_file(&path) {
            Ok(set) => {
                if loaded.sets.contains_key(&set.name) {
                    loaded.errors.push(RuleError::whole(
                        &path,
                        format!(
                            "another file already defines rule set `{}`; keep one of them",
                            set.name
                        ),
                    ));
                } else {
                    loaded.sets.insert(set.name.clone(), Arc::new(set));
                }
            }
            Err(errors) => loaded.errors.extend(errors),
        }
    }
    loaded
}

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
    /// half the metric's alpha goes to a single fixed-horizon test on the
    /// window's first `final_test_after_secs`, half to the sequential test.
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
        /// Number of looks the alpha is split over; 1 means the final look only.
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
