//! The OpenAPI document tells the truth: every route of the router is in it,
//! and real answers (successes and errors) have documented statuses and match
//! their schemas.

use std::sync::Arc;

use canary_gate::http::auth::{AccessPolicy, Tokens};
use serde_json::{Value, json};

use crate::support::prometheus::TestPrometheus;
use crate::support::{
    TestApp, app_state, repo_root, request, spawn_app, spawn_state, two_services, window_start,
};

fn document() -> Value {
    serde_json::from_str(canary_gate::http::openapi::DOCUMENT).expect("the document is JSON")
}

/// `(method, path)` of every `.route(...)` in the server's sources, read from the text.
fn routes_in_source() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for file in ["src/http/mod.rs", "src/http/rules.rs"] {
        let text = std::fs::read_to_string(repo_root().join(file)).expect("source");
        for chunk in text.split(".route(").skip(1) {
            let path = chunk
                .split('"')
                .nth(1)
                .expect("a route starts with its path")
                .to_string();
            // The method routers sit between the path and the next builder call.
            let end = [
                ".route(",
                ".merge(",
                ".fallback(",
                ".layer(",
                ".with_state(",
            ]
            .iter()
            .filter_map(|stop| chunk.find(stop))
            .min()
            .unwrap_or(chunk.len());
            for method in ["get", "post", "put", "delete", "patch"] {
                let call = format!("{method}(");
                let used = chunk[..end].match_indices(&call).any(|(at, _)| {
                    at == 0 || !chunk[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if used {
                    routes.push((method.to_string(), path.clone()));
                }
            }
        }
    }
    routes
}

// Every route the router serves is an operation of the document, and the other way round.
#[test]
fn every_route_is_documented() {
    let document = document();
    let routes = routes_in_source();
    assert!(routes.len() >= 8, "found routes: {routes:?}");
    for (method, path) in &routes {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is served but not in src/http/openapi.json"
        );
    }
    let paths = document["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            assert!(
                routes.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is documented but not served"
            );
        }
    }
}

/// Checks that `status` is documented for the operation and `body` matches its schema.
fn assert_conforms(method: &str, path: &str, status: u16, body: &Value) {
    let document = document();
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let mut response = operation["responses"][status.to_string()].clone();
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which is not documented: {body}"
    );
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.rsplit('/').next().expect("ref name");
        response = document["components"]["responses"][name].clone();
    }
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status} has no JSON schema"
    );
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{method} {path} {status} does not match its schema: {problems:#?}\n{body:#}"
    );
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let url = format!("{}{path}", app.url);
    let mut builder = match method {
        "post" => app.client.post(url),
        _ => app.client.get(url),
    };
    if let Some(body) = body {
        builder = builder.json(body);
    }
    let response = builder.send().await.expect("answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

// Real answers of every endpoint, from a real Prometheus, match the document:
// verdicts, history, rules with a broken file, reloads, readiness, and the errors.
#[tokio::test]
async fn real_answers_match_their_schemas() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo_root().join("rules/http.yaml"),
        rules.path().join("http.yaml"),
    )
    .expect("copy rules");
    std::fs::write(rules.path().join("broken.yaml"), "metrics: [\n").expect("write");
    let app = spawn_app(&prometheus.url, rules.path()).await;

    let rollback = request("search", start, start + 600, false);
    let (status, verdict) = call(&app, "post", "/v1/verdicts", Some(&rollback)).await;
    assert_eq!(status, 200, "{verdict}");
    assert_conforms("post", "/v1/verdicts", status, &verdict);
    let promote = request("checkout", start, start + 30 * 60, true);
    let (status, answer) = call(&app, "post", "/v1/verdicts", Some(&promote)).await;
    assert_conforms("post", "/v1/verdicts", status, &answer);

    let mut unknown = rollback.clone();
    unknown["rules"] = json!("nope");
    let mut reversed = rollback.clone();
    reversed["end"] = json!(start - 60);
    let mut huge = rollback.clone();
    huge["deployment"] = json!("x".repeat(canary_gate::http::MAX_BODY_BYTES));
    for (body, expected) in [(unknown, 404), (reversed, 400), (huge, 413)] {
        let (status, answer) = call(&app, "post", "/v1/verdicts", Some(&body)).await;
        assert_eq!(status, expected, "{answer}");
        assert_conforms("post", "/v1/verdicts", status, &answer);
    }

    // The document's own Flagger example is a request the server judges.
    let example = &document()["paths"]["/v1/flagger"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    let (status, answer) = call(&app, "post", "/v1/flagger", Some(example)).await;
    assert_eq!(status, 200, "{answer}");
    assert_conforms("post", "/v1/flagger", status, &answer);

    let id = verdict["id"].as_str().expect("id");
    for (method, path, template) in [
        ("get", "/v1/verdicts".to_string(), "/v1/verdicts"),
        ("get", "/v1/verdicts?limit=-1".to_string(), "/v1/verdicts"),
        ("get", format!("/v1/verdicts/{id}"), "/v1/verdicts/{id}"),
        ("get", "/v1/verdicts/nope".to_string(), "/v1/verdicts/{id}"),
        ("get", "/v1/rules".to_string(), "/v1/rules"),
        ("post", "/v1/rules/reload".to_string(), "/v1/rules/reload"),
        ("get", "/readyz".to_string(), "/readyz"),
        ("get", "/openapi.json".to_string(), "/openapi.json"),
    ] {
        let (status, answer) = call(&app, method, &path, None).await;
        assert_conforms(method, template, status, &answer);
    }
    let (_, page) = call(&app, "get", "/v1/rules", None).await;
    assert_eq!(
        page["errors"][0]["file"]
            .as_str()
            .map(|f| f.ends_with("broken.yaml")),
        Some(true),
        "{page:#}"
    );
    app.stop().await;

    // Not ready: Prometheus unreachable.
    let nowhere = spawn_app("http://127.0.0.1:9", rules.path()).await;
    let (status, answer) = call(&nowhere, "get", "/readyz", None).await;
    assert_eq!(status, 503);
    assert_conforms("get", "/readyz", status, &answer);
    nowhere.stop().await;
}

// 401s, unknown paths and wrong methods are JSON errors too.
#[tokio::test]
async fn framework_errors_are_json_errors() {
    let (state, log_dir) = app_state("http://127.0.0.1:9", &repo_root().join("rules"));
    let access = AccessPolicy {
        tokens: Tokens::from_sources(None, Some("a-token-for-the-contract-test")).expect("token"),
        protect_reads: false,
    };
    let app = spawn_state(Arc::new(state.with_access(access)), log_dir).await;
    let (status, answer) = call(&app, "post", "/v1/rules/reload", None).await;
    assert_eq!(status, 401);
    assert_conforms("post", "/v1/rules/reload", status, &answer);
    for (method, path, expected) in [("get", "/nope", 404), ("post", "/readyz", 405)] {
        let (status, answer) = call(&app, method, path, None).await;
        assert_eq!(status, expected, "{method} {path}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    app.stop().await;
}

// The conformance check itself rejects an answer that breaks its schema.
#[test]
#[should_panic(expected = "does not match its schema")]
fn conformance_check_rejects_a_wrong_body() {
    assert_conforms("get", "/readyz", 200, &json!({"ready": "yes"}));
}
