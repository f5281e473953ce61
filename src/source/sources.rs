//! The named sources a server or a `judge` judges with, and the one a rule
//! set asks for (`source: NAME` in its file, else the default).

use std::collections::BTreeMap;

use crate::rules::error::did_you_mean;
use crate::source::config::DEFAULT_SOURCE;

/// Sources by name, and the name of the default one.
#[derive(Debug)]
pub struct Sources<S> {
    by_name: BTreeMap<String, S>,
    default: String,
}

impl<S> Sources<S> {
    /// One source, named [`DEFAULT_SOURCE`]: what `--prometheus-url` and the
    /// tests' doubles give.
    pub fn single(source: S) -> Sources<S> {
        Sources {
            by_name: BTreeMap::from([(DEFAULT_SOURCE.to_string(), source)]),
            default: DEFAULT_SOURCE.to_string(),
        }
    }

    /// Sources by name, with `default` among them.
    pub fn new(by_name: BTreeMap<String, S>, default: &str) -> Result<Sources<S>, String> {
        if !by_name.contains_key(default) {
            return Err(format!(
                "the default source `{default}` is not among the sources"
            ));
        }
        Ok(Sources {
            by_name,
            default: default.to_string(),
        })
    }

    /// The source a rule set names (`None`: the default), or why there is none.
    pub fn pick(&self, name: Option<&str>) -> Result<(&str, &S), String> {
        let name = name.unwrap_or(&self.default);
        match self.by_name.get_key_value(name) {
            Some((name, source)) => Ok((name, source)),
            None => {
                let names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
                Err(format!(
                    "the rule set asks for metric source `{name}`, which is not configured;{} configured sources: {}",
                    did_you_mean(name, &names),
                    names.join(", ")
                ))
            }
        }
    }

    /// The name of the default source.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// Every source with its name, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &S)> {
        self.by_name
            .iter()
            .map(|(name, source)| (name.as_str(), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins the choice of source: the named one, else the default, else a
    // sentence that names the closest configured source.
    #[test]
    fn rule_sets_pick_their_source() {
        let sources = Sources::new(
            BTreeMap::from([("main".to_string(), 1), ("tenant-a".to_string(), 2)]),
            "main",
        )
        .expect("valid");
        assert_eq!(sources.pick(None).expect("default"), ("main", &1));
        assert_eq!(
            sources.pick(Some("tenant-a")).expect("named"),
            ("tenant-a", &2)
        );
        let error = sources.pick(Some("tenant-b")).unwrap_err();
        assert!(error.contains("did you mean `tenant-a`"), "{error}");
        assert!(Sources::new(BTreeMap::from([("a".to_string(), 1)]), "b").is_err());
    }
}
