//! tempo detector (being written).
use detector_sdk::prelude::*;

/// The tempo detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("tempo", env!("CARGO_PKG_VERSION"), &["tempo"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
