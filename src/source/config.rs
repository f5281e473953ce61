//! Named metric sources, from the config file (`--config FILE` or
//! `CANARY_GATE_CONFIG`): what the file says (every value spanned, unknown
//! keys refused) turned once into [`SourceSettings`] with every secret read,
//! every file checked and every header name and value valid. A problem is a
//! [`RuleError`], `file:line:col: message`, like a rule file's.
//!
//! ```yaml
//! default_source: main          # optional when there is one source, or one named `default`
//! sources:
//!   main:
//!     url: https://prometheus.internal:9090
//!     bearer_token_file: /etc/canary-gate/prometheus-token
//!     tls:
//!       ca_file: /etc/canary-gate/ca.pem
//!   tenant-a:
//!     url: https://mimir.internal/prometheus
//!     headers: {X-Scope-OrgID: tenant-a}
//!     basic_auth: {username: canary-gate, password_env: MIMIR_PASSWORD}
//!     query_timeout: 20s
//!     max_concurrent_queries: 8
//! ```
//!
//! Secrets (tokens, passwords, client keys) live only in [`Secret`], whose
//! `Debug` and `Display` print `<redacted>`, so no log line, error or answer
//! can carry one by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::rules::RuleError;
use crate::rules::error::{did_you_mean, location_pos, yaml_error};

/// The largest config file read, in bytes.
pub const MAX_CONFIG_FILE_BYTES: u64 = 256 * 1024;
/// Default client-side deadline for one query.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most queries in flight to one source. Prometheus evaluates at most
/// 20 queries at once by default (`--query.max-concurrency`) and queues the
/// rest, so more in flight finish no sooner; each one's answer is held until
/// its verdict has all of them. Measured with `cargo bench --bench
/// verdict_cost` (BENCHMARKS.md): 16 concurrent 24-hour verdicts peaked at
/// 112.7 MB (median of 5 servers) with no limit and 76.3 MB at 8, at the same
/// throughput.
pub const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 8;
/// The name of the one source `--prometheus-url` declares, and of the source
/// rule sets use when they name none and the file declares no `default_source`.
pub const DEFAULT_SOURCE: &str = "default";

/// A secret read from a file or an environment variable: it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `text`.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How canary-gate proves who it is to a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic ...`.
    Basic { username: String, password: Secret },
}

/// TLS for an `https://` source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificates trusted besides the system's roots (a private CA).
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate (PEM) and its key (PEM), for mutual TLS.
    pub client: Option<(Vec<u8>, Secret)>,
    /// Accept any server certificate. Only for tests and emergencies.
    pub insecure_skip_verify: bool,
}

/// One source, resolved: everything needed to build its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSettings {
    /// Its name in the config file.
    pub name: String,
    /// Base URL of the Prometheus-compatible API, e.g. `https://mimir.internal/prometheus`.
    pub url: String,
    pub auth: Option<Auth>,
    /// Extra headers sent with every query, e.g. `X-Scope-OrgID`.
    pub headers: Vec<(String, String)>,
    pub tls: TlsSettings,
    /// Client-side deadline for one query.
    pub query_timeout: Duration,
    /// Most queries in flight to this source at once; the rest wait their turn.
    pub max_concurrent_queries: usize,
}

impl SourceSettings {
    /// A plain source at `url` with no credentials: what `--prometheus-url` declares.
    pub fn plain(name: &str, url: &str, query_timeout: Duration) -> SourceSettings {
        SourceSettings {
            name: name.to_string(),
            url: url.to_string(),
            auth: None,
            headers: Vec::new(),
            tls: TlsSettings::default(),
            query_timeout,
            max_concurrent_queries: DEFAULT_MAX_CONCURRENT_QUERIES,
        }
    }
}

/// Every source of a config, and which one rule sets use when they name none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcesConfig {
    /// Sources by name.
    pub sources: BTreeMap<String, SourceSettings>,
    /// The name of the source of rule sets without `source:`.
    pub default_source: String,
    /// The file they were read from; `None` for `--prometheus-url`.
    pub path: Option<PathBuf>,
}

