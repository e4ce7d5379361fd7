//! Hostile test guest: allocates (and touches) memory without bound on the Service named
//! "hog".
use detector_sdk::prelude::*;

pub struct Hog;

impl Detector for Hog {
    fn emits() -> Emits {
        emits(&[], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("hog", env!("CARGO_PKG_VERSION"), &["test"])
    }
    fn detect(svc: &Service) -> Detection {
        if svc.name == "hog" {
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            loop {
                chunks.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&chunks);
            }
        }
        Detection::Unrelated
    }
}

detector_sdk::export_detector!(Hog);
