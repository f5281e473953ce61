//! An in-memory metric source: series held in the process, queried with the
//! very PromQL the plan sends to Prometheus, matchers injected. For rule tests
//! (`canary-gate test`) and anything else that must run offline.
//!
//! [`MemorySource`] answers the subset of PromQL rule files use, with
//! Prometheus's semantics (see [`eval`] for the subset and the source of each
//! rule), and refuses anything else with an error that names the construct
//! ([`MemorySource::supports`]). Series are given as samples or in the
//! expanding notation of `promtool test rules` ([`notation`]).

mod eval;
pub mod notation;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use eval::parse;
pub use eval::{EvalError, LOOKBACK_DELTA_MS, STALE_NAN_BITS, StoredSeries, is_stale};
pub use notation::{SeriesValue, parse_series};

use super::contract::{MetricSource, RangeSpec, Series, SourceError};

/// A [`MetricSource`] over series held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    series: Arc<Vec<StoredSeries>>,
}

impl MemorySource {
    /// A source holding `series`. Each series' samples are sorted by time;
    /// a later sample at the same time replaces an earlier one.
    pub fn new(series: Vec<StoredSeries>) -> Self {
        let series = series
            .into_iter()
            .map(|mut one| {
                one.samples.sort_by_key(|&(t, _)| t);
                // Keep the last of equal times.
                one.samples.reverse();
                one.samples.dedup_by_key(|&mut (t, _)| t);
                one.samples.reverse();
                one
            })
            .collect();
        MemorySource {
            series: Arc::new(series),
        }
    }

    /// The series stored, in the order given.
    pub fn series(&self) -> &[StoredSeries] {
        &self.series
    }

    /// Whether `promql` parses and stays inside the subset this source
    /// evaluates; the error names the first construct outside it.
    pub fn supports(promql: &str) -> Result<(), EvalError> {
        let expr = parse(promql)?;
        eval::check(&expr)
    }

    fn evaluate(
        &self,
        promql: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<Series>, SourceError> {
        let expr = parse(promql).map_err(source_error)?;
        let answer =
            eval::range(&self.series, &expr, start_ms, end_ms, step_ms).map_err(source_error)?;
        Ok(answer
            .into_iter()
            .map(|(labels, points)| Series {
                labels,
                points: points
                    .into_iter()
                    .map(|(t, v)| (t.div_euclid(1000), v))
                    .collect(),
            })
            .collect())
    }
}

/// A series from values in the expanding notation: value `k` at
/// `start_ms + k * interval_ms`; missing values have no sample, `stale`
/// becomes a staleness marker.
pub fn series_from_values(
    labels: BTreeMap<String, String>,
    values: &[SeriesValue],
    start_ms: i64,
    interval_ms: i64,
) -> StoredSeries {
    let samples = values
        .iter()
        .enumerate()
        .filter_map(|(k, value)| {
            let t = start_ms + k as i64 * interval_ms;
            match value {
                SeriesValue::Value(v) => Some((t, *v)),
                SeriesValue::Stale => Some((t, f64::from_bits(STALE_NAN_BITS))),
                SeriesValue::Missing => None,
            }
        })
        .collect();
    StoredSeries { labels, samples }
}

/// Refusals and failures as a source reports them, in Prometheus's own error kinds.
fn source_error(error: EvalError) -> SourceError {
    let kind = match &error {
        EvalError::Unsupported(_) => "unsupported",
        EvalError::Parse(_) => "bad_data",
        EvalError::Execution(_) => "execution",
    };
    SourceError::Query {
        kind: kind.to_string(),
        message: error.to_string(),
    }
}

impl MetricSource for MemorySource {
    fn range_query(
        &self,
        promql: &str,
        range: RangeSpec,
    ) -> impl Future<Output = Result<Vec<Series>, SourceError>> + Send {
        let answer = self.evaluate(
            promql,
            range.start_secs * 1000,
            range.end_secs * 1000,
            range.step_secs.max(1) as i64 * 1000,
        );
        std::future::ready(answer)
    }

