//! Deny-by-default WASI (preview 2) for declared detectors whose language runtime imports
//! it (a Python guest built by componentize-py, a JavaScript guest built by jco). Only a
//! declaration with `wasi: true` ([`crate::Spec::wasi`]) gets this linker; bundled Rust
//! detectors and undeclared plugins keep the all-traps linker of `sandbox.rs`.
//!
//! What such a guest gets (wasmtime-wasi 48, `wasi:*@0.2.x`):
//! - `wasi:io/{error,poll,streams}`: streams exist only for stdin/stdout/stderr;
//! - `wasi:cli/{stdout,stderr}`: captured per call into the host's log, tagged with the
//!   detector and the stream, capped like the contract's `log` import (lines per call,
//!   bytes per line, control characters replaced); the guest never sees a write error;
//! - `wasi:cli/stdin`: empty (end of file at once);
//! - `wasi:cli/{environment,exit,terminal-*}`: no variables, no arguments, no working
//!   directory, no terminal; `exit` ends the call as a trap;
//! - `wasi:filesystem/{preopens,types}`: no preopened directory, so no descriptor at all:
//!   `open("/etc/passwd")` fails in the guest (Python: `FileNotFoundError`/`OSError`);
//! - `wasi:clocks/wall-clock` and `wasi:clocks/monotonic-clock`: the host's clocks (for
//!   Python's `time` module; the example detector never reads them); waiting on a timer (`time.sleep`,
//!   `subscribe-duration`, `subscribe-instant`) is cut to the call deadline plus two epoch
//!   ticks, so a sleep cannot outlast it: after the cut the epoch deadline has passed and
//!   the call ends as a timeout;
//! - `wasi:random/{random,insecure,insecure-seed}`: the host's generators, at most
//!   [`MAX_RANDOM_BYTES`] per request (needed: componentize-py's runtime reads 2 KiB of
//!   `get-random-bytes`, after `get-environment` and `get-arguments`, on its first call);
//! - `wasi:sockets/*` (`network`, `instance-network`, `tcp`, `tcp-create-socket`, `udp`,
//!   `udp-create-socket`, `ip-name-lookup`): linked (a guest's socket module must link)
//!   but denied three times over: TCP, UDP and name lookups are off in the context, and the
//!   address check refuses every address, so creating a socket returns `access-denied` and
//!   resolving a name `permanent-resolver-failure`, before any DNS query (componentize-py's
//!   CPython has no `socket` module at all);
//! - any import of another package (`wasi:http`, ...) is defined as a trap
//!   (`sandbox::stub_unlinked`).
//!
//! The store is the detector's usual one, so the memory limiter and the epoch deadline of
//! `sandbox.rs` apply unchanged; host-side resources are bounded too (the resource table
//! holds at most [`MAX_RESOURCES`] handles).
//!
//! wasmtime-wasi's synchronous bindings block on a tokio runtime inside some host calls
//! (stream writes, `poll`): [`outside_async`] runs a WASI guest's call where that is
//! allowed, whatever thread the caller is on.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets, sync};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::sandbox::{HostState, sanitize};

/// Largest `get-random-bytes` request served (wasmtime-wasi's default is 64 MiB, allocated
/// by the host outside the guest's memory limit).
pub(crate) const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Handles (streams, pollables...) one instance may hold at once.
pub(crate) const MAX_RESOURCES: usize = 10_000;

