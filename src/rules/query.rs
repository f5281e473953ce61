//! PromQL expressions from rule files: parsed once, checked for the shape a
//! metric kind needs, and walked selector by selector.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Once;

use promql_parser::label::METRIC_NAME;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, LabelModifier, VectorMatchCardinality, VectorSelector};

use super::model::Query;
use super::vars::{self, Segment};

/// The label Prometheus histograms carry their bucket bounds in.
pub(crate) const BUCKET_LABEL: &str = "le";

/// What a query is for, which decides the shape it must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A counter of events (`bad`, `total` of a ratio metric).
    Counter,
    /// A histogram's bucket counters (`histogram` of a latency metric).
    Histogram,
    /// A gauge-like expression sampled over time (`series`, `threshold`).
    Gauge,
}

/// Parses PromQL text, turning a panic inside the parser into an error.
///
/// promql-parser 0.11 panics on a duration too large for
/// `Duration::from_secs_f64` (`x[5555...5]`, `x offset 5555...5`, found by the
/// matcher-injection fuzz target); rule files and request bodies must get an
/// error instead, never a dropped connection or a dead reload thread, and no
/// panic message on stderr.
pub(crate) fn parse_promql(text: &str) -> Result<Expr, String> {
    thread_local! {
        static PARSING: Cell<bool> = const { Cell::new(false) };
    }
    static QUIET_WHILE_PARSING: Once = Once::new();
    QUIET_WHILE_PARSING.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Only this thread's parse is silenced; every other panic is reported as before.
            if !PARSING.with(Cell::get) {
                report(info);
            }
        }));
    });
    PARSING.with(|parsing| parsing.set(true));
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(text));
    PARSING.with(|parsing| parsing.set(false));
    parsed.unwrap_or_else(|_| {
        Err(
            "the PromQL parser failed on this text; look for a duration or number too large to use"
                .into(),
        )
    })
}

/// A node of the AST that can hold label matchers.
pub(crate) enum SelectorNode<'a> {
    /// A vector selector, or the selector inside a matrix selector.
    Selector(&'a mut VectorSelector),
    /// An extension node, which no parser produces and nobody can inject into.
    Extension,
}

