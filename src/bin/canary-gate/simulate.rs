//! Synthetic canary and baseline traffic, written as OpenMetrics text that
//! `promtool tsdb create-blocks-from openmetrics` turns into Prometheus blocks.
//!
//! The demo and the integration tests use it to give a real Prometheus the
//! conventional `http_requests_total{code}` counter and
//! `http_request_duration_seconds` histogram of a canary and its baseline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution, Poisson};

/// Upper bounds of the histogram's buckets: the Prometheus client libraries' defaults.
pub const BUCKETS_SECONDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The boundary between fast and slow requests, in seconds: a bucket bound.
pub const SLOW_ABOVE_SECONDS: f64 = 0.25;

/// Share of fast requests in each bucket up to [`SLOW_ABOVE_SECONDS`].
const FAST_SHARES: [f64; 6] = [0.05, 0.15, 0.3, 0.3, 0.15, 0.05];
/// Share of slow requests in each bucket above [`SLOW_ABOVE_SECONDS`].
const SLOW_SHARES: [f64; 6] = [0.5, 0.3, 0.15, 0.04, 0.009, 0.001];

// The fast shares end exactly at the boundary, so "slow" means what it says.
const _: () = assert!(BUCKETS_SECONDS[FAST_SHARES.len() - 1] == SLOW_ABOVE_SECONDS);

/// Traffic of one side (the canary or the baseline).
#[derive(Clone, Debug, PartialEq)]
pub struct SideTraffic {
    /// Labels every series of this side carries, e.g. `service`, `track`.
    pub labels: BTreeMap<String, String>,
    pub requests_per_second: f64,
    /// Fraction of requests answered with a 5xx.
    pub error_ratio: f64,
    /// Fraction of requests slower than [`SLOW_ABOVE_SECONDS`].
    pub slow_ratio: f64,
    /// Pods serving the side; each has its own counters and a `pod` label.
    pub pods: u32,
    /// Seconds after the start at which the first pod restarts, resetting its counters.
    pub restart_after_secs: Option<i64>,
    /// Seconds between restarts of every pod of the side, from the start (a
    /// crash loop): each pod serves until the restart instant, then its
    /// counters start again from zero.
    pub restart_every_secs: Option<i64>,
    /// Seconds after the start after which every series of the side stops
    /// being scraped, as if its pods were gone.
    pub vanish_after_secs: Option<i64>,
}

impl SideTraffic {
    /// A side with the given labels, 20 requests/s, 0.5% errors, 5% slow requests, 2 pods.
    pub fn new(labels: &[(&str, &str)]) -> Self {
        SideTraffic {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            requests_per_second: 20.0,
            error_ratio: 0.005,
            slow_ratio: 0.05,
            pods: 2,
            restart_after_secs: None,
            restart_every_secs: None,
            vanish_after_secs: None,
        }
    }
}

/// Why a `--side` description could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "bad side description `{spec}`: {reason}; write e.g. `service=checkout,track=canary;rps=20;errors=1%;slow=5%;pods=2`"
)]
pub struct SideSpecError {
    spec: String,
    reason: String,
}

impl SideTraffic {
    /// Reads a side from text: labels, then `;`-separated settings
    /// (`rps`, `errors`, `slow`, `pods`, `restart_after`, `vanish_after`), e.g.
    /// `service=checkout,track=canary;rps=20;errors=1%;slow=5%`.
    pub fn parse(spec: &str) -> Result<SideTraffic, SideSpecError> {
        let fail = |reason: String| SideSpecError {
            spec: spec.to_string(),
            reason,
        };
        let mut parts = spec.split(';');
        let labels_text = parts.next().unwrap_or_default();
        let mut side = SideTraffic::new(&[]);
        for pair in labels_text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| fail(format!("label `{pair}` has no `=`")))?;
            side.labels
                .insert(name.trim().to_string(), value.trim().to_string());
        }
        if side.labels.is_empty() {
            return Err(fail("it names no labels".into()));
        }
        for setting in parts.filter(|p| !p.trim().is_empty()) {
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| fail(format!("setting `{setting}` has no `=`")))?;
            let number = |text: &str| -> Result<f64, SideSpecError> {
                let text = text.trim();
                let (digits, scale) = match text.strip_suffix('%') {
                    Some(d) => (d, 0.01),
                    None => (text, 1.0),
                };
                digits
                    .parse::<f64>()
                    .map(|v| v * scale)
                    .map_err(|_| fail(format!("`{key}` must be a number, got `{text}`")))
            };
            match key.trim() {
                "rps" => side.requests_per_second = number(value)?,
                "errors" => side.error_ratio = number(value)?,
                "slow" => side.slow_ratio = number(value)?,
                "pods" => side.pods = number(value)? as u32,
                "restart_after" => side.restart_after_secs = Some(number(value)? as i64),
                "vanish_after" => side.vanish_after_secs = Some(number(value)? as i64),
                other => {
                    return Err(fail(format!(
                        "unknown setting `{other}` (known: rps, errors, slow, pods, restart_after, vanish_after)"
                    )));
                }
            }
        }
        if !(0.0..=1.0).contains(&side.error_ratio) || !(0.0..=1.0).contains(&side.slow_ratio) {
            return Err(fail("errors and slow must lie between 0% and 100%".into()));
        }
        if side.requests_per_second < 0.0 || side.pods == 0 {
            return Err(fail(
                "rps must not be negative and pods must be at least 1".into(),
            ));
        }
        Ok(side)
    }
}

