//! The controller's pure decisions: health hysteresis, the desired ConfigMap content,
//! whether (and what) to write, the size budget, leader fencing, readiness and liveness.
//! No I/O and no clock: the loop (`reconcile.rs`) feeds these (times are passed in).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

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
pub use dynamic_toolset_core::render::Generated;

/// What to do with the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It does not exist: create it with these data keys.
    Create(BTreeMap<String, String>),
    /// It exists and these data keys differ: the generated ones are applied (all of
    /// them, see `apply.rs`), an absent `overrides.yaml` is seeded; other keys are left
    /// as they are.
    Update(BTreeMap<String, String>),
    /// Up to date.
    Nothing,
}

/// Decides the write. `current` is the live ConfigMap's `data` (None: no ConfigMap).
/// `overrides.yaml` is admin-owned: written only when absent: on a (re)created ConfigMap
/// the admin's last known text (`last_overrides`, so a deleted ConfigMap does not drop
/// them), else the commented example.
pub fn decide(
    current: Option<&BTreeMap<String, String>>,
    desired: &Generated,
    last_overrides: Option<&str>,
) -> Action {
    let mut want = BTreeMap::from([
        (TOOLSETS_KEY.to_string(), desired.toolsets_yaml.clone()),
        (DISCOVERY_KEY.to_string(), desired.discovery_json.clone()),
    ]);
    match current {
        None => {
            want.insert(
                OVERRIDES_KEY.to_string(),
                last_overrides.unwrap_or(OVERRIDES_EXAMPLE).to_string(),
            );
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

/// Budget for the ConfigMap's `data` (keys and values, all keys). The API server refuses a
/// ConfigMap whose data exceeds 1 MiB (1,048,576 bytes); the rest is room for metadata and
/// for the admin's own keys to grow without tipping every later write over the limit.
pub const MAX_CONFIGMAP_DATA_BYTES: usize = 900 * 1024;

/// Bytes the API server counts for `data`.
pub fn data_size(data: &BTreeMap<String, String>) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// The `data` the ConfigMap would hold after `action` (None: nothing to write).
pub fn data_after(
    current: Option<&BTreeMap<String, String>>,
    action: &Action,
) -> Option<BTreeMap<String, String>> {
    match action {
        Action::Nothing => None,
        Action::Create(data) => Some(data.clone()),
        Action::Update(data) => {
            let mut all = current.cloned().unwrap_or_default();
            all.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(all)
        }
    }
}

/// A write refused because the ConfigMap would be too large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    pub total: usize,
    pub limit: usize,
    /// Every data key and its size, largest first.
    pub keys: Vec<(String, usize)>,
    /// The largest toolset entries (rendered size), largest first, at most 3.
    pub toolsets: Vec<(String, usize)>,
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: usize| n * 100 / self.total.max(1);
        write!(
            f,
            "the ConfigMap would hold {} bytes of data, over the {}-byte budget (the API server refuses 1 MiB); not written, the last good content is kept. Largest keys:",
            self.total, self.limit
        )?;
        for (i, (k, n)) in self.keys.iter().take(3).enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{k} {n} bytes ({}%)", pct(*n))?;
        }
        if !self.toolsets.is_empty() {
            f.write_str(". Largest toolsets:")?;
            for (i, (t, n)) in self.toolsets.iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(f, "{sep}{t} {n} bytes")?;
            }
        }
        Ok(())
    }
}

/// Refuses `data` above `limit`, naming what made it large. `toolset_sizes`: the rendered
/// size of each toolset entry (any order).
pub fn check_size(
    data: &BTreeMap<String, String>,
    toolset_sizes: &[(String, usize)],
    limit: usize,
) -> Result<usize, Oversize> {
    let total = data_size(data);
    if total <= limit {
        return Ok(total);
    }
    let mut keys: Vec<(String, usize)> = data
        .iter()
        .map(|(k, v)| (k.clone(), k.len() + v.len()))
        .collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut toolsets = toolset_sizes.to_vec();
    toolsets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    toolsets.truncate(3);
    Err(Oversize {
        total,
        limit,
        keys,
        toolsets,
    })
}

/// Annotation naming the leader that last wrote the ConfigMap: `<identity> <acquired>`,
/// where `<acquired>` is the RFC 3339 time its Lease was acquired (its leadership term).
pub const WRITER_ANNOTATION: &str = "kubernaut.io/written-by";

