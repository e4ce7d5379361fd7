//! Detector declarations: the `detectors:` file an operator writes to add, pin,
//! configure, limit, grant, replace or disable detectors (README, "Declaring detectors").
//! Pure: text in, [`Declarations`] or an error naming the entry and the field out.
//!
//! ```yaml
//! detectors:
//!   - name: kubernaut-context          # the detector's own metadata name
//!     source: /detectors/kubernaut.wasm # a file (relative: to this file's directory),
//!                                       # or `bundled` for the bundled detector `name`
//!     sha256: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
//!     settings: {port: 8091}            # handed to the detector's `configure`
//!     limits: {call_deadline: 100ms, memory: 16Mi, max_output_bytes: 256Ki}
//!     fail_strategy: skip               # skip | fail (readiness false while not loaded)
//!     wasi: true                        # a Python/JavaScript runtime: deny-by-default WASI
//!                                       # (files only; never for `bundled`; default false)
//!     grants:
//!       toolsets: [kubernaut/context]   # what it may emit (default: what it declares)
//!       other_services: false           # endpoints only on the Service it was given
//!       allow_commands: false           # custom toolsets that run commands
//!   - name: grafana
//!     source: bundled
//!     enabled: false                    # disable (or replace) a bundled detector
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dynamic_toolset_core::gate::DetectorGrant;
use dynamic_toolset_runtime::{DetectorSource, Limits, Spec};
use serde::Deserialize;

/// What happens while a declared detector is not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailStrategy {
    /// Discovery goes on without it.
    #[default]
    Skip,
    /// Readiness is false until it loads.
    Fail,
}

/// One checked declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The detector's name (its `metadata().name` must match).
    pub name: String,
    pub spec: Spec,
    pub enabled: bool,
    pub fail_strategy: FailStrategy,
    /// None: the baseline (bundled detectors declared for settings or limits).
    pub grant: Option<DetectorGrant>,
}

/// Every declaration of a file, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Declarations {
    pub detectors: Vec<Declared>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    detectors: Vec<Raw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    source: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    allow_unpinned: bool,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    settings: Option<serde_yaml::Value>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    fail_strategy: FailStrategy,
    #[serde(default)]
    grants: Option<RawGrants>,
    #[serde(default)]
    wasi: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    call_deadline: Option<String>,
    memory: Option<serde_yaml::Value>,
    max_output_bytes: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    toolsets: Option<Vec<String>>,
    #[serde(default)]
    other_services: bool,
    #[serde(default)]
    allow_commands: bool,
}

impl From<RawGrants> for DetectorGrant {
    fn from(g: RawGrants) -> Self {
        DetectorGrant {
            toolsets: g.toolsets.map(|t| t.into_iter().collect::<BTreeSet<_>>()),
            other_services: g.other_services,
            allow_commands: g.allow_commands,
        }
    }
}

/// A `grants:` map as a declaration writes it (YAML, flow or block style), e.g.
/// `{toolsets: [kubernaut/context], allow_commands: true}`; the error names the field.
pub fn parse_grants(text: &str) -> Result<DetectorGrant, String> {
    serde_yaml::from_str::<RawGrants>(text)
        .map(DetectorGrant::from)
        .map_err(|e| e.to_string())
}

/// Why a declarations file is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeclareError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: detectors[{index}] ({name}).{field}: {message}")]
    Field {
        file: String,
        index: usize,
        name: String,
        field: &'static str,
        message: String,
    },
}

/// Longest call deadline a declaration may set.
const MAX_DEADLINE: Duration = Duration::from_secs(10);
/// Most memory a declaration may give one detector.
const MAX_MEMORY: usize = 1 << 30;

