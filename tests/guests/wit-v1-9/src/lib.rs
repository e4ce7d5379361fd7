//! Test guest built against a copy of the contract whose package version is 1.9.0
//! (`wit/detector.wit` here). A 1.1 host must accept it: minor versions are compatible.

#[allow(unsafe_code, clippy::all, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "detector-world",
    });
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    use super::bindings::dynamic_toolset::detector::types::{Detection, DetectorInfo, Service};
    use super::bindings::exports::dynamic_toolset::detector::detector::Guest;

    struct V1Minor;

    impl Guest for V1Minor {
        fn metadata() -> DetectorInfo {
            DetectorInfo {
                name: "wit-v1-9".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                backends: vec!["test".to_string()],
            }
        }
        fn detect(_service: Service) -> Detection {
            Detection::Declined("built against contract 1.9.0".to_string())
        }
    }

    super::bindings::export!(V1Minor with_types_in super::bindings);
}
