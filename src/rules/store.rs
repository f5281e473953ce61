//! The rules store: the rule sets in force, loaded from the rules folder and
//! read again on a file change (watched here), and on SIGHUP and
//! `POST /v1/rules/reload` (which the doors call [`reload`] for); each reload
//! replaces the rules in force one rule set at a time. The HTTP door holds a
//! store; nothing here knows about HTTP.
//!
//! A rule set whose file now fails validation keeps its last good version in
//! force (and its errors are shown at `GET /v1/rules`); a new good file is
//! added; a deleted file is removed. Editors and Kubernetes ConfigMaps replace
//! files by rename or by swapping a `..data` symlink, so the folder itself is
//! watched (not the files) and every burst of events reloads the whole folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

use crate::rules::load::{self, LoadedRules};

/// Quiet time after a file event before the folder is read: an editor's save
/// or a ConfigMap swap is several events, and one reload should see them all.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// What one reload changed, for logs and the reload endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadSummary {
    /// Rule sets in force after the reload.
    pub rule_sets: Vec<String>,
    /// Rule sets new or changed (by content hash).
    pub changed: Vec<String>,
    /// Rule sets whose file is gone.
    pub removed: Vec<String>,
    /// Rule sets whose file failed and whose last good version stays in force.
    pub kept_last_good: Vec<String>,
    /// Every problem found, as `file:line:col: message`.
    pub errors: Vec<String>,
}

/// The rules to put in force, given those in force and a fresh load of the folder.
///
/// A rule set is kept from `previous` when `fresh` has no version of it but
/// has an error for a file of the same stem (it was edited and broke), or when
/// the folder as a whole could not be read (an error not about a rule file).
pub fn merge(previous: &LoadedRules, fresh: LoadedRules, dir: &Path) -> LoadedRules {
    let folder_unreadable = fresh.errors.iter().any(|e| e.path == dir);
    let failed: BTreeSet<String> = fresh
        .errors
        .iter()
        .filter_map(|e| rule_set_name(&e.path))
        .collect();
    let mut next = fresh;
    for (name, set) in &previous.sets {
        if next.sets.contains_key(name) {
            continue;
        }
        if folder_unreadable || failed.contains(name) {
            next.sets.insert(name.clone(), set.clone());
        }
    }
    next
}

/// The rule set a file would define: its stem, for `.yaml` and `.yml` files.
pub fn rule_set_name(path: &Path) -> Option<String> {
    let ext = path.extension()?.to_str()?;
    if ext != "yaml" && ext != "yml" {
        return None;
    }
    path.file_stem()?.to_str().map(str::to_string)
}

/// Names of the rule sets in force that are an older version than their file:
/// the file failed and the last good version was kept.
pub fn kept_last_good(loaded: &LoadedRules) -> Vec<String> {
    let failed: BTreeSet<String> = loaded
        .errors
        .iter()
        .filter_map(|e| rule_set_name(&e.path))
        .collect();
    loaded
        .sets
        .keys()
        .filter(|name| failed.contains(*name))
        .cloned()
        .collect()
}

/// Told the summary of every reload, whatever started it: how the door
/// that holds the store counts reloads without this module knowing it.
pub type ReloadHook = Box<dyn Fn(&ReloadSummary) + Send + Sync>;

/// The rule sets in force and the folder they come from.
pub struct RulesStore {
    dir: PathBuf,
    loaded: RwLock<Arc<LoadedRules>>,
    /// One reload at a time, so a slow read of the folder never overwrites a newer one.
    reloading: Mutex<()>,
    on_reload: Option<ReloadHook>,
}

impl std::fmt::Debug for RulesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesStore")
            .field("dir", &self.dir)
            .field("on_reload", &self.on_reload.is_some())
            .finish_non_exhaustive()
    }
}

impl RulesStore {
    /// A store with the rules loaded from `dir`; load errors are logged, not fatal.
    pub fn open(dir: PathBuf) -> RulesStore {
        let loaded = load::load_dir(&dir);
        for error in &loaded.errors {
            tracing::error!(%error, "rule file rejected");
        }
        tracing::info!(rule_sets = ?loaded.sets.keys().collect::<Vec<_>>(), dir = %dir.display(), "rules loaded");
        RulesStore {
            dir,
            loaded: RwLock::new(Arc::new(loaded)),
            reloading: Mutex::new(()),
            on_reload: None,
        }
    }

    /// The same store, telling `hook` the summary of every reload.
    pub fn with_reload_hook(mut self, hook: ReloadHook) -> RulesStore {
        self.on_reload = Some(hook);
        self
    }