/// This replica's right to write, as the lease loop last established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub identity: String,
    /// When this term's Lease was acquired (RFC 3339, from the Lease); None without
    /// leader election.
    pub term: Option<String>,
    /// Writes are allowed only before this instant (monotonic clock): the start of the
    /// last successful renewal plus the lease duration minus a margin. None: no expiry
    /// (single replica, no leader election).
    pub valid_until: Option<Instant>,
}

impl Leadership {
    /// Without leader election: always allowed.
    pub fn sole(identity: &str) -> Self {
        Leadership {
            identity: identity.to_string(),
            term: None,
            valid_until: None,
        }
    }

    /// The value of [`WRITER_ANNOTATION`] for this term.
    pub fn annotation(&self) -> String {
        match &self.term {
            Some(t) => format!("{} {t}", self.identity),
            None => self.identity.clone(),
        }
    }
}

/// Why a write is not allowed by leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fenced {
    /// The lease may have expired (not renewed in time): another replica may lead.
    LeaseMayHaveExpired { overdue: Duration },
    /// The ConfigMap was written by a later leadership term than ours.
    NewerWriter { writer: String },
}

impl fmt::Display for Fenced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fenced::LeaseMayHaveExpired { overdue } => write!(
                f,
                "not written: the leader lease was not renewed in time ({} ms past its safe period); another replica may lead",
                overdue.as_millis()
            ),
            Fenced::NewerWriter { writer } => write!(
                f,
                "not written: the ConfigMap was written by a newer leader ({writer})"
            ),
        }
    }
}

/// May `me` write now over a ConfigMap whose [`WRITER_ANNOTATION`] is `written_by`?
/// Refused when our lease may have expired, or when a different holder with a later
/// term wrote it (a resumed stale leader must not overwrite its successor).
pub fn may_write(me: &Leadership, written_by: Option<&str>, now: Instant) -> Result<(), Fenced> {
    if let Some(until) = me.valid_until
        && now >= until
    {
        return Err(Fenced::LeaseMayHaveExpired {
            overdue: now - until,
        });
    }
    let (Some(mine), Some(theirs)) = (me.term.as_deref(), written_by) else {
        return Ok(());
    };
    let Some((writer, their_term)) = theirs.split_once(' ') else {
        return Ok(());
    };
    if writer == me.identity {
        return Ok(());
    }
    let parse = |t: &str| t.parse::<k8s_openapi::jiff::Timestamp>().ok();
    match (parse(mine), parse(their_term)) {
        (Some(m), Some(t)) if t > m => Err(Fenced::NewerWriter {
            writer: theirs.to_string(),
        }),
        _ => Ok(()),
    }
}

/// What the lease loop does next, given the Lease as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStep {
    /// Ours: renew it.
    Renew,
    /// Free, released or expired: take it (a new term).
    Acquire,
    /// Held by another replica and not expired: follow.
    Follow,
}

/// Tracks another holder's Lease record as this replica observed it. Expiry is judged on
/// our monotonic clock from when the record last changed (as client-go does), never by
/// comparing the holder's wall-clock timestamps with ours.
#[derive(Debug, Clone, Default)]
pub struct LeaseObserver {
    seen: Option<(String, Instant)>,
}

impl LeaseObserver {
    /// `holder`/`renew_time`: the Lease's spec; `duration`: its leaseDurationSeconds.
    pub fn step(
        &mut self,
        me: &str,
        holder: Option<&str>,
        renew_time: Option<&str>,
        duration: Duration,
        now: Instant,
    ) -> LeaseStep {
        let holder = holder.filter(|h| !h.is_empty());
        match holder {
            None => LeaseStep::Acquire,
            Some(h) if h == me => LeaseStep::Renew,
            Some(h) => {
                let record = format!("{h} {}", renew_time.unwrap_or_default());
                let since = match &self.seen {
                    Some((r, at)) if *r == record => *at,
                    _ => {
                        self.seen = Some((record, now));
                        now
                    }
                };
                if now.duration_since(since) >= duration {
                    LeaseStep::Acquire
                } else {
                    LeaseStep::Follow
                }
            }
        }
    }
}

/// How long after the start of a successful renewal a leader may still write: the lease
/// duration minus a margin (at least a quarter of it, at least `lease - renew_deadline`).
pub fn write_window(lease: Duration, renew_deadline: Duration) -> Duration {
    let margin = lease.saturating_sub(renew_deadline).max(lease / 4);
    lease.saturating_sub(margin)
}