impl SourcesConfig {
    /// One source named [`DEFAULT_SOURCE`] at `url`: the `--prometheus-url` shortcut.
    pub fn single(url: &str, query_timeout: Duration) -> SourcesConfig {
        let settings = SourceSettings::plain(DEFAULT_SOURCE, url, query_timeout);
        SourcesConfig {
            sources: BTreeMap::from([(DEFAULT_SOURCE.to_string(), settings)]),
            default_source: DEFAULT_SOURCE.to_string(),
            path: None,
        }
    }

    /// Reads the config file at `path`, and every secret and file it names;
    /// `env` looks environment variables up (the process's, in production).
    pub fn load(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SourcesConfig, Vec<RuleError>> {
        let whole = |message: String| vec![RuleError::whole(path, message)];
        let size = std::fs::metadata(path)
            .map_err(|e| whole(format!("cannot read the config file: {e}")))?
            .len();
        if size > MAX_CONFIG_FILE_BYTES {
            return Err(whole(format!(
                "the file is larger than {MAX_CONFIG_FILE_BYTES} bytes; a config file is a page of YAML"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| whole(format!("cannot read the config file: {e}")))?;
        SourcesConfig::parse(path, &text, env)
    }

    /// [`SourcesConfig::load`] of `text`, as if read from `path`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SourcesConfig, Vec<RuleError>> {
        let raw: RawConfig = serde_saphyr::from_str(text)
            .map_err(|error| vec![yaml_error(path, &error, "config file")])?;
        let mut resolver = Resolver {
            path,
            env,
            errors: Vec::new(),
        };
        let config = resolver.config(raw);
        resolver.errors.sort_by_key(|e| (e.line, e.column));
        match config {
            Some(config) if resolver.errors.is_empty() => Ok(config),
            _ => Err(resolver.errors),
        }
    }

    /// The settings of the source `name`, or why there is none.
    pub fn get(&self, name: &str) -> Result<&SourceSettings, String> {
        self.sources.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            format!(
                "there is no metric source `{name}`;{} declared sources: {}",
                did_you_mean(name, &names),
                names.join(", ")
            )
        })
    }
}

/// The config file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_source: Option<Spanned<String>>,
    sources: Option<Spanned<BTreeMap<String, Spanned<RawSource>>>>,
}

/// One entry of `sources`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: Option<Spanned<String>>,
    bearer_token_file: Option<Spanned<String>>,
    bearer_token_env: Option<Spanned<String>>,
    basic_auth: Option<Spanned<RawBasicAuth>>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    tls: Option<Spanned<RawTls>>,
    query_timeout: Option<Spanned<String>>,
    max_concurrent_queries: Option<Spanned<u64>>,
}

/// `basic_auth: {username, password_file | password_env}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
}

/// `tls: {ca_file, cert_file, key_file, insecure_skip_verify}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<Spanned<String>>,
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    insecure_skip_verify: Option<Spanned<bool>>,
}

/// Collects every problem of the file while resolving it.
struct Resolver<'a> {
    path: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<RuleError>,
}

