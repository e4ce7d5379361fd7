//! The checks of the merged settings: zero durations, the order of the Lease timings,
//! namespace patterns, Kubernetes names and selectors (with `dynamic_toolset_core::k8s_names`,
//! the one owner of that grammar), distinct listen addresses.

use std::time::Duration;

use dynamic_toolset_core::k8s_names;

use super::error::{Problem, Source};
use super::keys::*;
use super::lines::line_of;
use super::resolve::Resolver;
use super::values::{check_namespace_pattern, fmt_dur};

impl Resolver {
    /// Checks the merged values, adding an issue for each problem.
    pub(super) fn validate(&mut self) {
        let s = self.settings.clone();
        let sd = &s.service_discovery;
        let le = &s.leader_election;

        for key in KEYS {
            if let Slot::Dur(acc, zero_ok) = key.slot
                && !zero_ok
                && !self.failed.contains(&key.path)
                && acc(&mut self.settings).is_zero()
            {
                let src = self.source(key.path);
                self.error(key.path, src, Problem::MustBePositive);
                self.failed.push(key.path);
            }
        }
        self.shorter(
            (LE_RENEW, le.renew_deadline),
            (LE_DURATION, le.lease_duration),
        );
        self.shorter((LE_RETRY, le.retry_period), (LE_RENEW, le.renew_deadline));
        self.shorter(
            (SD_DEBOUNCE, sd.debounce),
            (SD_DISCOVERY, sd.discovery_interval),
        );

        let patterns = [
            (SD_NAMESPACES, &sd.namespaces),
            (SD_EXCLUDE, &sd.exclude_namespaces),
        ];
        for (path, list) in patterns {
            self.check_items(path, list, check_namespace_pattern);
        }
        let namespaces = [
            (SEC_CREDENTIALS, &s.security.credential_namespaces),
            (SEC_ENDPOINTS, &s.security.endpoint_namespaces),
        ];
        for (path, list) in namespaces {
            self.check_items(path, list, |ns| {
                k8s_names::dns1123_label(ns).map_err(Problem::Name)
            });
        }
        self.check_items(
            SEC_EXTERNAL,
            &s.security.external_hosts,
            check_external_host,
        );
        if let Some(sel) = &sd.label_selector
            && let Err(msg) = k8s_names::label_selector(sel)
        {
            self.error(SD_SELECTOR, self.source(SD_SELECTOR), Problem::Name(msg));
        }
        if let Err(msg) = k8s_names::dns1123_subdomain(&sd.cluster_domain, k8s_names::SUBDOMAIN_MAX)
        {
            self.error(SD_DOMAIN, self.source(SD_DOMAIN), Problem::Name(msg));
        }
        let names: [(&str, Option<&str>, bool); 5] = [
            (CM_NAME, Some(s.configmap.name.as_str()), false),
            (CM_NAMESPACE, Some(s.configmap.namespace.as_str()), true),
            (CM_OWNER, s.configmap.owner_deployment.as_deref(), false),
            (LE_NAME, Some(le.lease_name.as_str()), false),
            (LE_NAMESPACE, Some(le.lease_namespace.as_str()), true),
        ];
        for (path, value, label) in names {
            let Some(value) = value else { continue };
            let res = if label {
                k8s_names::dns1123_label(value)
            } else {
                k8s_names::dns1123_subdomain(value, k8s_names::SUBDOMAIN_MAX)
            };
            if let Err(msg) = res {
                self.error(path, self.source(path), Problem::Name(msg));
            }
        }
        if self.readable(&[SRV_LISTEN, SRV_METRICS])
            && s.server.listen == s.server.metrics_listen
            && s.server.listen.port() != 0
        {
            let problem = Problem::SameAddress {
                value: s.server.metrics_listen.to_string(),
                other: SRV_LISTEN,
                other_source: self.source(SRV_LISTEN),
            };
            self.error(SRV_METRICS, self.source(SRV_METRICS), problem);
        }
    }

    /// Whether every key of `keys` was read (cross-key checks skip the others).
    fn readable(&self, keys: &[&str]) -> bool {
        keys.iter().all(|k| !self.failed.contains(k))
    }

