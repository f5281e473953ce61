//! A side of the comparison: the label matchers that pick out the canary or
//! the baseline, parsed once from the request's map or text into a
//! [`SideSelector`] that cannot be wrong.

use std::collections::BTreeMap;
use std::fmt;

use promql_parser::label::{METRIC_NAME, MatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};

/// Longest label name a side selector may use, in bytes.
pub const MAX_LABEL_NAME_LEN: usize = 128;
/// Longest label value (side selector or `$var`), in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 1024;
/// Most matchers one side selector may have.
pub const MAX_MATCHERS: usize = 32;
/// Longest side selector text [`SideSelector::parse`] reads, in bytes.
pub const MAX_SELECTOR_TEXT_LEN: usize = 64 * 1024;

/// Label matchers that pick out one side (the canary or the baseline).
#[derive(Clone, Debug, PartialEq)]
pub struct SideSelector {
    /// Matchers appended to every selector of every query of this side.
    pub matchers: Vec<Matcher>,
}

/// Why a side selector (or a value from outside that becomes a label value) is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// A side selector string is not PromQL.
    #[error(
        "side selector `{text}` is not a valid selector: {reason}; write one such as {{track=\"canary\"}}"
    )]
    SelectorSyntax {
        /// The selector as given.
        text: String,
        /// The parser's message.
        reason: String,
    },
    /// A side selector string is an expression other than a bare `{...}` selector.
    #[error(
        "side selector `{text}` must be label matchers in braces only, such as {{track=\"canary\"}}, with no metric name, function, range, offset or @"
    )]
    NotPlainSelector {
        /// The selector as given.
        text: String,
    },
    /// A side selector string uses `or` between matchers.
    #[error("side selector `{text}` uses `or`; a side must be one set of matchers that all apply")]
    SelectorHasOr {
        /// The selector as given.
        text: String,
    },
    /// A side selector string is too long to be a selector.
    #[error("side selector is {len} bytes long; the limit is {MAX_SELECTOR_TEXT_LEN}")]
    SelectorTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A `label=value` list holds something that is not an equality.
    #[error(
        "`{pair}` is not a label=value equality; write pairs such as track=canary,service=checkout, or a selector such as {{track=\"canary\",pod=~\"web-.*\"}} for other matchers"
    )]
    BadPair {
        /// The pair as given.
        pair: String,
    },
    /// A side selector has no matchers.
    #[error("side selector has no matchers; give at least one, such as track=\"canary\"")]
    EmptySelector,
    /// A side selector's matchers all match an absent label, so it would pick every series.
    #[error(
        "side selector matches every series because each matcher also matches an empty label; add one such as track=\"canary\""
    )]
    MatchesEverything,
    /// More matchers than [`MAX_MATCHERS`].
    #[error("side selector has {count} matchers; the limit is {MAX_MATCHERS}")]
    TooManyMatchers {
        /// How many were given.
        count: usize,
    },
    /// A label name that is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error(
        "label name `{name}` is not valid; use letters, digits and `_`, not starting with a digit"
    )]
    BadLabelName {
        /// The name as given.
        name: String,
    },
    /// A label name longer than [`MAX_LABEL_NAME_LEN`].
    #[error(
        "label name starting `{prefix}` is {len} bytes long; the limit is {MAX_LABEL_NAME_LEN}"
    )]
    LabelNameTooLong {
        /// The first characters of the name.
        prefix: String,
        /// Its length in bytes.
        len: usize,
    },
    /// `__name__` or `le` in a side selector.
    #[error(
        "label `{name}` cannot be used in a side selector: the rule file picks the metric (`__name__`) and the judge picks histogram buckets (`le`)"
    )]
    ReservedLabel {
        /// The label name.
        name: String,
    },
    /// A label value longer than [`MAX_LABEL_VALUE_LEN`].
    #[error("the value of `{name}` is {len} bytes long; the limit is {MAX_LABEL_VALUE_LEN}")]
    ValueTooLong {
        /// The label or variable name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A value with a control character other than tab, newline or carriage return.
    #[error("the value of `{name}` contains control character U+{code:04X}; remove it")]
    ControlCharacter {
        /// The label or variable name.
        name: String,
        /// The character's code point.
        code: u32,
    },
    /// A regex matcher whose pattern does not compile.
    #[error("the regex for `{name}` does not compile: {reason}")]
    BadRegex {
        /// The label name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl SideSelector {
    /// Equality matchers from a map of label names to values, such as
    /// `{"track": "canary"}`.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Result<SideSelector, SelectorError> {
        let matchers = labels
            .iter()
            .map(|(name, value)| Matcher::new(MatchOp::Equal, name, value))
            .collect();
        SideSelector::from_matchers(matchers)
    }

    /// Parses a side as the API, the CLI and Flagger's metadata all take it:
    /// a selector such as `{track="canary",pod=~"web-.*"}` (the braces may be
    /// left out when values are quoted), or `label=value[,label=value...]`
    /// for plain equalities, as in `track=canary,service=checkout`.
    pub fn parse(text: &str) -> Result<SideSelector, SelectorError> {
        if text.len() > MAX_SELECTOR_TEXT_LEN {
            return Err(SelectorError::SelectorTooLong { len: text.len() });
        }
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.replace(char::is_whitespace, "") == "{}" {
            return Err(SelectorError::EmptySelector);
        }
        // Text with braces anywhere is a selector (and refused below unless it
        // is nothing but one); quoted values without braces are its inside.
        match (trimmed.contains('{'), trimmed.contains('"')) {
            (true, _) => SideSelector::parse_braced(text),
            (false, true) => SideSelector::parse_braced(&format!("{{{trimmed}}}")),
            (false, false) => SideSelector::parse_pairs(trimmed),
        }
    }

    /// `label=value,label=value`: equalities with unquoted values.
    fn parse_pairs(text: &str) -> Result<SideSelector, SelectorError> {
        let mut labels = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad_pair = || SelectorError::BadPair {
                pair: pair.to_string(),
            };
            let (name, value) = pair.split_once('=').ok_or_else(bad_pair)?;
            // `pod=~web-.*` and `track!=canary` are not equalities: they need the selector form.
            if name.ends_with('!') || value.starts_with('~') {
                return Err(bad_pair());
            }
            labels.insert(name.trim().to_string(), value.trim().to_string());
        }
        SideSelector::from_map(&labels)
    }

    /// A `{...}` selector.
    fn parse_braced(text: &str) -> Result<SideSelector, SelectorError> {
        let expr = crate::rules::parse_promql(text).map_err(|reason| {
            if reason.contains("at least one non-empty matcher") {
                SelectorError::MatchesEverything
            } else {
                SelectorError::SelectorSyntax {
                    text: text.to_string(),
                    reason,
                }
            }
        })?;
        let not_plain = || SelectorError::NotPlainSelector {
            text: text.to_string(),
        };
        let Expr::VectorSelector(selector) = expr else {
            return Err(not_plain());
        };
        let VectorSelector {
            name,
            matchers,
            offset,
            at,
        } = selector;
        if name.is_some() || offset.is_some() || at.is_some() {
            return Err(not_plain());
        }
        if !matchers.or_matchers.is_empty() {
            return Err(SelectorError::SelectorHasOr {
                text: text.to_string(),
            });
        }
        SideSelector::from_matchers(matchers.matchers)
    }

    /// Checks matchers built by either constructor.
    fn from_matchers(matchers: Vec<Matcher>) -> Result<SideSelector, SelectorError> {
        if matchers.is_empty() {
            return Err(SelectorError::EmptySelector);
        }
        if matchers.len() > MAX_MATCHERS {
            return Err(SelectorError::TooManyMatchers {
                count: matchers.len(),
            });
        }
        for matcher in &matchers {
            check_label_name(&matcher.name)?;
            check_value(&matcher.name, &matcher.value)?;
        }
        if matchers.iter().all(|m| m.is_match("")) {
            return Err(SelectorError::MatchesEverything);
        }
        Ok(SideSelector { matchers })
    }

    /// The matchers in a canonical order, for comparing two sides.
    pub fn canonical(&self) -> Vec<(String, String, String)> {
        let mut keys: Vec<_> = self
            .matchers
            .iter()
            .map(|m| (m.name.clone(), m.op.to_string(), m.value.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

fn check_label_name(name: &str) -> Result<(), SelectorError> {
    if name.len() > MAX_LABEL_NAME_LEN {
        return Err(SelectorError::LabelNameTooLong {
            prefix: name.chars().take(32).collect(),
            len: name.len(),
        });
    }
    if name == METRIC_NAME || name == "le" {
        return Err(SelectorError::ReservedLabel {
            name: name.to_string(),
        });
    }
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(SelectorError::BadLabelName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Bounds a value from outside (a side matcher value or a `$var`).
pub(crate) fn check_value(name: &str, value: &str) -> Result<(), SelectorError> {
    if value.len() > MAX_LABEL_VALUE_LEN {
        return Err(SelectorError::ValueTooLong {
            name: name.to_string(),
            len: value.len(),
        });
    }
    // Tab, newline and carriage return have PromQL escapes; other control
    // characters would travel raw inside the string literal.
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(SelectorError::ControlCharacter {
            name: name.to_string(),
            code: u32::from(c),
        });
    }
    Ok(())
}

impl fmt::Display for SideSelector {
    /// The selector the way PromQL writes it: `{track="canary"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.matchers.iter().map(|m| m.to_string()).collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(text: &str) -> SideSelector {
        SideSelector::parse(text).expect("test selector parses")
    }

    // A side reads the same from `label=value` pairs, a braced selector and a
    // selector without braces; pairs that are not equalities say to use a selector.
    #[test]
    fn side_forms_agree() {
        let braced = side(r#"{service="checkout",track="canary"}"#);
        assert_eq!(side("track=canary, service=checkout"), braced);
        assert_eq!(side(r#"service="checkout",track="canary""#), braced);
        assert_eq!(
            side(r#"pod=~"web-.*""#),
            side(r#"{pod=~"web-.*"}"#),
            "quoted values without braces are a selector"
        );
        for bad in ["track", "pod=~web-.*", "track!=baseline"] {
            let error = SideSelector::parse(bad).expect_err(bad).to_string();
            assert!(
                error.contains("not a label=value equality"),
                "{bad}: {error}"
            );
        }
        assert!(matches!(
            SideSelector::parse(" , "),
            Err(SelectorError::EmptySelector)
        ));
        // Regression (fuzz crash-1a84bfca): a huge range duration panicked in the parser.
        let huge = format!("E[{}]M\x0c^{{}}[]", "5".repeat(60));
        assert!(matches!(
            SideSelector::parse(&huge),
            Err(SelectorError::SelectorSyntax { .. })
        ));
    }
}
