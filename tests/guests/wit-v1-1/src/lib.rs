//! Test guest built against contract 1.1.0, `dynamic-toolset:detector@1.1.0` (vendored in
//! `wit/detector.wit` here, as it was before 1.2.0 added `http-apis`), world
//! `full-detector` of that version: `detector`, `setup` and `identify`. A 1.2 host must
//! load it, configure it and call both unchanged.

#[allow(unsafe_code, clippy::all, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "full-detector",
    });
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    use std::sync::atomic::{AtomicU16, Ordering};

    use super::bindings::dynamic_toolset::detector::log::log;
    use super::bindings::dynamic_toolset::detector::types::{
        Detection, DetectorInfo, Fragment, HealthProbe, Level, Scheme, Service,
    };
    use super::bindings::exports::dynamic_toolset::detector::detector::Guest;
    use super::bindings::exports::dynamic_toolset::detector::identify::{
        Candidate, Fingerprint, Guest as IdentifyGuest, Identification,
    };
    use super::bindings::exports::dynamic_toolset::detector::setup::{Emits, Guest as SetupGuest};

    /// The port `configure` set (settings `{"port": N}`), 9090 by default.
    static PORT: AtomicU16 = AtomicU16::new(9090);

    struct V1Second;

    impl Guest for V1Second {
        fn metadata() -> DetectorInfo {
            DetectorInfo {
                name: "wit-v1-1".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                backends: vec!["prometheus".to_string()],
            }
        }
        /// Matches a Service named `second-prometheus` on the configured port.
        fn detect(service: Service) -> Detection {
            if service.name != "second-prometheus" {
                return Detection::Unrelated;
            }
            let port = PORT.load(Ordering::Relaxed);
            if !service.ports.iter().any(|p| p.port == port) {
                return Detection::Declined(format!("no port {port}"));
            }
            log(Level::Info, "wit-v1-1: matched second-prometheus");
            let endpoint = format!(
                "http://{}.{}.svc.{}:{port}",
                service.name, service.namespace, service.cluster_domain
            );
            Detection::Matched(vec![Fragment {
                toolset: "prometheus/metrics".to_string(),
                backend: "prometheus".to_string(),
                instance: format!("{}/{}", service.namespace, service.name),
                rank: 10,
                config: format!("{{\"prometheus_url\":\"{endpoint}\"}}"),
                endpoint,
                health: Some(HealthProbe {
                    port,
                    scheme: Scheme::Http,
                    path: "/-/ready".to_string(),
                    accepted_statuses: vec![],
                }),
                custom: None,
            }])
        }
    }

    impl SetupGuest for V1Second {
        fn declares() -> Emits {
            Emits {
                toolsets: vec!["prometheus/metrics".to_string()],
                custom_toolsets: false,
            }
        }
        fn configure(settings: String) -> Result<(), String> {
            let settings = settings.trim();
            if settings == "{}" {
                return Ok(());
            }
            // `{"port":N}` only (no JSON parser in this guest).
            let port = settings
                .strip_prefix("{\"port\":")
                .and_then(|s| s.strip_suffix('}'))
                .and_then(|s| s.trim().parse::<u16>().ok())
                .ok_or_else(|| format!("settings must be {{\"port\": N}}, not {settings}"))?;
            PORT.store(port, Ordering::Relaxed);
            Ok(())
        }
    }

    impl IdentifyGuest for V1Second {
        fn identify(_service: Service, fragment: Fragment) -> Identification {
            Identification {
                candidates: vec![Candidate {
                    endpoint: fragment.endpoint.clone(),
                    health: fragment.health.clone(),
                    config: fragment.config.clone(),
                    fingerprint: Fingerprint {
                        path: "/api/v1/status/buildinfo".to_string(),
                        statuses: vec![],
                        json_pointers: vec!["/data/version".to_string()],
                        body_contains: vec![],
                    },
                    why: "the metadata's guess".to_string(),
                }],
                required: false,
            }
        }
    }

    super::bindings::export!(V1Second with_types_in super::bindings);
}