    /// `key` must be shorter than `other`.
    fn shorter(
        &mut self,
        (key, value): (&str, Duration),
        (other, limit): (&'static str, Duration),
    ) {
        if self.readable(&[key, other]) && value >= limit {
            let problem = Problem::NotShorter {
                value: fmt_dur(value),
                other,
                other_value: fmt_dur(limit),
                other_source: self.source(other),
            };
            self.error(key, self.source(key), problem);
        }
    }

    /// Checks every item of list `path`, reporting each bad one as `path[i]`.
    fn check_items(
        &mut self,
        path: &'static str,
        list: &[String],
        check: impl Fn(&str) -> Result<(), Problem>,
    ) {
        if self.failed.contains(&path) {
            return;
        }
        for (i, item) in list.iter().enumerate() {
            if let Err(problem) = check(item) {
                let src = self.item_source(path, i);
                self.error(format!("{path}[{i}]"), src, problem);
            }
        }
    }

    /// The source of item `index` of list `path`: its own line when it came from the file.
    fn item_source(&self, path: &str, index: usize) -> Source {
        match self.source(path) {
            Source::File { path: file, line } => Source::File {
                path: file,
                line: line_of(&self.lines, &format!("{path}[{index}]")).or(line),
            },
            other => other,
        }
    }
}

/// An off-cluster host: `host` or `host:port`.
fn check_external_host(host: &str) -> Result<(), Problem> {
    let (name, port) = host.rsplit_once(':').unwrap_or((host, ""));
    k8s_names::dns1123_subdomain(&name.to_ascii_lowercase(), k8s_names::SUBDOMAIN_MAX)
        .map_err(Problem::Name)?;
    if port.is_empty() || port.parse::<u16>().is_ok_and(|p| p > 0) {
        Ok(())
    } else {
        Err(Problem::BadPort(port.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::resolve::tests::{env_of, err, no_env, ok};
    use super::super::resolve::{Flags, resolve};
    use super::*;
    use crate::cli::RunArgs;

    #[test]
    fn bad_duration_names_key_line_and_example() {
        let e = err("# settings\nservice_discovery:\n  discovery_interval: 5x\n");
        assert_eq!(e.issues().len(), 1);
        assert_eq!(
            e.issues()[0].to_string(),
            "config.yaml:3: service_discovery.discovery_interval: \"5x\" is not a duration (e.g. 30s, 5m)"
        );
    }

    #[test]
    fn durations_zero_negative_and_unitless() {
        let e = err(
            "service_discovery:\n  reconciliation_interval: 0s\n  discovery_interval: -5s\n  health_check:\n    timeout: 5\n",
        );
        assert!(e.mentions(SD_RECONCILE), "{e}");
        assert!(e.mentions(SD_DISCOVERY), "{e}");
        assert!(e.mentions(HC_TIMEOUT), "{e}");
        assert_eq!(e.issues().len(), 3, "{e}");
        assert!(e.to_string().contains("greater than zero"), "{e}");
        assert!(e.to_string().contains("negative"), "{e}");
        assert!(e.to_string().contains("no unit"), "{e}");
        // Zero is fine where it means "no pause".
        let s =
            ok("service_discovery:\n  debounce: 0s\n  health_check:\n    retry_interval: 0ms\n");
        assert!(s.service_discovery.debounce.is_zero());
    }

    #[test]
    fn every_error_is_collected() {
        let text = "\
service_discovery:
  discovery_intervall: 5m
  reconciliation_interval: soon
  namespaces: [Team_A, ok-ns, \"team-*\"]
  label_selector: \"app in (a,b\"
  health_check:
    enabled: yes
    attempts: 0
leader_election:
  lease_duration: 10s
  renew_deadline: 10s
  retry_period: 20s
server:
  listen: \":8080\"
  metrics_listen: localhost
bogus: 1
";
        let e = err(text);
        for key in [
            "service_discovery.discovery_intervall",
            SD_RECONCILE,
            "service_discovery.namespaces[0]",
            SD_SELECTOR,
            HC_ENABLED,
            HC_ATTEMPTS,
            LE_RENEW,
            LE_RETRY,
            SRV_LISTEN,
            SRV_METRICS,
            "bogus",
        ] {
            assert!(e.mentions(key), "{key} not reported in\n{e}");
        }
        assert_eq!(e.issues().len(), 11, "{e}");
        let line = |key: &str| {
            e.issues()
                .iter()
                .find(|i| i.key == key)
                .and_then(|i| match &i.source {
                    Source::File { line, .. } => *line,
                    _ => None,
                })
        };
        assert_eq!(line("service_discovery.discovery_intervall"), Some(2));
        assert_eq!(line(HC_ENABLED), Some(7));
        assert_eq!(line(LE_RETRY), Some(12));
        assert_eq!(line("bogus"), Some(16));
        assert!(
            e.to_string().contains("did you mean discovery_interval?"),
            "{e}"
        );
    }

    #[test]
    fn leader_election_ordering_names_both_sources() {
        let e = resolve(None, env_of(&[("LEASE_DURATION", "5s")]), &Flags::default()).unwrap_err();
        assert_eq!(e.issues().len(), 1, "{e}");
        assert_eq!(
            e.issues()[0].to_string(),
            "default: leader_election.renew_deadline: 10s must be shorter than \
             leader_election.lease_duration (5s, env LEASE_DURATION)"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = resolve(
            None,
            env_of(&[
                ("HEALTH_CHECK_ENABLED", "yes"),
                ("DISCOVERY_INTERVAL", "5x"),
                ("NAMESPACES", "ok,Bad.NS"),
            ]),
            &Flags::default(),
        )
        .unwrap_err();
        assert_eq!(e.issues().len(), 3, "{e}");
        let text = e.to_string();
        assert!(text.contains("env HEALTH_CHECK_ENABLED: service_discovery.health_check.enabled: \"yes\" is not a boolean"), "{text}");
        assert!(
            text.contains("env DISCOVERY_INTERVAL: service_discovery.discovery_interval"),
            "{text}"
        );
        assert!(
            text.contains("env NAMESPACES: service_discovery.namespaces[1]"),
            "{text}"
        );
        for (v, b) in [("TRUE", true), ("1", true), ("false", false), ("0", false)] {
            let s = resolve(
                None,
                env_of(&[("HEALTH_CHECK_ENABLED", v)]),
                &Flags::default(),
            )
            .unwrap();
            assert_eq!(s.service_discovery.health_check.enabled, b, "{v}");
        }
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let flags = RunArgs {
            metrics_listen: Some("nope".into()),
            label_selector: Some("a==".into()),
            exclude_namespaces: vec!["kube-.*".into()],
            cluster_domain: Some("Cluster_Local".into()),
            ..RunArgs::default()
        };
        let e = resolve(None, no_env, &flags.flags()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("flag --metrics-listen: server.metrics_listen"),
            "{text}"
        );
        assert!(
            text.contains("flag --exclude-namespace: service_discovery.exclude_namespaces[0]"),
            "{text}"
        );
        assert!(
            text.contains("flag --cluster-domain: service_discovery.cluster_domain"),
            "{text}"
        );
        // `a==` is a valid selector (empty value), so only three errors.
        assert_eq!(e.issues().len(), 3, "{text}");
    }

    #[test]
    fn same_listen_addresses_conflict() {
        let e = err("server:\n  listen: 0.0.0.0:9090\n");
        assert!(e.mentions(SRV_METRICS), "{e}");
        ok("server:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n");
    }

    #[test]
    fn names_are_checked() {
        let e = err(
            "configmap:\n  name: Bad_Name\n  namespace: a.b\n  owner_deployment: -x\nleader_election:\n  lease_name: \"\"\n",
        );
        for k in [CM_NAME, CM_NAMESPACE, CM_OWNER, LE_NAME] {
            assert!(e.mentions(k), "{k}: {e}");
        }
    }

    #[test]
    fn wrong_types_are_reported() {
        let e = err(
            "service_discovery: 5\nconfigmap:\n  name: [a]\nserver:\n  listen: 8080\ndetectors:\n  dir: 3\n",
        );
        for k in ["service_discovery", CM_NAME, SRV_LISTEN, DET_DIR] {
            assert!(e.mentions(k), "{k}: {e}");
        }
        let e = err("- a\n- b\n");
        assert!(e.mentions("(file)"), "{e}");
        let e = err("service_discovery:\n  namespaces: monitoring\n");
        assert!(e.to_string().contains("expected a list"), "{e}");
    }
}
