//! The resolver: defaults, then the settings file, then the environment, then the flags
//! (later layers win), remembering the [`Source`] of every value; then the derived defaults
//! and the checks of the merged values ([`super::validate`]). Every problem is collected.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_yaml::Value;

use super::error::{ConfigError, Issue, Problem, Source};
use super::keys::{
    self, CM_NAMESPACE, Flag, HC_INTERVAL, KEYS, LE_NAMESPACE, POD_NAMESPACE, SD_CACHE_TTL,
    SD_HC_FLAT, SECTIONS, Slot,
};
use super::lines::{index_lines, line_of};
use super::settings::{FALLBACK_NAMESPACE, Settings};
use super::values::{
    first_bad_item, fmt_dur, kind_of, set_from_text, set_from_yaml, yaml_duration,
};

/// A value given on the command line for a settings key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// `--flag VALUE`, read like an environment variable.
    Text(String),
    /// A repeatable flag: its values, replacing the list.
    List(Vec<String>),
    /// A switch was given: the key takes the value its [`Flag::Switch`] sets.
    Given,
}

/// The flags of `dynamic-toolset run` that override settings, by key path. The flag names
/// shown in messages come from the key table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(Vec<(&'static str, FlagValue)>);

impl Flags {
    /// `--flag VALUE` of the key at `path`, when given.
    pub fn text(&mut self, path: &'static str, value: Option<String>) -> &mut Self {
        if let Some(v) = value {
            self.0.push((path, FlagValue::Text(v)));
        }
        self
    }

    /// The values of a repeatable flag, when any was given.
    pub fn list(&mut self, path: &'static str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.0.push((path, FlagValue::List(values.to_vec())));
        }
        self
    }

    /// A switch, when given.
    pub fn switch(&mut self, path: &'static str, given: bool) -> &mut Self {
        if given {
            self.0.push((path, FlagValue::Given));
        }
        self
    }

    /// The flags given, in order.
    pub fn values(&self) -> &[(&'static str, FlagValue)] {
        &self.0
    }
}

/// The outcome of [`resolve_detailed`]: the settings, where each value came from, and warnings
/// (deprecated keys) that do not stop the controller.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub settings: Settings,
    /// Key path → source, for every leaf key.
    pub sources: BTreeMap<&'static str, Source>,
    pub warnings: Vec<Issue>,
}

/// Resolves the settings: defaults, then the file (`(path, text)`, the path only names it in
/// messages), then the environment (`env("DISCOVERY_INTERVAL")` ...), then the flags.
pub fn resolve(
    file_text: Option<(&Path, &str)>,
    env: impl Fn(&str) -> Option<String>,
    flags: &Flags,
) -> Result<Settings, ConfigError> {
    resolve_detailed(file_text, env, flags).map(|r| r.settings)
}

/// [`resolve`], also telling where every value came from and the warnings.
pub fn resolve_detailed(
    file_text: Option<(&Path, &str)>,
    env: impl Fn(&str) -> Option<String>,
    flags: &Flags,
) -> Result<Resolved, ConfigError> {
    let mut r = Resolver {
        settings: Settings::default(),
        sources: KEYS.iter().map(|k| (k.path, Source::Default)).collect(),
        errors: Vec::new(),
        warnings: Vec::new(),
        failed: Vec::new(),
        lines: HashMap::new(),
    };
    if let Some((path, text)) = file_text {
        r.apply_file(path, text);
    }
    r.apply_env(&env);
    r.apply_flags(flags);
    r.derive_defaults(&env);
    r.validate();
    if r.errors.is_empty() {
        Ok(Resolved {
            settings: r.settings,
            sources: r.sources,
            warnings: r.warnings,
        })
    } else {
        Err(ConfigError::Invalid {
            issues: r.errors,
            warnings: r.warnings,
        })
    }
}

pub(super) struct Resolver {
    pub(super) settings: Settings,
    pub(super) sources: BTreeMap<&'static str, Source>,
    pub(super) errors: Vec<Issue>,
    warnings: Vec<Issue>,
    /// Keys whose value could not be read: cross-key checks skip them.
    pub(super) failed: Vec<&'static str>,
    /// Line index of the settings file (key path → line).
    pub(super) lines: HashMap<String, usize>,
}

