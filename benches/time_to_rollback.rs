//! Placeholder until the statistics work lands.
fn main() {}
