//! Builds detector components written in Python with componentize-py (a pinned PyPI
//! release, installed with pip into a venv under `target/`).
//!
//! Shared by `cargo xtask build-python-detector` and the runtime's tests. The example
//! detector `examples/detectors/kubernaut-context-py` (its `app.py`, the WIT it is built
//! against in `wit/`) becomes `kubernaut_context.wasm`; its test-only variant
//! `sandbox_probe.py` becomes `kubernaut_context_probe.wasm`. Outputs are rebuilt only when
//! missing or older than an input; each is written to a temporary file and renamed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// componentize-py release used (PyPI).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// The example detector's directory, relative to the workspace root.
pub const EXAMPLE_DIR: &str = "examples/detectors/kubernaut-context-py";
/// The WIT world the example targets (`detector` + `setup` + `http-apis`).
pub const WORLD: &str = "api-detector";

/// One Python component to build from the example directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonGuest {
    /// Output file stem, e.g. "kubernaut_context".
    pub name: &'static str,
    /// The app module componentize-py starts from (a `.py` file of the directory).
    pub module: &'static str,
}

/// The example detector.
pub const DETECTOR: PythonGuest = PythonGuest {
    name: "kubernaut_context",
    module: "app",
};
/// Its test-only variant (probes and misbehaviours for the sandbox tests).
pub const PROBE: PythonGuest = PythonGuest {
    name: "kubernaut_context_probe",
    module: "sandbox_probe",
};

/// Why a Python component could not be built.
#[derive(Debug)]
pub enum PythonError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Command {
        command: String,
        detail: String,
    },
}

impl fmt::Display for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PythonError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            PythonError::Command { command, detail } => write!(f, "`{command}` {detail}"),
        }
    }
}

impl std::error::Error for PythonError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PythonError + '_ {
    move |source| PythonError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a command; an error names it and shows the end of its output.
fn run(cmd: &mut Command) -> Result<(), PythonError> {
    let command = format!("{cmd:?}").chars().take(300).collect::<String>();
    let out = cmd.output().map_err(|e| PythonError::Command {
        command: command.clone(),
        detail: format!("cannot start: {e}"),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    Err(PythonError::Command {
        command,
        detail: format!(
            "exited with {}:\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}

/// `target/componentize-py-<version>`: the venv holding componentize-py.
pub fn venv_dir(workspace_root: &Path) -> PathBuf {
    workspace_root
        .join("target")
        .join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"))
}

/// Where built components go: `target/python-detectors/`.
pub fn output_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join("target").join("python-detectors")
}

/// The componentize-py executable, installing it first when missing (`python3 -m venv`,
/// then `pip install componentize-py==<version>`).
pub fn ensure_componentize_py(workspace_root: &Path) -> Result<PathBuf, PythonError> {
    let venv = venv_dir(workspace_root);
    let exe = venv.join("bin").join("componentize-py");
    let marker = venv.join(".installed");
    if exe.is_file() && marker.is_file() {
        return Ok(exe);
    }
    if !venv.join("bin").join("python").is_file() {
        let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        run(Command::new(python).arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("componentize-py=={COMPONENTIZE_PY_VERSION}"),
    ]))?;
    std::fs::write(&marker, COMPONENTIZE_PY_VERSION).map_err(io(&marker))?;
    Ok(exe)
}

fn modified(path: &Path) -> Result<SystemTime, PythonError> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(io(path))
}

/// Builds `guests` from the example directory; returns their paths, in order.
pub fn build(workspace_root: &Path, guests: &[PythonGuest]) -> Result<Vec<PathBuf>, PythonError> {
    // One build at a time in a process: tests call this from parallel threads, which would
    // otherwise share the temporary file below (its name holds only the process id).
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let app_dir = workspace_root.join(EXAMPLE_DIR);
    let wit = app_dir.join("wit");
    let out_dir = output_dir(workspace_root);
    std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
    let mut inputs = vec![wit.join("detector.wit"), app_dir.join("app.py")];
    let mut built = Vec::new();
    for guest in guests {
        let module = app_dir.join(format!("{}.py", guest.module));
        if !inputs.contains(&module) {
            inputs.push(module);
        }
        let out = out_dir.join(format!("{}.wasm", guest.name));
        let newest = inputs
            .iter()
            .map(|p| modified(p))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .max();
        let fresh = match (modified(&out), newest) {
            (Ok(built_at), Some(newest)) => built_at >= newest,
            _ => false,
        };
        if !fresh {
            let exe = ensure_componentize_py(workspace_root)?;
            let tmp = out_dir.join(format!("{}.wasm.tmp{}", guest.name, std::process::id()));
            run(Command::new(&exe)
                .current_dir(&app_dir)
                .arg("-d")
                .arg(&wit)
                .args(["-w", WORLD, "componentize", guest.module, "-o"])
                .arg(&tmp))?;
            std::fs::rename(&tmp, &out).map_err(io(&out))?;
        }
        built.push(out);
    }
    Ok(built)
}
