//! VictoriaLogs detector: HolmesGPT `victorialogs` (`api_url`).
//!
//! Recognised: the `victoria-logs-single` chart (`app.kubernetes.io/name=victoria-logs-single`,
//! component `server` in `app` or `app.kubernetes.io/component`, port `http` 9428) and
//! vm-operator's VLSingle / VLogs (`app.kubernetes.io/name` `vlsingle` / `vlogs`), plus the
//! `victoria-logs-cluster` chart's `vlselect`. Rank [`rank::PRIMARY`], headless twin
//! [`rank::HEADLESS`]. Instance `<namespace>/<release>` (operator: the resource name),
//! fallback the Service name without `-headless`.
//!
//! Health: `GET /health` → 200. Declined: vlinsert, vlstorage, vector / collectors
//! bundled by the charts. Environment variables referenced: none.

use detector_sdk::catalog::VICTORIALOGS;
use detector_sdk::prelude::*;

/// The VictoriaLogs detector.
pub struct VictoriaLogs;

impl Detector for VictoriaLogs {
    fn emits() -> Emits {
        emits(&[VICTORIALOGS.toolset], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("victorialogs", env!("CARGO_PKG_VERSION"), &["victorialogs"])
    }

    fn detect(svc: &Service) -> Detection {
        let component = svc.first_label(&["app", "app.kubernetes.io/component"]);
        match svc.label("app.kubernetes.io/name") {
            Some("victoria-logs-single") => match component {
                Some("server") | None => build(svc),
                Some(c) => declined(format!("victoria-logs-single component {c}")),
            },
            Some("victoria-logs-cluster") => match component {
                Some("vlselect") => build(svc),
                Some(c) => declined(format!("VictoriaLogs cluster {c} (not the query path)")),
                None => Detection::Unrelated,
            },
            Some("vlsingle" | "vlogs" | "vlselect") => build(svc),
            Some(n @ ("vlinsert" | "vlstorage" | "vlagent")) => {
                declined(format!("VictoriaLogs {n} (not the query path)"))
            }
            _ => Detection::Unrelated,
        }
    }
}

fn build(svc: &Service) -> Detection {
    let Some(port) = svc.pick_port(&["http"], &[9428, 9471]) else {
        return declined("VictoriaLogs Service without an http port (9428)");
    };
    matched(
        FragmentBuilder::new(svc, VICTORIALOGS.toolset, "victorialogs")
            .instance(svc.chart_instance())
            .rank(rank::unless_headless(svc, rank::PRIMARY))
            .port_endpoint(port, "")
            .health("/health", &[200])
            .config_url(VICTORIALOGS.key)
            .build(),
    )
}

detector_sdk::export_detector!(VictoriaLogs);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, service};

    #[test]
    fn single_chart() {
        let s = service("logs", "vls-victoria-logs-single-server")
            .with_label("app", "server")
            .with_label("app.kubernetes.io/name", "victoria-logs-single")
            .with_label("app.kubernetes.io/instance", "vls")
            .with_port(Some("http"), 9428);
        let Detection::Matched(f) = VictoriaLogs::detect(&s) else {
            panic!()
        };
        assert_eq!(f[0].toolset, "victorialogs");
        assert_eq!(f[0].instance, "logs/vls");
        assert_eq!(
            f[0].config,
            r#"{"api_url":"http://vls-victoria-logs-single-server.logs.svc.cluster.local:9428"}"#
        );
        let by_name = service("logs", "victorialogs").with_port(Some("http"), 9428);
        assert!(matches!(
            VictoriaLogs::detect(&by_name),
            Detection::Unrelated
        ));
        let ins = service("logs", "x").with_label("app.kubernetes.io/name", "vlinsert");
        assert!(matches!(VictoriaLogs::detect(&ins), Detection::Declined(_)));
    }
}
