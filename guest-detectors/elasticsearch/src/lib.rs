//! elasticsearch detector (being written).
use detector_sdk::prelude::*;

/// The elasticsearch detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("elasticsearch", env!("CARGO_PKG_VERSION"), &["elasticsearch"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
