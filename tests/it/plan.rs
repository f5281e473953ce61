//! The query plan: side matchers injected into every selector, `$vars`
//! substituted as values, and hostile values unable to change a query.

use std::collections::BTreeMap;
use std::path::Path;

use canary_gate::plan::{self, PlanError, Role};
use canary_gate::request::{SelectorError, SideSelector};
use canary_gate::rules::{self, RuleSet};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};

/// Compiles rule-file text named `t.yaml`.
fn rule_set(text: &str) -> RuleSet {
    rules::load_str(Path::new("t.yaml"), text).expect("test rule set compiles")
}

/// A rule set with one series metric on `query`.
fn series(query: &str) -> RuleSet {
    rule_set(&format!(
        "metrics:\n  - name: m\n    kind: series\n    query: '{}'\n    direction: increase\n",
        query.replace('\'', "''")
    ))
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn side(pairs: &[(&str, &str)]) -> SideSelector {
    SideSelector::from_map(&vars(pairs)).expect("test side selector is valid")
}

fn canary() -> SideSelector {
    side(&[("track", "canary")])
}

fn baseline() -> SideSelector {
    side(&[("track", "baseline")])
}

/// Every vector selector of `expr` (including inside matrix selectors).
pub fn selectors(expr: &Expr) -> Vec<VectorSelector> {
    let mut out = Vec::new();
    collect(expr, &mut out);
    out
}

fn collect(expr: &Expr, out: &mut Vec<VectorSelector>) {
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect(p, out);
            }
            collect(&a.expr, out);
        }
        Expr::Unary(u) => collect(&u.expr, out),
        Expr::Binary(b) => {
            collect(&b.lhs, out);
            collect(&b.rhs, out);
        }
        Expr::Paren(p) => collect(&p.expr, out),
        Expr::Subquery(s) => collect(&s.expr, out),
        Expr::VectorSelector(v) => out.push(v.clone()),
        Expr::MatrixSelector(m) => out.push(m.vs.clone()),
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// `(name, op, value)` of each matcher, sorted, for comparing as sets.
pub fn matcher_set(matchers: &[Matcher]) -> Vec<(String, String, String)> {
    let mut set: Vec<_> = matchers
        .iter()
        .map(|m| (m.name.clone(), m.op.to_string(), m.value.clone()))
        .collect();
    set.sort();
    set
}

fn eq(name: &str, value: &str) -> (String, String, String) {
    (name.to_string(), "=".to_string(), value.to_string())
}

fn re(name: &str, value: &str) -> (String, String, String) {
    (name.to_string(), "=~".to_string(), value.to_string())
}

/// Label and var values built to break out of a PromQL string or selector.
pub const HOSTILE: &[&str] = &[
    r#"x"} or vector(1) or {a=""#,
    r#"x\"} or vector(1) or {a=\""#,
    r"back\slash\\",
    "line\nbreak\r\ttab",
    "ünïcødé 😀 ∑",
    "}{",
    "{",
    "}",
    "$service ${service} $",
    "`'\"",
    ".*",
    "",
];

// Pins the security property: a hostile side value or var value renders to
// PromQL that parses back to one selector whose matchers carry exactly the
// intended values, and a var inside a regex matcher matches itself literally.
#[test]
fn hostile_values_stay_label_values() {
    let set = series(r#"x{service="$service", pod=~"$service|web-.*"}"#);
    for hostile in HOSTILE {
        let canary_side = side(&[("track", hostile), ("lane", "blue")]);
        let plan = plan::plan(
            &set,
            &canary_side,
            &baseline(),
            &vars(&[("service", hostile)]),
        )
        .unwrap_or_else(|e| panic!("{hostile:?}: {e}"));
        let promql = &plan.metrics[0].canary[0].promql;
        let reread = promql_parser::parser::parse(promql)
            .unwrap_or_else(|e| panic!("{hostile:?} rendered unparseable {promql}: {e}"));
        let found = selectors(&reread);
        assert_eq!(found.len(), 1, "{hostile:?} added a selector: {promql}");
        assert!(matches!(reread, Expr::VectorSelector(_)), "{promql}");
        let selector = &found[0];
        assert_eq!(selector.name.as_deref(), Some("x"));
        assert!(selector.matchers.or_matchers.is_empty(), "{promql}");
        let quoted = format!("{}|web-.*", regex_quote(hostile));
        assert_eq!(
            matcher_set(&selector.matchers.matchers),
            {
                let mut want = vec![
                    eq("service", hostile),
                    re("pod", &quoted),
                    eq("track", hostile),
                    eq("lane", "blue"),
                ];
                want.sort();
                want
            },
            "{hostile:?} -> {promql}"
        );
        let pod = selector
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "pod")
            .expect("pod matcher kept");
        assert!(pod.is_match(hostile), "{hostile:?} does not match itself");
    }
}

