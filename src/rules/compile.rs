//! The compile stage: raw YAML values in, a [`RuleSet`] that cannot be wrong
//! out, or every problem of the file, each at its line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::error::{RuleError, did_you_mean, location_pos, yaml_error};
use super::model::{
    CountsRule, Group, Metric, MetricKind, NodataPolicy, RuleSet, Scoring, TimeoutPolicy,
};
use super::query::{self, Purpose};
use super::raw::{Field, RawGroup, RawMetric, RawRuleSet, Scalar};
use super::tolerance;
use crate::stats::Direction;

/// Family-wise false-rollback probability when the file gives none.
pub const DEFAULT_ALPHA: f64 = 0.01;
/// The largest `alpha` a rule set may ask for.
pub const MAX_ALPHA: f64 = 0.5;
/// Range-query resolution when the file gives none.
pub const DEFAULT_STEP_SECS: u64 = 15;
/// The coarsest `step` accepted.
pub const MAX_STEP_SECS: u64 = 3600;
/// The longest `window`: the longest window a verdict may cover.
pub const MAX_WINDOW_SECS: u64 = crate::request::MAX_WINDOW_SECS as u64;
/// Kayenta score needed to pass, in percent, when the file gives none.
pub const DEFAULT_PASS_PERCENT: f64 = 95.0;
/// Kayenta score needed to be marginal, in percent, when the file gives none.
pub const DEFAULT_MARGINAL_PERCENT: f64 = 75.0;
/// Events each side needs before a counts metric is judged, by default.
pub const DEFAULT_MIN_REQUESTS: f64 = 100.0;
/// Kayenta tolerance of a series metric when the file gives none.
pub const DEFAULT_SERIES_TOLERANCE: f64 = 0.25;
/// Samples each side needs before a series metric is judged, by default.
pub const DEFAULT_MIN_SAMPLES: usize = 10;
/// The most looks a series metric may split its alpha over.
pub const MAX_LOOKS: i64 = 1000;
/// The most metrics one rule set may hold.
pub const MAX_METRICS: usize = 200;

/// Longest window a final-look test may wait for: a day.
const MAX_FINAL_TEST_AFTER_SECS: u64 = 24 * 3600;

const KINDS: &[&str] = &["ratio", "latency", "series", "threshold"];
const COMMON_FIELDS: &[&str] = &["name", "kind", "group", "critical", "shadow"];
const RATIO_FIELDS: &[&str] = &[
    "bad",
    "total",
    "direction",
    "tolerance",
    "min_requests",
    "early_promotion",
    "final_test_after",
];
const LATENCY_FIELDS: &[&str] = &[
    "histogram",
    "threshold_seconds",
    "direction",
    "tolerance",
    "min_requests",
    "early_promotion",
    "final_test_after",
];
const SERIES_FIELDS: &[&str] = &[
    "query",
    "direction",
    "tolerance",
    "allowed_increase",
    "allowed_decrease",
    "critical_increase",
    "critical_decrease",
    "looks",
    "min_samples",
];
const THRESHOLD_FIELDS: &[&str] = &["query", "min", "max"];

/// Collects the problems of one file.
struct Ctx<'a> {
    path: &'a Path,
    errors: Vec<RuleError>,
}

impl Ctx<'_> {
    fn at(&mut self, (line, column): (usize, usize), message: impl Into<String>) {
        self.errors
            .push(RuleError::at(self.path, line, column, message));
    }

    fn err<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.at(pos(spanned), message);
    }
}

/// Line and column where a value was written.
fn pos<T>(spanned: &Spanned<T>) -> (usize, usize) {
    location_pos(spanned.referenced)
}

