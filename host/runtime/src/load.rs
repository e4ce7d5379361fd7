//! Loading detectors: reading sources, compiling (or reusing the precompiled cache),
//! checking the contract version and exports, and asking each detector for its metadata.
//! Everything a [`crate::DetectorSet`] holds is made here, so a reload is one call.

use std::borrow::Cow;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Precompiled};

use crate::convert::info_from_wit;
use crate::sandbox::{HostState, Linkers, Sandbox, pre_instantiate};
use crate::since_v1_1::emits_from_wit;
use crate::{CodeOrigin, DetectorSource, Error, LoadedInfo, Result, RuntimeConfig};

/// The WIT interface every detector exports, without its version.
pub(crate) const EXPORT: &str = "dynamic-toolset:detector/detector";
/// The contract major version this host implements.
pub(crate) const SUPPORTED_MAJOR: &str = "1";

/// A component to load.
pub(crate) struct Source {
    pub origin: DetectorSource,
    pub bytes: Cow<'static, [u8]>,
    /// The operator's settings, handed to `configure` (a 1.1 detector with `setup`).
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The sandbox this detector runs in (the set's, with its declaration's limits).
    pub cfg: RuntimeConfig,
    /// The sha256 (hex) the declaration pins; a mismatch refuses the detector.
    pub sha256: Option<String>,
    /// The name it was declared under.
    pub name: Option<String>,
    /// Gets the WASI linker (`wasi.rs`).
    pub wasi: bool,
}

impl Source {
    /// A source with no settings, no pin, the set's sandbox.
    pub(crate) fn plain(
        origin: DetectorSource,
        bytes: Cow<'static, [u8]>,
        cfg: &RuntimeConfig,
    ) -> Self {
        Source {
            origin,
            bytes,
            settings: serde_json::Map::new(),
            cfg: cfg.clone(),
            sha256: None,
            name: None,
            wasi: false,
        }
    }
}

/// A loaded detector.
pub(crate) struct Loaded {
    pub info: LoadedInfo,
    pub limits: crate::convert::OutputLimits,
    pub sandbox: Sandbox,
}

/// Bundled detectors as sources.
pub(crate) fn bundled_sources(cfg: &RuntimeConfig) -> Vec<Source> {
    crate::bundled::BUNDLED
        .iter()
        .map(|(name, bytes)| {
            Source::plain(
                DetectorSource::Bundled((*name).to_string()),
                Cow::Borrowed(*bytes),
                cfg,
            )
        })
        .collect()
}

/// The source a declaration names: a bundled detector's bytes or a file's.
pub(crate) fn spec_source(spec: crate::Spec, base: &RuntimeConfig) -> Result<Source> {
    let bytes = match &spec.origin {
        DetectorSource::Bundled(name) => crate::bundled::BUNDLED
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| Cow::Borrowed(*b))
            .ok_or_else(|| Error::UnknownBundled { name: name.clone() })?,
        DetectorSource::File(path) => {
            let read = match std::fs::metadata(path) {
                Ok(meta) if !meta.is_file() => Err(std::io::Error::other("not a regular file")),
                _ => std::fs::read(path),
            };
            Cow::Owned(read.map_err(Error::Unreadable)?)
        }
    };
    if let (true, DetectorSource::Bundled(_)) = (spec.wasi, &spec.origin) {
        return Err(Error::WasiForBundled);
    }
    let cfg = spec.limits.apply(base);
    Ok(Source {
        origin: spec.origin,
        bytes,
        settings: spec.settings,
        cfg,
        sha256: spec.sha256,
        name: spec.name,
        wasi: spec.wasi,
    })
}

/// Every `*.wasm` file of `dir`, sorted by file name. Unreadable files become errors.
pub(crate) fn plugin_sources(dir: &Path, cfg: &RuntimeConfig) -> Result<(Vec<Source>, Vec<Error>)> {
    let unreadable = |source| Error::PluginDir {
        dir: dir.to_path_buf(),
        source,
    };
    let entries = std::fs::read_dir(dir).map_err(unreadable)?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some("wasm") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read(&path) {
            Ok(bytes) => sources.push(Source::plain(
                DetectorSource::File(path),
                Cow::Owned(bytes),
                cfg,
            )),
            Err(e) => errors.push(Error::Unreadable(e).loading(DetectorSource::File(path))),
        }
    }
    Ok((sources, errors))
}

