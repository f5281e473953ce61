//! A verdict request: the raw JSON a pipeline sends, parsed once into a
//! [`Judgement`] that downstream stages can trust, with its sides
//! ([`selector`]) and times.
//!
//! The first stage of the pipe: it uses only [`crate::text`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub mod selector;

pub use selector::{SelectorError, SideSelector};

use crate::text;

/// Longest window a verdict may cover.
pub const MAX_WINDOW_SECS: i64 = 7 * 24 * 3600;
/// How far in the future `end` may lie, to forgive clock skew between machines.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;
/// Longest deployment id.
pub const MAX_DEPLOYMENT_LEN: usize = 128;

/// How a side is picked: a map of equality matchers or a selector string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SideSpec {
    /// `{"track": "canary"}`
    Labels(BTreeMap<String, String>),
    /// `{track="canary",pod=~"web-.*"}`
    Selector(String),
}

/// A point in time: RFC 3339 text or unix seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeSpec {
    Unix(f64),
    Text(String),
}

/// The body of `POST /v1/verdicts`, as the pipeline wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictRequest {
    /// Name of the rule set (a file stem in the rules folder).
    pub rules: String,
    /// The pipeline's name for this rollout, e.g. `checkout-1402`.
    pub deployment: String,
    pub canary: SideSpec,
    pub baseline: SideSpec,
    /// When the canary began taking traffic. When absent, the start of the
    /// first logged verdict of the same deployment and rule set, or now for a
    /// first look (for callers that cannot know it, such as Argo Rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<TimeSpec>,
    /// The instant to judge as of; now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<TimeSpec>,
    /// Values for the rule set's `$vars`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Whether this is the pipeline's last look.
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Treat the look as final once the window is this long, e.g. `30m`
    /// (for callers that cannot say which look is their last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_after: Option<String>,
}

/// Why a request cannot be judged; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("`deployment` {0}")]
    Deployment(String),
    #[error("`{field}` is not a usable time: {reason}")]
    Time { field: &'static str, reason: String },
    #[error("{0}")]
    Window(String),
    #[error("`{side}`: {error}")]
    Side {
        side: &'static str,
        error: SelectorError,
    },
    #[error("`canary` and `baseline` select the same series; give each side its own labels")]
    SameSides,
}

/// A validated request: everything the pipe needs, in types that cannot be wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub rules: String,
    pub deployment: String,
    pub canary: SideSelector,
    pub baseline: SideSelector,
    pub start_secs: i64,
    pub end_secs: i64,
    pub vars: BTreeMap<String, String>,
    pub is_final: bool,
}

impl Judgement {
    /// Checks `request` as of `now_secs` and resolves its defaults; `first_start`
    /// is the start of the deployment's first logged verdict, used when the
    /// request gives no `start`.
    pub fn parse(
        request: &VerdictRequest,
        now_secs: i64,
        first_start: Option<i64>,
    ) -> Result<Judgement, RequestError> {
        check_deployment(&request.deployment)?;
        let canary = request
            .canary
            .selector()
            .map_err(|error| RequestError::Side {
                side: "canary",
                error,
            })?;
        let baseline = request
            .baseline
            .selector()
            .map_err(|error| RequestError::Side {
                side: "baseline",
                error,
            })?;
        if canary == baseline {
            return Err(RequestError::SameSides);
        }
        let end_secs = match &request.end {
            Some(end) => parse_time("end", end)?,
            None => now_secs,
        };
        let start_secs = match &request.start {
            Some(start) => parse_time("start", start)?,
            // A first look without a start judges an empty window: inconclusive.
            None => first_start.unwrap_or(end_secs).min(end_secs),
        };
        let final_after_secs = match &request.final_after {
            Some(text) => Some(
                humantime::parse_duration(text)
                    .map_err(|e| {
                        RequestError::Window(format!(
                            "`final_after` {text:?} is not a duration such as `30m` ({e})"
                        ))
                    })?
                    .as_secs() as i64,
            ),
            None => None,
        };
        if end_secs > now_secs + MAX_CLOCK_SKEW_SECS {
            return Err(RequestError::Window(format!(
                "`end` ({}) lies in the future; leave it out to judge as of now",
                text::time(end_secs)
            )));
        }
        if start_secs > end_secs || (start_secs == end_secs && request.start.is_some()) {
            return Err(RequestError::Window(format!(
                "`start` ({}) must come before `end` ({})",
                text::time(start_secs),
                text::time(end_secs)
            )));
        }
        if end_secs - start_secs > MAX_WINDOW_SECS {
            return Err(RequestError::Window(format!(
                "the window from `start` to `end` is {} long; canary-gate judges at most {}",
                humantime::format_duration(std::time::Duration::from_secs(
                    (end_secs - start_secs) as u64
                )),
                humantime::format_duration(std::time::Duration::from_secs(MAX_WINDOW_SECS as u64)),
            )));
        }
        Ok(Judgement {
            rules: request.rules.clone(),
            deployment: request.deployment.clone(),
            canary,
            baseline,
            start_secs,
            end_secs,
            vars: request.vars.clone(),
            is_final: request.is_final
                || final_after_secs.is_some_and(|after| end_secs - start_secs >= after),
        })
    }
}

impl SideSpec {
    /// The matchers this spec stands for, validated.
    pub fn selector(&self) -> Result<SideSelector, SelectorError> {
        match self {
            SideSpec::Labels(map) => SideSelector::from_map(map),
            SideSpec::Selector(text) => SideSelector::parse(text),
        }
    }
}

fn check_deployment(id: &str) -> Result<(), RequestError> {
    if id.is_empty() {
        return Err(RequestError::Deployment(
            "is empty; name the rollout, e.g. `checkout-1402`".into(),
        ));
    }
    if id.len() > MAX_DEPLOYMENT_LEN {
        return Err(RequestError::Deployment(format!(
            "is {} characters long; use at most {MAX_DEPLOYMENT_LEN}",
            id.len()
        )));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:/-".contains(*c)))
    {
        return Err(RequestError::Deployment(format!(
            "contains {bad:?}; use letters, digits and . _ : / - only"
        )));
    }
    Ok(())
}

/// Reads a time given as RFC 3339 text or unix seconds; `field` names it in errors.
pub fn parse_time(field: &'static str, spec: &TimeSpec) -> Result<i64, RequestError> {
    let reason = |reason: String| RequestError::Time { field, reason };
    match spec {
        TimeSpec::Unix(seconds) if seconds.is_finite() && *seconds >= 0.0 && *seconds < 1e11 => {
            Ok(seconds.floor() as i64)
        }
        TimeSpec::Unix(seconds) => Err(reason(format!("{seconds} is not a unix time in seconds"))),
        TimeSpec::Text(text) => {
            if let Ok(seconds) = text.trim().parse::<f64>() {
                return parse_time(field, &TimeSpec::Unix(seconds));
            }
            OffsetDateTime::parse(text, &Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|e| reason(format!("{text:?} is neither RFC 3339 (like 2026-11-26T14:05:00Z) nor unix seconds ({e})")))
        }
    }
}
