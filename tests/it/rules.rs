//! Rule files: loading, defaults, and errors that name file, line and column.
//!
//! Expected positions were worked out by hand from the fixtures in
//! tests/fixtures/rules (1-based, the column of the offending key or value).

use std::path::{Path, PathBuf};

use canary_gate::rules::{self, MetricKind, NodataPolicy, RuleError, TimeoutPolicy};
use canary_gate::stats::Direction;
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(name)
}

/// The errors of a fixture as `line:col: message`, without the path.
fn errors_of(name: &str) -> Vec<String> {
    let path = fixture(name);
    match rules::load_file(&path) {
        Ok(_) => panic!("{name} should not load"),
        Err(errors) => errors
            .iter()
            .map(|e| {
                assert_eq!(e.path, path);
                format!("{}:{}: {}", e.line, e.column, e.message)
            })
            .collect(),
    }
}

// Pins the shipped rules/http.yaml: two metrics (the error rate and the
// latency distribution), `$service`, and the values the lead relies on.
#[test]
fn shipped_http_rules_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/http.yaml");
    let set = rules::load_file(&path).expect("shipped rules load");
    assert_eq!(set.name, "http");
    assert_eq!(set.vars, ["service"]);
    assert_eq!(set.alpha, 0.01);
    assert_eq!(set.step_secs, 15);
    let names: Vec<_> = set
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), m.line))
        .collect();
    assert_eq!(names, [("error-rate", 26), ("latency", 39)]);
    assert!(set.metrics[0].critical);
    match &set.metrics[0].kind {
        MetricKind::Ratio { rule, bad, .. } => {
            assert_eq!(rule.direction, Direction::Increase);
            assert_eq!(rule.tolerance, 0.0);
            assert_eq!(rule.min_requests, 300.0);
            assert!(rule.early_promotion);
            assert_eq!(
                bad.text,
                r#"http_requests_total{service="$service", code=~"5.."}"#
            );
        }
        other => panic!("error-rate compiled to {other:?}"),
    }
    match &set.metrics[1].kind {
        MetricKind::Distribution { histogram, rule } => {
            assert_eq!(rule.direction, Direction::Increase);
            assert_eq!(rule.tolerance, 0.1);
            assert_eq!(rule.min_requests, 300.0);
            assert_eq!(
                histogram.text,
                r#"http_request_duration_seconds_bucket{service="$service"}"#
            );
        }
        other => panic!("latency compiled to {other:?}"),
    }
    let bytes = std::fs::read(&path).expect("readable");
    assert_eq!(set.content_hash, hex::encode(Sha256::digest(&bytes)));
}

// Pins every field of the reference example in the brief, groups included.
#[test]
fn full_example_compiles() {
    let set = rules::load_file(&fixture("full.yaml")).expect("full example loads");
    assert_eq!(set.on_timeout, TimeoutPolicy::Rollback);
    assert_eq!(set.on_nodata, NodataPolicy::Ignore);
    assert_eq!(set.step_secs, 60);
    assert_eq!((set.scoring.pass, set.scoring.marginal), (90.0, 70.0));
    assert_eq!(set.groups.len(), 2);
    assert_eq!(
        (set.groups[0].name.as_str(), set.groups[0].weight),
        ("errors", 2.0)
    );
    assert_eq!(set.vars, ["env", "service"]);
    let groups: Vec<_> = set.metrics.iter().map(|m| m.group).collect();
    assert_eq!(groups, [0, 1, 1, 1]);
    match &set.metrics[0].kind {
        MetricKind::Ratio { rule, .. } => assert!(!rule.early_promotion),
        other => panic!("{other:?}"),
    }
    match &set.metrics[2].kind {
        MetricKind::Series {
            tolerance,
            allowed_increase,
            allowed_decrease,
            critical_increase,
            critical_decrease,
            looks,
            min_samples,
            ..
        } => {
            assert_eq!(*tolerance, 0.25);
            assert_eq!((*allowed_increase, *allowed_decrease), (1.1, 0.9));
            assert_eq!(
                (*critical_increase, *critical_decrease),
                (Some(1.5), Some(0.5))
            );
            assert_eq!((*looks, *min_samples), (1, 10));
        }
        other => panic!("{other:?}"),
    }
    match &set.metrics[3].kind {
        MetricKind::Threshold { min, max, .. } => assert_eq!((*min, *max), (None, Some(0.8))),
        other => panic!("{other:?}"),
    }
}

