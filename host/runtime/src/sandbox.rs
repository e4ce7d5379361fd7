//! The sandbox around one detector: engine settings, the epoch ticker, per-store state
//! (memory limiter, log capture), instantiation and calls with failure classification.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, ResourceLimiter, Store, Trap};

use crate::bindings::{FullDetector, dynamic_toolset::detector::log, wit};
use crate::exports::{Exports, ExportsPre};
use crate::wasi::{WasiLimits, WasiState};
use crate::{DetectorFailure, Error, FailureKind, Result, RuntimeConfig};

/// Table elements an instance may grow to (funcref tables of Rust guests hold a few
/// hundred entries).
const MAX_TABLE_ELEMENTS: usize = 100_000;

include!("engine_config.rs");

/// The engine every detector of a set shares, configured by [`engine_config`] (the
/// configuration `build.rs` precompiles the bundled detectors with), for this CPU.
pub(crate) fn engine() -> Result<Engine> {
    let config = engine_config(None).map_err(Error::Engine)?;
    Engine::new(&config).map_err(Error::Engine)
}

/// Increments the engine's epoch every `tick` until dropped.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("detector-epoch".to_string())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine(e.into()))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

/// Caps linear memory; remembers that the cap was hit so the failure is reported as
/// memory exhaustion rather than as a generic trap.
pub(crate) struct MemoryLimiter {
    limit: usize,
    exceeded: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = Some(desired);
            wasmtime::bail!(
                "memory limit of {} bytes exceeded (growth to {desired} bytes requested)",
                self.limit
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Store data of one detector instance.
pub(crate) struct HostState {
    detector: Arc<str>,
    limiter: MemoryLimiter,
    max_log_lines: u32,
    max_log_bytes: usize,
    log_lines: u32,
    log_dropped: u32,
    /// The last "panic: ..." line the guest SDK's panic hook logged.
    last_panic: Option<String>,
    /// A WASI guest's context (see `wasi.rs`); `None` for every other detector, whose
    /// linker has no WASI function that could reach it.
    wasi: Option<Box<WasiState>>,
}

impl HostState {
    fn reset_call(&mut self) {
        self.log_lines = 0;
        self.log_dropped = 0;
        self.last_panic = None;
        if let Some(wasi) = &mut self.wasi {
            wasi.reset_call();
        }
    }

    /// The WASI state; created (deny-by-default, nothing captured) if a host function of
    /// the WASI linker were ever reached by an instance made without one.
    pub(crate) fn wasi_state(&mut self) -> &mut WasiState {
        let detector = self.detector.clone();
        let limits = WasiLimits {
            max_lines: self.max_log_lines,
            max_line_bytes: self.max_log_bytes,
            max_wait: Duration::ZERO,
        };
        self.wasi
            .get_or_insert_with(|| Box::new(WasiState::new(detector, &limits)))
    }

    /// What the guest said last before failing: the SDK's panic line, else (WASI guests)
    /// the last line of stderr.
    fn last_words(&self) -> Option<String> {
        self.last_panic.clone().or_else(|| {
            self.wasi
                .as_ref()
                .and_then(|w| w.last_stderr())
                .map(|line| format!("stderr: {line}"))
        })
    }
}

impl wit::Host for HostState {}

impl log::Host for HostState {
    fn log(&mut self, level: wit::Level, message: String) {
        let line = sanitize(&message, self.max_log_bytes);
        if line.starts_with("panic") {
            self.last_panic = Some(line.clone());
        }
        if self.log_lines >= self.max_log_lines {
            self.log_dropped += 1;
            return;
        }
        self.log_lines += 1;
        let detector = &*self.detector;
        match level {
            wit::Level::Trace => tracing::trace!(target: "detector", detector, "{line}"),
            wit::Level::Debug => tracing::debug!(target: "detector", detector, "{line}"),
            wit::Level::Info => tracing::info!(target: "detector", detector, "{line}"),
            wit::Level::Warn => tracing::warn!(target: "detector", detector, "{line}"),
            wit::Level::Error => tracing::error!(target: "detector", detector, "{line}"),
        }
    }
}

/// Caps a guest-provided line and replaces control characters (no terminal escapes or
/// forged log lines from a guest).
pub(crate) fn sanitize(message: &str, max_bytes: usize) -> String {
    let mut end = message.len().min(max_bytes);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut line: String = message[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if end < message.len() {
        line.push_str("...(truncated)");
    }
    line
}

/// The linker every detector uses: the contract's `log` import, nothing else. Unknown
/// imports (WASI) are defined as traps per component in [`pre_instantiate`].
pub(crate) fn base_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    FullDetector::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(Error::Engine)?;
    Ok(linker)
}

/// The linker of declared detectors granted WASI: the contract's `log` import plus the
/// deny-by-default WASI of `wasi.rs`.
pub(crate) fn wasi_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = base_linker(engine)?;
    crate::wasi::add_to_linker(&mut linker).map_err(Error::Engine)?;
    Ok(linker)
}

/// The linkers of a set: every detector's, and that of detectors granted WASI.
#[derive(Clone)]
pub(crate) struct Linkers {
    pub plain: Linker<HostState>,
    pub wasi: Linker<HostState>,
}

impl Linkers {
    pub(crate) fn new(engine: &Engine) -> Result<Self> {
        Ok(Linkers {
            plain: base_linker(engine)?,
            wasi: wasi_linker(engine)?,
        })
    }

