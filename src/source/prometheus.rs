//! The Prometheus HTTP API as a [`MetricSource`].
//!
//! The prometheus-http-query crate builds and sends each query; its raw answer
//! is read here, against the API's standard envelope, because the crate's own
//! parser drops the `warnings` that say an answer may be partial, and because
//! a proxy's HTML error page or a 5xx deserves a reason that names it. The
//! answer is decoded once, straight into [`Series`]: no `serde_json::Value`
//! in between, and no string allocated per sample. A successful matrix
//! answer, nearly all of a long window's bytes, is walked by hand
//! (`matrix_scan.rs`); every other answer, and any the walk does not know,
//! is read by serde here.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_http_query::{Client, Error as ClientError};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use tokio::sync::Semaphore;

use super::config::{Auth, DEFAULT_SOURCE, SourceSettings};
use super::contract::{MetricSource, RangeSpec, Series, SourceError};
use super::matrix_scan::scan_matrix;
use super::tls;

/// Default client-side deadline for one query.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Most evaluation points asked of one range query. Prometheus refuses more
/// than 11,000 points per series ("exceeded maximum resolution of 11,000
/// points per timeseries", `web/api/v1/api.go`), which a 15 s step passes
/// after 45 hours, so a longer window is asked in consecutive parts.
pub const MAX_POINTS_PER_QUERY: i64 = 10_000;

/// Most characters of an unreadable answer quoted in an error.
const QUOTED_BODY_CHARS: usize = 200;

/// A Prometheus (or Prometheus-compatible) server reached over HTTP.
#[derive(Clone)]
pub struct PrometheusSource {
    client: Client,
    timeout: Duration,
    /// At most this many queries in flight (`max_concurrent_queries`).
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("url", &self.url())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The envelope every Prometheus API answer comes in, its `data` decoded as
/// `D`: the series themselves, or nothing ([`de::IgnoredAny`]) to read the
/// rest of an answer whose `data` is unreadable.
#[derive(Deserialize)]
struct Envelope<D> {
    status: String,
    data: Option<D>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

impl<D> Envelope<D> {
    /// The envelope without its data, and the data.
    fn split(self) -> (Envelope<()>, Option<D>) {
        let Envelope {
            status,
            data,
            error_type,
            error,
            warnings,
        } = self;
        let envelope = Envelope {
            status,
            data: None,
            error_type,
            error,
            warnings,
        };
        (envelope, data)
    }
}

/// A query's result, by the API's `resultType` (which Prometheus writes
/// before `result`, so nothing is buffered to find it).
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Matrix(Vec<RangeSeries>),
    Vector(Vec<InstantSeries>),
    Scalar(Sample),
}

/// One series of a range query's answer.
#[derive(Deserialize)]
struct RangeSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Sample>,
}

/// One series of an instant query's answer.
#[derive(Deserialize)]
struct InstantSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Sample,
}

/// One `[unix seconds, "value"]` pair: the time rounded to whole seconds, the
/// value read from its string (`"NaN"`, `"+Inf"` and `"-Inf"` included).
struct Sample(i64, f64);

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sample, D::Error> {
        struct Pair;
        impl<'de> Visitor<'de> for Pair {
            type Value = Sample;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [unix seconds, \"value\"] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sample, A::Error> {
                let time: f64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let value = seq
                    .next_element::<SampleValue>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Sample(time.round() as i64, value.0))
            }
        }
        deserializer.deserialize_seq(Pair)
    }
}

/// A sample's value: a float in a JSON string, read without copying it.
struct SampleValue(f64);

