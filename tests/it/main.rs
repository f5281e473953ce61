//! Integration tests: one binary, a module per area.

mod check;
mod controllers;
mod pipeline;
mod plan;
mod report;
mod rules;
mod stats;
mod support;
mod verdicts;
