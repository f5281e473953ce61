//! The query plan: each metric's PromQL with the canary's or the baseline's
//! label matchers injected into every vector selector, by editing the parsed
//! AST, never by pasting strings.
//!
//! The third stage of the pipe: it uses the request's sides and the compiled
//! rules, and nothing downstream.
//!
//! A request's side selectors and `$vars` are outside input. They only ever
//! become label matcher values in the AST; the parser's Display escapes them
//! when the AST is rendered, and every rendered query is parsed again and
//! compared with the AST it came from before it is handed out.

use std::collections::BTreeMap;

use promql_parser::label::{METRIC_NAME, MatchOp, Matcher};
use promql_parser::parser::Expr;
use promql_parser::parser::token::{T_EQL_REGEX, T_NEQ_REGEX};

use crate::request::selector::{self, SelectorError};
// Kept at its old path for one release; it lives in `request::selector`.
pub use crate::request::selector::SideSelector;
use crate::rules::vars::{self, Segment};
use crate::rules::{MetricKind, Query, RuleSet, SelectorNode, for_each_selector, reads_back_as};

/// Most `$vars` one request may give.
pub const MAX_VARS: usize = 32;

/// What a planned query measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Counter of bad events of a ratio metric.
    Bad,
    /// Counter of all events of a ratio metric.
    Total,
    /// Bucket counters of a latency metric's histogram; the judge picks the
    /// `le` buckets it needs and `+Inf` from the answer.
    Histogram,
    /// A series metric's gauge.
    Series,
    /// A threshold metric's value (canary only).
    Value,
}

/// One query, ready to send.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PlannedQuery {
    /// What the query measures.
    pub role: Role,
    /// The PromQL text, rendered from the AST.
    pub promql: String,
}

/// The queries of one metric, per side. Threshold metrics have no baseline queries.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPlan {
    /// Queries for the canary.
    pub canary: Vec<PlannedQuery>,
    /// Queries for the baseline, in the same order and roles.
    pub baseline: Vec<PlannedQuery>,
}

/// The queries of a whole rule set, in the order of its metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// One entry per metric of the rule set, in the same order.
    pub metrics: Vec<MetricPlan>,
}

/// Why a plan could not be made from a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// A `$var`'s value that could not be a label value.
    #[error(transparent)]
    Value(#[from] SelectorError),
    /// Canary and baseline pick the same series.
    #[error(
        "the canary and baseline selectors are the same, so the canary would be compared with itself; give each side its own matchers"
    )]
    SameSides,
    /// More `$vars` than [`MAX_VARS`].
    #[error("the request gives {count} vars; the limit is {MAX_VARS}")]
    TooManyVars {
        /// How many were given.
        count: usize,
    },
    /// The rule set uses vars the request does not give.
    #[error("rule set `{rule_set}` needs vars the request does not give: {}; it uses: {}", .missing.join(", "), .uses.join(", "))]
    MissingVars {
        /// The rule set's name.
        rule_set: String,
        /// Vars used but not given.
        missing: Vec<String>,
        /// Every var the rule set uses.
        uses: Vec<String>,
    },
    /// The request gives vars the rule set does not use.
    #[error("rule set `{rule_set}` does not use vars {}; it uses: {}", .unknown.join(", "), if .uses.is_empty() { "none".to_string() } else { .uses.join(", ") })]
    UnknownVars {
        /// The rule set's name.
        rule_set: String,
        /// Vars given but not used.
        unknown: Vec<String>,
        /// Every var the rule set uses.
        uses: Vec<String>,
    },
    /// A var name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error(
        "var name `{name}` is not valid; use letters, digits and `_`, not starting with a digit"
    )]
    BadVarName {
        /// The name as given.
        name: String,
    },
    /// A query that holds a node the planner cannot inject matchers into,
    /// or whose `$var` template cannot be read (a rule set not from [`crate::rules`]).
    #[error("metric `{metric}`: {reason}")]
    UnplannableQuery {
        /// The metric's name.
        metric: String,
        /// What is wrong.
        reason: String,
    },
    /// A rendered query did not parse back to the AST it was rendered from.
    /// This is a canary-gate bug; the query is withheld rather than sent.
    #[error(
        "metric `{metric}`: the query rendered as `{promql}` does not read back as planned, so it was not sent (a canary-gate bug; please report it)"
    )]
    RenderMismatch {
        /// The metric's name.
        metric: String,
        /// The text that failed the check.
        promql: String,
    },
}

