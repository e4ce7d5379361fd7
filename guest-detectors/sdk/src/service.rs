//! Read-only helpers over a [`Service`] snapshot.

use crate::{Scheme, Service, ServicePort};

/// Lookups every detector needs. Label and annotation lists arrive sorted by key.
pub trait ServiceExt {
    /// A label's value.
    fn label(&self, key: &str) -> Option<&str>;
    /// An annotation's value.
    fn annotation(&self, key: &str) -> Option<&str>;
    /// True when label `key` equals `value`.
    fn has_label(&self, key: &str, value: &str) -> bool {
        self.label(key) == Some(value)
    }
    /// The first label among `keys` that is set.
    fn first_label(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.label(k))
    }
    /// `app.kubernetes.io/name`, else `app`, else `k8s-app`.
    fn app_name(&self) -> Option<&str> {
        self.first_label(&["app.kubernetes.io/name", "app", "k8s-app"])
    }
    /// `app.kubernetes.io/component`, else `component`.
    fn component(&self) -> Option<&str> {
        self.first_label(&["app.kubernetes.io/component", "component"])
    }
    /// `app.kubernetes.io/instance`, else `release`: the Helm release.
    fn release(&self) -> Option<&str> {
        self.first_label(&["app.kubernetes.io/instance", "release"])
    }
    /// True for Kubecost's bundled Prometheus/Grafana, which HolmesGPT itself excludes.
    fn is_kubecost(&self) -> bool {
        self.has_label("release", "kubecost")
            || self.has_label("app.kubernetes.io/instance", "kubecost")
    }
    /// The port to use: the first whose name is in `names` (in the order of `names`),
    /// else the first whose number is in `numbers`, else none.
    fn pick_port(&self, names: &[&str], numbers: &[u16]) -> Option<&ServicePort>;
    /// The only TCP port, when the Service has exactly one.
    fn single_tcp_port(&self) -> Option<&ServicePort>;
    /// `<name>.<namespace>.svc.<cluster-domain>`
    fn fqdn(&self) -> String;
    /// `<scheme>://<fqdn>:<port><path>`; `path` is "" or starts with "/".
    fn url(&self, scheme: Scheme, port: u16, path: &str) -> String {
        let scheme = match scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}:{port}{path}", self.fqdn())
    }
    /// `<namespace>/<key>`: the conventional instance key.
    fn instance_key(&self, key: &str) -> String;
    /// `<namespace>/<release>` (`app.kubernetes.io/instance`, else `release`), else
    /// `<namespace>/<fallback>`. Detectors document their fallback (usually the Service
    /// name with role suffixes such as `-headless` stripped, see [`ServiceExt::name_base`]).
    fn release_instance(&self, fallback: &str) -> String {
        match self.release() {
            Some(r) if !r.is_empty() => self.instance_key(r),
            _ => self.instance_key(fallback),
        }
    }
    /// The conventional instance of a chart Service: `<namespace>/<release>`, fallback
    /// `<namespace>/<Service name without -headless>`.
    fn chart_instance(&self) -> String {
        self.release_instance(self.name_base(&["-headless"]))
    }
    /// The Service name with the first matching suffix of `suffixes` removed
    /// (e.g. `["-headless", "-query-frontend"]`).
    fn name_base(&self, suffixes: &[&str]) -> &str;
    /// True when the Service name, split on `-`, contains `word` as one token.
    /// Names are only a last signal: use labels first.
    fn name_has_word(&self, word: &str) -> bool;
    /// True when the Service asks OpenShift's service CA for a serving certificate
    /// ([`SERVING_CERT_ANNOTATIONS`]): its ports then speak TLS (kube-rbac-proxy, OAuth
    /// proxy), whatever their names say, except ports named `http`/`http-*`.
    fn serving_cert(&self) -> bool {
        SERVING_CERT_ANNOTATIONS
            .iter()
            .any(|a| self.annotation(a).is_some_and(|v| !v.is_empty()))
    }
    /// The scheme of a port of this Service: [`ServiceExt::port_scheme`] with default
    /// https when the Service has a serving certificate ([`ServiceExt::serving_cert`]),
    /// else `default`. When another port says it is the TLS one (named `https*`, as an
    /// OAuth proxy beside the backend's own port), the certificate is that port's and the
    /// others keep `default` (grafana-operator's `grafana` 3000 beside `https` 9091).
    fn scheme_of(&self, port: &ServicePort, default: Scheme) -> Scheme
    where
        Self: Sized,
    {
        let tls_port_named = self.ports().iter().any(|p| {
            p.port != port.port
                && Self::port_scheme(p, Scheme::Http) == Scheme::Https
                && p.app_protocol.is_none()
        });
        let default = if self.serving_cert() && !tls_port_named {
            Scheme::Https
        } else {
            default
        };
        Self::port_scheme(port, default)
    }
    /// `spec.ports`.
    fn ports(&self) -> &[ServicePort];
    /// The scheme a port speaks, from `appProtocol` or its name (`https`, `https-*`,
    /// `*-https`, `tls`); else `default`.
    fn port_scheme(port: &ServicePort, default: Scheme) -> Scheme
    where
        Self: Sized,
    {
        let https = |s: &str| {
            s.eq_ignore_ascii_case("https")
                || s.starts_with("https-")
                || s.ends_with("-https")
                || s.eq_ignore_ascii_case("tls")
        };
        if port.app_protocol.as_deref().is_some_and(https)
            || port.name.as_deref().is_some_and(https)
        {
            return Scheme::Https;
        }
        if port
            .app_protocol
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("http"))
            || port
                .name
                .as_deref()
                .is_some_and(|n| n == "http" || n.starts_with("http-"))
        {
            return Scheme::Http;
        }
        default
    }
}

