//! The controller's pure decisions: health hysteresis, the desired ConfigMap content, and
//! whether (and what) to write. No I/O: the loop in `mod.rs` feeds these.

use std::collections::BTreeMap;

use dynamic_toolset_core::assemble::Health;
use dynamic_toolset_core::render::{DISCOVERY_KEY, OVERRIDES_EXAMPLE, OVERRIDES_KEY, TOOLSETS_KEY};
use dynamic_toolset_core::select::InstanceKey;

/// Health of one chosen installation across probe rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    /// Never passed a probe yet: not published.
    Pending { reason: String },
    /// Passed; `failures` consecutive failed rounds since (published while below threshold).
    Healthy { failures: u32, last_reason: String },
    /// Failed `threshold` rounds in a row: removed until it passes once.
    Unhealthy { reason: String },
}

/// Hysteresis over probe rounds: a new installation must pass once to be published; a
/// published one is removed only after `threshold` consecutive failed rounds.
#[derive(Debug, Clone, Default)]
pub struct HealthTracker {
    threshold: u32,
    states: BTreeMap<InstanceKey, Tracked>,
}

impl HealthTracker {
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            states: BTreeMap::new(),
        }
    }

    /// Keys never probed so far, among `keys`.
    pub fn unknown<'a>(&self, keys: impl IntoIterator<Item = &'a InstanceKey>) -> Vec<InstanceKey> {
        keys.into_iter()
            .filter(|k| !self.states.contains_key(*k))
            .cloned()
            .collect()
    }

    /// Records one probe result. Returns true when the published verdict changed.
    pub fn record(&mut self, key: &InstanceKey, healthy: bool, reason: &str) -> bool {
        let before = self.verdict(key);
        let next = match (self.states.get(key), healthy) {
            (_, true) => Tracked::Healthy {
                failures: 0,
                last_reason: String::new(),
            },
            (Some(Tracked::Healthy { failures, .. }), false) if failures + 1 < self.threshold => {
                Tracked::Healthy {
                    failures: failures + 1,
                    last_reason: reason.to_string(),
                }
            }
            (Some(Tracked::Healthy { .. } | Tracked::Unhealthy { .. }), false) => {
                Tracked::Unhealthy {
                    reason: reason.to_string(),
                }
            }
            (None | Some(Tracked::Pending { .. }), false) => Tracked::Pending {
                reason: reason.to_string(),
            },
        };
        self.states.insert(key.clone(), next);
        before != self.verdict(key)
    }

    /// Forgets installations that are no longer chosen.
    pub fn retain(&mut self, keep: &std::collections::BTreeSet<InstanceKey>) {
        self.states.retain(|k, _| keep.contains(k));
    }

    pub fn state(&self, key: &InstanceKey) -> Option<&Tracked> {
        self.states.get(key)
    }

    /// What assembly sees for one key.
    pub fn verdict(&self, key: &InstanceKey) -> Option<Health> {
        self.states.get(key).map(|s| match s {
            Tracked::Healthy { .. } => Health::Healthy,
            Tracked::Pending { reason } => Health::Unhealthy {
                reason: format!("has not passed a probe yet: {reason}"),
            },
            Tracked::Unhealthy { reason } => Health::Unhealthy {
                reason: reason.clone(),
            },
        })
    }

    /// Health map for assembly over the installations that declare a probe: their
    /// verdict, or unhealthy while their first probe has not finished (never published
    /// unprobed). Installations not listed are left out of the map (not checked).
    pub fn health_map_for(&self, probed: &[InstanceKey]) -> BTreeMap<InstanceKey, Health> {
        let mut map = self.health_map();
        for k in probed {
            map.entry(k.clone()).or_insert_with(|| Health::Unhealthy {
                reason: "awaiting its first health probe".to_string(),
            });
        }
        map
    }

    /// Health map for assembly.
    pub fn health_map(&self) -> BTreeMap<InstanceKey, Health> {
        self.states
            .keys()
            .filter_map(|k| self.verdict(k).map(|v| (k.clone(), v)))
            .collect()
    }
}

/// The generated part of the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub toolsets_yaml: String,
    pub discovery_json: String,
}

/// What to do with the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It does not exist: create it with these data keys.
    Create(BTreeMap<String, String>),
    /// It exists and differs: set these data keys (other keys are left as they are).
    Update(BTreeMap<String, String>),
    /// Up to date.
    Nothing,
}

