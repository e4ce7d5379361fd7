//! A detector's exports, by contract version, kept side by side (the way Zed's extension
//! host keeps one module per API version):
//! - 1.0.0: `detector` (`metadata`, `detect`), required of every guest;
//! - 1.1.0: `setup` (`declares`, `configure`) and `identify`, each optional;
//! - 1.2.0: `http-apis`, optional.
//!
//! wasmtime matches export versions semver-compatibly, so a guest exporting
//! `detector@1.0.0` satisfies the 1.1.0 lookup of `detector`, and a 1.1.x guest's
//! `identify@1.1.x` the lookup of `identify@1.1.0`.

use wasmtime::component::{Component, InstancePre};
use wasmtime::{AsContextMut, Engine};

use crate::bindings::{detector, http_apis, identify, setup};
use crate::sandbox::HostState;

/// Export lookups resolved once per component, before any instance exists.
#[derive(Clone)]
pub(crate) struct ExportsPre {
    pub pre: InstancePre<HostState>,
    detector: detector::GuestIndices,
    setup: Option<setup::GuestIndices>,
    identify: Option<identify::GuestIndices>,
    http_apis: Option<http_apis::GuestIndices>,
}

/// The contract versions a component implements, for messages and the detectors API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Exports `setup` (1.1.0).
    pub setup: bool,
    /// Exports `identify` (1.1.0).
    pub identify: bool,
    /// Exports `http-apis` (1.2.0).
    pub http_apis: bool,
}

impl ExportsPre {
    /// `detector` must be there (its absence is an error naming it); the 1.1.0 exports
    /// are taken when present.
    pub(crate) fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        let detector = detector::GuestIndices::new(&pre)?;
        let setup = exported(pre.component(), pre.engine(), "setup")
            .then(|| setup::GuestIndices::new(&pre))
            .transpose()?;
        let identify = exported(pre.component(), pre.engine(), "identify")
            .then(|| identify::GuestIndices::new(&pre))
            .transpose()?;
        let http_apis = exported(pre.component(), pre.engine(), "http-apis")
            .then(|| http_apis::GuestIndices::new(&pre))
            .transpose()?;
        Ok(Self {
            pre,
            detector,
            setup,
            identify,
            http_apis,
        })
    }

    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities {
            setup: self.setup.is_some(),
            identify: self.identify.is_some(),
            http_apis: self.http_apis.is_some(),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    /// Instantiates and loads every export's typed functions.
    pub(crate) fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
    ) -> wasmtime::Result<Exports> {
        let instance = self.pre.instantiate(&mut store)?;
        Ok(Exports {
            detector: self.detector.load(&mut store, &instance)?,
            setup: self
                .setup
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()?,
            identify: self
                .identify
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()?,
            http_apis: self
                .http_apis
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()?,
        })
    }
}

/// Whether the component exports the contract interface `name` (any 1.x version).
fn exported(component: &Component, engine: &Engine, name: &str) -> bool {
    let wanted = format!("dynamic-toolset:detector/{name}");
    component
        .component_type()
        .exports(engine)
        .any(|(export, _)| export.split('@').next() == Some(wanted.as_str()))
}

/// The typed exports of one live instance.
pub(crate) struct Exports {
    pub detector: detector::Guest,
    pub setup: Option<setup::Guest>,
    pub identify: Option<identify::Guest>,
    pub http_apis: Option<http_apis::Guest>,
}
