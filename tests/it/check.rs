//! `canary-gate check`: rule files validated with `file:line:col` errors.

use std::process::Command;

use crate::support::repo_root;

fn check(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .arg("check")
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run canary-gate check");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// The shipped rules pass and the check shows the PromQL each metric sends for the
// example sides, and which of the two latency forms the latency metric is.
#[test]
fn shipped_rules_pass_and_show_their_queries() {
    let (code, stdout, stderr) = check(&["rules/", "--var", "service=checkout"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("rules/http.yaml: ok"), "{stdout}");
    assert!(
        stdout.contains("  - latency (latency, whole distribution)\n"),
        "{stdout}"
    );
    assert!(stdout.contains(r#"service="checkout""#), "{stdout}");
    assert!(
        stdout.contains(r#"track="canary""#) && stdout.contains(r#"track="baseline""#),
        "{stdout}"
    );
}

// A misspelt field and broken PromQL are each reported at their file:line:col.
#[test]
fn broken_rule_file_names_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "alpha: 0.01\n\
         metrics:\n\
         \x20 - name: error-rate\n\
         \x20   kind: ratio\n\
         \x20   bad: http_requests_total{code=~\"5..\"\n\
         \x20   total: http_requests_total\n\
         \x20   direction: increase\n\
         \x20   tolerence: +10%\n",
    )
    .expect("write rule file");
    let shown = path.display().to_string();
    let (code, _, stderr) = check(&[&shown]);
    assert_eq!(code, 3, "{stderr}");
    // `tolerence` starts line 8 at column 5.
    assert!(stderr.contains(&format!("{shown}:8:5:")), "{stderr}");
    assert!(
        stderr.contains("tolerance"),
        "suggests the right name: {stderr}"
    );
}

// A path that does not exist is an error, not an empty success.
#[test]
fn missing_path_is_an_error() {
    let (code, _, stderr) = check(&["no/such/rules"]);
    assert_eq!(code, 3);
    assert!(stderr.contains("no such file or directory"), "{stderr}");
}

// Regression: `check` exited 1 on invalid rules, the code `judge` and `wait`
// give a rollback, while the README's table says 3 means unreadable rules.
// Every command now exits 3 on rules it cannot use, and 1 only for a rollback.
#[test]
fn check_exits_3_on_invalid_rules_as_the_readme_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("http.yaml");
    std::fs::write(&path, "metrics: [\n").expect("write rule file");
    let (code, _, stderr) = check(&[&path.display().to_string()]);
    assert_eq!(code, 3, "{stderr}");
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let row = readme
        .lines()
        .find(|line| line.starts_with("| 3 |"))
        .expect("the README's exit-code table has a row for 3");
    assert!(row.contains("invalid rules"), "{row}");
    // `judge` with a rule folder whose only file is invalid cannot find its
    // rule set: an error, exit 3, naming the file's problem.
    let start = (time::OffsetDateTime::now_utc().unix_timestamp() - 600).to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .args(["judge", "--prometheus", "http://127.0.0.1:9", "--rules-dir"])
        .arg(dir.path())
        .args([
            "--rules",
            "http",
            "--deployment",
            "d",
            "--canary",
            "track=canary",
            "--baseline",
            "track=baseline",
            "--start",
            &start,
        ])
        .output()
        .expect("run canary-gate judge");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("http.yaml:1:"),
        "names the broken file: {stderr}"
    );
}

// Regression: clap exits 2 on a bad flag, the code `wait` and `judge` give an
// inconclusive verdict, so a typo in a pipeline's flags read as "ask again".
// A bad argument now exits 3 (error), and `--help` still exits 0.
#[test]
fn a_bad_flag_exits_3_not_inconclusive() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_canary-gate"))
            .args(args)
            .output()
            .expect("run canary-gate")
    };
    let typo = run(&["wait", "--server", "http://127.0.0.1:9", "--rulez", "http"]);
    assert_eq!(typo.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("--rulez"));
    assert_eq!(run(&["judge", "--help"]).status.code(), Some(0));
    assert_eq!(run(&["--version"]).status.code(), Some(0));
}
