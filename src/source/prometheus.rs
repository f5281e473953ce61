//! The Prometheus HTTP API as a [`MetricSource`].

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_http_query::{Client, Error as ClientError, response::Data};

use super::{MetricSource, RangeSpec, Series, SourceError};

/// Default client-side deadline for one query.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A Prometheus (or Prometheus-compatible) server reached over HTTP.
#[derive(Clone)]
pub struct PrometheusSource {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("url", &self.url())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PrometheusSource {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:9090`) whose
    /// queries give up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| SourceError::Unreachable(e.to_string()))?;
        let client = Client::from(http, url).map_err(|e| {
            SourceError::Unreachable(format!("`{url}` is not a usable Prometheus URL: {e}"))
        })?;
        Ok(PrometheusSource { client, timeout })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.client.base_url().as_str()
    }

    fn map_error(&self, error: ClientError) -> SourceError {
        match error {
            ClientError::Prometheus(e) => SourceError::Query {
                kind: format!("{:?}", e.error_type()).to_lowercase(),
                message: e.message().to_string(),
            },
            ClientError::Client(e) => match e.inner() {
                Some(inner) if inner.is_timeout() => SourceError::Timeout(self.timeout.as_secs()),
                Some(inner) if inner.is_connect() => SourceError::Unreachable(root_cause(inner)),
                Some(inner) if inner.is_decode() || inner.is_body() => {
                    SourceError::BadResponse(root_cause(inner))
                }
                Some(inner) if inner.status().is_some() => SourceError::Query {
                    kind: "http".to_string(),
                    message: root_cause(inner),
                },
                Some(inner) => SourceError::Unreachable(root_cause(inner)),
                None => SourceError::BadResponse(e.to_string()),
            },
            other => SourceError::BadResponse(other.to_string()),
        }
    }
}

/// The innermost cause of an error, which names what really went wrong.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

fn to_series(data: Data) -> Result<Vec<Series>, SourceError> {
    let labels =
        |m: std::collections::HashMap<String, String>| m.into_iter().collect::<BTreeMap<_, _>>();
    match data {
        Data::Matrix(matrix) => Ok(matrix
            .into_iter()
            .map(|range| {
                let (metric, samples) = range.into_inner();
                Series {
                    labels: labels(metric),
                    points: samples
                        .iter()
                        .map(|s| (s.timestamp().round() as i64, s.value()))
                        .collect(),
                }
            })
            .collect()),
        Data::Vector(vector) => Ok(vector
            .into_iter()
            .map(|instant| {
                let (metric, sample) = instant.into_inner();
                Series {
                    labels: labels(metric),
                    points: vec![(sample.timestamp().round() as i64, sample.value())],
                }
            })
            .collect()),
        Data::Scalar(sample) => Ok(vec![Series {
            labels: BTreeMap::new(),
            points: vec![(sample.timestamp().round() as i64, sample.value())],
        }]),
    }
}

impl MetricSource for PrometheusSource {
    async fn range_query(
        &self,
        promql: &str,
        range: RangeSpec,
    ) -> Result<Vec<Series>, SourceError> {
        let result = self
            .client
            .query_range(
                promql,
                range.start_secs,
                range.end_secs,
                range.step_secs as f64,
            )
            .timeout(self.timeout.as_millis() as i64)
            .get()
            .await
            .map_err(|e| self.map_error(e))?;
        to_series(result.into_inner().0)
    }

    async fn instant_query(&self, promql: &str, at_secs: i64) -> Result<Vec<Series>, SourceError> {
        let result = self
            .client
            .query(promql)
            .at(at_secs)
            .timeout(self.timeout.as_millis() as i64)
            .get()
            .await
            .map_err(|e| self.map_error(e))?;
        to_series(result.into_inner().0)
    }

    async fn ready(&self) -> Result<(), SourceError> {
        match self.client.is_server_ready().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SourceError::Unreachable(
                "Prometheus says it is not ready".into(),
            )),
            Err(e) => Err(self.map_error(e)),
        }
    }
}
