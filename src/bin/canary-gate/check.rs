//! `canary-gate check`: validates rule files the way `promtool check rules`
//! does, and shows the PromQL each metric will send for an example canary and
//! baseline, so a rule writer sees the queries before a pipeline does.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use canary_gate::judge::{kind_name, metric_alpha, tested_metrics};
use canary_gate::plan::{self, Role};
use canary_gate::request::SideSelector;
use canary_gate::rules::{self, MetricKind, RuleError, RuleSet};
use canary_gate::stats::family::per_metric_alpha;

/// The example sides and vars the shown queries are planned for.
#[derive(Clone, Debug)]
pub struct Example {
    pub canary: SideSelector,
    pub baseline: SideSelector,
    /// Values for `$vars`; a var without one is shown as `$name`.
    pub vars: BTreeMap<String, String>,
}

/// Rule files named by `paths`: files as they are, folders by their `*.yaml` / `*.yml`.
fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RuleError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| {
                RuleError::whole(path, format!("cannot read the rules directory: {e}"))
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(RuleError::whole(
                    path,
                    "holds no rule files (*.yaml or *.yml)",
                ));
            }
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(RuleError::whole(path, "no such file or directory"));
        }
    }
    Ok(files)
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Bad => "bad",
        Role::Total => "total",
        Role::Histogram => "histogram",
        Role::Series => "series",
        Role::Value => "value",
    }
}

fn show_rule_set(set: &RuleSet, example: &Example, out: &mut dyn Write) -> io::Result<()> {
    let tested = tested_metrics(set);
    writeln!(
        out,
        "{}: ok: rule set `{}`, {} metrics, alpha {} ({} for each of {tested} tested metrics), step {}s",
        set.path.display(),
        set.name,
        set.metrics.len(),
        set.alpha,
        per_metric_alpha(set.alpha, tested),
        set.step_secs,
    )?;
    let mut vars = example.vars.clone();
    for name in &set.vars {
        vars.entry(name.clone())
            .or_insert_with(|| format!("${name}"));
    }
    vars.retain(|name, _| set.vars.contains(name));
    let planned = match plan::plan(set, &example.canary, &example.baseline, &vars) {
        Ok(planned) => planned,
        Err(error) => {
            writeln!(out, "  (queries not shown: {error})")?;
            return Ok(());
        }
    };
    writeln!(
        out,
        "  queries for canary {} and baseline {}:",
        example.canary, example.baseline
    )?;
    for (metric, metric_plan) in set.metrics.iter().zip(&planned.metrics) {
        let critical = if metric.critical { ", critical" } else { "" };
        let shadow = match (metric.shadow, &metric.kind) {
            (false, _) => String::new(),
            (true, MetricKind::Threshold { .. }) => ", shadow: never counted".to_string(),
            (true, _) => format!(
                ", shadow: judged at alpha {}, never counted",
                canary_gate::text::number(metric_alpha(set, metric))
            ),
        };
        // Both latency forms are `kind: latency` in a rule file; say which.
        let kind = match &metric.kind {
            MetricKind::Latency {
                threshold_seconds, ..
            } => format!(
                "latency, share slower than {}",
                canary_gate::text::latency(*threshold_seconds)
            ),
            MetricKind::Distribution { .. } => "latency, whole distribution".to_string(),
            other => kind_name(other).to_string(),
        };
        writeln!(out, "  - {} ({kind}{critical}{shadow})", metric.name)?;
        for (side, queries) in [
            ("canary", &metric_plan.canary),
            ("baseline", &metric_plan.baseline),
        ] {
            for query in queries {
                writeln!(
                    out,
                    "      {side} {}: {}",
                    role_word(query.role),
                    query.promql
                )?;
            }
        }
    }
    Ok(())
}

/// Checks every rule file under `paths`. Errors go to `errors` as
/// `file:line:col: message`; each good file's summary and queries go to `out`.
/// Returns whether every file is valid.
pub fn check(
    paths: &[PathBuf],
    example: &Example,
    out: &mut dyn Write,
    errors: &mut dyn Write,
) -> io::Result<bool> {
    let files = match rule_files(paths) {
        Ok(files) => files,
        Err(error) => {
            writeln!(errors, "{error}")?;
            return Ok(false);
        }
    };
    let mut all_good = true;
    for file in files {
        match rules::load_file(&file) {
            Ok(set) => show_rule_set(&set, example, out)?,
            Err(problems) => {
                all_good = false;
                for problem in problems {
                    writeln!(errors, "{problem}")?;
                }
            }
        }
    }
    Ok(all_good)
}