/// Decides the write. `current` is the live ConfigMap's `data` (None: no ConfigMap).
/// `overrides.yaml` is admin-owned: written only when absent (the commented example).
pub fn decide(current: Option<&BTreeMap<String, String>>, desired: &Generated) -> Action {
    let mut want = BTreeMap::from([
        (TOOLSETS_KEY.to_string(), desired.toolsets_yaml.clone()),
        (DISCOVERY_KEY.to_string(), desired.discovery_json.clone()),
    ]);
    match current {
        None => {
            want.insert(OVERRIDES_KEY.to_string(), OVERRIDES_EXAMPLE.to_string());
            Action::Create(want)
        }
        Some(data) => {
            if !data.contains_key(OVERRIDES_KEY) {
                want.insert(OVERRIDES_KEY.to_string(), OVERRIDES_EXAMPLE.to_string());
            }
            want.retain(|k, v| data.get(k) != Some(v));
            if want.is_empty() {
                Action::Nothing
            } else {
                Action::Update(want)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> InstanceKey {
        InstanceKey::new("prometheus/metrics", n)
    }

    #[test]
    fn new_installation_must_pass_once() {
        let mut t = HealthTracker::new(3);
        assert_eq!(t.unknown([&key("a")]), vec![key("a")]);
        t.record(&key("a"), false, "refused");
        assert!(matches!(
            t.verdict(&key("a")),
            Some(Health::Unhealthy { .. })
        ));
        assert!(t.record(&key("a"), true, ""));
        assert_eq!(t.verdict(&key("a")), Some(Health::Healthy));
        assert!(t.unknown([&key("a")]).is_empty());
    }

    #[test]
    fn healthy_is_removed_only_after_threshold_failures() {
        let mut t = HealthTracker::new(3);
        t.record(&key("a"), true, "");
        assert!(!t.record(&key("a"), false, "503"));
        assert!(!t.record(&key("a"), false, "503"));
        assert_eq!(t.verdict(&key("a")), Some(Health::Healthy));
        assert!(t.record(&key("a"), false, "503"));
        assert_eq!(
            t.verdict(&key("a")),
            Some(Health::Unhealthy {
                reason: "503".into()
            })
        );
        // One success brings it back; the failure count restarts.
        assert!(t.record(&key("a"), true, ""));
        t.record(&key("a"), false, "x");
        assert_eq!(t.verdict(&key("a")), Some(Health::Healthy));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut t = HealthTracker::new(2);
        t.record(&key("a"), true, "");
        t.record(&key("a"), false, "x");
        t.record(&key("a"), true, "");
        t.record(&key("a"), false, "x");
        assert_eq!(t.verdict(&key("a")), Some(Health::Healthy));
    }

    #[test]
    fn retain_forgets_gone_installations() {
        let mut t = HealthTracker::new(1);
        t.record(&key("a"), true, "");
        t.record(&key("b"), true, "");
        t.retain(&[key("b")].into_iter().collect());
        assert_eq!(t.health_map().len(), 1);
        assert!(t.state(&key("a")).is_none());
    }

    #[test]
    fn unprobed_installations_are_never_healthy() {
        let mut t = HealthTracker::new(2);
        t.record(&key("a"), true, "");
        let map = t.health_map_for(&[key("a"), key("b")]);
        assert_eq!(map[&key("a")], Health::Healthy);
        assert!(matches!(map[&key("b")], Health::Unhealthy { .. }));
        // A pending one (failed its first probe) stays out too.
        t.record(&key("b"), false, "refused");
        assert!(matches!(
            t.health_map_for(&[key("b")])[&key("b")],
            Health::Unhealthy { .. }
        ));
    }

    fn generated(t: &str) -> Generated {
        Generated {
            toolsets_yaml: t.into(),
            discovery_json: "{}".into(),
        }
    }

    #[test]
    fn create_when_missing_with_overrides_example() {
        match decide(None, &generated("t")) {
            Action::Create(data) => {
                assert_eq!(data[TOOLSETS_KEY], "t");
                assert_eq!(data[OVERRIDES_KEY], OVERRIDES_EXAMPLE);
                assert_eq!(data[DISCOVERY_KEY], "{}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_when_up_to_date_and_admin_keys_untouched() {
        let current = BTreeMap::from([
            (TOOLSETS_KEY.to_string(), "t".to_string()),
            (DISCOVERY_KEY.to_string(), "{}".to_string()),
            (OVERRIDES_KEY.to_string(), "toolsets: {}".to_string()),
            ("notes.txt".to_string(), "admin".to_string()),
        ]);
        assert_eq!(decide(Some(&current), &generated("t")), Action::Nothing);
        // A hand-edited generated key is restored, and only that key is written.
        let mut edited = current.clone();
        edited.insert(TOOLSETS_KEY.into(), "hand edit".into());
        assert_eq!(
            decide(Some(&edited), &generated("t")),
            Action::Update(BTreeMap::from([(
                TOOLSETS_KEY.to_string(),
                "t".to_string()
            )]))
        );
    }

    #[test]
    fn missing_overrides_key_is_recreated_but_existing_one_never_written() {
        let current = BTreeMap::from([
            (TOOLSETS_KEY.to_string(), "t".to_string()),
            (DISCOVERY_KEY.to_string(), "{}".to_string()),
        ]);
        match decide(Some(&current), &generated("t")) {
            Action::Update(d) => {
                assert_eq!(d.len(), 1);
                assert_eq!(d[OVERRIDES_KEY], OVERRIDES_EXAMPLE);
            }
            other => panic!("{other:?}"),
        }
    }
}