/// Annotations with which OpenShift's service CA issues a serving certificate for the
/// Service's DNS name (the pods behind it then serve TLS).
pub const SERVING_CERT_ANNOTATIONS: &[&str] = &[
    "service.beta.openshift.io/serving-cert-secret-name",
    "service.alpha.openshift.io/serving-cert-secret-name",
];

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    match pairs.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
        Ok(i) => Some(pairs[i].1.as_str()),
        // Robust against a host that did not sort.
        Err(_) => pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str()),
    }
}

impl ServiceExt for Service {
    fn label(&self, key: &str) -> Option<&str> {
        lookup(&self.labels, key)
    }
    fn ports(&self) -> &[ServicePort] {
        &self.ports
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        lookup(&self.annotations, key)
    }
    fn pick_port(&self, names: &[&str], numbers: &[u16]) -> Option<&ServicePort> {
        names
            .iter()
            .find_map(|n| {
                self.ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(*n) && is_tcp(p))
            })
            .or_else(|| {
                numbers
                    .iter()
                    .find_map(|n| self.ports.iter().find(|p| p.port == *n && is_tcp(p)))
            })
    }
    fn single_tcp_port(&self) -> Option<&ServicePort> {
        let mut tcp = self.ports.iter().filter(|p| is_tcp(p));
        match (tcp.next(), tcp.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    }
    fn fqdn(&self) -> String {
        format!(
            "{}.{}.svc.{}",
            self.name, self.namespace, self.cluster_domain
        )
    }
    fn instance_key(&self, key: &str) -> String {
        format!("{}/{key}", self.namespace)
    }
    fn name_base(&self, suffixes: &[&str]) -> &str {
        suffixes
            .iter()
            .find_map(|s| self.name.strip_suffix(s).filter(|b| !b.is_empty()))
            .unwrap_or(&self.name)
    }
    fn name_has_word(&self, word: &str) -> bool {
        self.name.split('-').any(|t| t == word)
    }
}

fn is_tcp(p: &ServicePort) -> bool {
    p.protocol.eq_ignore_ascii_case("TCP")
}

/// Test and benchmark helpers: build Service snapshots by hand.
pub mod build {
    use crate::{Detection, Fragment, Service, ServicePort};

    /// A ClusterIP Service with no labels or ports, in `cluster.local`.
    pub fn service(namespace: &str, name: &str) -> Service {
        Service {
            name: name.to_string(),
            namespace: namespace.to_string(),
            labels: Vec::new(),
            annotations: Vec::new(),
            service_type: "ClusterIP".to_string(),
            cluster_ip: Some("10.96.0.10".to_string()),
            headless: false,
            ports: Vec::new(),
            cluster_domain: "cluster.local".to_string(),
        }
    }

    /// A Helm chart Service: `app.kubernetes.io/name=<app>`,
    /// `app.kubernetes.io/instance=<instance>` and, when given,
    /// `app.kubernetes.io/component=<component>`.
    pub fn chart_service(
        namespace: &str,
        name: &str,
        app: &str,
        instance: &str,
        component: Option<&str>,
    ) -> Service {
        let s = service(namespace, name)
            .with_label("app.kubernetes.io/name", app)
            .with_label("app.kubernetes.io/instance", instance);
        match component {
            Some(c) => s.with_label("app.kubernetes.io/component", c),
            None => s,
        }
    }

