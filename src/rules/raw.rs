//! What a rule writer wrote, as close to the YAML as serde can hold it.
//!
//! Every field is optional and spanned, so the compile stage can report all
//! missing or misplaced fields of a file at once, each at its own line.
//! Unknown keys are still refused here (`deny_unknown_fields`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_saphyr::Spanned;

/// A spanned optional field.
pub(super) type Field<T> = Option<Spanned<T>>;

/// The top level of a rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuleSet {
    pub description: Field<String>,
    pub alpha: Field<f64>,
    pub on_timeout: Field<String>,
    pub on_nodata: Field<String>,
    pub step: Field<Scalar>,
    pub window: Field<Scalar>,
    pub source: Field<String>,
    pub shadow: Field<bool>,
    pub scoring: Field<RawScoring>,
    pub groups: Field<Vec<Spanned<RawGroup>>>,
    pub metrics: Field<Vec<Spanned<RawMetric>>>,
}

/// `scoring: {pass: 95, marginal: 75}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScoring {
    pub pass: Field<f64>,
    pub marginal: Field<f64>,
}

/// One entry of `groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub name: Field<String>,
    pub weight: Field<f64>,
}

/// One entry of `metrics`, with the fields of every kind; the compile stage
/// refuses fields that do not belong to the metric's kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetric {
    pub name: Field<String>,
    pub kind: Field<String>,
    pub group: Field<String>,
    pub critical: Field<bool>,
    pub shadow: Field<bool>,
    pub bad: Field<String>,
    pub total: Field<String>,
    pub histogram: Field<String>,
    pub query: Field<String>,
    pub direction: Field<String>,
    pub tolerance: Field<Scalar>,
    pub min_requests: Field<f64>,
    pub early_promotion: Field<bool>,
    pub final_test_after: Field<Scalar>,
    pub threshold_seconds: Field<f64>,
    pub allowed_increase: Field<f64>,
    pub allowed_decrease: Field<f64>,
    pub critical_increase: Field<f64>,
    pub critical_decrease: Field<f64>,
    pub looks: Field<i64>,
    pub min_samples: Field<i64>,
    pub min: Field<f64>,
    pub max: Field<f64>,
}

/// A scalar that may be text or a number, so that `tolerance: 10` can be
/// answered with a sentence instead of a type error.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Scalar {
    /// Any text, such as `+10%` or `15s`.
    Text(String),
    /// A bare number, as YAML read it.
    Number(f64),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a text value such as '+10%' or '15s'")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                // Rule-file numbers are small; the conversion is for the message only.
                Ok(Scalar::Number(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}
