//! `canary-gate test`: rule unit tests in the spirit of `promtool test rules`.
//!
//! A test file names a rule file and gives, per test, the canary's and the
//! baseline's series in the expanding notation, and looks with the verdict
//! and the per-metric outcomes they must give. Each look is judged by
//! [`canary_gate::pipe::judge`], the same pipe a real verdict takes, against
//! an in-memory source that evaluates the very PromQL the plan would send.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use time::OffsetDateTime;

use canary_gate::pipe;
use canary_gate::plan;
use canary_gate::request::{SideSelector, SideSpec, TimeSpec, VerdictRequest};
use canary_gate::rules::{self, LoadedRules, RuleSet};
use canary_gate::source::config::DEFAULT_SOURCE;
use canary_gate::source::memory::{self, StoredSeries, notation};
use canary_gate::source::{MemorySource, Sources};
use canary_gate::telemetry::NoRecorder;
use canary_gate::verdict::{MetricReport, Outcome, Verdict};

/// The budget of one look of a rule test: the in-memory source answers at
/// once, so this only stops a runaway evaluation.
const RULE_TEST_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

/// Time 0 of every test: the first sample of each series, and the canary's
/// start unless the test gives `start`. Any fixed instant would do; this one
/// reads well in reasons.
pub const TEST_EPOCH_SECS: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// How far an `estimate` may lie from the expected value when `within` is not given.
pub const DEFAULT_ESTIMATE_WITHIN: f64 = 0.1;

/// The largest test file read, in bytes.
pub const MAX_TEST_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The top level of a test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    /// The rule file under test, relative to the test file.
    rules: Spanned<String>,
    /// Time between two values of every series, e.g. `15s`.
    interval: Spanned<String>,
    /// The canary's labels, as a request gives them.
    canary: Spanned<SideSpec>,
    /// The baseline's labels, as a request gives them.
    baseline: Spanned<SideSpec>,
    /// Values for the rule set's `$vars`; also substituted into series labels.
    #[serde(default)]
    vars: BTreeMap<String, String>,
    tests: Vec<Spanned<RawTest>>,
}

/// One test: series and the looks to judge them at.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: Spanned<String>,
    /// When the canary began taking traffic, from time 0; default 0.
    #[serde(default)]
    start: Option<Spanned<String>>,
    series: RawSides,
    evals: Vec<Spanned<RawEval>>,
}

/// The input series of each side; the side's own labels are added to each.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSides {
    #[serde(default)]
    canary: Vec<Spanned<RawSeries>>,
    #[serde(default)]
    baseline: Vec<Spanned<RawSeries>>,
}

/// One input series, as `promtool test rules` writes one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    /// `metric{label="value", ...}`; `$vars` in values are filled in.
    series: Spanned<String>,
    /// Expanding notation: `0+10x180`, `1-2x3`, `_`, `_x3`, `stale`.
    values: Spanned<String>,
}

/// One look and what it must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEval {
    /// The look's time from time 0, e.g. `10m`.
    at: Spanned<String>,
    /// Whether this is the last look.
    #[serde(default, rename = "final")]
    is_final: bool,
    /// The expected verdict.
    #[serde(default)]
    verdict: Option<Spanned<String>>,
    /// The expected outcome (and figures) of each named metric.
    #[serde(default)]
    metrics: BTreeMap<String, Spanned<RawExpectation>>,
}

/// What one metric must conclude.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    /// `pass`, `fail`, `inconclusive`, `nodata` or `error`.
    outcome: Spanned<String>,
    /// The estimate's value (the canary/baseline ratio of a counts metric).
    #[serde(default)]
    estimate: Option<f64>,
    /// How far the estimate may be from `estimate` (absolute); default 0.1.
    #[serde(default)]
    within: Option<f64>,
    /// Text the metric's reason must contain.
    #[serde(default)]
    reason: Option<String>,
    /// Whether the metric must be shadow (judged, never counted).
    #[serde(default)]
    shadow: Option<bool>,
}

/// A problem at a place in a test file, shown as `file:line:col: message`.
struct Problem {
    path: PathBuf,
    /// 1-based line and column; line 0 for a problem of the whole file.
    at: (u64, u64),
    message: String,
}

/// Line and column of a place in a test file.
fn place(location: Location) -> (u64, u64) {
    (location.line(), location.column())
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            (0, _) => write!(f, "{}: {}", self.path.display(), self.message),
            (line, column) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.path.display(),
                self.message
            ),
        }
    }
}

