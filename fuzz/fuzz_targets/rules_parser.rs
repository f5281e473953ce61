//! Fuzzes the rule-file parser: any bytes, read as a rule file, are compiled
//! or refused with errors that name the file; never a panic or a hang. A rule
//! set that compiles must plan for a plain canary and baseline.

#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use canary_gate::plan::{self, PlanError, SideSelector};
use canary_gate::rules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.yaml");
    match rules::load_str(path, text) {
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal carries at least one error");
            for error in errors {
                assert_eq!(error.path, path, "every error names the file");
            }
        }
        Ok(set) => {
            assert_eq!(set.content_hash.len(), 64);
            let side = |track: &str| {
                let labels = BTreeMap::from([("track".to_string(), track.to_string())]);
                SideSelector::from_map(&labels).expect("a plain side is valid")
            };
            let vars: BTreeMap<String, String> = set
                .vars
                .iter()
                .map(|name| (name.clone(), "fuzz".to_string()))
                .collect();
            match plan::plan(&set, &side("canary"), &side("baseline"), &vars) {
                Err(PlanError::RenderMismatch { promql, .. }) => {
                    panic!("a compiled rule set rendered a query that reads back differently: {promql}")
                }
                Err(PlanError::TooManyVars { .. }) | Ok(_) => {}
                Err(other) => panic!("a compiled rule set did not plan: {other}"),
            }
        }
    }
});
