//! Integration tests: one binary, a module per area.

mod access;
mod check;
mod hostile;
mod openapi;
mod pipeline;
mod plan;
mod reload;
mod rules;
mod stats;
mod support;
mod verdicts;
