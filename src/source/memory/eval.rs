//! The PromQL evaluator of the in-memory source: the subset rule files use,
//! with the semantics of Prometheus 2.42 (the version CI runs the agreement
//! test against, Debian's `prometheus` package). Source locations below are
//! in the v2.42.0 tree of github.com/prometheus/prometheus.
//!
//! [`check`] walks the whole query before anything is evaluated and refuses
//! every construct outside the subset by name, so a query is either evaluated
//! the way Prometheus would or not at all.

use std::collections::BTreeMap;

use promql_parser::label::{METRIC_NAME, Matcher};
use promql_parser::parser::token::{
    T_ADD, T_AVG, T_COUNT, T_DIV, T_EQLC, T_GTE, T_GTR, T_LSS, T_LTE, T_MAX, T_MIN, T_MOD, T_MUL,
    T_NEQ, T_POW, T_SUB, T_SUM,
};
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector, Offset,
    VectorMatchCardinality, VectorSelector,
};

/// How far back an instant selector looks for a sample: Prometheus's default
/// `--query.lookback-delta` (`defaultLookbackDelta`, promql/engine.go).
pub const LOOKBACK_DELTA_MS: i64 = 5 * 60 * 1000;

/// The bits of Prometheus's staleness marker (`value.StaleNaN`, model/value/value.go).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `value` is a staleness marker rather than an ordinary NaN.
pub fn is_stale(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// One series as stored: its labels (the metric name under `__name__`) and
/// its samples in time order, staleness markers included.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSeries {
    /// Every label, the metric name as `__name__`.
    pub labels: BTreeMap<String, String>,
    /// `(unix milliseconds, value)`, strictly increasing in time; a value
    /// whose bits are [`STALE_NAN_BITS`] is a staleness marker.
    pub samples: Vec<(i64, f64)>,
}

/// Functions over a range of samples the evaluator knows.
const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "irate",
    "delta",
    "idelta",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
];

/// Functions over instant vectors and scalars the evaluator knows.
const OTHER_FUNCTIONS: &[&str] = &["histogram_quantile", "vector", "scalar", "time"];

/// Why a query was not evaluated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The query uses a construct outside the subset; the message names it.
    #[error(
        "the in-memory source does not evaluate {0}; it evaluates only the PromQL subset rule files use (see docs/rules.md, \"Testing rules\")"
    )]
    Unsupported(String),
    /// The text is not PromQL.
    #[error("the query does not parse: {0}")]
    Parse(String),
    /// Evaluation failed the way Prometheus's would (duplicate series, many-to-many matching).
    #[error("{0}")]
    Execution(String),
}

type Labels = BTreeMap<String, String>;

/// An instant vector: one value per label set.
type Vector = Vec<(Labels, f64)>;

/// A range vector or a range query's answer: each label set's `(ms, value)` points.
pub type Matrix = Vec<(Labels, Vec<(i64, f64)>)>;

/// What an expression yields at one instant.
enum Value {
    Scalar(f64),
    Vector(Vector),
}

/// Parses PromQL text; a panic of the parser (on a duration past
/// `Duration`'s range) becomes an error, since the text may come from a file.
pub fn parse(promql: &str) -> Result<Expr, EvalError> {
    std::panic::catch_unwind(|| promql_parser::parser::parse(promql))
        .unwrap_or_else(|_| Err("the PromQL parser failed on this text".into()))
        .map_err(EvalError::Parse)
}

