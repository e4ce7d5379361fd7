//! victorialogs detector (being written).
use detector_sdk::prelude::*;

/// The victorialogs detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("victorialogs", env!("CARGO_PKG_VERSION"), &["victorialogs"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
