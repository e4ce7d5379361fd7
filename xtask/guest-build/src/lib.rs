//! Builds guest detector components (`wasm32-wasip2`) with a nested `cargo build`.
//!
//! Shared by `cargo xtask build-detectors`, the runtime's build script (which embeds the
//! bundled detectors in the binary) and the runtime's tests (which build hostile test
//! guests). Standard library only.
//!
//! The nested cargo runs with `--target-dir <workspace>/target/guests`, a different target
//! directory from the outer build, so it never waits on the outer build's lock. When called
//! from a build script, a test or clippy, the outer cargo's environment is scrubbed first
//! (see [`SCRUBBED_VARS`] and [`SCRUBBED_PREFIXES`]): otherwise flags, wrappers and target
//! settings meant for the host build would leak into the guest build, in the same way
//! Substrate's `wasm-builder` removes `CARGO_TARGET_DIR` and `CARGO_ENCODED_RUSTFLAGS`.

pub mod python;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Rust target of every guest.
pub const TARGET: &str = "wasm32-wasip2";
/// Cargo profile of every guest (defined in the workspace `Cargo.toml`).
pub const PROFILE: &str = "guest";
/// Directory (under `guest-detectors/`) that holds the SDK, not a detector.
const SDK_DIR: &str = "sdk";
/// Lines of cargo's stderr shown in an error.
const STDERR_TAIL_LINES: usize = 40;

/// Environment variables of an outer cargo (build script, test, clippy) that must not reach
/// the nested guest build.
pub const SCRUBBED_VARS: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_LINKER",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "CLIPPY_ARGS",
    "CLIPPY_CONF_DIR",
];

/// Prefixes of environment variables scrubbed as well (per-target and per-package settings
/// of the outer build).
pub const SCRUBBED_PREFIXES: &[&str] = &[
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_BIN_EXE_",
    "CARGO_TARGET_",
    "DEP_",
    "__CARGO",
];

/// One guest package to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    /// Short name, e.g. "prometheus".
    pub name: String,
    /// Cargo package, e.g. "detector-prometheus".
    pub package: String,
}

impl GuestSpec {
    /// A guest whose package is `<prefix><name>`.
    pub fn new(prefix: &str, name: &str) -> Self {
        Self {
            name: name.to_string(),
            package: format!("{prefix}{name}"),
        }
    }

    /// File name of the built component: the package name with `-` replaced by `_`.
    pub fn file_name(&self) -> String {
        format!("{}.wasm", self.package.replace('-', "_"))
    }
}

/// A built guest component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltGuest {
    /// Short name, e.g. "prometheus".
    pub name: String,
    /// Cargo package, e.g. "detector-prometheus".
    pub package: String,
    /// The `.wasm` component.
    pub path: PathBuf,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workspace root (the directory holding the root `Cargo.toml`).
    pub workspace_root: PathBuf,
    /// Guests to build.
    pub guests: Vec<GuestSpec>,
    /// Let cargo's progress through to stderr (xtask) instead of capturing it (build
    /// scripts, tests).
    pub show_progress: bool,
}

impl Options {
    /// Every bundled detector under `<workspace_root>/guest-detectors/`.
    pub fn bundled(workspace_root: impl Into<PathBuf>) -> Result<Self, Error> {
        let workspace_root = workspace_root.into();
        let guests = bundled_detectors(&workspace_root)?;
        Ok(Self {
            workspace_root,
            guests,
            show_progress: false,
        })
    }
}

/// Why a build failed.
#[derive(Debug)]
pub enum Error {
    /// Reading a directory failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A command could not be started.
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// `rustup target add wasm32-wasip2` failed.
    TargetMissing { stderr_tail: String },
    /// cargo failed.
    Cargo {
        packages: Vec<String>,
        status: String,
        stderr_tail: String,
    },
    /// cargo succeeded but an expected output is missing.
    MissingOutput { package: String, path: PathBuf },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Spawn { command, source } => write!(f, "cannot run `{command}`: {source}"),
            Error::TargetMissing { stderr_tail } => write!(
                f,
                "the {TARGET} target is not installed and `rustup target add {TARGET}` failed:\n{stderr_tail}"
            ),
            Error::Cargo {
                packages,
                status,
                stderr_tail,
            } => write!(
                f,
                "building guest package(s) {} for {TARGET} failed ({status}); cargo's stderr ends with:\n{stderr_tail}",
                packages.join(", ")
            ),
            Error::MissingOutput { package, path } => write!(
                f,
                "guest package {package} built but {} is missing (is its crate-type cdylib?)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Bundled detectors: every `guest-detectors/<name>/` holding a `Cargo.toml`, except the
/// SDK; package `detector-<name>`. Sorted by name.
pub fn bundled_detectors(workspace_root: &Path) -> Result<Vec<GuestSpec>, Error> {
    discover(
        &workspace_root.join("guest-detectors"),
        "detector-",
        &[SDK_DIR],
    )
}

/// Every `<dir>/<name>/` holding a `Cargo.toml`, except `skip`; package `<prefix><name>`.
/// Sorted by name.
pub fn discover(dir: &Path, prefix: &str, skip: &[&str]) -> Result<Vec<GuestSpec>, Error> {
    let io_err = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut guests = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if skip.contains(&name.as_str()) || !entry.path().join("Cargo.toml").is_file() {
            continue;
        }
        guests.push(GuestSpec::new(prefix, &name));
    }
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(guests)
}

/// Output directory of guest builds: `<workspace_root>/target/guests`.
pub fn target_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join("target").join("guests")
}