    /// The rules folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The rules in force now; a reload never changes what this returned.
    pub fn current(&self) -> Arc<LoadedRules> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the rules folder again and puts the result in force; logs what
    /// changed. Blocking: it reads files.
    pub fn reload(&self) -> ReloadSummary {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = load::load_dir(&self.dir);
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        let previous = loaded.clone();
        let next = merge(&previous, fresh, &self.dir);
        let summary = summarize(&previous, &next);
        *loaded = Arc::new(next);
        drop(loaded);
        for error in &summary.errors {
            tracing::error!(%error, "rule file rejected");
        }
        for name in &summary.kept_last_good {
            tracing::warn!(rule_set = %name, "the rule file failed; its last good version stays in force");
        }
        tracing::info!(
            rule_sets = ?summary.rule_sets,
            changed = ?summary.changed,
            removed = ?summary.removed,
            "rules reloaded"
        );
        if let Some(hook) = &self.on_reload {
            hook(&summary);
        }
        summary
    }
}

/// [`RulesStore::reload`] off the async workers.
pub async fn reload(store: &Arc<RulesStore>) -> ReloadSummary {
    let store = store.clone();
    let task = tokio::task::spawn_blocking(move || store.reload());
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the rule reload task failed");
        ReloadSummary::default()
    })
}

fn summarize(previous: &LoadedRules, next: &LoadedRules) -> ReloadSummary {
    ReloadSummary {
        rule_sets: next.sets.keys().cloned().collect(),
        changed: next
            .sets
            .iter()
            .filter(|(name, set)| {
                previous
                    .sets
                    .get(*name)
                    .is_none_or(|old| old.content_hash != set.content_hash)
            })
            .map(|(name, _)| name.clone())
            .collect(),
        removed: previous
            .sets
            .keys()
            .filter(|name| !next.sets.contains_key(*name))
            .cloned()
            .collect(),
        kept_last_good: kept_last_good(next),
        errors: next.errors.iter().map(|e| e.to_string()).collect(),
    }
}

/// Watches the rules folder and reloads after each burst of changes, until
/// the returned task is aborted. Fails when the folder cannot be watched.
pub fn watch(store: Arc<RulesStore>) -> notify::Result<tokio::task::JoinHandle<()>> {
    let changed = Arc::new(Notify::new());
    let signal = changed.clone();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
            Ok(_) => signal.notify_one(),
            Err(error) => tracing::warn!(%error, "watching the rules folder"),
        })?;
    watcher.watch(store.dir(), RecursiveMode::NonRecursive)?;
    tracing::info!(dir = %store.dir().display(), "watching the rules folder");
    Ok(tokio::spawn(async move {
        // The watcher stops when dropped, so the task owns it.
        let _watcher = watcher;
        loop {
            changed.notified().await;
            tokio::time::sleep(DEBOUNCE).await;
            reload(&store).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "metrics:\n  - name: errors\n    kind: threshold\n    query: up\n    max: 1\n";

    fn loaded(dir: &Path, files: &[(&str, &str)]) -> LoadedRules {
        for entry in std::fs::read_dir(dir).expect("dir") {
            std::fs::remove_file(entry.expect("entry").path()).expect("remove");
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }
        load::load_dir(dir)
    }

    // Pins the per-rule-set merge: broken keeps last good, new is added, deleted is removed.
    #[test]
    fn merge_keeps_last_good_per_rule_set() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = loaded(dir.path(), &[("http.yaml", GOOD), ("grpc.yaml", GOOD)]);
        assert_eq!(first.sets.len(), 2, "{:?}", first.errors);
        let fresh = loaded(
            dir.path(),
            &[("http.yaml", "metrics: [\n"), ("jobs.yaml", GOOD)],
        );
        let next = merge(&first, fresh, dir.path());
        let names: Vec<_> = next.sets.keys().cloned().collect();
        assert_eq!(names, ["http", "jobs"]);
        assert!(Arc::ptr_eq(&next.sets["http"], &first.sets["http"]));
        assert_eq!(kept_last_good(&next), ["http"]);
        assert!(!next.errors.is_empty());
    }

    // Pins that an unreadable folder keeps every rule set in force.
    #[test]
    fn unreadable_folder_keeps_everything() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = loaded(dir.path(), &[("http.yaml", GOOD)]);
        let gone = PathBuf::from(dir.path()).join("missing");
        let next = merge(&first, load::load_dir(&gone), &gone);
        assert!(next.sets.contains_key("http"));
        assert_eq!(next.errors.len(), 1);
    }
}