// Pins the defaults of every optional field, and implicit one-metric groups.
#[test]
fn defaults() {
    let set = rules::load_file(&fixture("minimal.yaml")).expect("minimal loads");
    assert_eq!(set.name, "minimal");
    assert_eq!(set.description, None);
    assert_eq!(set.alpha, rules::DEFAULT_ALPHA);
    assert_eq!(set.on_timeout, TimeoutPolicy::Promote);
    assert_eq!(set.on_nodata, NodataPolicy::Inconclusive);
    assert_eq!(set.step_secs, 15);
    assert_eq!((set.scoring.pass, set.scoring.marginal), (95.0, 75.0));
    assert_eq!(set.groups.len(), 1);
    assert_eq!(
        (set.groups[0].name.as_str(), set.groups[0].weight),
        ("up", 1.0)
    );
    assert!(!set.metrics[0].critical);
    assert!(set.vars.is_empty());

    let series = rules::load_str(
        Path::new("s.yaml"),
        "metrics:\n  - {name: cpu, kind: series, query: 'rate(cpu[1m])', direction: increase}\n  - {name: e, kind: ratio, bad: b, total: t, direction: decrease, tolerance: 5%}\n",
    )
    .expect("loads");
    match &series.metrics[0].kind {
        MetricKind::Series {
            tolerance,
            allowed_increase,
            allowed_decrease,
            critical_increase,
            looks,
            min_samples,
            ..
        } => {
            assert_eq!(*tolerance, rules::DEFAULT_SERIES_TOLERANCE);
            assert_eq!((*allowed_increase, *allowed_decrease), (1.0, 1.0));
            assert_eq!(*critical_increase, None);
            assert_eq!((*looks, *min_samples), (1, rules::DEFAULT_MIN_SAMPLES));
        }
        other => panic!("{other:?}"),
    }
    match &series.metrics[1].kind {
        MetricKind::Ratio { rule, .. } => {
            assert_eq!(rule.min_requests, rules::DEFAULT_MIN_REQUESTS);
            assert_eq!(rule.tolerance, 0.05);
            assert!(rule.early_promotion);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((series.metrics[0].group, series.metrics[1].group), (0, 1));
}

// Pins the Display format `path:line:col: message`, and `path: message`
// for problems of a whole file.
#[test]
fn error_display() {
    let at = RuleError::at(Path::new("rules/http.yaml"), 7, 5, "unknown field");
    assert_eq!(at.to_string(), "rules/http.yaml:7:5: unknown field");
    let whole = RuleError::whole(Path::new("rules"), "cannot read");
    assert_eq!(whole.to_string(), "rules: cannot read");
    let boxed: Box<dyn std::error::Error> = Box::new(at);
    assert!(boxed.to_string().starts_with("rules/http.yaml:7:5:"));
}

// Pins the unknown-key message: position of the key, a suggestion, the list.
#[test]
fn unknown_field_suggests_the_close_name() {
    let errors = errors_of("unknown-field.yaml");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "7:5: unknown field `tolerence`; did you mean `tolerance`? expected one of `name`, `kind`, "
        ),
        "{errors:?}"
    );
    let path = fixture("unknown-field.yaml");
    let shown = rules::load_file(&path).unwrap_err()[0].to_string();
    assert!(shown.starts_with(&format!("{}:7:5: unknown field", path.display())));
}

// Pins that one file's value problems are all reported, top to bottom.
#[test]
fn value_errors_are_all_collected() {
    assert_eq!(
        errors_of("bad-values.yaml"),
        [
            "1:8: alpha must lie in (0, 0.5], such as 0.01 for a 1% chance of rolling back a healthy canary",
            "2:7: step `15` needs a unit; write a duration such as '15s' or '1m'",
            "3:31: scoring `marginal` (90) must not exceed `pass` (80); a marginal score lies below a passing one",
            "5:12: group `errors` is declared but no metric names it; remove it or set `group: errors` on a metric",
            "9:12: group `erors` is not declared; did you mean `errors`? declared groups: errors",
            "10:10: `bad` is a range vector; drop the `[...]` range and give the counter itself, canary-gate takes the increase over the window",
            "11:12: bad PromQL in `total`: unclosed left parenthesis",
            "13:16: tolerance must be a percentage such as '+10%'; a bare number like 10 is ambiguous",
            "17:16: `histogram` must not match on `le`; canary-gate picks the buckets it needs from `threshold_seconds` itself",
            "18:24: threshold_seconds must be a number of seconds above 0, such as 0.25",
            "20:16: tolerance `+20%` points the other way than direction `decrease`; write '-20%'",
            "21:10: `max` does not apply to kind `latency`; its fields are name, kind, group, critical, shadow, histogram, threshold_seconds, direction, tolerance, min_requests, early_promotion, final_test_after",
            "22:5: threshold metric has neither `min` nor `max`; add at least one bound, such as `max: 0.8`",
            "22:11: metric name `error-rate` is already used on line 7; give each metric its own name",
        ]
    );
}

