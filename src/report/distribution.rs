//! A latency distribution's figure: both sides' cumulative latency curves
//! from their pooled bucket counts, one over the other on a log-latency axis,
//! with p50/p90/p99 marked, the region where the canary is slower shaded, and
//! the percentiles as a table beside it for readers who cannot see the chart.

use maud::{Markup, html};

use super::svg::{Area, Axis, Dot, Level, Line, LineChart, Scale, pick_ticks};
use crate::text as words;
use crate::verdict::{Chart, MetricReport, Percentile, SideFigures};

/// Points drawn inside each bucket: the straight line that `histogram_quantile`
/// assumes between two edges bends on a log axis, and this many points follow it.
const POINTS_PER_BUCKET: usize = 12;
/// Most bucket edges labelled on the x axis; every edge gets a tick.
const EDGE_LABELS: usize = 5;
/// Share of the axis' decades added left of the first edge and right of the
/// last (where `+Inf` is drawn), and the least added, in decades.
const MARGIN_SHARE: f64 = 0.15;
const MARGIN_DECADES: f64 = 0.3;
/// Gaps between the curves smaller than this share of requests are not
/// shaded: they are rounding, not a slower canary.
const SHADE_FLOOR: f64 = 1e-9;
/// The percentiles the figure marks; the judge quotes the same ones.
const MARKED: [(f64, &str); 3] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")];

/// One side's pooled distribution as the chart records it.
struct Cumulative<'a> {
    /// Finite bucket edges in seconds, ascending.
    edges: &'a [f64],
    /// Requests at or below each edge, then all requests.
    buckets: &'a [f64],
}

impl Cumulative<'_> {
    /// The side's buckets, if they fit the edges and hold requests.
    fn new<'a>(edges: &'a [f64], buckets: &'a [f64]) -> Option<Cumulative<'a>> {
        let usable = buckets.len() == edges.len() + 1
            && buckets.iter().all(|v| v.is_finite() && *v >= 0.0)
            && buckets.last().is_some_and(|total| *total > 0.0);
        usable.then_some(Cumulative { edges, buckets })
    }

    fn total(&self) -> f64 {
        self.buckets[self.edges.len()]
    }

    /// Share of requests at or below `seconds`, placed linearly inside its
    /// bucket (from 0 in the first) as `histogram_quantile` places them.
    fn share_at_or_below(&self, seconds: f64) -> f64 {
        let Some(bucket) = self.edges.iter().position(|edge| *edge >= seconds) else {
            return self.buckets[self.edges.len() - 1] / self.total();
        };
        let (low_edge, low_count) = match bucket {
            0 => (0.0, 0.0),
            i => (self.edges[i - 1], self.buckets[i - 1]),
        };
        let width = self.edges[bucket] - low_edge;
        let along = if width > 0.0 {
            ((seconds - low_edge) / width).clamp(0.0, 1.0)
        } else {
            1.0
        };
        (low_count + (self.buckets[bucket] - low_count) * along) / self.total()
    }

    /// Whether quantile `q` lies in the `+Inf` bucket, beyond every edge.
    fn beyond_edges(&self, q: f64) -> bool {
        self.buckets[self.edges.len() - 1] < q * self.total()
    }
}

/// The latencies the curves are drawn through: from the axis' start, a run of
/// points inside each bucket up to the largest edge.
fn sample_seconds(edges: &[f64], from: f64) -> Vec<f64> {
    let mut seconds = vec![from];
    let mut low = from;
    for &edge in edges.iter().filter(|edge| **edge > from) {
        let ratio = edge / low;
        seconds.extend(
            (1..=POINTS_PER_BUCKET).map(|i| low * ratio.powf(i as f64 / POINTS_PER_BUCKET as f64)),
        );
        low = edge;
    }
    seconds
}