    /// The fragments of a match that has exactly `n` of them; panics otherwise (tests).
    pub fn fragments(d: Detection, n: usize) -> Vec<Fragment> {
        match d {
            Detection::Matched(f) if f.len() == n => f,
            other => panic!("expected {n} fragment(s), got {other:?}"),
        }
    }

    /// The fragment of a match that has exactly one; panics otherwise (tests).
    pub fn one(d: Detection) -> Fragment {
        match d {
            Detection::Matched(mut f) if f.len() == 1 => f.remove(0),
            other => panic!("expected one fragment, got {other:?}"),
        }
    }

    /// Builder-style additions.
    pub trait ServiceBuild: Sized {
        /// Adds a label (keeps the list sorted).
        fn with_label(self, key: &str, value: &str) -> Self;
        /// Adds an annotation (keeps the list sorted).
        fn with_annotation(self, key: &str, value: &str) -> Self;
        /// Adds a TCP port.
        fn with_port(self, name: Option<&str>, port: u16) -> Self;
        /// Adds a port with explicit protocol and target port.
        fn with_port_full(
            self,
            name: Option<&str>,
            port: u16,
            target_port: Option<&str>,
            protocol: &str,
        ) -> Self;
        /// Makes it headless (`clusterIP: None`).
        fn headless(self) -> Self;
    }

    fn insert_sorted(list: &mut Vec<(String, String)>, key: &str, value: &str) {
        list.retain(|(k, _)| k != key);
        list.push((key.to_string(), value.to_string()));
        list.sort();
    }

    impl ServiceBuild for Service {
        fn with_label(mut self, key: &str, value: &str) -> Self {
            insert_sorted(&mut self.labels, key, value);
            self
        }
        fn with_annotation(mut self, key: &str, value: &str) -> Self {
            insert_sorted(&mut self.annotations, key, value);
            self
        }
        fn with_port(mut self, name: Option<&str>, port: u16) -> Self {
            self.ports.push(ServicePort {
                name: name.map(str::to_string),
                port,
                target_port: Some(port.to_string()),
                protocol: "TCP".to_string(),
                app_protocol: None,
            });
            self
        }
        fn with_port_full(
            mut self,
            name: Option<&str>,
            port: u16,
            target_port: Option<&str>,
            protocol: &str,
        ) -> Self {
            self.ports.push(ServicePort {
                name: name.map(str::to_string),
                port,
                target_port: target_port.map(str::to_string),
                protocol: protocol.to_string(),
                app_protocol: None,
            });
            self
        }
        fn headless(mut self) -> Self {
            self.cluster_ip = Some("None".to_string());
            self.headless = true;
            self
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::build::{ServiceBuild, service};
    use super::*;

    #[test]
    fn serving_certificate_belongs_to_the_port_named_https_when_there_is_one() {
        // grafana-operator v5 on OpenShift (tests/fixtures/real/grafana-operator-v5-variants.yaml):
        // the OAuth proxy's `https` 9091 carries the certificate, Grafana's own 3000 stays http.
        let svc = service("grafana", "grafana-instance-service")
            .with_annotation(
                "service.beta.openshift.io/serving-cert-secret-name",
                "grafana-tls",
            )
            .with_port(Some("https"), 9091)
            .with_port(Some("grafana"), 3000);
        assert_eq!(svc.scheme_of(&svc.ports[0], Scheme::Http), Scheme::Https);
        assert_eq!(svc.scheme_of(&svc.ports[1], Scheme::Http), Scheme::Http);
    }

    #[test]
    fn serving_certificate_makes_web_ports_https_but_not_http_ones() {
        let plain = service("m", "am").with_port(Some("web"), 9094);
        assert!(!plain.serving_cert());
        assert_eq!(plain.scheme_of(&plain.ports[0], Scheme::Http), Scheme::Http);
        let tls = plain
            .clone()
            .with_annotation(
                "service.beta.openshift.io/serving-cert-secret-name",
                "am-tls",
            )
            .with_port(Some("http"), 8080);
        assert!(tls.serving_cert());
        assert_eq!(tls.scheme_of(&tls.ports[0], Scheme::Http), Scheme::Https);
        assert_eq!(tls.scheme_of(&tls.ports[1], Scheme::Http), Scheme::Http);
    }
}