impl<'de> Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SampleValue, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = SampleValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a float value inside a quoted JSON string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SampleValue, E> {
                text.parse::<f64>()
                    .map(SampleValue)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl PrometheusSource {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:9090`) whose
    /// queries give up after `timeout`, whatever Prometheus itself does. An
    /// https server's certificate must chain to one of the system's CAs.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, SourceError> {
        PrometheusSource::from_settings(&SourceSettings::plain(DEFAULT_SOURCE, url, timeout))
    }

    /// [`PrometheusSource::new`], also trusting the CA certificates in the PEM
    /// text `ca_pem` (for a store whose certificate a private CA signed).
    pub fn with_root_certificates(
        url: &str,
        timeout: Duration,
        ca_pem: &[u8],
    ) -> Result<Self, SourceError> {
        let mut settings = SourceSettings::plain(DEFAULT_SOURCE, url, timeout);
        settings.tls.ca_pem = Some(ca_pem.to_vec());
        PrometheusSource::from_settings(&settings)
    }

    /// A client for the source `settings` describe: its credentials and
    /// headers on every request, its TLS, its deadline and its concurrency.
    pub fn from_settings(settings: &SourceSettings) -> Result<Self, SourceError> {
        let unusable =
            |what: String| SourceError::Unreachable(format!("source `{}`: {what}", settings.name));
        let tls = tls::client_config(&settings.tls).map_err(unusable)?;
        let http = reqwest::Client::builder()
            .connect_timeout(settings.query_timeout.min(Duration::from_secs(5)))
            .tls_backend_preconfigured(tls)
            .default_headers(request_headers(settings).map_err(unusable)?)
            .build()
            .map_err(|e| unusable(e.to_string()))?;
        let url = &settings.url;
        let client = Client::from(http, url).map_err(|e| {
            SourceError::Unreachable(format!("`{url}` is not a usable Prometheus URL: {e}"))
        })?;
        Ok(PrometheusSource {
            client,
            timeout: settings.query_timeout,
            slots: Arc::new(Semaphore::new(settings.max_concurrent_queries)),
        })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.client.base_url().as_str()
    }

    /// Sends one query and reads its answer, all within the client's deadline.
    async fn answer(
        &self,
        send: impl Future<Output = Result<reqwest::Response, ClientError>>,
    ) -> Result<Vec<Series>, SourceError> {
        let attempt = async {
            // The permit lives until the answer is read.
            let _slot = self.slots.clone().acquire_owned().await.ok();
            let response = send.await.map_err(|e| self.map_error(e))?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| {
                if e.is_timeout() {
                    SourceError::Timeout(self.timeout)
                } else {
                    SourceError::BadResponse(crate::text::error_chain(&e))
                }
            })?;
            read_answer(status, &body)
        };
        // The client's own deadline: Prometheus's `timeout` parameter bounds its
        // evaluation only, and a hung server or proxy would ignore it.
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or(Err(SourceError::Timeout(self.timeout)))
    }

    fn map_error(&self, error: ClientError) -> SourceError {
        match error {
            ClientError::Prometheus(e) => SourceError::Query {
                kind: format!("{:?}", e.error_type()).to_lowercase(),
                message: e.message().to_string(),
            },
            ClientError::Client(e) => match e.inner() {
                Some(inner) if inner.is_timeout() => SourceError::Timeout(self.timeout),
                Some(inner) if inner.is_connect() => {
                    SourceError::Unreachable(crate::text::error_chain(inner))
                }
                Some(inner) if inner.is_decode() || inner.is_body() => {
                    SourceError::BadResponse(crate::text::error_chain(inner))
                }
                Some(inner) => SourceError::Unreachable(crate::text::error_chain(inner)),
                None => SourceError::BadResponse(e.to_string()),
            },
            other => SourceError::BadResponse(other.to_string()),
        }
    }
}

/// The headers every request to the source carries: its own, and its
/// credentials, marked sensitive so no debug output shows them.
fn request_headers(settings: &SourceSettings) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &settings.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header `{name}`: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("header `{name}`: {e}"))?;
        headers.insert(name, value);
    }
    let credentials = match &settings.auth {
        None => return Ok(headers),
        Some(Auth::Bearer(token)) => format!("Bearer {}", token.reveal()),
        Some(Auth::Basic { username, password }) => {
            use base64::Engine as _;
            let pair = format!("{username}:{}", password.reveal());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
    };
    let mut value = HeaderValue::from_str(&credentials)
        .map_err(|_| "the credentials hold characters a header cannot carry".to_string())?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}

/// The start of an unreadable body, for an error message.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
    if text.chars().count() > QUOTED_BODY_CHARS {
        quoted.push('…');
    }
    quoted
}

/// Reads an answer with HTTP `status` and `body` against the API envelope.
///
/// Public (hidden) so `benches/decode_cost.rs` can time it beside
/// [`read_answer_by_serde`]; the pipe reaches it only through
/// [`PrometheusSource`].
#[doc(hidden)]
pub fn read_answer(status: u16, body: &[u8]) -> Result<Vec<Series>, SourceError> {
    // A successful matrix answer of the plain shape is walked by hand;
    // anything else, and anything the walk does not know, is read by serde
    // alone, so it is read, or refused with its reason, as before.
    if (200..300).contains(&status)
        && let Some(series) = scan_matrix(body)
    {
        return Ok(series);
    }
    read_answer_by_serde(status, body)
}

/// [`read_answer`] with every sample read by serde: what reads, or refuses
/// with its reason, every answer `matrix_scan::scan_matrix` does not read.
#[doc(hidden)]
pub fn read_answer_by_serde(status: u16, body: &[u8]) -> Result<Vec<Series>, SourceError> {
    let success = (200..300).contains(&status);
    // One pass decodes the envelope and its series; only when that fails is
    // the body read again, without its `data`, to say why.
    let (envelope, data) = match serde_json::from_slice::<Envelope<Data>>(body) {
        Ok(envelope) => {
            let (envelope, data) = envelope.split();
            (envelope, Ok(data))
        }
        Err(data_error) => match serde_json::from_slice::<Envelope<de::IgnoredAny>>(body) {
            Ok(bare) => (
                bare.split().0,
                Err(format!("unreadable `data`: {data_error}")),
            ),
            Err(_) if !success => {
                return Err(SourceError::Http {
                    status,
                    body: quote(body),
                });
            }
            Err(e) => {
                return Err(SourceError::BadResponse(format!(
                    "not the Prometheus API's JSON ({e}): {}",
                    quote(body)
                )));
            }
        },
    };
    match envelope.status.as_str() {
        "error" => Err(SourceError::Query {
            kind: envelope.error_type.unwrap_or_else(|| "unknown".into()),
            message: envelope.error.unwrap_or_default(),
        }),
        "success" if !success => Err(SourceError::Http {
            status,
            body: quote(body),
        }),
        "success" if !envelope.warnings.is_empty() => Err(SourceError::Partial(envelope.warnings)),
        "success" => match data.map_err(SourceError::BadResponse)? {
            Some(data) => Ok(to_series(data)),
            None => Err(SourceError::BadResponse("a success with no `data`".into())),
        },
        other => Err(SourceError::BadResponse(format!(
            "unknown status `{other}`: {}",
            quote(body)
        ))),
    }
}

fn to_series(data: Data) -> Vec<Series> {
    match data {
        Data::Matrix(matrix) => matrix
            .into_iter()
            .map(|range| Series {
                labels: range.metric,
                points: range.values.into_iter().map(|s| (s.0, s.1)).collect(),
            })
            .collect(),
        Data::Vector(vector) => vector
            .into_iter()
            .map(|instant| Series {
                labels: instant.metric,
                points: vec![(instant.value.0, instant.value.1)],
            })
            .collect(),
        Data::Scalar(sample) => vec![Series {
            labels: BTreeMap::new(),
            points: vec![(sample.0, sample.1)],
        }],
    }
}

/// `range` as consecutive ranges of at most `max_points` evaluation points
/// each, which together hold every point of `range` once.
fn split_range(range: RangeSpec, max_points: i64) -> Vec<RangeSpec> {
    let step = range.step_secs.max(1) as i64;
    let part_span = (max_points.max(1) - 1) * step;
    let mut parts = Vec::new();
    let mut start = range.start_secs;
    loop {
        let end = (start + part_span).min(range.end_secs);
        parts.push(RangeSpec {
            start_secs: start,
            end_secs: end,
            step_secs: range.step_secs,
        });
        start = end + step;
        if start > range.end_secs {
            return parts;
        }
    }
}

/// The answers to consecutive parts of one range joined: one series per
/// label set, its points in time order.
fn join_parts(parts: Vec<Vec<Series>>) -> Vec<Series> {
    let mut joined: BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> = BTreeMap::new();
    for series in parts.into_iter().flatten() {
        joined
            .entry(series.labels)
            .or_default()
            .extend(series.points);
    }
    joined
        .into_iter()
        .map(|(labels, points)| Series { labels, points })
        .collect()
}

impl PrometheusSource {
    /// One range query, of at most [`MAX_POINTS_PER_QUERY`] points.
    async fn range_part(&self, promql: &str, range: RangeSpec) -> Result<Vec<Series>, SourceError> {
        let send = self
            .client
            .query_range(
                promql,
                range.start_secs,
                range.end_secs,
                range.step_secs as f64,
            )
            .timeout(self.timeout.as_millis() as i64)
            .post_raw();
        self.answer(send).await
    }
}

impl MetricSource for PrometheusSource {
    async fn range_query(
        &self,
        promql: &str,
        range: RangeSpec,
    ) -> Result<Vec<Series>, SourceError> {
        let parts = split_range(range, MAX_POINTS_PER_QUERY);
        if let [whole] = parts.as_slice() {
            return self.range_part(promql, *whole).await;
        }
        // One part after another: a long window should not load Prometheus
        // with many heavy queries at once.
        let mut answers = Vec::with_capacity(parts.len());
        for part in parts {
            answers.push(self.range_part(promql, part).await?);
        }
        Ok(join_parts(answers))
    }

    async fn instant_query(&self, promql: &str, at_secs: i64) -> Result<Vec<Series>, SourceError> {
        let send = self
            .client
            .query(promql)
            .at(at_secs)
            .timeout(self.timeout.as_millis() as i64)
            .post_raw();
        self.answer(send).await
    }

    async fn ready(&self) -> Result<(), SourceError> {
        let check = async {
            match self.client.is_server_ready().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(SourceError::Unreachable(
                    "Prometheus says it is not ready".into(),
                )),
                Err(e) => Err(self.map_error(e)),
            }
        };
        tokio::time::timeout(self.timeout, check)
            .await
            .unwrap_or(Err(SourceError::Timeout(self.timeout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An answer's series with every value as its bits, so NaN equals NaN
    /// and -0.0 differs from 0.0.
    type Bits = Vec<(BTreeMap<String, String>, Vec<(i64, u64)>)>;

    fn bits(answer: Result<Vec<Series>, SourceError>) -> Result<Bits, SourceError> {
        answer.map(|series| {
            series
                .into_iter()
                .map(|s| {
                    let points = s.points.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                    (s.labels, points)
                })
                .collect()
        })
    }

    /// JSON whitespace, mostly none, as a store may write it.
    fn whitespace() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "", "", " ", "\n  ", "\t", "\r\n"])
    }

    /// A sample's time as a JSON number: whole seconds mostly, as Prometheus
    /// writes them, and the decimals, exponents and long integers other
    /// stores may write.
    fn time_token() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0_i64..4_000_000_000).prop_map(|t| t.to_string()),
            2 => (0_i64..4_000_000_000, 0_u32..1000).prop_map(|(t, ms)| format!("{t}.{ms:03}")),
            1 => (0_i64..4_000_000_000, 0_u32..10).prop_map(|(t, d)| format!("{t}.{d}")),
            1 => (-4_000_000_000_i64..0).prop_map(|t| t.to_string()),
            1 => any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            1 => (1.0e8_f64..1.0e10).prop_map(|f| format!("{f:E}")),
            1 => any::<u64>().prop_map(|t| t.to_string()),
            1 => "-?[1-9][0-9]{17,24}",
            1 => prop::sample::select(vec!["0", "-0", "0.5", "1.5", "2.5", "-0.5", "1e0", "1E+2", "0e-5"])
                .prop_map(str::to_string),
        ]
    }

    /// A sample's value as the text between its quotes: counters' whole
    /// numbers mostly, and every float form a store writes.
    fn value_text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => (0_u64..100_000_000).prop_map(|n| n.to_string()),
            2 => any::<f64>().prop_map(|f| f.to_string()),
            1 => any::<f64>().prop_map(|f| format!("{f:e}")),
            1 => "[0-9]{1,22}",
            1 => prop::sample::select(vec![
                "NaN", "+Inf", "-Inf", "1e-05", "-0", "0", "-0.0", "1.5", "-1.5", "0.1",
                "4.9e-324", "1.7976931348623157e308", "9007199254740993", "inf", "-infinity",
            ])
            .prop_map(str::to_string),
        ]
    }

    /// One `[time, "value"]` pair, whitespace around each of its tokens.
    fn pair() -> impl Strategy<Value = String> {
        (
            time_token(),
            value_text(),
            prop::array::uniform6(whitespace()),
        )
            .prop_map(|(time, value, [a, b, c, d, e, f])| {
                format!("{a}[{b}{time}{c},{d}\"{value}\"{e}]{f}")
            })
    }

    /// Members other stores (VictoriaMetrics, Thanos) add, which both
    /// readers skip.
    fn extra_member() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            r#""isPartial":false"#,
            r#""stats":{"seriesFetched":"3","executionTimeMsec":1}"#,
            r#""infos":["a \"note\""]"#,
            r#""extra":[1,{"a":null},[true]]"#,
        ])
    }

    /// `members` as a JSON object, starting from the `first`-th (modulo
    /// their number), `ws` around each.
    fn object(mut members: Vec<String>, first: usize, ws: &str) -> String {
        if !members.is_empty() {
            let first = first % members.len();
            members.rotate_left(first);
        }
        format!("{{{ws}{}{ws}}}", members.join(&format!(",{ws}")))
    }

    /// One series of a matrix answer: labels (any text, escaped as JSON
    /// escapes it), pairs, members in any order, `metric` and `values`
    /// sometimes absent.
    fn range_series() -> impl Strategy<Value = String> {
        (
            prop::option::weighted(
                0.9,
                prop::collection::btree_map("[a-z_]{1,8}", ".{0,12}", 0..5),
            ),
            prop::option::weighted(0.9, prop::collection::vec(pair(), 0..30)),
            prop::option::weighted(0.2, extra_member()),
            any::<usize>(),
            whitespace(),
        )
            .prop_map(|(labels, pairs, extra, first, ws)| {
                let metric = labels.map(|labels| {
                    let labels = serde_json::to_string(&labels).expect("strings serialize");
                    format!("\"metric\":{ws}{labels}")
                });
                let values = pairs.map(|pairs| format!("\"values\":{ws}[{ws}{}]", pairs.join(",")));
                let members = metric
                    .into_iter()
                    .chain(values)
                    .chain(extra.map(str::to_string));
                object(members.collect(), first, ws)
            })
    }

    /// A successful matrix answer as Prometheus shapes it, sometimes with
    /// what other stores add.
    fn matrix_body() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(range_series(), 0..6),
            prop::collection::vec(extra_member(), 0..3),
            any::<usize>(),
            whitespace(),
        )
            .prop_map(|(series, extras, first, ws)| {
                let data = format!(
                    "\"data\":{ws}{{\"resultType\":\"matrix\",{ws}\"result\":{ws}[{}]}}",
                    series.join(&format!(",{ws}"))
                );
                let mut members = vec![format!("\"status\":{ws}\"success\""), data];
                members.extend(extras.into_iter().map(str::to_string));
                object(members, first, ws)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        // Every plainly shaped matrix answer is read by the scanner, and its
        // series are bit for bit those the serde path reads.
        #[test]
        fn scanned_series_are_serdes_bit_for_bit(body in matrix_body()) {
            let scanned = scan_matrix(body.as_bytes());
            prop_assert!(scanned.is_some(), "the scanner gave up on {body}");
            prop_assert_eq!(bits(Ok(scanned.unwrap_or_default())), bits(read_answer_by_serde(200, body.as_bytes())));
        }

        // A body with one byte inserted or removed anywhere, under any
        // status, reads as the serde path reads it: the same series, or the
        // same error with the same message.
        #[test]
        fn damaged_answers_read_as_serde_reads_them(
            body in matrix_body(),
            at in any::<prop::sample::Index>(),
            damage in prop::option::of(prop::sample::select(vec![
                b'\\', b'"', b'[', b']', b',', b'{', b'}', b'x', b'1', b'-', b'.', b'e', b' ', 0x01,
            ])),
            status in prop::sample::select(vec![200_u16, 206, 400, 422, 503]),
        ) {
            let mut body = body.into_bytes();
            let at = at.index(body.len());
            match damage {
                Some(byte) => body.insert(at, byte),
                None => drop(body.remove(at)),
            }
            prop_assert_eq!(bits(read_answer(status, &body)), bits(read_answer_by_serde(status, &body)));
        }
    }

    // Malformed values are refused with the serde path's own reasons, which
    // name what is wrong, and unusual but valid ones are read as it reads them.
    #[test]
    fn values_the_scanner_leaves_read_as_before() {
        let body = |values: &str| {
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"le":"+Inf"}},"values":[[1,"1"],{values}]}}]}}}}"#
            )
        };
        for (values, refused_for) in [
            (
                r#"[2,"x"]"#,
                Some("a float value inside a quoted JSON string"),
            ),
            (r#"[2,"1",3]"#, Some("a [unix seconds, \"value\"] pair")),
            (r#"[2]"#, Some("a [unix seconds, \"value\"] pair")),
            (r#"[2,2]"#, Some("invalid type: integer `2`")),
            (r#"["2","2"]"#, Some("invalid type: string \"2\"")),
            (r#"[1e999,"2"]"#, Some("number out of range")),
            (r#"null"#, Some("invalid type: null")),
            (r#"[2,"\u0032"]"#, None),
            (r#"[2,"2"] "#, None),
        ] {
            let body = body(values);
            let read = read_answer(200, body.as_bytes());
            assert_eq!(
                bits(read.clone()),
                bits(read_answer_by_serde(200, body.as_bytes())),
                "{values}"
            );
            match (refused_for, read) {
                (Some(reason), Err(SourceError::BadResponse(message))) => {
                    assert!(
                        message.starts_with("unreadable `data`"),
                        "{values}: {message}"
                    );
                    assert!(message.contains(reason), "{values}: {message}");
                }
                (None, Ok(series)) => {
                    assert_eq!(series[0].points, vec![(1, 1.0), (2, 2.0)], "{values}")
                }
                (expected, read) => panic!("{values}: expected refusal {expected:?}, got {read:?}"),
            }
        }
    }

    // A long range is asked in parts that hold every evaluation point once, none
    // with more points than Prometheus allows; a short one is asked whole.
    #[test]
    fn long_ranges_are_split_into_parts_that_cover_every_point_once() {
        let points = |r: &RangeSpec| (r.start_secs..=r.end_secs).step_by(r.step_secs as usize);
        for (steps, max_points) in [
            (0, 10),
            (9, 10),
            (10, 10),
            (11, 10),
            (20, 10),
            (40_320, 10_000),
        ] {
            let range = RangeSpec {
                start_secs: 1_000,
                end_secs: 1_000 + steps * 15,
                step_secs: 15,
            };
            let parts = split_range(range, max_points);
            let asked: Vec<i64> = parts.iter().flat_map(points).collect();
            assert_eq!(asked, points(&range).collect::<Vec<_>>(), "{steps} steps");
            assert!(parts.iter().all(|p| points(p).count() as i64 <= max_points));
            assert_eq!(
                parts.len() as u64,
                (steps as u64 + 1).div_ceil(max_points as u64)
            );
        }
    }

    // Parts' answers join into one series per label set, points in order.
    #[test]
    fn parts_join_by_label_set() {
        let series = |pod: &str, points: &[(i64, f64)]| Series {
            labels: BTreeMap::from([("pod".to_string(), pod.to_string())]),
            points: points.to_vec(),
        };
        let joined = join_parts(vec![
            vec![
                series("a", &[(0, 1.0), (15, 2.0)]),
                series("b", &[(15, 7.0)]),
            ],
            vec![series("a", &[(30, 3.0)]), series("c", &[(30, 9.0)])],
        ]);
        assert_eq!(
            joined,
            vec![
                series("a", &[(0, 1.0), (15, 2.0), (30, 3.0)]),
                series("b", &[(15, 7.0)]),
                series("c", &[(30, 9.0)]),
            ]
        );
    }

    // Warnings mean the data may be partial: an error, never numbers to judge.
    #[test]
    fn warnings_make_the_answer_partial() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["store b is down"]}"#;
        assert_eq!(
            read_answer(200, body),
            Err(SourceError::Partial(vec!["store b is down".into()]))
        );
    }

    // A proxy's HTML page on a 502 is an HTTP error that names the status, and is transient.
    #[test]
    fn a_gateway_page_is_a_transient_http_error() {
        let error = read_answer(502, b"<html>bad gateway</html>").expect_err("502");
        assert!(error.is_transient());
        assert!(error.to_string().contains("HTTP 502"), "{error}");
    }

    // Prometheus's own bad_data error is kept with its type and is never retried.
    #[test]
    fn bad_data_is_a_permanent_query_error() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let error = read_answer(400, body).expect_err("bad_data");
        assert!(!error.is_transient());
        assert!(error.to_string().contains("bad_data"), "{error}");
    }

    // NaN and infinite samples are read as such, for the measurement to refuse.
    #[test]
    fn special_values_are_read() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"NaN"],[2,"+Inf"],[3,"-Inf"]]}]}}"#;
        let series = read_answer(200, body).expect("readable");
        let values: Vec<f64> = series[0].points.iter().map(|p| p.1).collect();
        assert!(values[0].is_nan());
        assert_eq!(&values[1..], &[f64::INFINITY, f64::NEG_INFINITY]);
    }
}
