//! Sandboxed detector runtime.
//!
//! Detectors are WebAssembly components implementing `wit/detector.wit`
//! (`dynamic-toolset:detector@1.x`). A [`DetectorSet`] loads the bundled detectors
//! (embedded in the binary by `build.rs`) plus any `*.wasm` plugin, and runs every
//! detector over a Service snapshot.
//!
//! Start-up: `build.rs` also precompiles the bundled detectors for the binary's target with
//! the runtime's engine configuration (`src/engine_config.rs`), so loading them is a
//! deserialization ([`CodeOrigin::Embedded`]); code that does not fit this engine or CPU is
//! compiled instead. Plugin files are compiled, or read from [`RuntimeConfig::cache_dir`].
//!
//! Sandbox (see `sandbox.rs`):
//! - one wasmtime `Engine` per set, with epoch interruption and a ticker thread; a
//!   `Component` and an `InstancePre` per detector;
//! - the linker provides only the contract's `log` import; every other import (WASI) is
//!   defined as a trap, so detectors have no clock, files, network or environment;
//! - except for a declared detector granted `wasi: true` ([`Spec::wasi`]; never a bundled
//!   one), written in a language whose runtime imports WASI (Python, JavaScript): it gets
//!   a deny-by-default WASI (`wasi.rs`: no files, environment, arguments or network;
//!   stdout/stderr into the log; clocks and random), in the same store, under the same
//!   limits;
//! - each detector keeps one `Store` + instance, reused across calls, with a per-call epoch
//!   deadline ([`RuntimeConfig::call_deadline`]) and a memory cap
//!   ([`RuntimeConfig::memory_limit_bytes`]);
//! - after any trap the instance is discarded and re-created from the `InstancePre`; the
//!   failure becomes that detector's [`Verdict`], a [`DetectorFailure`] of kind
//!   [`FailureKind::Timeout`], [`FailureKind::OutOfMemory`] or [`FailureKind::Trap`], while
//!   other detectors' verdicts stand;
//! - answers are checked ([`RuntimeConfig::max_fragments`],
//!   [`RuntimeConfig::max_output_bytes`], JSON-object `config`, http(s) endpoint, non-empty
//!   toolset/backend/instance) or become a [`FailureKind::InvalidOutput`] failure.
//!
//! Name clashes: detectors load in order (bundled, then plugins sorted by file name) and
//! the first to claim a name keeps it; a later one is refused with an [`Error::Load`]
//! naming both. A plugin therefore never shadows a bundled detector.

mod bindings;
mod config;
mod convert;
mod error;
mod exports;
mod load;
mod sandbox;
mod since_v1_1;
mod since_v1_2;
mod wasi;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dynamic_toolset_core::{DetectorInfo, ServiceDetections, ServiceSnapshot, Verdict};
use serde::Serialize;

pub use config::RuntimeConfig;
pub use exports::Capabilities;

/// The WIT contract version this host implements (`wit/detector.wit`'s package version).
pub const WIT_VERSION: &str = "1.2.0";
pub use dynamic_toolset_core::{DetectorFailure, FailureKind};
pub use error::{Error, Result};

/// Detector components embedded in the binary.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// Where a detector came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum DetectorSource {
    /// Embedded in the binary (the build's name for it).
    Bundled(String),
    /// A plugin file.
    File(PathBuf),
}

impl fmt::Display for DetectorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectorSource::Bundled(name) => write!(f, "bundled detector `{name}`"),
            DetectorSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A loaded detector's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedInfo {
    pub info: DetectorInfo,
    pub source: DetectorSource,
    /// sha256 of the component bytes, hex.
    pub sha256: String,
    /// The optional 1.1 exports it has.
    #[serde(skip)]
    pub capabilities: Capabilities,
    /// Where its machine code came from.
    #[serde(skip)]
    pub code: CodeOrigin,
}

/// Where a loaded detector's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeOrigin {
    /// Precompiled into the binary at build time (bundled detectors), deserialized.
    Embedded,
    /// The on-disk cache ([`RuntimeConfig::cache_dir`]), deserialized.
    Cache,
    /// Compiled at load.
    Compiled,
}

/// Failures of one detector, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    pub timeout: u64,
    pub out_of_memory: u64,
    pub trap: u64,
    pub invalid_output: u64,
}

impl FailureCounts {
    pub fn total(&self) -> u64 {
        self.timeout + self.out_of_memory + self.trap + self.invalid_output
    }

