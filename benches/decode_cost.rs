//! What reading one Prometheus range answer costs, in-process: the body of a
//! 24-hour histogram query of one side as `benches/verdict_cost.rs` backfills
//! it (2 pods x 12 buckets = 24 series of 5,761 points at a 15 s step),
//! decoded by the serde path (every sample visited by serde_json, as every
//! answer was read before session 6) and by the scanner that now reads range
//! series' values (`src/source/values_scan.rs`). No I/O.
//!
//! Three bodies: counters (whole-number values, what the raw range queries of
//! the shipped rules get), rates (values with 17 significant digits, what a
//! `rate()` query gets) and counters at decimal times (`1700000000.123`,
//! which the scanner hands to serde_json one number at a time).
//!
//! Run with `cargo bench --bench decode_cost`; `DECODE_COST_RUNS` (default
//! 15) sets the timed runs per cell; each cell is the fastest of them.

use std::fmt::Write as _;
use std::time::Instant;

use canary_gate::source::{
    Series, SourceError, read_prometheus_answer, read_prometheus_answer_by_serde,
};

/// The Prometheus client's default bucket edges, and `+Inf`.
const EDGES: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const PODS: [&str; 2] = ["checkout-canary-0", "checkout-canary-1"];
/// 24 hours at a 15 s step, both ends included.
const POINTS: i64 = 24 * 3600 / 15 + 1;
const START_SECS: i64 = 1_700_000_000;
const STEP_SECS: i64 = 15;

/// How a body writes its samples.
#[derive(Clone, Copy)]
enum Shape {
    Counters,
    Rates,
    DecimalTimes,
}

/// A successful matrix answer of one side's histogram over 24 hours.
fn body(shape: Shape) -> String {
    let mut body = String::from(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for (p, pod) in PODS.iter().enumerate() {
        for (b, le) in EDGES.iter().enumerate() {
            if p + b > 0 {
                body.push(',');
            }
            write!(
                body,
                r#"{{"metric":{{"__name__":"http_request_duration_seconds_bucket","instance":"10.0.0.{p}:8080","job":"checkout","le":"{le}","pod":"{pod}","service":"checkout","track":"canary"}},"values":["#
            )
            .expect("writing to a String");
            // A cumulative count: about 300 requests per step per pod, a
            // growing share of them at or below each edge.
            let per_step = 300 * (b as i64 + 1) / EDGES.len() as i64;
            for step in 0..POINTS {
                if step > 0 {
                    body.push(',');
                }
                let secs = START_SECS + step * STEP_SECS;
                let count = step * per_step + (step * 7919 + b as i64) % 13;
                let written = match shape {
                    Shape::Counters => write!(body, r#"[{secs},"{count}"]"#),
                    Shape::Rates => write!(body, r#"[{secs},"{}"]"#, count as f64 / 15.0 / 7.0),
                    Shape::DecimalTimes => write!(body, r#"[{secs}.123,"{count}"]"#),
                };
                written.expect("writing to a String");
            }
            body.push_str("]}");
        }
    }
    body.push_str("]}}");
    body
}

/// The answer with every value as its bits, to check both readers agree.
fn bits(answer: Result<Vec<Series>, SourceError>) -> Vec<Vec<(i64, u64)>> {
    answer
        .expect("the generated body reads")
        .iter()
        .map(|s| s.points.iter().map(|&(t, v)| (t, v.to_bits())).collect())
        .collect()
}

/// The shortest of `runs` wall times of `f`: on a shared machine the
/// other processes only ever add to a run, so the shortest is the closest to
/// the cost alone.
fn fastest_ms(mut f: impl FnMut(), runs: usize) -> f64 {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let runs = std::env::var("DECODE_COST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_usize)
        .max(1);
    println!(
        "| body (24 series x {POINTS} points) | bytes | serde path | scanner | serde / scanner |"
    );
    println!("|---|---|---|---|---|");
    for (name, shape) in [
        ("counters, whole seconds", Shape::Counters),
        ("rates, whole seconds", Shape::Rates),
        ("counters, decimal seconds", Shape::DecimalTimes),
    ] {
        let body = body(shape);
        let body = body.as_bytes();
        assert_eq!(
            bits(read_prometheus_answer(200, body)),
            bits(read_prometheus_answer_by_serde(200, body)),
            "both readers give the same series"
        );
        let serde = fastest_ms(
            || {
                drop(std::hint::black_box(read_prometheus_answer_by_serde(
                    200, body,
                )))
            },
            runs,
        );
        let scanner = fastest_ms(
            || drop(std::hint::black_box(read_prometheus_answer(200, body))),
            runs,
        );
        println!(
            "| {name} | {:.2} MB | {serde:.2} ms | {scanner:.2} ms | {:.1}x |",
            body.len() as f64 / 1e6,
            serde / scanner
        );
    }
}
