//! jaeger detector (being written).
use detector_sdk::prelude::*;

/// The jaeger detector.
pub struct D;

impl Detector for D {
    fn metadata() -> DetectorInfo {
        metadata("jaeger", env!("CARGO_PKG_VERSION"), &["jaeger"])
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(D);
