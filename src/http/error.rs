//! The HTTP door's one error type: every refusal the server gives, mapped to
//! its status, its code and the JSON body `{"error": {"code", "message"}}` in
//! one [`IntoResponse`] impl. At the bottom of `http/`: it uses no handler.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::pipe::PipeError;

/// Why a request got no answer but an error; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body, a query string or a payload cannot be read as the endpoint's input.
    #[error("{0}")]
    BadRequest(String),
    /// The pipe refused the request or could not record its verdict.
    #[error(transparent)]
    Pipe(#[from] PipeError),
    /// No such verdict or endpoint.
    #[error("{0}")]
    NotFound(String),
    /// No token, or one that is not among the server's; `challenge` is the
    /// `WWW-Authenticate` value sent back.
    #[error("{message}")]
    Unauthorized {
        message: String,
        challenge: &'static str,
    },
    /// A body larger than the server reads.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Every verdict slot and queue place is taken; ask again after `retry_after_secs`.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// The verdict log cannot be read for a read endpoint.
    #[error("the verdict log cannot be read: {0}")]
    LogUnreadable(#[source] std::io::Error),
    /// One of axum's own refusals (a wrong method, a bad media type), kept
    /// with its status and put in the documented JSON shape.
    #[error("{message}")]
    Rejected {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Pipe(error) => match error {
                PipeError::Request(_) | PipeError::Plan(_) => StatusCode::BAD_REQUEST,
                PipeError::UnknownRules { .. } => StatusCode::NOT_FOUND,
                PipeError::UnknownSource(_) => StatusCode::INTERNAL_SERVER_ERROR,
                PipeError::LogUnwritable(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::LogUnreadable(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Rejected { status, .. } => *status,
        }
    }

    /// The machine-readable code in the body, as the OpenAPI document lists them.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Pipe(error) => match error {
                PipeError::Request(_) | PipeError::Plan(_) => "bad_request",
                PipeError::UnknownRules { .. } => "unknown_rules",
                PipeError::UnknownSource(_) => "unknown_source",
                PipeError::LogUnwritable(_) => "log_unwritable",
            },
            ApiError::NotFound(_) => "not_found",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Busy { .. } => "busy",
            ApiError::LogUnreadable(_) => "log_unreadable",
            ApiError::Rejected { code, .. } => code,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: &message,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized { challenge, .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            ApiError::Busy {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
