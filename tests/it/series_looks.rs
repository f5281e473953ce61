//! Series metrics with several looks: the looks are checkpoints fixed by the
//! rule set's `window`, so a pipeline that asks every 30 s runs at most
//! `looks` tests, and the A/A promise holds however often it asks.

use std::collections::BTreeMap;
use std::path::Path;

use canary_gate::judge::{self, Measured, MetricInput, VerdictFrame};
use canary_gate::plan::SideSelector;
use canary_gate::request::Judgement;
use canary_gate::rules::{self, RuleSet};
use canary_gate::verdict::{MetricReport, Outcome, Verdict, Window};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// The canary's start in unix seconds; any instant will do.
const START_SECS: i64 = 1_700_000_000;
/// Seconds between two samples of the gauge in the Monte Carlo (`step: 1m`,
/// so that 120,000 judgements stay quick); the other test keeps the default 15 s.
const AA_STEP_SECS: i64 = 60;
/// Seconds between two asks of the pipeline.
const ASK_SECS: i64 = 30;
/// The planned analysis: 30 minutes, the rule set's `window`.
const WINDOW_SECS: i64 = 30 * 60;
/// Simulated canaries in the A/A Monte Carlo.
const AA_CANARIES: usize = 2000;

/// One series metric judged in `looks` checkpoints over a 30-minute window
/// sampled every `step_secs`, two-sided at tolerance 0: the hardest case for
/// the false-rollback promise.
fn rule_set(alpha: f64, looks: u32, step_secs: i64) -> RuleSet {
    rule_text(alpha, looks, &format!("step: {step_secs}s\nwindow: 30m\n"))
}

/// The series rule set of [`rule_set`] with `top` as its top-level settings.
fn rule_text(alpha: f64, looks: u32, top: &str) -> RuleSet {
    let text = format!(
        "alpha: {alpha}\n\
         {top}\
         metrics:\n\
         \x20 - name: cpu\n\
         \x20   kind: series\n\
         \x20   query: cpu\n\
         \x20   direction: either\n\
         \x20   tolerance: 0%\n\
         \x20   looks: {looks}\n"
    );
    rules::load_str(Path::new("cpu.yaml"), &text).expect("valid rules")
}

fn side(track: &str) -> SideSelector {
    SideSelector::from_map(&BTreeMap::from([("track".to_string(), track.to_string())]))
        .expect("valid side")
}

/// The verdict of an ask `elapsed_secs` into the canary, on the samples the
/// server would have fetched by then (those up to the ask).
fn ask(rules: &RuleSet, samples: &[(i64, f64, f64)], elapsed_secs: i64, is_final: bool) -> Verdict {
    let end_secs = START_SECS + elapsed_secs;
    let judgement = Judgement {
        rules: rules.name.clone(),
        deployment: "d-1".into(),
        canary: side("canary"),
        baseline: side("baseline"),
        start_secs: START_SECS,
        end_secs,
        vars: BTreeMap::new(),
        is_final,
    };
    let fetched = samples.iter().filter(|(t, _, _)| *t <= end_secs);
    let measured = Measured::Samples {
        canary: fetched.clone().map(|&(t, c, _)| (t, c)).collect(),
        baseline: fetched.map(|&(t, _, b)| (t, b)).collect(),
    };
    let frame = VerdictFrame {
        id: "id".into(),
        judged_at: String::new(),
        canary: String::new(),
        baseline: String::new(),
        window: Window {
            start: String::new(),
            end: String::new(),
            start_secs: START_SECS,
            end_secs,
            step_secs: rules.step_secs,
        },
    };
    let input = MetricInput {
        measured,
        queries: Vec::new(),
    };
    judge::judge(rules, &judgement, vec![input], frame)
}

/// A healthy canary's gauge: every `step_secs` over the window, the canary's
/// and the baseline's values, drawn from the same distribution.
fn aa_samples(step_secs: i64, rng: &mut StdRng) -> Vec<(i64, f64, f64)> {
    let cpu = Normal::new(1.0, 0.1).expect("finite sd");
    (0..=WINDOW_SECS / step_secs)
        .map(|i| (START_SECS + i * step_secs, cpu.sample(rng), cpu.sample(rng)))
        .collect()
}

