//! The metric stores the main-path tests run against: the same synthetic
//! data in a real Prometheus or a real VictoriaMetrics, behind one type, so
//! a test body is written once and run against each (see [`on_both_stores!`]).

use super::prometheus::TestPrometheus;
use super::simulate::Simulation;
use super::victoria::TestVictoria;

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Prometheus,
    VictoriaMetrics,
}

/// A running store holding a test's data; stopped when dropped.
pub enum TestStore {
    Prometheus(TestPrometheus),
    VictoriaMetrics(TestVictoria),
}

impl TestStore {
    /// Starts a store of `kind` holding `simulation`'s traffic.
    pub fn start(kind: StoreKind, simulation: &Simulation) -> TestStore {
        match kind {
            StoreKind::Prometheus => TestStore::Prometheus(TestPrometheus::start(simulation)),
            StoreKind::VictoriaMetrics => {
                TestStore::VictoriaMetrics(TestVictoria::start(simulation))
            }
        }
    }

    /// Starts a store of `kind` holding the OpenMetrics `text`.
    pub fn start_with_openmetrics(kind: StoreKind, text: &[u8]) -> TestStore {
        match kind {
            StoreKind::Prometheus => {
                TestStore::Prometheus(TestPrometheus::start_with_openmetrics(text))
            }
            StoreKind::VictoriaMetrics => {
                TestStore::VictoriaMetrics(TestVictoria::start_with_openmetrics(text))
            }
        }
    }

    /// The store's base URL, the one canary-gate is given.
    pub fn url(&self) -> &str {
        match self {
            TestStore::Prometheus(prometheus) => &prometheus.url,
            TestStore::VictoriaMetrics(victoria) => &victoria.url,
        }
    }
}

/// Runs the async test body `fn $body(store: StoreKind)` against each store:
/// a module named after it with one `#[tokio::test]` per store, so
/// `cargo test --test it verdicts::broken_canary_is_rolled_back` runs both
/// and `cargo test --test it victoria_metrics` runs every VictoriaMetrics one.
#[macro_export]
macro_rules! on_both_stores {
    ($($body:ident),+ $(,)?) => {
        $(
            mod $body {
                #[tokio::test]
                async fn prometheus() {
                    super::$body($crate::support::store::StoreKind::Prometheus).await
                }

                #[tokio::test]
                async fn victoria_metrics() {
                    super::$body($crate::support::store::StoreKind::VictoriaMetrics).await
                }
            }
        )+
    };
}
