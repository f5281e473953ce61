//! Pure statistics for canary analysis: numbers in, numbers out.
//!
//! Nothing here does I/O, async work or knows about Prometheus, rules or HTTP.
//! The judge feeds it measurements and reads back decisions. The sixth stage
//! of the pipe, and a leaf: it uses nothing else of the crate.

pub mod counts;
pub mod distribution;
pub mod family;
pub mod kayenta;
pub mod mann_whitney;
pub mod quantiles;

/// Which change of a metric harms users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A higher value on the canary is bad (error rates, latency).
    Increase,
    /// A lower value on the canary is bad (throughput, success counts).
    Decrease,
    /// A change either way is bad.
    Either,
}

/// Errors for input the statistics cannot work with.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StatsError {
    /// A sample needed at least `needed` values and had `got`.
    #[error("needs at least {needed} values, got {got}")]
    TooFewValues { needed: usize, got: usize },
    /// Every value is the same, so ranks carry no information.
    #[error("every value is tied, so no interval can be computed")]
    AllTied,
    /// A value was NaN or infinite.
    #[error("a value is not a finite number")]
    NotFinite,
    /// A level such as a confidence or alpha was outside (0, 1).
    #[error("{name} must lie strictly between 0 and 1, got {value}")]
    BadLevel { name: &'static str, value: f64 },
    /// A tolerance was NaN, infinite, negative, or (for a decrease) 1 or more.
    #[error("tolerance must be finite, at least 0, and below 1 for a decrease; got {value}")]
    BadTolerance { value: f64 },
}