/// Loads `sources` in order; the first detector to claim a name keeps it, later ones are
/// refused with an error naming both (plugins come after bundled detectors, so a plugin
/// never replaces a bundled detector). Returns the detectors sorted by name.
pub(crate) fn load_all(
    engine: &Engine,
    linkers: &Linkers,
    sources: Vec<Source>,
) -> (Vec<Loaded>, Vec<Error>) {
    let mut errors = Vec::new();
    let mut pinned = Vec::with_capacity(sources.len());
    for source in sources {
        let sha256 = hex::encode(Sha256::digest(&source.bytes));
        match &source.sha256 {
            Some(expected) if !expected.eq_ignore_ascii_case(&sha256) => {
                errors.push(
                    Error::DigestMismatch {
                        expected: expected.clone(),
                        actual: sha256,
                    }
                    .loading(source.origin),
                );
            }
            _ => pinned.push((source, sha256)),
        }
    }
    let compiled = compile_all(engine, &pinned);
    let mut loaded: Vec<Loaded> = Vec::new();
    for ((source, sha256), component) in pinned.into_iter().zip(compiled) {
        let linker = linkers.for_wasi(source.wasi);
        let result = component.and_then(|(c, code)| {
            instantiate(engine, linker, &source.cfg, &source, &c).map(|(i, s)| (i, s, code))
        });
        let result = result.and_then(|(info, sandbox, code)| match &source.name {
            Some(declared) if *declared != info.name => Err(Error::NameMismatch {
                declared: declared.clone(),
                actual: info.name,
            }),
            _ => Ok((info, sandbox, code)),
        });
        match result {
            Ok((info, sandbox, code)) => {
                let capabilities = sandbox.capabilities();
                if let Some(first) = loaded.iter().find(|l| l.info.info.name == info.name) {
                    let taken = Error::NameTaken {
                        name: info.name,
                        first: first.info.source.clone(),
                    };
                    errors.push(taken.loading(source.origin));
                    continue;
                }
                loaded.push(Loaded {
                    info: LoadedInfo {
                        info,
                        source: source.origin,
                        sha256,
                        capabilities,
                        code,
                    },
                    limits: crate::convert::OutputLimits {
                        max_fragments: source.cfg.max_fragments,
                        max_output_bytes: source.cfg.max_output_bytes,
                    },
                    sandbox,
                });
            }
            Err(reason) => errors.push(reason.loading(source.origin)),
        }
    }
    loaded.sort_by(|a, b| a.info.info.name.cmp(&b.info.info.name));
    (loaded, errors)
}

/// A component and where its code came from.
type Compiled = (Component, CodeOrigin);

/// Compiles every source (or deserializes its precompiled code), a few at a time.
fn compile_all(engine: &Engine, sources: &[(Source, String)]) -> Vec<Result<Compiled>> {
    let results: Vec<Mutex<Option<Result<Compiled>>>> =
        sources.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(sources.len())
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((source, sha256)) = sources.get(i) else {
                        break;
                    };
                    let result = compile(engine, source, sha256);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or(Err(Error::CompilationIncomplete))
        })
        .collect()
}

/// Checks the binary header, then deserializes the code precompiled into the binary for
/// it (a bundled detector, unless [`RuntimeConfig::precompiled`] is off), or loads it from
/// the cache, or compiles it. `sha256`: the component's, hex.
fn compile(engine: &Engine, source: &Source, sha256: &str) -> Result<Compiled> {
    let embedded = if source.cfg.precompiled {
        embedded_code(sha256)
    } else {
        None
    };
    compile_with(engine, source, embedded)
}