// Pins the metric-level checks: names, kinds, duplicates, misplaced fields,
// missing keys, tolerance sign, series ratios and looks.
#[test]
fn metric_shape_errors() {
    assert_eq!(
        errors_of("metric-shape.yaml"),
        [
            "8:11: metric name `Errors` must be lowercase letters, digits, `-` and `_`, starting with a letter or digit",
            "9:11: kind `gauge` is not known; write one of ratio, latency, series, threshold",
            "10:11: metric name `errors` is already used on line 2; give each metric its own name",
            "14:16: direction `up` is not known; write increase, decrease or either",
            "16:24: `threshold_seconds` does not apply to kind `ratio`; its fields are name, kind, group, critical, shadow, bad, total, direction, tolerance, min_requests, early_promotion, final_test_after",
            "17:5: metric has no `kind`; add `kind:` with one of ratio, latency, series, threshold",
            "19:5: metric has no `name`; add one such as `name: error-rate`",
            "22:16: tolerance `+5%` is one-sided but direction is `either`; write '±5%'",
            "23:23: allowed_increase is a ratio of means and must be at least 1, such as 1.1",
            "24:12: looks must be a whole number from 1 to 1000; 1 judges once, at the end of the window (or the final look)",
        ]
    );
}

// Pins the PromQL checks: parser message, range vectors, no selector, `or`
// inside braces, and a malformed `${`.
#[test]
fn promql_errors() {
    assert_eq!(
        errors_of("bad-promql.yaml"),
        [
            "4:12: bad PromQL in `query`: unclosed left parenthesis",
            "8:10: `bad` is a range vector; drop the `[...]` range and give the counter itself, canary-gate takes the increase over the window",
            "9:12: `total` reads no metric, so canary-gate cannot tell canary from baseline; query a metric such as http_requests_total{service=\"$service\"}",
            "14:12: `query` uses `or` inside a selector's braces, which Prometheus does not accept; join two whole selectors with `or` instead",
            "14:12: `query` label `c`: `${` has no closing `}`; write `${name}`",
        ]
    );
}

// Pins the YAML-level errors: broken syntax, duplicate keys, wrong types.
#[test]
fn yaml_errors() {
    assert_eq!(
        errors_of("duplicate-key.yaml"),
        ["2:1: key `alpha` appears twice in the same mapping; keep one"]
    );
    assert_eq!(
        errors_of("empty-metrics.yaml"),
        ["2:10: `metrics` is empty; add at least one metric"]
    );
    assert_eq!(
        errors_of("unclosed-quote.yaml"),
        ["2:11: the file is not a valid rule file: unclosed quote"]
    );
    assert_eq!(
        errors_of("wrong-type.yaml"),
        ["1:8: this value must be a number such as 0.5"]
    );
    let broken = errors_of("broken-yaml.yaml");
    assert_eq!(broken.len(), 1);
    assert!(broken[0].starts_with("3:11: "), "{broken:?}");
}

// Pins the bare-number tolerance sentence and the percentage spellings.
#[test]
fn tolerance_spellings() {
    let metric = |tolerance: &str, direction: &str| {
        rules::load_str(
            Path::new("t.yaml"),
            &format!(
                "metrics:\n  - name: e\n    kind: ratio\n    bad: b\n    total: t\n    direction: {direction}\n    tolerance: {tolerance}\n"
            ),
        )
    };
    let tolerance_of = |tolerance: &str, direction: &str| match metric(tolerance, direction)
        .expect("compiles")
        .metrics[0]
        .kind
    {
        MetricKind::Ratio { rule, .. } => rule.tolerance,
        _ => unreachable!("a ratio metric"),
    };
    assert_eq!(tolerance_of("+10%", "increase"), 0.1);
    assert_eq!(tolerance_of("'-10%'", "decrease"), 0.1);
    assert_eq!(tolerance_of("±10%", "either"), 0.1);
    assert_eq!(tolerance_of("+-10%", "either"), 0.1);
    assert_eq!(tolerance_of("10%", "either"), 0.1);
    let errors = metric("0.1", "increase").unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "t.yaml:7:16: tolerance must be a percentage such as '+10%'; a bare number like 0.1 is ambiguous"
    );
    let errors = metric("1001%", "increase").unwrap_err();
    assert_eq!(
        errors[0].message,
        "tolerance `1001%` must lie between 0% and 1000%"
    );
}

