//! thanos detector (being written).
use detector_sdk::prelude::*;

/// The thanos detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("thanos", env!("CARGO_PKG_VERSION"), &["thanos"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