/// Runs every test file under `paths` (files as they are, folders by their
/// `*.yaml` / `*.yml`), writing `ok` or the failure of each look to `out` and
/// file problems to `errors`. Returns whether everything passed.
pub fn run(paths: &[PathBuf], out: &mut dyn Write, errors: &mut dyn Write) -> io::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            if found.is_empty() {
                writeln!(
                    errors,
                    "{}: holds no test files (*.yaml or *.yml)",
                    path.display()
                )?;
                return Ok(false);
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        match run_file(&runtime, file, out)? {
            Ok((good, bad)) => {
                passed += good;
                failed += bad;
            }
            Err(problems) => {
                failed += 1;
                for problem in problems {
                    writeln!(errors, "{problem}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "{} passed, {} failed ({} files)",
        passed,
        failed,
        files.len()
    )?;
    Ok(failed == 0)
}

/// Runs one file's tests: the counts of looks that passed and failed, or the
/// problems that kept the file from running.
fn run_file(
    runtime: &tokio::runtime::Runtime,
    path: &Path,
    out: &mut dyn Write,
) -> io::Result<Result<(usize, usize), Vec<Problem>>> {
    let whole = |message: String| {
        vec![Problem {
            path: path.to_path_buf(),
            at: (0, 0),
            message,
        }]
    };
    let too_big = std::fs::metadata(path).map(|m| m.len() > MAX_TEST_FILE_BYTES);
    match too_big {
        Err(e) => return Ok(Err(whole(format!("cannot read the test file: {e}")))),
        Ok(true) => {
            return Ok(Err(whole(format!(
                "the file is larger than {MAX_TEST_FILE_BYTES} bytes"
            ))));
        }
        Ok(false) => {}
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Ok(Err(whole(format!("cannot read the test file: {e}")))),
    };
    let raw: RawTestFile = match serde_saphyr::from_str(&text) {
        Ok(raw) => raw,
        Err(error) => {
            let at = error.location().map_or((1, 1), place);
            return Ok(Err(vec![Problem {
                path: path.to_path_buf(),
                at,
                message: format!("not a valid test file: {}", without_place(&error)),
            }]));
        }
    };
    let suite = match Suite::compile(path, raw) {
        Ok(suite) => suite,
        Err(problems) => return Ok(Err(problems)),
    };
    let (mut passed, mut failed) = (0, 0);
    for test in &suite.tests {
        for look in &test.looks {
            let verdict = runtime.block_on(suite.judge(test, look));
            let label = format!(
                "{}: test `{}` at {}",
                path.display(),
                test.name,
                humantime::format_duration(std::time::Duration::from_secs(look.at_secs as u64))
            );
            let failures = match verdict {
                Ok(verdict) => look.failures(&verdict),
                Err(error) => vec![format!("no verdict: {error:#}")],
            };
            if failures.is_empty() {
                passed += 1;
                writeln!(out, "{label}: ok")?;
            } else {
                failed += 1;
                writeln!(out, "{label}: FAILED")?;
                for failure in failures {
                    writeln!(out, "  {failure}")?;
                }
            }
        }
    }
    Ok(Ok((passed, failed)))
}

/// A test file, checked and ready to run.
struct Suite {
    rules: LoadedRules,
    rule_set: Arc<RuleSet>,
    canary: SideSpec,
    baseline: SideSpec,
    vars: BTreeMap<String, String>,
    tests: Vec<Test>,
}

/// One test, its series stored.
struct Test {
    name: String,
    start_secs: i64,
    source: MemorySource,
    looks: Vec<Look>,
}

/// One look and its expectations.
struct Look {
    at_secs: i64,
    is_final: bool,
    verdict: Option<Outcome>,
    metrics: Vec<Expectation>,
}

/// One metric's expectation.
struct Expectation {
    metric: String,
    outcome: String,
    estimate: Option<(f64, f64)>,
    reason: Option<String>,
    shadow: Option<bool>,
}

impl Suite {
    /// Checks the raw file: the rule file loads, every duration, side,
    /// series and expectation can be read, and every query the plan would
    /// send is one the in-memory source evaluates.
    fn compile(path: &Path, raw: RawTestFile) -> Result<Suite, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut problem = |at: Location, message: String| {
            problems.push(Problem {
                path: path.to_path_buf(),
                at: place(at),
                message,
            })
        };
        let rule_path = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&raw.rules.value);
        let rule_set = match rules::load_file(&rule_path) {
            Ok(set) => Arc::new(set),
            Err(errors) => {
                let mut all: Vec<Problem> = vec![Problem {
                    path: path.to_path_buf(),
                    at: place(raw.rules.referenced),
                    message: format!("the rule file {} does not load:", rule_path.display()),
                }];
                all.extend(errors.into_iter().map(|e| Problem {
                    path: e.path,
                    at: (e.line as u64, e.column as u64),
                    message: e.message,
                }));
                return Err(all);
            }
        };
        let interval_secs = duration_secs(&raw.interval).unwrap_or_else(|message| {
            problem(raw.interval.referenced, message);
            15
        });
        if interval_secs == 0 {
            problem(
                raw.interval.referenced,
                "interval must be at least 1s".into(),
            );
        }
        let side = |spec: &Spanned<SideSpec>, name: &str| {
            spec.value
                .selector()
                .map_err(|e| (spec.referenced, format!("{name}: {e}")))
        };
        let canary = side(&raw.canary, "canary");
        let baseline = side(&raw.baseline, "baseline");
        let (canary_selector, baseline_selector) = match (canary, baseline) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                for (at, message) in [c.err(), b.err()].into_iter().flatten() {
                    problem(at, message);
                }
                return Err(problems);
            }
        };
        // The queries each side sends, to refuse a test whose rules the source cannot evaluate.
        let planned = plan::plan(&rule_set, &canary_selector, &baseline_selector, &raw.vars);
        match &planned {
            Ok(planned) => {
                for (metric, metric_plan) in rule_set.metrics.iter().zip(&planned.metrics) {
                    for query in metric_plan.canary.iter().chain(&metric_plan.baseline) {
                        if let Err(error) = MemorySource::supports(&query.promql) {
                            problem(
                                raw.rules.referenced,
                                format!(
                                    "metric `{}` (line {} of {}): {error}; its query: {}",
                                    metric.name,
                                    metric.line,
                                    rule_path.display(),
                                    query.promql
                                ),
                            );
                        }
                    }
                }
            }
            Err(error) => problem(
                raw.rules.referenced,
                format!("the queries cannot be planned: {error}"),
            ),
        }

        let mut tests = Vec::new();
        if raw.tests.is_empty() {
            problem(
                raw.rules.referenced,
                "the file has no tests under `tests`".into(),
            );
        }
        for spanned_test in &raw.tests {
            let test = &spanned_test.value;
            // A test that checks nothing would pass whatever the rules do.
            if test.evals.is_empty() {
                problem(
                    test.name.referenced,
                    format!("test `{}` has no looks under `evals`", test.name.value),
                );
            }
            let start_secs = match &test.start {
                None => 0,
                Some(start) => duration_secs(start).unwrap_or_else(|message| {
                    problem(start.referenced, message);
                    0
                }),
            };
            let mut stored = Vec::new();
            for (sides, selector, name) in [
                (&test.series.canary, &canary_selector, "canary"),
                (&test.series.baseline, &baseline_selector, "baseline"),
            ] {
                for series in sides {
                    match side_series(&series.value, selector, name, &raw.vars, interval_secs) {
                        Ok(one) => stored.push(one),
                        Err((at, message)) => problem(at, message),
                    }
                }
            }
            let mut looks = Vec::new();
            for eval in &test.evals {
                let eval = &eval.value;
                let at_secs = duration_secs(&eval.at).unwrap_or_else(|message| {
                    problem(eval.at.referenced, message);
                    0
                });
                if at_secs <= start_secs {
                    problem(
                        eval.at.referenced,
                        "`at` must come after the canary's start".to_string(),
                    );
                }
                let verdict = eval.verdict.as_ref().and_then(|v| match v.value.parse() {
                    Ok(outcome) => Some(outcome),
                    Err(_) => {
                        problem(
                            v.referenced,
                            format!(
                                "verdict `{}` is not promote, rollback or inconclusive",
                                v.value
                            ),
                        );
                        None
                    }
                });
                let mut metrics = Vec::new();
                for (metric, expectation) in &eval.metrics {
                    let at = expectation.referenced;
                    let expectation = &expectation.value;
                    if !rule_set.metrics.iter().any(|m| &m.name == metric) {
                        let names: Vec<&str> =
                            rule_set.metrics.iter().map(|m| m.name.as_str()).collect();
                        problem(
                            at,
                            format!(
                                "rule set `{}` has no metric `{metric}`; it has {}",
                                rule_set.name,
                                names.join(", ")
                            ),
                        );
                    }
                    let outcome = &expectation.outcome.value;
                    if !["pass", "fail", "inconclusive", "nodata", "error"]
                        .contains(&outcome.as_str())
                    {
                        problem(
                            expectation.outcome.referenced,
                            format!(
                                "outcome `{outcome}` is not pass, fail, inconclusive, nodata or error"
                            ),
                        );
                    }
                    if expectation.within.is_some() && expectation.estimate.is_none() {
                        problem(at, "`within` needs an `estimate` to be within of".into());
                    }
                    metrics.push(Expectation {
                        metric: metric.clone(),
                        outcome: outcome.clone(),
                        estimate: expectation.estimate.map(|value| {
                            (value, expectation.within.unwrap_or(DEFAULT_ESTIMATE_WITHIN))
                        }),
                        reason: expectation.reason.clone(),
                        shadow: expectation.shadow,
                    });
                }
                looks.push(Look {
                    at_secs,
                    is_final: eval.is_final,
                    verdict,
                    metrics,
                });
            }
            tests.push(Test {
                name: test.name.value.clone(),
                start_secs,
                source: MemorySource::new(stored),
                looks,
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let rules = LoadedRules {
            sets: BTreeMap::from([(rule_set.name.clone(), rule_set.clone())]),
            errors: Vec::new(),
        };
        Ok(Suite {
            rules,
            rule_set,
            canary: raw.canary.value,
            baseline: raw.baseline.value,
            vars: raw.vars,
            tests,
        })
    }

    /// Judges one look through the same pipe a real verdict takes.
    async fn judge(&self, test: &Test, look: &Look) -> Result<Verdict, pipe::PipeError> {
        let request = VerdictRequest {
            rules: self.rule_set.name.clone(),
            deployment: "rule-test".to_string(),
            canary: self.canary.clone(),
            baseline: self.baseline.clone(),
            start: Some(TimeSpec::Unix((TEST_EPOCH_SECS + test.start_secs) as f64)),
            end: None,
            vars: self.vars.clone(),
            is_final: look.is_final,
            final_after: None,
        };
        let now = OffsetDateTime::from_unix_timestamp(TEST_EPOCH_SECS + look.at_secs)
            .expect("a test's time lies in the years after 2026");
        // The test's series stand for whichever source the rule set names.
        let name = self.rule_set.source.as_deref().unwrap_or(DEFAULT_SOURCE);
        let sources = Sources::new(
            BTreeMap::from([(name.to_string(), test.source.clone())]),
            name,
        )
        .expect("the one source is the default");
        let run = pipe::Run::within(RULE_TEST_BUDGET, &NoRecorder);
        pipe::judge(&sources, &self.rules, None, request, now, run).await
    }
}

impl Look {
    /// Every way `verdict` differs from what this look expects, each with the
    /// figures behind it.
    fn failures(&self, verdict: &Verdict) -> Vec<String> {
        let mut failures = Vec::new();
        if let Some(expected) = self.verdict
            && expected != verdict.verdict
        {
            failures.push(format!(
                "verdict: expected {}, got {}: {}",
                expected.as_str(),
                verdict.verdict.as_str(),
                verdict.reason
            ));
        }
        for expectation in &self.metrics {
            let Some(report) = verdict
                .metrics
                .iter()
                .find(|m| m.name == expectation.metric)
            else {
                failures.push(format!(
                    "metric `{}`: not in the verdict",
                    expectation.metric
                ));
                continue;
            };
            // The outcome as the API and the test file spell it (`nodata`, not "no data").
            let actual = serde_json::to_value(report.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| report.outcome.word().to_string());
            let mut wrong = Vec::new();
            if actual != expectation.outcome {
                wrong.push(format!("expected {}, got {actual}", expectation.outcome));
            }
            if let Some((value, within)) = expectation.estimate {
                match &report.estimate {
                    Some(estimate) if (estimate.value - value).abs() <= within => {}
                    Some(estimate) => wrong.push(format!(
                        "expected an estimate of {value} ± {within}, got {}",
                        estimate.value
                    )),
                    None => wrong.push(format!("expected an estimate of {value}, got none")),
                }
            }
            if let Some(text) = &expectation.reason
                && !report.reason.contains(text.as_str())
            {
                wrong.push(format!("expected the reason to contain {text:?}"));
            }
            if let Some(shadow) = expectation.shadow
                && shadow != report.shadow
            {
                let word = |shadow: bool| if shadow { "shadow" } else { "live" };
                wrong.push(format!(
                    "expected a {} metric, got a {} one",
                    word(shadow),
                    word(report.shadow)
                ));
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "metric `{}`: {}\n    {}",
                    report.name,
                    wrong.join("; "),
                    figures(report)
                ));
            }
        }
        failures
    }
}