/// Whether any ask of a 30-minute canary asked every 30 s (the last one
/// final) rolled it back.
fn rolled_back_at_some_ask(rules: &RuleSet, samples: &[(i64, f64, f64)]) -> bool {
    (1..=WINDOW_SECS / ASK_SECS).any(|n| {
        let elapsed = n * ASK_SECS;
        ask(rules, samples, elapsed, elapsed == WINDOW_SECS).verdict == Outcome::Rollback
    })
}

// Pins the promise for series metrics: with looks: 4, 60 asks of 2,000 healthy canaries
// roll back at most alpha of them (plus three Monte Carlo standard errors). Judging
// every ask at 1 - alpha/4 instead, as before checkpoints, ran 43 tests per canary and
// rolled back 4.25% of the same canaries (1.80% here).
#[test]
fn aa_series_asked_every_30s_with_four_looks_rolls_back_at_most_alpha() {
    let alpha = 0.05;
    let rules = rule_set(alpha, 4, AA_STEP_SECS);
    let mut rng = StdRng::seed_from_u64(301);
    let rolled_back = (0..AA_CANARIES)
        .filter(|_| rolled_back_at_some_ask(&rules, &aa_samples(AA_STEP_SECS, &mut rng)))
        .count();
    let rate = rolled_back as f64 / AA_CANARIES as f64;
    let error = (alpha * (1.0 - alpha) / AA_CANARIES as f64).sqrt();
    eprintln!(
        "A/A series, looks 4, 60 asks, alpha {alpha}: {rolled_back} of {AA_CANARIES} rolled back ({rate})"
    );
    assert!(rate <= alpha + 3.0 * error, "{rate}");
}

/// The parts of a metric's answer that say what was concluded.
fn conclusion(report: &MetricReport) -> String {
    format!(
        "{:?} | {} | {:?} | {:?} | {:?}",
        report.outcome, report.reason, report.estimate, report.canary, report.baseline
    )
}

// Pins that a result cannot change between checkpoints: a canary that regresses just
// after checkpoint 1 (7 min 30 s) gets checkpoint 1's answer at every ask until
// checkpoint 2 (15 min), final or not, though its samples by 14 min already roll it back.
#[test]
fn asks_between_two_checkpoints_get_the_same_answer() {
    let rules = rule_set(0.01, 4, 15);
    let mut rng = StdRng::seed_from_u64(302);
    let samples: Vec<(i64, f64, f64)> = aa_samples(15, &mut rng)
        .into_iter()
        .map(|(t, canary, baseline)| {
            let regressed = t > START_SECS + 8 * 60;
            (t, if regressed { canary + 1.0 } else { canary }, baseline)
        })
        .collect();
    let at_checkpoint = ask(&rules, &samples, 7 * 60 + 30, false);
    let cpu = &at_checkpoint.metrics[0];
    assert!(
        cpu.reason.ends_with(
            "Judged at checkpoint 1 of 4 (at 7m 30s); next at 15m, and asks until then get this answer."
        ),
        "{}",
        cpu.reason
    );
    assert_eq!(at_checkpoint.verdict, Outcome::Promote, "{}", cpu.reason);
    for elapsed in (7 * 60 + 31..15 * 60).step_by(7) {
        let later = ask(&rules, &samples, elapsed, false);
        assert_eq!(
            conclusion(&later.metrics[0]),
            conclusion(cpu),
            "ask at {elapsed} s"
        );
        assert_eq!(later.verdict, at_checkpoint.verdict, "ask at {elapsed} s");
    }
    let final_look = ask(&rules, &samples, 14 * 60, true);
    assert_eq!(conclusion(&final_look.metrics[0]), conclusion(cpu));
    let fixed_horizon = rule_text(0.01, 1, "");
    let every_sample = ask(&fixed_horizon, &samples, 14 * 60, true);
    assert_eq!(
        every_sample.verdict,
        Outcome::Rollback,
        "{}",
        every_sample.reason
    );
    let next = ask(&rules, &samples, 15 * 60, false);
    assert_eq!(next.verdict, Outcome::Rollback, "{}", next.reason);
    assert!(
        next.metrics[0]
            .reason
            .contains("Judged at checkpoint 2 of 4 (at 15m)"),
        "{}",
        next.metrics[0].reason
    );
}
