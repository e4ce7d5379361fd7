// The engine configuration, in one place for two users: `sandbox::engine()` (the runtime)
// and `build.rs` (which precompiles the bundled detectors with it, `include!`ing this file).
// Plain items only: no `crate::` paths, no doc comments on the file (it is included).

/// The configuration of the engine every detector of a set shares: component model on,
/// epoch interruption on, no backtraces (guests are stripped, and a trap message is what a
/// person needs).
///
/// `target`: `None` compiles for this process's CPU (the runtime: wasmtime infers the CPU
/// features). `Some(triple)` compiles for that target's baseline CPU (the build script:
/// code that any CPU of the binary's target runs, whatever the build machine has).
/// Precompiled code of the second kind loads into an engine of the first: wasmtime checks,
/// at `Component::deserialize`, that every CPU feature the code uses is present.
pub(crate) fn engine_config(target: Option<&str>) -> wasmtime::Result<wasmtime::Config> {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .wasm_backtrace_max_frames(None)
        .parallel_compilation(true);
    if let Some(target) = target {
        config.target(target)?;
    }
    Ok(config)
}
