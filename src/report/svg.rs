//! Inline SVG charts, drawn by hand: line charts over the canary's window and
//! the interval strip. They are built with maud's `html!` like the pages, so
//! every text and attribute is escaped; colours come from the page's CSS
//! classes, so the charts follow the page's palette.

use std::fmt::{self, Write};

use maud::{Markup, html};

/// Width of every chart in SVG units; the chart scales to its box.
const WIDTH: f64 = 480.0;
/// Height of a line chart in SVG units.
const LINE_HEIGHT: f64 = 220.0;
/// Height of the interval strip in SVG units.
const STRIP_HEIGHT: f64 = 64.0;
/// Room on either side of the interval strip, for its end labels.
const STRIP_SIDE: f64 = 24.0;
/// Room for the y axis labels on the left.
const LEFT: f64 = 58.0;
/// Room on the right, so the last x label fits.
const RIGHT: f64 = 14.0;
/// Room above the plot, for the decision label.
const TOP: f64 = 18.0;
/// Room below the plot, for the x axis labels.
const BOTTOM: f64 = 26.0;

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    /// Base-10 logarithmic; values at or below zero sit at the axis' minimum.
    Log,
}

/// One axis: its range and scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub scale: Scale,
}

impl Axis {
    /// Where `value` lies between the ends, from 0 to 1 (clamped).
    fn fraction(&self, value: f64) -> f64 {
        let (min, max, value) = match self.scale {
            Scale::Linear => (self.min, self.max, value),
            Scale::Log => (
                self.min.log10(),
                self.max.log10(),
                value.max(self.min).log10(),
            ),
        };
        if max > min {
            ((value - min) / (max - min)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }
}

/// A line of a chart: its points (`None` breaks the line) and its CSS class.
pub struct Line {
    pub class: &'static str,
    pub points: Vec<Option<(f64, f64)>>,
}

/// A horizontal reference line, such as a decision boundary.
pub struct Level {
    pub value: f64,
    pub label: String,
    pub class: &'static str,
    /// Write the label below the line rather than above it, clear of a level just above.
    pub label_below: bool,
}

/// A shaded region: a closed outline through its points, styled by its CSS class.
pub struct Area {
    pub class: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A marked point, such as a percentile on a curve, with its name for hover
/// and screen readers.
pub struct Dot {
    pub class: &'static str,
    pub at: (f64, f64),
    pub label: String,
}

/// A line chart, over the canary's window or over latency.
pub struct LineChart {
    /// What the chart shows, for screen readers.
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub x_ticks: Vec<(f64, String)>,
    pub y_ticks: Vec<(f64, String)>,
    pub lines: Vec<Line>,
    /// Regions shaded beneath the lines.
    pub areas: Vec<Area>,
    /// Points marked above the lines.
    pub dots: Vec<Dot>,
    pub levels: Vec<Level>,
    /// A vertical mark, such as the moment of decision, with its label.
    pub mark: Option<(f64, String)>,
}

/// A coordinate written with one decimal: finer than a pixel, and short.
struct Coord(f64);

impl fmt::Display for Coord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

/// An inline `<svg>` chart `height` units tall around `content`, named `title`
/// for screen readers.
///
/// Shapes are written with end tags (`<line ...></line>`): maud writes void
/// elements the HTML way, without `/>`, and inside an `<svg>` an unclosed
/// shape would swallow the elements after it.
fn chart_svg(height: f64, title: &str, content: Markup) -> Markup {
    html! {
        svg.chart viewBox=(format_args!("0 0 {WIDTH} {height}")) role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            (content)
        }
    }
}

impl LineChart {
    fn px(&self, x: f64) -> f64 {
        LEFT + self.x.fraction(x) * (WIDTH - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        LINE_HEIGHT - BOTTOM - self.y.fraction(y) * (LINE_HEIGHT - TOP - BOTTOM)
    }

    /// The chart as an inline `<svg>` element.
    pub fn render(&self) -> Markup {
        let (left, right) = (LEFT, WIDTH - RIGHT);
        let (top, bottom) = (TOP, LINE_HEIGHT - BOTTOM);
        let content = html! {
            @for (value, label) in &self.y_ticks {
                @let y = self.py(*value);
                line.grid x1=(left) x2=(right) y1=(Coord(y)) y2=(Coord(y)) {}
                text.tick x=(Coord(left - 6.0)) y=(Coord(y + 4.0)) text-anchor="end" { (label) }
            }
            @for (value, label) in &self.x_ticks {
                @let x = self.px(*value);
                line.axis x1=(Coord(x)) x2=(Coord(x)) y1=(bottom) y2=(bottom + 4.0) {}
                text.tick x=(Coord(x)) y=(bottom + 18.0) text-anchor="middle" { (label) }
            }
            line.axis x1=(left) x2=(right) y1=(bottom) y2=(bottom) {}
            @for area in &self.areas {
                @let outline = self.outline(&area.points);
                @if !outline.is_empty() {
                    path.(area.class) d=(outline) {}
                }
            }
            @for level in &self.levels {
                @let y = self.py(level.value);
                line.(level.class) x1=(left) x2=(right) y1=(Coord(y)) y2=(Coord(y)) {}
                @let label_y = if level.label_below { y + 15.0 } else { y - 5.0 };
                text.level-label x=(right - 2.0) y=(Coord(label_y)) text-anchor="end" { (level.label) }
            }
            @for line in &self.lines {
                @let path = self.path(&line.points);
                @if !path.is_empty() {
                    path.(line.class) d=(path) {}
                }
            }
            @for dot in &self.dots {
                @if dot.at.0.is_finite() && dot.at.1.is_finite() {
                    circle.(dot.class) cx=(Coord(self.px(dot.at.0))) cy=(Coord(self.py(dot.at.1))) r="4.5" {
                        title { (dot.label) }
                    }
                }
            }
            @if let Some((at, label)) = &self.mark {
                @let x = self.px(*at);
                @let anchor = if x > WIDTH * 0.7 { "end" } else { "start" };
                @let label_x = if anchor == "end" { x - 4.0 } else { x + 4.0 };
                line.mark x1=(Coord(x)) x2=(Coord(x)) y1=(top) y2=(bottom) {}
                text.mark-label x=(Coord(label_x)) y=(top - 5.0) text-anchor=(anchor) { (label) }
            }
        };
        chart_svg(LINE_HEIGHT, &self.title, content)
    }

    /// SVG path data of a closed outline through `points` (finite ones only).
    fn outline(&self, points: &[(f64, f64)]) -> String {
        let finite: Vec<Option<(f64, f64)>> = points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|point| Some(*point))
            .collect();
        if finite.len() < 3 {
            return String::new();
        }
        format!("{}Z", self.path(&finite))
    }

    /// SVG path data through the points, starting afresh after each gap.
    fn path(&self, points: &[Option<(f64, f64)>]) -> String {
        let mut d = String::new();
        let mut pen_down = false;
        for point in points {
            match point {
                Some((x, y)) if x.is_finite() && y.is_finite() => {
                    let command = if pen_down { 'L' } else { 'M' };
                    let _ = write!(d, "{command}{:.1},{:.1}", self.px(*x), self.py(*y));
                    pen_down = true;
                }
                _ => pen_down = false,
            }
        }
        d
    }
}

/// An estimate and its interval drawn against the band of tolerated values.
pub struct IntervalStrip {
    /// What the strip shows, for screen readers.
    pub title: String,
    pub axis: Axis,
    pub ticks: Vec<(f64, String)>,
    pub tolerated: (f64, f64),
    pub interval: (f64, f64),
    pub estimate: f64,
    /// The estimate in words, written above its dot.
    pub label: String,
    /// CSS class of the interval: its colour says pass or fail.
    pub class: &'static str,
}

impl IntervalStrip {
    fn px(&self, value: f64) -> f64 {
        let clamped = if value.is_nan() { self.axis.min } else { value };
        STRIP_SIDE + self.axis.fraction(clamped) * (WIDTH - 2.0 * STRIP_SIDE)
    }

    /// The strip as an inline `<svg>` element.
    pub fn render(&self) -> Markup {
        let middle = 30.0;
        let (band_lo, band_hi) = (self.px(self.tolerated.0), self.px(self.tolerated.1));
        let axis_y = STRIP_HEIGHT - 18.0;
        let (lo, hi, dot) = (
            self.px(self.interval.0),
            self.px(self.interval.1),
            self.px(self.estimate),
        );
        let (end_top, end_bottom) = (middle - 7.0, middle + 7.0);
        let class = self.class;
        let content = html! {
            rect.band x=(Coord(band_lo)) y=(Coord(middle - 10.0)) width=(Coord((band_hi - band_lo).max(1.0))) height="20" {}
            @for (value, label) in &self.ticks {
                @let x = self.px(*value);
                line.axis x1=(Coord(x)) x2=(Coord(x)) y1=(Coord(axis_y - 4.0)) y2=(Coord(axis_y)) {}
                text.tick x=(Coord(x)) y=(Coord(axis_y + 14.0)) text-anchor="middle" { (label) }
            }
            line.interval.(class) x1=(Coord(lo)) x2=(Coord(hi)) y1=(middle) y2=(middle) {}
            line.interval-end.(class) x1=(Coord(lo)) x2=(Coord(lo)) y1=(end_top) y2=(end_bottom) {}
            line.interval-end.(class) x1=(Coord(hi)) x2=(Coord(hi)) y1=(end_top) y2=(end_bottom) {}
            circle.estimate.(class) cx=(Coord(dot)) cy=(middle) r="5" {}
            text.estimate-label x=(Coord(dot)) y=(middle - 12.0) text-anchor="middle" { (self.label) }
        };
        chart_svg(STRIP_HEIGHT, &self.title, content)
    }
}

/// Up to `most` evenly spread ticks from `candidates` that fall within `axis`.
pub fn pick_ticks(candidates: &[f64], axis: &Axis, most: usize) -> Vec<f64> {
    let inside: Vec<f64> = candidates
        .iter()
        .copied()
        .filter(|v| *v >= axis.min && *v <= axis.max)
        .collect();
    let every = inside.len().div_ceil(most.max(1)).max(1);
    inside.into_iter().step_by(every).collect()
}

/// Round tick values for a linear axis from 0 to `max`: 1, 2 or 5 times a power of ten.
pub fn linear_ticks(max: f64, most: usize) -> Vec<f64> {
    if !(max.is_finite() && max > 0.0) {
        return vec![0.0];
    }
    let rough = max / most.max(1) as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| max / s <= most as f64)
        .unwrap_or(10.0 * power);
    (0..=most)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= max * 1.0001)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linear ticks are round numbers that cover the range without exceeding the count asked for.
    #[test]
    fn linear_ticks_are_round() {
        assert_eq!(linear_ticks(0.035, 4), vec![0.0, 0.01, 0.02, 0.03]);
        assert_eq!(
            linear_ticks(30.0, 6),
            vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(linear_ticks(f64::NAN, 4), vec![0.0]);
    }

    // A gap in the data lifts the pen instead of drawing a line through it.
    #[test]
    fn gaps_break_lines() {
        let chart = LineChart {
            title: "t".into(),
            x: Axis {
                min: 0.0,
                max: 2.0,
                scale: Scale::Linear,
            },
            y: Axis {
                min: 0.0,
                max: 1.0,
                scale: Scale::Linear,
            },
            x_ticks: vec![],
            y_ticks: vec![],
            lines: vec![],
            areas: vec![],
            dots: vec![],
            levels: vec![],
            mark: None,
        };
        let d = chart.path(&[Some((0.0, 0.0)), None, Some((1.0, 1.0)), Some((2.0, 1.0))]);
        assert_eq!(d.matches('M').count(), 2);
        assert_eq!(d.matches('L').count(), 1);
    }

    // Titles and labels are escaped like every other text of the page.
    #[test]
    fn chart_text_is_escaped() {
        let strip = IntervalStrip {
            title: "<b>".into(),
            axis: Axis {
                min: 0.5,
                max: 4.0,
                scale: Scale::Log,
            },
            ticks: vec![(1.0, "1x".into())],
            tolerated: (0.5, 1.0),
            interval: (2.0, 3.0),
            estimate: 2.5,
            label: "<i>".into(),
            class: "fail",
        };
        let svg = strip.render().into_string();
        assert!(!svg.contains("<b>") && !svg.contains("<i>"), "{svg}");
        assert!(svg.contains(r#"aria-label="&lt;b&gt;""#), "{svg}");
    }
}
