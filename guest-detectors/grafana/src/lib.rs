//! grafana detector (being written).
use detector_sdk::prelude::*;

/// The grafana detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("grafana", env!("CARGO_PKG_VERSION"), &["grafana"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
