//! Builds the bundled detector components (every `guest-detectors/<name>` except the SDK)
//! through `guest-build`, precompiles them for the binary's target with the runtime's own
//! engine configuration (`src/engine_config.rs`), and generates `OUT_DIR/bundled.rs`, which
//! embeds both with `include_bytes!`: `BUNDLED` (the components) and `PRECOMPILED` (the
//! `Engine::precompile_component` output, keyed by the component's sha256), so a process
//! deserializes the bundled detectors instead of compiling them.
//!
//! `DYNAMIC_TOOLSET_PREBUILT_DETECTORS=<dir>` skips the nested cargo build and embeds every
//! `*.wasm` of that directory instead (Docker builds, where the guests are built in an
//! earlier stage); a file `detector_<name>.wasm` is embedded as `<name>`.
//!
//! `DYNAMIC_TOOLSET_PRECOMPILE=0` skips the precompilation (the binary then compiles the
//! bundled detectors at load, as third-party ones). A target wasmtime cannot compile for,
//! or a component that fails to precompile, is skipped with a cargo warning, not an error:
//! the runtime compiles what has no precompiled code.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

include!("src/engine_config.rs");

const PREBUILT_ENV: &str = "DYNAMIC_TOOLSET_PREBUILT_DETECTORS";
const PRECOMPILE_ENV: &str = "DYNAMIC_TOOLSET_PRECOMPILE";

fn main() {
    if let Err(err) = run() {
        // Build scripts report failures by panicking; the message is what cargo shows.
        panic!("building the bundled detectors failed: {err}");
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-env-changed={PREBUILT_ENV}");
    println!("cargo:rerun-if-env-changed={PRECOMPILE_ENV}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/engine_config.rs");

    let components: Vec<(String, PathBuf)> = match std::env::var_os(PREBUILT_ENV) {
        Some(dir) => prebuilt(Path::new(&dir))?,
        None => {
            let root = guest_build::find_workspace_root(&manifest_dir)
                .ok_or_else(|| format!("no workspace root above {}", manifest_dir.display()))?;
            for watched in ["guest-detectors", "wit", "Cargo.lock"] {
                println!("cargo:rerun-if-changed={}", root.join(watched).display());
            }
            let opts = guest_build::Options::bundled(&root)?;
            guest_build::build(&opts)?
                .into_iter()
                .map(|g| (g.name, g.path))
                .collect()
        }
    };

    // Copy into OUT_DIR so a later guest rebuild cannot change the bytes under rustc.
    let mut generated = String::from(
        "/// Bundled detector components: (name, wasm component bytes), sorted by name.\n\
         pub static BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &components {
        let copy = out_dir.join(format!("bundled_{name}.wasm"));
        std::fs::copy(path, &copy)
            .map_err(|e| format!("copying {} to {}: {e}", path.display(), copy.display()))?;
        writeln!(
            generated,
            "    ({name:?}, include_bytes!({:?})),",
            copy.display().to_string()
        )?;
    }
    generated.push_str("];\n");
    precompile(&components, &out_dir, &mut generated)?;
    std::fs::write(out_dir.join("bundled.rs"), generated)?;
    Ok(())
}

/// Precompiles every component for `TARGET` and appends `PRECOMPILED` (sha256 of the
/// component, precompiled bytes) and `PRECOMPILE_SKIPPED` (why some or all were not) to
/// `generated`. Failures become cargo warnings: the runtime compiles what is missing.
fn precompile(
    components: &[(String, PathBuf)],
    out_dir: &Path,
    generated: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    match precompile_engine() {
        Err(reason) => skipped.push(reason),
        Ok(engine) => {
            for (name, path) in components {
                let bytes =
                    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                let sha256 = hex::encode(Sha256::digest(&bytes));
                match engine.precompile_component(&bytes) {
                    Ok(code) => {
                        let file = out_dir.join(format!("bundled_{name}.cwasm"));
                        std::fs::write(&file, code)
                            .map_err(|e| format!("writing {}: {e}", file.display()))?;
                        entries.push((sha256, file));
                    }
                    Err(e) => skipped.push(format!("`{name}` failed to precompile: {e:#}")),
                }
            }
        }
    }
    for reason in &skipped {
        println!("cargo:warning=bundled detectors: {reason} (compiled at load instead)");
    }
    generated.push_str(
        "\n/// Bundled detectors precompiled for this binary's target with the runtime's engine\n\
         /// configuration: (sha256 of the component, hex; `Engine::precompile_component` output).\n\
         pub static PRECOMPILED: &[(&str, &[u8])] = &[\n",
    );
    for (sha256, file) in &entries {
        writeln!(
            generated,
            "    ({sha256:?}, include_bytes!({:?})),",
            file.display().to_string()
        )?;
    }
    generated.push_str("];\n");
    let skipped = (!skipped.is_empty()).then(|| skipped.join("; "));
    writeln!(
        generated,
        "\n/// Why some or all bundled detectors were not precompiled at build time.\n\
         pub static PRECOMPILE_SKIPPED: Option<&str> = {skipped:?};"
    )?;
    Ok(())
}

/// The runtime's engine configuration, for the binary's target (not the build machine's:
/// a cross build precompiles for its target, and only the target's baseline CPU features
/// are used, so the code runs on any CPU of that target).
fn precompile_engine() -> Result<wasmtime::Engine, String> {
    if std::env::var(PRECOMPILE_ENV).is_ok_and(|v| v == "0") {
        return Err(format!("{PRECOMPILE_ENV}=0"));
    }
    let target = std::env::var("TARGET").map_err(|e| format!("TARGET: {e}"))?;
    let config = engine_config(Some(&target))
        .map_err(|e| format!("no engine configuration for target {target}: {e:#}"))?;
    wasmtime::Engine::new(&config).map_err(|e| format!("no engine for target {target}: {e:#}"))
}

/// Every `*.wasm` of `dir`, sorted by name.
fn prebuilt(dir: &Path) -> Result<Vec<(String, PathBuf)>, Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("{PREBUILT_ENV}={}: {e}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: file name is not UTF-8", path.display()))?;
        let name = stem
            .strip_prefix("detector_")
            .unwrap_or(stem)
            .replace('_', "-");
        println!("cargo:rerun-if-changed={}", path.display());
        found.push((name, path));
    }
    found.sort();
    if found.is_empty() {
        return Err(format!("{PREBUILT_ENV}={}: no *.wasm files", dir.display()).into());
    }
    Ok(found)
}
