//! Hostile test guest: 100 fragments for the Service named "many", one 300 KiB fragment
//! for "large".
use detector_sdk::prelude::*;

pub struct Oversized;

fn fragment(svc: &Service, filler: &str) -> Fragment {
    FragmentBuilder::new(svc, "prometheus/metrics", "prometheus")
        .endpoint(Scheme::Http, 9090, "")
        .config_url("prometheus_url")
        .config_str("filler", filler)
        .build()
}

impl Detector for Oversized {
    fn emits() -> Emits {
        emits(&["prometheus/metrics"], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("oversized", env!("CARGO_PKG_VERSION"), &["test"])
    }
    fn detect(svc: &Service) -> Detection {
        match svc.name.as_str() {
            "many" => Detection::Matched((0..100).map(|_| fragment(svc, "")).collect()),
            "large" => Detection::Matched(vec![fragment(svc, &"x".repeat(300 << 10))]),
            _ => Detection::Unrelated,
        }
    }
}

detector_sdk::export_detector!(Oversized);