/// Why this replica is not ready (None: ready).
pub fn not_ready(
    synced: bool,
    stale: Option<&str>,
    detector_load_errors: &[String],
) -> Option<String> {
    if !synced {
        return Some("waiting for the initial Service and ConfigMap lists".into());
    }
    if !detector_load_errors.is_empty() {
        return Some(format!(
            "{} bundled detector(s) failed to load: {}",
            detector_load_errors.len(),
            detector_load_errors.join("; ")
        ));
    }
    if let Some(why) = stale {
        return Some(format!("the published configuration is stale: {why}"));
    }
    None
}

/// The loop must make progress within this bound, or liveness fails (it also ticks
/// every second when idle; writes and Events are bounded by timeouts well below it).
pub const LIVENESS_BOUND: Duration = Duration::from_secs(60);

/// Why this replica is not alive (None: alive): the main loop made no progress since
/// `last_progress` for longer than `bound`.
pub fn not_alive(last_progress: Option<Instant>, now: Instant, bound: Duration) -> Option<String> {
    let last = last_progress?;
    let idle = now.saturating_duration_since(last);
    (idle > bound).then(|| {
        format!(
            "the main loop made no progress for {} s (bound {} s)",
            idle.as_secs(),
            bound.as_secs()
        )
    })
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
        match decide(None, &generated("t"), None) {
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
        assert_eq!(
            decide(Some(&current), &generated("t"), None),
            Action::Nothing
        );
        // A hand-edited generated key is restored, and only that key is written.
        let mut edited = current.clone();
        edited.insert(TOOLSETS_KEY.into(), "hand edit".into());
        assert_eq!(
            decide(Some(&edited), &generated("t"), None),
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
        match decide(Some(&current), &generated("t"), None) {
            Action::Update(d) => {
                assert_eq!(d.len(), 1);
                assert_eq!(d[OVERRIDES_KEY], OVERRIDES_EXAMPLE);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deleted_configmap_is_recreated_with_the_last_known_overrides() {
        let mine = "toolsets:\n  grafana/dashboards:\n    enabled: false\n";
        match decide(None, &generated("t"), Some(mine)) {
            Action::Create(data) => {
                assert_eq!(data[OVERRIDES_KEY], mine);
                assert_eq!(data[TOOLSETS_KEY], "t");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversize_is_refused_naming_the_largest_keys_and_toolsets() {
        let small = BTreeMap::from([("a".to_string(), "x".repeat(10))]);
        assert_eq!(check_size(&small, &[], 100), Ok(11));
        let big = BTreeMap::from([
            (TOOLSETS_KEY.to_string(), "t".repeat(300)),
            (DISCOVERY_KEY.to_string(), "d".repeat(700)),
            (OVERRIDES_KEY.to_string(), "o".repeat(10)),
        ]);
        let sizes = vec![
            ("prometheus/metrics".to_string(), 20),
            ("custom-huge".to_string(), 250),
            ("grafana/loki".to_string(), 5),
            ("kubernetes/core".to_string(), 1),
        ];
        let err = check_size(&big, &sizes, 1000).unwrap_err();
        assert_eq!(
            err.total,
            1010 + TOOLSETS_KEY.len() + DISCOVERY_KEY.len() + OVERRIDES_KEY.len()
        );
        assert_eq!(err.keys[0].0, DISCOVERY_KEY);
        assert_eq!(err.keys[1].0, TOOLSETS_KEY);
        assert_eq!(
            err.toolsets
                .iter()
                .map(|t| t.0.as_str())
                .collect::<Vec<_>>(),
            ["custom-huge", "prometheus/metrics", "grafana/loki"]
        );
        let msg = err.to_string();
        assert!(msg.contains("discovery.json 714 bytes (67%)"), "{msg}");
        assert!(msg.contains("custom-huge 250 bytes"), "{msg}");
        assert!(msg.contains("last good content is kept"), "{msg}");
    }

    #[test]
    fn data_after_an_update_keeps_other_keys() {
        let current = BTreeMap::from([
            ("notes".to_string(), "n".repeat(50)),
            (TOOLSETS_KEY.to_string(), "old".to_string()),
        ]);
        let action = Action::Update(BTreeMap::from([(
            TOOLSETS_KEY.to_string(),
            "new".to_string(),
        )]));
        let after = data_after(Some(&current), &action).unwrap();
        assert_eq!(after["notes"].len(), 50);
        assert_eq!(after[TOOLSETS_KEY], "new");
        assert_eq!(data_after(Some(&current), &Action::Nothing), None);
    }

    fn term(identity: &str, acquired: &str, valid_until: Option<Instant>) -> Leadership {
        Leadership {
            identity: identity.into(),
            term: Some(acquired.into()),
            valid_until,
        }
    }

    #[test]
    fn a_leader_past_its_safe_period_may_not_write() {
        let t0 = Instant::now();
        let me = term(
            "a",
            "2025-01-01T00:00:00Z",
            Some(t0 + Duration::from_secs(2)),
        );
        assert_eq!(may_write(&me, None, t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(
            may_write(&me, None, t0 + Duration::from_secs(3)),
            Err(Fenced::LeaseMayHaveExpired {
                overdue: Duration::from_secs(1)
            })
        );
        // Without leader election there is no expiry.
        assert_eq!(
            may_write(&Leadership::sole("x"), Some("b 2030-01-01T00:00:00Z"), t0),
            Ok(())
        );
    }

    #[test]
    fn a_stale_leader_never_overwrites_a_newer_term() {
        let t0 = Instant::now();
        let old = term(
            "a",
            "2025-01-01T00:00:00Z",
            Some(t0 + Duration::from_secs(9)),
        );
        // Written by a newer holder: refused.
        assert_eq!(
            may_write(&old, Some("b 2025-01-01T00:00:08.5Z"), t0),
            Err(Fenced::NewerWriter {
                writer: "b 2025-01-01T00:00:08.5Z".into()
            })
        );
        // By ourselves, an older holder, or an unannotated object: allowed.
        assert_eq!(may_write(&old, Some("a 2024-01-01T00:00:00Z"), t0), Ok(()));
        assert_eq!(may_write(&old, Some("b 2024-12-31T23:59:00Z"), t0), Ok(()));
        assert_eq!(may_write(&old, None, t0), Ok(()));
        assert_eq!(old.annotation(), "a 2025-01-01T00:00:00Z");
    }

    #[test]
    fn another_holders_lease_expires_on_our_clock_from_its_last_change() {
        let t0 = Instant::now();
        let d = Duration::from_secs(4);
        let mut o = LeaseObserver::default();
        assert_eq!(o.step("a", None, None, d, t0), LeaseStep::Acquire);
        assert_eq!(o.step("a", Some(""), None, d, t0), LeaseStep::Acquire);
        assert_eq!(o.step("a", Some("a"), Some("r1"), d, t0), LeaseStep::Renew);
        assert_eq!(o.step("a", Some("b"), Some("r1"), d, t0), LeaseStep::Follow);
        let s3 = t0 + Duration::from_secs(3);
        assert_eq!(o.step("a", Some("b"), Some("r1"), d, s3), LeaseStep::Follow);
        // Renewed at 3 s: the clock restarts.
        assert_eq!(o.step("a", Some("b"), Some("r2"), d, s3), LeaseStep::Follow);
        let s6 = t0 + Duration::from_secs(6);
        assert_eq!(o.step("a", Some("b"), Some("r2"), d, s6), LeaseStep::Follow);
        let s7 = t0 + Duration::from_secs(7);
        assert_eq!(
            o.step("a", Some("b"), Some("r2"), d, s7),
            LeaseStep::Acquire
        );
    }

    #[test]
    fn write_window_leaves_a_margin() {
        let s = Duration::from_secs;
        assert_eq!(write_window(s(15), s(10)), s(10));
        assert_eq!(write_window(s(4), s(4)), s(3));
        assert_eq!(write_window(s(4), s(2)), s(2));
    }

    #[test]
    fn readiness_needs_sync_all_bundled_detectors_and_a_fresh_output() {
        assert!(not_ready(false, None, &[]).unwrap().contains("initial"));
        assert_eq!(not_ready(true, None, &[]), None);
        let why = not_ready(true, None, &["bundled detector `loki`: bad".into()]).unwrap();
        assert!(
            why.contains("1 bundled detector(s) failed to load"),
            "{why}"
        );
        assert!(why.contains("loki"), "{why}");
        let why = not_ready(true, Some("too large"), &[]).unwrap();
        assert!(why.contains("stale: too large"), "{why}");
    }

    #[test]
    fn liveness_fails_only_when_the_loop_is_stuck_beyond_the_bound() {
        let t0 = Instant::now();
        let b = Duration::from_secs(60);
        assert_eq!(not_alive(None, t0, b), None);
        assert_eq!(not_alive(Some(t0), t0 + Duration::from_secs(59), b), None);
        let why = not_alive(Some(t0), t0 + Duration::from_secs(61), b).unwrap();
        assert!(why.contains("no progress for 61 s"), "{why}");
    }
}
