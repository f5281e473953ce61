//! canary-gate: an observability-gated canary analyzer.
//!
//! A verdict flows one way, each arrow a plain call on plain data:
//!
//! [`request`] (parsed once) -> [`rules`] (compiled) -> [`plan`] (PromQL with
//! each side's matchers injected) -> [`source`] (Prometheus) -> [`measure`]
//! (per-step counts, samples) -> [`stats`] (pure math) -> [`judge`] (each
//! metric's outcome, then the verdict) -> [`verdict`] (the answer, its log and
//! its history) -> [`report`] (the pages).
//!
//! [`pipe`] is the one call that runs it; the HTTP door ([`http`]) and the
//! CLI (`src/bin/canary-gate/`) are two thin doors that both call it.
//! [`text`] holds the words numbers, times and errors are read in, and
//! [`telemetry`] sets up the process's logs.

// The stages, in pipe order.
pub mod request;

pub mod rules;

pub mod plan;

pub mod source;

pub mod measure;

pub mod stats;

pub mod judge;

pub mod verdict;

pub mod report;

// The pipe, and the HTTP door into it.
pub mod pipe;

pub mod http;

// Leaves every stage may use.
pub mod text;

pub mod telemetry;

// The paths of the layout before `http/`, `pipe/` and `verdict/`, kept for
// one release so code written against them still builds.
#[doc(hidden)]
pub use http::admission as limits;
#[doc(hidden)]
pub use http::auth;
#[doc(hidden)]
pub use http::openapi;
#[doc(hidden)]
pub use pipe::analyze;
#[doc(hidden)]
pub use rules::store as reload;
#[doc(hidden)]
pub use verdict::history;
#[doc(hidden)]
pub use verdict::log;

/// The HTTP door at its old path (now [`http`]), kept for one release.
#[doc(hidden)]
pub mod server {
    pub use crate::http::{
        ApiError, AppState, HISTORY_PAGE_ROWS, MAX_BODY_BYTES, MAX_HISTORY, router, run,
    };
}
