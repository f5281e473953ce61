//! Hostile input end to end and as properties: values in matcher maps,
//! selector strings and `vars` reach a real Prometheus as label values, in
//! queries of the same shape as with harmless values; selector strings that
//! try to be more than matchers are refused before any query; and the rule
//! parser and the planner never panic on any input.

use std::collections::BTreeMap;
use std::path::Path;

use canary_gate::plan::{self, PlanError};
use canary_gate::request::SideSelector;
use canary_gate::rules::{self, RuleSet};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::plan::{HOSTILE, matcher_set, selectors};
use crate::support::prometheus::TestPrometheus;
use crate::support::{TestApp, repo_root, request, spawn_app, two_services, window_start};

/// Where a hostile value goes in a verdict request.
#[derive(Clone, Copy, Debug)]
enum Position {
    CanaryMap,
    BaselineMap,
    CanarySelector,
    Var,
}

/// A PromQL double-quoted string literal holding `value`.
fn promql_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn body_with(position: Position, value: &str, start: i64) -> Value {
    let mut body = request("search", start, start + 600, false);
    match position {
        Position::CanaryMap => body["canary"] = json!({ "track": value }),
        Position::BaselineMap => body["baseline"] = json!({ "track": value }),
        Position::CanarySelector => {
            body["canary"] = json!(format!("{{track={}}}", promql_string(value)))
        }
        Position::Var => body["vars"] = json!({ "service": value }),
    }
    body
}

fn sent_queries(verdict: &Value) -> Vec<String> {
    verdict["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .flat_map(|m| m["queries"].as_array().expect("queries").clone())
        .filter_map(|q| q["promql"].as_str().map(str::to_string))
        .collect()
}

async fn verdict_for(app: &TestApp, body: &Value) -> (u16, Value) {
    app.post_verdict(body).await
}

// Quotes, braces, backslashes, newlines, `or vector(1)` and unicode in the canary's and
// baseline's matcher maps, in a selector string and in a var reach a real Prometheus
// exactly as planned: each query is the harmless one with only the label value changed,
// the value is one matcher of every selector, and no such value makes a promote.
#[tokio::test]
async fn hostile_values_keep_the_query_shape_at_prometheus() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let harmless = "harmless";
    let extra = ["a\"b\\c\nd) or vector(1) #", "\u{202e}ﬀ\u{1F600}\u{0301}"];
    for position in [
        Position::CanaryMap,
        Position::BaselineMap,
        Position::CanarySelector,
        Position::Var,
    ] {
        let (status, expected) = verdict_for(&app, &body_with(position, harmless, start)).await;
        assert_eq!(status, 200, "{expected}");
        let expected = sent_queries(&expected);
        for value in HOSTILE.iter().chain(extra.iter()) {
            let (status, verdict) = verdict_for(&app, &body_with(position, value, start)).await;
            if value.is_empty() && !matches!(position, Position::Var) {
                // An empty value matches every series; the side is refused.
                assert_eq!(status, 400, "{verdict}");
                continue;
            }
            assert_eq!(status, 200, "{position:?} {value:?}: {verdict}");
            assert_ne!(verdict["verdict"], "promote", "{position:?} {value:?}");
            let sent = sent_queries(&verdict);
            assert_eq!(sent.len(), expected.len());
            let log = prometheus.query_log();
            let (name, literal) = match position {
                Position::Var => ("service", promql_string(value)),
                _ => ("track", promql_string(value)),
            };
            for (query, harmless_query) in sent.iter().zip(&expected) {
                assert!(log.contains(query), "{query} never reached Prometheus");
                // The same query as with the harmless value, the literal aside.
                let swapped = query.replace(
                    &format!("{name}={literal}"),
                    &format!("{name}={}", promql_string(harmless)),
                );
                if swapped == *query {
                    // This query is the other side's: it must be the harmless one unchanged.
                    assert_eq!(query, harmless_query, "{position:?} {value:?}");
                    continue;
                }
                assert_eq!(&swapped, harmless_query, "{position:?} {value:?}");
                // And read back, every selector carries the value as one equality matcher.
                let reread = promql_parser::parser::parse(query)
                    .unwrap_or_else(|e| panic!("{query} does not parse: {e}"));
                for selector in selectors(&reread) {
                    let set = matcher_set(&selector.matchers.matchers);
                    assert!(
                        set.contains(&(name.to_string(), "=".to_string(), value.to_string())),
                        "{query}: {set:?}"
                    );
                }
            }
        }
    }
    app.stop().await;
}

