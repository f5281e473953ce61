//! The verdict report: pages a person reads in ten seconds.
//!
//! [`verdict_page`] shows one verdict (its word, its reason, a panel per
//! metric with both sides, the interval against the tolerated band, a latency
//! distribution's cumulative curves, both sides' curves over the window and
//! the evidence against its boundary);
//! [`history_page`] lists verdicts with filters. Both are plain HTML with
//! inline CSS and SVG, drawn only from the verdict (its `chart` data), so a
//! report renders offline and after Prometheus has dropped the data;
//! [`no_such_verdict_page`] stands in for a report that cannot be shown.
//!
//! Every page and chart is built with maud's `html!`, which escapes each value
//! it splices in: no text reaches a page unescaped unless the code says
//! `PreEscaped`, which only the constant stylesheet does.
//!
//! After the verdict, at the end of the pipe: it uses the verdict (with the
//! log's filters) and [`crate::text`], nothing upstream.

mod distribution;
mod html;
mod svg;

use maud::{Markup, html};

use crate::text as words;
use crate::verdict::log::Filter;
use crate::verdict::{Chart, Estimate, MetricOutcome, MetricReport, Outcome, SideFigures, Verdict};
use html::{back_to_history, badge, metric_outcome, page};
use svg::{Axis, IntervalStrip, Level, Line, LineChart, Scale, linear_ticks, pick_ticks};

/// Most ticks on a chart's x axis.
const X_TICKS: usize = 6;
/// Lowest e-value an evidence chart shows; smaller ones sit on its floor.
const EVIDENCE_FLOOR: f64 = 1e-3;
/// Round ratios an interval strip may label.
const RATIO_TICKS: [f64; 13] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

/// The path of a verdict's report, relative to the server's root.
pub fn report_path(id: &str) -> String {
    let segment: String = id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/verdicts/{segment}")
}

/// The link to verdict `id`'s report: under `public_url` when given, else
/// under the `host` the request was sent to, else relative to the server.
pub fn report_url(public_url: Option<&str>, host: Option<&str>, id: &str) -> String {
    let path = report_path(id);
    if let Some(base) = public_url {
        return format!("{}{path}", base.trim_end_matches('/'));
    }
    // Only a plain host[:port] is trusted to build a link; anything else stays relative.
    let plain = |h: &&str| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    };
    match host.filter(plain) {
        Some(host) => format!("http://{host}{path}"),
        None => path,
    }
}

/// The report of one verdict as a whole HTML page.
pub fn verdict_page(verdict: &Verdict) -> String {
    let window_secs = verdict.window.end_secs - verdict.window.start_secs;
    let look = if verdict.is_final {
        "final look"
    } else {
        "interim look"
    };
    let body = html! {
        (back_to_history())
        header.band.(verdict.verdict.as_str()) {
            div.verdict-word { (verdict.verdict.as_str()) }
            p.reason { (verdict.reason) }
            dl.meta {
                dt { "Deployment" } dd { (verdict.deployment) }
                dt { "Rules" } dd { (verdict.rules) }
                dt { "Canary" } dd { code { (verdict.canary) } }
                dt { "Baseline" } dd { code { (verdict.baseline) } }
                dt { "Window" }
                dd {
                    (readable_time(&verdict.window.start)) " to " (readable_time(&verdict.window.end))
                    " (" (words::duration(window_secs)) ", " (look) ")"
                }
                dt { "Score" } dd { (words::number(verdict.score)) }
                dt { "Judged at" } dd { (readable_time(&verdict.judged_at)) }
            }
        }
        (glance_table(&verdict.metrics))
        @for metric in &verdict.metrics {
            (metric_panel(metric))
        }
    };
    let title = format!(
        "{}: {} ({})",
        verdict.verdict.as_str(),
        verdict.deployment,
        verdict.rules
    );
    page(&title, body)
}

/// The page shown instead of a report when the verdict cannot be shown:
/// `message` says why (no verdict has that id, or the log cannot be read).
pub fn no_such_verdict_page(message: &str) -> String {
    let body = html! {
        (back_to_history())
        p.card { (message) }
    };
    page("canary-gate: no such verdict", body)
}

