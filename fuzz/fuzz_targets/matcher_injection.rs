//! Fuzzes matcher injection: the input is a side selector string and a var
//! value (split at the first 0xFF byte). Whatever they hold, a selector that
//! parses is planned into a query that parses back with exactly its matchers
//! plus the rule's own, and the var stays one label value.

#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use canary_gate::plan::{self, SideSelector};
use canary_gate::rules;
use libfuzzer_sys::fuzz_target;
use promql_parser::label::Matcher;
use promql_parser::parser::Expr;

const RULES: &str = "metrics:\n  - name: m\n    kind: threshold\n    query: 'x{svc=\"$v\"}'\n    max: 1\n";

fn matcher_set(matchers: &[Matcher]) -> Vec<(String, String, String)> {
    let mut set: Vec<_> = matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .map(|m| (m.name.clone(), m.op.to_string(), m.value.clone()))
        .collect();
    set.sort();
    set.dedup();
    set
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0xFF).unwrap_or(data.len());
    let (Ok(text), Ok(value)) = (
        std::str::from_utf8(&data[..split]),
        std::str::from_utf8(data.get(split + 1..).unwrap_or_default()),
    ) else {
        return;
    };
    let Ok(side) = SideSelector::parse(text) else {
        return;
    };
    let set = rules::load_str(Path::new("f.yaml"), RULES).expect("the target's rules compile");
    let other = SideSelector::from_map(&BTreeMap::from([(
        "zz_other".to_string(),
        "side".to_string(),
    )]))
    .expect("valid side");
    let vars = BTreeMap::from([("v".to_string(), value.to_string())]);
    let Ok(planned) = plan::plan(&set, &side, &other, &vars) else {
        return;
    };
    let promql = &planned.metrics[0].canary[0].promql;
    let reread = promql_parser::parser::parse(promql)
        .unwrap_or_else(|e| panic!("the planned query does not parse: {promql}: {e}"));
    let Expr::VectorSelector(selector) = reread else {
        panic!("the planned query is no longer one selector: {promql}");
    };
    assert!(selector.matchers.or_matchers.is_empty(), "{promql}");
    assert_eq!(selector.name.as_deref(), Some("x"), "{promql}");
    let mut want = side.matchers.clone();
    want.push(Matcher::new(promql_parser::label::MatchOp::Equal, "svc", value));
    assert_eq!(
        matcher_set(&selector.matchers.matchers),
        matcher_set(&want),
        "{promql}"
    );
});