    pub(crate) fn for_wasi(&self, wasi: bool) -> &Linker<HostState> {
        if wasi { &self.wasi } else { &self.plain }
    }
}

/// Links a component against the contract (and, for a WASI linker, WASI), denying every
/// other import.
pub(crate) fn pre_instantiate(
    base: &Linker<HostState>,
    component: &wasmtime::component::Component,
    wasi: bool,
) -> wasmtime::Result<ExportsPre> {
    let mut linker = base.clone();
    let linked = if wasi {
        crate::wasi::linked
    } else {
        contract_linked
    };
    stub_unlinked(&mut linker, component, linked)?;
    let pre = linker.instantiate_pre(component)?;
    ExportsPre::new(pre)
}

/// The contract's interfaces the host links: any 1.x version resolves to this host's
/// (semver), so a 1.0 guest's `log@1.0.0` reaches the 1.1 host's `log`.
const CONTRACT: &[(&str, &str)] = &[
    ("dynamic-toolset:detector/types", "1."),
    ("dynamic-toolset:detector/log", "1."),
];

/// Whether the plain linker resolves `import` (`name@version`).
pub(crate) fn contract_linked(import: &str) -> bool {
    in_table(CONTRACT, import)
}

/// Whether `import` (`name@version`) is one of `table`'s names at a version starting with
/// its prefix.
pub(crate) fn in_table(table: &[(&str, &str)], import: &str) -> bool {
    let (name, version) = import.split_once('@').unwrap_or((import, ""));
    table
        .iter()
        .any(|(n, v)| *n == name && version.starts_with(v))
}

/// Defines every import of `component` that `linked` says the linker does not resolve
/// (other packages, other major versions) as functions that trap, naming the import. Unlike wasmtime's
/// `define_unknown_imports_as_traps`, which defines the exact version the guest imports
/// and so shadows a linked semver-compatible interface (a guest of `wasi:cli@0.2.9` would
/// get traps in place of this linker's `0.2.12`), interfaces this linker defines are left
/// to it.
pub(crate) fn stub_unlinked(
    linker: &mut Linker<HostState>,
    component: &wasmtime::component::Component,
    linked: fn(&str) -> bool,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    let engine = linker.engine().clone();
    for (name, item) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if linked(name) {
            continue;
        }
        let mut stub = linker.instance(name)?;
        for (export, item) in instance.exports(&engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let full = format!("{name}#{export}");
                    stub.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!("unknown import: `{full}` has not been defined")
                    })?;
                }
                ComponentItem::Resource(_) => {
                    stub.resource(
                        export,
                        wasmtime::component::ResourceType::host::<()>(),
                        |_, _| Ok(()),
                    )?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A live instance: its store and export bindings.
pub(crate) struct Live {
    store: Store<HostState>,
    exports: Exports,
}

/// One detector's sandbox: the pre-instantiated component and, normally, a live instance
/// reused across calls. After any trap the instance is discarded and re-created.
pub(crate) struct Sandbox {
    name: Arc<str>,
    pre: ExportsPre,
    live: Option<Live>,
    memory_limit: usize,
    deadline_ticks: u64,
    call_deadline: Duration,
    max_log_lines: u32,
    max_log_bytes: usize,
    /// Instances get a WASI context (declared `wasi: true`).
    wasi: bool,
    /// Longest wait of a WASI guest's timer: the call deadline plus two epoch ticks, by
    /// which the epoch deadline has passed and the call ends as a timeout.
    timer_cap: Duration,
    /// The settings the detector accepted at load (JSON), handed to `configure` again on
    /// every fresh instance, so one that replaces a trapped instance runs as configured.
    settings: Option<String>,
    /// Instances created after the first one.
    pub(crate) reinstantiations: u64,
}

impl Sandbox {
    pub(crate) fn new(name: &str, pre: ExportsPre, cfg: &RuntimeConfig, wasi: bool) -> Self {
        Self {
            name: Arc::from(name),
            pre,
            live: None,
            memory_limit: cfg.memory_limit_bytes,
            deadline_ticks: cfg.deadline_ticks(),
            call_deadline: cfg.call_deadline,
            max_log_lines: cfg.max_log_lines_per_call,
            max_log_bytes: cfg.max_log_line_bytes,
            wasi,
            timer_cap: cfg.call_deadline + cfg.epoch_tick * 2,
            settings: None,
            reinstantiations: 0,
        }
    }

    /// Records the settings the live instance accepted: every later instance is configured
    /// with them before its first call.
    pub(crate) fn keep_settings(&mut self, settings: String) {
        self.settings = Some(settings);
    }

    /// Which optional exports the component has.
    pub(crate) fn capabilities(&self) -> crate::exports::Capabilities {
        self.pre.capabilities()
    }

    /// Renames the detector (after `metadata()` told its real name).
    pub(crate) fn set_name(&mut self, name: &str) {
        self.name = Arc::from(name);
        if let Some(live) = &mut self.live {
            let state = live.store.data_mut();
            state.detector = self.name.clone();
            if let Some(wasi) = &mut state.wasi {
                wasi.set_detector(self.name.clone());
            }
        }
    }

    fn instantiate(&self) -> Result<Live, DetectorFailure> {
        let state = HostState {
            detector: self.name.clone(),
            limiter: MemoryLimiter {
                limit: self.memory_limit,
                exceeded: None,
            },
            max_log_lines: self.max_log_lines,
            max_log_bytes: self.max_log_bytes,
            log_lines: 0,
            log_dropped: 0,
            last_panic: None,
            wasi: self.wasi.then(|| {
                Box::new(WasiState::new(
                    self.name.clone(),
                    &WasiLimits {
                        max_lines: self.max_log_lines,
                        max_line_bytes: self.max_log_bytes,
                        max_wait: self.timer_cap,
                    },
                ))
            }),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        let pre = &self.pre;
        let instantiated = if self.wasi {
            crate::wasi::outside_async(|| pre.instantiate(&mut store))
                .unwrap_or_else(|_| Err(wasmtime::format_err!("the host call panicked")))
        } else {
            pre.instantiate(&mut store)
        };
        let mut live = match instantiated {
            Ok(exports) => Live { store, exports },
            Err(e) => {
                let mut failure = self.classify(&store, &e);
                failure.message = format!("cannot be instantiated: {}", failure.message);
                return Err(failure);
            }
        };
        if let Some(settings) = &self.settings {
            let answer = self.run(&mut live, |exports, store| match &exports.setup {
                Some(setup) => setup.call_configure(store, settings),
                None => Ok(Ok(())),
            });
            let refused = match answer {
                Ok(Ok(())) => None,
                Ok(Err(reason)) => Some(DetectorFailure {
                    kind: FailureKind::Trap,
                    message: sanitize(&reason, self.max_log_bytes),
                }),
                Err(e) => Some(self.classify(&live.store, &e)),
            };
            if let Some(mut failure) = refused {
                failure.message = format!(
                    "cannot be configured again after a restart: {}",
                    failure.message
                );
                return Err(failure);
            }
        }
        Ok(live)
    }

    /// Runs `f` on `live` with a fresh deadline and per-call log budget (a WASI guest where
    /// its host calls may block).
    fn run<R: Send>(
        &self,
        live: &mut Live,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<R> + Send,
    ) -> wasmtime::Result<R> {
        live.store.data_mut().reset_call();
        live.store.set_epoch_deadline(self.deadline_ticks);
        let result = if self.wasi {
            let Live { store, exports } = live;
            crate::wasi::outside_async(|| f(exports, store))
                .unwrap_or_else(|_| Err(wasmtime::format_err!("the host call panicked")))
        } else {
            f(&live.exports, &mut live.store)
        };
        let state = live.store.data_mut();
        let dropped = state.log_dropped + state.wasi.as_mut().map_or(0, |w| w.end_call());
        if dropped > 0 {
            tracing::warn!(target: "detector", detector = &*self.name, dropped, "log lines dropped (per-call cap)");
        }
        result
    }

    /// Calls into the guest with a fresh deadline. Any failure discards the instance and
    /// re-creates it, so the next call starts clean. The failure's kind is decided here
    /// ([`Sandbox::classify`]); its message says what happened, without the detector's name
    /// (a verdict adds it, see `Detector::detect`).
    pub(crate) fn call<R: Send>(
        &mut self,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<R> + Send,
    ) -> Result<R, DetectorFailure> {
        let mut live = match self.live.take() {
            Some(live) => live,
            None => self.instantiate()?,
        };
        let result = self.run(&mut live, f);
        match result {
            Ok(value) => {
                self.live = Some(live);
                Ok(value)
            }
            Err(e) => {
                let failure = self.classify(&live.store, &e);
                drop(live);
                tracing::warn!(
                    detector = &*self.name,
                    reason = %failure.kind,
                    "detector call failed, instance discarded: {}", failure.message
                );
                self.reinstantiations += 1;
                match self.instantiate() {
                    Ok(fresh) => self.live = Some(fresh),
                    Err(again) => tracing::error!(
                        detector = &*self.name,
                        "detector {}; will retry on the next call",
                        again.message
                    ),
                }
                Err(failure)
            }
        }
    }

    fn classify(&self, store: &Store<HostState>, e: &wasmtime::Error) -> DetectorFailure {
        let state = store.data();
        if let Some(wanted) = state.limiter.exceeded {
            return DetectorFailure {
                kind: FailureKind::OutOfMemory,
                message: format!(
                    "exceeded its memory limit of {} (asked for {})",
                    human_bytes(self.memory_limit),
                    human_bytes(wanted)
                ),
            };
        }
        let trap = e.downcast_ref::<Trap>();
        if trap == Some(&Trap::Interrupt) {
            return DetectorFailure {
                kind: FailureKind::Timeout,
                message: format!("exceeded its {:?} deadline", self.call_deadline),
            };
        }
        let what = match trap {
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        let message = match &state.last_words() {
            Some(panic) => format!("trapped ({what}) after {panic}"),
            None => format!("trapped: {what}"),
        };
        DetectorFailure {
            kind: FailureKind::Trap,
            message,
        }
    }
}

/// Times a call.
pub(crate) fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_caps_and_strips_controls() {
        assert_eq!(sanitize("a\nb\x1b[31m", 100), "a b [31m");
        assert_eq!(sanitize("héllo", 2), "h...(truncated)");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