/// The WASI interfaces above, added to a linker that already has the contract's.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let l = linker;
    // wasi:io
    sync::io::error::add_to_linker::<HostState, HasSelf<ResourceTable>>(l, table)?;
    sync::io::poll::add_to_linker::<HostState, HasSelf<ResourceTable>>(l, table)?;
    sync::io::streams::add_to_linker::<HostState, HasSelf<ResourceTable>>(l, table)?;
    // wasi:clocks (timers cut to the call deadline)
    clocks::wall_clock::add_to_linker::<HostState, wasmtime_wasi::clocks::WasiClocks>(
        l,
        HostState::clocks,
    )?;
    clocks::monotonic_clock::add_to_linker::<HostState, CappedClocks>(l, capped_clocks)?;
    // wasi:random
    random::random::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    // wasi:filesystem (no preopens: no descriptor)
    filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    sync::filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    // wasi:cli
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    // wasi:sockets (every use denied by the context)
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView as _};
    sockets::instance_network::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::network::add_to_linker::<HostState, WasiSockets>(
        l,
        &sync::LinkOptions::default().into(),
        HostState::sockets,
    )?;
    sockets::ip_name_lookup::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sync::sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sync::sockets::udp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sync::sockets::udp_create_socket::add_to_linker::<HostState, WasiSockets>(
        l,
        HostState::sockets,
    )?;
    Ok(())
}

/// What the WASI linker defines: interface names (without version) and the version prefix
/// an import needs to resolve to them (wasmtime resolves `0.2.x` imports to the `0.2.12`
/// definitions of wasmtime-wasi 48, and `1.x` to the contract's `1.1.0`).
const LINKED: &[(&str, &str)] = &[
    ("wasi:io/error", "0.2."),
    ("wasi:io/poll", "0.2."),
    ("wasi:io/streams", "0.2."),
    ("wasi:clocks/wall-clock", "0.2."),
    ("wasi:clocks/monotonic-clock", "0.2."),
    ("wasi:random/random", "0.2."),
    ("wasi:random/insecure", "0.2."),
    ("wasi:random/insecure-seed", "0.2."),
    ("wasi:filesystem/preopens", "0.2."),
    ("wasi:filesystem/types", "0.2."),
    ("wasi:cli/exit", "0.2."),
    ("wasi:cli/environment", "0.2."),
    ("wasi:cli/stdin", "0.2."),
    ("wasi:cli/stdout", "0.2."),
    ("wasi:cli/stderr", "0.2."),
    ("wasi:cli/terminal-input", "0.2."),
    ("wasi:cli/terminal-output", "0.2."),
    ("wasi:cli/terminal-stdin", "0.2."),
    ("wasi:cli/terminal-stdout", "0.2."),
    ("wasi:cli/terminal-stderr", "0.2."),
    ("wasi:sockets/network", "0.2."),
    ("wasi:sockets/instance-network", "0.2."),
    ("wasi:sockets/ip-name-lookup", "0.2."),
    ("wasi:sockets/tcp", "0.2."),
    ("wasi:sockets/tcp-create-socket", "0.2."),
    ("wasi:sockets/udp", "0.2."),
    ("wasi:sockets/udp-create-socket", "0.2."),
];

/// Whether the WASI linker resolves `import` (`name@version`): the contract's interfaces
/// and the WASI ones above, any semver-compatible version.
pub(crate) fn linked(import: &str) -> bool {
    crate::sandbox::contract_linked(import) || crate::sandbox::in_table(LINKED, import)
}

fn table(s: &mut HostState) -> &mut ResourceTable {
    &mut s.wasi_state().table
}

/// One WASI instance's state: its context (no preopens, environment, arguments or
/// network), resource table and output capture.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    capture: Arc<Mutex<Capture>>,
    /// Longest wait a timer may impose (the call deadline).
    max_wait: Duration,
}

/// Limits of one WASI instance.
#[derive(Debug, Clone)]
pub(crate) struct WasiLimits {
    pub max_lines: u32,
    pub max_line_bytes: usize,
    pub max_wait: Duration,
}