    fn count(&mut self, kind: FailureKind) {
        match kind {
            FailureKind::Timeout => self.timeout += 1,
            FailureKind::OutOfMemory => self.out_of_memory += 1,
            FailureKind::Trap => self.trap += 1,
            FailureKind::InvalidOutput => self.invalid_output += 1,
        }
    }
}

/// Counters of one detector since its set was loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DetectorStats {
    pub detector: String,
    pub calls: u64,
    pub matched: u64,
    pub declined: u64,
    pub unrelated: u64,
    pub failures: FailureCounts,
    /// Instances discarded after a failure and re-created.
    pub reinstantiations: u64,
    pub total_time: Duration,
    pub max_time: Duration,
}

struct Detector {
    info: LoadedInfo,
    limits: convert::OutputLimits,
    sandbox: sandbox::Sandbox,
    stats: DetectorStats,
}

impl From<load::Loaded> for Detector {
    fn from(l: load::Loaded) -> Self {
        Detector {
            stats: DetectorStats {
                detector: l.info.info.name.clone(),
                ..DetectorStats::default()
            },
            info: l.info,
            limits: l.limits,
            sandbox: l.sandbox,
        }
    }
}

/// Per-detector sandbox limits a declaration sets; `None` keeps the set's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub call_deadline: Option<Duration>,
    pub memory_limit_bytes: Option<usize>,
    pub max_output_bytes: Option<usize>,
}

impl Limits {
    pub(crate) fn apply(&self, base: &RuntimeConfig) -> RuntimeConfig {
        RuntimeConfig {
            call_deadline: self.call_deadline.unwrap_or(base.call_deadline),
            memory_limit_bytes: self.memory_limit_bytes.unwrap_or(base.memory_limit_bytes),
            max_output_bytes: self.max_output_bytes.unwrap_or(base.max_output_bytes),
            ..base.clone()
        }
    }
}

/// One detector to load, as an operator declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// A bundled detector (by its build name) or a component file.
    pub origin: DetectorSource,
    /// sha256 (hex) the component must have; a mismatch refuses it.
    pub sha256: Option<String>,
    /// Handed to the detector's `configure` (contract 1.1 `setup`).
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub limits: Limits,
    /// The name it was declared under: its `metadata().name` must be this.
    pub name: Option<String>,
    /// Link the deny-by-default WASI of `wasi.rs` (a declared non-Rust detector). A
    /// bundled detector never gets it: [`Reloader::prepare`] refuses the spec.
    pub wasi: bool,
}

impl Spec {
    /// A bundled detector as it ships.
    pub fn bundled(name: &str) -> Self {
        Spec {
            origin: DetectorSource::Bundled(name.to_string()),
            sha256: None,
            settings: serde_json::Map::new(),
            limits: Limits::default(),
            name: None,
            wasi: false,
        }
    }
}

/// The loaded detectors and their sandboxes. `Send`: move it into a blocking task, or keep
/// it behind a mutex. A new version is prepared off the hot path ([`DetectorSet::reloader`],
/// [`Reloader::prepare`]) and swapped in between calls ([`DetectorSet::swap`]).
pub struct DetectorSet {
    detectors: Vec<Detector>,
    loader: Reloader,
}

/// What loading needs, shareable with a thread that prepares a new version: the set's
/// engine (and its epoch ticker), linker and sandbox defaults.
#[derive(Clone)]
pub struct Reloader {
    engine: wasmtime::Engine,
    linkers: sandbox::Linkers,
    cfg: RuntimeConfig,
    // Kept alive by every clone: stops the epoch ticker when the last one goes.
    _ticker: std::sync::Arc<sandbox::Ticker>,
}

/// Detectors compiled, instantiated and configured by [`Reloader::prepare`], ready to be
/// swapped in, with the specs that could not be loaded.
pub struct Prepared {
    loaded: Vec<load::Loaded>,
    /// The origin of every spec (loaded or not), in declaration order.
    origins: Vec<DetectorSource>,
    pub errors: Vec<Error>,
}

/// What [`DetectorSet::swap`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SwapReport {
    /// Detectors now running a new (or first) version.
    pub loaded: Vec<String>,
    /// Detectors whose new version failed to load: the previous one keeps running.
    pub kept_last_good: Vec<String>,
    /// Detectors no longer declared, dropped.
    pub removed: Vec<String>,
}