/// [`compile`], with the precompiled code to try first given.
fn compile_with(
    engine: &Engine,
    source: &Source,
    embedded: Option<&'static [u8]>,
) -> Result<Compiled> {
    let (cfg, bytes) = (&source.cfg, &*source.bytes);
    check_header(bytes)?;
    if let Some(code) = embedded {
        match deserialize_embedded(engine, code) {
            Ok(component) => return Ok((component, CodeOrigin::Embedded)),
            Err(e) => embedded_unusable(&e),
        }
    } else if cfg.precompiled
        && matches!(source.origin, DetectorSource::Bundled(_))
        && let Some(reason) = crate::bundled::PRECOMPILE_SKIPPED
    {
        once(&NOT_PRECOMPILED_LOGGED, || {
            tracing::debug!(
                "bundled detectors not precompiled at build time ({reason}): compiling them"
            );
        });
    }
    let Some(cache_dir) = &cfg.cache_dir else {
        let component = Component::new(engine, bytes).map_err(Error::InvalidComponent)?;
        return Ok((component, CodeOrigin::Compiled));
    };
    let path = cache_path(engine, cache_dir, bytes);
    if path.is_file() {
        // SAFETY: `deserialize_file` trusts the file to be a `Component::serialize` output
        // of a compatible engine. The cache directory is ours: only this function writes
        // it, the file name carries the sha256 of the source and the engine's
        // compatibility hash, and wasmtime still checks the header and engine settings.
        #[allow(unsafe_code)]
        let cached = unsafe { Component::deserialize_file(engine, &path) };
        match cached {
            Ok(component) => return Ok((component, CodeOrigin::Cache)),
            Err(e) => tracing::warn!(
                cache = %path.display(),
                "ignoring unusable precompiled component: {e:#}"
            ),
        }
    }
    let component = Component::new(engine, bytes).map_err(Error::InvalidComponent)?;
    if let Err(e) = write_cache(&component, cache_dir, &path) {
        tracing::warn!(cache = %path.display(), "cannot cache compiled component: {e:#}");
    }
    Ok((component, CodeOrigin::Compiled))
}

/// The code `build.rs` precompiled for the bundled component of this sha256 (hex).
fn embedded_code(sha256: &str) -> Option<&'static [u8]> {
    crate::bundled::PRECOMPILED
        .iter()
        .find(|(digest, _)| *digest == sha256)
        .map(|(_, code)| *code)
}

/// Deserializes code precompiled into the binary, after checking that it is a precompiled
/// component; wasmtime then checks that it fits this engine (version, settings, CPU
/// features) and refuses it otherwise.
fn deserialize_embedded(engine: &Engine, code: &'static [u8]) -> wasmtime::Result<Component> {
    match Engine::detect_precompiled(code) {
        Some(Precompiled::Component) => {}
        other => wasmtime::bail!("not a precompiled component ({other:?})"),
    }
    // SAFETY: `Component::deserialize` trusts its input to be `Engine::precompile_component`
    // output (wasmtime checks the header, its version and the engine settings, not the
    // machine code). These bytes are: `build.rs` produced them with `precompile_component`
    // of this same wasmtime (pinned `=48.0.8` for build and runtime) from the component whose
    // sha256 keys them, and `include_bytes!` put them in this binary, read-only; nothing
    // outside the binary can supply or change them (a file with the same digest only
    // selects them, it never provides code). The unit tests also pass real
    // `precompile_component` output of other engines, which wasmtime's checks refuse, and
    // bytes that are no precompiled component, refused above.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, code)
    }
}

/// Logged once per process: a precompiled bundled detector did not fit (another CPU, or a
/// build-time configuration that differs); it is compiled instead.
static EMBEDDED_UNUSABLE_LOGGED: AtomicBool = AtomicBool::new(false);
/// Logged once per process: the build skipped precompilation.
static NOT_PRECOMPILED_LOGGED: AtomicBool = AtomicBool::new(false);

fn embedded_unusable(e: &wasmtime::Error) {
    once(&EMBEDDED_UNUSABLE_LOGGED, || {
        tracing::info!(
            "bundled detector code precompiled at build time does not fit this engine \
             ({e:#}): compiling the bundled detectors instead"
        );
    });
}

fn once(flag: &AtomicBool, log: impl FnOnce()) {
    if !flag.swap(true, Ordering::Relaxed) {
        log();
    }
}

