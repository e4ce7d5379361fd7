//! Test guest built against the first contract, `dynamic-toolset:detector@1.0.0`
//! (vendored in `wit/detector.wit` here, as it was before 1.1.0 added `setup` and
//! `identify`). A 1.1 host must load it and run it unchanged.

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
    use super::bindings::dynamic_toolset::detector::log::log;
    use super::bindings::dynamic_toolset::detector::types::{
        Detection, DetectorInfo, Fragment, HealthProbe, Level, Scheme, Service,
    };
    use super::bindings::exports::dynamic_toolset::detector::detector::Guest;

    struct V1First;

    impl Guest for V1First {
        fn metadata() -> DetectorInfo {
            DetectorInfo {
                name: "wit-v1-0".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                backends: vec!["prometheus".to_string()],
            }
        }
        /// Matches a Service named `old-prometheus` on its first port, like a 1.0
        /// detector of Prometheus would.
        fn detect(service: Service) -> Detection {
            let Some(port) = service.ports.first() else {
                return Detection::Unrelated;
            };
            if service.name != "old-prometheus" {
                return Detection::Unrelated;
            }
            // The 1.0 `log` import must reach the host's 1.x `log`, not a trap.
            log(Level::Info, "wit-v1-0: matched old-prometheus");
            let endpoint = format!(
                "http://{}.{}.svc.{}:{}",
                service.name, service.namespace, service.cluster_domain, port.port
            );
            Detection::Matched(vec![Fragment {
                toolset: "prometheus/metrics".to_string(),
                backend: "prometheus".to_string(),
                instance: format!("{}/{}", service.namespace, service.name),
                rank: 10,
                config: format!("{{\"prometheus_url\":\"{endpoint}\"}}"),
                endpoint,
                health: Some(HealthProbe {
                    port: port.port,
                    scheme: Scheme::Http,
                    path: "/-/ready".to_string(),
                    accepted_statuses: vec![],
                }),
                custom: None,
            }])
        }
    }

    super::bindings::export!(V1First with_types_in super::bindings);
}