/// Parses and checks a declarations file. `file` names it in errors; relative `source`
/// paths are resolved against `base_dir`.
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Declarations, DeclareError> {
    let raw: File = serde_yaml::from_str(text).map_err(|e| DeclareError::Syntax {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let mut detectors: Vec<Declared> = Vec::with_capacity(raw.detectors.len());
    for (index, r) in raw.detectors.into_iter().enumerate() {
        let err = |field: &'static str, message: String| DeclareError::Field {
            file: file.to_string(),
            index,
            name: r.name.clone(),
            field,
            message,
        };
        if r.name.is_empty()
            || r.name.len() > 64
            || !r
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(err(
                "name",
                "must be 1-64 characters of a-z, 0-9, '-' or '_' (the detector's metadata name)"
                    .into(),
            ));
        }
        if detectors.iter().any(|d| d.name == r.name) {
            return Err(err("name", "is declared twice".into()));
        }
        let origin = if r.source == "bundled" {
            if !dynamic_toolset_runtime::bundled::BUNDLED
                .iter()
                .any(|(n, _)| *n == r.name)
            {
                let known: Vec<&str> = dynamic_toolset_runtime::bundled::BUNDLED
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                return Err(err(
                    "source",
                    format!(
                        "`bundled`, but no bundled detector is named {:?} (bundled: {})",
                        r.name,
                        known.join(", ")
                    ),
                ));
            }
            if r.wasi {
                return Err(err(
                    "wasi",
                    "is only for detector files (a Python or JavaScript runtime); bundled \
                     detectors never get WASI"
                        .into(),
                ));
            }
            DetectorSource::Bundled(r.name.clone())
        } else if r.source.is_empty() {
            return Err(err("source", "is empty (a file path, or `bundled`)".into()));
        } else {
            let path = PathBuf::from(&r.source);
            DetectorSource::File(if path.is_absolute() {
                path
            } else {
                base_dir.join(path)
            })
        };
        let sha256 = match (&r.sha256, &origin) {
            (Some(h), _) => {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err("sha256", "must be 64 hexadecimal digits".into()));
                }
                Some(h.to_ascii_lowercase())
            }
            (None, DetectorSource::File(_)) if !r.allow_unpinned => {
                return Err(err(
                    "sha256",
                    "is required for a file (pin the component: `sha256sum FILE`), or set \
                     `allow_unpinned: true` to load whatever the file holds"
                        .into(),
                ));
            }
            (None, _) => None,
        };
        let settings = match r.settings {
            None | Some(serde_yaml::Value::Null) => serde_json::Map::new(),
            Some(v) => match serde_json::to_value(&v) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) => return Err(err("settings", "must be a map".into())),
                Err(e) => return Err(err("settings", format!("cannot be read as JSON: {e}"))),
            },
        };
        let limits = Limits {
            call_deadline: match &r.limits.call_deadline {
                None => None,
                Some(t) => match humantime::parse_duration(t) {
                    Ok(d) if d > Duration::ZERO && d <= MAX_DEADLINE => Some(d),
                    Ok(_) => {
                        return Err(err(
                            "limits.call_deadline",
                            format!("must be above 0 and at most {MAX_DEADLINE:?}"),
                        ));
                    }
                    Err(e) => return Err(err("limits.call_deadline", format!("{t:?}: {e}"))),
                },
            },
            memory_limit_bytes: match &r.limits.memory {
                None => None,
                Some(v) => Some(
                    bytes(v)
                        .filter(|b| (1 << 20..=MAX_MEMORY).contains(b))
                        .ok_or_else(|| {
                            err(
                                "limits.memory",
                                "must be a size from 1Mi to 1Gi (e.g. 16Mi, or bytes)".into(),
                            )
                        })?,
                ),
            },
            max_output_bytes: match &r.limits.max_output_bytes {
                None => None,
                Some(v) => Some(
                    bytes(v)
                        .filter(|b| (1 << 10..=16 << 20).contains(b))
                        .ok_or_else(|| {
                            err(
                                "limits.max_output_bytes",
                                "must be a size from 1Ki to 16Mi (e.g. 256Ki, or bytes)".into(),
                            )
                        })?,
                ),
            },
        };
        let grant = match (r.grants, &origin) {
            (Some(g), _) => Some(DetectorGrant::from(g)),
            // A file detector is held to its Service and to what it declares.
            (None, DetectorSource::File(_)) => Some(DetectorGrant::default()),
            (None, DetectorSource::Bundled(_)) => None,
        };
        detectors.push(Declared {
            name: r.name.clone(),
            spec: Spec {
                origin,
                sha256,
                settings,
                limits,
                name: Some(r.name.clone()),
                wasi: r.wasi,
            },
            enabled: r.enabled,
            fail_strategy: r.fail_strategy,
            grant,
        });
    }
    Ok(Declarations { detectors })
}

