//! Access: bearer tokens for the write endpoints (and, when asked, the read
//! ones), checked by an axum middleware in front of every route.
//!
//! Tokens come from `serve --token-file` (one per line) and the
//! `CANARY_GATE_TOKENS` variable (comma-separated). Only their SHA-256
//! digests are kept, and a presented token is hashed and compared with every
//! digest in constant time, so neither the answer's timing nor a memory dump
//! of the process gives a token away. Tokens are never logged.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::http::admission::MAX_BODY_BYTES;
use crate::http::error::ApiError;

/// Shortest token accepted, in characters: anything shorter can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;
/// Most tokens one server accepts.
pub const MAX_TOKENS: usize = 1000;
/// The environment variable holding comma-separated tokens.
pub const TOKENS_ENV: &str = "CANARY_GATE_TOKENS";
/// Paths that stay open even with `--protect-reads`: probes that cannot send
/// tokens (a kubelet's liveness check), Prometheus's scrape of `/metrics`, and
/// the API description.
pub const ALWAYS_OPEN: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];
/// Flagger's webhook: Flagger sends no headers of its own, so its token may
/// come in the payload's `metadata.token` instead of `Authorization`.
pub const FLAGGER_PATH: &str = "/v1/flagger";

/// Why the configured tokens cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file cannot be read.
    #[error("cannot read --token-file {path}: {reason}")]
    Unreadable {
        /// The file as given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A token is too short to be secret.
    #[error(
        "{source_name}: token {index} is {len} characters long; use at least {MIN_TOKEN_LEN} random characters (for example the output of `openssl rand -hex 32`)"
    )]
    TooShort {
        /// Where the token came from.
        source_name: String,
        /// 1-based position of the token in its source (never the token itself).
        index: usize,
        /// Its length.
        len: usize,
    },
    /// More than [`MAX_TOKENS`] tokens.
    #[error("{count} tokens are configured; the limit is {MAX_TOKENS}")]
    TooMany {
        /// How many were given.
        count: usize,
    },
}

/// The accepted tokens, kept as SHA-256 digests.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    // Digests are not secrets, but there is no reason to print them either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

impl Tokens {
    /// Tokens from a token file's text (one per line; blank lines and lines
    /// starting with `#` are skipped) and a comma-separated list, either optional.
    pub fn from_sources(file: Option<&Path>, list: Option<&str>) -> Result<Tokens, TokenError> {
        let mut tokens = Tokens::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| TokenError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            tokens.add_all(
                &format!("--token-file {}", path.display()),
                token_lines(&text),
            )?;
        }
        if let Some(list) = list {
            let items = list.split(',').map(str::trim).filter(|t| !t.is_empty());
            tokens.add_all(TOKENS_ENV, items)?;
        }
        Ok(tokens)
    }

    fn add_all<'a>(
        &mut self,
        source_name: &str,
        tokens: impl Iterator<Item = &'a str>,
    ) -> Result<(), TokenError> {
        for (index, token) in tokens.enumerate() {
            let len = token.chars().count();
            if len < MIN_TOKEN_LEN {
                return Err(TokenError::TooShort {
                    source_name: source_name.to_string(),
                    index: index + 1,
                    len,
                });
            }
            self.digests.push(digest(token));
        }
        if self.digests.len() > MAX_TOKENS {
            return Err(TokenError::TooMany {
                count: self.digests.len(),
            });
        }
        Ok(())
    }

    /// Whether no token is configured (the server is then open).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the tokens. Every digest is compared,
    /// in constant time, whatever matches.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        let mut matched = subtle::Choice::from(0);
        for known in &self.digests {
            matched |= known.ct_eq(&presented);
        }
        bool::from(matched)
    }
}

/// The tokens of a token file's text: one per line, trimmed; blank lines and
/// lines starting with `#` are skipped. The server and `wait` read files alike.
pub fn token_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Who may call what.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    /// Accepted tokens; none means every endpoint is open.
    pub tokens: Tokens,
    /// Whether the read endpoints need a token too.
    pub protect_reads: bool,
}

impl AccessPolicy {
    /// Whether a request with `method` to `path` needs a token.
    pub fn needs_token(&self, method: &Method, path: &str) -> bool {
        if self.tokens.is_empty() || ALWAYS_OPEN.contains(&path) {
            return false;
        }
        let is_read = method == Method::GET || method == Method::HEAD;
        !is_read || self.protect_reads
    }
}

/// Refuses to serve on an address other machines can reach without tokens,
/// unless the operator said `--insecure-no-auth`.
pub fn check_listen(
    address: SocketAddr,
    tokens: &Tokens,
    insecure_no_auth: bool,
) -> Result<(), String> {
    if address.ip().is_loopback() || !tokens.is_empty() || insecure_no_auth {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {address} without access tokens: anyone who reaches it could ask for verdicts and reload rules. \
         Give tokens with --token-file FILE (one per line) or {TOKENS_ENV}=token1,token2, \
         listen on a loopback address such as 127.0.0.1:8080, \
         or pass --insecure-no-auth if something in front of canary-gate already checks access"
    ))
}

