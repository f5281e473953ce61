//! canary-gate: an observability-gated canary analyzer.
//!
//! A verdict flows one way:
//! request -> [`rules`] -> [`plan`] -> [`source`] -> [`measure`] -> [`stats`] -> [`judge`] -> [`verdict`].

pub mod plan;
pub mod rules;
pub mod stats;
