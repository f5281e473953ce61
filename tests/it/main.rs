//! Integration tests: one binary, a module per area.

mod access;
mod check;
mod controllers;
mod deploy;
mod durability;
mod faults;
mod figures;
mod hostile;
mod kinds;
mod load;
mod monitoring;
mod openapi;
mod pipeline;
mod plan;
mod reload;
mod replay;
mod report;
mod rule_tests;
mod rules;
mod series_looks;
mod sources;
mod stats;
mod stores;
mod support;
mod tls;
mod verdicts;