/// Builds every metric's queries for both sides.
pub fn plan(
    rules: &RuleSet,
    canary: &SideSelector,
    baseline: &SideSelector,
    vars: &BTreeMap<String, String>,
) -> Result<Plan, PlanError> {
    check_vars(rules, vars)?;
    if canary.canonical() == baseline.canonical() {
        return Err(PlanError::SameSides);
    }
    let metrics = rules
        .metrics
        .iter()
        .map(|metric| {
            let queries: Vec<(Role, &Query)> = match &metric.kind {
                MetricKind::Ratio { bad, total, .. } => {
                    vec![(Role::Bad, bad), (Role::Total, total)]
                }
                // Both latency forms read every bucket (no `le` matcher): the
                // threshold form measures two of them, and quotes percentiles
                // from all of them.
                MetricKind::Latency { histogram, .. }
                | MetricKind::Distribution { histogram, .. } => {
                    vec![(Role::Histogram, histogram)]
                }
                MetricKind::Series { query, .. } => vec![(Role::Series, query)],
                MetricKind::Threshold { query, .. } => vec![(Role::Value, query)],
            };
            let side_queries = |side: &SideSelector| {
                queries
                    .iter()
                    .map(|(role, query)| {
                        Ok(PlannedQuery {
                            role: *role,
                            promql: render(&metric.name, query, &side.matchers, vars)?,
                        })
                    })
                    .collect::<Result<Vec<_>, PlanError>>()
            };
            let baseline_queries = match metric.kind {
                MetricKind::Threshold { .. } => Vec::new(),
                _ => side_queries(baseline)?,
            };
            Ok(MetricPlan {
                canary: side_queries(canary)?,
                baseline: baseline_queries,
            })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    Ok(Plan { metrics })
}

fn check_vars(rules: &RuleSet, vars: &BTreeMap<String, String>) -> Result<(), PlanError> {
    if vars.len() > MAX_VARS {
        return Err(PlanError::TooManyVars { count: vars.len() });
    }
    for (name, value) in vars {
        if !vars::is_var_name(name) {
            return Err(PlanError::BadVarName { name: name.clone() });
        }
        selector::check_value(name, value)?;
    }
    let missing: Vec<String> = rules
        .vars
        .iter()
        .filter(|name| !vars.contains_key(*name))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(PlanError::MissingVars {
            rule_set: rules.name.clone(),
            missing,
            uses: rules.vars.clone(),
        });
    }
    let unknown: Vec<String> = vars
        .keys()
        .filter(|name| !rules.vars.contains(name))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(PlanError::UnknownVars {
            rule_set: rules.name.clone(),
            unknown,
            uses: rules.vars.clone(),
        });
    }
    Ok(())
}

/// One query for one side: vars substituted, the side's `matchers` appended
/// to every selector, rendered, and checked to read back as the same AST.
fn render(
    metric: &str,
    query: &Query,
    matchers: &[Matcher],
    vars: &BTreeMap<String, String>,
) -> Result<String, PlanError> {
    let mut expr = query.expr.clone();
    inject(&mut expr, matchers, vars).map_err(|reason| PlanError::UnplannableQuery {
        metric: metric.to_string(),
        reason,
    })?;
    let promql = expr.to_string();
    if !reads_back_as(&promql, &expr) {
        return Err(PlanError::RenderMismatch {
            metric: metric.to_string(),
            promql,
        });
    }
    Ok(promql)
}

/// Edits `expr` in place: `$vars` in every label matcher value are replaced,
/// then `side` (the side's matchers) is appended to every selector (to each
/// `or` group when the selector has them).
fn inject(
    expr: &mut Expr,
    side: &[Matcher],
    vars: &BTreeMap<String, String>,
) -> Result<(), String> {
    for_each_selector(expr, &mut |node| {
        let SelectorNode::Selector(selector) = node else {
            return Err(
                "the query holds an extension node, which cannot carry label matchers".to_string(),
            );
        };
        let matchers = &mut selector.matchers;
        for matcher in matchers
            .matchers
            .iter_mut()
            .chain(matchers.or_matchers.iter_mut().flatten())
        {
            substitute(matcher, vars)?;
        }
        if matchers.or_matchers.is_empty() {
            matchers.matchers.extend(side.iter().cloned());
        } else {
            // Display prints only the `or` groups when there are any, so plain
            // matchers must not be left beside them: fold them into each group.
            let shared = std::mem::take(&mut matchers.matchers);
            for group in &mut matchers.or_matchers {
                group.extend(shared.iter().cloned());
                group.extend(side.iter().cloned());
            }
        }
        Ok(())
    })
}