impl WasiState {
    pub(crate) fn new(detector: Arc<str>, limits: &WasiLimits) -> Self {
        let capture = Arc::new(Mutex::new(Capture {
            detector,
            max_lines: limits.max_lines,
            max_line_bytes: limits.max_line_bytes,
            lines: 0,
            dropped: 0,
            pending: [Vec::new(), Vec::new()],
            last_stderr: None,
            in_traceback: false,
            exception_seen: false,
        }));
        let ctx = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(bytes::Bytes::new()))
            .stdout(Pipe {
                stream: Stream::Stdout,
                capture: capture.clone(),
            })
            .stderr(Pipe {
                stream: Stream::Stderr,
                capture: capture.clone(),
            })
            // The address check refuses every address by default.
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        WasiState {
            ctx,
            table,
            capture,
            max_wait: limits.max_wait,
        }
    }

    /// Renames the detector its output is tagged with.
    pub(crate) fn set_detector(&mut self, detector: Arc<str>) {
        lock(&self.capture).detector = detector;
    }

    /// Starts a call: a fresh line budget.
    pub(crate) fn reset_call(&mut self) {
        let mut c = lock(&self.capture);
        c.lines = 0;
        c.dropped = 0;
        c.last_stderr = None;
        c.in_traceback = false;
        c.exception_seen = false;
    }

    /// Ends a call: logs unterminated lines; returns the lines dropped by the cap.
    pub(crate) fn end_call(&mut self) -> u32 {
        let mut c = lock(&self.capture);
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut c.pending[stream as usize]);
            if !pending.is_empty() {
                c.emit(stream, &pending);
            }
        }
        c.dropped
    }

    /// The last line the guest wrote to stderr in this call (a Python traceback's last
    /// line names the exception).
    pub(crate) fn last_stderr(&self) -> Option<String> {
        lock(&self.capture).last_stderr.clone()
    }
}

fn lock(m: &Mutex<Capture>) -> std::sync::MutexGuard<'_, Capture> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let state = self.wasi_state();
        WasiCtxView {
            ctx: &mut state.ctx,
            table: &mut state.table,
        }
    }
}

// --- stdout / stderr into the log ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout = 0,
    Stderr = 1,
}

struct Capture {
    detector: Arc<str>,
    max_lines: u32,
    max_line_bytes: usize,
    /// Lines logged in this call (stdout and stderr together).
    lines: u32,
    /// Lines not logged in this call (over `max_lines`).
    dropped: u32,
    /// Unterminated line of each stream, at most `max_line_bytes + 1` bytes kept.
    pending: [Vec<u8>; 2],
    /// The line of stderr that says best why a call failed (see [`Capture::remember`]).
    last_stderr: Option<String>,
    /// A Python traceback started on stderr and its exception line has not come yet.
    in_traceback: bool,
    /// That exception line came: later lines (the runtime's own panic) do not replace it.
    exception_seen: bool,
}

impl Capture {
    /// Keeps the last non-empty line of stderr, except that the exception line ending a
    /// Python traceback (the first unindented line after `Traceback (most recent call
    /// last):`) is kept over what follows it (componentize-py's runtime then reports its
    /// own panic on stderr).
    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if line.starts_with("Traceback (most recent call last)") {
            self.in_traceback = true;
            self.exception_seen = false;
        } else if self.in_traceback && !line.starts_with(' ') {
            self.in_traceback = false;
            self.exception_seen = true;
            self.last_stderr = Some(line.to_string());
        } else if !self.in_traceback && !self.exception_seen {
            self.last_stderr = Some(line.to_string());
        }
    }

    fn write(&mut self, stream: Stream, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.pending[stream as usize]);
            self.keep(&mut line, &bytes[..nl]);
            self.emit(stream, &line);
            bytes = &bytes[nl + 1..];
        }
        let mut pending = std::mem::take(&mut self.pending[stream as usize]);
        self.keep(&mut pending, bytes);
        self.pending[stream as usize] = pending;
    }

    /// Appends to a line, keeping one byte past the cap so truncation shows.
    fn keep(&self, line: &mut Vec<u8>, bytes: &[u8]) {
        let room = (self.max_line_bytes + 1).saturating_sub(line.len());
        line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self, stream: Stream, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let line = sanitize(text.trim_end_matches('\r'), self.max_line_bytes);
        if stream == Stream::Stderr {
            self.remember(&line);
        }
        if self.lines >= self.max_lines {
            self.dropped += 1;
            return;
        }
        self.lines += 1;
        let detector = &*self.detector;
        match stream {
            Stream::Stdout => {
                tracing::info!(target: "detector", detector, stream = "stdout", "{line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "detector", detector, stream = "stderr", "{line}")
            }
        }
    }
}

