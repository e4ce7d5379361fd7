//! custom detector (being written).
use detector_sdk::prelude::*;

/// The custom detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("custom", env!("CARGO_PKG_VERSION"), &["custom"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
