//! Integration tests: one binary, a module per area.

mod pipeline;
mod support;
mod verdicts;
