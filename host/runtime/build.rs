//! Builds the bundled detector components (every `guest-detectors/<name>` except the SDK)
//! through `guest-build` and generates `OUT_DIR/bundled.rs`, which embeds them with
//! `include_bytes!`.
//!
//! `DYNAMIC_TOOLSET_PREBUILT_DETECTORS=<dir>` skips the nested cargo build and embeds every
//! `*.wasm` of that directory instead (Docker builds, where the guests are built in an
//! earlier stage); a file `detector_<name>.wasm` is embedded as `<name>`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const PREBUILT_ENV: &str = "DYNAMIC_TOOLSET_PREBUILT_DETECTORS";

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
    println!("cargo:rerun-if-changed=build.rs");

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
    std::fs::write(out_dir.join("bundled.rs"), generated)?;
    Ok(())
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