impl Reloader {
    /// Loads `specs` (blocking; compiles): call it off the hot path.
    pub fn prepare(&self, specs: Vec<Spec>) -> Prepared {
        let origins = specs.iter().map(|s| s.origin.clone()).collect();
        let mut errors = Vec::new();
        let mut sources = Vec::new();
        for spec in specs {
            let origin = spec.origin.clone();
            match load::spec_source(spec, &self.cfg) {
                Ok(source) => sources.push(source),
                Err(e) => errors.push(e.loading(origin)),
            }
        }
        let (loaded, load_errors) = load::load_all(&self.engine, &self.linkers, sources);
        errors.extend(load_errors);
        for e in &errors {
            tracing::warn!("detector not loaded: {e}");
        }
        Prepared {
            loaded,
            origins,
            errors,
        }
    }
}

impl DetectorSet {
    /// Bundled detectors + every `*.wasm` in `plugin_dir`. Detectors that cannot be loaded
    /// (bad files, wrong contract version, trapping `metadata()`, name clashes) are returned
    /// as [`Error::Load`]s, naming the file and the reason, without stopping the others.
    /// Fails only when the engine cannot start or `plugin_dir` cannot be read.
    pub fn load(cfg: &RuntimeConfig, plugin_dir: Option<&Path>) -> Result<(Self, Vec<Error>)> {
        Self::load_with(
            cfg,
            true,
            plugin_dir.into_iter().collect::<Vec<_>>().as_slice(),
        )
    }

    /// Like [`DetectorSet::load`], with the bundled detectors optional and any number of
    /// plugin directories (loaded in the order given).
    pub fn load_with(
        cfg: &RuntimeConfig,
        include_bundled: bool,
        plugin_dirs: &[&Path],
    ) -> Result<(Self, Vec<Error>)> {
        let mut sources = if include_bundled {
            load::bundled_sources(cfg)
        } else {
            Vec::new()
        };
        let mut errors = Vec::new();
        for dir in plugin_dirs {
            let (more, errs) = load::plugin_sources(dir, cfg)?;
            sources.extend(more);
            errors.extend(errs);
        }
        let loader = Self::reloader_for(cfg)?;
        let (loaded, load_errors) = load::load_all(&loader.engine, &loader.linkers, sources);
        errors.extend(load_errors);
        for e in &errors {
            tracing::warn!("detector not loaded: {e}");
        }
        Ok((
            Self {
                detectors: loaded.into_iter().map(Detector::from).collect(),
                loader,
            },
            errors,
        ))
    }

    /// One component file, no bundled detector (`dynamic-toolset detectors test`), handed
    /// `settings` at load as an operator's declaration would. A file that cannot be read or
    /// loaded, or whose detector refuses the settings, is an [`Error::Load`] naming it.
    /// `wasi` gives it the deny-by-default WASI of a declaration's `wasi: true`.
    pub fn load_file(
        cfg: &RuntimeConfig,
        path: &Path,
        settings: serde_json::Map<String, serde_json::Value>,
        wasi: bool,
    ) -> Result<(Self, Vec<Error>)> {
        Self::load_specs(
            cfg,
            vec![Spec {
                origin: DetectorSource::File(path.to_path_buf()),
                sha256: None,
                settings,
                limits: Limits::default(),
                name: None,
                wasi,
            }],
        )
    }

    /// The detectors `specs` declare, in order (the first to claim a name keeps it).
    pub fn load_specs(cfg: &RuntimeConfig, specs: Vec<Spec>) -> Result<(Self, Vec<Error>)> {
        let loader = Self::reloader_for(cfg)?;
        let prepared = loader.prepare(specs);
        let errors = prepared.errors;
        Ok((
            Self {
                detectors: prepared.loaded.into_iter().map(Detector::from).collect(),
                loader,
            },
            errors,
        ))
    }

    fn reloader_for(cfg: &RuntimeConfig) -> Result<Reloader> {
        let engine = sandbox::engine()?;
        let ticker = sandbox::Ticker::start(engine.clone(), cfg.epoch_tick)?;
        let linkers = sandbox::Linkers::new(&engine)?;
        Ok(Reloader {
            engine,
            linkers,
            cfg: cfg.clone(),
            _ticker: std::sync::Arc::new(ticker),
        })
    }

    /// A handle that prepares new versions with this set's engine, on any thread.
    pub fn reloader(&self) -> Reloader {
        self.loader.clone()
    }