    fn instant_query(
        &self,
        promql: &str,
        at_secs: i64,
    ) -> impl Future<Output = Result<Vec<Series>, SourceError>> + Send {
        std::future::ready(self.evaluate(promql, at_secs * 1000, at_secs * 1000, 1000))
    }

    fn ready(&self) -> impl Future<Output = Result<(), SourceError>> + Send {
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series named `name` with `labels`, its values in the expanding notation every 15 s from 0.
    fn series(name: &str, labels: &[(&str, &str)], values: &str) -> StoredSeries {
        let mut all: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert("__name__".into(), name.into());
        let values = notation::expand(values).expect("test values expand");
        series_from_values(all, &values, 0, 15_000)
    }

    /// The values of `promql` at `at_secs`, by the labels' `pod` (or the whole label set).
    fn at(source: &MemorySource, promql: &str, at_secs: i64) -> Vec<(String, f64)> {
        let answer = source
            .evaluate(promql, at_secs * 1000, at_secs * 1000, 1000)
            .unwrap_or_else(|e| panic!("{promql}: {e}"));
        answer
            .into_iter()
            .map(|s| {
                let name = s
                    .labels
                    .get("pod")
                    .cloned()
                    .unwrap_or_else(|| format!("{:?}", s.labels));
                (name, s.points[0].1)
            })
            .collect()
    }

    // Pins the lookback: a sample answers for 5 minutes, both ends included, and a
    // staleness marker ends the series at once.
    #[test]
    fn instant_selectors_look_back_five_minutes_until_stale() {
        let source = MemorySource::new(vec![
            series("up", &[("pod", "a")], "1 _x40"),
            series("up", &[("pod", "b")], "1 1 stale 1"),
        ]);
        assert_eq!(at(&source, r#"up{pod="a"}"#, 300), [("a".to_string(), 1.0)]);
        assert!(at(&source, r#"up{pod="a"}"#, 301).is_empty());
        assert_eq!(at(&source, r#"up{pod="b"}"#, 29), [("b".to_string(), 1.0)]);
        assert!(at(&source, r#"up{pod="b"}"#, 30).is_empty());
        assert!(at(&source, r#"up{pod="b"}"#, 44).is_empty());
        assert_eq!(at(&source, r#"up{pod="b"}"#, 45), [("b".to_string(), 1.0)]);
        // offset looks at the past.
        assert_eq!(
            at(&source, r#"up{pod="b"} offset 30s"#, 59),
            [("b".to_string(), 1.0)]
        );
    }

    // Pins every matcher operator, with a missing label matching as "".
    #[test]
    fn every_matcher_operator() {
        let source = MemorySource::new(vec![
            series("x", &[("pod", "a"), ("code", "500")], "1"),
            series("x", &[("pod", "b"), ("code", "200")], "2"),
            series("x", &[("pod", "c")], "3"),
        ]);
        let pods = |q: &str| {
            at(&source, q, 0)
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        };
        assert_eq!(pods(r#"x{code="500"}"#), ["a"]);
        assert_eq!(pods(r#"x{code!="500"}"#), ["b", "c"]);
        assert_eq!(pods(r#"x{code=~"5.."}"#), ["a"]);
        assert_eq!(pods(r#"x{code!~"5.."}"#), ["b", "c"]);
        assert_eq!(pods(r#"x{code=""}"#), ["c"]);
        assert_eq!(pods(r#"{__name__=~"x|y", code=~"2..|"}"#), ["b", "c"]);
    }

    // Pins increase's extrapolation and counter-reset handling against a hand computation
    // of extrapolatedRate: samples at 15..60 s in a [1m] window ending at 60 s.
    #[test]
    fn increase_extrapolates_and_adds_resets_back() {
        let source = MemorySource::new(vec![series("c", &[("pod", "a")], "100 110 120 5 15")]);
        // Samples at 0..60 s: the window [0, 60] holds all five; the raw change is
        // 15 - 100 + 120 (the reset) = 35 over 60 s, sampled wholly: no extrapolation.
        assert_eq!(
            at(&source, "increase(c[1m])", 60),
            [("a".to_string(), 35.0)]
        );
        // At 67 s the window [7, 67] holds 15..60 s: 15 - 110 + 120 = 25 over 45 s,
        // extrapolated 8 s back and 7 s on (both under 110% of the 15 s spacing).
        let value = at(&source, "increase(c[1m])", 67)[0].1;
        let expected = 25.0 * (45.0 + 8.0 + 7.0) / 45.0;
        assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
        // irate reads the last two samples; a drop is a reset.
        assert_eq!(
            at(&source, "irate(c[1m])", 45),
            [("a".to_string(), 5.0 / 15.0)]
        );
    }

    // Pins histogram_quantile's interpolation inside a bucket and its monotonicity fix.
    #[test]
    fn histogram_quantile_interpolates_within_the_bucket() {
        let bucket = |le: &str, count: &str| series("h_bucket", &[("le", le)], count);
        let source = MemorySource::new(vec![
            bucket("0.1", "50"),
            bucket("0.25", "90"),
            bucket("+Inf", "100"),
        ]);
        let quantile = |q: &str| at(&source, &format!("histogram_quantile({q}, h_bucket)"), 0)[0].1;
        assert!((quantile("0.7") - 0.175).abs() < 1e-12);
        assert_eq!(quantile("0.5"), 0.1);
        assert_eq!(quantile("0.95"), 0.25);
        assert_eq!(quantile("2"), f64::INFINITY);
        let dipping = MemorySource::new(vec![
            bucket("0.1", "50"),
            bucket("0.25", "40"),
            bucket("+Inf", "100"),
        ]);
        // 0.25's 40 is raised to 50, so the median is still 0.1.
        assert_eq!(
            at(&dipping, "histogram_quantile(0.5, h_bucket)", 0)[0].1,
            0.1
        );
    }

    // Pins that constructs outside the subset are refused by name, never evaluated.
    #[test]
    fn refuses_what_it_does_not_evaluate_by_name() {
        for (promql, named) in [
            ("quantile_over_time(0.5, x[5m])", "quantile_over_time"),
            ("topk(3, x)", "topk"),
            ("a / on (pod) group_left b", "group_left"),
            ("a or b", "or"),
            ("max_over_time(rate(x[1m])[5m:1m])", "subquer"),
            ("x @ 100", "@"),
            (r#"label_replace(x, "a", "b", "c", "d")"#, "label_replace"),
        ] {
            let error = MemorySource::supports(promql)
                .expect_err(promql)
                .to_string();
            assert!(error.contains(named), "{promql}: {error}");
        }
        let source = MemorySource::default();
        let refused = source
            .evaluate("absent(x)", 0, 0, 1000)
            .expect_err("refused");
        assert!(
            matches!(&refused, SourceError::Query { kind, message } if kind == "unsupported" && message.contains("absent")),
            "{refused:?}"
        );
    }

    // Pins one-to-one matching: `on` keeps only its labels, `ignoring` drops its own,
    // and a duplicate on the right is an error rather than a guess.
    #[test]
    fn one_to_one_matching_on_and_ignoring() {
        let source = MemorySource::new(vec![
            series("bad", &[("pod", "a"), ("code", "500")], "2"),
            series("all", &[("pod", "a")], "8"),
            series("all", &[("pod", "b")], "4"),
        ]);
        let ratio = source
            .evaluate("bad / ignoring (code) all", 0, 0, 1000)
            .expect("matches");
        assert_eq!(ratio.len(), 1);
        assert_eq!(ratio[0].points[0].1, 0.25);
        assert_eq!(
            ratio[0].labels,
            BTreeMap::from([("pod".into(), "a".into())])
        );
        let on = source
            .evaluate("bad / on (pod) all", 0, 0, 1000)
            .expect("matches");
        assert_eq!(on[0].labels, BTreeMap::from([("pod".into(), "a".into())]));
        let duplicate = source
            .evaluate("bad / on () all", 0, 0, 1000)
            .expect_err("two on the right");
        assert!(
            format!("{duplicate}").contains("many-to-many"),
            "{duplicate}"
        );
    }
}
