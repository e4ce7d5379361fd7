//! loki detector (being written).
use detector_sdk::prelude::*;

/// The loki detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("loki", env!("CARGO_PKG_VERSION"), &["loki"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
