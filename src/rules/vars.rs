//! `$vars` in label matcher values: `$service` or `${service}`.
//!
//! A rule file writes `service="$service"`; a request supplies the value. The
//! template is split into literal text and variable names once, so the plan can
//! substitute values without ever pasting them into PromQL source text.

/// One piece of a label matcher value written in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Text kept as written.
    Literal(&'a str),
    /// A `$name` or `${name}` to be replaced by the request's value.
    Var(&'a str),
}

/// Why a matcher value's `$` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// `${` without a closing `}`.
    #[error("`${{` has no closing `}}`; write `${{name}}`")]
    Unclosed,
    /// `${...}` whose inside is not a variable name.
    #[error(
        "`${{{inner}}}` is not a variable; names are letters, digits and underscores and do not start with a digit"
    )]
    BadName { inner: String },
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// True if `name` is a valid variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Splits a label matcher value into literal text and variables.
///
/// A `$` not followed by a name start or by `{` is literal (so regex anchors
/// such as `5..$` keep working).
pub(crate) fn parse(value: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    let mut segments = Vec::new();
    let mut literal_start = 0;
    let mut rest_start = 0;
    while let Some(found) = value[rest_start..].find('$') {
        let dollar = rest_start + found;
        let after = &value[dollar + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            let close = braced.find('}').ok_or(TemplateError::Unclosed)?;
            let inner = &braced[..close];
            if !is_var_name(inner) {
                return Err(TemplateError::BadName {
                    inner: inner.to_string(),
                });
            }
            push_literal(&mut segments, &value[literal_start..dollar]);
            segments.push(Segment::Var(inner));
            rest_start = dollar + 2 + close + 1;
            literal_start = rest_start;
        } else if after.starts_with(is_name_start) {
            let len = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
            push_literal(&mut segments, &value[literal_start..dollar]);
            segments.push(Segment::Var(&after[..len]));
            rest_start = dollar + 1 + len;
            literal_start = rest_start;
        } else {
            // A lone `$`: keep it in the literal run.
            rest_start = dollar + 1;
        }
    }
    push_literal(&mut segments, &value[literal_start..]);
    Ok(segments)
}

fn push_literal<'a>(segments: &mut Vec<Segment<'a>>, text: &'a str) {
    if !text.is_empty() {
        segments.push(Segment::Literal(text));
    }
}

/// Escapes every regex metacharacter so the text matches itself literally.
///
/// The set is Go's `regexp.QuoteMeta` (Prometheus runs RE2); each escape is
/// also understood by the Rust `regex` crate that promql-parser compiles with.
pub(crate) fn quote_meta(text: &str) -> String {
    const META: &str = r"\.+*?()|[]{}^$";
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if META.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins both spellings of a variable and literal text around them.
    #[test]
    fn splits_dollar_and_braced_names() {
        assert_eq!(
            parse("a-$service-${env}x").unwrap(),
            vec![
                Segment::Literal("a-"),
                Segment::Var("service"),
                Segment::Literal("-"),
                Segment::Var("env"),
                Segment::Literal("x"),
            ]
        );
    }

    // Pins that a lone `$` (regex anchor, `$1`, trailing) stays literal.
    #[test]
    fn lone_dollar_is_literal() {
        assert_eq!(parse("5..$").unwrap(), vec![Segment::Literal("5..$")]);
        assert_eq!(parse("$1$").unwrap(), vec![Segment::Literal("$1$")]);
        assert_eq!(parse("$").unwrap(), vec![Segment::Literal("$")]);
        assert_eq!(parse("").unwrap(), vec![]);
    }

    // Pins that a malformed `${` is an error rather than silently literal.
    #[test]
    fn malformed_braces_are_errors() {
        assert_eq!(parse("${svc"), Err(TemplateError::Unclosed));
        assert!(matches!(parse("${1x}"), Err(TemplateError::BadName { .. })));
        assert!(matches!(parse("${}"), Err(TemplateError::BadName { .. })));
    }

    // Pins that every RE2 metacharacter is escaped and nothing else is.
    #[test]
    fn quote_meta_escapes_regex_syntax() {
        assert_eq!(quote_meta(r"a.b*c\d"), r"a\.b\*c\\d");
        assert_eq!(quote_meta("é-ü_/"), "é-ü_/");
        assert_eq!(quote_meta("(x|y){2}[z]^$?+"), r"\(x\|y\)\{2\}\[z\]\^\$\?\+");
    }
}
