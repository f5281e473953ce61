//! The query plan: each metric's PromQL with the canary's or the baseline's
//! label matchers injected into every vector selector, by editing the parsed
//! AST, never by pasting strings.
//!
//! A request's side selectors and `$vars` are outside input. They only ever
//! become label matcher values in the AST; the parser's Display escapes them
//! when the AST is rendered, and every rendered query is parsed again and
//! compared with the AST it came from before it is handed out.

use std::collections::BTreeMap;

use promql_parser::label::{METRIC_NAME, MatchOp, Matcher};
use promql_parser::parser::token::{T_EQL_REGEX, T_NEQ_REGEX};
use promql_parser::parser::{Expr, VectorSelector};

use crate::rules::vars::{self, Segment};
use crate::rules::{MetricKind, Query, RuleSet, SelectorNode, for_each_selector, reads_back_as};

/// Longest label name a side selector may use, in bytes.
pub const MAX_LABEL_NAME_LEN: usize = 128;
/// Longest label value (side selector or `$var`), in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 1024;
/// Most matchers one side selector may have.
pub const MAX_MATCHERS: usize = 32;
/// Longest side selector text [`SideSelector::parse`] reads, in bytes.
pub const MAX_SELECTOR_TEXT_LEN: usize = 64 * 1024;
/// Most `$vars` one request may give.
pub const MAX_VARS: usize = 32;

