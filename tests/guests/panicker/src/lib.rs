//! Hostile test guest: panics on the Service named "panic".
use detector_sdk::prelude::*;

pub struct Panicker;

impl Detector for Panicker {
    fn emits() -> Emits {
        emits(&[], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("panicker", env!("CARGO_PKG_VERSION"), &["test"])
    }
    fn detect(svc: &Service) -> Detection {
        if svc.name == "panic" {
            panic!("boom: panicker refuses {}/{}", svc.namespace, svc.name);
        }
        log(Level::Debug, "panicker: nothing to do");
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(Panicker);
