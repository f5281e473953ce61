//! Flagger's webhooks as a door into the pipe: Flagger POSTs a small JSON
//! payload at every analysis iteration and fails the check on any non-2xx
//! answer. The webhook's `metadata` says what to judge.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::request::{SideSpec, VerdictRequest};
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
/// `final_after` (e.g. `30m`), and `var.<name>` for each `$var`. The
/// deployment is `<namespace>/<name>-<checksum>`, so each revision is judged
/// from its own first look.
pub fn to_request(payload: &WebhookPayload) -> Result<VerdictRequest, PayloadError> {
    let metadata = &payload.metadata;
    let rules = metadata.get("rules").cloned().ok_or_else(|| {
        PayloadError("the webhook's metadata needs `rules`, the rule set to apply".into())
    })?;
    let side = |key: &str, default: String| -> SideSpec {
        match metadata.get(key) {
            Some(text) if text.trim_start().starts_with('{') => SideSpec::Selector(text.clone()),
            Some(text) => SideSpec::Labels(
                text.split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect(),
            ),
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
/// (503): canary-gate never passes a check it could not judge.
pub fn status_for(verdict: &Verdict) -> u16 {
    if verdict.verdict == Outcome::Rollback {
        412
    } else if verdict
        .metrics
        .iter()
        .any(|m| m.outcome == MetricOutcome::Error)
    {
        503
    } else {
        200
    }
}