/// A side's observed value in words: a rate for counts metrics, the median latency
/// for a latency distribution, else the value.
fn side_value(metric: &MetricReport, side: &SideFigures) -> String {
    match side.value {
        Some(v) if side.bad.is_some() => words::percent(v),
        // A latency distribution's value is its median.
        Some(v) if !side.percentiles.is_empty() => words::latency(v),
        Some(v) => words::number(v),
        None if metric.kind == "threshold" => "\u{2014}".into(),
        None => "n/a".into(),
    }
}

/// A side's counts in words: "312 of 12,004", "median of 18,000 requests"
/// (a latency distribution) or "480 samples".
fn side_detail(side: &SideFigures) -> String {
    match (side.bad, side.count) {
        (Some(bad), Some(count)) => format!("{} of {}", words::count(bad), words::count(count)),
        (None, Some(count)) if !side.percentiles.is_empty() => {
            format!("median of {} requests", words::count(count))
        }
        (None, Some(count)) => format!("{} samples", words::count(count)),
        _ => String::new(),
    }
}

/// The change an estimate measures, in words: "3.05x" or "+0.021".
fn change_words(estimate: &Estimate) -> String {
    if estimate.unit == "ratio" {
        words::times(estimate.value)
    } else {
        let number = words::number(estimate.value);
        if estimate.value > 0.0 {
            format!("+{number}")
        } else {
            number
        }
    }
}

/// The tolerated band in words: "up to 1.10x", "0.90x to 1.10x", "within ±0.5".
fn tolerated_words(estimate: &Estimate) -> String {
    let (lo, hi) = (estimate.tolerated_lower, estimate.tolerated_upper);
    if estimate.unit != "ratio" {
        return format!("within \u{b1}{}", words::number(hi));
    }
    match (lo > 0.0, hi.is_finite()) {
        (true, true) => format!("{} to {}", words::times(lo), words::times(hi)),
        (false, true) => format!("up to {}", words::times(hi)),
        (true, false) => format!("at least {}", words::times(lo)),
        (false, false) => "any".into(),
    }
}

