//! Flagger's webhooks as a door into the pipe: Flagger POSTs a small JSON
//! payload at every analysis iteration and fails the check on any non-2xx
//! answer. The webhook's `metadata` says what to judge.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::request::{SideSpec, VerdictRequest};
use crate::source::MetricSource;
use crate::verdict::{MetricOutcome, Outcome, Verdict};

/// Metadata key prefix for the rule set's `$vars`: `var.service: checkout`.
pub const VAR_PREFIX: &str = "var.";

/// The body Flagger sends to a webhook.
#[derive(Clone, Debug, Deserialize)]
pub struct WebhookPayload {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub phase: Option<String>,
    /// Changes with every new canary revision.
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Why a payload cannot become a verdict request.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(String);

/// Turns Flagger's payload into a verdict request. Metadata keys: `rules`
/// (required), `canary` and `baseline` (label matchers; default
/// `app=<name>` and `app=<name>-primary`, Flagger's own labels),
/// `final_after` (e.g. `30m`), `var.<name>` for each `$var`, and `token`
/// (read by the access check, never copied into the request). The
/// deployment is `<namespace>/<name>-<checksum>`, so each revision is judged
/// from its own first look.
pub fn to_request(payload: &WebhookPayload) -> Result<VerdictRequest, PayloadError> {
    let metadata = &payload.metadata;
    let rules = metadata.get("rules").cloned().ok_or_else(|| {
        PayloadError("the webhook's metadata needs `rules`, the rule set to apply".into())
    })?;
    let side = |key: &str, default: String| -> SideSpec {
        match metadata.get(key) {
            Some(text) => SideSpec::Selector(text.clone()),
            None => SideSpec::Labels(BTreeMap::from([("app".to_string(), default)])),
        }
    };
    let vars = metadata
        .iter()
        .filter_map(|(key, value)| {
            key.strip_prefix(VAR_PREFIX)
                .map(|name| (name.to_string(), value.clone()))
        })
        .collect();
    let revision = payload
        .checksum
        .as_deref()
        .map(|c| format!("-{c}"))
        .unwrap_or_default();
    Ok(VerdictRequest {
        rules,
        deployment: format!("{}/{}{revision}", payload.namespace, payload.name),
        canary: side("canary", payload.name.clone()),
        baseline: side("baseline", format!("{}-primary", payload.name)),
        start: None,
        end: None,
        vars,
        is_final: false,
        final_after: metadata.get("final_after").cloned(),
    })
}

/// The HTTP status Flagger reads: 2xx passes the check, anything else fails it.
/// A rollback fails it (412), and so does a verdict that could not see a metric
/// or is still undecided at the final look (503): canary-gate never passes a
/// check it could not judge. A shadow metric, never counted, changes nothing.
pub fn status_for(verdict: &Verdict) -> StatusCode {
    let unseen = verdict
        .metrics
        .iter()
        .any(|m| !m.shadow && m.outcome == MetricOutcome::Error);
    let undecided_at_the_end = verdict.is_final && verdict.verdict == Outcome::Inconclusive;
    if verdict.verdict == Outcome::Rollback {
        StatusCode::PRECONDITION_FAILED
    } else if unseen || undecided_at_the_end {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// `POST /v1/flagger`: 200 to pass the check, 412 for a rollback, 503 when a
/// metric could not be read; the verdict is the body either way.
pub async fn webhook<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Verdict>), ApiError> {
    let payload: WebhookPayload = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body is not a Flagger webhook payload: {e}"))
    })?;
    let request = to_request(&payload).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let verdict = state.judge(request).await?;
    let status = status_for(&verdict);
    Ok((status, Json(state.with_report_url(&headers, verdict))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(outcome: &str, is_final: bool, metric_outcome: &str) -> Verdict {
        serde_json::from_value(serde_json::json!({
            "id": "v", "verdict": outcome, "reason": "r", "deployment": "d", "rules": "http",
            "rules_hash": "h", "canary": "{}", "baseline": "{}",
            "window": {"start": "s", "end": "e", "start_secs": 0, "end_secs": 60, "step_secs": 15},
            "final": is_final, "score": 100.0, "judged_at": "t",
            "metrics": [{"name": "m", "kind": "ratio", "group": "m", "critical": false,
                         "outcome": metric_outcome, "reason": "r", "canary": {}, "baseline": {},
                         "queries": []}],
        }))
        .expect("a verdict")
    }

    // Flagger passes the check only for a healthy or not-yet-decided canary it could see;
    // a rollback, an unreadable metric and an undecided final look all fail it.
    #[test]
    fn statuses_never_pass_what_was_not_judged() {
        assert_eq!(
            status_for(&verdict("promote", false, "pass")),
            StatusCode::OK
        );
        assert_eq!(
            status_for(&verdict("inconclusive", false, "inconclusive")),
            StatusCode::OK
        );
        assert_eq!(
            status_for(&verdict("rollback", false, "fail")),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            status_for(&verdict("inconclusive", false, "error")),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_for(&verdict("inconclusive", true, "nodata")),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // An unreadable shadow metric is not counted, so it does not fail the check.
        let mut shadowed = verdict("promote", false, "pass");
        let mut unreadable = shadowed.metrics[0].clone();
        unreadable.name = "m-v2".into();
        unreadable.shadow = true;
        unreadable.outcome = MetricOutcome::Error;
        shadowed.metrics.push(unreadable);
        assert_eq!(status_for(&shadowed), StatusCode::OK);
    }

    // Metadata picks the rule set, the sides and the vars; the token stays out of the request.
    #[test]
    fn payload_becomes_a_request_without_the_token() {
        let payload: WebhookPayload = serde_json::from_value(serde_json::json!({
            "name": "podinfo", "namespace": "test", "checksum": "85d5",
            "metadata": {"rules": "http", "var.service": "podinfo", "token": "secret-secret-secret"},
        }))
        .expect("payload");
        let request = to_request(&payload).expect("request");
        assert_eq!(request.deployment, "test/podinfo-85d5");
        assert_eq!(
            request.canary,
            SideSpec::Labels(BTreeMap::from([("app".into(), "podinfo".into())]))
        );
        assert_eq!(
            request.baseline,
            SideSpec::Labels(BTreeMap::from([("app".into(), "podinfo-primary".into())]))
        );
        assert_eq!(
            request.vars,
            BTreeMap::from([("service".into(), "podinfo".into())])
        );
        assert!(
            !serde_json::to_string(&request)
                .expect("json")
                .contains("secret")
        );
    }
}