/// Calls `visit` on every vector selector of `expr`, including those inside
/// matrix selectors, subqueries, function arguments, aggregation parameters
/// and both sides of binary expressions.
pub(crate) fn for_each_selector<E>(
    expr: &mut Expr,
    visit: &mut impl FnMut(SelectorNode<'_>) -> Result<(), E>,
) -> Result<(), E> {
    match expr {
        Expr::Aggregate(aggregate) => {
            if let Some(param) = aggregate.param.as_deref_mut() {
                for_each_selector(param, visit)?;
            }
            for_each_selector(&mut aggregate.expr, visit)
        }
        Expr::Unary(unary) => for_each_selector(&mut unary.expr, visit),
        Expr::Binary(binary) => {
            for_each_selector(&mut binary.lhs, visit)?;
            for_each_selector(&mut binary.rhs, visit)
        }
        Expr::Paren(paren) => for_each_selector(&mut paren.expr, visit),
        Expr::Subquery(subquery) => for_each_selector(&mut subquery.expr, visit),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(selector) => visit(SelectorNode::Selector(selector)),
        Expr::MatrixSelector(matrix) => visit(SelectorNode::Selector(&mut matrix.vs)),
        Expr::Call(call) => {
            for arg in &mut call.args.args {
                for_each_selector(arg, visit)?;
            }
            Ok(())
        }
        Expr::Extension(_) => visit(SelectorNode::Extension),
    }
}

/// True if an aggregation anywhere in `expr` removes the `le` label.
fn drops_bucket_label(expr: &Expr) -> bool {
    match expr {
        Expr::Aggregate(aggregate) => {
            let keeps = match &aggregate.modifier {
                Some(LabelModifier::Include(labels)) => {
                    labels.labels.iter().any(|l| l == BUCKET_LABEL)
                }
                Some(LabelModifier::Exclude(labels)) => {
                    !labels.labels.iter().any(|l| l == BUCKET_LABEL)
                }
                None => false,
            };
            !keeps
                || aggregate.param.as_deref().is_some_and(drops_bucket_label)
                || drops_bucket_label(&aggregate.expr)
        }
        Expr::Unary(unary) => drops_bucket_label(&unary.expr),
        Expr::Binary(binary) => drops_bucket_label(&binary.lhs) || drops_bucket_label(&binary.rhs),
        Expr::Paren(paren) => drops_bucket_label(&paren.expr),
        Expr::Subquery(subquery) => drops_bucket_label(&subquery.expr),
        Expr::Call(call) => call.args.args.iter().any(|arg| drops_bucket_label(arg)),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => false,
    }
}

/// The first function in `expr` that reads a range of samples (`rate(x[1m])`,
/// `increase(...)`, `max_over_time(...)`, a subquery's function), by name.
fn range_function(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Call(call) => {
            let reads_range = call
                .args
                .args
                .iter()
                .any(|arg| matches!(arg.as_ref(), Expr::MatrixSelector(_) | Expr::Subquery(_)));
            if reads_range {
                return Some(call.func.name.to_string());
            }
            call.args.args.iter().find_map(|arg| range_function(arg))
        }
        Expr::Aggregate(aggregate) => aggregate
            .param
            .as_deref()
            .and_then(range_function)
            .or_else(|| range_function(&aggregate.expr)),
        Expr::Unary(unary) => range_function(&unary.expr),
        Expr::Binary(binary) => range_function(&binary.lhs).or_else(|| range_function(&binary.rhs)),
        Expr::Paren(paren) => range_function(&paren.expr),
        Expr::Subquery(subquery) => range_function(&subquery.expr),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => None,
    }
}

/// Renders each thread has found to read back as their AST, at most this
/// many (the memo is emptied when full): a deployment's every look plans the
/// same queries, and parsing one again compiles its regex matchers again.
const VERIFIED_RENDERS: usize = 512;