// Selector strings that try to add a function, a range, an offset, `or`, a second
// selector or a metric name are refused with 400, and nothing reaches Prometheus.
#[tokio::test]
async fn selector_strings_that_are_more_than_matchers_are_refused() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let attempts = [
        r#"{track="canary"} or vector(1)"#,
        r#"{track="canary"}) or vector(1) or ("#,
        r#"{track="canary"}[5m]"#,
        r#"sum({track="canary"})"#,
        r#"{track="canary"} offset 1h"#,
        r#"{track="canary"} @ 0"#,
        r#"{track="canary" or track="baseline"}"#,
        r#"{__name__="up",track="canary"}"#,
        r#"up{track="canary"}"#,
        r#"{track="canary",le="1"}"#,
        r#"{track="canary"}}"#,
        r#"{track="can\x00ary"}"#,
        r#"{track=~".*"}"#,
        "{track=\"canary\"}\n{track=\"baseline\"}",
        "",
        // Panicked inside the PromQL parser (fuzz crash-1a84bfca): now a 400 like the rest.
        r#"{track="canary"} offset 555555555555555555555555555555555555555555555555"#,
        "track=canary,pod=~web-.*",
    ];
    for attempt in attempts {
        let mut body = request("search", start, start + 600, false);
        body["canary"] = json!(attempt);
        let (status, answer) = app.post_verdict(&body).await;
        assert_eq!(status, 400, "{attempt:?} -> {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    prometheus.assert_no_queries();
    app.stop().await;
}

// A body over the size limit gets 413 with a JSON error, before anything is parsed.
#[tokio::test]
async fn oversized_body_is_413_with_a_json_error() {
    let app = spawn_app("http://127.0.0.1:9", &repo_root().join("rules")).await;
    let response = app
        .client
        .post(format!("{}/v1/verdicts", app.url))
        .header("content-type", "application/json")
        .body(vec![b' '; canary_gate::http::MAX_BODY_BYTES + 1])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 413);
    let answer: Value = response.json().await.expect("JSON error");
    assert_eq!(answer["error"]["code"], "payload_too_large", "{answer}");
    app.stop().await;
}

// Windows longer than the limit, `end` far in the future and `start` after `end` are 400s.
#[tokio::test]
async fn absurd_windows_are_refused() {
    let app = spawn_app("http://127.0.0.1:9", &repo_root().join("rules")).await;
    let start = window_start();
    let year = 365 * 24 * 3600;
    for (start, end, needle) in [
        (start - year, start, "judges at most"),
        (start, start + 100 * year, "lies in the future"),
        (start, start - 1, "must come before"),
        (0, 1, "must come before"),
    ] {
        let mut body = request("search", start, end, false);
        if start == 0 {
            body["start"] = json!(1e30);
        }
        let (status, answer) = app.post_verdict(&body).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(needle) || message.contains("not a unix time"),
            "{message}"
        );
    }
    app.stop().await;
}