/// Refuses, by name, the first construct of `expr` outside the subset.
pub fn check(expr: &Expr) -> Result<(), EvalError> {
    let refuse = |what: String| Err(EvalError::Unsupported(what));
    match expr {
        Expr::NumberLiteral(_) => Ok(()),
        Expr::StringLiteral(_) => refuse("string literals".into()),
        Expr::Paren(paren) => check(&paren.expr),
        Expr::Unary(unary) => check(&unary.expr),
        Expr::VectorSelector(selector) => check_selector(selector),
        Expr::MatrixSelector(_) => {
            refuse("a range selector outside one of the functions rate, increase, irate, delta, idelta and *_over_time".into())
        }
        Expr::Subquery(_) => refuse("subqueries (`expr[range:step]`)".into()),
        Expr::Extension(_) => refuse("extension nodes".into()),
        Expr::Aggregate(aggregate) => {
            if !matches!(aggregate.op.id(), T_SUM | T_MIN | T_MAX | T_AVG | T_COUNT) {
                return refuse(format!(
                    "the aggregation `{}` (it evaluates sum, min, max, avg and count)",
                    aggregate.op
                ));
            }
            if aggregate.param.is_some() {
                return refuse(format!("a parameter to `{}`", aggregate.op));
            }
            check(&aggregate.expr)
        }
        Expr::Binary(binary) => {
            let op = binary.op.id();
            let arithmetic = matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW);
            let comparison = binary.op.is_comparison_operator();
            if !arithmetic && !comparison {
                return refuse(format!(
                    "the binary operator `{}` (it evaluates + - * / % ^ and comparisons)",
                    binary.op
                ));
            }
            if let Some(modifier) = &binary.modifier {
                match &modifier.card {
                    VectorMatchCardinality::OneToOne => {}
                    VectorMatchCardinality::ManyToOne(_) => {
                        return refuse("`group_left` (only one-to-one vector matching)".into());
                    }
                    VectorMatchCardinality::OneToMany(_) => {
                        return refuse("`group_right` (only one-to-one vector matching)".into());
                    }
                    VectorMatchCardinality::ManyToMany => {
                        return refuse("many-to-many vector matching".into());
                    }
                }
                if modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some() {
                    return refuse("fill values on a binary operator".into());
                }
            }
            check(&binary.lhs)?;
            check(&binary.rhs)
        }
        Expr::Call(call) => {
            let name = call.func.name;
            if RANGE_FUNCTIONS.contains(&name) {
                match call.args.args.first().map(|arg| arg.as_ref()) {
                    Some(Expr::MatrixSelector(matrix)) if call.args.args.len() == 1 => {
                        check_selector(&matrix.vs)
                    }
                    Some(Expr::Subquery(_)) => {
                        refuse(format!("`{name}` over a subquery (only over a range selector)"))
                    }
                    _ => refuse(format!("`{name}` with these arguments")),
                }
            } else if OTHER_FUNCTIONS.contains(&name) {
                call.args.args.iter().try_for_each(|arg| check(arg))
            } else {
                refuse(format!("the function `{name}`"))
            }
        }
    }
}

fn check_selector(selector: &VectorSelector) -> Result<(), EvalError> {
    if selector.at.is_some() {
        return Err(EvalError::Unsupported("the `@` modifier".into()));
    }
    Ok(())
}

/// Evaluates `expr` at every `start_ms + k * step_ms` up to `end_ms`, as a
/// Prometheus range query does (`rangeEval`, promql/engine.go), and returns
/// each label set's points in time order.
pub fn range(
    store: &[StoredSeries],
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Matrix, EvalError> {
    check(expr)?;
    let evaluator = Evaluator { store };
    let mut by_labels: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut at = start_ms;
    while at <= end_ms {
        match evaluator.eval(expr, at)? {
            Value::Scalar(value) => by_labels
                .entry(Labels::new())
                .or_default()
                .push((at, value)),
            Value::Vector(vector) => {
                for (labels, value) in vector {
                    by_labels.entry(labels).or_default().push((at, value));
                }
            }
        }
        if step_ms <= 0 {
            break;
        }
        at += step_ms;
    }
    Ok(by_labels.into_iter().collect())
}

struct Evaluator<'a> {
    store: &'a [StoredSeries],
}

