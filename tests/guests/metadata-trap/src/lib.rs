//! Hostile test guest: `metadata()` panics, so the detector cannot be loaded.
use detector_sdk::prelude::*;

pub struct MetadataTrap;

impl Detector for MetadataTrap {
    fn emits() -> Emits {
        emits(&[], false)
    }

    fn metadata() -> DetectorInfo {
        panic!("metadata-trap has no metadata")
    }
    fn detect(_svc: &Service) -> Detection {
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(MetadataTrap);
