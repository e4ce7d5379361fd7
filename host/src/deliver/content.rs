//! The delivery's pure parts: what content may be delivered, the retry backoff, the
//! atomic file write and the classification of HolmesGPT's answers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::API_KEY_ENV;

/// Why `content` must not be delivered (None: deliverable). Checks what HolmesGPT needs to load
/// the file at all: YAML, a top-level mapping whose `toolsets` is a mapping of mappings (a list
/// is HolmesGPT's rejected "old format"), `mcp_servers` a mapping when present.
pub fn invalid_reason(content: &str) -> Option<String> {
    let doc: serde_yaml::Value = match serde_yaml::from_str(content) {
        Ok(d) => d,
        Err(e) => return Some(format!("not YAML: {e}")),
    };
    let Some(map) = doc.as_mapping() else {
        return Some("not a mapping at the top".into());
    };
    let Some(toolsets) = map.get("toolsets") else {
        return Some("no `toolsets:` key".into());
    };
    let Some(toolsets) = toolsets.as_mapping() else {
        return Some("`toolsets:` is not a map (name -> entry)".into());
    };
    if toolsets.is_empty() {
        return Some("`toolsets:` is empty".into());
    }
    for (name, entry) in toolsets {
        if !entry.is_mapping() {
            let name = name.as_str().unwrap_or("?");
            return Some(format!("toolset {name:?} is not a map"));
        }
    }
    if let Some(mcp) = map.get("mcp_servers")
        && !mcp.is_mapping()
        && !mcp.is_null()
    {
        return Some("`mcp_servers:` is not a map".into());
    }
    None
}

/// Exponential backoff with ±25 % jitter, capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9)
            ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            initial,
            max: max.max(initial),
            next: initial,
            seed: seed | 1,
        }
    }

    /// The next delay: the current step ±25 %, never above the cap; the step then doubles.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // xorshift64*: jitter only, no security use.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let unit = (self.seed >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let factor = 0.75 + 0.5 * unit;
        base.mul_f64(factor).min(self.max)
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Writes `content` to `path` so that a reader sees the old file or the new one, never a
/// partial one: a temp file in the same directory, fsync, rename over `path`, fsync the dir.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "toolsets.yaml".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        f.write_all(content)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Why a delivery attempt failed: the metric label and the detail for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: &'static str,
    pub detail: String,
}

/// Failure reasons (the `reason` label of `toolset_delivery_failures_total`).
pub use crate::metrics::DELIVERY_FAILURE_REASONS as REASONS;

/// Classifies a reload answer.
pub fn classify(status: u16, body: &str) -> Result<(), Failure> {
    let detail: String = body.chars().take(500).collect();
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(Failure {
            reason: "unauthorized",
            detail: format!("HTTP {status} (check {API_KEY_ENV} / --api-key-file): {detail}"),
        }),
        500..=599 => Err(Failure {
            reason: "reload_error",
            detail: format!("HTTP {status}: {detail}"),
        }),
        _ => Err(Failure {
            reason: "unexpected_status",
            detail: format!("HTTP {status}: {detail}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_refuses_what_holmesgpt_cannot_load() {
        assert_eq!(
            invalid_reason("toolsets:\n  kubernetes/core: {enabled: true}\n"),
            None
        );
        assert_eq!(
            invalid_reason("toolsets:\n  a: {enabled: true}\nmcp_servers: {}\n"),
            None
        );
        for (bad, why) in [
            ("toolsets: [a]\n", "not a map"),
            ("toolsets:\n  a: {enabled: true\n", "not YAML"),
            ("mcp_servers: {}\n", "no `toolsets:`"),
            ("- a\n", "top"),
            ("toolsets: {}\n", "empty"),
            ("toolsets:\n  a: yes\n", "not a map"),
            ("toolsets:\n  a: {}\nmcp_servers: [x]\n", "mcp_servers"),
        ] {
            let r = invalid_reason(bad).unwrap_or_else(|| panic!("accepted {bad:?}"));
            assert!(r.contains(why), "{bad:?}: {r}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let steps = [100u64, 200, 400, 800, 1600, 2000, 2000, 2000];
        for base in steps {
            let d = b.next_delay().as_millis() as u64;
            assert!(
                d >= base * 3 / 4 && d <= (base * 5 / 4).min(2000),
                "{d} vs {base}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
        // Jitter actually varies.
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let ds: std::collections::BTreeSet<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(ds.len() > 5, "{ds:?}");
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("toolsets.yaml");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A directory that does not exist: an error, nothing written.
        assert!(write_atomic(&dir.path().join("no/such.yaml"), b"x").is_err());
    }

    #[test]
    fn reload_answers_are_classified() {
        assert!(classify(200, "{}").is_ok());
        assert_eq!(classify(401, "").unwrap_err().reason, "unauthorized");
        let f = classify(500, r#"{"detail":"boom"}"#).unwrap_err();
        assert_eq!(f.reason, "reload_error");
        assert!(f.detail.contains("boom"));
        assert_eq!(classify(404, "").unwrap_err().reason, "unexpected_status");
    }
}
