//! `cargo xtask new-detector NAME --path DIR`: creates a detector crate outside this
//! repository, its own workspace, depending on this checkout's guest SDK by path (the SDK is
//! on no registry): `Cargo.toml`, `src/lib.rs` (an example detector), `tests/example.rs`
//! (the SDK's harness over `manifests/example.yaml`), a README with the build, test and ship
//! commands, and `Cargo.lock` seeded from this checkout's (the versions the SDK is tested
//! with, so an offline build finds them). `cargo build --release --target wasm32-wasip2` run
//! inside it builds the component: rustc emits a component for that target directly.
//!
//! Standard library, anyhow and clap only: `tests/new_detector.rs` includes this file.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail, ensure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detector and crate name: a lowercase letter, then lowercase letters, digits and `-`
    /// (at most 64 characters), not the name of a bundled detector.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Directory of the new crate: outside this repository, and absent or empty.
    #[arg(long, value_name = "DIR")]
    pub path: PathBuf,
}

/// Path of the guest SDK under the workspace root.
pub const SDK_DIR: &str = "guest-detectors/sdk";

const CARGO_TOML: &str = include_str!("new_detector/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("new_detector/lib.rs.tmpl");
const EXAMPLE_TEST: &str = include_str!("new_detector/example_test.rs.tmpl");
const EXAMPLE_YAML: &str = include_str!("new_detector/example.yaml.tmpl");
const README: &str = include_str!("new_detector/README.md.tmpl");
const GITIGNORE: &str = include_str!("new_detector/gitignore.tmpl");

/// Names a detector crate cannot take: Rust keywords (the library is used as `<name>::`),
/// names cargo reserves, the SDK's, and words YAML reads as something other than text.
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "std",
    "test",
    "proc-macro",
    "sdk",
    "detector-sdk",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
];

/// What was created.
#[derive(Debug)]
pub struct Created {
    /// The crate's directory (absolute).
    pub dir: PathBuf,
    /// Its package name (the detector's name).
    pub package: String,
    /// Where `cargo build --release --target wasm32-wasip2` puts the component, relative to
    /// the target directory.
    pub component: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let created = create(root, &args.name, &args.path)?;
    let dir = created.dir.display();
    println!("created detector crate `{}` in {dir}\n", created.package);
    println!("  cd {dir}");
    println!("  rustup target add wasm32-wasip2   # once");
    println!("  cargo test");
    println!("  cargo build --release --target wasm32-wasip2");
    println!(
        "  # in {}: cargo run -p dynamic-toolset -- detectors test {dir}/target/{} -m {dir}/manifests",
        root.display(),
        created.component.display()
    );
    Ok(())
}

/// Creates the crate `name` in `dir`, depending on the SDK of `workspace_root`.
pub fn create(workspace_root: &Path, name: &str, dir: &Path) -> anyhow::Result<Created> {
    check_name(workspace_root, name)?;
    let root = workspace_root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", workspace_root.display()))?;
    let dir = resolve(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    ensure!(
        !dir.starts_with(&root),
        "{} is inside this repository ({}): a detector crate made here would be built as part \
         of this workspace; choose a directory outside it (e.g. --path ../{name})",
        dir.display(),
        root.display()
    );
    if dir.exists() {
        ensure!(
            dir.is_dir(),
            "{} exists and is not a directory",
            dir.display()
        );
        let mut entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        ensure!(
            entries.next().is_none(),
            "{} exists and is not empty: refusing to write into it",
            dir.display()
        );
    }
    let sdk = root.join(SDK_DIR);
    ensure!(
        sdk.join("Cargo.toml").is_file(),
        "no guest SDK at {}",
        sdk.display()
    );
    let lib = name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("@NAME@", name)
            .replace("@LIB@", &lib)
            .replace("@TYPE@", &type_name(name))
            .replace("@SDK@", &toml_escape(&sdk.display().to_string()))
            .replace("@ROOT@", &root.display().to_string())
    };
    let mut files = vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("tests/example.rs", fill(EXAMPLE_TEST)),
        ("manifests/example.yaml", fill(EXAMPLE_YAML)),
        ("README.md", fill(README)),
        (".gitignore", GITIGNORE.to_string()),
    ];
    if let Ok(lock) = std::fs::read_to_string(root.join("Cargo.lock")) {
        files.push(("Cargo.lock", lock));
    }
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Created {
        dir,
        package: name.to_string(),
        component: Path::new("wasm32-wasip2/release").join(format!("{lib}.wasm")),
    })
}