impl Resolver<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let (line, column) = location_pos(at.referenced);
        self.errors
            .push(RuleError::at(self.path, line, column, message));
    }

    fn config(&mut self, raw: RawConfig) -> Option<SourcesConfig> {
        let Some(sources) = raw.sources else {
            self.errors.push(RuleError::at(
                self.path,
                1,
                1,
                "the config declares no `sources`; add at least one, e.g. `sources: {main: {url: http://127.0.0.1:9090}}`",
            ));
            return None;
        };
        if sources.value.is_empty() {
            self.err(&sources, "`sources` is empty; declare at least one source");
            return None;
        }
        let mut resolved = BTreeMap::new();
        for (name, source) in &sources.value {
            if !is_source_name(name) {
                self.err(
                    source,
                    format!("source name `{name}` must be lowercase letters, digits, `-` and `_`"),
                );
            }
            if let Some(settings) = self.source(name, source) {
                resolved.insert(name.clone(), settings);
            }
        }
        let default_source = match raw.default_source {
            Some(named) if sources.value.contains_key(&named.value) => named.value,
            Some(named) => {
                let names: Vec<&str> = sources.value.keys().map(String::as_str).collect();
                let message = format!(
                    "`default_source` is `{}`, which `sources` does not declare;{} declared: {}",
                    named.value,
                    did_you_mean(&named.value, &names),
                    names.join(", ")
                );
                self.err(&named, message);
                return None;
            }
            None if sources.value.len() == 1 => sources.value.keys().next()?.clone(),
            None if sources.value.contains_key(DEFAULT_SOURCE) => DEFAULT_SOURCE.to_string(),
            None => {
                self.err(
                    &sources,
                    format!(
                        "with several sources, say which rule sets without `source:` use: add `default_source: NAME` or name one `{DEFAULT_SOURCE}`"
                    ),
                );
                return None;
            }
        };
        Some(SourcesConfig {
            sources: resolved,
            default_source,
            path: Some(self.path.to_path_buf()),
        })
    }

    fn source(&mut self, name: &str, raw: &Spanned<RawSource>) -> Option<SourceSettings> {
        let value = &raw.value;
        let Some(url) = &value.url else {
            self.err(
                raw,
                format!(
                    "source `{name}` has no `url`; add one such as `url: http://127.0.0.1:9090`"
                ),
            );
            return None;
        };
        let url_ok = url.value.starts_with("http://") || url.value.starts_with("https://");
        if !url_ok {
            self.err(url, "`url` must start with http:// or https://");
        }
        let auth = self.auth(value);
        let headers = self.headers(value);
        let tls = self.tls(value, &url.value);
        let query_timeout = match &value.query_timeout {
            None => Some(DEFAULT_QUERY_TIMEOUT),
            Some(text) => match humantime::parse_duration(&text.value) {
                Ok(duration) if duration > Duration::ZERO => Some(duration),
                _ => {
                    self.err(
                        text,
                        "`query_timeout` must be a duration above zero, such as `30s`",
                    );
                    None
                }
            },
        };
        let max_concurrent_queries = match &value.max_concurrent_queries {
            None => Some(DEFAULT_MAX_CONCURRENT_QUERIES),
            Some(n) if n.value >= 1 && n.value <= 1024 => Some(n.value as usize),
            Some(n) => {
                self.err(
                    n,
                    "`max_concurrent_queries` must be a whole number from 1 to 1024",
                );
                None
            }
        };
        Some(SourceSettings {
            name: name.to_string(),
            url: url.value.trim_end_matches('/').to_string(),
            auth: auth?,
            headers: headers?,
            tls: tls?,
            query_timeout: query_timeout?,
            max_concurrent_queries: max_concurrent_queries?,
        })
        .filter(|_| url_ok)
    }

    /// `Some(None)` for no credentials, `None` after an error.
    fn auth(&mut self, raw: &RawSource) -> Option<Option<Auth>> {
        let bearer = self.secret(
            raw.bearer_token_file.as_ref(),
            raw.bearer_token_env.as_ref(),
            "bearer token",
        );
        let basic = match &raw.basic_auth {
            None => Some(None),
            Some(basic) => {
                let username = match &basic.value.username {
                    Some(user) if !user.value.is_empty() && !user.value.contains(':') => {
                        Some(user.value.clone())
                    }
                    Some(user) => {
                        self.err(user, "`username` must be non-empty and hold no `:`");
                        None
                    }
                    None => {
                        self.err(basic, "`basic_auth` needs a `username`");
                        None
                    }
                };
                let password = self.secret(
                    basic.value.password_file.as_ref(),
                    basic.value.password_env.as_ref(),
                    "password",
                );
                match (username, password) {
                    (Some(username), Some(Some(password))) => {
                        Some(Some(Auth::Basic { username, password }))
                    }
                    (Some(_), Some(None)) => {
                        self.err(
                            basic,
                            "`basic_auth` needs `password_file` or `password_env`",
                        );
                        None
                    }
                    _ => None,
                }
            }
        };
        match (bearer?, basic?) {
            (Some(_), Some(_)) => {
                let at = raw.basic_auth.as_ref()?;
                self.err(at, "a source takes a bearer token or basic auth, not both");
                None
            }
            (Some(token), None) => Some(Some(Auth::Bearer(token))),
            (None, basic) => Some(basic),
        }
    }

    /// A secret from `file` or `env` (at most one of them); `Some(None)` when
    /// neither is given, `None` after an error. Surrounding white space (a
    /// file's trailing newline) is not part of the secret.
    fn secret(
        &mut self,
        file: Option<&Spanned<String>>,
        env: Option<&Spanned<String>>,
        what: &str,
    ) -> Option<Option<Secret>> {
        let text = match (file, env) {
            (None, None) => return Some(None),
            (Some(_), Some(env)) => {
                self.err(
                    env,
                    format!("give the {what} as a file or an environment variable, not both"),
                );
                return None;
            }
            (Some(file), None) => match std::fs::read_to_string(&file.value) {
                Ok(text) => text,
                Err(e) => {
                    self.err(
                        file,
                        format!("cannot read the {what} file `{}`: {e}", file.value),
                    );
                    return None;
                }
            },
            (None, Some(name)) => match (self.env)(&name.value) {
                Some(text) => text,
                None => {
                    self.err(
                        name,
                        format!(
                            "the environment variable `{}` for the {what} is not set",
                            name.value
                        ),
                    );
                    return None;
                }
            },
        };
        let text = text.trim();
        if text.is_empty() {
            let at = file.or(env)?;
            self.err(at, format!("the {what} is empty"));
            return None;
        }
        Some(Some(Secret::new(text)))
    }

    fn headers(&mut self, raw: &RawSource) -> Option<Vec<(String, String)>> {
        let Some(headers) = &raw.headers else {
            return Some(Vec::new());
        };
        let mut valid = Vec::new();
        let mut good = true;
        for (name, value) in &headers.value {
            let name_ok = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok();
            let value_ok = reqwest::header::HeaderValue::from_str(value).is_ok();
            let reserved = name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("content-type")
                || name.eq_ignore_ascii_case("host");
            if !name_ok || !value_ok {
                self.err(
                    headers,
                    format!("header `{name}` is not a valid HTTP header name and value"),
                );
                good = false;
            } else if reserved {
                self.err(
                    headers,
                    format!("header `{name}` is set by canary-gate itself; use `bearer_token_file` or `basic_auth` for credentials"),
                );
                good = false;
            } else {
                valid.push((name.clone(), value.clone()));
            }
        }
        good.then_some(valid)
    }

    fn tls(&mut self, raw: &RawSource, url: &str) -> Option<TlsSettings> {
        let Some(tls) = &raw.tls else {
            return Some(TlsSettings::default());
        };
        if !url.starts_with("https://") {
            self.err(
                tls,
                "`tls` applies to https:// sources only; this one is http://",
            );
            return None;
        }
        let mut read = |field: &Option<Spanned<String>>, what: &str| -> Option<Option<Vec<u8>>> {
            let Some(path) = field else {
                return Some(None);
            };
            match std::fs::read(&path.value) {
                Ok(bytes) => Some(Some(bytes)),
                Err(e) => {
                    self.err(
                        path,
                        format!("cannot read the {what} `{}`: {e}", path.value),
                    );
                    None
                }
            }
        };
        let ca_pem = read(&tls.value.ca_file, "CA bundle");
        let cert = read(&tls.value.cert_file, "client certificate");
        let key = read(&tls.value.key_file, "client key");
        let client = match (cert?, key?) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let key = String::from_utf8(key).unwrap_or_default();
                Some((cert, Secret::new(key)))
            }
            _ => {
                self.err(
                    tls,
                    "a client certificate needs both `cert_file` and `key_file`",
                );
                return None;
            }
        };
        Some(TlsSettings {
            ca_pem: ca_pem?,
            client,
            insecure_skip_verify: tls
                .value
                .insecure_skip_verify
                .as_ref()
                .is_some_and(|v| v.value),
        })
    }
}

