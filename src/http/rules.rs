//! The rules endpoints: `GET /v1/rules` shows what is in force and what was
//! refused; `POST /v1/rules/reload` reads the rules folder again.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::http::state::AppState;
use crate::rules::RuleError;
use crate::rules::store::{self, ReloadSummary};
use crate::source::MetricSource;

/// The rules endpoints, to be merged into the server's router.
pub fn routes<S: MetricSource>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/rules", get(list_rules::<S>))
        .route("/v1/rules/reload", post(reload_rules::<S>))
}

/// The answer of `GET /v1/rules`.
#[derive(Debug, Serialize)]
pub struct RulesPage {
    /// The rules folder.
    pub dir: String,
    /// Rule sets in force, by name.
    pub rule_sets: Vec<RuleSetSummary>,
    /// Problems of the files as last read; a failed file's rule set keeps its last good version.
    pub errors: Vec<RuleProblem>,
}

/// One rule set in force.
#[derive(Debug, Serialize)]
pub struct RuleSetSummary {
    /// The rule set's name (its file stem).
    pub name: String,
    /// The file it was read from.
    pub file: String,
    /// SHA-256 of the file's bytes, hex; verdicts record it as `rules_hash`.
    pub content_hash: String,
    /// What the rule set is for, as its writer put it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its metrics, in file order.
    pub metrics: Vec<MetricSummary>,
    /// Names of the `$vars` a request must give.
    pub vars: Vec<String>,
    /// True when the file now fails and this older, last good version is in force.
    pub kept_last_good: bool,
}

/// A metric of a rule set in force.
#[derive(Debug, Serialize)]
pub struct MetricSummary {
    /// The metric's name.
    pub name: String,
    /// `ratio`, `latency`, `series` or `threshold`.
    pub kind: &'static str,
    /// Whether failing it rolls back whatever the score.
    pub critical: bool,
    /// Whether it is judged and shown but never counted in the verdict.
    pub shadow: bool,
}

/// A problem in a rule file.
#[derive(Debug, Serialize)]
pub struct RuleProblem {
    /// The file (or the folder).
    pub file: String,
    /// 1-based line, 0 when the problem has no place in the file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
    /// The whole problem as `file:line:col: message`.
    pub text: String,
}

impl From<&RuleError> for RuleProblem {
    fn from(error: &RuleError) -> RuleProblem {
        RuleProblem {
            file: error.path.display().to_string(),
            line: error.line,
            column: error.column,
            message: error.message.clone(),
            text: error.to_string(),
        }
    }
}

async fn list_rules<S: MetricSource>(State(state): State<Arc<AppState<S>>>) -> Json<RulesPage> {
    let loaded = state.rules.current();
    let kept = store::kept_last_good(&loaded);
    let rule_sets = loaded
        .sets
        .values()
        .map(|set| RuleSetSummary {
            name: set.name.clone(),
            file: set.path.display().to_string(),
            content_hash: set.content_hash.clone(),
            description: set.description.clone(),
            metrics: set
                .metrics
                .iter()
                .map(|metric| MetricSummary {
                    name: metric.name.clone(),
                    kind: crate::judge::kind_name(&metric.kind),
                    critical: metric.critical,
                    shadow: metric.shadow,
                })
                .collect(),
            vars: set.vars.clone(),
            kept_last_good: kept.contains(&set.name),
        })
        .collect();
    Json(RulesPage {
        dir: state.rules.dir().display().to_string(),
        rule_sets,
        errors: loaded.errors.iter().map(RuleProblem::from).collect(),
    })
}

async fn reload_rules<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
) -> Json<ReloadSummary> {
    Json(state.reload().await)
}