    /// Swaps in a prepared version: every detector it loaded replaces the one of the same
    /// origin (or name); a declared detector whose new version failed keeps running its
    /// previous version (last good); detectors of origins no longer declared are dropped.
    /// Cheap (moves only): call it between detection passes, so no pass mixes versions.
    pub fn swap(&mut self, prepared: Prepared) -> (SwapReport, Vec<Error>) {
        let Prepared {
            loaded,
            origins,
            errors,
        } = prepared;
        let mut report = SwapReport::default();
        let mut old: Vec<Detector> = std::mem::take(&mut self.detectors);
        let mut next: Vec<Detector> = Vec::new();
        let failed: Vec<&DetectorSource> = errors.iter().filter_map(Error::origin).collect();
        for origin in &origins {
            if failed.contains(&origin)
                && let Some(i) = old.iter().position(|d| &d.info.source == origin)
            {
                let kept = old.swap_remove(i);
                report.kept_last_good.push(kept.info.info.name.clone());
                next.push(kept);
            }
        }
        for l in loaded {
            if next.iter().any(|d| d.info.info.name == l.info.info.name) {
                continue; // the last good version of that name stays
            }
            report.loaded.push(l.info.info.name.clone());
            next.push(Detector::from(l));
        }
        report.removed = old
            .iter()
            .map(|d| d.info.info.name.clone())
            .filter(|n| !next.iter().any(|d| &d.info.info.name == n))
            .collect();
        next.sort_by(|a, b| a.info.info.name.cmp(&b.info.info.name));
        self.detectors = next;
        (report, errors)
    }

    /// The loaded detectors, sorted by name.
    pub fn detectors(&self) -> Vec<LoadedInfo> {
        self.detectors.iter().map(|d| d.info.clone()).collect()
    }

    /// Runs every detector over one Service: one [`Verdict`] per detector, sorted by
    /// detector name. A failing detector's verdict is a [`DetectorFailure`] of its kind,
    /// whose message names the detector; the others are unaffected.
    pub fn detect(&mut self, svc: &ServiceSnapshot, cluster_domain: &str) -> ServiceDetections {
        let input = convert::service_to_wit(svc, cluster_domain);
        let verdicts = self
            .detectors
            .iter_mut()
            .map(|d| d.detect(&input))
            .collect();
        ServiceDetections {
            service: svc.service_ref(),
            verdicts,
            trusted: false,
            gate: Vec::new(),
            grouping: svc.grouping(),
        }
    }

    /// Per-detector counters, sorted by detector name.
    pub fn stats(&self) -> Vec<DetectorStats> {
        self.detectors
            .iter()
            .map(|d| DetectorStats {
                reinstantiations: d.sandbox.reinstantiations,
                ..d.stats.clone()
            })
            .collect()
    }
}

impl Detector {
    fn detect(&mut self, input: &bindings::wit::Service) -> Verdict {
        let limits = self.limits;
        let name = &self.info.info.name;
        let identifies = self.info.capabilities.identify;
        let sandbox = &mut self.sandbox;
        let (result, elapsed) = sandbox::timed(|| {
            let detection =
                sandbox.call(|exports, store| exports.detector.call_detect(store, input))?;
            let mut identifications = Vec::new();
            if let (true, bindings::wit::Detection::Matched(fragments)) = (identifies, &detection) {
                for fragment in fragments.iter().take(limits.max_fragments) {
                    identifications.push(sandbox.call(
                        |exports, store| match &exports.identify {
                            Some(identify) => identify.call_identify(store, input, fragment),
                            None => Ok(bindings::identify::Identification {
                                candidates: Vec::new(),
                                required: false,
                            }),
                        },
                    )?);
                }
            }
            Ok((detection, identifications))
        });
        let result = result.and_then(|(detection, identifications)| {
            convert::detection_with_identifications(detection, identifications, limits).map_err(
                |e| DetectorFailure {
                    kind: FailureKind::InvalidOutput,
                    message: format!("returned {e}"),
                },
            )
        });
        let stats = &mut self.stats;
        stats.calls += 1;
        stats.total_time += elapsed;
        stats.max_time = stats.max_time.max(elapsed);
        let outcome = match result {
            Ok(detection) => {
                match &detection {
                    dynamic_toolset_core::Detection::Unrelated => stats.unrelated += 1,
                    dynamic_toolset_core::Detection::Declined(_) => stats.declined += 1,
                    dynamic_toolset_core::Detection::Matched(_) => stats.matched += 1,
                }
                Ok(detection)
            }
            Err(DetectorFailure { kind, message }) => {
                stats.failures.count(kind);
                if kind == FailureKind::InvalidOutput {
                    tracing::warn!(detector = %name, reason = %kind, "{message}");
                }
                Err(DetectorFailure {
                    kind,
                    message: format!("{kind}: detector `{name}` {message}"),
                })
            }
        };
        Verdict {
            detector: name.clone(),
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _assert_send<T: Send>() {}
    #[test]
    fn detector_set_is_send() {
        _assert_send::<DetectorSet>();
    }
}
