//! Every bundled detector linked natively, sorted by name: the one list of them in code.
//! Shared by the SDK's fixture harness (`tests/fixtures.rs`), its identification tests
//! (`tests/identify.rs`) and the runtime's wasm-vs-native benchmark
//! (`host/runtime/benches/detect.rs`, through `#[path]`); each crate lists the detector
//! crates as dev-dependencies. The bundled set itself is the directories of
//! `guest-detectors/` (see `guest_build::bundled_detectors`); the `bundled!` list must name
//! each.

use detector_sdk::{Detection, Detector as _, Fragment, Identification, Service};

pub type DetectFn = fn(&Service) -> Detection;
pub type IdentifyFn = fn(&Service, &Fragment) -> Identification;

/// Defines [`detectors`] and [`identifiers`] from one list.
macro_rules! bundled {
    ($($name:literal => $detector:ty),* $(,)?) => {
        /// (detector name, its `detect`), sorted by name.
        pub fn detectors() -> Vec<(&'static str, DetectFn)> {
            vec![$(($name, <$detector>::detect)),*]
        }

        /// (detector name, its `identify`), sorted by name.
        #[allow(dead_code)] // the fixture harness and the benchmark use `detect` only
        pub fn identifiers() -> Vec<(&'static str, IdentifyFn)> {
            vec![$(($name, <$detector>::identify)),*]
        }
    };
}

bundled! {
    "alertmanager" => detector_alertmanager::Alertmanager,
    "custom" => detector_custom::Custom,
    "elasticsearch" => detector_elasticsearch::Elasticsearch,
    "grafana" => detector_grafana::Grafana,
    "jaeger" => detector_jaeger::Jaeger,
    "loki" => detector_loki::Loki,
    "opensearch" => detector_opensearch::OpenSearch,
    "prometheus" => detector_prometheus::Prometheus,
    "tempo" => detector_tempo::Tempo,
    "thanos" => detector_thanos::Thanos,
    "victorialogs" => detector_victorialogs::VictoriaLogs,
    "victoriametrics" => detector_victoriametrics::VictoriaMetrics,
}
