//! The API contract: the OpenAPI 3.1 document served at `/openapi.json`, and
//! the layer that makes every error answer the documented JSON error, even
//! those axum writes itself (unknown path, wrong method, body too large).
//!
//! The document is hand-written in `src/http/openapi.json`; the integration tests
//! check that every route is in it and that real answers match its schemas,
//! and CI runs schemathesis against a live server with it.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// The OpenAPI document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Most bytes of a framework error's text carried into the JSON message.
const MAX_ERROR_TEXT_BYTES: usize = 4096;

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT,
    )
        .into_response()
}

/// Answers every unknown path with a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; the API is described at /openapi.json".into())
}

/// Rewrites a plain-text or empty error answer (axum's own rejections) into
/// the JSON error every endpoint documents, keeping its status and headers
/// such as `Allow`.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    // axum's own rejections are plain text (or empty); JSON and HTML answers are ours.
    let is_plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !is_plain || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let (code, hint) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method; see the Allow header",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the server accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as application/json",
        ),
        s if s.is_server_error() => ("internal", "the server failed"),
        _ => ("bad_request", "the request cannot be served"),
    };
    let message = if text.is_empty() {
        hint.to_string()
    } else {
        format!("{hint}: {text}")
    };
    let mut rewritten = ApiError::Rejected {
        status,
        code,
        message,
    }
    .into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let (mut new_parts, new_body): (_, Body) = rewritten.into_parts();
    new_parts.status = status;
    Response::from_parts(new_parts, new_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins that the served document is JSON that names itself OpenAPI 3.1.
    #[test]
    fn document_is_openapi_json() {
        let document: serde_json::Value =
            serde_json::from_str(DOCUMENT).expect("src/openapi.json is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["paths"].is_object());
    }
}
