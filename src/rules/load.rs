//! Reading rule files: one file, a text, or a whole folder of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::rules::error::RuleError;
use crate::rules::model::RuleSet;
use crate::rules::{compile, error};

/// The largest rule file read, in bytes; a rule set is a page of YAML.
pub const MAX_RULE_FILE_BYTES: u64 = 1024 * 1024;

/// Every rule set of a directory, and the problems of the files that failed.
#[derive(Clone, Debug, Default)]
pub struct LoadedRules {
    /// Rule sets by name (file stem). A file with any problem is absent.
    pub sets: BTreeMap<String, Arc<RuleSet>>,
    /// Problems of all files, in file order.
    pub errors: Vec<RuleError>,
}

impl LoadedRules {
    /// Why `name` cannot be used: no such rule set (with the closest loaded
    /// name, when one is close), and the names that are loaded.
    pub fn missing(&self, name: &str) -> String {
        let names: Vec<&str> = self.sets.keys().map(String::as_str).collect();
        let loaded = match names.is_empty() {
            true => "none (see the rule file errors)".to_string(),
            false => names.join(", "),
        };
        format!(
            "there is no rule set `{name}`;{} loaded rule sets: {loaded}",
            error::did_you_mean(name, &names)
        )
    }
}

/// Reads and compiles one rule file; the rule set is named by the file stem.
pub fn load_file(path: &Path) -> Result<RuleSet, Vec<RuleError>> {
    let too_big = std::fs::metadata(path)
        .map(|meta| meta.len() > MAX_RULE_FILE_BYTES)
        .unwrap_or(false);
    if too_big {
        return Err(vec![RuleError::whole(
            path,
            format!(
                "the file is larger than {MAX_RULE_FILE_BYTES} bytes; a rule file should be a page of YAML"
            ),
        )]);
    }
    let bytes = std::fs::read(path).map_err(|e| {
        vec![RuleError::whole(
            path,
            format!("cannot read the rule file: {e}"),
        )]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        vec![RuleError::whole(
            path,
            format!(
                "the file is not UTF-8 text (bad byte at offset {}); save it as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )]
    })?;
    load_str(path, &text)
}

/// Compiles rule-file text as if read from `path` (which names the rule set
/// and appears in errors). [`load_file`] is this plus reading the file.
pub fn load_str(path: &Path, text: &str) -> Result<RuleSet, Vec<RuleError>> {
    compile::compile_text(path, text)
}

/// The rule set `name` of `dir` alone, for a one-shot command that judges
/// by one set: it reads `name.yaml` (or `name.yml`) and no other file, where
/// [`load_dir`] parses and compiles every file of the folder.
///
/// Whenever that one file does not simply give the set (it is missing, both
/// spellings exist, `name` is not a plain file name, or the file has
/// problems), it loads the whole folder instead, so what goes wrong is told
/// exactly as [`load_dir`] tells it: the names that are loaded, the closest
/// one, and the problems of every file.
pub fn load_named(dir: &Path, name: &str) -> LoadedRules {
    let plain = !name.is_empty()
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
        && name != "."
        && name != "..";
    let candidates: Vec<_> = match plain {
        true => ["yaml", "yml"]
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .filter(|path| path.is_file())
            .collect(),
        false => Vec::new(),
    };
    if let [path] = candidates.as_slice()
        && let Ok(set) = load_file(path)
        && set.name == name
    {
        let mut loaded = LoadedRules::default();
        loaded.sets.insert(set.name.clone(), Arc::new(set));
        return loaded;
    }
    load_dir(dir)
}

/// Loads every `*.yaml` and `*.yml` file of `dir`, in name order.
///
/// A missing or unreadable directory is one error entry. Two files with the
/// same stem (`http.yaml` and `http.yml`) are an error for the second one.
pub fn load_dir(dir: &Path) -> LoadedRules {
    let mut loaded = LoadedRules::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            loaded.errors.push(RuleError::whole(
                dir,
                format!("cannot read the rules directory: {e}"),
            ));
            return loaded;
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(e) => loaded.errors.push(RuleError::whole(
                dir,
                format!("cannot list the rules directory: {e}"),
            )),
        }
    }
    paths.retain(|path| {
        path.is_file()
            && path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
    });
    paths.sort();
    for path in paths {
        match load_file(&path) {
            Ok(set) => {
                if loaded.sets.contains_key(&set.name) {
                    loaded.errors.push(RuleError::whole(
                        &path,
                        format!(
                            "another file already defines rule set `{}`; keep one of them",
                            set.name
                        ),
                    ));
                } else {
                    loaded.sets.insert(set.name.clone(), Arc::new(set));
                }
            }
            Err(errors) => loaded.errors.extend(errors),
        }
    }
    loaded
}
