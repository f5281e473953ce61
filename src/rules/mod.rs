//! Rule files: what a team writes in `rules/*.yaml`, turned once into a
//! validated [`RuleSet`] that cannot be wrong.
//!
//! Loading goes in two stages: `raw` holds what serde read from the YAML,
//! with the line and column of every value, and `compile` turns that into
//! the types of [`model`], reporting every problem of a file as a
//! [`RuleError`] that names file, line and column; [`load`] reads files and
//! folders, and [`store`] keeps the rule sets in force and reloads them. The
//! format is described in `docs/rules.md`.
//!
//! The second stage of the pipe: it may use [`crate::stats`] (for the
//! direction a metric is judged in) and nothing downstream.

mod compile;
pub(crate) mod error;
pub mod load;
pub mod model;
mod query;
mod raw;
pub mod store;
mod tolerance;
pub(crate) mod vars;

pub use compile::{
    DEFAULT_ALPHA, DEFAULT_MARGINAL_PERCENT, DEFAULT_MIN_REQUESTS, DEFAULT_MIN_SAMPLES,
    DEFAULT_PASS_PERCENT, DEFAULT_SERIES_TOLERANCE, DEFAULT_STEP_SECS, MAX_ALPHA, MAX_LOOKS,
    MAX_METRICS, MAX_STEP_SECS, MAX_WINDOW_SECS,
};
pub use error::RuleError;
pub use load::{LoadedRules, MAX_RULE_FILE_BYTES, load_dir, load_file, load_named, load_str};
pub use model::{
    CountsRule, Group, Metric, MetricKind, NodataPolicy, Query, RuleSet, Scoring, TimeoutPolicy,
};
pub(crate) use query::{SelectorNode, for_each_selector, parse_promql, reads_back_as};
pub use store::{ReloadSummary, RulesStore};