/// True for names of rule sets, metrics and groups: `[a-z0-9][a-z0-9_-]*`.
pub(crate) fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Compiles the text of one rule file. `path` names the file in errors and
/// gives the rule set its name (the file stem).
pub(super) fn compile_text(path: &Path, text: &str) -> Result<RuleSet, Vec<RuleError>> {
    let mut ctx = Ctx {
        path,
        errors: Vec::new(),
    };
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default()
        .to_string();
    if !is_plain_name(&name) {
        ctx.errors.push(RuleError::whole(
            path,
            format!(
                "rule set name `{name}` (the file name without extension) must be lowercase letters, digits, `-` and `_`; rename the file"
            ),
        ));
    }

    let raw: RawRuleSet = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            ctx.errors.push(yaml_error(path, &error, "rule file"));
            return Err(ctx.errors);
        }
    };

    let set = compile_set(&mut ctx, raw, name, path, text);
    // Problems are found kind by kind; a reader wants them top to bottom.
    ctx.errors.sort_by_key(|e| (e.line, e.column));
    match set {
        Some(set) if ctx.errors.is_empty() => Ok(set),
        _ => Err(ctx.errors),
    }
}

fn compile_set(
    ctx: &mut Ctx<'_>,
    raw: RawRuleSet,
    name: String,
    path: &Path,
    text: &str,
) -> Option<RuleSet> {
    let alpha = match &raw.alpha {
        None => DEFAULT_ALPHA,
        Some(alpha) if alpha.value > 0.0 && alpha.value <= MAX_ALPHA => alpha.value,
        Some(alpha) => {
            ctx.err(
                alpha,
                format!(
                    "alpha must lie in (0, {MAX_ALPHA}], such as 0.01 for a 1% chance of rolling back a healthy canary"
                ),
            );
            DEFAULT_ALPHA
        }
    };
    let on_timeout = match raw.on_timeout.as_ref() {
        None => TimeoutPolicy::Promote,
        Some(value) => match value.value.as_str() {
            "promote" => TimeoutPolicy::Promote,
            "rollback" => TimeoutPolicy::Rollback,
            other => {
                ctx.err(
                    value,
                    format!("on_timeout `{other}` is not known; write `promote` or `rollback`"),
                );
                TimeoutPolicy::Promote
            }
        },
    };
    let on_nodata = match raw.on_nodata.as_ref() {
        None => NodataPolicy::Inconclusive,
        Some(value) => match value.value.as_str() {
            "inconclusive" => NodataPolicy::Inconclusive,
            "rollback" => NodataPolicy::Rollback,
            "ignore" => NodataPolicy::Ignore,
            other => {
                ctx.err(
                    value,
                    format!(
                        "on_nodata `{other}` is not known; write `inconclusive`, `rollback` or `ignore`"
                    ),
                );
                NodataPolicy::Inconclusive
            }
        },
    };
    let step_secs = raw.step.as_ref().map_or(DEFAULT_STEP_SECS, |step| {
        compile_duration(ctx, step, "step", MAX_STEP_SECS).unwrap_or(DEFAULT_STEP_SECS)
    });
    let window_secs = raw
        .window
        .as_ref()
        .and_then(|window| compile_duration(ctx, window, "window", MAX_WINDOW_SECS));
    let source = raw.source.as_ref().and_then(|source| {
        if is_plain_name(&source.value) {
            Some(source.value.clone())
        } else {
            ctx.err(
                source,
                "source must name a metric source of the config file: lowercase letters, digits, `-` and `_`",
            );
            None
        }
    });
    let scoring = compile_scoring(ctx, &raw);
    let shadow = raw.shadow.as_ref().is_some_and(|shadow| shadow.value);

    let declared_groups = compile_groups(ctx, raw.groups.as_ref());

    let Some(raw_metrics) = raw.metrics.as_ref() else {
        ctx.at(
            (1, 1),
            "the file has no `metrics` list; add `metrics:` with at least one metric",
        );
        return None;
    };
    if raw_metrics.value.is_empty() {
        ctx.err(raw_metrics, "`metrics` is empty; add at least one metric");
        return None;
    }
    if raw_metrics.value.len() > MAX_METRICS {
        ctx.err(
            raw_metrics,
            format!("`metrics` holds more than {MAX_METRICS} metrics; split the rule set"),
        );
        return None;
    }

    let mut metrics = Vec::new();
    let mut vars = BTreeSet::new();
    let mut seen_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut used_groups = BTreeSet::new();
    for raw_metric in &raw_metrics.value {
        // Names are checked before the metric compiles, so a duplicate is
        // reported even when one of the two has other problems.
        let mut duplicate = false;
        if let Some(name) = &raw_metric.value.name {
            match seen_names.get(&name.value) {
                Some(first_line) => {
                    duplicate = true;
                    ctx.err(
                        name,
                        format!(
                            "metric name `{}` is already used on line {first_line}; give each metric its own name",
                            name.value
                        ),
                    );
                }
                None => {
                    seen_names.insert(name.value.clone(), pos(name).0);
                }
            }
        }
        let Some((mut metric, metric_vars)) =
            compile_metric(ctx, raw_metric, declared_groups.as_deref(), shadow)
        else {
            continue;
        };
        if duplicate {
            continue;
        }
        if let (None, MetricKind::Series { looks, .. }, Some(at)) = (
            raw.window.as_ref(),
            &metric.kind,
            raw_metric.value.looks.as_ref(),
        ) && *looks > 1
        {
            // The server keeps no count of looks: without a window to place the
            // checkpoints in, every ask would be one more test.
            ctx.err(
                at,
                format!(
                    "looks: {looks} needs the rule set's `window`, the planned length of the analysis (such as '30m'), which places the {looks} checkpoints the metric is judged at"
                ),
            );
        }
        if declared_groups.is_none() {
            // Without declared groups each metric is its own group.
            metric.group = metrics.len();
        }
        used_groups.insert(metric.group);
        vars.extend(metric_vars);
        metrics.push(metric);
    }

    let groups = match declared_groups {
        Some(groups) => {
            for (index, (group, at)) in groups.iter().enumerate() {
                if !used_groups.contains(&index) {
                    ctx.at(
                        *at,
                        format!(
                            "group `{}` is declared but no metric names it; remove it or set `group: {}` on a metric",
                            group.name, group.name
                        ),
                    );
                }
            }
            groups.into_iter().map(|(group, _)| group).collect()
        }
        None => metrics
            .iter()
            .map(|metric| Group {
                name: metric.name.clone(),
                weight: 1.0,
            })
            .collect(),
    };
    if !ctx.errors.is_empty() {
        return None;
    }

    Some(RuleSet {
        name,
        description: raw.description.map(|d| d.value),
        alpha,
        on_timeout,
        on_nodata,
        step_secs,
        window_secs,
        source,
        shadow,
        scoring,
        groups,
        metrics,
        vars: vars.into_iter().collect(),
        content_hash: hex::encode(Sha256::digest(text.as_bytes())),
        path: path.to_path_buf(),
    })
}

