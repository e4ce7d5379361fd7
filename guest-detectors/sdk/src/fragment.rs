//! Building [`Fragment`]s.

use crate::{CustomToolset, Fragment, HealthProbe, Scheme, Service, ServiceExt, ServicePort, Tool};

/// Builds one [`Fragment`] for a Service.
///
/// ```ignore
/// FragmentBuilder::new(svc, "prometheus/metrics", "prometheus")
///     .instance(svc.instance_key("kube-prometheus-stack"))
///     .rank(100)
///     .endpoint(Scheme::Http, 9090, "")
///     .health("/-/ready", &[200])
///     .config_str("prometheus_url", &url)
///     .build()
/// ```
pub struct FragmentBuilder<'a> {
    svc: &'a Service,
    fragment: Fragment,
    config: serde_json::Map<String, serde_json::Value>,
    scheme: Scheme,
    port: u16,
}

impl<'a> FragmentBuilder<'a> {
    /// Starts a fragment for `toolset` (HolmesGPT name) and `backend` (kind).
    /// The instance defaults to `<namespace>/<service name>`, the rank to 0.
    pub fn new(svc: &'a Service, toolset: &str, backend: &str) -> Self {
        Self {
            svc,
            fragment: Fragment {
                toolset: toolset.to_string(),
                backend: backend.to_string(),
                instance: svc.instance_key(&svc.name),
                rank: 0,
                endpoint: String::new(),
                health: None,
                config: String::new(),
                custom: None,
            },
            config: serde_json::Map::new(),
            scheme: Scheme::Http,
            port: 0,
        }
    }

    /// Sets the instance key.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.fragment.instance = instance.into();
        self
    }

    /// Sets the rank (higher wins within an instance).
    pub fn rank(mut self, rank: u32) -> Self {
        self.fragment.rank = rank;
        self
    }

    /// Sets the endpoint URL from scheme, Service port and base path.
    pub fn endpoint(mut self, scheme: Scheme, port: u16, path: &str) -> Self {
        self.fragment.endpoint = self.svc.url(scheme, port, path);
        self.scheme = scheme;
        self.port = port;
        self
    }

    /// Sets the endpoint URL on a Service port, with the scheme that port speaks
    /// ([`ServiceExt::scheme_of`]: https on a Service with an OpenShift serving
    /// certificate, else from the port, default http) and base path `path`.
    pub fn port_endpoint(self, port: &ServicePort, path: &str) -> Self {
        let scheme = self.svc.scheme_of(port, Scheme::Http);
        self.endpoint(scheme, port.port, path)
    }

    /// Sets the endpoint to a full URL given by an administrator (already validated);
    /// `scheme` and `port` are those a health probe of this Service should use.
    pub fn endpoint_url(mut self, url: impl Into<String>, scheme: Scheme, port: u16) -> Self {
        self.fragment.endpoint = url.into();
        self.scheme = scheme;
        self.port = port;
        self
    }

    /// The endpoint URL set so far.
    pub fn url(&self) -> &str {
        &self.fragment.endpoint
    }

    /// Health probe on the endpoint's port and scheme. `accepted` empty means 200-399.
    pub fn health(mut self, path: &str, accepted: &[u16]) -> Self {
        self.fragment.health = Some(HealthProbe {
            port: self.port,
            scheme: self.scheme,
            path: path.to_string(),
            accepted_statuses: accepted.to_vec(),
        });
        self
    }

    /// Sets a string key of the HolmesGPT `config` object.
    pub fn config_str(self, key: &str, value: &str) -> Self {
        self.config_value(key, serde_json::Value::String(value.to_string()))
    }

    /// Sets the endpoint URL as a string key of `config` (e.g. "prometheus_url", "api_url").
    pub fn config_url(self, key: &str) -> Self {
        let url = self.fragment.endpoint.clone();
        self.config_str(key, &url)
    }

    /// Sets any key of the HolmesGPT `config` object.
    pub fn config_value(mut self, key: &str, value: serde_json::Value) -> Self {
        self.config.insert(key.to_string(), value);
        self
    }

    /// Attaches a custom toolset definition (for backends with no HolmesGPT built-in).
    pub fn custom(mut self, description: &str, prerequisites: &[&str], tools: Vec<Tool>) -> Self {
        self.fragment.custom = Some(CustomToolset {
            description: description.to_string(),
            prerequisites: prerequisites.iter().map(|p| p.to_string()).collect(),
            tools,
        });
        self
    }

    /// Finishes the fragment.
    pub fn build(mut self) -> Fragment {
        self.fragment.config = serde_json::Value::Object(self.config).to_string();
        self.fragment
    }
}

/// Builds a [`Tool`].
pub fn tool(name: &str, description: &str, command: &str) -> Tool {
    Tool {
        name: name.to_string(),
        description: description.to_string(),
        command: command.to_string(),
    }
}