/// A size: an integer (bytes) or text with a Ki/Mi/Gi suffix.
fn bytes(v: &serde_yaml::Value) -> Option<usize> {
    if let Some(n) = v.as_u64() {
        return usize::try_from(n).ok();
    }
    let t = v.as_str()?.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: usize = num.parse().ok()?;
    let mult = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl Declarations {
    /// The specs to load: every bundled detector not disabled (with its declaration's
    /// settings and limits when declared), then the declared files in file order, then
    /// the `*.wasm` of `dir_files` that no declaration names (unpinned, the simple case).
    pub fn specs(&self, dir_files: &[PathBuf]) -> Vec<Spec> {
        let mut specs = Vec::new();
        for (name, _) in dynamic_toolset_runtime::bundled::BUNDLED {
            let declared = self
                .detectors
                .iter()
                .find(|d| matches!(&d.spec.origin, DetectorSource::Bundled(n) if n == name));
            match declared {
                Some(d) if !d.enabled => {}
                Some(d) => specs.push(d.spec.clone()),
                // A bundled name taken over by a declared file: the file replaces it.
                None if self.detectors.iter().any(|d| {
                    d.enabled && d.name == *name && matches!(d.spec.origin, DetectorSource::File(_))
                }) => {}
                None => specs.push(Spec::bundled(name)),
            }
        }
        for d in &self.detectors {
            if d.enabled && matches!(d.spec.origin, DetectorSource::File(_)) {
                specs.push(d.spec.clone());
            }
        }
        for path in dir_files {
            let declared = self
                .detectors
                .iter()
                .any(|d| matches!(&d.spec.origin, DetectorSource::File(p) if p == path));
            if !declared {
                specs.push(Spec {
                    origin: DetectorSource::File(path.clone()),
                    sha256: None,
                    settings: serde_json::Map::new(),
                    limits: Limits::default(),
                    name: None,
                    wasi: false,
                });
            }
        }
        specs
    }

    /// The declaration of a detector, by name.
    pub fn get(&self, name: &str) -> Option<&Declared> {
        self.detectors.iter().find(|d| d.name == name)
    }

    /// The files declarations name (watched for changes).
    pub fn files(&self) -> Vec<PathBuf> {
        self.detectors
            .iter()
            .filter(|d| d.enabled)
            .filter_map(|d| match &d.spec.origin {
                DetectorSource::File(p) => Some(p.clone()),
                DetectorSource::Bundled(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PIN: &str = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b";

    fn parse_ok(text: &str) -> Declarations {
        parse(text, "detectors.yaml", Path::new("/etc/dt")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(text, "detectors.yaml", Path::new("/etc/dt"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_full_declaration_reads_as_written() {
        let d = parse_ok(&format!(
            "detectors:
  - name: kubernaut-context
    source: plugins/k.wasm
    sha256: {PIN}
    settings: {{port: 8091, paths: [a, b]}}
    limits: {{call_deadline: 250ms, memory: 32Mi, max_output_bytes: 64Ki}}
    fail_strategy: fail
    grants: {{toolsets: [kubernaut/context], allow_commands: true}}
  - name: grafana
    source: bundled
    enabled: false
"
        ));
        let k = d.get("kubernaut-context").unwrap();
        assert_eq!(
            k.spec.origin,
            DetectorSource::File(PathBuf::from("/etc/dt/plugins/k.wasm"))
        );
        assert_eq!(k.spec.sha256.as_deref(), Some(PIN));
        assert_eq!(k.spec.settings["port"], serde_json::json!(8091));
        assert_eq!(
            k.spec.limits.call_deadline,
            Some(Duration::from_millis(250))
        );
        assert_eq!(k.spec.limits.memory_limit_bytes, Some(32 << 20));
        assert_eq!(k.spec.limits.max_output_bytes, Some(64 << 10));
        assert_eq!(k.fail_strategy, FailStrategy::Fail);
        let g = k.grant.as_ref().unwrap();
        assert!(g.allow_commands && !g.other_services);
        assert_eq!(
            g.toolsets.as_ref().unwrap().iter().collect::<Vec<_>>(),
            vec!["kubernaut/context"]
        );
        let specs = d.specs(&[]);
        assert!(
            !specs
                .iter()
                .any(|s| s.origin == DetectorSource::Bundled("grafana".into()))
        );
        assert!(
            specs
                .iter()
                .any(|s| s.origin == DetectorSource::Bundled("prometheus".into()))
        );
        assert_eq!(
            specs.last().unwrap().origin,
            DetectorSource::File(PathBuf::from("/etc/dt/plugins/k.wasm"))
        );
    }

    #[test]
    fn wasi_is_off_by_default_on_for_files_and_refused_for_bundled() {
        let d = parse_ok(&format!(
            "detectors:
  - name: kubernaut-context
    source: k.wasm
    sha256: {PIN}
    wasi: true
  - name: rusty
    source: r.wasm
    sha256: {PIN}
"
        ));
        assert!(d.get("kubernaut-context").unwrap().spec.wasi);
        assert!(!d.get("rusty").unwrap().spec.wasi);
        assert!(
            d.specs(&[PathBuf::from("/etc/dt/loose.wasm")])
                .iter()
                .filter(|s| s.wasi)
                .all(|s| s.name.as_deref() == Some("kubernaut-context"))
        );
        let e =
            parse_err("detectors:\n  - name: prometheus\n    source: bundled\n    wasi: true\n");
        assert!(
            e.starts_with(
                "detectors.yaml: detectors[0] (prometheus).wasi: is only for detector files"
            ),
            "{e}"
        );
        let e = parse_err(&format!(
            "detectors:\n  - name: x\n    source: x.wasm\n    sha256: {PIN}\n    wasi: yes please\n"
        ));
        assert!(e.contains("wasi"), "{e}");
    }

    #[test]
    fn a_file_needs_a_pin_unless_unpinned_is_allowed() {
        let e = parse_err("detectors:\n  - name: x\n    source: x.wasm\n");
        assert!(
            e.starts_with("detectors.yaml: detectors[0] (x).sha256: is required for a file"),
            "{e}"
        );
        let d = parse_ok("detectors:\n  - name: x\n    source: x.wasm\n    allow_unpinned: true\n");
        assert_eq!(d.detectors[0].spec.sha256, None);
        // Unpinned file detectors still get the strict default grant.
        assert_eq!(d.detectors[0].grant, Some(DetectorGrant::default()));
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let e = parse_err(&format!(
            "detectors:\n  - name: ok\n    source: bundled\n  - name: y\n    source: y.wasm\n    sha256: {PIN}\n    limits: {{memory: 3Ti}}\n"
        ));
        assert!(e.contains("no bundled detector is named \"ok\""), "{e}");
        let e = parse_err(&format!(
            "detectors:\n  - name: y\n    source: y.wasm\n    sha256: {PIN}\n    limits: {{memory: 3Ti}}\n"
        ));
        assert_eq!(
            e,
            "detectors.yaml: detectors[0] (y).limits.memory: must be a size from 1Mi to 1Gi (e.g. 16Mi, or bytes)"
        );
        let e = parse_err("detectors:\n  - name: y\n    source: y.wasm\n    sha265: abc\n");
        assert!(e.contains("unknown field `sha265`"), "{e}");
        let e = parse_err("detectors:\n  - name: Y!\n    source: bundled\n");
        assert!(e.contains("detectors[0] (Y!).name"), "{e}");
        let e = parse_err(
            "detectors:\n  - name: prometheus\n    source: bundled\n  - name: prometheus\n    source: bundled\n",
        );
        assert!(
            e.contains("detectors[1] (prometheus).name: is declared twice"),
            "{e}"
        );
        let e = parse_err(&format!(
            "detectors:\n  - name: y\n    source: y.wasm\n    sha256: {PIN}\n    settings: [1]\n"
        ));
        assert!(e.contains("(y).settings: must be a map"), "{e}");
        let e = parse_err(&format!(
            "detectors:\n  - name: y\n    source: y.wasm\n    sha256: {PIN}\n    limits: {{call_deadline: 1h}}\n"
        ));
        assert!(
            e.contains("(y).limits.call_deadline: must be above 0"),
            "{e}"
        );
    }

    #[test]
    fn a_declared_file_can_replace_a_bundled_detector_and_dir_files_fill_in() {
        let d = parse_ok(&format!(
            "detectors:\n  - name: prometheus\n    source: /p/prom.wasm\n    sha256: {PIN}\n"
        ));
        let specs = d.specs(&[
            PathBuf::from("/p/prom.wasm"),
            PathBuf::from("/p/other.wasm"),
        ]);
        assert!(
            !specs
                .iter()
                .any(|s| s.origin == DetectorSource::Bundled("prometheus".into()))
        );
        let files: Vec<_> = specs
            .iter()
            .filter_map(|s| match &s.origin {
                DetectorSource::File(p) => Some(p.to_str().unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(files, vec!["/p/prom.wasm", "/p/other.wasm"]);
    }
}