/// `<cache_dir>/<sha256 of the wasm>-<engine fingerprint>.cwasm`
pub(crate) fn cache_path(engine: &Engine, cache_dir: &Path, bytes: &[u8]) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    let fingerprint = hasher.finish();
    let sha = hex::encode(Sha256::digest(bytes));
    cache_dir.join(format!("{sha}-{fingerprint:016x}.cwasm"))
}

/// Writes the cache entry; a failure is only logged (the next load compiles again).
fn write_cache(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let serialized = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Refuses what is not a component before wasmtime sees it, with a useful message.
pub(crate) fn check_header(bytes: &[u8]) -> Result<()> {
    let (Some(magic), Some(layer)) = (bytes.get(..4), bytes.get(4..8)) else {
        return Err(Error::NotWasm);
    };
    if magic != b"\0asm" {
        return Err(Error::NotWasm);
    }
    match layer {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(Error::CoreModule),
        [a, b, c, d] => Err(Error::UnsupportedLayer([*a, *b, *c, *d])),
        _ => Err(Error::NotWasm),
    }
}

/// Checks the exported contract version, links, instantiates, asks for metadata and,
/// for a 1.1 detector with `setup`, its declared output and configures it.
fn instantiate(
    engine: &Engine,
    linker: &Linker<HostState>,
    cfg: &RuntimeConfig,
    source: &Source,
    component: &Component,
) -> Result<(dynamic_toolset_core::DetectorInfo, Sandbox)> {
    check_exports(engine, component)?;
    let pre = pre_instantiate(linker, component, source.wasi).map_err(Error::Contract)?;
    let provisional = match &source.origin {
        DetectorSource::Bundled(name) => name.clone(),
        DetectorSource::File(path) => path.display().to_string(),
    };
    let mut sandbox = Sandbox::new(&provisional, pre, cfg, source.wasi);
    let info = sandbox
        .call(|exports, store| exports.detector.call_metadata(store))
        .map_err(
            |failure| match (source.wasi, wasi_import(&failure.message)) {
                (false, Some(import)) => Error::NeedsWasi { import },
                _ => Error::Metadata(failure),
            },
        )?;
    let mut info = info_from_wit(info)?;
    sandbox.set_name(&info.name);
    if sandbox.capabilities().setup {
        let emits = sandbox
            .call(|exports, store| match &exports.setup {
                Some(setup) => setup.call_declares(store).map(Some),
                None => Ok(None),
            })
            .map_err(Error::Declares)?;
        info.emits = emits.map(emits_from_wit).transpose()?;
        let settings = serde_json::Value::Object(source.settings.clone()).to_string();
        let answer = sandbox
            .call(|exports, store| match &exports.setup {
                Some(setup) => setup.call_configure(store, &settings),
                None => Ok(Ok(())),
            })
            .map_err(Error::ConfigureFailed)?;
        if let Err(reason) = answer {
            return Err(Error::SettingsRefused(crate::sandbox::sanitize(
                &reason,
                MAX_REASON_BYTES,
            )));
        }
        sandbox.keep_settings(settings);
    } else if !source.settings.is_empty() {
        return Err(Error::NoSettings {
            keys: source.settings.keys().cloned().collect(),
        });
    }
    if sandbox.capabilities().http_apis {
        let apis = sandbox
            .call(|exports, store| match &exports.http_apis {
                Some(h) => h.call_http_apis(store),
                None => Ok(Vec::new()),
            })
            .map_err(Error::HttpApis)?;
        info.http_apis = crate::since_v1_2::http_apis_from_wit(apis)?;
    }
    Ok((info, sandbox))
}

/// The WASI function a trap message says the guest called without WASI being linked
/// (`unknown import: `wasi:cli/stdout@0.2.0#get-stdout` has not been defined`).
fn wasi_import(message: &str) -> Option<String> {
    let name = message
        .split("unknown import: `")
        .nth(1)?
        .split('`')
        .next()?;
    name.starts_with("wasi:").then(|| name.to_string())
}

/// Bytes of a detector's own refusal shown to the operator.
const MAX_REASON_BYTES: usize = 512;

/// The component must export `dynamic-toolset:detector/detector@1.x`.
fn check_exports(engine: &Engine, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let Some(export) = exports.iter().find(|n| n.split('@').next() == Some(EXPORT)) else {
        return Err(Error::MissingExport {
            exports: exports.iter().map(|e| e.to_string()).collect(),
        });
    };
    let version = export.split_once('@').map(|(_, v)| v).unwrap_or("");
    if version.split('.').next() != Some(SUPPORTED_MAJOR) {
        return Err(Error::ContractVersion {
            version: version.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::DetectorSet;
    use crate::bundled::{BUNDLED, PRECOMPILE_SKIPPED, PRECOMPILED};
    use dynamic_toolset_core::{ServicePort, ServiceSnapshot};
    use std::collections::BTreeMap;

    /// The first bundled detector as a source, with its sha256.
    fn bundled_source(cfg: &RuntimeConfig) -> (Source, String) {
        let source = bundled_sources(cfg).into_iter().next().unwrap();
        let sha256 = hex::encode(Sha256::digest(&source.bytes));
        (source, sha256)
    }

    fn leak(bytes: Vec<u8>) -> &'static [u8] {
        Vec::leak(bytes)
    }

    /// Every bundled detector has code precompiled at build time, keyed by its sha256.
    #[test]
    fn every_bundled_detector_is_precompiled() {
        assert_eq!(
            PRECOMPILE_SKIPPED, None,
            "build.rs skipped precompilation (DYNAMIC_TOOLSET_PRECOMPILE=0?)"
        );
        assert_eq!(PRECOMPILED.len(), BUNDLED.len());
        for (name, bytes) in BUNDLED {
            let sha256 = hex::encode(Sha256::digest(bytes));
            assert!(embedded_code(&sha256).is_some(), "{name} not precompiled");
        }
        assert_eq!(embedded_code(&"0".repeat(64)), None);
    }

    #[test]
    fn embedded_code_is_used_when_it_fits() {
        let engine = crate::sandbox::engine().unwrap();
        let cfg = RuntimeConfig::default();
        let (source, sha256) = bundled_source(&cfg);
        let (_, code) = compile(&engine, &source, &sha256).unwrap();
        assert_eq!(code, CodeOrigin::Embedded);
        // Code precompiled by this very engine fits too.
        let own = leak(engine.precompile_component(&source.bytes).unwrap());
        let (_, code) = compile_with(&engine, &source, Some(own)).unwrap();
        assert_eq!(code, CodeOrigin::Embedded);
    }

    #[test]
    fn embedded_code_is_not_used_when_turned_off() {
        let engine = crate::sandbox::engine().unwrap();
        let cfg = RuntimeConfig {
            precompiled: false,
            ..RuntimeConfig::default()
        };
        let (source, sha256) = bundled_source(&cfg);
        let (_, code) = compile(&engine, &source, &sha256).unwrap();
        assert_eq!(code, CodeOrigin::Compiled);
    }

    /// Corrupt, truncated, foreign-engine and core-module artifacts are refused by the checks
    /// and the component is compiled instead, as if nothing had been precompiled.
    #[test]
    fn unusable_embedded_code_falls_back_to_compiling() {
        let engine = crate::sandbox::engine().unwrap();
        let cfg = RuntimeConfig::default();
        let (source, _) = bundled_source(&cfg);
        let good = engine.precompile_component(&source.bytes).unwrap();

        let mut other_config = crate::sandbox::engine_config(None).unwrap();
        other_config.epoch_interruption(false);
        let other_engine = Engine::new(&other_config).unwrap();
        let foreign = other_engine.precompile_component(&source.bytes).unwrap();

        let empty_core_module = b"\0asm\x01\0\0\0";
        let module = engine.precompile_module(empty_core_module).unwrap();

        let mut flipped = good.clone();
        let middle = flipped.len() / 2;
        flipped.truncate(middle);

        let unusable: Vec<(&str, &'static [u8])> = vec![
            ("garbage", b"garbage".as_slice()),
            ("empty", b"".as_slice()),
            ("truncated", leak(flipped)),
            ("another engine configuration", leak(foreign)),
            ("a core module", leak(module)),
            ("the wasm itself", leak(source.bytes.to_vec())),
        ];
        for (what, artifact) in unusable {
            let (component, code) = compile_with(&engine, &source, Some(artifact))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(code, CodeOrigin::Compiled, "{what}");
            check_exports(&engine, &component).unwrap();
        }
    }

    fn service(name: &str, app: &str, port: u16) -> ServiceSnapshot {
        ServiceSnapshot {
            name: name.to_string(),
            namespace: "monitoring".to_string(),
            labels: BTreeMap::from([
                ("app.kubernetes.io/name".to_string(), app.to_string()),
                ("app.kubernetes.io/instance".to_string(), "x".to_string()),
            ]),
            service_type: "ClusterIP".to_string(),
            cluster_ip: Some("10.96.0.20".to_string()),
            ports: vec![ServicePort {
                name: Some("http".to_string()),
                port,
                target_port: Some(port.to_string()),
                protocol: "TCP".to_string(),
                app_protocol: None,
            }],
            ..Default::default()
        }
    }

    /// `DetectorSet::load` gives the same detectors and the same verdicts with the embedded
    /// code as with code compiled at load.
    #[test]
    fn embedded_and_compiled_detectors_are_identical() {
        let (mut embedded, errors) = DetectorSet::load(&RuntimeConfig::default(), None).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let cfg = RuntimeConfig {
            precompiled: false,
            ..RuntimeConfig::default()
        };
        let (mut compiled, errors) = DetectorSet::load(&cfg, None).unwrap();
        assert!(errors.is_empty(), "{errors:?}");

        let infos = |set: &DetectorSet, expected: CodeOrigin| {
            set.detectors()
                .into_iter()
                .map(|mut info| {
                    assert_eq!(info.code, expected, "{}", info.info.name);
                    info.code = CodeOrigin::Compiled;
                    info
                })
                .collect::<Vec<_>>()
        };
        let from_embedded = infos(&embedded, CodeOrigin::Embedded);
        assert_eq!(from_embedded.len(), BUNDLED.len());
        assert_eq!(from_embedded, infos(&compiled, CodeOrigin::Compiled));

        let services = [
            service("prom", "prometheus", 9090),
            service("am", "alertmanager", 9093),
            service("graf", "grafana", 80),
            service("loki", "loki", 3100),
            service("tempo", "tempo", 3200),
            service("jaeger", "jaeger", 16686),
            service("es", "elasticsearch", 9200),
            service("os", "opensearch", 9200),
            service("thanos", "thanos-query", 9090),
            service("vm", "victoria-metrics-single", 8428),
            service("vl", "victoria-logs-single", 9428),
            service("web", "nginx", 80),
        ];
        let mut matched = 0;
        for svc in &services {
            let a = embedded.detect(svc, "cluster.local");
            let b = compiled.detect(svc, "cluster.local");
            matched += a
                .verdicts
                .iter()
                .filter(|v| matches!(v.outcome, Ok(dynamic_toolset_core::Detection::Matched(_))))
                .count();
            assert_eq!(a, b, "{}", svc.name);
        }
        assert!(matched >= 5, "too few matches to compare: {matched}");
    }

    #[test]
    fn wasi_imports_are_named_from_the_trap() {
        assert_eq!(
            wasi_import(
                "trapped: unknown import: `wasi:cli/stdout@0.2.0#get-stdout` has not been defined"
            )
            .as_deref(),
            Some("wasi:cli/stdout@0.2.0#get-stdout")
        );
        assert_eq!(
            wasi_import("trapped: unknown import: `other:x/y#z` has not been defined"),
            None
        );
        assert_eq!(wasi_import("trapped: wasm trap: unreachable"), None);
    }

    #[test]
    fn headers() {
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
        assert!(
            check_header(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .to_string()
                .contains("core WebAssembly module")
        );
        assert!(
            check_header(b"hello world")
                .unwrap_err()
                .to_string()
                .contains("not a WebAssembly file")
        );
        assert!(check_header(b"").is_err());
    }
}
