//! Hostile test guest: never returns from `detect` on the Service named "loop".
use detector_sdk::prelude::*;

pub struct Looper;

impl Detector for Looper {
    fn emits() -> Emits {
        emits(&[], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("looper", env!("CARGO_PKG_VERSION"), &["test"])
    }
    fn detect(svc: &Service) -> Detection {
        if svc.name == "loop" {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(Looper);