/// Where a guest's component lands.
pub fn output_path(workspace_root: &Path, guest: &GuestSpec) -> PathBuf {
    target_dir(workspace_root)
        .join(TARGET)
        .join(PROFILE)
        .join(guest.file_name())
}

/// Builds the guests in one cargo invocation and returns their components, in the order of
/// `opts.guests`.
pub fn build(opts: &Options) -> Result<Vec<BuiltGuest>, Error> {
    if opts.guests.is_empty() {
        return Ok(Vec::new());
    }
    ensure_target()?;
    let mut cmd = scrubbed_command(cargo_binary());
    cmd.current_dir(&opts.workspace_root)
        .arg("build")
        .args(["--target", TARGET, "--profile", PROFILE, "--target-dir"])
        .arg(target_dir(&opts.workspace_root));
    for guest in &opts.guests {
        cmd.args(["-p", &guest.package]);
    }
    let packages: Vec<String> = opts.guests.iter().map(|g| g.package.clone()).collect();
    let output = if opts.show_progress {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let status = cmd.status().map_err(|source| Error::Spawn {
            command: "cargo build".to_string(),
            source,
        })?;
        (status, String::new())
    } else {
        let out = cmd.output().map_err(|source| Error::Spawn {
            command: "cargo build".to_string(),
            source,
        })?;
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    if !output.0.success() {
        return Err(Error::Cargo {
            packages,
            status: output.0.to_string(),
            stderr_tail: tail(&output.1, STDERR_TAIL_LINES),
        });
    }
    opts.guests
        .iter()
        .map(|guest| {
            let path = output_path(&opts.workspace_root, guest);
            if path.is_file() {
                Ok(BuiltGuest {
                    name: guest.name.clone(),
                    package: guest.package.clone(),
                    path,
                })
            } else {
                Err(Error::MissingOutput {
                    package: guest.package.clone(),
                    path,
                })
            }
        })
        .collect()
}

/// Adds the wasm32-wasip2 target through rustup when the active toolchain lacks it
/// (`RUSTUP_AUTO_INSTALL=0` environments never add it on their own).
pub fn ensure_target() -> Result<(), Error> {
    if target_installed() {
        return Ok(());
    }
    let out = scrubbed_command("rustup".into())
        .args(["target", "add", TARGET])
        .output()
        .map_err(|source| Error::Spawn {
            command: format!("rustup target add {TARGET}"),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::TargetMissing {
            stderr_tail: tail(&String::from_utf8_lossy(&out.stderr), STDERR_TAIL_LINES),
        })
    }
}

fn target_installed() -> bool {
    let Ok(out) = scrubbed_command("rustc".into())
        .args(["--print", "sysroot"])
        .output()
    else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success()
        && Path::new(&sysroot)
            .join("lib/rustlib")
            .join(TARGET)
            .join("lib")
            .is_dir()
}

/// The cargo to run: `$CARGO` (set by an outer cargo) or `cargo` from `PATH`.
fn cargo_binary() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A command with the outer build's environment removed.
pub fn scrubbed_command(program: OsString) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if should_scrub(key) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Whether an environment variable belongs to the outer build.
pub fn should_scrub(key: &str) -> bool {
    SCRUBBED_VARS.contains(&key) || SCRUBBED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The workspace root above `start`: the nearest ancestor whose `Cargo.toml` has a
/// `[workspace]` table.
pub fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|l| l.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|| panic!("no workspace root above {}", env!("CARGO_MANIFEST_DIR")))
    }

    #[test]
    fn scrubs_outer_build_env() {
        for key in [
            "CARGO_TARGET_DIR",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_CFG_TARGET_OS",
            "CARGO_FEATURE_STD",
            "OUT_DIR",
            "TARGET",
            "CARGO_MAKEFLAGS",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
            "__CARGO_FIX_PLZ",
        ] {
            assert!(should_scrub(key), "{key} should be scrubbed");
        }
        for key in [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
            "CARGO_NET_OFFLINE",
            "CARGO",
        ] {
            assert!(!should_scrub(key), "{key} should be kept");
        }
    }

    #[test]
    fn bundled_detectors_skip_the_sdk() {
        let guests = bundled_detectors(&root()).unwrap();
        assert!(!guests.is_empty());
        assert!(guests.iter().all(|g| g.name != "sdk"));
        let prometheus = guests.iter().find(|g| g.name == "prometheus").unwrap();
        assert_eq!(prometheus.package, "detector-prometheus");
        assert_eq!(prometheus.file_name(), "detector_prometheus.wasm");
        let mut sorted = guests.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(guests, sorted);
    }

    #[test]
    fn output_paths() {
        let guest = GuestSpec::new("test-guest-", "wit-v2");
        assert_eq!(
            output_path(Path::new("/ws"), &guest),
            PathBuf::from("/ws/target/guests/wasm32-wasip2/guest/test_guest_wit_v2.wasm")
        );
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    fn unknown_package_names_the_package() {
        let opts = Options {
            workspace_root: root(),
            guests: vec![GuestSpec::new("detector-", "does-not-exist")],
            show_progress: false,
        };
        let err = build(&opts).unwrap_err().to_string();
        assert!(err.contains("detector-does-not-exist"), "{err}");
        assert!(err.contains("stderr"), "{err}");
    }
}