/// True if `rendered` parses to the same query as `expr`.
///
/// The parser's Display sorts the matchers of a selector, which changes no
/// meaning, so matchers are compared as sets. A pure function of its two
/// arguments, so a render found to read back as the same AST before is
/// answered from a memo (text and AST both compared), without parsing.
pub(crate) fn reads_back_as(rendered: &str, expr: &Expr) -> bool {
    thread_local! {
        static VERIFIED: std::cell::RefCell<std::collections::HashMap<String, Expr>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    let known = VERIFIED.with(|memo| memo.borrow().get(rendered).is_some_and(|seen| seen == expr));
    if known {
        return true;
    }
    let Ok(mut reread) = parse_promql(rendered) else {
        return false;
    };
    let mut original = expr.clone();
    normalize(&mut reread);
    normalize(&mut original);
    let same = reread == original;
    if same {
        VERIFIED.with(|memo| {
            let mut memo = memo.borrow_mut();
            if memo.len() >= VERIFIED_RENDERS {
                memo.clear();
            }
            memo.insert(rendered.to_string(), expr.clone());
        });
    }
    same
}

/// Rewrites spellings the parser's Display changes without changing meaning:
/// matcher order, `by ()` on an aggregation and `ignoring ()` on a binary
/// operator (both the same as writing nothing).
fn normalize(expr: &mut Expr) {
    sort_matchers(expr);
    drop_empty_modifiers(expr);
}

fn drop_empty_modifiers(expr: &mut Expr) {
    match expr {
        Expr::Aggregate(aggregate) => {
            if matches!(&aggregate.modifier, Some(LabelModifier::Include(labels)) if labels.is_empty())
            {
                aggregate.modifier = None;
            }
            if let Some(param) = aggregate.param.as_deref_mut() {
                drop_empty_modifiers(param);
            }
            drop_empty_modifiers(&mut aggregate.expr);
        }
        Expr::Binary(binary) => {
            if let Some(modifier) = binary.modifier.as_mut() {
                if matches!(&modifier.matching, Some(LabelModifier::Exclude(labels)) if labels.is_empty())
                {
                    modifier.matching = None;
                }
                // What `a + b` parses to, once `ignoring ()` is gone.
                let plain = modifier.card == VectorMatchCardinality::OneToOne
                    && modifier.matching.is_none()
                    && !modifier.return_bool
                    && modifier.fill_values.lhs.is_none()
                    && modifier.fill_values.rhs.is_none();
                if plain {
                    binary.modifier = None;
                }
            }
            drop_empty_modifiers(&mut binary.lhs);
            drop_empty_modifiers(&mut binary.rhs);
        }
        Expr::Unary(unary) => drop_empty_modifiers(&mut unary.expr),
        Expr::Paren(paren) => drop_empty_modifiers(&mut paren.expr),
        Expr::Subquery(subquery) => drop_empty_modifiers(&mut subquery.expr),
        Expr::Call(call) => {
            for arg in &mut call.args.args {
                drop_empty_modifiers(arg);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => {}
    }
}

fn sort_matchers(expr: &mut Expr) {
    let sorted: Result<(), ()> = for_each_selector(expr, &mut |node| {
        if let SelectorNode::Selector(selector) = node {
            let key = |m: &promql_parser::label::Matcher| m.to_string();
            selector.matchers.matchers.sort_by_key(key);
            for group in &mut selector.matchers.or_matchers {
                group.sort_by_key(key);
            }
        }
        Ok(())
    });
    // The closure above never fails.
    let _ = sorted;
}

/// Parses `text` from the rule field `field` and checks it suits `purpose`.
///
/// On success returns the query and the names of the `$vars` its label
/// matcher values use. On failure returns one sentence per problem.
pub(crate) fn compile(
    text: &str,
    field: &str,
    purpose: Purpose,
) -> Result<(Query, BTreeSet<String>), Vec<String>> {
    let mut expr =
        parse_promql(text).map_err(|reason| vec![format!("bad PromQL in `{field}`: {reason}")])?;

    let mut problems = Vec::new();
    // The plan renders the AST with the parser's Display; a construct that
    // does not survive that would silently change the query sent.
    let rendered = expr.to_string();
    if !reads_back_as(&rendered, &expr) {
        problems.push(format!(
            "`{field}` would be sent to Prometheus as `{rendered}`, which does not mean the same; rewrite that part of the query"
        ));
    }

    match expr.value_type() {
        ValueType::Vector => {}
        ValueType::Matrix => problems.push(match purpose {
            Purpose::Counter | Purpose::Histogram => format!(
                "`{field}` is a range vector; drop the `[...]` range and give the counter itself, canary-gate takes the increase over the window"
            ),
            Purpose::Gauge => format!(
                "`{field}` is a range vector; wrap it in a function such as rate(...) so it yields one value per series"
            ),
        }),
        other => problems.push(format!(
            "`{field}` yields a {other}, but it must yield an instant vector (one value per series) so canary and baseline can be told apart"
        )),
    }

    if matches!(purpose, Purpose::Counter | Purpose::Histogram)
        && let Some(function) = range_function(&expr)
    {
        problems.push(format!(
            "`{field}` takes {function}(...) over a range, but it must give the counter itself (such as http_requests_total{{code=~\"5..\"}}): canary-gate takes each counter's increase per step and counts every event, and a rate's values would be counted as events"
        ));
    }

    if purpose == Purpose::Histogram && drops_bucket_label(&expr) {
        problems.push(format!(
            "`{field}` aggregates the `le` label away, so the buckets cannot be told apart; keep it, as in sum by (le) (...)"
        ));
    }

    let mut used_vars = BTreeSet::new();
    let mut selectors = 0usize;
    let walked = for_each_selector(&mut expr, &mut |node| {
        let SelectorNode::Selector(selector) = node else {
            return Err(format!("`{field}` holds a node canary-gate cannot read"));
        };
        selectors += 1;
        if !selector.matchers.or_matchers.is_empty() {
            problems.push(format!(
                "`{field}` uses `or` inside a selector's braces, which Prometheus does not accept; join two whole selectors with `or` instead"
            ));
        }
        let matchers = selector
            .matchers
            .matchers
            .iter()
            .chain(selector.matchers.or_matchers.iter().flatten());
        for matcher in matchers {
            if purpose == Purpose::Histogram && matcher.name == BUCKET_LABEL {
                problems.push(format!(
                    "`{field}` must not match on `le`; canary-gate picks the buckets it needs from `threshold_seconds` itself"
                ));
            }
            if matcher.name == METRIC_NAME {
                continue;
            }
            match vars::parse(&matcher.value) {
                Ok(segments) => {
                    for segment in segments {
                        if let Segment::Var(name) = segment {
                            used_vars.insert(name.to_string());
                        }
                    }
                }
                Err(reason) => {
                    problems.push(format!("`{field}` label `{}`: {reason}", matcher.name))
                }
            }
        }
        Ok(())
    });
    if let Err(problem) = walked {
        problems.push(problem);
    }
    if selectors == 0 {
        problems.push(format!(
            "`{field}` reads no metric, so canary-gate cannot tell canary from baseline; query a metric such as http_requests_total{{service=\"$service\"}}"
        ));
    }

    if problems.is_empty() {
        Ok((
            Query {
                expr,
                text: text.to_string(),
            },
            used_vars,
        ))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips(text: &str) -> bool {
        let expr = promql_parser::parser::parse(text).expect("test expressions parse");
        reads_back_as(&expr.to_string(), &expr)
    }

    // Pins that Display keeps the meaning of every construct rule files use.
    #[test]
    fn display_round_trips_representative_expressions() {
        for text in [
            r#"rate(http_requests_total{service="$service"}[5m])"#,
            r#"sum by (code) (rate(x{a="b"}[5m] offset 5m))"#,
            "sum without (pod) (x @ 1700000000)",
            "x @ start() offset -1m",
            "x @ end()",
            "x @ 1.2345",
            "a / on (pod) group_left (node) b",
            "a * on (pod) group_right b",
            "a + ignoring (pod) b",
            "a > bool 1",
            "a and on () b",
            "x unless y or z",
            "max_over_time(rate(x[1m])[30m:1m])",
            "max_over_time(rate(x[1m])[30m:] offset 1h)",
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
            "x * 1e300 + 0.000001 - 0x1f + Inf - NaN + 1.5e-7",
            "-x ^ 2",
            "(-x) ^ 2",
            "1 - -1",
            "topk(3, x) by (a)",
            r#"count_values("v", x)"#,
            "quantile(0.5, x)",
            r#"label_replace(x, "dst", "$1", "src", "(.*)")"#,
            "x[1h30m]",
            "x[90s]",
            "x offset 1y",
            r#"{"my.metric"}"#,
            r#"sum by ("a.b") (x)"#,
            r#"x{"a.b"="c"}"#,
            r#"x{a="é\u00e9\n\t\\\""}"#,
            r#"x{a=~"\\d+{"}"#,
            "x{a='single'}",
            "sum by () (x)",
            "x + ignoring () y",
            "sum(x) by (on)",
            "x ^ y ^ z",
            "(x ^ y) ^ z",
            "-(x)",
            "x / -y",
            "-1 ^ 2",
            "1 + 2 * x",
            "(1 + 2) * x",
            "x == bool 1",
            "x and on (a) y",
            "rate(x[5m])[10m:1m] @ 100 offset 5m",
            "x offset -5m",
            "x[5m] @ 1e9",
            "absent_over_time(x[5m])",
            "histogram_fraction(0, 0.25, x)",
            r#"x{a!~"b", c!="d"}"#,
            "sort_desc(x)",
            "x + on (a) group_left y",
            "count by (a) (x) > 2",
            "clamp_max(x, 1)",
            "time() - x",
        ] {
            assert!(round_trips(text), "{text} renders as something else");
        }
    }

    // Pins the one Display bug found: an `@` before 1970 renders as `@ 0.000`.
    #[test]
    fn display_loses_negative_at_timestamps() {
        let expr = promql_parser::parser::parse("x @ -100").expect("parses");
        assert_eq!(expr.to_string(), "x @ 0.000");
        assert!(!reads_back_as(&expr.to_string(), &expr));
        let err = compile("x @ -100", "query", Purpose::Gauge).unwrap_err();
        assert!(
            err[0].contains("would be sent to Prometheus as `x @ 0.000`"),
            "{err:?}"
        );
    }

    // Pins the vars collected from matcher values, and only from them.
    #[test]
    fn collects_vars_from_matcher_values() {
        let (_, vars) = compile(
            r#"sum(rate(x{a="$one", b=~"${two}|z", c="$"}[5m])) / on () label_replace(y{d="$three"}, "e", "$1", "f", "$four")"#,
            "query",
            Purpose::Gauge,
        )
        .expect("compiles");
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            ["one", "three", "two"]
        );
    }

    // Pins the shape checks: range vectors, scalars, no selector, `or` groups, `le`.
    #[test]
    fn refuses_wrong_shapes() {
        let one = |text: &str, purpose| compile(text, "bad", purpose).unwrap_err().join(" | ");
        assert!(one("x[5m]", Purpose::Counter).contains("drop the `[...]` range"));
        assert!(one("x[5m]", Purpose::Gauge).contains("wrap it in a function such as rate"));
        assert!(one("scalar(x)", Purpose::Gauge).contains("yields a scalar"));
        assert!(one("vector(1)", Purpose::Gauge).contains("reads no metric"));
        assert!(one(r#"x{a="1" or b="2"}"#, Purpose::Gauge).contains("`or` inside a selector"));
        assert!(one(r#"h{le="0.5"}"#, Purpose::Histogram).contains("must not match on `le`"));
        assert!(compile(r#"h{le="0.5"}"#, "query", Purpose::Gauge).is_ok());
        assert!(one("sum(h)", Purpose::Histogram).contains("aggregates the `le` label away"));
        assert!(one("sum without (le) (h)", Purpose::Histogram).contains("`le` label away"));
        assert!(compile("sum by (le, pod) (h)", "histogram", Purpose::Histogram).is_ok());
        assert!(compile("sum without (pod) (h)", "histogram", Purpose::Histogram).is_ok());
        assert!(compile("sum(h)", "bad", Purpose::Counter).is_ok());
        let rate = one(r#"sum(rate(x{code=~"5.."}[1m]))"#, Purpose::Counter);
        assert!(rate.contains("takes rate(...) over a range"), "{rate}");
        assert!(one("increase(h[5m])", Purpose::Histogram).contains("takes increase(...)"));
        assert!(one("max_over_time(x[5m:1m]) * 2", Purpose::Counter).contains("max_over_time"));
        assert!(compile("sum(rate(x[1m]))", "query", Purpose::Gauge).is_ok());
        assert!(one(r#"x{a="${svc"}"#, Purpose::Gauge).contains("no closing `}`"));
        assert!(one("sum(", Purpose::Gauge).starts_with("bad PromQL in `bad`: "));
        // Regression: a duration past Duration's range panicked inside the parser.
        let five = "5".repeat(60);
        for huge in [format!("rate(x[{five}])"), format!("x offset {five}")] {
            assert!(
                one(&huge, Purpose::Gauge).contains("too large to use"),
                "{huge}"
            );
        }
    }
}