/// A whole number of seconds from 1 to `max_secs`, written as a duration
/// (`15s`, `30m`); `None` after reporting why not.
fn compile_duration(
    ctx: &mut Ctx<'_>,
    field: &Spanned<Scalar>,
    name: &str,
    max_secs: u64,
) -> Option<u64> {
    compile_duration_from(ctx, field, name, 1, max_secs)
}

/// A whole number of seconds from `min_secs` to `max_secs`, written as a duration.
fn compile_duration_from(
    ctx: &mut Ctx<'_>,
    field: &Spanned<Scalar>,
    name: &str,
    min_secs: u64,
    max_secs: u64,
) -> Option<u64> {
    let text = match &field.value {
        Scalar::Text(text) => text,
        Scalar::Number(number) => {
            ctx.err(
                field,
                format!("{name} `{number}` needs a unit; write a duration such as '15s' or '1m'"),
            );
            return None;
        }
    };
    let Ok(duration) = humantime::parse_duration(text) else {
        ctx.err(
            field,
            format!("{name} `{text}` is not a duration; write one such as '15s' or '1m'"),
        );
        return None;
    };
    if duration.subsec_nanos() != 0 || !(min_secs..=max_secs).contains(&duration.as_secs()) {
        ctx.err(
            field,
            format!(
                "{name} `{text}` must be a whole number of seconds from {min_secs}s to {max_secs}s"
            ),
        );
        return None;
    }
    Some(duration.as_secs())
}

