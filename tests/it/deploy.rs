//! The shipped deployments start as written: the Kubernetes Deployment's
//! container arguments and environment, the systemd unit's `ExecStart` and
//! the image's `ENTRYPOINT` and `CMD` run the real `canary-gate serve` against a real Prometheus, with only the
//! listen port and the paths changed (and the placeholder token, which they
//! must refuse, replaced). Their ConfigMaps, Secret and files become the
//! test's folders and files, made from the manifests themselves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use canary_gate::source::SourcesConfig;

use crate::support::binary::{ServeProcess, binary};
use crate::support::prometheus::{TestPrometheus, free_port};
use crate::support::{MINUTES, repo_root, request, two_services, window_start};

/// Longest wait for `/readyz` to say ready once `/healthz` answers (a hang guard).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The token the shipped Secret and EnvironmentFile hold until replaced: too
/// short for canary-gate, which refuses to start with it.
const PLACEHOLDER_TOKEN: &str = "CHANGE-ME";

/// The token the tests put in its place.
const TEST_TOKEN: &str = "deploy-test-token-0123456789abcdef";

/// The documents of every YAML file in deploy/kubernetes, as JSON values.
fn kubernetes_manifests() -> Vec<Value> {
    let dir = repo_root().join("deploy/kubernetes");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .map(|entry| entry.expect("folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("read manifest");
            serde_saphyr::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
        })
        .collect()
}

/// The manifest of `kind` called `name`.
fn find<'a>(manifests: &'a [Value], kind: &str, name: &str) -> &'a Value {
    manifests
        .iter()
        .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} `{name}` in deploy/kubernetes"))
}

/// A ConfigMap's `data` or a Secret's `stringData`, key by key.
fn contents(object: &Value) -> BTreeMap<String, String> {
    let field = match object["kind"].as_str() {
        Some("ConfigMap") => "data",
        Some("Secret") => "stringData",
        other => panic!("no file contents in a {other:?}"),
    };
    let map = object[field]
        .as_object()
        .unwrap_or_else(|| panic!("the test reads {field} only: {object}"));
    map.iter()
        .map(|(key, value)| {
            let text = value.as_str().expect("string values");
            (key.clone(), text.to_string())
        })
        .collect()
}

/// Maps the paths a deployment names (its mount points, its state and
/// configuration folders) to the test's folders.
struct Paths(Vec<(String, PathBuf)>);

impl Paths {
    /// `text` with a leading deployed path replaced by the test's folder.
    fn local(&self, text: &str) -> String {
        for (deployed, local) in &self.0 {
            if let Some(rest) = text.strip_prefix(deployed.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{}{rest}", local.display());
            }
        }
        text.to_string()
    }
}

/// The value that follows `flag` in `args`, or the environment variable `env_name`.
fn flag_or_env<'a>(
    args: &'a [String],
    env: &'a [(String, String)],
    flag: &str,
    env_name: &str,
) -> Option<&'a str> {
    let from_args = args
        .windows(2)
        .find(|pair| pair[0] == flag)
        .map(|pair| pair[1].as_str());
    from_args.or_else(|| {
        env.iter()
            .find(|(name, _)| name == env_name)
            .map(|(_, value)| value.as_str())
    })
}

/// Points the config file at `path` at `prometheus_url` and its files at the
/// test's, written back as JSON (which is YAML).
fn point_config_at(path: &Path, prometheus_url: &str, paths: &Paths) {
    let text = std::fs::read_to_string(path).expect("read the config file");
    let mut config: Value = serde_saphyr::from_str(&text).expect("the config file is YAML");
    let sources = config["sources"]
        .as_object_mut()
        .expect("the config declares sources");
    for source in sources.values_mut() {
        source["url"] = Value::from(prometheus_url);
        localize_files(source, paths);
    }
    std::fs::write(path, config.to_string()).expect("write the config file");
}

/// Every `*_file` value under `value`, moved to the test's folders.
fn localize_files(value: &mut Value, paths: &Paths) {
    map_files(value, &mut |path| paths.local(path));
}

/// Every `*_file` value under `value` replaced by what `map` makes of it.
fn map_files(value: &mut Value, map: &mut dyn FnMut(&str) -> String) {
    if let Some(object) = value.as_object_mut() {
        for (key, inner) in object.iter_mut() {
            match inner.as_str() {
                Some(text) if key.ends_with("_file") => *inner = Value::from(map(text)),
                _ => map_files(inner, map),
            }
        }
    }
}