fn http_rules() -> RuleSet {
    rules::load_file(&repo_root().join("rules/http.yaml")).expect("rules/http.yaml")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Any text, weighted towards the characters PromQL and YAML treat specially.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just("{".to_string()),
                Just("}".to_string()),
                Just("\n".to_string()),
                Just(" or vector(1) ".to_string()),
                Just("$service".to_string()),
                Just("=~".to_string()),
                Just(",".to_string()),
                "[a-z]{1,3}".prop_map(String::from),
                any::<char>().prop_map(String::from),
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    // Any canary label value and var value either is refused with a reason or plans to
    // queries that read back with exactly that value in every selector, never a render mismatch.
    #[test]
    fn any_value_stays_a_label_value(value in nasty_text(), var in nasty_text()) {
        let rules = http_rules();
        let canary = SideSelector::from_map(&map(&[("track", &value)]));
        let baseline = SideSelector::from_map(&map(&[("track", "baseline")])).expect("valid");
        let Ok(canary) = canary else { return Ok(()) };
        match plan::plan(&rules, &canary, &baseline, &map(&[("service", &var)])) {
            Err(PlanError::RenderMismatch { promql, .. }) => {
                prop_assert!(false, "render mismatch: {}", promql);
            }
            Err(_) => {}
            Ok(planned) => {
                for query in planned.metrics.iter().flat_map(|m| &m.canary) {
                    let reread = promql_parser::parser::parse(&query.promql)
                        .map_err(|e| TestCaseError::fail(format!("{}: {e}", query.promql)))?;
                    let found = selectors(&reread);
                    prop_assert!(!found.is_empty());
                    for selector in found {
                        let set = matcher_set(&selector.matchers.matchers);
                        prop_assert!(set.contains(&("track".into(), "=".into(), value.clone())), "{}", query.promql);
                        prop_assert!(set.contains(&("service".into(), "=".into(), var.clone())), "{}", query.promql);
                    }
                }
            }
        }
    }

    // Any selector string is refused or round-trips: the planned query carries exactly its matchers.
    #[test]
    fn any_selector_string_round_trips(text in prop_oneof![
        nasty_text(),
        nasty_text().prop_map(|t| format!("{{track={}}}", promql_string(&t))),
        (nasty_text(), nasty_text()).prop_map(|(a, b)| format!("{{{a}=\"{b}\"}}")),
    ]) {
        let Ok(side) = SideSelector::parse(&text) else { return Ok(()) };
        let rules = rules::load_str(
            Path::new("x.yaml"),
            "metrics:\n  - name: m\n    kind: threshold\n    query: x\n    max: 1\n",
        ).expect("valid rules");
        let other = SideSelector::from_map(&map(&[("zz_other", "side")])).expect("valid");
        let Ok(planned) = plan::plan(&rules, &side, &other, &BTreeMap::new()) else { return Ok(()) };
        let promql = &planned.metrics[0].canary[0].promql;
        let reread = promql_parser::parser::parse(promql)
            .map_err(|e| TestCaseError::fail(format!("{promql}: {e}")))?;
        let found = selectors(&reread);
        prop_assert_eq!(found.len(), 1);
        let mut want = matcher_set(&side.matchers);
        want.push(("__name__".into(), "=".into(), "x".into()));
        want.sort();
        let mut got = matcher_set(&found[0].matchers.matchers);
        if let Some(name) = &found[0].name {
            got.push(("__name__".into(), "=".into(), name.clone()));
            got.sort();
        }
        got.dedup();
        want.dedup();
        prop_assert_eq!(got, want, "{}", promql);
    }

    // The rule parser never panics, on any text or on damaged copies of the shipped rules.
    #[test]
    fn rule_parser_never_panics(
        text in nasty_text(),
        cut in 0usize..4000,
        insert in nasty_text(),
    ) {
        let _ = rules::load_str(Path::new("t.yaml"), &text);
        let shipped = std::fs::read_to_string(repo_root().join("rules/http.yaml")).expect("rules");
        let at = shipped.char_indices().map(|(i, _)| i).find(|i| *i >= cut % shipped.len()).unwrap_or(0);
        let damaged = format!("{}{insert}{}", &shipped[..at], &shipped[at..]);
        let _ = rules::load_str(Path::new("http.yaml"), &damaged);
        let _ = rules::load_str(Path::new("http.yaml"), &shipped[..at]);
    }
}
