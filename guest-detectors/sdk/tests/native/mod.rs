//! Every bundled detector linked natively, sorted by name: the one list of them in code.
//! Shared by the SDK's fixture harness (`tests/fixtures.rs`) and the runtime's wasm-vs-native
//! benchmark (`host/runtime/benches/detect.rs`, through `#[path]`); each crate lists the
//! detector crates as dev-dependencies. The bundled set itself is the directories of
//! `guest-detectors/` (see `guest_build::bundled_detectors`); [`detectors`] must name each.

use detector_sdk::{Detection, Detector as _, Service};

pub type DetectFn = fn(&Service) -> Detection;

/// (detector name, its `detect`), sorted by name.
pub fn detectors() -> Vec<(&'static str, DetectFn)> {
    vec![
        ("alertmanager", detector_alertmanager::Alertmanager::detect),
        ("custom", detector_custom::Custom::detect),
        (
            "elasticsearch",
            detector_elasticsearch::Elasticsearch::detect,
        ),
        ("grafana", detector_grafana::Grafana::detect),
        ("jaeger", detector_jaeger::Jaeger::detect),
        ("loki", detector_loki::Loki::detect),
        ("opensearch", detector_opensearch::OpenSearch::detect),
        ("prometheus", detector_prometheus::Prometheus::detect),
        ("tempo", detector_tempo::Tempo::detect),
        ("thanos", detector_thanos::Thanos::detect),
        ("victorialogs", detector_victorialogs::VictoriaLogs::detect),
        (
            "victoriametrics",
            detector_victoriametrics::VictoriaMetrics::detect,
        ),
    ]
}