/// The first token of a token file's text: blank and `#` lines skipped.
fn first_token(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .expect("a token")
        .to_string()
}

/// `args` with `--listen`'s port replaced by a free one; and that port.
fn free_listen_port(args: &[String]) -> (Vec<String>, u16) {
    let port = free_port();
    let mut args = args.to_vec();
    let at = args
        .iter()
        .position(|arg| arg == "--listen")
        .expect("the deployment says where to listen");
    let (host, _) = args[at + 1].rsplit_once(':').expect("--listen HOST:PORT");
    args[at + 1] = format!("{host}:{port}");
    (args, port)
}

/// Checks that `canary-gate` with exactly `args` and `env` refuses to start,
/// with exit code 3 and a reason naming the token's length.
fn assert_refuses_to_start(args: &[String], env: &[(String, String)]) {
    let mut child = std::process::Command::new(binary())
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start canary-gate");
    let deadline = Instant::now() + READY_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for canary-gate") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("canary-gate started with the placeholder token");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("at least 16"), "{stderr}");
}

/// Starts `canary-gate` with exactly `args` and `env`, and checks that it is
/// healthy, ready with Prometheus, and gives a verdict to a request with
/// `token` (and refuses one without it).
async fn check_serves(args: &[String], env: &[(String, String)], port: u16, token: &str) {
    let url = format!("http://127.0.0.1:{port}");
    let server = ServeProcess::start_exact(&url, args, env);
    let client = reqwest::Client::new();

    let health = client.get(format!("{url}/healthz")).send().await;
    assert_eq!(health.expect("/healthz answers").status().as_u16(), 200);

    let deadline = Instant::now() + READY_TIMEOUT;
    let readiness = loop {
        let response = client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .expect("/readyz answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("/readyz is JSON");
        if status == 200 || Instant::now() > deadline {
            assert_eq!(status, 200, "{body}\n{}", server.stderr());
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(readiness["prometheus"], "ready", "{readiness}");
    assert!(
        readiness["rule_sets"]
            .as_array()
            .is_some_and(|sets| sets.iter().any(|set| set == "http")),
        "{readiness}"
    );

    let start = window_start();
    let body = request("checkout", start, start + MINUTES * 60, true);
    let refused = client
        .post(format!("{url}/v1/verdicts"))
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(refused.status().as_u16(), 401, "a write without the token");
    let response = client
        .post(format!("{url}/v1/verdicts"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let verdict: Value = response.json().await.expect("the answer is JSON");
    assert_eq!(status, 200, "{verdict}\n{}", server.stderr());
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
}

// The Deployment's args and env, with its ConfigMaps and Secret as the
// folders and files it mounts, refuse to start with the Secret's placeholder
// token and, once it is replaced, start the server: healthy, ready with a
// real Prometheus, and judging a verdict sent with the Secret's token.
#[tokio::test]
async fn kubernetes_deployment_starts_as_written() {
    let prometheus = TestPrometheus::start(&two_services(window_start()));
    let manifests = kubernetes_manifests();
    let deployment = find(&manifests, "Deployment", "canary-gate");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let root = tempfile::tempdir().expect("temp dir");

    // Each volume becomes a folder holding what the pod would see in it.
    let mut mounts = Vec::new();
    for volume in pod["volumes"].as_array().expect("volumes") {
        let name = volume["name"].as_str().expect("volume name");
        let folder = root.path().join(name);
        std::fs::create_dir_all(&folder).expect("volume folder");
        let files = if let Some(name) = volume["configMap"]["name"].as_str() {
            contents(find(&manifests, "ConfigMap", name))
        } else if let Some(name) = volume["secret"]["secretName"].as_str() {
            contents(find(&manifests, "Secret", name))
        } else if volume.get("emptyDir").is_some() {
            BTreeMap::new()
        } else {
            panic!("the test knows configMap, secret and emptyDir volumes, not {volume}");
        };
        for (file, text) in files {
            std::fs::write(folder.join(file), text).expect("write volume file");
        }
        mounts.push((name.to_string(), folder));
    }
    let mut paths = Vec::new();
    for mount in container["volumeMounts"].as_array().expect("volumeMounts") {
        let name = mount["name"].as_str().expect("mount name");
        let (_, folder) = mounts
            .iter()
            .find(|(volume, _)| volume == name)
            .unwrap_or_else(|| panic!("no volume `{name}`"));
        let deployed = mount["mountPath"].as_str().expect("mountPath");
        paths.push((deployed.to_string(), folder.clone()));
    }
    // Longest first, so a mount inside another maps to its own folder.
    paths.sort_by_key(|(deployed, _)| std::cmp::Reverse(deployed.len()));
    let paths = Paths(paths);

    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|arg| paths.local(arg.as_str().expect("string args")))
        .collect();
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|var| {
            let name = var["name"].as_str().expect("env name").to_string();
            let value = if let Some(value) = var["value"].as_str() {
                value.to_string()
            } else if let Some(key) = var["valueFrom"]["secretKeyRef"].as_object() {
                let secret = find(&manifests, "Secret", key["name"].as_str().expect("name"));
                contents(secret)[key["key"].as_str().expect("key")].clone()
            } else if let Some(key) = var["valueFrom"]["configMapKeyRef"].as_object() {
                let map = find(&manifests, "ConfigMap", key["name"].as_str().expect("name"));
                contents(map)[key["key"].as_str().expect("key")].clone()
            } else {
                panic!("the test knows value, secretKeyRef and configMapKeyRef, not {var}");
            };
            (name, paths.local(&value))
        })
        .collect();

    let config = flag_or_env(&args, &env, "--config", "CANARY_GATE_CONFIG")
        .expect("the deployment names its sources with --config");
    point_config_at(Path::new(config), &prometheus.url, &paths);
    let token_file = flag_or_env(&args, &env, "--token-file", "CANARY_GATE_TOKEN_FILE")
        .expect("the deployment passes tokens in a file from the Secret")
        .to_string();
    let shipped = std::fs::read_to_string(&token_file).expect("token file");
    assert_eq!(first_token(&shipped), PLACEHOLDER_TOKEN);

    let (args, port) = free_listen_port(&args);
    assert_refuses_to_start(&args, &env);
    // Replaced as the Secret's comment asks, the token is the one to send.
    let replaced = shipped.replace(PLACEHOLDER_TOKEN, TEST_TOKEN);
    std::fs::write(&token_file, &replaced).expect("replace the token");
    check_serves(&args, &env, port, &first_token(&replaced)).await;
}

// The rules ConfigMap ships rules/http.yaml as it is: one is not edited without the other.
#[test]
fn rules_configmap_is_the_shipped_rule_file() {
    let manifests = kubernetes_manifests();
    let rules = contents(find(&manifests, "ConfigMap", "canary-gate-rules"));
    let shipped = std::fs::read_to_string(repo_root().join("rules/http.yaml")).expect("rules");
    assert_eq!(rules["http.yaml"], shipped);
}

// The image's ENTRYPOINT and CMD, given a token file and the store's URL as
// the Dockerfile's `podman run` example gives them, start the server: healthy,
// ready with a real Prometheus and the rules it copies, judging with the token.
#[tokio::test]
async fn container_command_starts_as_written() {
    let prometheus = TestPrometheus::start(&two_services(window_start()));
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    let instruction = |name: &str| -> Vec<String> {
        let line = dockerfile
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("the Dockerfile has no {name}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{name} is not exec form ({e})"))
    };
    assert_eq!(instruction("ENTRYPOINT"), ["canary-gate"]);
    let root = tempfile::tempdir().expect("temp dir");
    let (rules, state) = (root.path().join("rules"), root.path().join("state"));
    std::fs::create_dir_all(&rules).expect("rules folder");
    std::fs::create_dir_all(state.join("verdicts")).expect("state folder");
    std::fs::copy(repo_root().join("rules/http.yaml"), rules.join("http.yaml"))
        .expect("copy the rules");
    let paths = Paths(vec![
        ("/etc/canary-gate/rules".to_string(), rules),
        ("/var/lib/canary-gate".to_string(), state),
    ]);
    let args: Vec<String> = instruction("CMD")
        .iter()
        .map(|arg| paths.local(arg))
        .collect();

    let token = TEST_TOKEN;
    let token_file = root.path().join("tokens");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let env = vec![
        (
            "CANARY_GATE_TOKEN_FILE".to_string(),
            token_file.display().to_string(),
        ),
        ("PROMETHEUS_URL".to_string(), prometheus.url.clone()),
    ];
    let (args, port) = free_listen_port(&args);
    check_serves(&args, &env, port, token).await;
}

// Every config example of docs/deploying.md's "Metric sources" is one
// `--config` accepts, given files and variables for the secrets it names.
#[test]
fn documented_source_configs_are_accepted() {
    let doc = std::fs::read_to_string(repo_root().join("docs/deploying.md")).expect("the doc");
    let section = doc
        .split("\n## ")
        .find(|section| section.starts_with("Metric sources\n"))
        .expect("a section `## Metric sources`");
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().expect("a closed block"))
        .collect();
    assert!(blocks.len() >= 6, "a config example per store");
    let dir = tempfile::tempdir().expect("temp dir");
    for block in blocks {
        let mut config: Value =
            serde_saphyr::from_str(block).unwrap_or_else(|e| panic!("not YAML ({e}):\n{block}"));
        let mut files = 0;
        map_files(&mut config, &mut |_| {
            files += 1;
            let path = dir.path().join(format!("secret-{files}"));
            std::fs::write(&path, "not-a-real-secret").expect("write");
            path.display().to_string()
        });
        let env = |_: &str| Some("not-a-real-secret".to_string());
        SourcesConfig::parse(Path::new("docs/deploying.md"), &config.to_string(), &env)
            .unwrap_or_else(|errors| panic!("{errors:?} in:\n{block}"));
    }
}

/// The value of the first `key=` line of the unit file `unit`.
fn unit_setting<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
        .trim()
}

