//! Integration tests: one binary, a module per area.

mod check;
mod controllers;
mod durability;
mod faults;
mod load;
mod pipeline;
mod plan;
mod report;
mod rules;
mod stats;
mod support;
mod verdicts;