// Pins `$var` collection: both spellings, a lone `$` literal, sorted, unique.
#[test]
fn vars_are_collected() {
    let set = rules::load_str(
        Path::new("v.yaml"),
        "metrics:\n  - name: m\n    kind: threshold\n    query: 'x{a=\"$zone\", b=~\"${app}-.*$\", c=\"$\"} + y{d=\"$app\"}'\n    max: 1\n",
    )
    .expect("compiles");
    assert_eq!(set.vars, ["app", "zone"]);
}

// Pins the step forms accepted and refused.
#[test]
fn step_durations() {
    let step = |text: &str| {
        rules::load_str(
            Path::new("s.yaml"),
            &format!(
                "step: {text}\nmetrics:\n  - {{name: up, kind: threshold, query: up, min: 1}}\n"
            ),
        )
        .map(|set| set.step_secs)
        .map_err(|errors| errors[0].message.clone())
    };
    assert_eq!(step("15s"), Ok(15));
    assert_eq!(step("2m"), Ok(120));
    assert_eq!(step("1h"), Ok(3600));
    assert_eq!(
        step("1500ms"),
        Err(format!(
            "step `1500ms` must be a whole number of seconds from 1s to {}s",
            rules::MAX_STEP_SECS
        ))
    );
    assert!(step("2h").is_err());
    assert_eq!(
        step("soon"),
        Err("step `soon` is not a duration; write one such as '15s' or '1m'".to_string())
    );
}

// Pins load_named: the asked set's file alone is read (a broken sibling is
// not even parsed), and anything else falls back to load_dir's whole answer,
// so a missing, broken or path-like name is told as the folder tells it.
#[test]
fn load_named_reads_one_file_and_falls_back_to_the_folder() {
    let dir = fixture("");
    let one = rules::load_named(&dir, "minimal");
    let names: Vec<_> = one.sets.keys().map(String::as_str).collect();
    assert_eq!(names, ["minimal"]);
    assert!(one.errors.is_empty(), "{:?}", one.errors);
    assert_eq!(
        one.sets["minimal"].content_hash,
        rules::load_dir(&dir).sets["minimal"].content_hash
    );

    let whole = rules::load_dir(&dir);
    let errors = |loaded: &rules::LoadedRules| -> Vec<String> {
        loaded.errors.iter().map(|e| e.to_string()).collect()
    };
    for asked in ["nope", "bad-values", "../rules/minimal", "", "."] {
        let loaded = rules::load_named(&dir, asked);
        assert_eq!(
            loaded.sets.keys().collect::<Vec<_>>(),
            whole.sets.keys().collect::<Vec<_>>(),
            "{asked}"
        );
        assert_eq!(errors(&loaded), errors(&whole), "{asked}");
    }
}

// Pins load_dir: only YAML files, failing files absent but reported, and a
// missing directory reported as one error.
#[test]
fn load_dir_collects_sets_and_errors() {
    let loaded = rules::load_dir(&fixture(""));
    let names: Vec<_> = loaded.sets.keys().map(String::as_str).collect();
    assert_eq!(names, ["full", "minimal"]);
    assert!(
        loaded
            .errors
            .iter()
            .any(|e| e.path.ends_with("bad-values.yaml"))
    );
    assert!(
        loaded
            .errors
            .iter()
            .any(|e| e.path.ends_with("Bad Name.yaml") && e.line == 0)
    );
    assert!(
        !loaded
            .errors
            .iter()
            .any(|e| e.path.ends_with("not-rules.txt"))
    );

    let missing = rules::load_dir(&fixture("does-not-exist"));
    assert!(missing.sets.is_empty());
    assert_eq!(missing.errors.len(), 1);
    assert!(
        missing.errors[0]
            .to_string()
            .contains("does-not-exist: cannot read the rules directory:"),
        "{}",
        missing.errors[0]
    );
}

// Pins that the rule set name comes from the file stem and must be plain.
#[test]
fn rule_set_name_must_be_plain() {
    assert_eq!(
        errors_of("Bad Name.yaml"),
        [
            "0:0: rule set name `Bad Name` (the file name without extension) must be lowercase letters, digits, `-` and `_`; rename the file"
        ]
    );
}