fn compile_scoring(ctx: &mut Ctx<'_>, raw: &RawRuleSet) -> Scoring {
    let mut scoring = Scoring {
        pass: DEFAULT_PASS_PERCENT,
        marginal: DEFAULT_MARGINAL_PERCENT,
    };
    let Some(raw_scoring) = raw.scoring.as_ref() else {
        return scoring;
    };
    for (field, target, value) in [
        ("pass", &mut scoring.pass, &raw_scoring.value.pass),
        (
            "marginal",
            &mut scoring.marginal,
            &raw_scoring.value.marginal,
        ),
    ] {
        if let Some(value) = value {
            if (0.0..=100.0).contains(&value.value) {
                *target = value.value;
            } else {
                ctx.err(
                    value,
                    format!("scoring `{field}` is a percentage and must lie between 0 and 100"),
                );
            }
        }
    }
    if scoring.marginal > scoring.pass {
        let at = raw_scoring
            .value
            .marginal
            .as_ref()
            .map_or(pos(raw_scoring), pos);
        ctx.at(
            at,
            format!(
                "scoring `marginal` ({}) must not exceed `pass` ({}); a marginal score lies below a passing one",
                scoring.marginal, scoring.pass
            ),
        );
    }
    scoring
}

/// The declared groups with where each was written, or `None` if the file
/// declares none.
fn compile_groups(
    ctx: &mut Ctx<'_>,
    raw: Option<&Spanned<Vec<Spanned<RawGroup>>>>,
) -> Option<Vec<(Group, (usize, usize))>> {
    let raw = raw?;
    if raw.value.is_empty() {
        ctx.err(
            raw,
            "`groups` is empty; remove it or declare at least one group",
        );
        return None;
    }
    let mut groups: Vec<(Group, (usize, usize))> = Vec::new();
    for raw_group in &raw.value {
        let Some(name) = &raw_group.value.name else {
            ctx.err(
                raw_group,
                "group has no `name`; add `name: errors` or similar",
            );
            continue;
        };
        if !is_plain_name(&name.value) {
            ctx.err(
                name,
                format!(
                    "group name `{}` must be lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                    name.value
                ),
            );
            continue;
        }
        if groups.iter().any(|(group, _)| group.name == name.value) {
            ctx.err(
                name,
                format!("group `{}` is declared twice; remove one", name.value),
            );
            continue;
        }
        let weight = match &raw_group.value.weight {
            None => 1.0,
            Some(weight) if weight.value > 0.0 && weight.value.is_finite() => weight.value,
            Some(weight) => {
                ctx.err(
                    weight,
                    "group weight must be a number above 0, such as 1 or 2",
                );
                1.0
            }
        };
        groups.push((
            Group {
                name: name.value.clone(),
                weight,
            },
            pos(name),
        ));
    }
    Some(groups)
}

