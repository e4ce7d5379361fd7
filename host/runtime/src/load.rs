//! Loading detectors: reading sources, compiling (or reusing the precompiled cache),
//! checking the contract version and exports, and asking each detector for its metadata.
//! Everything a [`crate::DetectorSet`] holds is made here, so a reload is one call.

use std::borrow::Cow;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::convert::info_from_wit;
use crate::sandbox::{HostState, Linkers, Sandbox, pre_instantiate};
use crate::since_v1_1::emits_from_wit;
use crate::{DetectorSource, Error, LoadedInfo, Result, RuntimeConfig};

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
        DetectorSource::File(path) => Cow::Owned(std::fs::read(path).map_err(Error::Unreadable)?),
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
        let result = component.and_then(|c| instantiate(engine, linker, &source.cfg, &source, &c));
        let result = result.and_then(|(info, sandbox)| match &source.name {
            Some(declared) if *declared != info.name => Err(Error::NameMismatch {
                declared: declared.clone(),
                actual: info.name,
            }),
            _ => Ok((info, sandbox)),
        });
        match result {
            Ok((info, sandbox)) => {
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

/// Compiles every source, a few at a time.
fn compile_all(engine: &Engine, sources: &[(Source, String)]) -> Vec<Result<Component>> {
    let results: Vec<Mutex<Option<Result<Component>>>> =
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
                    let Some((source, _)) = sources.get(i) else {
                        break;
                    };
                    let result = compile(engine, &source.cfg, &source.bytes);
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

/// Checks the binary header, then compiles (or loads from the cache).
fn compile(engine: &Engine, cfg: &RuntimeConfig, bytes: &[u8]) -> Result<Component> {
    check_header(bytes)?;
    let Some(cache_dir) = &cfg.cache_dir else {
        return Component::new(engine, bytes).map_err(Error::InvalidComponent);
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
            Ok(component) => return Ok(component),
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
    Ok(component)
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
    } else if !source.settings.is_empty() {
        return Err(Error::NoSettings {
            keys: source.settings.keys().cloned().collect(),
        });
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
