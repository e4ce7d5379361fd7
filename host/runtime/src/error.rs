//! The runtime crate's error type: why a detector set could not start, why one detector
//! could not be loaded ([`Error::Load`], naming the file or bundled detector), and what was
//! wrong with a detector's answer (its display is the text of an
//! [`FailureKind::InvalidOutput`](dynamic_toolset_core::FailureKind) failure).
//!
//! A failed *call* is not an error of this crate but a value, the
//! [`DetectorFailure`](dynamic_toolset_core::DetectorFailure) of the detector's verdict.

use std::path::PathBuf;

use dynamic_toolset_core::DetectorFailure;

use crate::DetectorSource;
use crate::load::{EXPORT, SUPPORTED_MAJOR};

/// Errors of the runtime crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- The set as a whole ---
    /// The wasmtime engine, its linker or the epoch ticker could not start.
    #[error("cannot start the detector engine: {0:#}")]
    Engine(wasmtime::Error),
    #[error("cannot read plugin directory {}", dir.display())]
    PluginDir {
        dir: PathBuf,
        source: std::io::Error,
    },

    // --- One detector that could not be loaded (the others still are) ---
    /// Which detector, and why ([`Error::origin`]).
    #[error("{origin}: {reason}")]
    Load {
        origin: DetectorSource,
        reason: Box<Error>,
    },
    #[error("cannot read: {0}")]
    Unreadable(std::io::Error),
    #[error("is declared as `{declared}` but calls itself `{actual}` (metadata().name)")]
    NameMismatch { declared: String, actual: String },
    #[error("sha256 mismatch: the declaration pins {expected}, the file has {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("no bundled detector is named `{name}` (bundled: {})", crate::bundled::BUNDLED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    UnknownBundled { name: String },
    #[error("not a WebAssembly file (no \\0asm header)")]
    NotWasm,
    #[error(
        "is a core WebAssembly module, not a component; build it with \
         `cargo build --target wasm32-wasip2` (which emits a component)"
    )]
    CoreModule,
    #[error("unsupported WebAssembly version/layer {0:02x?} (expected a component)")]
    UnsupportedLayer([u8; 4]),
    #[error("invalid component: {0:#}")]
    InvalidComponent(wasmtime::Error),
    #[error("compilation did not complete")]
    CompilationIncomplete,
    #[error("does not export {EXPORT}@1.x (its exports: [{}])", exports.join(", "))]
    MissingExport { exports: Vec<String> },
    /// `version` is the contract version the component exports ("" when unversioned).
    #[error(
        "built against dynamic-toolset:detector {}; this host supports {SUPPORTED_MAJOR}.x",
        if version.is_empty() { "an unversioned contract" } else { version.as_str() }
    )]
    ContractVersion { version: String },
    #[error("does not fit the detector contract 1.x: {0:#}")]
    Contract(wasmtime::Error),
    #[error(
        "calls WASI (`{import}`) but its declaration does not grant it: add `wasi: true` \
         (a deny-by-default WASI for runtimes such as Python's or JavaScript's)"
    )]
    NeedsWasi { import: String },
    #[error("`wasi: true` is for declared detector files; bundled detectors never get WASI")]
    WasiForBundled,
    #[error("metadata() failed ({}): {}", .0.kind, .0.message)]
    Metadata(DetectorFailure),
    #[error("declares() failed ({}): {}", .0.kind, .0.message)]
    Declares(DetectorFailure),
    #[error("declares() {0}")]
    InvalidEmits(String),
    #[error("http-apis() failed ({}): {}", .0.kind, .0.message)]
    HttpApis(DetectorFailure),
    #[error("http-apis() {0}")]
    InvalidHttpApis(String),
    #[error("configure() failed ({}): {}", .0.kind, .0.message)]
    ConfigureFailed(DetectorFailure),
    /// The detector's own reason (sanitised, capped) for refusing its settings.
    #[error("refused its settings: {0}")]
    SettingsRefused(String),
    #[error("takes no settings (it does not export `setup`), but settings were given: {}", keys.join(", "))]
    NoSettings { keys: Vec<String> },
    #[error("metadata().name is empty")]
    EmptyName,
    #[error("metadata().name must be 1-64 characters of a-z, 0-9, '-' or '_'")]
    InvalidName,
    #[error("metadata().version of `{name}` must be 1-64 characters")]
    InvalidVersion { name: String },
    #[error(
        "detector name `{name}` is already taken by {first}; this one is not loaded \
         (rename it: detectors never replace one another)"
    )]
    NameTaken { name: String, first: DetectorSource },

    // --- A detector's answer that breaks a limit or the contract ---
    #[error("declined reason is {size} bytes (limit {limit})")]
    ReasonTooLong { size: usize, limit: usize },
    #[error("matched with no fragment (return unrelated or declined)")]
    NoFragment,
    #[error("{count} fragments (limit {limit})")]
    TooManyFragments { count: usize, limit: usize },
    #[error("{size} bytes of fragments (limit {limit})")]
    OutputTooLarge { size: usize, limit: usize },
    /// A fragment field at fault (`config`, `health.path`, `custom.tools[1]`...) and what
    /// is wrong with it. The field's value is never echoed (it might carry a secret).
    #[error("fragment[{index}].{field} {problem}")]
    InvalidFragment {
        index: usize,
        field: String,
        problem: String,
    },
}

impl Error {
    /// The detector a [`Error::Load`] is about.
    pub fn origin(&self) -> Option<&DetectorSource> {
        match self {
            Error::Load { origin, .. } => Some(origin),
            _ => None,
        }
    }

    /// This error as the reason `origin` could not be loaded.
    pub(crate) fn loading(self, origin: DetectorSource) -> Self {
        Error::Load {
            origin,
            reason: Box::new(self),
        }
    }
}

/// Result alias of the runtime crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_errors_name_the_detector_first() {
        let e = Error::NotWasm.loading(DetectorSource::Bundled("x".into()));
        assert_eq!(
            e.to_string(),
            "bundled detector `x`: not a WebAssembly file (no \\0asm header)"
        );
        assert_eq!(e.origin(), Some(&DetectorSource::Bundled("x".into())));
        assert_eq!(Error::NoFragment.origin(), None);
    }

    #[test]
    fn contract_versions_read_naturally() {
        let v = |version: &str| {
            Error::ContractVersion {
                version: version.into(),
            }
            .to_string()
        };
        assert_eq!(
            v("2.0.0"),
            "built against dynamic-toolset:detector 2.0.0; this host supports 1.x"
        );
        assert!(v("").contains("an unversioned contract"));
    }
}