/// stdout or stderr of one instance.
#[derive(Clone)]
struct Pipe {
    stream: Stream,
    capture: Arc<Mutex<Capture>>,
}

impl Pipe {
    fn write_all(&self, bytes: &[u8]) {
        lock(&self.capture).write(self.stream, bytes);
    }
}

/// Budget a guest may write before `check-write` asks again (always available: output
/// past the caps is dropped, never refused).
const WRITE_BUDGET: usize = 64 << 10;

impl OutputStream for Pipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.write_all(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Pipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_all(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Pipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Pipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

// --- monotonic clock whose timers cannot outlast the call deadline ---

struct CappedClocks;

impl wasmtime::component::HasData for CappedClocks {
    type Data<'a> = Capped<'a>;
}

struct Capped<'a> {
    clocks: WasiClocksCtxView<'a>,
    max_wait: Duration,
}

fn capped_clocks(s: &mut HostState) -> Capped<'_> {
    let max_wait = s.wasi_state().max_wait;
    Capped {
        clocks: s.clocks(),
        max_wait,
    }
}

impl Capped<'_> {
    fn cap(&self, nanos: u64) -> u64 {
        let max = u64::try_from(self.max_wait.as_nanos()).unwrap_or(u64::MAX);
        nanos.min(max)
    }
}

impl clocks::monotonic_clock::Host for Capped<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        clocks::monotonic_clock::Host::now(&mut self.clocks)
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        clocks::monotonic_clock::Host::resolution(&mut self.clocks)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let now = clocks::monotonic_clock::Host::now(&mut self.clocks)?;
        let wait = self.cap(when.saturating_sub(now));
        clocks::monotonic_clock::Host::subscribe_duration(&mut self.clocks, wait)
    }

    fn subscribe_duration(&mut self, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = self.cap(nanos);
        clocks::monotonic_clock::Host::subscribe_duration(&mut self.clocks, wait)
    }
}

// --- where a WASI guest's call may run ---

