//! Integration tests: one binary, a module per area.
mod plan;
mod rules;
