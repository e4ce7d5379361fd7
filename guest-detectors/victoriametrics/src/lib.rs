//! victoriametrics detector (being written).
use detector_sdk::prelude::*;

/// The victoriametrics detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("victoriametrics", env!("CARGO_PKG_VERSION"), &["victoriametrics"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