impl Evaluator<'_> {
    fn eval(&self, expr: &Expr, at: i64) -> Result<Value, EvalError> {
        match expr {
            Expr::NumberLiteral(number) => Ok(Value::Scalar(number.val)),
            Expr::Paren(paren) => self.eval(&paren.expr, at),
            Expr::Unary(unary) => match self.eval(&unary.expr, at)? {
                Value::Scalar(value) => Ok(Value::Scalar(-value)),
                // Unary minus drops the metric name (`UnaryExpr` in `eval`, promql/engine.go).
                Value::Vector(vector) => unique(
                    vector
                        .into_iter()
                        .map(|(labels, value)| (without_name(labels), -value))
                        .collect(),
                ),
            },
            Expr::VectorSelector(selector) => Ok(Value::Vector(self.instant(selector, at))),
            Expr::Aggregate(aggregate) => self.aggregate(aggregate, at),
            Expr::Binary(binary) => self.binary(binary, at),
            Expr::Call(call) => self.call(call, at),
            other => Err(EvalError::Unsupported(format!("`{other}`"))),
        }
    }

    /// The series `selector` picks, by name and every matcher (a missing label
    /// matches as the empty string, as in Prometheus).
    fn selected<'s>(
        &'s self,
        selector: &'s VectorSelector,
    ) -> impl Iterator<Item = &'s StoredSeries> {
        self.store.iter().filter(move |series| {
            let value = |name: &str| series.labels.get(name).map(String::as_str).unwrap_or("");
            let all = |matchers: &[Matcher]| matchers.iter().all(|m| m.is_match(value(&m.name)));
            let name_ok = selector
                .name
                .as_deref()
                .is_none_or(|name| value(METRIC_NAME) == name);
            let matchers = &selector.matchers;
            name_ok
                && all(&matchers.matchers)
                && (matchers.or_matchers.is_empty()
                    || matchers.or_matchers.iter().any(|group| all(group)))
        })
    }

    /// An instant selector: each series' newest sample at or before the
    /// reference time and no older than the lookback delta, unless that
    /// sample is a staleness marker (`vectorSelectorSingle`, promql/engine.go).
    fn instant(&self, selector: &VectorSelector, at: i64) -> Vector {
        let reference = at - offset_ms(&selector.offset);
        self.selected(selector)
            .filter_map(|series| {
                let upto = series.samples.partition_point(|&(t, _)| t <= reference);
                let &(t, value) = series.samples.get(upto.checked_sub(1)?)?;
                (t >= reference - LOOKBACK_DELTA_MS && !is_stale(value))
                    .then(|| (series.labels.clone(), value))
            })
            .collect()
    }

    /// A range selector: each series' samples in `[at - offset - range, at - offset]`,
    /// both ends included, staleness markers left out (`matrixIterSlice`,
    /// promql/engine.go; Prometheus 3 leaves the start out).
    fn matrix(&self, matrix: &MatrixSelector, at: i64) -> Matrix {
        let end = at - offset_ms(&matrix.vs.offset);
        let start = end - matrix.range.as_millis() as i64;
        self.selected(&matrix.vs)
            .map(|series| {
                let from = series.samples.partition_point(|&(t, _)| t < start);
                let to = series.samples.partition_point(|&(t, _)| t <= end);
                let points = series.samples[from..to]
                    .iter()
                    .copied()
                    .filter(|&(_, v)| !is_stale(v))
                    .collect();
                (series.labels.clone(), points)
            })
            .filter(|(_, points): &(Labels, Vec<(i64, f64)>)| !points.is_empty())
            .collect()
    }

    fn call(&self, call: &Call, at: i64) -> Result<Value, EvalError> {
        let name = call.func.name;
        let args = &call.args.args;
        if RANGE_FUNCTIONS.contains(&name) {
            let Some(Expr::MatrixSelector(matrix)) = args.first().map(|arg| arg.as_ref()) else {
                return Err(EvalError::Unsupported(format!(
                    "`{name}` with these arguments"
                )));
            };
            let range_secs = matrix.range.as_secs_f64();
            let (start, end) = {
                let end = at - offset_ms(&matrix.vs.offset);
                (end - matrix.range.as_millis() as i64, end)
            };
            let mut out = Vector::new();
            for (labels, points) in self.matrix(matrix, at) {
                let value = match name {
                    "rate" => extrapolated_rate(&points, start, end, range_secs, true, true),
                    "increase" => extrapolated_rate(&points, start, end, range_secs, true, false),
                    "delta" => extrapolated_rate(&points, start, end, range_secs, false, false),
                    "irate" => instant_value(&points, true),
                    "idelta" => instant_value(&points, false),
                    other => over_time(other, &points),
                };
                let Some(value) = value else { continue };
                // Every range function but last_over_time drops the metric name
                // (the `*parser.Call` case of `eval`, promql/engine.go).
                let labels = match name {
                    "last_over_time" => labels,
                    _ => without_name(labels),
                };
                out.push((labels, value));
            }
            return unique(out);
        }
        match name {
            "time" => Ok(Value::Scalar(at as f64 / 1000.0)),
            "vector" => Ok(Value::Vector(vec![(
                Labels::new(),
                self.scalar_arg(call, 0, at)?,
            )])),
            "scalar" => {
                let vector = self.vector_arg(call, 0, at)?;
                Ok(Value::Scalar(match vector.as_slice() {
                    [(_, value)] => *value,
                    _ => f64::NAN,
                }))
            }
            "histogram_quantile" => {
                let quantile = self.scalar_arg(call, 0, at)?;
                histogram_quantile(quantile, self.vector_arg(call, 1, at)?)
            }
            other => Err(EvalError::Unsupported(format!("the function `{other}`"))),
        }
    }

    /// Argument `index` of `call`, evaluated and taken apart by `pick`
    /// (`None` when it is not the `kind` of value the function needs).
    fn arg<T>(
        &self,
        call: &Call,
        index: usize,
        at: i64,
        kind: &str,
        pick: impl FnOnce(Value) -> Option<T>,
    ) -> Result<T, EvalError> {
        let value = call
            .args
            .args
            .get(index)
            .map(|arg| self.eval(arg, at))
            .transpose()?;
        value.and_then(pick).ok_or_else(|| {
            EvalError::Execution(format!(
                "argument {} of `{}` must be {kind}",
                index + 1,
                call.func.name
            ))
        })
    }

    fn scalar_arg(&self, call: &Call, index: usize, at: i64) -> Result<f64, EvalError> {
        self.arg(call, index, at, "a scalar", |value| match value {
            Value::Scalar(number) => Some(number),
            Value::Vector(_) => None,
        })
    }

    fn vector_arg(&self, call: &Call, index: usize, at: i64) -> Result<Vector, EvalError> {
        self.arg(call, index, at, "an instant vector", |value| match value {
            Value::Vector(vector) => Some(vector),
            Value::Scalar(_) => None,
        })
    }

    /// sum, min, max, avg and count, grouped `by` or `without` labels
    /// (`aggregation`, promql/engine.go).
    fn aggregate(&self, aggregate: &AggregateExpr, at: i64) -> Result<Value, EvalError> {
        let Value::Vector(input) = self.eval(&aggregate.expr, at)? else {
            return Err(EvalError::Execution(format!(
                "`{}` needs an instant vector",
                aggregate.op
            )));
        };
        // Groups in the order their first element came, as Prometheus keeps them.
        let mut groups: Vec<(Labels, Group)> = Vec::new();
        let mut index: BTreeMap<Labels, usize> = BTreeMap::new();
        for (labels, value) in input {
            let key = match &aggregate.modifier {
                None => Labels::new(),
                // `by` keeps only the listed labels (the name too, if listed).
                Some(LabelModifier::Include(keep)) => labels
                    .into_iter()
                    .filter(|(name, _)| keep.labels.iter().any(|k| k == name))
                    .collect(),
                // `without` drops the listed labels and always the metric name.
                Some(LabelModifier::Exclude(drop)) => labels
                    .into_iter()
                    .filter(|(name, _)| {
                        name != METRIC_NAME && !drop.labels.iter().any(|d| d == name)
                    })
                    .collect(),
            };
            match index.get(&key) {
                Some(&i) => groups[i].1.add(value),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, Group::new(value)));
                }
            }
        }
        let op = aggregate.op.id();
        Ok(Value::Vector(
            groups
                .into_iter()
                .map(|(labels, group)| (labels, group.result(op)))
                .collect(),
        ))
    }

    fn binary(&self, binary: &BinaryExpr, at: i64) -> Result<Value, EvalError> {
        let op = binary.op.id();
        let return_bool = binary.modifier.as_ref().is_some_and(|m| m.return_bool);
        let comparison = binary.op.is_comparison_operator();
        // Arithmetic drops the metric name, and so does `bool` (`shouldDropMetricName`
        // and `VectorscalarBinop`, promql/engine.go).
        let drops_name = !comparison || return_bool;
        let lhs = self.eval(&binary.lhs, at)?;
        let rhs = self.eval(&binary.rhs, at)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                let (value, keep) = element_binop(op, l, r);
                // The parser demands `bool` for comparisons between scalars.
                Ok(Value::Scalar(match comparison {
                    true => f64::from(u8::from(keep)),
                    false => value,
                }))
            }
            (Value::Vector(vector), Value::Scalar(scalar)) => vector_scalar(
                op,
                vector,
                scalar,
                false,
                comparison,
                return_bool,
                drops_name,
            ),
            (Value::Scalar(scalar), Value::Vector(vector)) => vector_scalar(
                op,
                vector,
                scalar,
                true,
                comparison,
                return_bool,
                drops_name,
            ),
            (Value::Vector(lhs), Value::Vector(rhs)) => {
                let matching = binary.modifier.as_ref().and_then(|m| m.matching.as_ref());
                vector_vector(op, lhs, rhs, matching, return_bool, drops_name)
            }
        }
    }
}