impl Resolver {
    pub(super) fn error(&mut self, key: impl Into<String>, source: Source, message: Problem) {
        self.errors.push(Issue {
            key: key.into(),
            source,
            message,
        });
    }

    pub(super) fn source(&self, path: &str) -> Source {
        self.sources.get(path).cloned().unwrap_or(Source::Default)
    }

    // --- file layer ---

    fn apply_file(&mut self, path: &Path, text: &str) {
        let file_src = |line: Option<usize>| Source::File {
            path: path.to_path_buf(),
            line,
        };
        let root: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| l.line());
                self.error("(file)", file_src(line), Problem::Yaml(e.to_string()));
                return;
            }
        };
        let lines = index_lines(text);
        let root = match root {
            Value::Null => return,
            Value::Mapping(m) => m,
            other => {
                self.error(
                    "(file)",
                    file_src(None),
                    Problem::TopNotMapping(kind_of(&other)),
                );
                return;
            }
        };
        let mut flat_hc: Option<(Duration, Source)> = None;
        self.walk_mapping("", &root, &lines, path, &mut flat_hc);
        // The seeds' flat key and the nested one are the same setting.
        if let Some((d, src)) = flat_hc {
            let nested_src = self.source(HC_INTERVAL);
            let nested = self.settings.service_discovery.health_check.interval;
            if matches!(nested_src, Source::File { .. }) && nested != d {
                let problem = Problem::SameSetting {
                    value: fmt_dur(d),
                    other: HC_INTERVAL,
                    other_value: fmt_dur(nested),
                    other_source: nested_src,
                };
                self.error(SD_HC_FLAT, src, problem);
            } else {
                self.settings.service_discovery.health_check.interval = d;
                self.sources.insert(HC_INTERVAL, src);
            }
        }
        self.lines = lines;
    }

    fn walk_mapping(
        &mut self,
        prefix: &str,
        map: &serde_yaml::Mapping,
        lines: &HashMap<String, usize>,
        file: &Path,
        flat_hc: &mut Option<(Duration, Source)>,
    ) {
        let src = |key: &str| Source::File {
            path: file.to_path_buf(),
            line: line_of(lines, key),
        };
        for (k, v) in map {
            let name = match k {
                Value::String(s) => s.clone(),
                other => {
                    let shown = serde_yaml::to_string(other)
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default();
                    let at = if prefix.is_empty() { "(file)" } else { prefix };
                    self.error(at, src(at), Problem::KeyNotString(shown));
                    continue;
                }
            };
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if SECTIONS.contains(&path.as_str()) {
                match v {
                    Value::Null => {}
                    Value::Mapping(m) => self.walk_mapping(&path, m, lines, file, flat_hc),
                    other => self.error(
                        path.clone(),
                        src(&path),
                        Problem::SectionNotMapping(kind_of(other)),
                    ),
                }
            } else if let Some(key) = keys::find(&path) {
                if v.is_null() {
                    continue;
                }
                match set_from_yaml(key.slot, &mut self.settings, v) {
                    Ok(()) => {
                        self.sources.insert(key.path, src(&path));
                    }
                    Err(problem) => {
                        let line_key = first_bad_item(&path, key.slot, v);
                        self.failed.push(key.path);
                        self.error(path.clone(), src(&line_key), problem);
                    }
                }
            } else if path == SD_HC_FLAT {
                if v.is_null() {
                    continue;
                }
                match yaml_duration(v, false) {
                    Ok(d) => *flat_hc = Some((d, src(&path))),
                    Err(problem) => {
                        self.failed.push(HC_INTERVAL);
                        self.error(path.clone(), src(&path), problem);
                    }
                }
            } else if path == SD_CACHE_TTL {
                self.warnings.push(Issue {
                    key: path.clone(),
                    source: src(&path),
                    message: Problem::CacheTtlIgnored,
                });
            } else {
                self.error(path.clone(), src(&path), unknown_key(prefix, &name));
            }
        }
    }

    // --- environment layer ---

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) {
        for key in KEYS {
            let Some(var) = key.env else { continue };
            let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match set_from_text(key.slot, &mut self.settings, &value) {
                Ok(()) => {
                    self.sources.insert(key.path, Source::Env(var.into()));
                }
                Err(problem) => {
                    self.failed.push(key.path);
                    self.error(key.path, Source::Env(var.into()), problem);
                }
            }
        }
    }

    // --- flag layer ---

    fn apply_flags(&mut self, flags: &Flags) {
        for (path, value) in flags.values() {
            let Some(key) = keys::find(path) else {
                continue;
            };
            let Some(flag) = key.flag else { continue };
            let src = Source::Flag(flag.name().into());
            match (value, key.slot, flag) {
                (FlagValue::Text(text), slot, _) => {
                    match set_from_text(slot, &mut self.settings, text) {
                        Ok(()) => {
                            self.sources.insert(key.path, src);
                        }
                        Err(problem) => {
                            self.failed.push(key.path);
                            self.error(key.path, src, problem);
                        }
                    }
                }
                (FlagValue::List(values), Slot::List(acc), _) => {
                    *acc(&mut self.settings) =
                        values.iter().map(|v| v.trim().to_string()).collect();
                    self.sources.insert(key.path, src);
                }
                (FlagValue::Given, Slot::Bool(acc), Flag::Switch { sets, .. }) => {
                    *acc(&mut self.settings) = sets;
                    self.sources.insert(key.path, src);
                }
                // A flag of the wrong shape for its key: the CLI's tests rule it out.
                _ => {}
            }
        }
    }

    // --- derived defaults ---

    fn derive_defaults(&mut self, env: &impl Fn(&str) -> Option<String>) {
        let pod_namespace = env(POD_NAMESPACE)
            .map(|s| s.trim().to_string())
            .filter(|ns| !ns.is_empty());
        if self.settings.configmap.namespace.trim().is_empty() {
            match &pod_namespace {
                Some(ns) => {
                    self.settings.configmap.namespace = ns.clone();
                    self.sources
                        .insert(CM_NAMESPACE, Source::Env(POD_NAMESPACE.into()));
                }
                None => {
                    self.settings.configmap.namespace = FALLBACK_NAMESPACE.into();
                    self.sources.insert(CM_NAMESPACE, Source::Default);
                }
            }
        }
        if self
            .settings
            .leader_election
            .lease_namespace
            .trim()
            .is_empty()
        {
            // Our own namespace (the ConfigMap may live in HolmesGPT's), else the ConfigMap's.
            let (ns, src) = match pod_namespace {
                Some(ns) => (ns, Source::Env(POD_NAMESPACE.into())),
                None => (
                    self.settings.configmap.namespace.clone(),
                    self.source(CM_NAMESPACE),
                ),
            };
            self.settings.leader_election.lease_namespace = ns;
            self.sources.insert(LE_NAMESPACE, src);
        }
    }
}