/// True for source names: `[a-z0-9][a-z0-9_-]*`.
fn is_source_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<SourcesConfig, Vec<String>> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SourcesConfig::parse(Path::new("canary-gate.yaml"), text, &|name| {
            env.get(name).cloned()
        })
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect())
    }

    // Pins the shapes a config may take: one source is the default, secrets
    // come from env or files, headers and timeouts are read.
    #[test]
    fn sources_resolve_with_their_secrets() {
        let dir = tempfile::tempdir().expect("temp dir");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret-token-value\n").expect("write token");
        let text = format!(
            "default_source: main\nsources:\n  main:\n    url: https://prom.internal:9090/\n    bearer_token_file: {}\n  tenant-a:\n    url: http://mimir.internal/prometheus\n    headers: {{X-Scope-OrgID: tenant-a}}\n    basic_auth: {{username: gate, password_env: MIMIR_PASSWORD}}\n    query_timeout: 20s\n    max_concurrent_queries: 4\n",
            token.display()
        );
        let config = parse(&text, &[("MIMIR_PASSWORD", "hunter2-hunter2")]).expect("valid");
        assert_eq!(config.default_source, "main");
        let main = config.get("main").expect("main");
        assert_eq!(main.url, "https://prom.internal:9090");
        assert_eq!(main.max_concurrent_queries, DEFAULT_MAX_CONCURRENT_QUERIES);
        assert_eq!(
            main.auth,
            Some(Auth::Bearer(Secret::new("s3cret-token-value")))
        );
        let tenant = config.get("tenant-a").expect("tenant-a");
        assert_eq!(
            tenant.headers,
            [("X-Scope-OrgID".to_string(), "tenant-a".to_string())]
        );
        assert_eq!(tenant.query_timeout, Duration::from_secs(20));
        assert_eq!(tenant.max_concurrent_queries, 4);
        assert!(matches!(&tenant.auth, Some(Auth::Basic { username, .. }) if username == "gate"));
        // No secret survives Debug.
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    // Every problem is named at its line and column, with what to write.
    #[test]
    fn problems_name_their_place() {
        let errors = parse(
            "sources:\n  main:\n    url: prom:9090\n    tls: {ca_file: /x}\n",
            &[],
        )
        .unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("canary-gate.yaml:3:") && e.contains("http://")),
            "{errors:?}"
        );
        let errors = parse("sources:\n  main:\n    urll: http://x\n", &[]).unwrap_err();
        assert!(
            errors[0].contains("unknown field `urll`") && errors[0].contains("did you mean `url`"),
            "{errors:?}"
        );
        let errors = parse(
            "sources:\n  a: {url: http://a}\n  b: {url: http://b}\n",
            &[],
        )
        .unwrap_err();
        assert!(errors[0].contains("default_source"), "{errors:?}");
        let errors = parse(
            "sources:\n  a:\n    url: http://a\n    bearer_token_env: NOPE\n",
            &[],
        )
        .unwrap_err();
        assert!(
            errors[0].starts_with("canary-gate.yaml:4:") && errors[0].contains("`NOPE`"),
            "{errors:?}"
        );
        let errors = parse(
            "sources:\n  a:\n    url: http://a\n    headers: {Authorization: x}\n",
            &[],
        )
        .unwrap_err();
        assert!(errors[0].contains("bearer_token_file"), "{errors:?}");
        let errors = parse(
            "default_source: mian\nsources:\n  main: {url: http://a}\n",
            &[],
        )
        .unwrap_err();
        assert!(errors[0].contains("did you mean `main`"), "{errors:?}");
    }
}