/// One row per metric: what failed and by how much, before any detail.
fn glance_table(metrics: &[MetricReport]) -> Markup {
    html! {
        section.card {
            div.scroll {
                table {
                    thead {
                        tr {
                            th { "Metric" }
                            th { "Outcome" }
                            th { "Canary vs baseline" }
                            th.wide { "Tolerated" }
                            th.wide { "Canary" }
                            th.wide { "Baseline" }
                        }
                    }
                    tbody {
                        @for metric in metrics {
                            @let (change, tolerated) = metric
                                .estimate
                                .as_ref()
                                .map(|e| (change_words(e), tolerated_words(e)))
                                .unwrap_or_default();
                            tr class=[row_class(metric)] {
                                td { a href={ "#metric-" (anchor(&metric.name)) } { (metric.label()) } }
                                td { (outcome_badge(metric)) }
                                td.num { strong.(verdict_colour(metric.outcome)) { (change) } }
                                td.num.wide { (tolerated) }
                                td.num.wide { (side_value(metric, &metric.canary)) }
                                td.num.wide { (side_value(metric, &metric.baseline)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The class of a metric's row in the glance table: `shadow` (muted: it
/// counts in no verdict, whatever its outcome), `failing` (highlighted) for
/// a live metric that failed, else none.
fn row_class(metric: &MetricReport) -> Option<&'static str> {
    match (metric.shadow, metric.outcome) {
        (true, _) => Some("shadow"),
        (false, MetricOutcome::Fail) => Some("failing"),
        (false, _) => None,
    }
}

/// A metric's outcome badge: filled for a live metric, outlined for a
/// shadow one.
fn outcome_badge(metric: &MetricReport) -> Markup {
    let (class, word) = metric_outcome(metric.outcome);
    match metric.shadow {
        true => badge(&format!("{class} shadow"), word),
        false => badge(class, word),
    }
}

/// A metric name as an element id: letters, digits and dashes only.
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The CSS class that colours a metric's estimate and curves.
fn verdict_colour(outcome: MetricOutcome) -> &'static str {
    match outcome {
        MetricOutcome::Fail => "fail",
        MetricOutcome::Pass => "pass",
        _ => "other",
    }
}

/// One metric's panel: headline, both sides, interval, charts, PromQL.
fn metric_panel(metric: &MetricReport) -> Markup {
    let colour = verdict_colour(metric.outcome);
    let mut tags = vec![metric.kind.clone()];
    if metric.critical {
        tags.push("critical".into());
    }
    if metric.shadow {
        tags.push("shadow: not counted in the verdict".into());
    }
    if !metric.group.is_empty() {
        tags.push(format!("group {}", metric.group));
    }
    html! {
        section.card id={ "metric-" (anchor(&metric.name)) } {
            div.metric-head {
                h2 { (metric.name) }
                (outcome_badge(metric))
                span.tag { (tags.join(" \u{b7} ")) }
            }
            @if let Some(estimate) = &metric.estimate {
                @let against = if estimate.unit == "ratio" {
                    "the baseline's rate"
                } else {
                    "shift from the baseline"
                };
                div.headline.(colour) {
                    (change_words(estimate)) " "
                    small { (against) "; tolerated " (tolerated_words(estimate)) }
                }
            }
            p { (metric.reason) }
            div.sides {
                @for (side_class, label, figures) in [
                    ("canary", "Canary", &metric.canary),
                    ("baseline", "Baseline", &metric.baseline),
                ] {
                    div.side.(side_class) {
                        h3 { (label) }
                        div.value { (side_value(metric, figures)) }
                        div.detail { (side_detail(figures)) }
                    }
                }
            }
            @if let Some(estimate) = &metric.estimate {
                figure.strip {
                    figcaption {
                        "Canary vs baseline: estimate and "
                        (words::number(estimate.confidence * 100.0))
                        "% interval against the tolerated band "
                        span.legend { span { span.key.tolerated {} "tolerated" } }
                    }
                    (interval_strip(metric, estimate, colour).render())
                }
            }
            @if let Some(chart) = &metric.chart {
                (charts(metric, chart))
            }
            @if !metric.queries.is_empty() {
                details {
                    summary { "PromQL sent" }
                    @for query in &metric.queries {
                        div.query-label { (wire_name(query.side)) " \u{b7} " (wire_name(query.role)) }
                        pre { code { (query.promql) } }
                    }
                }
            }
        }
    }
}

/// A value's name as the API writes it (`canary`, `bad`), or nothing.
fn wire_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The estimate and its interval against the tolerated band.
fn interval_strip(
    metric: &MetricReport,
    estimate: &Estimate,
    colour: &'static str,
) -> IntervalStrip {
    let values = [
        estimate.value,
        estimate.lower,
        estimate.upper,
        estimate.tolerated_lower,
        estimate.tolerated_upper,
    ];
    let (axis, ticks) = if estimate.unit == "ratio" {
        let usable: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lowest = usable.iter().copied().fold(1.0, f64::min);
        let highest = usable.iter().copied().fold(1.0, f64::max);
        let axis = Axis {
            min: (lowest / 1.5).max(RATIO_TICKS[0]),
            max: (highest * 1.5).min(RATIO_TICKS[RATIO_TICKS.len() - 1]),
            scale: Scale::Log,
        };
        let ticks = pick_ticks(&RATIO_TICKS, &axis, 7)
            .into_iter()
            .map(|v| (v, format!("{}x", words::number(v))))
            .collect();
        (axis, ticks)
    } else {
        let usable: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let lowest = usable.iter().copied().fold(0.0, f64::min);
        let highest = usable.iter().copied().fold(0.0, f64::max);
        let pad = ((highest - lowest) * 0.15).max(f64::EPSILON);
        let axis = Axis {
            min: lowest - pad,
            max: highest + pad,
            scale: Scale::Linear,
        };
        let ticks = [lowest, 0.0, highest]
            .into_iter()
            .map(|v| (v, words::number(v)))
            .collect();
        (axis, ticks)
    };
    IntervalStrip {
        title: format!(
            "{}: estimate {} with interval {} to {}, tolerated {}",
            metric.name,
            change_words(estimate),
            words::number(estimate.lower),
            words::number(estimate.upper),
            tolerated_words(estimate)
        ),
        axis,
        ticks,
        tolerated: (estimate.tolerated_lower, estimate.tolerated_upper),
        interval: (estimate.lower, estimate.upper),
        estimate: estimate.value,
        label: change_words(estimate),
        class: colour,
    }
}

/// The minutes since the window's start at the end of each of `points` points.
fn point_minutes(chart: &Chart, points: usize) -> Vec<f64> {
    (1..=points)
        .map(|i| (i as u64 * chart.step_secs) as f64 / 60.0)
        .collect()
}

/// Ticks along a window of `minutes`.
fn minute_ticks(minutes: f64) -> Vec<(f64, String)> {
    linear_ticks(minutes, X_TICKS)
        .into_iter()
        .map(|m| (m, format!("{} min", words::number(m))))
        .collect()
}

/// A figure: caption with a legend, then the chart.
fn figure(caption: &str, keys: &[(&str, &str)], svg: Markup) -> Markup {
    html! {
        figure {
            figcaption {
                (caption) " "
                span.legend {
                    @for (class, label) in keys {
                        span { span.key.(class) {} (label) }
                    }
                }
            }
            (svg)
        }
    }
}

/// The charts of a metric: a latency distribution's curves, both sides over
/// the window, and the evidence.
fn charts(metric: &MetricReport, chart: &Chart) -> Markup {
    html! {
        div.charts {
            @if let Some(figure) = distribution::distribution_figure(metric, chart) {
                (figure)
            }
            @if !chart.canary_total.is_empty() {
                (rates_figure(metric, chart))
            }
            @if !chart.harm.is_empty() {
                (evidence_figure(metric, chart))
            }
            @if !chart.canary_quantiles.is_empty() || !chart.baseline_quantiles.is_empty() {
                (quantiles_figure(metric, chart))
            }
        }
    }
}

/// Where and how the decision is marked on a chart over the window.
fn decision_mark(metric: &MetricReport, chart: &Chart) -> Option<(f64, String)> {
    let step = chart.decided_at_step?;
    let at_secs = (step as u64 + 1) * chart.step_secs;
    let what = match metric.outcome {
        MetricOutcome::Fail => "harm proven",
        MetricOutcome::Pass => "safety proven",
        _ => "decided",
    };
    Some((
        at_secs as f64 / 60.0,
        format!("{what} at {}", words::duration(at_secs as i64)),
    ))
}

/// Points over which the thin "recent rate" lines are taken: a twentieth of
/// the window, so they follow changes without the noise of single steps.
const RECENT_SHARE: usize = 20;

/// The rate of bad events at each point over the `width` points up to it
/// (`None`: since the start); `None` where no events were seen.
fn trailing_rates(
    bad: &[Option<f64>],
    total: &[Option<f64>],
    width: Option<usize>,
) -> Vec<Option<f64>> {
    let prefix = |values: &[Option<f64>]| -> Vec<f64> {
        std::iter::once(0.0)
            .chain(values.iter().scan(0.0, |sum, v| {
                *sum += v.unwrap_or(0.0);
                Some(*sum)
            }))
            .collect()
    };
    let (bad_sums, total_sums) = (prefix(bad), prefix(total));
    (1..total_sums.len())
        .map(|end| {
            let begin = width.map_or(0, |w| end.saturating_sub(w));
            let events = total_sums[end] - total_sums[begin];
            (events > 0.0).then(|| (bad_sums[end] - bad_sums[begin]) / events)
        })
        .collect()
}

/// Both sides' bad-event rates over the window: since the start (bold) and
/// over the recent points (thin).
fn rates_figure(metric: &MetricReport, chart: &Chart) -> Markup {
    let points = chart.canary_total.len();
    let minutes = point_minutes(chart, points);
    let recent = (points / RECENT_SHARE).max(1);
    let canary_running = trailing_rates(&chart.canary_bad, &chart.canary_total, None);
    let baseline_running = trailing_rates(&chart.baseline_bad, &chart.baseline_total, None);
    let canary_recent = trailing_rates(&chart.canary_bad, &chart.canary_total, Some(recent));
    let baseline_recent = trailing_rates(&chart.baseline_bad, &chart.baseline_total, Some(recent));
    // The running rates set the scale; the noisier recent ones may touch its top.
    let highest = canary_running
        .iter()
        .chain(&baseline_running)
        .flatten()
        .copied()
        .fold(0.0, f64::max);
    let y_max = if highest > 0.0 { highest * 1.6 } else { 0.01 };
    let x_max = minutes.last().copied().unwrap_or(1.0);
    let line = |class, values: Vec<Option<f64>>| Line {
        class,
        points: minutes
            .iter()
            .zip(values)
            .map(|(m, v)| v.map(|v| (*m, v)))
            .collect(),
    };
    let svg = LineChart {
        title: format!("{}: canary and baseline rates over the window", metric.name),
        x: Axis {
            min: 0.0,
            max: x_max,
            scale: Scale::Linear,
        },
        y: Axis {
            min: 0.0,
            max: y_max,
            scale: Scale::Linear,
        },
        x_ticks: minute_ticks(x_max),
        y_ticks: linear_ticks(y_max, 4)
            .into_iter()
            .map(|v| (v, words::percent(v)))
            .collect(),
        lines: vec![
            line("baseline step", baseline_recent),
            line("canary step", canary_recent),
            line("baseline", baseline_running),
            line("canary", canary_running),
        ],
        areas: Vec::new(),
        dots: Vec::new(),
        levels: Vec::new(),
        mark: decision_mark(metric, chart),
    }
    .render();
    let what = match chart.counts_edge_seconds {
        Some(edge) => format!(
            "Share of requests slower than {} (the edge carrying the evidence),",
            words::latency(edge)
        ),
        None if metric.kind == "latency" => "Share of slow requests".into(),
        None => "Rate of bad events".into(),
    };
    let caption = format!(
        "{what} since the start (bold) and over the last {} (thin)",
        words::duration((recent as u64 * chart.step_secs) as i64)
    );
    figure(
        &caption,
        &[("canary", "canary"), ("baseline", "baseline")],
        svg,
    )
}

/// An e-value power of ten as a tick label: `0.01`, `100`, `1e6`.
fn power_label(power: i32) -> String {
    if (-3..=4).contains(&power) {
        words::number(10f64.powi(power))
    } else {
        format!("1e{power}")
    }
}

/// The harm and safety e-values over the window against the decision boundary.
fn evidence_figure(metric: &MetricReport, chart: &Chart) -> Markup {
    let minutes = point_minutes(chart, chart.harm.len());
    let threshold = chart.threshold.filter(|t| t.is_finite() && *t > 0.0);
    let highest = chart
        .harm
        .iter()
        .chain(&chart.safety)
        .copied()
        .chain(threshold.map(|t| t * 10.0))
        .filter(|v| v.is_finite())
        .fold(10.0, f64::max);
    let top_power = highest.log10().ceil() as i32;
    let floor_power = EVIDENCE_FLOOR.log10().floor() as i32;
    let axis = Axis {
        min: 10f64.powi(floor_power),
        max: 10f64.powi(top_power),
        scale: Scale::Log,
    };
    let powers: Vec<f64> = (floor_power..=top_power).map(f64::from).collect();
    let every = powers.len().div_ceil(6).max(1);
    let y_ticks = powers
        .iter()
        .step_by(every)
        .map(|p| (10f64.powf(*p), power_label(*p as i32)))
        .collect();
    let x_max = minutes.last().copied().unwrap_or(1.0);
    let line = |class, values: &[f64]| Line {
        class,
        points: minutes
            .iter()
            .zip(values)
            .map(|(m, v)| Some((*m, *v)))
            .collect(),
    };
    let levels = threshold
        .map(|t| Level {
            value: t,
            label: format!("decision boundary 1/\u{3b1} = {}", words::number(t)),
            class: "boundary",
            label_below: false,
        })
        .into_iter()
        .collect();
    let svg = LineChart {
        title: format!(
            "{}: evidence of harm and of safety over the window",
            metric.name
        ),
        x: Axis {
            min: 0.0,
            max: x_max,
            scale: Scale::Linear,
        },
        y: axis,
        x_ticks: minute_ticks(x_max),
        y_ticks,
        lines: vec![line("safety", &chart.safety), line("harm", &chart.harm)],
        areas: Vec::new(),
        dots: Vec::new(),
        levels,
        mark: decision_mark(metric, chart),
    }
    .render();
    figure(
        "Evidence (e-value, log scale)",
        &[
            ("harm", "harm"),
            ("safety", "safety"),
            ("boundary", "boundary"),
        ],
        svg,
    )
}

/// Both sides' pooled samples, sorted: a series metric's distributions.
fn quantiles_figure(metric: &MetricReport, chart: &Chart) -> Markup {
    let as_line = |class, values: &[f64]| {
        let last = values.len().saturating_sub(1).max(1) as f64;
        Line {
            class,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| Some((100.0 * i as f64 / last, *v)))
                .collect(),
        }
    };
    let all = chart
        .canary_quantiles
        .iter()
        .chain(&chart.baseline_quantiles);
    let lowest = all.clone().copied().fold(0.0, f64::min);
    let highest = all.copied().fold(0.0, f64::max);
    let y_max = if highest > lowest {
        highest * 1.1
    } else {
        lowest + 1.0
    };
    let y_ticks = if lowest >= 0.0 {
        linear_ticks(y_max, 4)
            .into_iter()
            .map(|v| (v, words::number(v)))
            .collect()
    } else {
        vec![
            (lowest, words::number(lowest)),
            (highest, words::number(highest)),
        ]
    };
    let svg = LineChart {
        title: format!("{}: canary and baseline samples, sorted", metric.name),
        x: Axis {
            min: 0.0,
            max: 100.0,
            scale: Scale::Linear,
        },
        y: Axis {
            min: lowest,
            max: y_max,
            scale: Scale::Linear,
        },
        x_ticks: [0.0, 25.0, 50.0, 75.0, 100.0]
            .into_iter()
            .map(|p| (p, format!("{p}%")))
            .collect(),
        y_ticks,
        lines: vec![
            as_line("baseline", &chart.baseline_quantiles),
            as_line("canary", &chart.canary_quantiles),
        ],
        areas: Vec::new(),
        dots: Vec::new(),
        levels: Vec::new(),
        mark: None,
    }
    .render();
    figure(
        "Samples by percentile",
        &[("canary", "canary"), ("baseline", "baseline")],
        svg,
    )
}

/// An RFC 3339 UTC time as people read it: `2026-11-26 16:40:40 UTC`.
fn readable_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(utc) => format!("{} UTC", utc.replacen('T', " ", 1)),
        None => rfc3339.to_string(),
    }
}

/// The verdict history as a whole HTML page: the filter form, then one row per
/// verdict (newest first), each linking to its report.
pub fn history_page(verdicts: &[Verdict], filter: &Filter, unreadable: usize) -> String {
    let choices = [
        ("", "any", None),
        ("rollback", "rollback", Some(Outcome::Rollback)),
        ("inconclusive", "inconclusive", Some(Outcome::Inconclusive)),
        ("promote", "promote", Some(Outcome::Promote)),
    ];
    let body = html! {
        h1 { "canary-gate verdicts" }
        form.filters.card method="get" action="/" {
            label { "Rule set" input name="rules" value=(filter.rules.as_deref().unwrap_or("")); }
            label { "Deployment" input name="deployment" value=(filter.deployment.as_deref().unwrap_or("")); }
            label {
                "Verdict"
                select name="verdict" {
                    @for (value, word, outcome) in choices {
                        option value=(value) selected[filter.verdict == outcome] { (word) }
                    }
                }
            }
            button type="submit" { "Filter" }
            a href="/" { "clear" }
        }
        @if unreadable > 0 {
            p.muted { (unreadable) " log lines could not be read and are not listed." }
        }
        @if verdicts.is_empty() {
            p.card.muted { "No verdicts match." }
        } @else {
            section.card {
                table.history {
                    thead {
                        tr {
                            th { "Judged at" }
                            th { "Verdict" }
                            th { "Deployment" }
                            th { "Rules" }
                            th { "Reason" }
                        }
                    }
                    tbody {
                        @for verdict in verdicts {
                            @let href = report_path(&verdict.id);
                            tr {
                                td.num { a href=(href) { (readable_time(&verdict.judged_at)) } }
                                td { (badge(verdict.verdict.as_str(), verdict.verdict.as_str())) }
                                td.num { a href=(href) { (verdict.deployment) } }
                                td { (verdict.rules) }
                                td.why { (verdict.reason) }
                            }
                        }
                    }
                }
            }
        }
    };
    page("canary-gate verdicts", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Chart, Estimate};

    /// A verdict line as logged before reports existed: no `chart`, no `report_url`.
    const OLD_LINE: &str = r#"{"id":"0193-a","verdict":"promote","reason":"Promote: all good.",
        "deployment":"web-1","rules":"mixed","rules_hash":"00","canary":"{track=\"canary\"}",
        "baseline":"{track=\"baseline\"}","window":{"start":"2026-11-26T14:00:00Z",
        "end":"2026-11-26T14:30:00Z","start_secs":0,"end_secs":1800,"step_secs":15},
        "final":true,"score":100.0,"judged_at":"2026-11-26T14:30:01Z","metrics":[
        {"name":"p99","kind":"series","group":"latency","critical":false,"outcome":"pass",
         "reason":"Within tolerance.","canary":{"value":0.2,"count":120},
         "baseline":{"value":0.21,"count":120},"estimate":{"unit":"shift","value":-0.01,
         "lower":-0.03,"upper":0.01,"confidence":0.99,"tolerated_lower":-0.05,
         "tolerated_upper":0.05},"queries":[]},
        {"name":"pods","kind":"threshold","group":"capacity","critical":false,"outcome":"pass",
         "reason":"The canary's value 3 is at least 2, as required.","canary":{"value":3.0},
         "baseline":{},"queries":[]}]}"#;

    // A verdict logged before chart data existed still parses and renders, without charts.
    #[test]
    fn old_log_lines_render_without_charts() {
        let verdict: Verdict = serde_json::from_str(OLD_LINE).expect("an old line parses");
        assert!(verdict.metrics.iter().all(|m| m.chart.is_none()));
        assert_eq!(verdict.report_url, None);
        let html = verdict_page(&verdict);
        assert!(html.contains(r#"class="verdict-word">promote<"#));
        // The series metric's interval strip is drawn; no line charts without data.
        assert_eq!(html.matches(r#"<svg class="chart""#).count(), 1);
        assert!(!html.contains("<path"));
    }

    // A failing shadow metric's row and badge are muted, not highlighted like a
    // failing live metric's: the row is `shadow`, never `failing`, and its badge
    // is outlined; the stylesheet styles both apart.
    #[test]
    fn failing_shadow_rows_are_muted_not_highlighted() {
        let mut verdict: Verdict = serde_json::from_str(OLD_LINE).expect("parses");
        verdict.metrics[0].outcome = MetricOutcome::Fail;
        verdict.metrics[1].outcome = MetricOutcome::Fail;
        verdict.metrics[1].shadow = true;
        let html = verdict_page(&verdict);
        assert!(
            html.contains(r##"<tr class="failing"><td><a href="#metric-p99">p99</a></td><td><span class="badge fail">fail</span>"##),
            "{html}"
        );
        assert!(
            html.contains(r##"<tr class="shadow"><td><a href="#metric-pods">pods (shadow)</a></td><td><span class="badge fail shadow">fail</span>"##),
            "{html}"
        );
        assert_eq!(html.matches(r#"<tr class="failing">"#).count(), 1, "{html}");
        // The panel's badge is outlined too.
        assert_eq!(
            html.matches(r#"class="badge fail shadow""#).count(),
            2,
            "{html}"
        );
        for rule in ["tr.shadow td{", ".badge.shadow{", ".badge.shadow.fail{"] {
            assert!(html.contains(rule), "no `{rule}` in the stylesheet");
        }
    }

    // A series metric with chart data draws both sides' sorted samples.
    #[test]
    fn series_charts_draw_both_sides() {
        let mut verdict: Verdict = serde_json::from_str(OLD_LINE).expect("parses");
        verdict.metrics[0].chart = Some(Chart {
            step_secs: 15,
            canary_quantiles: vec![0.1, 0.2, 0.3],
            baseline_quantiles: vec![0.1, 0.2, 0.25],
            ..Chart::default()
        });
        let html = verdict_page(&verdict);
        assert!(html.contains(r#"<path class="canary" d="M"#));
        assert!(html.contains(r#"<path class="baseline" d="M"#));
    }

    // Rates since the start pool every point; recent rates only the last ones, skipping gaps.
    #[test]
    fn trailing_rates_pool_counts() {
        let bad = [Some(1.0), None, Some(3.0)];
        let total = [Some(10.0), None, Some(10.0)];
        assert_eq!(
            trailing_rates(&bad, &total, None),
            vec![Some(0.1), Some(0.1), Some(0.2)]
        );
        assert_eq!(
            trailing_rates(&bad, &total, Some(1)),
            vec![Some(0.1), None, Some(0.3)]
        );
    }

    // Ratios and shifts read as people write them in the glance table.
    #[test]
    fn changes_and_bands_in_words() {
        let estimate = |unit: &str, value, lower, upper| Estimate {
            unit: unit.into(),
            value,
            lower: 0.0,
            upper: f64::INFINITY,
            confidence: 0.99,
            tolerated_lower: lower,
            tolerated_upper: upper,
        };
        let ratio = estimate("ratio", 3.049, 0.0, 1.1);
        assert_eq!(change_words(&ratio), "3.05x");
        assert_eq!(tolerated_words(&ratio), "up to 1.10x");
        let either = estimate("ratio", 1.0, 0.9, 1.1);
        assert_eq!(tolerated_words(&either), "0.90x to 1.10x");
        let shift = estimate("shift", 0.25, -0.5, 0.5);
        assert_eq!(change_words(&shift), "+0.25");
        assert_eq!(tolerated_words(&shift), "within \u{b1}0.5");
    }

    // The report link prefers the public URL, then a plain Host, else stays relative.
    #[test]
    fn report_urls_fall_back_in_order() {
        let public = Some("https://gate.example.test/");
        assert_eq!(
            report_url(public, Some("10.0.0.1:8080"), "v1"),
            "https://gate.example.test/verdicts/v1"
        );
        assert_eq!(
            report_url(None, Some("127.0.0.1:8080"), "v1"),
            "http://127.0.0.1:8080/verdicts/v1"
        );
        assert_eq!(report_url(None, Some("evil\"><x"), "v1"), "/verdicts/v1");
        assert_eq!(report_url(None, None, "v1"), "/verdicts/v1");
    }

    /// Markup-breaking text: a tag, both quotes and an ampersand.
    const HOSTILE: &str = r#"<script>alert(1)</script>"'&"#;
    /// [`HOSTILE`] as the pages write it.
    const HOSTILE_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;";

    /// Asserts `html` holds no raw [`HOSTILE`] text and holds each of `fields`
    /// (each written after [`HOSTILE`] in the verdict) escaped.
    fn assert_escaped(html: &str, fields: &[&str]) {
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains(HOSTILE), "{html}");
        for field in fields {
            assert!(
                html.contains(&format!("{HOSTILE_ESCAPED}{field}")),
                "{field} is not shown escaped: {html}"
            );
        }
    }

    // Every text a verdict's author or the log can set (deployment, rule set,
    // reasons, selectors, metric names and groups, PromQL, id) and every filter
    // value renders escaped in the report, the history and the missing-verdict page.
    #[test]
    fn hostile_strings_render_escaped_in_every_page() {
        let mut verdict: Verdict = serde_json::from_str(OLD_LINE).expect("parses");
        let hostile = |field: &str| format!("{HOSTILE}{field}");
        verdict.id = hostile("id");
        verdict.deployment = hostile("deployment");
        verdict.rules = hostile("rules");
        verdict.reason = hostile("reason");
        verdict.canary = hostile("canary");
        verdict.baseline = hostile("baseline");
        let metric = &mut verdict.metrics[0];
        metric.name = hostile("metric");
        metric.group = hostile("group");
        metric.reason = hostile("metric-reason");
        metric.queries = serde_json::from_value(serde_json::json!([{
            "side": "canary", "role": "series", "promql": hostile("promql")
        }]))
        .expect("a query parses");
        metric.chart = Some(Chart {
            step_secs: 15,
            canary_quantiles: vec![0.1, 0.2],
            baseline_quantiles: vec![0.1, 0.3],
            ..Chart::default()
        });

        let report = verdict_page(&verdict);
        assert_escaped(
            &report,
            &[
                "deployment",
                "rules",
                "reason",
                "canary",
                "baseline",
                "metric",
                "group",
                "metric-reason",
                "promql",
            ],
        );
        // The metric's name also names its charts, for screen readers.
        assert!(report.contains(&format!(r#"aria-label="{HOSTILE_ESCAPED}metric: "#)));

        let filter = Filter {
            rules: Some(hostile("rules-filter")),
            deployment: Some(hostile("deployment-filter")),
            ..Filter::default()
        };
        let history = history_page(std::slice::from_ref(&verdict), &filter, 0);
        assert_escaped(
            &history,
            &[
                "deployment",
                "rules",
                "reason",
                "rules-filter",
                "deployment-filter",
            ],
        );
        assert!(history.contains(&format!(r#"href="{}""#, report_path(&verdict.id))));

        let missing = no_such_verdict_page(&hostile("message"));
        assert_escaped(&missing, &["message"]);
    }

    // Report paths keep ids readable and percent-encode anything else.
    #[test]
    fn report_paths_are_encoded() {
        assert_eq!(report_path("0193-ab_c.d"), "/verdicts/0193-ab_c.d");
        assert_eq!(report_path("a/b c"), "/verdicts/a%2Fb%20c");
    }
}