/// "Unknown key", with the best hint: the same name in another section, else a close
/// sibling (edit distance from `strsim`), else the list of keys known at this level.
fn unknown_key(prefix: &str, name: &str) -> Problem {
    // The same name somewhere else: a key put in the wrong section.
    if let Some(path) = keys::all_paths().find(|p| p.rsplit('.').next() == Some(name)) {
        let section = path.rsplit_once('.').map_or("the top level", |(a, _)| a);
        return Problem::KeyElsewhere { path, section };
    }
    let siblings = keys::names_under(prefix);
    let best = siblings
        .iter()
        .map(|s| (strsim::levenshtein(name, s), *s))
        .min_by_key(|(d, _)| *d);
    if let Some((d, s)) = best
        && d <= (name.len() / 3).max(2)
    {
        return Problem::KeyTypo(s);
    }
    let mut known = siblings;
    known.sort_unstable();
    Problem::UnknownKey(known.join(", "))
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::keys::*;
    use super::*;
    use crate::cli::RunArgs;

    pub(in crate::config) fn no_env(_: &str) -> Option<String> {
        None
    }

    pub(in crate::config) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    pub(in crate::config) fn file(text: &str) -> Option<(&'static Path, &str)> {
        Some((Path::new("config.yaml"), text))
    }

    pub(in crate::config) fn err(text: &str) -> ConfigError {
        resolve(file(text), no_env, &Flags::default()).unwrap_err()
    }

    pub(in crate::config) fn ok(text: &str) -> Settings {
        resolve(file(text), no_env, &Flags::default()).unwrap()
    }

    #[test]
    fn defaults_without_file_env_or_flags() {
        let s = resolve(None, no_env, &Flags::default()).unwrap();
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(300)
        );
        assert_eq!(
            s.service_discovery.reconciliation_interval,
            Duration::from_secs(30)
        );
        assert_eq!(s.service_discovery.debounce, Duration::from_millis(200));
        assert_eq!(
            s.service_discovery.health_check.interval,
            Duration::from_secs(60)
        );
        assert_eq!(s.configmap.name, "kubernaut-toolset-config");
        assert_eq!(s.configmap.namespace, "kubernaut-system");
        assert_eq!(s.leader_election.lease_namespace, "kubernaut-system");
        assert_eq!(s.leader_election.lease_duration, Duration::from_secs(15));
        assert_eq!(s.server.listen.to_string(), "0.0.0.0:8080");
        assert!(s.service_discovery.label_selector.is_none());
    }

    #[test]
    fn effective_yaml_round_trips() {
        let s = resolve(
            file("service_discovery:\n  namespaces: [team-*]\n  label_selector: a=b\n"),
            env_of(&[("POD_NAMESPACE", "ops"), ("LEASE_DURATION", "1m")]),
            &Flags::default(),
        )
        .unwrap();
        let yaml = s.to_yaml();
        assert!(yaml.contains("lease_duration: 1m"), "{yaml}");
        assert!(yaml.contains("namespace: ops"), "{yaml}");
        let again = Settings::from_yaml(Path::new("out.yaml"), &yaml).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn seeds_example_is_accepted_with_a_warning_for_cache_ttl() {
        let text = "service_discovery:\n  discovery_interval: \"10m\"\n  cache_ttl: \"15m\"\n  health_check_interval: \"60s\"\n  namespaces:\n    - \"monitoring\"\n    - \"observability\"\n";
        let r = resolve_detailed(file(text), no_env, &Flags::default()).unwrap();
        assert_eq!(
            r.settings.service_discovery.discovery_interval,
            Duration::from_secs(600)
        );
        assert_eq!(
            r.settings.service_discovery.namespaces,
            ["monitoring", "observability"]
        );
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].key, "service_discovery.cache_ttl");
        assert_eq!(r.warnings[0].to_string().split(':').nth(1), Some("3"));
        assert_eq!(
            r.sources[HC_INTERVAL],
            Source::File {
                path: "config.yaml".into(),
                line: Some(4)
            }
        );
    }

    #[test]
    fn flat_and_nested_health_interval_must_agree() {
        let same = "service_discovery:\n  health_check_interval: 30s\n  health_check:\n    interval: 30s\n";
        assert_eq!(
            ok(same).service_discovery.health_check.interval,
            Duration::from_secs(30)
        );
        let e = err(
            "service_discovery:\n  health_check_interval: 30s\n  health_check:\n    interval: 1m\n",
        );
        assert!(e.mentions(SD_HC_FLAT), "{e}");
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        let text = "service_discovery:\n  discovery_interval: 1m\n  namespaces: [a]\nconfigmap:\n  name: from-file\nleader_election:\n  enabled: true\n";
        // File alone.
        let s = resolve(file(text), no_env, &Flags::default()).unwrap();
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(60)
        );
        assert_eq!(s.configmap.name, "from-file");
        // Env over file.
        let env = env_of(&[
            ("DISCOVERY_INTERVAL", "2m"),
            ("NAMESPACES", "b, c ,"),
            ("CONFIGMAP_NAME", "from-env"),
            ("LEADER_ELECTION_ENABLED", "0"),
            ("POD_NAMESPACE", "pod-ns"),
        ]);
        let r = resolve_detailed(file(text), &env, &Flags::default()).unwrap();
        let s = &r.settings;
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(120)
        );
        assert_eq!(s.service_discovery.namespaces, ["b", "c"]);
        assert_eq!(s.configmap.name, "from-env");
        assert!(!s.leader_election.enabled);
        assert_eq!(s.configmap.namespace, "pod-ns");
        assert_eq!(s.leader_election.lease_namespace, "pod-ns");
        assert_eq!(
            r.sources[SD_DISCOVERY],
            Source::Env("DISCOVERY_INTERVAL".into())
        );
        // Flags over env.
        let flags = RunArgs {
            namespaces: vec!["d".into()],
            configmap_name: Some("from-flag".into()),
            configmap_namespace: Some("flag-ns".into()),
            no_health_check: true,
            listen: Some("127.0.0.1:1".into()),
            ..RunArgs::default()
        };
        let r = resolve_detailed(file(text), &env, &flags.flags()).unwrap();
        let s = &r.settings;
        assert_eq!(s.service_discovery.namespaces, ["d"]);
        assert_eq!(s.configmap.name, "from-flag");
        assert_eq!(s.configmap.namespace, "flag-ns");
        // The Lease stays in the pod's namespace when the ConfigMap goes elsewhere.
        assert_eq!(s.leader_election.lease_namespace, "pod-ns");
        assert!(!s.service_discovery.health_check.enabled);
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:1");
        assert_eq!(r.sources[CM_NAME], Source::Flag("configmap-name".into()));
        // Env that is empty counts as unset.
        let s = resolve(
            file(text),
            env_of(&[("DISCOVERY_INTERVAL", "")]),
            &Flags::default(),
        )
        .unwrap();
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn configmap_namespace_in_file_beats_pod_namespace() {
        let s = resolve(
            file("configmap:\n  namespace: fixed\nleader_election:\n  lease_namespace: leases\n"),
            env_of(&[("POD_NAMESPACE", "pod-ns")]),
            &Flags::default(),
        )
        .unwrap();
        assert_eq!(s.configmap.namespace, "fixed");
        assert_eq!(s.leader_election.lease_namespace, "leases");
    }

    #[test]
    fn configmap_in_another_namespace_keeps_the_lease_in_the_pods() {
        let s = resolve(
            file("configmap:\n  namespace: holmes\n"),
            env_of(&[("POD_NAMESPACE", "kubernaut-system")]),
            &Flags::default(),
        )
        .unwrap();
        assert_eq!(s.configmap.namespace, "holmes");
        assert_eq!(s.leader_election.lease_namespace, "kubernaut-system");
        // Without a pod namespace, the ConfigMap's.
        let s = resolve(
            file("configmap:\n  namespace: holmes\n"),
            env_of(&[]),
            &Flags::default(),
        )
        .unwrap();
        assert_eq!(s.leader_election.lease_namespace, "holmes");
    }

    #[test]
    fn unknown_key_in_the_wrong_section_points_to_the_right_one() {
        let first = |text: &str| err(text).issues()[0].message.to_string();
        let m = first("service_discovery:\n  lease_duration: 15s\n");
        assert!(
            m.contains("did you mean leader_election.lease_duration?"),
            "{m}"
        );
        let m = first("discovery_interval: 5m\n");
        assert!(m.contains("service_discovery.discovery_interval"), "{m}");
        let m = first("server:\n  zzzzzzzzzz: 1\n");
        assert!(
            m.contains("known keys here: api_auth, listen, metrics_listen"),
            "{m}"
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = err("service_discovery:\n  namespaces: [a\n  debounce: 1s\n");
        assert_eq!(e.issues().len(), 1);
        assert!(
            matches!(e.issues()[0].source, Source::File { line: Some(_), .. }),
            "{e}"
        );
    }

    #[test]
    fn empty_file_and_nulls_keep_defaults() {
        assert_eq!(ok(""), resolve(None, no_env, &Flags::default()).unwrap());
        assert_eq!(ok("# only comments\n"), ok(""));
        let s = ok("service_discovery:\n  label_selector:\n  namespaces:\nconfigmap:\n");
        assert!(s.service_discovery.label_selector.is_none());
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(strsim::levenshtein("kitten", "sitting"), 3);
        assert_eq!(strsim::levenshtein("", "abc"), 3);
        assert_eq!(strsim::levenshtein("debounce", "debounce"), 0);
    }
}