/// Every metric field present in `raw`, with where it was written.
fn present_fields(raw: &RawMetric) -> Vec<(&'static str, (usize, usize))> {
    fn add<T>(out: &mut Vec<(&'static str, (usize, usize))>, name: &'static str, field: &Field<T>) {
        if let Some(value) = field {
            out.push((name, pos(value)));
        }
    }
    let mut out = Vec::new();
    add(&mut out, "bad", &raw.bad);
    add(&mut out, "total", &raw.total);
    add(&mut out, "histogram", &raw.histogram);
    add(&mut out, "query", &raw.query);
    add(&mut out, "direction", &raw.direction);
    add(&mut out, "tolerance", &raw.tolerance);
    add(&mut out, "min_requests", &raw.min_requests);
    add(&mut out, "early_promotion", &raw.early_promotion);
    add(&mut out, "final_test_after", &raw.final_test_after);
    add(&mut out, "threshold_seconds", &raw.threshold_seconds);
    add(&mut out, "allowed_increase", &raw.allowed_increase);
    add(&mut out, "allowed_decrease", &raw.allowed_decrease);
    add(&mut out, "critical_increase", &raw.critical_increase);
    add(&mut out, "critical_decrease", &raw.critical_decrease);
    add(&mut out, "looks", &raw.looks);
    add(&mut out, "min_samples", &raw.min_samples);
    add(&mut out, "min", &raw.min);
    add(&mut out, "max", &raw.max);
    out
}

/// Compiles one metric; `set_shadow` is the rule set's own `shadow: true`.
fn compile_metric(
    ctx: &mut Ctx<'_>,
    spanned: &Spanned<RawMetric>,
    groups: Option<&[(Group, (usize, usize))]>,
    set_shadow: bool,
) -> Option<(Metric, BTreeSet<String>)> {
    let raw = &spanned.value;
    let errors_before = ctx.errors.len();

    let name = match &raw.name {
        None => {
            ctx.err(
                spanned,
                "metric has no `name`; add one such as `name: error-rate`",
            );
            None
        }
        Some(name) if !is_plain_name(&name.value) => {
            ctx.err(
                name,
                format!(
                    "metric name `{}` must be lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                    name.value
                ),
            );
            None
        }
        Some(name) => Some(name.value.clone()),
    };

    let Some(kind) = &raw.kind else {
        ctx.err(
            spanned,
            "metric has no `kind`; add `kind:` with one of ratio, latency, series, threshold",
        );
        return None;
    };
    let kind_fields: &[&str] = match kind.value.as_str() {
        "ratio" => RATIO_FIELDS,
        "latency" => LATENCY_FIELDS,
        "series" => SERIES_FIELDS,
        "threshold" => THRESHOLD_FIELDS,
        other => {
            ctx.err(
                kind,
                format!(
                    "kind `{other}` is not known;{} write one of {}",
                    did_you_mean(other, KINDS),
                    KINDS.join(", ")
                ),
            );
            return None;
        }
    };
    for (field, at) in present_fields(raw) {
        if !kind_fields.contains(&field) {
            ctx.at(
                at,
                format!(
                    "`{field}` does not apply to kind `{}`; its fields are {}",
                    kind.value,
                    COMMON_FIELDS
                        .iter()
                        .chain(kind_fields)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    // A shadow rule set is shadow as a whole: a `shadow: false` inside it would
    // make one metric gate deploys from a file its writer sees as a trial.
    if set_shadow && let Some(shadow) = &raw.shadow {
        ctx.err(
            shadow,
            "`shadow` on a metric of a shadow rule set is refused: the file's `shadow: true` makes every metric shadow; remove this line, or remove the file's `shadow: true` and set `shadow: true` on the metrics to try",
        );
    }
    let group = compile_group_ref(ctx, spanned, name.as_deref(), groups);
    let mut vars = BTreeSet::new();
    let metric_kind = match kind.value.as_str() {
        "ratio" => {
            let bad = compile_query(ctx, spanned, &raw.bad, "bad", Purpose::Counter, &mut vars);
            let total = compile_query(
                ctx,
                spanned,
                &raw.total,
                "total",
                Purpose::Counter,
                &mut vars,
            );
            let rule = compile_counts_rule(ctx, spanned);
            match (bad, total, rule) {
                (Some(bad), Some(total), Some(rule)) => {
                    Some(MetricKind::Ratio { bad, total, rule })
                }
                _ => None,
            }
        }
        "latency" => {
            let histogram = compile_query(
                ctx,
                spanned,
                &raw.histogram,
                "histogram",
                Purpose::Histogram,
                &mut vars,
            );
            let threshold_seconds = match &raw.threshold_seconds {
                None => {
                    ctx.err(
                        spanned,
                        "latency metric has no `threshold_seconds`; add the latency that counts as slow, such as 0.25",
                    );
                    None
                }
                Some(t) if t.value > 0.0 && t.value.is_finite() => Some(t.value),
                Some(t) => {
                    ctx.err(
                        t,
                        "threshold_seconds must be a number of seconds above 0, such as 0.25",
                    );
                    None
                }
            };
            let rule = compile_counts_rule(ctx, spanned);
            match (histogram, threshold_seconds, rule) {
                (Some(histogram), Some(threshold_seconds), Some(rule)) => {
                    Some(MetricKind::Latency {
                        histogram,
                        threshold_seconds,
                        rule,
                    })
                }
                _ => None,
            }
        }
        "series" => compile_series(ctx, spanned, &mut vars),
        _ => compile_threshold(ctx, spanned, &mut vars),
    };

    if ctx.errors.len() != errors_before {
        return None;
    }
    Some((
        Metric {
            name: name?,
            group: group?,
            critical: raw.critical.as_ref().is_some_and(|c| c.value),
            shadow: set_shadow || raw.shadow.as_ref().is_some_and(|s| s.value),
            kind: metric_kind?,
            line: pos(spanned).0,
        },
        vars,
    ))
}

fn compile_group_ref(
    ctx: &mut Ctx<'_>,
    spanned: &Spanned<RawMetric>,
    metric_name: Option<&str>,
    groups: Option<&[(Group, (usize, usize))]>,
) -> Option<usize> {
    let declared = |groups: &[(Group, (usize, usize))]| {
        groups
            .iter()
            .map(|(g, _)| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (&spanned.value.group, groups) {
        // Without declared groups each metric is its own group, in order;
        // the index is fixed up by the caller's position in the list.
        (None, None) => Some(usize::MAX),
        (Some(group), None) => {
            ctx.err(
                group,
                format!(
                    "group `{}` is not declared; add a `groups:` list to the file or remove `group`",
                    group.value
                ),
            );
            None
        }
        (None, Some(groups)) => {
            ctx.err(
                spanned,
                format!(
                    "metric `{}` has no `group`; when groups are declared every metric names one of: {}",
                    metric_name.unwrap_or("?"),
                    declared(groups)
                ),
            );
            None
        }
        (Some(group), Some(groups)) => {
            match groups.iter().position(|(g, _)| g.name == group.value) {
                Some(index) => Some(index),
                None => {
                    let names: Vec<&str> = groups.iter().map(|(g, _)| g.name.as_str()).collect();
                    ctx.err(
                        group,
                        format!(
                            "group `{}` is not declared;{} declared groups: {}",
                            group.value,
                            did_you_mean(&group.value, &names),
                            declared(groups)
                        ),
                    );
                    None
                }
            }
        }
    }
}

fn compile_query(
    ctx: &mut Ctx<'_>,
    metric: &Spanned<RawMetric>,
    field: &Field<String>,
    field_name: &str,
    purpose: Purpose,
    vars: &mut BTreeSet<String>,
) -> Option<super::model::Query> {
    let Some(text) = field else {
        ctx.err(
            metric,
            format!("metric has no `{field_name}`; add the PromQL it needs"),
        );
        return None;
    };
    match query::compile(&text.value, field_name, purpose) {
        Ok((query, used)) => {
            vars.extend(used);
            Some(query)
        }
        Err(problems) => {
            for problem in problems {
                ctx.err(text, problem);
            }
            None
        }
    }
}

fn compile_direction(ctx: &mut Ctx<'_>, metric: &Spanned<RawMetric>) -> Option<Direction> {
    let Some(direction) = &metric.value.direction else {
        ctx.err(
            metric,
            "metric has no `direction`; add `direction:` with increase, decrease or either (the change that harms users)",
        );
        return None;
    };
    match direction.value.as_str() {
        "increase" => Some(Direction::Increase),
        "decrease" => Some(Direction::Decrease),
        "either" => Some(Direction::Either),
        other => {
            ctx.err(
                direction,
                format!("direction `{other}` is not known; write increase, decrease or either"),
            );
            None
        }
    }
}

fn compile_tolerance(
    ctx: &mut Ctx<'_>,
    tolerance: &Spanned<Scalar>,
    direction: Direction,
) -> Option<f64> {
    match &tolerance.value {
        Scalar::Number(number) => {
            ctx.err(
                tolerance,
                format!(
                    "tolerance must be a percentage such as '+10%'; a bare number like {number} is ambiguous"
                ),
            );
            None
        }
        Scalar::Text(text) => match tolerance::parse(text, direction) {
            Ok(fraction) => Some(fraction),
            Err(message) => {
                ctx.err(tolerance, message);
                None
            }
        },
    }
}

fn compile_counts_rule(ctx: &mut Ctx<'_>, metric: &Spanned<RawMetric>) -> Option<CountsRule> {
    let raw = &metric.value;
    let direction = compile_direction(ctx, metric);
    let tolerance = match (&raw.tolerance, direction) {
        (None, _) => {
            ctx.err(
                metric,
                "metric has no `tolerance`; add how much worse the canary may be, such as '+10%'",
            );
            None
        }
        (Some(tolerance), Some(direction)) => compile_tolerance(ctx, tolerance, direction),
        (Some(_), None) => None,
    };
    let min_requests = match &raw.min_requests {
        None => Some(DEFAULT_MIN_REQUESTS),
        Some(m) if m.value >= 1.0 && m.value.is_finite() => Some(m.value),
        Some(m) => {
            ctx.err(
                m,
                "min_requests must be a number of events of at least 1, such as 300",
            );
            None
        }
    };
    let final_test_after_secs = match &raw.final_test_after {
        None => Some(None),
        // The window of the final-look test: at least a minute of counts.
        Some(after) => compile_duration_from(
            ctx,
            after,
            "final_test_after",
            60,
            MAX_FINAL_TEST_AFTER_SECS,
        )
        .map(Some),
    };
    Some(CountsRule {
        direction: direction?,
        tolerance: tolerance?,
        min_requests: min_requests?,
        early_promotion: raw.early_promotion.as_ref().is_none_or(|e| e.value),
        final_test_after_secs: final_test_after_secs?,
    })
}

fn compile_series(
    ctx: &mut Ctx<'_>,
    metric: &Spanned<RawMetric>,
    vars: &mut BTreeSet<String>,
) -> Option<MetricKind> {
    let raw = &metric.value;
    let query = compile_query(ctx, metric, &raw.query, "query", Purpose::Gauge, vars);
    let direction = compile_direction(ctx, metric);
    let tolerance = match (&raw.tolerance, direction) {
        (None, _) => Some(DEFAULT_SERIES_TOLERANCE),
        (Some(tolerance), Some(direction)) => compile_tolerance(ctx, tolerance, direction),
        (Some(_), None) => None,
    };

    let mut ratio = |field: &Field<f64>, name: &str, default: Option<f64>, increase: bool| {
        let value = match field {
            None => return Some(default),
            Some(value) => value,
        };
        let ok = if increase {
            value.value >= 1.0 && value.value.is_finite()
        } else {
            value.value > 0.0 && value.value <= 1.0
        };
        if ok {
            Some(Some(value.value))
        } else {
            ctx.err(
                value,
                if increase {
                    format!("{name} is a ratio of means and must be at least 1, such as 1.1")
                } else {
                    format!("{name} is a ratio of means and must lie in (0, 1], such as 0.9")
                },
            );
            None
        }
    };
    let allowed_increase = ratio(&raw.allowed_increase, "allowed_increase", Some(1.0), true);
    let allowed_decrease = ratio(&raw.allowed_decrease, "allowed_decrease", Some(1.0), false);
    let critical_increase = ratio(&raw.critical_increase, "critical_increase", None, true);
    let critical_decrease = ratio(&raw.critical_decrease, "critical_decrease", None, false);

    if let (Some(Some(allowed)), Some(Some(critical)), Some(at)) = (
        allowed_increase,
        critical_increase,
        raw.critical_increase.as_ref(),
    ) && critical < allowed
    {
        ctx.err(
            at,
            format!(
                "critical_increase ({critical}) must not be below allowed_increase ({allowed})"
            ),
        );
    }
    if let (Some(Some(allowed)), Some(Some(critical)), Some(at)) = (
        allowed_decrease,
        critical_decrease,
        raw.critical_decrease.as_ref(),
    ) && critical > allowed
    {
        ctx.err(
            at,
            format!(
                "critical_decrease ({critical}) must not be above allowed_decrease ({allowed})"
            ),
        );
    }

    let looks = match &raw.looks {
        None => Some(1),
        Some(looks) if (1..=MAX_LOOKS).contains(&looks.value) => u32::try_from(looks.value).ok(),
        Some(looks) => {
            ctx.err(
                looks,
                format!("looks must be a whole number from 1 to {MAX_LOOKS}; 1 judges once, at the end of the window (or the final look)"),
            );
            None
        }
    };
    let min_samples = match &raw.min_samples {
        None => Some(DEFAULT_MIN_SAMPLES),
        Some(m) if m.value >= 2 => usize::try_from(m.value).ok(),
        Some(m) => {
            ctx.err(
                m,
                "min_samples must be a whole number of at least 2, such as 10",
            );
            None
        }
    };

    Some(MetricKind::Series {
        query: query?,
        direction: direction?,
        tolerance: tolerance?,
        allowed_increase: allowed_increase??,
        allowed_decrease: allowed_decrease??,
        critical_increase: critical_increase?,
        critical_decrease: critical_decrease?,
        looks: looks?,
        min_samples: min_samples?,
    })
}

fn compile_threshold(
    ctx: &mut Ctx<'_>,
    metric: &Spanned<RawMetric>,
    vars: &mut BTreeSet<String>,
) -> Option<MetricKind> {
    let raw = &metric.value;
    let query = compile_query(ctx, metric, &raw.query, "query", Purpose::Gauge, vars);
    let mut bound = |field: &Field<f64>, name: &str| match field {
        None => Some(None),
        Some(value) if value.value.is_finite() => Some(Some(value.value)),
        Some(value) => {
            ctx.err(value, format!("{name} must be a finite number"));
            None
        }
    };
    let min = bound(&raw.min, "min");
    let max = bound(&raw.max, "max");
    match (min, max) {
        (Some(None), Some(None)) => {
            ctx.err(
                metric,
                "threshold metric has neither `min` nor `max`; add at least one bound, such as `max: 0.8`",
            );
            return None;
        }
        (Some(Some(low)), Some(Some(high))) if low > high => {
            if let Some(at) = &raw.min {
                ctx.err(at, format!("min ({low}) must not exceed max ({high})"));
            }
            return None;
        }
        _ => {}
    }
    Some(MetricKind::Threshold {
        query: query?,
        min: min?,
        max: max?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of a rule file with one series metric of `looks`, and `top` above it.
    fn series_with_looks(top: &str, looks: u32) -> Result<super::super::RuleSet, Vec<String>> {
        let text = format!(
            "{top}metrics:\n  - {{name: cpu, kind: series, query: cpu, direction: increase, looks: {looks}}}\n"
        );
        super::super::load_str(Path::new("t.yaml"), &text)
            .map_err(|errors| errors.iter().map(|e| e.to_string()).collect())
    }

    // Pins that several series looks need a window to place their checkpoints in,
    // and that the window is a duration.
    #[test]
    fn series_looks_need_a_window() {
        let set = series_with_looks("window: 30m\n", 4).expect("window given");
        assert_eq!(set.window_secs, Some(1800));
        assert_eq!(
            series_with_looks("", 1).expect("one look").window_secs,
            None
        );
        let errors = series_with_looks("", 4).expect_err("no window");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("looks: 4 needs the rule set's `window`"),
            "{errors:?}"
        );
        let errors = series_with_looks("window: 30\n", 4).expect_err("no unit");
        assert!(errors[0].contains("window `30` needs a unit"), "{errors:?}");
    }

    // Pins the shape of names for rule sets, metrics and groups.
    #[test]
    fn plain_names() {
        assert!(is_plain_name("error-rate"));
        assert!(is_plain_name("p99"));
        assert!(!is_plain_name("Error"));
        assert!(!is_plain_name("-x"));
        assert!(!is_plain_name(""));
    }

    // Pins that a metric of a shadow rule set may not set `shadow` itself, at its line,
    // and that `shadow` is offered when misspelt.
    #[test]
    fn shadow_inside_a_shadow_set_is_refused() {
        let text = "shadow: true\nmetrics:\n  - name: up\n    kind: threshold\n    query: up\n    min: 1\n    shadow: false\n";
        let errors = super::super::load_str(Path::new("t.yaml"), text).expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 7, "{errors:?}");
        assert!(
            errors[0].message.contains("shadow rule set is refused"),
            "{errors:?}"
        );
        let misspelt =
            "metrics:\n  - {name: up, kind: threshold, query: up, min: 1, shadwo: true}\n";
        let errors =
            super::super::load_str(Path::new("t.yaml"), misspelt).expect_err("unknown field");
        assert!(
            errors[0].message.contains("did you mean `shadow`"),
            "{errors:?}"
        );
    }
}