/// Runs `f` (a call into a WASI guest) where wasmtime-wasi's host calls may block on
/// tokio: directly when no runtime is entered (a plain thread, `spawn_blocking`), through
/// `block_in_place` on a multi-threaded runtime's thread, and on a scoped thread of its
/// own under a current-thread runtime (where blocking in place is not allowed).
pub(crate) fn outside_async<R: Send>(f: impl FnOnce() -> R + Send) -> std::thread::Result<R> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => Ok(f()),
        Ok(RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(f)),
        Ok(_) => std::thread::scope(|s| s.spawn(f).join()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(max_lines: u32, max_line_bytes: usize) -> Capture {
        Capture {
            detector: Arc::from("t"),
            max_lines,
            max_line_bytes,
            lines: 0,
            dropped: 0,
            pending: [Vec::new(), Vec::new()],
            last_stderr: None,
            in_traceback: false,
            exception_seen: false,
        }
    }

    fn state() -> WasiState {
        WasiState::new(
            Arc::from("t"),
            &WasiLimits {
                max_lines: 8,
                max_line_bytes: 64,
                max_wait: Duration::from_millis(100),
            },
        )
    }

    #[test]
    fn the_context_has_no_files_environment_or_network() {
        use wasmtime_wasi::cli::WasiCliCtxView;
        use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
        use wasmtime_wasi::sockets::WasiSocketsCtxView;
        let mut s = state();
        let WasiState { ctx, table, .. } = &mut s;

        let mut fs = WasiFilesystemCtxView {
            ctx: ctx.filesystem(),
            table,
        };
        assert!(
            filesystem::preopens::Host::get_directories(&mut fs)
                .unwrap()
                .is_empty()
        );

        let mut cli = WasiCliCtxView {
            ctx: ctx.cli(),
            table,
        };
        assert!(
            cli::environment::Host::get_environment(&mut cli)
                .unwrap()
                .is_empty()
        );
        assert!(
            cli::environment::Host::get_arguments(&mut cli)
                .unwrap()
                .is_empty()
        );
        assert_eq!(cli::environment::Host::initial_cwd(&mut cli).unwrap(), None);

        let mut net = WasiSocketsCtxView {
            ctx: ctx.sockets(),
            table,
        };
        use sockets::network::IpAddressFamily;
        let tcp =
            sockets::tcp_create_socket::Host::create_tcp_socket(&mut net, IpAddressFamily::Ipv4);
        assert!(format!("{:?}", tcp.err()).contains("access-denied"));
        let udp = sync::sockets::udp_create_socket::Host::create_udp_socket(
            &mut net,
            IpAddressFamily::Ipv6,
        );
        assert!(format!("{:?}", udp.err()).contains("access-denied"));
        let network = sockets::instance_network::Host::instance_network(&mut net).unwrap();
        let lookup = sockets::ip_name_lookup::Host::resolve_addresses(
            &mut net,
            network,
            "kubernetes.default.svc".into(),
        );
        // wasmtime-wasi answers a disallowed lookup before any DNS query (a failed query
        // would be `name-unresolvable`).
        assert!(format!("{:?}", lookup.err()).contains("permanent-resolver-failure"));
    }

    #[test]
    fn timers_wait_at_most_the_call_deadline() {
        let mut s = state();
        let WasiState { ctx, table, .. } = &mut s;
        let mut capped = Capped {
            clocks: WasiClocksCtxView {
                ctx: ctx.clocks(),
                table,
            },
            max_wait: Duration::from_millis(100),
        };
        assert_eq!(capped.cap(u64::MAX), 100_000_000);
        assert_eq!(capped.cap(5), 5);
        use clocks::monotonic_clock::Host as _;
        let now = capped.now().unwrap();
        assert!(capped.subscribe_instant(u64::MAX).is_ok());
        assert!(capped.subscribe_instant(now).is_ok());
        assert!(capped.subscribe_duration(u64::MAX).is_ok());
    }

    #[test]
    fn linked_interfaces_resolve_by_semver() {
        assert!(linked("wasi:cli/environment@0.2.9"));
        assert!(linked("wasi:io/streams@0.2.0"));
        assert!(linked("dynamic-toolset:detector/log@1.0.0"));
        assert!(!linked("wasi:cli/environment@0.3.0"));
        assert!(linked("wasi:sockets/tcp@0.2.9"));
        assert!(!linked("wasi:sockets/tcp@0.3.0"));
        assert!(!linked("wasi:http/outgoing-handler@0.2.0"));
        assert!(!linked("dynamic-toolset:detector/log@2.0.0"));
    }

    #[test]
    fn lines_are_split_capped_and_counted() {
        let mut c = capture(2, 8);
        c.write(Stream::Stdout, b"one\ntw");
        assert_eq!(c.lines, 1);
        c.write(Stream::Stdout, b"o\nthree\nfour\n");
        assert_eq!((c.lines, c.dropped), (2, 2));
        c.write(Stream::Stderr, b"a very long line indeed\n");
        assert_eq!(c.last_stderr.as_deref(), Some("a very l...(truncated)"));
        assert!(c.pending.iter().all(Vec::is_empty));
    }

    #[test]
    fn a_python_traceback_leaves_its_exception_line() {
        let mut c = capture(32, 200);
        c.write(
            Stream::Stderr,
            b"Traceback (most recent call last):\n  File \"/0/app.py\", line 3, in detect\n\
ValueError: boom\n\nthread '<unnamed>' panicked at runtime/src/lib.rs:1:1:\n\
Python function threw an unexpected exception\n",
        );
        assert_eq!(c.last_stderr.as_deref(), Some("ValueError: boom"));
        let mut c = capture(32, 200);
        c.write(Stream::Stderr, b"warning: first\nerror: second\n");
        assert_eq!(c.last_stderr.as_deref(), Some("error: second"));
    }

    #[test]
    fn an_endless_line_is_kept_bounded() {
        let mut c = capture(2, 8);
        for _ in 0..1000 {
            c.write(Stream::Stdout, &[b'x'; 100]);
        }
        assert_eq!(c.pending[0].len(), 9);
        assert_eq!(c.lines, 0);
    }
}