/// Replaces the `$vars` of one matcher's value. In regex matchers the
/// substituted text is regex-escaped, so it matches itself literally.
fn substitute(matcher: &mut Matcher, vars: &BTreeMap<String, String>) -> Result<(), String> {
    if matcher.name == METRIC_NAME {
        return Ok(());
    }
    let segments =
        vars::parse(&matcher.value).map_err(|e| format!("label `{}`: {e}", matcher.name))?;
    if !segments.iter().any(|s| matches!(s, Segment::Var(_))) {
        return Ok(());
    }
    let is_regex = matches!(matcher.op, MatchOp::Re(_) | MatchOp::NotRe(_));
    let mut value = String::new();
    for segment in segments {
        match segment {
            Segment::Literal(text) => value.push_str(text),
            Segment::Var(name) => {
                let given = vars
                    .get(name)
                    .ok_or_else(|| format!("var `{name}` has no value"))?;
                if is_regex {
                    value.push_str(&vars::quote_meta(given));
                } else {
                    value.push_str(given);
                }
            }
        }
    }
    *matcher = match matcher.op {
        MatchOp::Equal => Matcher::new(MatchOp::Equal, &matcher.name, &value),
        MatchOp::NotEqual => Matcher::new(MatchOp::NotEqual, &matcher.name, &value),
        MatchOp::Re(_) => Matcher::new_matcher(T_EQL_REGEX, matcher.name.clone(), value)?,
        MatchOp::NotRe(_) => Matcher::new_matcher(T_NEQ_REGEX, matcher.name.clone(), value)?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canary's side of every test below.
    fn canary() -> SideSelector {
        SideSelector::from_map(&BTreeMap::from([("track".into(), "canary".into())]))
            .expect("a valid side")
    }

    // Pins that each `or` group of a selector gets the side's matchers, so no
    // group can select series of the other side.
    #[test]
    fn injects_into_every_or_group() {
        let mut expr = promql_parser::parser::parse(r#"x{a="1" or b="2"}"#).expect("parses");
        inject(&mut expr, &canary().matchers, &BTreeMap::new()).expect("injects");
        assert_eq!(
            expr.to_string(),
            r#"x{a="1", track="canary" or b="2", track="canary"}"#
        );
    }

    // Pins that plain matchers beside `or` groups (which Display would drop)
    // are folded into every group rather than lost.
    #[test]
    fn folds_plain_matchers_into_or_groups() {
        let mut expr = promql_parser::parser::parse(r#"x{a="1" or b="2"}"#).expect("parses");
        if let Expr::VectorSelector(selector) = &mut expr {
            selector
                .matchers
                .matchers
                .push(Matcher::new(MatchOp::Equal, "c", "3"));
        }
        inject(&mut expr, &canary().matchers, &BTreeMap::new()).expect("injects");
        assert_eq!(
            expr.to_string(),
            r#"x{a="1", c="3", track="canary" or b="2", c="3", track="canary"}"#
        );
    }

    // Pins that an extension node, which cannot carry matchers, stops the plan.
    #[test]
    fn refuses_nodes_without_selectors_to_inject_into() {
        #[derive(Debug)]
        struct Opaque;
        impl promql_parser::parser::ast::ExtensionExpr for Opaque {
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
            fn name(&self) -> &str {
                "opaque"
            }
            fn value_type(&self) -> promql_parser::parser::value::ValueType {
                promql_parser::parser::value::ValueType::Vector
            }
            fn children(&self) -> &[Expr] {
                &[]
            }
            fn with_new_children(
                &self,
                _children: Vec<Expr>,
            ) -> std::sync::Arc<dyn promql_parser::parser::ast::ExtensionExpr> {
                std::sync::Arc::new(Opaque)
            }
        }
        let mut expr = Expr::Extension(promql_parser::parser::ast::Extension {
            expr: std::sync::Arc::new(Opaque),
        });
        let err = inject(&mut expr, &canary().matchers, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("extension node"), "{err}");
    }
}
