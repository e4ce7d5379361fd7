//! alertmanager detector (being written).
use detector_sdk::prelude::*;

/// The alertmanager detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("alertmanager", env!("CARGO_PKG_VERSION"), &["alertmanager"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