/// The numbers behind a metric's outcome, in one line.
fn figures(report: &MetricReport) -> String {
    let mut parts = vec![format!("reason: {}", report.reason)];
    let side = |name: &str, figures: &canary_gate::verdict::SideFigures| {
        let number = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
        format!(
            "{name}: bad {}, count {}, rate {}",
            number(figures.bad),
            number(figures.count),
            number(figures.value)
        )
    };
    parts.push(side("canary", &report.canary));
    parts.push(side("baseline", &report.baseline));
    if let Some(estimate) = &report.estimate {
        parts.push(format!(
            "estimate ({}): {} [{}, {}], tolerated [{}, {}]",
            estimate.unit,
            estimate.value,
            estimate.lower,
            estimate.upper,
            estimate.tolerated_lower,
            estimate.tolerated_upper
        ));
    }
    if let Some(evidence) = &report.evidence {
        parts.push(format!(
            "evidence: harm {}, safety {}, threshold {}",
            evidence.harm, evidence.safety, evidence.threshold
        ));
    }
    parts.join("\n    ")
}

/// serde-saphyr's message without its own "at line L, column C", which the
/// `file:line:col:` prefix already says.
fn without_place(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Whole seconds of a duration such as `15s` or `10m`.
fn duration_secs(text: &Spanned<String>) -> Result<i64, String> {
    humantime::parse_duration(text.value.trim())
        .map(|d| d.as_secs() as i64)
        .map_err(|e| {
            format!(
                "`{}` is not a duration such as `15s` or `10m` ({e})",
                text.value
            )
        })
}

/// `text` with each `$name` and `${name}` replaced by its value in `vars`, the
/// way rule files read them: a name is the longest run of letters, digits and `_`.
fn fill_vars(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut filled = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        filled.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').ok_or("a `${` has no closing `}`")?;
                (&braced[..end], end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        if name.is_empty() {
            filled.push('$');
        } else {
            let value = vars
                .get(name)
                .ok_or_else(|| format!("var `{name}` has no value under `vars`"))?;
            filled.push_str(value);
        }
        rest = &after[len..];
    }
    filled.push_str(rest);
    Ok(filled)
}

/// One input series of a side: its labels from `metric{...}` with `$vars`
/// filled in, the side's equality labels added, checked to belong to the side.
fn side_series(
    raw: &RawSeries,
    side: &SideSelector,
    side_name: &str,
    vars: &BTreeMap<String, String>,
    interval_secs: i64,
) -> Result<StoredSeries, (Location, String)> {
    let at = raw.series.referenced;
    let bad = |message: String| (at, message);
    let mut labels = memory::parse_series(&raw.series.value).map_err(bad)?;
    for value in labels.values_mut() {
        *value = fill_vars(value, vars).map_err(|e| bad(format!("`{}`: {e}", raw.series.value)))?;
    }
    for matcher in &side.matchers {
        if matcher.op == promql_parser::label::MatchOp::Equal {
            labels
                .entry(matcher.name.clone())
                .or_insert_with(|| matcher.value.clone());
        }
    }
    let label_value = |name: &str| labels.get(name).map(String::as_str).unwrap_or("");
    if let Some(outside) = side
        .matchers
        .iter()
        .find(|m| !m.is_match(label_value(&m.name)))
    {
        return Err(bad(format!(
            "`{}` is listed under {side_name} but does not match its selector ({outside})",
            raw.series.value
        )));
    }
    let values = notation::expand(&raw.values.value).map_err(|e| (raw.values.referenced, e))?;
    Ok(memory::series_from_values(
        labels,
        &values,
        TEST_EPOCH_SECS * 1000,
        interval_secs * 1000,
    ))
}
