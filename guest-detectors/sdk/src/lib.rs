//! Guest SDK for dynamic-toolset detectors.
//!
//! A detector is a plain Rust type implementing [`Detector`]; [`export_detector!`] turns
//! it into the exports of the `dynamic-toolset:detector@1.2.0` world `full-detector`
//! (`detector`, `setup`, `identify`, `http-apis`) when compiled for `wasm32-wasip2`. The contract ships
//! inside this crate (`wit/detector.wit`): depending on the crate is all a detector needs.
//! The same code compiles natively, which is how detectors are unit tested (see
//! [`harness`]) and benchmarked against their wasm build.
//!
//! A complete detector (crate type `cdylib` for the component, `rlib` for native tests):
//! it recognises a Prometheus-compatible server by its chart label and its `http` port.
//!
//! ```
//! use detector_sdk::prelude::*;
//!
//! /// Finds `app.kubernetes.io/name=acme-metrics` Services.
//! pub struct AcmeMetrics;
//!
//! impl Detector for AcmeMetrics {
//!     fn metadata() -> DetectorInfo {
//!         // Name (unique among loaded detectors), version, the backend kinds it emits.
//!         metadata("acme-metrics", "0.1.0", &["prometheus"])
//!     }
//!     fn emits() -> Emits {
//!         // The host drops any fragment outside this declaration.
//!         emits(&["prometheus/metrics"], false)
//!     }
//!     fn detect(svc: &Service) -> Detection {
//!         if svc.app_name() != Some("acme-metrics") {
//!             return Detection::Unrelated;
//!         }
//!         let Some(port) = svc.pick_port(&["http"], &[9090]) else {
//!             return declined("acme-metrics Service without an http port");
//!         };
//!         matched(
//!             FragmentBuilder::new(svc, "prometheus/metrics", "prometheus")
//!                 .instance(svc.chart_instance())
//!                 .rank(rank::unless_headless(svc, rank::PRIMARY))
//!                 .port_endpoint(port, "")
//!                 .health("/-/ready", &[200])
//!                 .config_url("prometheus_url")
//!                 .build(),
//!         )
//!     }
//! }
//!
//! // The component's exports (expands to nothing in native builds).
//! detector_sdk::export_detector!(AcmeMetrics);
//!
//! // A test: the harness reads Kubernetes manifests and runs the detector natively.
//! let verdicts = detector_sdk::harness::run_yaml::<AcmeMetrics>("example.yaml", r#"
//! apiVersion: v1
//! kind: Service
//! metadata:
//!   name: acme
//!   namespace: monitoring
//!   labels: {app.kubernetes.io/name: acme-metrics, app.kubernetes.io/instance: acme}
//! spec:
//!   ports: [{name: http, port: 9090, targetPort: 9090}]
//! "#).unwrap();
//! let fragment = verdicts.verdict("monitoring/acme").one();
//! assert_eq!(fragment.endpoint, "http://acme.monitoring.svc.cluster.local:9090");
//! assert_eq!(fragment.instance, "monitoring/acme");
//! assert!(verdicts.problems().is_empty());
//! ```
//!
//! Build the component with `cargo build --release --target wasm32-wasip2` (rustc emits a
//! component for that target directly) and try it with `dynamic-toolset detectors test
//! target/wasm32-wasip2/release/<crate>.wasm -m <manifests>`.
//!
//! `configure` (settings from the operator's declaration), `identify` (candidate
//! endpoints with fingerprints, see [`identify`]) and `http_apis` (HTTP APIs the host
//! makes HolmesGPT `type: http` toolsets of, for a backend outside the host's catalog: see
//! [`http_api`]) have defaults: no settings accepted, nothing to identify, no API.

#[allow(unsafe_code, clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "full-detector",
        pub_export_macro: true,
        export_macro_name: "__export_bindings",
        default_bindings_module: "detector_sdk::bindings",
    });
}

pub mod catalog;
pub mod fragment;
#[cfg(not(target_arch = "wasm32"))]
pub mod harness;
pub mod identify;
/// Re-exported for `FragmentBuilder::config_value`.
pub use serde_json;
pub mod rank;
pub mod service;

pub use bindings::dynamic_toolset::detector::types::{
    CustomToolset, Detection, DetectorInfo, Fragment, HealthProbe, Level, Scheme, Service,
    ServicePort, Tool,
};
pub use bindings::exports::dynamic_toolset::detector::detector::Guest;
pub use bindings::exports::dynamic_toolset::detector::http_apis::{
    Guest as HttpApisGuest, HttpApi,
};
pub use bindings::exports::dynamic_toolset::detector::identify::{
    Candidate, Fingerprint, Guest as IdentifyGuest, Identification,
};
pub use bindings::exports::dynamic_toolset::detector::setup::{Emits, Guest as SetupGuest};
pub use fragment::FragmentBuilder;
pub use service::ServiceExt;

/// Everything a detector usually needs.
pub mod prelude {
    pub use crate::fragment::tool;
    pub use crate::{
        Candidate, CustomToolset, Detection, Detector, DetectorInfo, Emits, Fingerprint, Fragment,
        FragmentBuilder, HealthProbe, HttpApi, Identification, Level, Scheme, Service, ServiceExt,
        ServicePort, Settings, Tool, declined, emits, http_api, log, matched, metadata, rank,
    };
}