// The systemd unit's ExecStart, with /etc/canary-gate made from the files the
// unit's comment installs there and its EnvironmentFile's variables, refuses
// to start with the placeholder token and, once it is replaced, starts the
// server: healthy, ready with a real Prometheus, judging with its token.
#[tokio::test]
async fn systemd_unit_starts_as_written() {
    let prometheus = TestPrometheus::start(&two_services(window_start()));
    let systemd = repo_root().join("deploy/systemd");
    let unit = std::fs::read_to_string(systemd.join("canary-gate.service")).expect("the unit");
    let root = tempfile::tempdir().expect("temp dir");

    let config_dir = root.path().join("etc");
    let state_dir = root.path().join("state");
    std::fs::create_dir_all(config_dir.join("rules")).expect("rules folder");
    std::fs::create_dir_all(&state_dir).expect("state folder");
    std::fs::copy(
        repo_root().join("rules/http.yaml"),
        config_dir.join("rules/http.yaml"),
    )
    .expect("copy the rules");
    for file in ["config.yaml", "canary-gate.env"] {
        std::fs::copy(systemd.join(file), config_dir.join(file)).expect("copy");
    }
    let paths = Paths(vec![
        (
            format!("/etc/{}", unit_setting(&unit, "ConfigurationDirectory")),
            config_dir.clone(),
        ),
        (
            format!("/var/lib/{}", unit_setting(&unit, "StateDirectory")),
            state_dir,
        ),
    ]);

    let exec_start = unit_setting(&unit, "ExecStart");
    assert!(
        !exec_start.contains(['"', '\'', '\\', '$', '%']),
        "the test splits ExecStart on spaces: {exec_start}"
    );
    let mut words = exec_start.split_whitespace();
    words.next().expect("the program");
    let args: Vec<String> = words.map(|word| paths.local(word)).collect();

    let env_file = paths.local(unit_setting(&unit, "EnvironmentFile").trim_start_matches('-'));
    let mut env: Vec<(String, String)> = std::fs::read_to_string(env_file)
        .expect("the EnvironmentFile")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once('=').expect("NAME=value");
            (name.to_string(), value.to_string())
        })
        .collect();

    let config = flag_or_env(&args, &env, "--config", "CANARY_GATE_CONFIG").expect("--config");
    point_config_at(Path::new(config), &prometheus.url, &paths);
    let (args, port) = free_listen_port(&args);
    assert_refuses_to_start(&args, &env);
    // Replaced as the EnvironmentFile's comment asks, the token is the one to send.
    let (_, tokens) = env
        .iter_mut()
        .find(|(name, _)| name == "CANARY_GATE_TOKENS")
        .expect("the EnvironmentFile sets CANARY_GATE_TOKENS");
    assert_eq!(tokens.as_str(), PLACEHOLDER_TOKEN);
    *tokens = TEST_TOKEN.to_string();
    check_serves(&args, &env, port, TEST_TOKEN).await;
}
