//! `canary-gate wait`: asks a canary-gate server again and again until the
//! verdict is promote or rollback, and makes the final look at the deadline.
//! Survives a server restart or a dropped connection by retrying.

use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use canary_gate::request::VerdictRequest;
use canary_gate::text::{self, error_chain};
use canary_gate::verdict::{Outcome, Verdict};

/// Longest pause between retries of a failed look.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(10);
/// Deadline for one HTTP exchange with the server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What to ask, where, and for how long.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// Base URL of the canary-gate server.
    pub server: String,
    /// The request to send at every look; `end` and `final` are set per look.
    pub request: VerdictRequest,
    /// How long to keep asking before the final look.
    pub timeout: Duration,
    /// Pause between looks.
    pub every: Duration,
    /// Bearer token for the server, if it wants one.
    pub token: Option<String>,
}

/// Why waiting ended without a verdict.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The server refused the request itself; asking again will not help.
    #[error("the server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The server could not be reached or kept failing until the deadline.
    #[error("no verdict from {server} by the deadline; last error: {last}")]
    Unreachable { server: String, last: String },
}

enum Look {
    Verdict(Box<Verdict>),
    Retry(String),
}

async fn look(
    client: &reqwest::Client,
    options: &WaitOptions,
    is_final: bool,
) -> Result<Look, WaitError> {
    let mut request = options.request.clone();
    request.end = None;
    request.is_final = is_final;
    let mut builder = client
        .post(format!(
            "{}/v1/verdicts",
            options.server.trim_end_matches('/')
        ))
        .json(&request);
    if let Some(token) = &options.token {
        builder = builder.bearer_auth(token);
    }
    let response = match builder.send().await {
        Ok(response) => response,
        Err(error) => return Ok(Look::Retry(error_chain(&error))),
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        return match serde_json::from_str::<Verdict>(&body) {
            Ok(mut verdict) => {
                // A relative report link is relative to the server asked.
                if let Some(url) = verdict.report_url.as_mut().filter(|u| u.starts_with('/')) {
                    *url = format!("{}{url}", options.server.trim_end_matches('/'));
                }
                Ok(Look::Verdict(Box::new(verdict)))
            }
            Err(e) => Ok(Look::Retry(format!("unreadable answer ({e})"))),
        };
    }
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(body);
    // Overload and server faults pass; a refusal of the request itself does not.
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Ok(Look::Retry(format!("{status}: {message}")))
    } else {
        Err(WaitError::Refused {
            status: status.as_u16(),
            message,
        })
    }
}

/// One progress line: elapsed time, each metric's state, the current reason.
pub fn progress_line(elapsed: Duration, verdict: &Verdict) -> String {
    let states: Vec<String> = verdict
        .metrics
        .iter()
        .map(|m| {
            let figure = m
                .estimate
                .as_ref()
                .filter(|e| e.unit == "ratio")
                .map(|e| format!(" {}", text::times(e.value)));
            format!(
                "{} {}{}",
                m.label(),
                m.outcome.word(),
                figure.unwrap_or_default()
            )
        })
        .collect();
    format!(
        "[{:>8}] {:<12} {} | {}",
        text::duration(elapsed.as_secs() as i64),
        verdict.verdict.as_str(),
        states.join(", "),
        verdict.reason
    )
}

/// Looks every `options.every` until promote or rollback, then makes the final
/// look once `options.timeout` has passed. Writes a progress line per look to `progress`.
pub async fn wait(
    options: &WaitOptions,
    progress: &mut (dyn Write + Send),
) -> Result<Verdict, WaitError> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| WaitError::Unreachable {
            server: options.server.clone(),
            last: e.to_string(),
        })?;
    let started = Instant::now();
    let deadline = started + options.timeout;
    let mut retry_pause = Duration::from_secs(1);
    loop {
        let is_final = Instant::now() >= deadline;
        match look(&client, options, is_final).await? {
            Look::Verdict(verdict) => {
                let _ = writeln!(progress, "{}", progress_line(started.elapsed(), &verdict));
                retry_pause = Duration::from_secs(1);
                if verdict.verdict != Outcome::Inconclusive || is_final {
                    return Ok(*verdict);
                }
                let pause = options
                    .every
                    .min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
            }
            Look::Retry(why) => {
                let _ = writeln!(
                    progress,
                    "[{:>8}] no answer: {why}; retrying in {}",
                    text::duration(started.elapsed().as_secs() as i64),
                    text::duration(retry_pause.as_secs() as i64)
                );
                if is_final && Instant::now() >= deadline + options.every.max(MAX_RETRY_PAUSE) * 3 {
                    return Err(WaitError::Unreachable {
                        server: options.server.clone(),
                        last: why,
                    });
                }
                tokio::time::sleep(retry_pause).await;
                retry_pause = (retry_pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }
}