/// A running aggregate of one group, as `aggregation` keeps it (promql/engine.go).
struct Group {
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    count: f64,
}

impl Group {
    fn new(value: f64) -> Self {
        Group {
            sum: value,
            min: value,
            max: value,
            mean: value,
            count: 1.0,
        }
    }

    fn add(&mut self, value: f64) {
        self.count += 1.0;
        // In 2.42 sum is a plain sum; min and max let any number replace a NaN.
        self.sum += value;
        if self.min > value || self.min.is_nan() {
            self.min = value;
        }
        if self.max < value || self.max.is_nan() {
            self.max = value;
        }
        // avg: the incremental mean that avoids overflow, which leaves an
        // infinite mean alone unless a NaN or an opposite infinity comes.
        if self.mean.is_infinite() {
            if value.is_infinite() && (self.mean > 0.0) == (value > 0.0) {
                return;
            }
            if !value.is_infinite() && !value.is_nan() {
                return;
            }
        }
        self.mean += value / self.count - self.mean / self.count;
    }

    fn result(&self, op: u16) -> f64 {
        match op {
            T_SUM => self.sum,
            T_MIN => self.min,
            T_MAX => self.max,
            T_AVG => self.mean,
            _ => self.count,
        }
    }
}

/// One operation on two numbers: the value, and whether a comparison holds
/// (`vectorElemBinop`, promql/engine.go). A comparison's value is the left one.
fn element_binop(op: u16, lhs: f64, rhs: f64) -> (f64, bool) {
    match op {
        T_ADD => (lhs + rhs, true),
        T_SUB => (lhs - rhs, true),
        T_MUL => (lhs * rhs, true),
        T_DIV => (lhs / rhs, true),
        T_POW => (lhs.powf(rhs), true),
        // Go's math.Mod and Rust's `%` both take the sign of the dividend.
        T_MOD => (lhs % rhs, true),
        T_EQLC => (lhs, lhs == rhs),
        T_NEQ => (lhs, lhs != rhs),
        T_GTR => (lhs, lhs > rhs),
        T_LSS => (lhs, lhs < rhs),
        T_GTE => (lhs, lhs >= rhs),
        T_LTE => (lhs, lhs <= rhs),
        _ => (f64::NAN, false),
    }
}

