//! canary-gate: an observability-gated canary analyzer.
//!
//! A verdict flows one way:
//! [`request`] -> [`rules`] -> [`plan`] -> [`source`] -> [`measure`] -> [`stats`]
//! -> [`judge`] -> [`verdict`] -> [`log`] and [`report`], with [`analyze`] as the pipe and
//! [`server`] and the CLI as two thin doors into it.

pub mod analyze;
pub mod auth;
pub mod check;
pub mod flagger;
pub mod history;
pub mod judge;
pub mod limits;
pub mod log;
pub mod measure;
pub mod openapi;
pub mod plan;
pub mod reload;
pub mod report;
pub mod request;
pub mod rules;
pub mod rules_api;
pub mod server;
pub mod simulate;
pub mod source;
pub mod stats;
pub mod telemetry;
pub mod verdict;
pub mod wait;