/// A stretch of simulated traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    pub start_secs: i64,
    pub duration_secs: i64,
    pub scrape_interval_secs: i64,
    pub seed: u64,
    pub sides: Vec<SideTraffic>,
}

/// Cumulative counters of one pod.
#[derive(Clone, Debug, Default)]
struct PodCounters {
    ok: u64,
    errors: u64,
    /// Cumulative count per bucket in [`BUCKETS_SECONDS`], then +Inf.
    buckets: [u64; BUCKETS_SECONDS.len() + 1],
    sum_seconds: f64,
}

impl PodCounters {
    fn serve(&mut self, rng: &mut StdRng, side: &SideTraffic, seconds: i64) {
        let mean = side.requests_per_second * seconds as f64 / f64::from(side.pods.max(1));
        let requests = if mean > 0.0 {
            Poisson::new(mean)
                .map(|p| p.sample(rng) as u64)
                .unwrap_or(0)
        } else {
            0
        };
        let errors = draw_binomial(rng, requests, side.error_ratio);
        self.errors += errors;
        self.ok += requests - errors;
        let slow = draw_binomial(rng, requests, side.slow_ratio);
        let fast_counts = split(rng, requests - slow, &FAST_SHARES);
        let slow_counts = split(rng, slow, &SLOW_SHARES);
        let mut per_bucket = [0u64; BUCKETS_SECONDS.len() + 1];
        per_bucket[..FAST_SHARES.len()].copy_from_slice(&fast_counts);
        per_bucket[FAST_SHARES.len()..].copy_from_slice(&slow_counts);
        let mut cumulative = 0;
        for (i, count) in per_bucket.iter().enumerate() {
            cumulative += count;
            self.buckets[i] += cumulative;
            let middle = match i {
                0 => BUCKETS_SECONDS[0] / 2.0,
                i if i < BUCKETS_SECONDS.len() => {
                    (BUCKETS_SECONDS[i - 1] + BUCKETS_SECONDS[i]) / 2.0
                }
                _ => BUCKETS_SECONDS[BUCKETS_SECONDS.len() - 1],
            };
            self.sum_seconds += *count as f64 * middle;
        }
    }
}

/// The instants in `(after, until]` that are whole multiples of `every_secs`.
fn restarts_between(every_secs: Option<i64>, after: i64, until: i64) -> Vec<i64> {
    let Some(every) = every_secs.filter(|every| *every > 0) else {
        return Vec::new();
    };
    let first = (after.div_euclid(every) + 1) * every;
    (first..=until).step_by(every as usize).collect()
}

fn draw_binomial(rng: &mut StdRng, trials: u64, p: f64) -> u64 {
    if trials == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return trials;
    }
    Binomial::new(trials, p).map(|b| b.sample(rng)).unwrap_or(0)
}

/// Splits `total` into parts with the given shares (a multinomial draw).
fn split<const N: usize>(rng: &mut StdRng, total: u64, shares: &[f64; N]) -> [u64; N] {
    let mut parts = [0u64; N];
    let mut left = total;
    let mut share_left = 1.0;
    for (i, share) in shares.iter().enumerate() {
        if i == N - 1 {
            parts[i] = left;
            break;
        }
        let drawn = draw_binomial(rng, left, (share / share_left).clamp(0.0, 1.0));
        parts[i] = drawn;
        left -= drawn;
        share_left -= share;
    }
    parts
}

fn label_text(labels: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(text, "{name}=\"{escaped}\"");
    }
    text
}

fn format_le(bound: f64) -> String {
    if bound.is_infinite() {
        "+Inf".to_string()
    } else {
        format!("{bound}")
    }
}

