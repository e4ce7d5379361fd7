//! Prometheus detector (placeholder).
use detector_sdk::prelude::*;

pub struct Prometheus;

impl Detector for Prometheus {
    fn metadata() -> DetectorInfo {
        metadata("prometheus", env!("CARGO_PKG_VERSION"), &["prometheus"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(Prometheus);