/// A vector and a scalar (`VectorscalarBinop`, promql/engine.go): `swapped`
/// when the scalar is on the left. A comparison keeps the vector's value.
fn vector_scalar(
    op: u16,
    vector: Vector,
    scalar: f64,
    swapped: bool,
    comparison: bool,
    return_bool: bool,
    drops_name: bool,
) -> Result<Value, EvalError> {
    let mut out = Vector::new();
    for (labels, element) in vector {
        let (l, r) = if swapped {
            (scalar, element)
        } else {
            (element, scalar)
        };
        let (mut value, mut keep) = element_binop(op, l, r);
        if comparison && swapped {
            value = element;
        }
        if return_bool {
            value = f64::from(u8::from(keep));
            keep = true;
        }
        if keep {
            let labels = if drops_name {
                without_name(labels)
            } else {
                labels
            };
            out.push((labels, value));
        }
    }
    unique(out)
}

/// Two vectors matched one to one, on all labels but the name, `on` the
/// listed ones or `ignoring` them (`VectorBinop`, `signatureFunc` and
/// `resultMetric`, promql/engine.go).
fn vector_vector(
    op: u16,
    lhs: Vector,
    rhs: Vector,
    matching: Option<&LabelModifier>,
    return_bool: bool,
    drops_name: bool,
) -> Result<Value, EvalError> {
    // Nothing can match (and no duplicate is looked for) when a side is empty.
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Value::Vector(Vector::new()));
    }
    let signature = |labels: &Labels| -> Vec<(String, String)> {
        labels
            .iter()
            .filter(|(name, _)| match matching {
                Some(LabelModifier::Include(on)) => on.labels.iter().any(|l| l == *name),
                Some(LabelModifier::Exclude(ignoring)) => {
                    *name != METRIC_NAME && !ignoring.labels.iter().any(|l| l == *name)
                }
                None => *name != METRIC_NAME,
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    };
    let mut right: BTreeMap<Vec<(String, String)>, f64> = BTreeMap::new();
    for (labels, value) in &rhs {
        if right.insert(signature(labels), *value).is_some() {
            return Err(EvalError::Execution(format!(
                "found duplicate series for the match group {:?} on the right hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                signature(labels)
            )));
        }
    }
    let mut matched = std::collections::BTreeSet::new();
    let mut out = Vector::new();
    for (labels, l) in lhs {
        let key = signature(&labels);
        let Some(&r) = right.get(&key) else { continue };
        let (mut value, keep) = element_binop(op, l, r);
        if return_bool {
            value = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        if !matched.insert(key) {
            return Err(EvalError::Execution(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
            ));
        }
        let labels = labels
            .into_iter()
            .filter(|(name, _)| !(drops_name && name == METRIC_NAME))
            .filter(|(name, _)| match matching {
                Some(LabelModifier::Include(on)) => on.labels.iter().any(|l| l == name),
                Some(LabelModifier::Exclude(ignoring)) => {
                    !ignoring.labels.iter().any(|l| l == name)
                }
                None => true,
            })
            .collect();
        out.push((labels, value));
    }
    unique(out)
}

/// `rate`, `increase` and `delta`: the change over the range, counter resets
/// added back for counters, extrapolated towards the range's ends
/// (`extrapolatedRate`, promql/functions.go, as in 2.42: the counter's zero
/// point shortens the start before the 110% threshold is applied; Prometheus
/// 2.51 swapped the two steps, prometheus/prometheus#13725).
fn extrapolated_rate(
    points: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_secs: f64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    // No sense in a rate without at least two points.
    let (&(first_t, first_v), &(last_t, last_v)) = (points.first()?, points.last()?);
    if points.len() < 2 {
        return None;
    }
    let mut result = last_v - first_v;
    if is_counter {
        for pair in points.windows(2) {
            if pair[1].1 < pair[0].1 {
                result += pair[0].1;
            }
        }
    }
    let mut duration_to_start = (first_t - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let average_between_samples = sampled_interval / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        // A counter cannot go below zero: extrapolate no further back than its zero point.
        let duration_to_zero = sampled_interval * (first_v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between_samples * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between_samples / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between_samples / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_secs;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: the last two samples of the range (`instantValue`,
/// promql/functions.go); `irate` reads a drop as a counter reset.
fn instant_value(points: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let [.., (previous_t, previous_v), (last_t, last_v)] = points else {
        return None;
    };
    let mut result = if is_rate && last_v < previous_v {
        *last_v
    } else {
        last_v - previous_v
    };
    let interval_ms = last_t - previous_t;
    if interval_ms == 0 {
        return None;
    }
    if is_rate {
        result /= interval_ms as f64 / 1000.0;
    }
    Some(result)
}

/// Kahan-Neumaier summation step (`kahanSumInc`, promql/functions.go).
fn kahan_inc(increment: f64, sum: f64, compensation: f64) -> (f64, f64) {
    let total = sum + increment;
    let compensation = if sum.abs() >= increment.abs() {
        compensation + ((sum - total) + increment)
    } else {
        compensation + ((increment - total) + sum)
    };
    (total, compensation)
}

/// The `*_over_time` functions (`funcAvgOverTime` and its neighbours,
/// promql/functions.go). `points` is never empty.
fn over_time(name: &str, points: &[(i64, f64)]) -> Option<f64> {
    let values = points.iter().map(|&(_, v)| v);
    let first = points.first()?.1;
    Some(match name {
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for v in values {
                (sum, c) = kahan_inc(v, sum, c);
            }
            if sum.is_infinite() { sum } else { sum + c }
        }
        "avg_over_time" => {
            let (mut mean, mut count, mut c) = (0.0_f64, 0.0, 0.0);
            for v in values {
                count += 1.0;
                if mean.is_infinite() {
                    if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                (mean, c) = kahan_inc(v / count - mean / count, mean, c);
            }
            if mean.is_infinite() { mean } else { mean + c }
        }
        "min_over_time" => values.fold(
            first,
            |min, v| if v < min || min.is_nan() { v } else { min },
        ),
        "max_over_time" => values.fold(
            first,
            |max, v| if v > max || max.is_nan() { v } else { max },
        ),
        "count_over_time" => points.len() as f64,
        "last_over_time" => points.last()?.1,
        "present_over_time" => 1.0,
        "stdvar_over_time" | "stddev_over_time" => {
            let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for v in values {
                count += 1.0;
                let delta = v - (mean + c_mean);
                (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
                (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
            }
            let variance = (aux + c_aux) / count;
            if name == "stddev_over_time" {
                variance.sqrt()
            } else {
                variance
            }
        }
        _ => return None,
    })
}

/// `histogram_quantile` over classic buckets: grouped by every label but `le`,
/// the name and `le` dropped from the result (`funcHistogramQuantile`,
/// promql/functions.go), each group's quantile by `bucketQuantile`
/// (promql/quantile.go).
fn histogram_quantile(quantile: f64, input: Vector) -> Result<Value, EvalError> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    let mut index: BTreeMap<Labels, usize> = BTreeMap::new();
    for (labels, count) in input {
        // A series without a readable `le` is skipped, as Prometheus skips it.
        let Some(upper_bound) = labels.get("le").and_then(|le| parse_go_float(le)) else {
            continue;
        };
        let key: Labels = labels
            .iter()
            .filter(|(n, _)| *n != "le")
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        match index.get(&key) {
            Some(&i) => groups[i].1.push((upper_bound, count)),
            None => {
                index.insert(key, groups.len());
                let out = labels
                    .into_iter()
                    .filter(|(n, _)| n != "le" && n != METRIC_NAME)
                    .collect();
                groups.push((out, vec![(upper_bound, count)]));
            }
        }
    }
    unique(
        groups
            .into_iter()
            .map(|(labels, buckets)| (labels, bucket_quantile(quantile, buckets)))
            .collect(),
    )
}

/// `le` values as Go's strconv.ParseFloat reads them (`+Inf`, `Inf`, decimals).
fn parse_go_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

/// `bucketQuantile` of promql/quantile.go (2.42): buckets sorted by bound,
/// the last one `+Inf`, equal bounds merged, counts forced monotonic, then
/// linear interpolation inside the bucket the rank falls in.
fn bucket_quantile(quantile: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if quantile.is_nan() {
        return f64::NAN;
    }
    if quantile < 0.0 {
        return f64::NEG_INFINITY;
    }
    if quantile > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // coalesceBuckets: buckets with the same bound are one bucket.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (bound, count) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == bound => last.1 += count,
            _ => merged.push((bound, count)),
        }
    }
    // ensureMonotonic: a bucket never holds fewer than the one below it.
    let mut max = f64::NEG_INFINITY;
    for bucket in &mut merged {
        if bucket.1 > max {
            max = bucket.1;
        } else if bucket.1 < max {
            bucket.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = quantile * observations;
    // sort.Search over all buckets but +Inf: the first whose count reaches the rank.
    let b = merged[..merged.len() - 1].partition_point(|bucket| bucket.1 < rank);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut bucket_start, bucket_end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        bucket_start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Refuses a vector with two elements of the same labels, as Prometheus does
/// ("vector cannot contain metrics with the same labelset").
fn unique(vector: Vector) -> Result<Value, EvalError> {
    let mut seen = std::collections::BTreeSet::new();
    for (labels, _) in &vector {
        if !seen.insert(labels) {
            return Err(EvalError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(Value::Vector(vector))
}

fn without_name(mut labels: Labels) -> Labels {
    labels.remove(METRIC_NAME);
    labels
}

fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(duration)) => duration.as_millis() as i64,
        Some(Offset::Neg(duration)) => -(duration.as_millis() as i64),
    }
}
