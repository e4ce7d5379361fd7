//! Test guest built against a copy of the contract whose package version is 2.0.0
//! (`wit/detector.wit` here). A host supporting 1.x must refuse it at load time.

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

    struct V2;

    impl Guest for V2 {
        fn metadata() -> DetectorInfo {
            DetectorInfo {
                name: "wit-v2".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                backends: vec!["test".to_string()],
            }
        }
        fn detect(_service: Service) -> Detection {
            Detection::Unrelated
        }
    }

    super::bindings::export!(V2 with_types_in super::bindings);
}