/// A detector and crate name the host and cargo both accept, clashing with nothing.
fn check_name(workspace_root: &Path, name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name.len() <= 64;
    ensure!(
        well_formed,
        "`{name}` is not a detector name: a lowercase letter, then lowercase letters, digits \
         and single `-`, at most 64 characters (e.g. acme-metrics)"
    );
    ensure!(
        !RESERVED.contains(&name) && !RESERVED.contains(&name.replace('-', "_").as_str()),
        "`{name}` is reserved (a Rust keyword, a name cargo or YAML treats specially, or the \
         SDK's); choose another"
    );
    let bundled = workspace_root.join("guest-detectors").join(name);
    if bundled.join("Cargo.toml").is_file() {
        bail!(
            "`{name}` is a bundled detector's name: the host would refuse a second detector \
             by that name; choose another (e.g. {name}-custom)"
        );
    }
    Ok(())
}

/// `acme-metrics` -> `AcmeMetrics`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Text inside a TOML basic string.
fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `dir` made absolute, `.` and `..` removed, and symbolic links resolved in the part that
/// exists.
fn resolve(dir: &Path) -> std::io::Result<PathBuf> {
    let mut lexical = PathBuf::new();
    for c in std::path::absolute(dir)?.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.as_path();
    let mut missing = Vec::new();
    while !existing.exists() {
        let (Some(last), Some(parent)) = (existing.file_name(), existing.parent()) else {
            break;
        };
        missing.push(last.to_owned());
        existing = parent;
    }
    let mut resolved = existing.canonicalize()?;
    resolved.extend(missing.iter().rev());
    Ok(resolved)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-new-detector-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn names() {
        for good in ["acme", "acme-metrics", "a1", "x-2-y"] {
            check_name(&root(), good).unwrap();
        }
        for bad in [
            "",
            "Acme",
            "1acme",
            "acme-",
            "a--b",
            "a_b",
            "a.b",
            &"a".repeat(65),
        ] {
            let e = check_name(&root(), bad).unwrap_err().to_string();
            assert!(e.contains("is not a detector name"), "{bad}: {e}");
        }
        for reserved in ["fn", "test", "detector-sdk", "null", "proc-macro"] {
            let e = check_name(&root(), reserved).unwrap_err().to_string();
            assert!(e.contains("reserved"), "{reserved}: {e}");
        }
        let e = check_name(&root(), "prometheus").unwrap_err().to_string();
        assert!(e.contains("bundled detector"), "{e}");
        assert_eq!(type_name("acme-metrics-2"), "AcmeMetrics2");
        assert_eq!(toml_escape(r#"C:\a "b""#), r#"C:\\a \"b\""#);
    }

    #[test]
    fn refuses_directories_inside_the_repository_or_not_empty() {
        let inside = root().join("target/../guest-detectors/acme");
        let e = create(&root(), "acme", &inside).unwrap_err().to_string();
        assert!(e.contains("is inside this repository"), "{e}");
        assert!(!root().join("guest-detectors/acme").exists());

        let full = scratch("full");
        std::fs::create_dir_all(&full).unwrap();
        std::fs::write(full.join("keep.txt"), "mine").unwrap();
        let e = create(&root(), "acme", &full).unwrap_err().to_string();
        assert!(e.contains("is not empty"), "{e}");
        assert_eq!(
            std::fs::read_to_string(full.join("keep.txt")).unwrap(),
            "mine"
        );
        std::fs::remove_dir_all(&full).unwrap();
    }

    #[test]
    fn creates_a_crate_of_its_own_on_this_sdk() {
        let base = scratch("ok");
        let dir = base.join("nested/acme-metrics");
        let created = create(&root(), "acme-metrics", &dir).unwrap();
        assert_eq!(created.package, "acme-metrics");
        assert_eq!(
            created.component,
            Path::new("wasm32-wasip2/release/acme_metrics.wasm")
        );
        let read = |f: &str| std::fs::read_to_string(created.dir.join(f)).unwrap();
        let manifest = read("Cargo.toml");
        assert!(manifest.contains("name = \"acme-metrics\""));
        assert!(manifest.contains("\n[workspace]\n"));
        let sdk = root().canonicalize().unwrap().join(SDK_DIR);
        assert!(manifest.contains(&format!(
            "detector-sdk = {{ path = \"{}\" }}",
            sdk.display()
        )));
        assert!(read("src/lib.rs").contains("pub struct AcmeMetrics;"));
        assert!(read("tests/example.rs").contains("use acme_metrics::AcmeMetrics;"));
        assert!(read("manifests/example.yaml").contains("app.kubernetes.io/name: acme-metrics"));
        assert!(read("README.md").contains("target/wasm32-wasip2/release/acme_metrics.wasm"));
        assert!(read("Cargo.lock").contains("name = \"wit-bindgen\""));
        for f in [
            "src/lib.rs",
            "tests/example.rs",
            "manifests/example.yaml",
            "README.md",
        ] {
            assert!(!read(f).contains('@'), "{f}: a placeholder is left");
        }
        // An existing empty directory is fine too.
        let empty = scratch("empty");
        std::fs::create_dir_all(&empty).unwrap();
        create(&root(), "acme", &empty).unwrap();
        std::fs::remove_dir_all(&empty).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