/// What the plan should make of a var in a regex: every RE2 metacharacter escaped.
fn regex_quote(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let meta = r"\.+*?()|[]{}^$".contains(c);
            meta.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

// Pins the exact PromQL sent for a value that tries to close the selector
// and add `or vector(1)`: it stays inside one escaped string literal.
#[test]
fn hostile_value_renders_escaped() {
    let set = series(r#"http_requests_total{service="$service"}"#);
    let hostile_side = side(&[("track", r#"x"} or vector(1) or {a=""#)]);
    let plan = plan::plan(
        &set,
        &hostile_side,
        &baseline(),
        &vars(&[("service", "a\\b\n")]),
    )
    .expect("plans");
    assert_eq!(
        plan.metrics[0].canary[0].promql,
        r#"http_requests_total{service="a\\b\n",track="x\"} or vector(1) or {a=\""}"#
    );
}

// Pins that matchers reach every selector: in functions, matrix selectors
// with offset, aggregations and their parameters, subqueries, @, and both
// sides of binary operators with vector matching.
#[test]
fn injects_into_every_selector() {
    let set = series(concat!(
        r#"sum by (pod) (rate(a{service="$service"}[5m] offset 1m))"#,
        " / on (pod) group_left ",
        "max_over_time(rate(b[1m])[30m:1m])",
        " + topk(scalar(c), d @ start())",
        r#" + label_replace(e, "x", "$1", "y", "(.*)")"#,
    ));
    let plan =
        plan::plan(&set, &canary(), &baseline(), &vars(&[("service", "web")])).expect("plans");
    assert_eq!(
        plan.metrics[0].baseline[0].promql,
        concat!(
            r#"sum by (pod) (rate(a{service="web",track="baseline"}[5m] offset 1m))"#,
            r#" / on (pod) group_left () max_over_time(rate(b{track="baseline"}[1m])[30m:1m])"#,
            r#" + topk(scalar(c{track="baseline"}), d{track="baseline"} @ start())"#,
            r#" + label_replace(e{track="baseline"}, "x", "$1", "y", "(.*)")"#,
        )
    );
    let reread = promql_parser::parser::parse(&plan.metrics[0].canary[0].promql).expect("parses");
    let found = selectors(&reread);
    assert_eq!(found.len(), 5);
    for selector in found {
        assert!(
            selector
                .matchers
                .matchers
                .contains(&Matcher::new(MatchOp::Equal, "track", "canary")),
            "{selector}"
        );
    }
}

// Pins the roles per kind, and that a threshold metric has no baseline query.
#[test]
fn roles_per_kind() {
    let set = rule_set(
        r#"
metrics:
  - name: errors
    kind: ratio
    bad: 'x{code=~"5.."}'
    total: x
    direction: increase
    tolerance: 10%
  - name: slow
    kind: latency
    histogram: h_bucket
    threshold_seconds: 0.5
    direction: increase
    tolerance: 10%
  - name: cpu
    kind: series
    query: rate(cpu[1m])
    direction: either
  - name: p99
    kind: threshold
    query: histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))
    max: 0.8
"#,
    );
    let plan = plan::plan(&set, &canary(), &baseline(), &BTreeMap::new()).expect("plans");
    let roles = |queries: &[plan::PlannedQuery]| queries.iter().map(|q| q.role).collect::<Vec<_>>();
    assert_eq!(roles(&plan.metrics[0].canary), [Role::Bad, Role::Total]);
    assert_eq!(roles(&plan.metrics[0].baseline), [Role::Bad, Role::Total]);
    assert_eq!(roles(&plan.metrics[1].canary), [Role::Histogram]);
    // The threshold form asks for every bucket: it measures two, and quotes
    // percentiles from all of them.
    assert_eq!(
        plan.metrics[1].canary[0].promql,
        r#"h_bucket{track="canary"}"#
    );
    assert_eq!(roles(&plan.metrics[2].baseline), [Role::Series]);
    assert_eq!(roles(&plan.metrics[3].canary), [Role::Value]);
    assert!(plan.metrics[3].baseline.is_empty());
    assert_eq!(
        plan.metrics[3].canary[0].promql,
        r#"histogram_quantile(0.99, sum by (le) (rate(h_bucket{track="canary"}[5m])))"#
    );
}

// Pins that a var in a regex matcher is escaped and in `${}` form works too.
#[test]
fn regex_vars_match_literally() {
    let set = series(r#"x{service=~"${service}|other", name!~"$service-.*"}"#);
    let plan =
        plan::plan(&set, &canary(), &baseline(), &vars(&[("service", "a.b")])).expect("plans");
    assert_eq!(
        plan.metrics[0].canary[0].promql,
        r#"x{name!~"a\\.b-.*",service=~"a\\.b|other",track="canary"}"#
    );
    let reread = promql_parser::parser::parse(&plan.metrics[0].canary[0].promql).expect("parses");
    let selector = &selectors(&reread)[0];
    let service = selector
        .matchers
        .matchers
        .iter()
        .find(|m| m.name == "service")
        .expect("kept");
    assert!(service.is_match("a.b"));
    assert!(!service.is_match("axb"));
}

// Pins the var checks: missing and unused vars name what the rule set uses.
#[test]
fn vars_must_match_the_rule_set() {
    let set = series(r#"x{service="$service", env="$env"}"#);
    let err = plan::plan(&set, &canary(), &baseline(), &vars(&[("service", "a")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule set `t` needs vars the request does not give: env; it uses: env, service"
    );
    let err = plan::plan(
        &set,
        &canary(),
        &baseline(),
        &vars(&[("service", "a"), ("env", "b"), ("servise", "c")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule set `t` does not use vars servise; it uses: env, service"
    );
    let err = plan::plan(&set, &canary(), &baseline(), &vars(&[("1x", "a")])).unwrap_err();
    assert!(matches!(err, PlanError::BadVarName { .. }), "{err}");
    let err = plan::plan(
        &set,
        &canary(),
        &baseline(),
        &vars(&[("service", "a\u{7}"), ("env", "b")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the value of `service` contains control character U+0007; remove it"
    );
}

// Pins that identical sides are refused, whatever the matcher order.
#[test]
fn sides_must_differ() {
    let set = series("x");
    let a = SideSelector::parse(r#"{track="canary", app="web"}"#).expect("parses");
    let b = SideSelector::parse(r#"{app="web",track="canary"}"#).expect("parses");
    assert_eq!(
        plan::plan(&set, &a, &b, &BTreeMap::new()).unwrap_err(),
        PlanError::SameSides
    );
}

// Pins what a side selector string may be and the message for each refusal.
#[test]
fn side_selector_parse() {
    let ok = SideSelector::parse(r#"{track="canary",pod=~"web-.*"}"#).expect("parses");
    assert_eq!(ok.matchers.len(), 2);
    assert_eq!(ok.matchers[1].name, "pod");
    assert!(ok.matchers[1].is_match("web-1"));

    let err = |text: &str| SideSelector::parse(text).unwrap_err();
    assert!(matches!(
        err(r#"up{track="canary"}"#),
        SelectorError::NotPlainSelector { .. }
    ));
    assert!(matches!(
        err(r#"{track="canary"}[5m]"#),
        SelectorError::NotPlainSelector { .. }
    ));
    assert!(matches!(
        err(r#"{track="canary"} offset 5m"#),
        SelectorError::NotPlainSelector { .. }
    ));
    assert!(matches!(
        err(r#"rate({a="b"}[1m])"#),
        SelectorError::NotPlainSelector { .. }
    ));
    assert!(matches!(
        err(r#"{a="b" or c="d"}"#),
        SelectorError::SelectorHasOr { .. }
    ));
    assert_eq!(err("{}"), SelectorError::EmptySelector);
    assert_eq!(err("  "), SelectorError::EmptySelector);
    assert_eq!(err(r#"{track=~".*"}"#), SelectorError::MatchesEverything);
    assert!(matches!(
        err(r#"{track="canary""#),
        SelectorError::SelectorSyntax { .. }
    ));
    assert!(matches!(
        err(r#"{pod=~"(("}"#),
        SelectorError::SelectorSyntax { .. }
    ));
    assert_eq!(
        err(r#"{le="0.5", track="canary"}"#).to_string(),
        "label `le` cannot be used in a side selector: the rule file picks the metric (`__name__`) and the judge picks histogram buckets (`le`)"
    );
    assert!(matches!(
        err(r#"{__name__="up"}"#),
        SelectorError::ReservedLabel { .. }
    ));
    assert!(matches!(
        err(r#"{"my.label"="x"}"#),
        SelectorError::BadLabelName { .. }
    ));
    assert_eq!(
        err(r#"{track="canary" invalid}"#)
            .to_string()
            .split(':')
            .next(),
        Some(r#"side selector `{track="canary" invalid}` is not a valid selector"#)
    );
}

// Pins the bounds and name rules of map-built side selectors.
#[test]
fn side_selector_from_map_bounds() {
    let err = |pairs: Vec<(String, String)>| {
        SideSelector::from_map(&pairs.into_iter().collect()).unwrap_err()
    };
    assert_eq!(err(vec![]), SelectorError::EmptySelector);
    assert!(matches!(
        err(vec![("9lives".into(), "x".into())]),
        SelectorError::BadLabelName { .. }
    ));
    assert!(matches!(
        err(vec![(
            "a".repeat(canary_gate::request::selector::MAX_LABEL_NAME_LEN + 1),
            "x".into()
        )]),
        SelectorError::LabelNameTooLong { .. }
    ));
    assert!(matches!(
        err(vec![(
            "track".into(),
            "x".repeat(canary_gate::request::selector::MAX_LABEL_VALUE_LEN + 1)
        )]),
        SelectorError::ValueTooLong { .. }
    ));
    let many = (0..=canary_gate::request::selector::MAX_MATCHERS)
        .map(|i| (format!("l{i}"), "x".to_string()))
        .collect();
    assert_eq!(
        err(many),
        SelectorError::TooManyMatchers {
            count: canary_gate::request::selector::MAX_MATCHERS + 1
        }
    );
    assert_eq!(
        err(vec![("track".into(), String::new())]),
        SelectorError::MatchesEverything
    );
    // An empty value beside a real one selects series without that label.
    assert!(SideSelector::from_map(&vars(&[("track", "canary"), ("shadow", "")])).is_ok());
}

/// The plan of `set` for service `checkout`, canary against baseline.
fn checkout_plan(set: &RuleSet) -> plan::Plan {
    plan::plan(
        set,
        &canary(),
        &baseline(),
        &vars(&[("service", "checkout")]),
    )
    .expect("plans")
}

// Pins the shipped rules/http.yaml plan for a conventional service: the
// distribution metric `latency` reads every bucket.
#[test]
fn http_rules_plan() {
    let set = rules::load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/http.yaml"))
        .expect("shipped rules load");
    let plan = checkout_plan(&set);
    let texts: Vec<_> = plan.metrics[0]
        .canary
        .iter()
        .chain(&plan.metrics[1].baseline)
        .map(|q| q.promql.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            r#"http_requests_total{code=~"5..",service="checkout",track="canary"}"#,
            r#"http_requests_total{service="checkout",track="canary"}"#,
            r#"http_request_duration_seconds_bucket{service="checkout",track="baseline"}"#,
        ]
    );
}
