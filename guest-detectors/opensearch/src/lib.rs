//! opensearch detector (being written).
use detector_sdk::prelude::*;

/// The opensearch detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("opensearch", env!("CARGO_PKG_VERSION"), &["opensearch"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