/// Label matchers that pick out one side (the canary or the baseline).
#[derive(Clone, Debug, PartialEq)]
pub struct SideSelector {
    /// Matchers appended to every selector of every query of this side.
    pub matchers: Vec<Matcher>,
}

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
    /// A side selector string is not PromQL.
    #[error(
        "side selector `{text}` is not a valid selector: {reason}; write one such as {{track=\"canary\"}}"
    )]
    SelectorSyntax {
        /// The selector as given.
        text: String,
        /// The parser's message.
        reason: String,
    },
    /// A side selector string is an expression other than a bare `{...}` selector.
    #[error(
        "side selector `{text}` must be label matchers in braces only, such as {{track=\"canary\"}}, with no metric name, function, range, offset or @"
    )]
    NotPlainSelector {
        /// The selector as given.
        text: String,
    },
    /// A side selector string uses `or` between matchers.
    #[error("side selector `{text}` uses `or`; a side must be one set of matchers that all apply")]
    SelectorHasOr {
        /// The selector as given.
        text: String,
    },
    /// A side selector string is too long to be a selector.
    #[error("side selector is {len} bytes long; the limit is {MAX_SELECTOR_TEXT_LEN}")]
    SelectorTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A `label=value` list holds something that is not an equality.
    #[error(
        "`{pair}` is not a label=value equality; write pairs such as track=canary,service=checkout, or a selector such as {{track=\"canary\",pod=~\"web-.*\"}} for other matchers"
    )]
    BadPair {
        /// The pair as given.
        pair: String,
    },
    /// A side selector has no matchers.
    #[error("side selector has no matchers; give at least one, such as track=\"canary\"")]
    EmptySelector,
    /// A side selector's matchers all match an absent label, so it would pick every series.
    #[error(
        "side selector matches every series because each matcher also matches an empty label; add one such as track=\"canary\""
    )]
    MatchesEverything,
    /// More matchers than [`MAX_MATCHERS`].
    #[error("side selector has {count} matchers; the limit is {MAX_MATCHERS}")]
    TooManyMatchers {
        /// How many were given.
        count: usize,
    },
    /// A label name that is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error(
        "label name `{name}` is not valid; use letters, digits and `_`, not starting with a digit"
    )]
    BadLabelName {
        /// The name as given.
        name: String,
    },
    /// A label name longer than [`MAX_LABEL_NAME_LEN`].
    #[error(
        "label name starting `{prefix}` is {len} bytes long; the limit is {MAX_LABEL_NAME_LEN}"
    )]
    LabelNameTooLong {
        /// The first characters of the name.
        prefix: String,
        /// Its length in bytes.
        len: usize,
    },
    /// `__name__` or `le` in a side selector.
    #[error(
        "label `{name}` cannot be used in a side selector: the rule file picks the metric (`__name__`) and the judge picks histogram buckets (`le`)"
    )]
    ReservedLabel {
        /// The label name.
        name: String,
    },
    /// A label value longer than [`MAX_LABEL_VALUE_LEN`].
    #[error("the value of `{name}` is {len} bytes long; the limit is {MAX_LABEL_VALUE_LEN}")]
    ValueTooLong {
        /// The label or variable name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A value with a control character other than tab, newline or carriage return.
    #[error("the value of `{name}` contains control character U+{code:04X}; remove it")]
    ControlCharacter {
        /// The label or variable name.
        name: String,
        /// The character's code point.
        code: u32,
    },
    /// A regex matcher whose pattern does not compile.
    #[error("the regex for `{name}` does not compile: {reason}")]
    BadRegex {
        /// The label name.
        name: String,
        /// Why.
        reason: String,
    },
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

impl SideSelector {
    /// Equality matchers from a map of label names to values, such as
    /// `{"track": "canary"}`.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Result<SideSelector, PlanError> {
        let matchers = labels
            .iter()
            .map(|(name, value)| Matcher::new(MatchOp::Equal, name, value))
            .collect();
        SideSelector::from_matchers(matchers)
    }

    /// Parses a side as the API, the CLI and Flagger's metadata all take it:
    /// a selector such as `{track="canary",pod=~"web-.*"}` (the braces may be
    /// left out when values are quoted), or `label=value[,label=value...]`
    /// for plain equalities, as in `track=canary,service=checkout`.
    pub fn parse(text: &str) -> Result<SideSelector, PlanError> {
        if text.len() > MAX_SELECTOR_TEXT_LEN {
            return Err(PlanError::SelectorTooLong { len: text.len() });
        }
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.replace(char::is_whitespace, "") == "{}" {
            return Err(PlanError::EmptySelector);
        }
        // Text with braces anywhere is a selector (and refused below unless it
        // is nothing but one); quoted values without braces are its inside.
        match (trimmed.contains('{'), trimmed.contains('"')) {
            (true, _) => SideSelector::parse_braced(text),
            (false, true) => SideSelector::parse_braced(&format!("{{{trimmed}}}")),
            (false, false) => SideSelector::parse_pairs(trimmed),
        }
    }

    /// `label=value,label=value`: equalities with unquoted values.
    fn parse_pairs(text: &str) -> Result<SideSelector, PlanError> {
        let mut labels = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad_pair = || PlanError::BadPair {
                pair: pair.to_string(),
            };
            let (name, value) = pair.split_once('=').ok_or_else(bad_pair)?;
            // `pod=~web-.*` and `track!=canary` are not equalities: they need the selector form.
            if name.ends_with('!') || value.starts_with('~') {
                return Err(bad_pair());
            }
            labels.insert(name.trim().to_string(), value.trim().to_string());
        }
        SideSelector::from_map(&labels)
    }

    /// A `{...}` selector.
    fn parse_braced(text: &str) -> Result<SideSelector, PlanError> {
        let expr = crate::rules::parse_promql(text).map_err(|reason| {
            if reason.contains("at least one non-empty matcher") {
                PlanError::MatchesEverything
            } else {
                PlanError::SelectorSyntax {
                    text: text.to_string(),
                    reason,
                }
            }
        })?;
        let not_plain = || PlanError::NotPlainSelector {
            text: text.to_string(),
        };
        let Expr::VectorSelector(selector) = expr else {
            return Err(not_plain());
        };
        let VectorSelector {
            name,
            matchers,
            offset,
            at,
        } = selector;
        if name.is_some() || offset.is_some() || at.is_some() {
            return Err(not_plain());
        }
        if !matchers.or_matchers.is_empty() {
            return Err(PlanError::SelectorHasOr {
                text: text.to_string(),
            });
        }
        SideSelector::from_matchers(matchers.matchers)
    }

    /// Checks matchers built by either constructor.
    fn from_matchers(matchers: Vec<Matcher>) -> Result<SideSelector, PlanError> {
        if matchers.is_empty() {
            return Err(PlanError::EmptySelector);
        }
        if matchers.len() > MAX_MATCHERS {
            return Err(PlanError::TooManyMatchers {
                count: matchers.len(),
            });
        }
        for matcher in &matchers {
            check_label_name(&matcher.name)?;
            check_value(&matcher.name, &matcher.value)?;
        }
        if matchers.iter().all(|m| m.is_match("")) {
            return Err(PlanError::MatchesEverything);
        }
        Ok(SideSelector { matchers })
    }

    /// The matchers in a canonical order, for comparing two sides.
    fn canonical(&self) -> Vec<(String, String, String)> {
        let mut keys: Vec<_> = self
            .matchers
            .iter()
            .map(|m| (m.name.clone(), m.op.to_string(), m.value.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

fn check_label_name(name: &str) -> Result<(), PlanError> {
    if name.len() > MAX_LABEL_NAME_LEN {
        return Err(PlanError::LabelNameTooLong {
            prefix: name.chars().take(32).collect(),
            len: name.len(),
        });
    }
    if name == METRIC_NAME || name == "le" {
        return Err(PlanError::ReservedLabel {
            name: name.to_string(),
        });
    }
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(PlanError::BadLabelName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Bounds a value from outside (a side matcher value or a `$var`).
fn check_value(name: &str, value: &str) -> Result<(), PlanError> {
    if value.len() > MAX_LABEL_VALUE_LEN {
        return Err(PlanError::ValueTooLong {
            name: name.to_string(),
            len: value.len(),
        });
    }
    // Tab, newline and carriage return have PromQL escapes; other control
    // characters would travel raw inside the string literal.
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(PlanError::ControlCharacter {
            name: name.to_string(),
            code: u32::from(c),
        });
    }
    Ok(())
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
                MetricKind::Latency { histogram, .. } => vec![(Role::Histogram, histogram)],
                MetricKind::Series { query, .. } => vec![(Role::Series, query)],
                MetricKind::Threshold { query, .. } => vec![(Role::Value, query)],
            };
            let side_queries = |side: &SideSelector| {
                queries
                    .iter()
                    .map(|(role, query)| {
                        Ok(PlannedQuery {
                            role: *role,
                            promql: render(&metric.name, query, side, vars)?,
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
        check_value(name, value)?;
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

/// One query for one side: vars substituted, side matchers appended to every
/// selector, rendered, and checked to read back as the same AST.
fn render(
    metric: &str,
    query: &Query,
    side: &SideSelector,
    vars: &BTreeMap<String, String>,
) -> Result<String, PlanError> {
    let mut expr = query.expr.clone();
    inject(&mut expr, side, vars).map_err(|reason| PlanError::UnplannableQuery {
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
/// then the side's matchers are appended to every selector (to each `or`
/// group when the selector has them).
fn inject(
    expr: &mut Expr,
    side: &SideSelector,
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
            matchers.matchers.extend(side.matchers.iter().cloned());
        } else {
            // Display prints only the `or` groups when there are any, so plain
            // matchers must not be left beside them: fold them into each group.
            let shared = std::mem::take(&mut matchers.matchers);
            for group in &mut matchers.or_matchers {
                group.extend(shared.iter().cloned());
                group.extend(side.matchers.iter().cloned());
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

    fn side(text: &str) -> SideSelector {
        SideSelector::parse(text).expect("test selector parses")
    }

    // A side reads the same from `label=value` pairs, a braced selector and a
    // selector without braces; pairs that are not equalities say to use a selector.
    #[test]
    fn side_forms_agree() {
        let braced = side(r#"{service="checkout",track="canary"}"#);
        assert_eq!(side("track=canary, service=checkout"), braced);
        assert_eq!(side(r#"service="checkout",track="canary""#), braced);
        assert_eq!(
            side(r#"pod=~"web-.*""#),
            side(r#"{pod=~"web-.*"}"#),
            "quoted values without braces are a selector"
        );
        for bad in ["track", "pod=~web-.*", "track!=baseline"] {
            let error = SideSelector::parse(bad).expect_err(bad).to_string();
            assert!(
                error.contains("not a label=value equality"),
                "{bad}: {error}"
            );
        }
        assert!(matches!(
            SideSelector::parse(" , "),
            Err(PlanError::EmptySelector)
        ));
        // Regression (fuzz crash-1a84bfca): a huge range duration panicked in the parser.
        let huge = format!("E[{}]M\x0c^{{}}[]", "5".repeat(60));
        assert!(matches!(
            SideSelector::parse(&huge),
            Err(PlanError::SelectorSyntax { .. })
        ));
    }

    // Pins that each `or` group of a selector gets the side's matchers, so no
    // group can select series of the other side.
    #[test]
    fn injects_into_every_or_group() {
        let mut expr = promql_parser::parser::parse(r#"x{a="1" or b="2"}"#).expect("parses");
        inject(&mut expr, &side(r#"{track="canary"}"#), &BTreeMap::new()).expect("injects");
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
        inject(&mut expr, &side(r#"{track="canary"}"#), &BTreeMap::new()).expect("injects");
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
        let err = inject(&mut expr, &side(r#"{track="canary"}"#), &BTreeMap::new()).unwrap_err();
        assert!(err.contains("extension node"), "{err}");
    }
}