/// Writes the simulation as OpenMetrics text, ending with `# EOF`.
pub fn write_openmetrics(simulation: &Simulation, out: &mut impl Write) -> io::Result<()> {
    let mut rng = StdRng::seed_from_u64(simulation.seed);
    let interval = simulation.scrape_interval_secs.max(1);
    let scrapes = simulation.duration_secs / interval;
    // history[side][pod][scrape]
    let mut history: Vec<Vec<Vec<PodCounters>>> = Vec::new();
    for side in &simulation.sides {
        let mut pods = vec![PodCounters::default(); side.pods.max(1) as usize];
        let mut per_pod: Vec<Vec<PodCounters>> = vec![Vec::new(); pods.len()];
        for scrape in 0..=scrapes {
            let elapsed = scrape * interval;
            for (index, pod) in pods.iter_mut().enumerate() {
                if scrape > 0 {
                    // Serve up to each crash-loop restart in this interval, reset, go on.
                    let mut served_until = elapsed - interval;
                    for restart in restarts_between(side.restart_every_secs, served_until, elapsed)
                    {
                        pod.serve(&mut rng, side, restart - served_until);
                        *pod = PodCounters::default();
                        served_until = restart;
                    }
                    pod.serve(&mut rng, side, elapsed - served_until);
                }
                if index == 0
                    && side
                        .restart_after_secs
                        .is_some_and(|at| at > elapsed - interval && at <= elapsed)
                {
                    *pod = PodCounters::default();
                }
                per_pod[index].push(pod.clone());
            }
        }
        history.push(per_pod);
    }

    let series_labels = |side: &SideTraffic, pod: usize, extra: &[(&str, String)]| {
        let mut labels = side.labels.clone();
        let stem = side.labels.values().cloned().collect::<Vec<_>>().join("-");
        labels.insert("pod".to_string(), format!("{stem}-{pod}"));
        for (name, value) in extra {
            labels.insert(name.to_string(), value.clone());
        }
        label_text(&labels)
    };
    let time = |scrape: usize| simulation.start_secs + scrape as i64 * interval;
    // The scrapes a side's series have: all, or those before it vanished.
    let scraped = |side: &SideTraffic, scrape: usize| {
        side.vanish_after_secs
            .is_none_or(|after| scrape as i64 * interval <= after)
    };

    writeln!(out, "# HELP http_requests Requests served.")?;
    writeln!(out, "# TYPE http_requests counter")?;
    for (side, pods) in simulation.sides.iter().zip(&history) {
        for (pod, scrapes) in pods.iter().enumerate() {
            for (code, pick) in [("200", 0), ("500", 1)] {
                let labels = series_labels(side, pod, &[("code", code.to_string())]);
                // Like a client library, a labelled counter appears with its first
                // increment: no 5xx series until the first 5xx.
                let mut seen = false;
                for (scrape, counters) in scrapes.iter().enumerate() {
                    if !scraped(side, scrape) {
                        continue;
                    }
                    let value = if pick == 0 {
                        counters.ok
                    } else {
                        counters.errors
                    };
                    seen |= value > 0;
                    if !seen {
                        continue;
                    }
                    writeln!(
                        out,
                        "http_requests_total{{{labels}}} {value} {}",
                        time(scrape)
                    )?;
                }
            }
        }
    }
    writeln!(
        out,
        "# HELP http_request_duration_seconds Time to serve a request."
    )?;
    writeln!(out, "# TYPE http_request_duration_seconds histogram")?;
    for (side, pods) in simulation.sides.iter().zip(&history) {
        for (pod, scrapes) in pods.iter().enumerate() {
            let plain = series_labels(side, pod, &[]);
            for (scrape, counters) in scrapes.iter().enumerate() {
                if !scraped(side, scrape) {
                    continue;
                }
                let t = time(scrape);
                let bounds = BUCKETS_SECONDS.iter().copied().chain([f64::INFINITY]);
                for (bound, count) in bounds.zip(counters.buckets) {
                    let labels = series_labels(side, pod, &[("le", format_le(bound))]);
                    writeln!(
                        out,
                        "http_request_duration_seconds_bucket{{{labels}}} {count} {t}"
                    )?;
                }
                let total = counters.buckets[BUCKETS_SECONDS.len()];
                writeln!(
                    out,
                    "http_request_duration_seconds_count{{{plain}}} {total} {t}"
                )?;
                writeln!(
                    out,
                    "http_request_duration_seconds_sum{{{plain}}} {:.3} {t}",
                    counters.sum_seconds
                )?;
            }
        }
    }
    writeln!(out, "# EOF")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Crash-loop restarts fall at the multiples of the period inside each scrape interval.
    #[test]
    fn restarts_fall_at_multiples_of_the_period() {
        assert_eq!(restarts_between(Some(20), 15, 30), vec![20]);
        assert_eq!(restarts_between(Some(20), 45, 60), vec![60]);
        assert_eq!(restarts_between(Some(5), 0, 15), vec![5, 10, 15]);
        assert!(restarts_between(Some(20), 0, 15).is_empty());
        assert!(restarts_between(None, 0, 15).is_empty());
    }

    // The histogram's +Inf bucket counts every request, and 5xx counts track the error ratio.
    #[test]
    fn counters_are_consistent_and_track_the_ratios() {
        let mut side = SideTraffic::new(&[("track", "canary")]);
        side.error_ratio = 0.1;
        side.pods = 1;
        let mut pod = PodCounters::default();
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            pod.serve(&mut rng, &side, 15);
        }
        let total = pod.ok + pod.errors;
        assert_eq!(pod.buckets[BUCKETS_SECONDS.len()], total);
        let ratio = pod.errors as f64 / total as f64;
        assert!((ratio - 0.1).abs() < 0.01, "error ratio {ratio}");
        let fast = pod.buckets[5] as f64 / total as f64;
        assert!((fast - 0.95).abs() < 0.01, "fast share {fast}");
        assert!(pod.buckets.windows(2).all(|w| w[0] <= w[1]));
    }
}