/// The shaded regions where `canary` lies below `baseline` (both drawn through
/// the same x values, on a log x axis): each closed along the baseline, back
/// along the canary, with the crossing points found on the straight segments
/// the chart draws.
fn worse_regions(xs: &[f64], canary: &[f64], baseline: &[f64]) -> Vec<Area> {
    let gap = |i: usize| baseline[i] - canary[i];
    let crossing = |i: usize| -> (f64, f64) {
        let (before, after) = (gap(i - 1), gap(i));
        let t = if before != after {
            (before / (before - after)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let x = xs[i - 1] * (xs[i] / xs[i - 1]).powf(t);
        (x, canary[i - 1] + t * (canary[i] - canary[i - 1]))
    };
    let mut areas = Vec::new();
    let mut upper: Vec<(f64, f64)> = Vec::new();
    let mut lower: Vec<(f64, f64)> = Vec::new();
    let mut close = |upper: &mut Vec<(f64, f64)>, lower: &mut Vec<(f64, f64)>| {
        let mut outline = std::mem::take(upper);
        outline.extend(std::mem::take(lower).into_iter().rev());
        if outline.len() >= 3 {
            areas.push(Area {
                class: "worse",
                points: outline,
            });
        }
    };
    for i in 0..xs.len() {
        if gap(i) > SHADE_FLOOR {
            if upper.is_empty() && i > 0 {
                upper.push(crossing(i));
            }
            upper.push((xs[i], baseline[i]));
            lower.push((xs[i], canary[i]));
        } else if !upper.is_empty() {
            upper.push(crossing(i));
            close(&mut upper, &mut lower);
        }
    }
    close(&mut upper, &mut lower);
    areas
}

/// A percentile in words for the table: `52 ms`, or `above 10 s` in `+Inf`.
fn percentile_words(percentile: Option<&Percentile>, beyond: bool) -> String {
    match percentile {
        Some(p) if beyond => format!("above {}", words::latency(p.seconds)),
        Some(p) => words::latency(p.seconds),
        None => "n/a".into(),
    }
}

/// A percentile's interval at bucket edges, in words: "25 ms to 50 ms";
/// nothing for a log line written before intervals existed.
fn interval_words(percentile: Option<&Percentile>) -> Option<String> {
    let p = percentile.filter(|p| p.confidence > 0.0)?;
    let upper = p
        .upper
        .map_or_else(|| "unbounded".to_string(), words::latency);
    // A no-break space keeps each figure with its unit when the cell wraps.
    let lower = words::latency(p.lower).replace(' ', "\u{a0}");
    Some(format!("{lower} to {}", upper.replace(' ', "\u{a0}")))
}

/// The level of a metric's percentile intervals (the lower of the two
/// sides'), if it has any.
fn interval_confidence(metric: &MetricReport) -> Option<f64> {
    let level = metric
        .canary
        .percentiles
        .iter()
        .chain(&metric.baseline.percentiles)
        .map(|p| p.confidence)
        .fold(f64::INFINITY, f64::min);
    (level.is_finite() && level > 0.0).then_some(level)
}

/// The canary's percentile against the baseline's, in words: `+30%`.
fn change_words(canary: Option<&Percentile>, baseline: Option<&Percentile>) -> String {
    match (canary, baseline) {
        (Some(c), Some(b)) if b.seconds > 0.0 => {
            let change = c.seconds / b.seconds - 1.0;
            let sign = if change > 0.0 { "+" } else { "" };
            format!("{sign}{}", words::percent(change))
        }
        _ => "n/a".into(),
    }
}

/// A side's recorded percentile at `q`, if the judge quoted it.
fn quoted(side: &SideFigures, q: f64) -> Option<&Percentile> {
    side.percentiles.iter().find(|p| p.quantile == q)
}

/// The figure of a latency distribution metric; nothing when the chart does
/// not hold usable buckets for both sides.
pub(super) fn distribution_figure(metric: &MetricReport, chart: &Chart) -> Option<Markup> {
    let edges = chart.bucket_edges_seconds.as_slice();
    let canary = Cumulative::new(edges, &chart.canary_buckets)?;
    let baseline = Cumulative::new(edges, &chart.baseline_buckets)?;
    let positive: Vec<f64> = edges.iter().copied().filter(|e| *e > 0.0).collect();
    let (first, last) = (*positive.first()?, *positive.last()?);
    let decades = (last / first).log10();
    let margin = (decades * MARGIN_SHARE).max(MARGIN_DECADES);
    let (from, infinity) = (first / 10f64.powf(margin), last * 10f64.powf(margin));

    // Both curves through the same latencies, then on to +Inf where every
    // request is counted.
    let mut xs = sample_seconds(&positive, from);
    let canary_ys: Vec<f64> = xs.iter().map(|x| canary.share_at_or_below(*x)).collect();
    let baseline_ys: Vec<f64> = xs.iter().map(|x| baseline.share_at_or_below(*x)).collect();
    let (mut canary_all, mut baseline_all) = (canary_ys.clone(), baseline_ys.clone());
    xs.push(infinity);
    canary_all.push(1.0);
    baseline_all.push(1.0);
    let areas = worse_regions(&xs, &canary_all, &baseline_all);
    let curve = |class, ys: &[f64]| Line {
        class,
        points: xs.iter().zip(ys).map(|(x, y)| Some((*x, *y))).collect(),
    };
    let tail = |class, side: &Cumulative| Line {
        class,
        points: vec![
            Some((last, side.share_at_or_below(last))),
            Some((infinity, 1.0)),
        ],
    };
    // A percentile beyond the largest edge sits on the dashed line to +Inf.
    let dot = |class, side: &Cumulative, figures: &SideFigures, (q, name): (f64, &str)| {
        let percentile = quoted(figures, q)?;
        let at = if side.beyond_edges(q) {
            let at_last = side.share_at_or_below(last);
            let along = ((q - at_last) / (1.0 - at_last)).clamp(0.0, 1.0);
            (last * (infinity / last).powf(along), q)
        } else {
            (percentile.seconds, q)
        };
        let who = if class == "pct canary" {
            "canary"
        } else {
            "baseline"
        };
        Some(Dot {
            class,
            at,
            label: format!(
                "{who} {name}: {}",
                percentile_words(Some(percentile), side.beyond_edges(q))
            ),
        })
    };
    let dots: Vec<Dot> = MARKED
        .iter()
        .filter_map(|&mark| dot("pct baseline", &baseline, &metric.baseline, mark))
        .chain(
            MARKED
                .iter()
                .filter_map(|&mark| dot("pct canary", &canary, &metric.canary, mark)),
        )
        .collect();
    let x = Axis {
        min: from,
        max: infinity,
        scale: Scale::Log,
    };
    let labelled = pick_ticks(&positive, &x, EDGE_LABELS);
    let mut x_ticks: Vec<(f64, String)> = positive
        .iter()
        .map(|edge| {
            let label = if labelled.contains(edge) {
                words::latency(*edge)
            } else {
                String::new()
            };
            (*edge, label)
        })
        .collect();
    x_ticks.push((infinity, "+Inf".into()));
    let svg = LineChart {
        title: format!(
            "{}: cumulative latency of the canary and the baseline, with p50, p90 and p99 marked",
            metric.name
        ),
        x,
        y: Axis {
            min: 0.0,
            max: 1.0,
            scale: Scale::Linear,
        },
        x_ticks,
        y_ticks: [0.0, 0.25, 0.5, 0.75, 1.0]
            .into_iter()
            .map(|share| (share, words::percent(share).replace(".0%", "%")))
            .collect(),
        lines: vec![
            tail("baseline beyond", &baseline),
            tail("canary beyond", &canary),
            curve("baseline cdf", &baseline_ys),
            curve("canary cdf", &canary_ys),
        ],
        levels: MARKED
            .iter()
            .map(|(q, name)| Level {
                value: *q,
                label: (*name).into(),
                class: "guide",
                // p99's label takes the room above p90's line.
                label_below: *q == 0.9,
            })
            .collect(),
        dots,
        areas,
        mark: None,
    };
    let shaded = !svg.areas.is_empty();
    let beyond = words::latency(last);
    Some(html! {
        figure.distribution {
            div {
                figcaption {
                    "Latency, cumulative: share of requests at or below each latency, pooled over the window "
                    span.legend {
                        span { span.key.canary {} "canary" }
                        span { span.key.baseline {} "baseline" }
                        span { span.key.worse {} "canary slower" }
                        span { span.key.pct {} "p50, p90, p99" }
                    }
                }
                (svg.render())
                p.note {
                    @if shaded {
                        "Shaded where the canary's curve lies below the baseline's: there a larger share of the canary's requests is slower than that latency. "
                    } @else {
                        "Nowhere does the canary's curve lie below the baseline's, so nothing is shaded: at no latency is a larger share of its requests slower. "
                    }
                    "Latency on a log scale, ticks at the histogram's bucket edges. Between edges the curves are straight lines, as histogram_quantile places values inside a bucket; requests slower than " (beyond) " (the +Inf bucket) are drawn dashed on to +Inf."
                }
            }
            div.scroll {
                table.percentiles {
                    caption {
                        @if let Some(level) = interval_confidence(metric) {
                            "Percentiles, placed inside their bucket by linear interpolation; below each, bounds at bucket edges (a side's three hold together, at every look, with " (words::round_percent(level)) " confidence)"
                        } @else {
                            "Percentiles, placed inside their bucket by linear interpolation (estimates without an interval)"
                        }
                    }
                    thead {
                        tr { th { "Percentile" } th { "Canary" } th { "Baseline" } th { "Change" } }
                    }
                    tbody {
                        @for (q, name) in MARKED {
                            @let (c, b) = (quoted(&metric.canary, q), quoted(&metric.baseline, q));
                            tr {
                                th scope="row" { (name) }
                                td.num {
                                    (percentile_words(c, canary.beyond_edges(q)))
                                    @if let Some(interval) = interval_words(c) { small.interval { (interval) } }
                                }
                                td.num {
                                    (percentile_words(b, baseline.beyond_edges(q)))
                                    @if let Some(interval) = interval_words(b) { small.interval { (interval) } }
                                }
                                td.num { (change_words(c, b)) }
                            }
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::MetricOutcome;

    /// A distribution metric whose sides have these cumulative buckets over
    /// edges 25, 50, 100 and 250 ms, with percentiles from the buckets.
    fn metric(canary: &[f64], baseline: &[f64]) -> MetricReport {
        let edges = vec![0.025, 0.05, 0.1, 0.25];
        let figures = |buckets: &[f64]| SideFigures {
            percentiles: MARKED
                .iter()
                .map(|(q, _)| Percentile {
                    quantile: *q,
                    seconds: Cumulative::new(&edges, buckets)
                        .map(|side| {
                            // The first edge at or above the quantile's rank: enough to place a dot.
                            let rank = q * side.total();
                            let at = buckets.iter().position(|c| *c >= rank).unwrap_or(0);
                            edges[at.min(edges.len() - 1)]
                        })
                        .unwrap_or(f64::NAN),
                    lower: 0.0,
                    upper: None,
                    confidence: 0.0,
                })
                .collect(),
            ..SideFigures::default()
        };
        MetricReport {
            name: "latency".into(),
            kind: "latency".into(),
            group: String::new(),
            critical: false,
            shadow: false,
            outcome: MetricOutcome::Fail,
            reason: String::new(),
            canary: figures(canary),
            baseline: figures(baseline),
            estimate: None,
            evidence: None,
            queries: Vec::new(),
            chart: Some(Chart {
                bucket_edges_seconds: edges.clone(),
                canary_buckets: canary.to_vec(),
                baseline_buckets: baseline.to_vec(),
                ..Chart::default()
            }),
        }
    }

    fn render(metric: &MetricReport) -> String {
        let chart = metric.chart.as_ref().expect("chart");
        distribution_figure(metric, chart)
            .expect("a figure")
            .into_string()
    }

    const BASELINE: [f64; 5] = [30.0, 90.0, 140.0, 150.0, 150.0];

    // A slower canary gets both curves, six percentile marks and a shaded region.
    #[test]
    fn a_slower_canary_is_shaded() {
        let html = render(&metric(&[10.0, 50.0, 120.0, 150.0, 150.0], &BASELINE));
        assert!(html.contains(r#"class="canary cdf""#), "{html}");
        assert!(html.contains(r#"class="baseline cdf""#), "{html}");
        assert_eq!(html.matches(r#"<circle class="pct "#).count(), 6, "{html}");
        assert_eq!(html.matches(r#"class="worse""#).count(), 1, "{html}");
        assert!(html.contains("<table class=\"percentiles\""), "{html}");
    }

    // A canary like its baseline, or a faster one, is shaded nowhere.
    #[test]
    fn a_canary_no_slower_is_not_shaded() {
        for canary in [BASELINE, [60.0, 120.0, 150.0, 150.0, 150.0]] {
            let html = render(&metric(&canary, &BASELINE));
            assert!(!html.contains(r#"class="worse""#), "{html}");
            assert!(html.contains("nothing is shaded"), "{html}");
        }
    }

    // Curves that cross shade only the part where the canary is slower, and
    // requests beyond the last edge put the canary's p99 above it.
    #[test]
    fn crossing_curves_shade_only_the_slower_part() {
        let html = render(&metric(&[60.0, 100.0, 120.0, 140.0, 150.0], &BASELINE));
        assert_eq!(html.matches(r#"class="worse""#).count(), 1, "{html}");
        assert!(html.contains("above 250 ms"), "{html}");
        let regions = worse_regions(&[1.0, 2.0, 4.0], &[0.5, 0.5, 0.9], &[0.4, 0.6, 0.8]);
        assert_eq!(regions.len(), 1);
        // The region starts and ends where the lines cross, between the samples.
        let outline = &regions[0].points;
        assert!(outline[0].0 > 1.0 && outline[0].0 < 2.0, "{:?}", outline);
    }

    // Buckets that do not fit the edges draw no figure rather than a wrong one.
    #[test]
    fn unusable_buckets_draw_nothing() {
        let mut broken = metric(&BASELINE, &BASELINE);
        if let Some(chart) = broken.chart.as_mut() {
            chart.canary_buckets.pop();
        }
        let chart = broken.chart.as_ref().expect("chart");
        assert!(distribution_figure(&broken, chart).is_none());
    }
}
