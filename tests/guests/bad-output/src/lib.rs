//! Hostile test guest: breaks the output contract depending on the Service name
//! ("bad-json", "not-object", "bad-endpoint", "empty-toolset"); answers a valid fragment
//! for "good".
use detector_sdk::prelude::*;

pub struct BadOutput;

impl Detector for BadOutput {
    fn emits() -> Emits {
        emits(&["grafana/loki"], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("bad-output", env!("CARGO_PKG_VERSION"), &["test"])
    }
    fn detect(svc: &Service) -> Detection {
        let good = FragmentBuilder::new(svc, "grafana/loki", "loki")
            .endpoint(Scheme::Http, 3100, "")
            .config_url("api_url")
            .build();
        let fragment = match svc.name.as_str() {
            "good" => good,
            "bad-json" => Fragment {
                config: "{\"api_url\": ".to_string(),
                ..good
            },
            "not-object" => Fragment {
                config: "[1, 2, 3]".to_string(),
                ..good
            },
            "bad-endpoint" => Fragment {
                endpoint: "ftp://loki.example:3100".to_string(),
                ..good
            },
            "empty-toolset" => Fragment {
                toolset: String::new(),
                ..good
            },
            _ => return Detection::Unrelated,
        };
        Detection::Matched(vec![fragment])
    }
}

detector_sdk::export_detector!(BadOutput);
