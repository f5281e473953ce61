//! Integration tests: one binary, a module per area.

mod support;
mod verdicts;
