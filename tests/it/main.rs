//! Integration tests: one binary, a module per area.

mod pipeline;
mod stats;
mod support;
mod verdicts;