/// The middleware: answers 401 with `WWW-Authenticate: Bearer` and a JSON
/// error when the policy wants a token and the request has no good one.
pub async fn require_token(
    State(policy): State<Arc<AccessPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if !policy.needs_token(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer)
        .map(str::to_string);
    let (presented, request) = match presented {
        None if request.uri().path() == FLAGGER_PATH => match metadata_token(request).await {
            Ok(found) => found,
            Err(response) => return response,
        },
        other => (other, request),
    };
    match presented {
        Some(token) if policy.tokens.accepts(&token) => next.run(request).await,
        Some(_) => unauthorized(
            "the bearer token is not one this server accepts",
            r#"Bearer realm="canary-gate", error="invalid_token""#,
        ),
        None => unauthorized(
            "this endpoint needs a bearer token: send `Authorization: Bearer <token>` (canary-gate wait: --token-file FILE; Flagger: the webhook's metadata.token)",
            r#"Bearer realm="canary-gate""#,
        ),
    }
}

/// Reads `metadata.token` from a Flagger payload and hands back the request
/// with its body intact for the handler. A body too large to read is refused
/// here, as the handler would refuse it.
async fn metadata_token(request: Request) -> Result<(Option<String>, Request), Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY_BYTES).into_response())?;
    let token = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|payload| payload["metadata"]["token"].as_str().map(str::to_string));
    Ok((
        token,
        Request::from_parts(parts, axum::body::Body::from(bytes)),
    ))
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(message: &str, challenge: &'static str) -> Response {
    ApiError::Unauthorized {
        message: message.to_string(),
        challenge,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(list: &str) -> Tokens {
        Tokens::from_sources(None, Some(list)).expect("valid tokens")
    }

    // Pins that only configured tokens are accepted, whichever of several it is.
    #[test]
    fn accepts_exactly_the_configured_tokens() {
        let tokens = tokens("aaaaaaaaaaaaaaaa1, bbbbbbbbbbbbbbbb2");
        assert!(tokens.accepts("aaaaaaaaaaaaaaaa1"));
        assert!(tokens.accepts("bbbbbbbbbbbbbbbb2"));
        assert!(!tokens.accepts("aaaaaaaaaaaaaaaa"));
        assert!(!tokens.accepts(""));
    }

    // Pins that a short token is refused, and that the error does not echo it.
    #[test]
    fn short_tokens_are_refused_without_echoing_them() {
        let error = Tokens::from_sources(None, Some("secret")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("at least 16"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    // Pins the token file format: one per line, blanks and comments skipped.
    #[test]
    fn token_file_skips_blanks_and_comments() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# ci\n\n  cccccccccccccccc3  \n").expect("write");
        let tokens = Tokens::from_sources(Some(&path), None).expect("valid file");
        assert!(tokens.accepts("cccccccccccccccc3"));
        assert!(!tokens.accepts("# ci"));
    }

    // Pins which requests need a token: writes always, reads only when protected, probes never.
    #[test]
    fn policy_protects_writes_and_optionally_reads() {
        let open = AccessPolicy::default();
        assert!(!open.needs_token(&Method::POST, "/v1/verdicts"));
        let mut policy = AccessPolicy {
            tokens: tokens("dddddddddddddddd4"),
            protect_reads: false,
        };
        assert!(policy.needs_token(&Method::POST, "/v1/verdicts"));
        assert!(policy.needs_token(&Method::POST, "/v1/rules/reload"));
        assert!(!policy.needs_token(&Method::GET, "/v1/verdicts"));
        policy.protect_reads = true;
        assert!(policy.needs_token(&Method::GET, "/v1/verdicts"));
        assert!(policy.needs_token(&Method::GET, "/v1/rules"));
        assert!(!policy.needs_token(&Method::GET, "/healthz"));
        assert!(!policy.needs_token(&Method::GET, "/readyz"));
    }

    // Pins the listen check: loopback or tokens or an explicit opt-out, else a clear refusal.
    #[test]
    fn non_loopback_without_tokens_is_refused() {
        let public: SocketAddr = "0.0.0.0:8080".parse().expect("address");
        let loopback: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        let none = Tokens::default();
        assert!(check_listen(loopback, &none, false).is_ok());
        assert!(check_listen("[::1]:8080".parse().expect("address"), &none, false).is_ok());
        assert!(check_listen(public, &tokens("eeeeeeeeeeeeeeee5"), false).is_ok());
        assert!(check_listen(public, &none, true).is_ok());
        let message = check_listen(public, &none, false).unwrap_err();
        assert!(message.contains("--token-file"), "{message}");
        assert!(message.contains("--insecure-no-auth"), "{message}");
    }

    // Pins the Authorization header forms read as a bearer token.
    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