/// A detector's settings, from its declaration (a JSON object).
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// `Detection::Declined(reason)`.
pub fn declined(reason: impl Into<String>) -> Detection {
    Detection::Declined(reason.into())
}

/// `Detection::Matched(vec![fragment])`.
pub fn matched(fragment: Fragment) -> Detection {
    Detection::Matched(vec![fragment])
}

/// A detector: a pure function from a Service snapshot to a [`Detection`].
pub trait Detector {
    /// Static description (name, version, backends).
    fn metadata() -> DetectorInfo;
    /// What it may emit: the host drops any fragment outside this declaration.
    fn emits() -> Emits;
    /// Classify one Service.
    fn detect(svc: &Service) -> Detection;
    /// Settings from the operator's declaration (a JSON object). The default takes
    /// none: any key is refused, naming it. Keep what you accept in a static.
    fn configure(settings: &Settings) -> Result<(), String> {
        if settings.is_empty() {
            Ok(())
        } else {
            let keys: Vec<&str> = settings.keys().map(String::as_str).collect();
            Err(format!(
                "this detector takes no settings (got: {})",
                keys.join(", ")
            ))
        }
    }
    /// Candidate endpoints with fingerprints for one of this detector's fragments
    /// (see [`identify`]). The default: nothing to identify.
    fn identify(svc: &Service, fragment: &Fragment) -> Identification {
        let _ = (svc, fragment);
        identify::none()
    }
    /// HTTP APIs this detector describes (contract 1.2): a fragment whose toolset is one
    /// of them becomes a HolmesGPT `type: http` toolset the host builds on the fragment's
    /// endpoint (GET only, these paths, no commands). The default: none.
    fn http_apis() -> Vec<HttpApi> {
        Vec::new()
    }
}

/// Builds an [`HttpApi`]: `toolset`, a one-line `description`, `instructions` for the
/// model (requests relative to the base URL, which the host prepends), and the path
/// patterns HolmesGPT may request under the endpoint's base path (e.g. `"/api/v1/*"`).
pub fn http_api(toolset: &str, description: &str, instructions: &str, paths: &[&str]) -> HttpApi {
    HttpApi {
        toolset: toolset.to_string(),
        description: description.to_string(),
        instructions: instructions.to_string(),
        paths: paths.iter().map(|p| p.to_string()).collect(),
    }
}

/// Builds [`Emits`].
pub fn emits(toolsets: &[&str], custom_toolsets: bool) -> Emits {
    Emits {
        toolsets: toolsets.iter().map(|t| t.to_string()).collect(),
        custom_toolsets,
    }
}

/// Parses the settings text the host passes to `configure` (a JSON object).
#[doc(hidden)]
pub fn parse_settings(text: &str) -> Result<Settings, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("settings must be a JSON object".to_string()),
        Err(e) => Err(format!("settings are not valid JSON: {e}")),
    }
}

/// Builds [`DetectorInfo`].
pub fn metadata(name: &str, version: &str, backends: &[&str]) -> DetectorInfo {
    DetectorInfo {
        name: name.to_string(),
        version: version.to_string(),
        backends: backends.iter().map(|b| b.to_string()).collect(),
    }
}

/// Logs through the host (tagged with the detector's name there). A no-op natively.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::dynamic_toolset::detector::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// Routes panic messages to the host's log: detectors get no stderr (no WASI), so
/// without this a panic would trap with its message lost.
#[doc(hidden)]
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log(Level::Error, &format!("panic: {info}"))
        }));
    });
}

/// Exports a [`Detector`] implementation as the component's `detector` interface.
/// Expands to nothing when not compiling for wasm, so detector crates stay usable as
/// native libraries (tests, benchmarks).
#[macro_export]
macro_rules! export_detector {
    ($detector:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __Component;
            impl $crate::Guest for __Component {
                fn metadata() -> $crate::DetectorInfo {
                    $crate::install_panic_hook();
                    <$detector as $crate::Detector>::metadata()
                }
                fn detect(service: $crate::Service) -> $crate::Detection {
                    $crate::install_panic_hook();
                    <$detector as $crate::Detector>::detect(&service)
                }
            }
            impl $crate::SetupGuest for __Component {
                fn declares() -> $crate::Emits {
                    $crate::install_panic_hook();
                    <$detector as $crate::Detector>::emits()
                }
                fn configure(settings: String) -> Result<(), String> {
                    $crate::install_panic_hook();
                    let settings = $crate::parse_settings(&settings)?;
                    <$detector as $crate::Detector>::configure(&settings)
                }
            }
            impl $crate::IdentifyGuest for __Component {
                fn identify(
                    service: $crate::Service,
                    fragment: $crate::Fragment,
                ) -> $crate::Identification {
                    $crate::install_panic_hook();
                    <$detector as $crate::Detector>::identify(&service, &fragment)
                }
            }
            impl $crate::HttpApisGuest for __Component {
                fn http_apis() -> Vec<$crate::HttpApi> {
                    $crate::install_panic_hook();
                    <$detector as $crate::Detector>::http_apis()
                }
            }
    $crate::bindings::__export_bindings!(__Component with_types_in $crate::bindings);
        };
    };
}
