//! `cargo xtask kube ...`: build a real kube-apiserver (cached outside the repository) and run it.
//!
//! `build` compiles Debian bookworm's `kubernetes` 1.20.2 source package offline with Go 1.19
//! (see shared/docs/toolchain.md); `up` starts etcd + kube-apiserver through `kube-harness`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube_harness::paths;

/// Debian packages the build and the harness need.
const APT_PACKAGES: &[&str] = &[
    "golang-1.19-go",
    "etcd-server",
    "openssl",
    "dpkg-dev",
    "golang-github-modern-go-reflect2-dev",
];
/// Debian's modern-go/reflect2 1.0.2 sources, which replace the 1.0.1 that kubernetes 1.20.2
/// vendors: 1.0.1 reads Go's map internals as they were before Go 1.18, so an apiserver built
/// with Go 1.19 crashes (`unexpected fault address`) the first time it serialises a map through
/// json-iterator, which every custom resource (CRD-backed object) does.
const REFLECT2_SRC: &str = "/usr/share/gocode/src/github.com/modern-go/reflect2";
/// Go toolchain shipped by `golang-1.19-go`.
const GO_BIN_DIR: &str = "/usr/lib/go-1.19/bin";
/// The only place the source package is fetched from (a private sources list, never the system's).
const DEB_SRC_LINE: &str = "deb-src http://deb.debian.org/debian bookworm main";
const K8S_IMPORT: &str = "k8s.io/kubernetes";
const OPENAPI_PACKAGE: &str = "k8s.io/kubernetes/pkg/generated/openapi";
const OPENAPI_TAG: &str = "+k8s:openapi-gen=";

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build the kube-apiserver binary into the cache (no-op when cached).
    Build(BuildArgs),
    /// Start etcd + kube-apiserver on loopback and write a kubeconfig; runs until Ctrl-C.
    Up(UpArgs),
    /// Print where the cached binaries are (and whether they exist).
    Where,
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Rebuild even when the binary is cached.
    #[arg(long)]
    force: bool,
    /// Keep the GOPATH with the unpacked sources after a successful build.
    #[arg(long)]
    keep_sources: bool,
}

#[derive(clap::Args)]
pub struct UpArgs {
    /// Directory for certificates, data and the kubeconfig (default: a fresh temp dir, removed on exit).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Build(args) => build(&args),
        Command::Up(args) => up(&args),
        Command::Where => {
            for (what, path) in [
                ("kube-apiserver", paths::apiserver_binary()),
                ("etcd", paths::etcd_binary()),
            ] {
                let state = if paths::is_executable(&path) {
                    "present"
                } else {
                    "missing"
                };
                println!("{what}: {} ({state})", path.display());
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// build

/// Progress printer: numbered steps with their duration.
struct Steps {
    total: usize,
    done: usize,
    started: Instant,
}

impl Steps {
    fn run<T>(&mut self, title: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.done += 1;
        println!(
            "[kube build] step {}/{}: {title} ...",
            self.done, self.total
        );
        let start = Instant::now();
        let out = f().with_context(|| format!("kube build step {:?} failed", title))?;
        println!(
            "[kube build] step {}/{}: {title}: done in {}",
            self.done,
            self.total,
            fmt_duration(start.elapsed())
        );
        Ok(out)
    }
}

fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:04.1}s", (secs / 60.0).floor(), secs % 60.0)
    } else {
        format!("{secs:.1}s")
    }
}

fn build(args: &BuildArgs) -> Result<()> {
    let target = paths::cached_apiserver();
    if !args.force && paths::is_executable(&target) {
        println!(
            "[kube build] cached: {} (kube-apiserver v{}); nothing to do",
            target.display(),
            paths::KUBE_VERSION
        );
        ensure_packages(false)?;
        return Ok(());
    }
    // One build at a time per cache (several engineers or CI jobs may share the machine).
    std::fs::create_dir_all(paths::cache_root())
        .with_context(|| format!("cannot create the cache {}", paths::cache_root().display()))?;
    let lock_path = paths::cache_root().join(format!("kube-v{}.lock", paths::KUBE_VERSION));
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create the build lock {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        println!(
            "[kube build] another build holds {}; waiting",
            lock_path.display()
        );
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    }
    if !args.force && paths::is_executable(&target) {
        println!(
            "[kube build] cached by the other build: {}",
            target.display()
        );
        return Ok(());
    }
    let work = paths::cache_root().join(format!("kube-v{}-build", paths::KUBE_VERSION));
    let gopath = work.join("gopath");
    let k8s_root = gopath.join("src").join(K8S_IMPORT);
    println!(
        "[kube build] building kube-apiserver v{} into {} (work dir {})",
        paths::KUBE_VERSION,
        target.display(),
        work.display()
    );
    let mut steps = Steps {
        total: 7,
        done: 0,
        started: Instant::now(),
    };
    steps.run(
        "install Debian packages (Go 1.19, etcd, openssl, dpkg-dev)",
        || ensure_packages(true),
    )?;
    let dsc = steps.run(
        "fetch the `kubernetes` source package (private apt lists)",
        || fetch_source(&work),
    )?;
    steps.run("unpack the source into the GOPATH", || {
        unpack(&dsc, &k8s_root)
    })?;
    steps.run(
        "replace the vendored modern-go/reflect2 1.0.1 with Debian's 1.0.2 (Go 1.18+ maps)",
        || replace_reflect2(&k8s_root),
    )?;
    let go = GoEnv::new(&gopath, &work);
    steps.run(
        "build openapi-gen and generate pkg/generated/openapi",
        || generate_openapi(&go, &k8s_root, &work),
    )?;
    let tmp = target.with_extension("partial");
    steps.run(
        "go build k8s.io/kubernetes/cmd/kube-apiserver (the long one)",
        || build_apiserver(&go, &k8s_root, &tmp),
    )?;
    steps.run("check the binary and install it into the cache", || {
        let version = capture(Process::new(&tmp).arg("--version"))?;
        let want = format!("Kubernetes v{}", paths::KUBE_VERSION);
        if version.trim() != want {
            bail!(
                "{} --version printed {:?}, expected {want:?}",
                tmp.display(),
                version.trim()
            );
        }
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), target.display()))?;
        if !args.keep_sources {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("cannot remove the work dir {}", work.display()))?;
        }
        Ok(())
    })?;
    println!(
        "[kube build] done: {} in {}",
        target.display(),
        fmt_duration(steps.started.elapsed())
    );
    Ok(())
}

/// The Debian packages whose tool is missing (each package paired with the file it provides).
fn missing_packages() -> Vec<&'static str> {
    let go = Path::new(GO_BIN_DIR).join("go");
    [
        ("golang-1.19-go", go.is_file()),
        ("etcd-server", paths::is_executable(&paths::etcd_binary())),
        ("openssl", paths::find_on_path("openssl").is_some()),
        ("dpkg-dev", paths::find_on_path("dpkg-source").is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(package, _)| package)
    .collect()
}

/// Installs the Debian packages whose tools are missing (`apt-get update` once, then install).
/// `for_build == false`: the binary is cached, only the runtime tools matter.
fn ensure_packages(for_build: bool) -> Result<()> {
    let mut missing = missing_packages();
    if !for_build {
        missing.retain(|p| matches!(*p, "etcd-server" | "openssl"));
    }
    if missing.is_empty() {
        println!(
            "[kube build] Debian packages present: {}",
            APT_PACKAGES.join(" ")
        );
        return Ok(());
    }
    println!(
        "[kube build]   installing missing Debian packages: {}",
        missing.join(" ")
    );
    let sudo = privilege_prefix()?;
    let mut update = apt_command(&sudo, "apt-get");
    update.arg("update");
    run_checked(&mut update)?;
    let mut install_cmd = apt_command(&sudo, "apt-get");
    install_cmd
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing);
    run_checked(&mut install_cmd)?;
    let still = missing_packages();
    if still.iter().any(|p| missing.contains(p)) {
        bail!(
            "installed {} but the tools of {} are still missing (Go at {GO_BIN_DIR}/go, etcd, openssl, dpkg-source)",
            missing.join(" "),
            still.join(" ")
        );
    }
    Ok(())
}

/// `[]` as root, `["sudo"]` otherwise (when sudo exists).
fn privilege_prefix() -> Result<Vec<String>> {
    if is_root()? {
        return Ok(Vec::new());
    }
    if paths::find_on_path("sudo").is_some() {
        return Ok(vec!["sudo".into(), "-E".into()]);
    }
    bail!(
        "installing Debian packages needs root (or sudo): apt-get install {}",
        APT_PACKAGES.join(" ")
    )
}

fn is_root() -> Result<bool> {
    Ok(capture(Process::new("id").arg("-u"))?.trim() == "0")
}

fn apt_command(prefix: &[String], program: &str) -> Process {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Process::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Process::new(program),
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// Downloads the source package with a private sources list and private lists dir.
/// Returns the `.dsc` path.
fn fetch_source(work: &Path) -> Result<PathBuf> {
    let apt = work.join("apt");
    let lists = apt.join("lists");
    let download = work.join("download");
    std::fs::create_dir_all(lists.join("partial"))
        .with_context(|| format!("cannot create {}", lists.display()))?;
    std::fs::create_dir_all(&download)
        .with_context(|| format!("cannot create {}", download.display()))?;
    if let Some(dsc) = find_dsc(&download)? {
        println!(
            "[kube build]   source already downloaded: {}",
            dsc.display()
        );
        return Ok(dsc);
    }
    let sources = apt.join("sources.list");
    std::fs::write(&sources, format!("{DEB_SRC_LINE}\n"))
        .with_context(|| format!("cannot write {}", sources.display()))?;
    let private = |cmd: &mut Process| -> Result<()> {
        cmd.arg("-o")
            .arg(format!("Dir::Etc::SourceList={}", sources.display()))
            .args(["-o", "Dir::Etc::SourceParts=/dev/null"])
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", lists.display()));
        if is_root()? {
            // The private dirs belong to root; apt's `_apt` sandbox user could not write them.
            cmd.args(["-o", "APT::Sandbox::User=root"]);
        }
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        Ok(())
    };
    let mut update = Process::new("apt-get");
    private(&mut update)?;
    update.arg("update");
    run_checked(&mut update)?;
    let mut source = Process::new("apt-get");
    private(&mut source)?;
    source
        .args(["source", "--download-only", "kubernetes"])
        .current_dir(&download);
    run_checked(&mut source)?;
    find_dsc(&download)?.with_context(|| {
        format!(
            "apt-get source left no kubernetes_*.dsc in {}",
            download.display()
        )
    })
}

fn find_dsc(dir: &Path) -> Result<Option<PathBuf>> {
    let mut found = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("kubernetes_") && name.ends_with(".dsc") {
            let version = name
                .trim_start_matches("kubernetes_")
                .trim_end_matches(".dsc");
            // bookworm ships "1.20.5+really1.20.2-…": the upstream tree is 1.20.2.
            let upstream = version.rsplit("really").next().unwrap_or(version);
            if !upstream.starts_with(paths::KUBE_VERSION) {
                bail!(
                    "{} is version {version}, expected {}",
                    path.display(),
                    paths::KUBE_VERSION
                );
            }
            found = Some(path);
        }
    }
    Ok(found)
}

fn unpack(dsc: &Path, k8s_root: &Path) -> Result<()> {
    if k8s_root.exists() {
        std::fs::remove_dir_all(k8s_root)
            .with_context(|| format!("cannot remove the old tree {}", k8s_root.display()))?;
    }
    let parent = k8s_root
        .parent()
        .context("GOPATH source dir has no parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    run_checked(Process::new("dpkg-source").arg("-x").arg(dsc).arg(k8s_root))?;
    if !k8s_root.join("cmd/kube-apiserver").is_dir() {
        bail!(
            "{} has no cmd/kube-apiserver after unpacking {}",
            k8s_root.display(),
            dsc.display()
        );
    }
    Ok(())
}

/// Swaps `vendor/github.com/modern-go/reflect2` for the Debian package's 1.0.2 sources (same API;
/// its `go_above_118.go` follows the Go 1.18 map layout). Only the package's own `.go` and `.s`
/// files are copied, no tests.
fn replace_reflect2(k8s_root: &Path) -> Result<()> {
    let vendored = k8s_root.join("vendor/github.com/modern-go/reflect2");
    let source = Path::new(REFLECT2_SRC);
    if !source.join("go_above_118.go").is_file() {
        bail!(
            "{} has no go_above_118.go: is golang-github-modern-go-reflect2-dev 1.0.2+ installed?",
            source.display()
        );
    }
    if !vendored.join("reflect2.go").is_file() {
        bail!(
            "{} does not hold reflect2: the kubernetes source layout changed",
            vendored.display()
        );
    }
    std::fs::remove_dir_all(&vendored)
        .with_context(|| format!("cannot remove {}", vendored.display()))?;
    std::fs::create_dir_all(&vendored)
        .with_context(|| format!("cannot create {}", vendored.display()))?;
    let mut copied = 0;
    for entry in
        std::fs::read_dir(source).with_context(|| format!("cannot read {}", source.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let wanted = (name.ends_with(".go") && !name.ends_with("_test.go")) || name.ends_with(".s");
        if wanted && path.is_file() {
            std::fs::copy(&path, vendored.join(&name)).with_context(|| {
                format!("cannot copy {} into {}", path.display(), vendored.display())
            })?;
            copied += 1;
        }
    }
    println!("[kube build]   {copied} reflect2 1.0.2 files copied into {}", vendored.display());
    Ok(())
}

/// Environment for GOPATH-mode, offline Go 1.19 builds.
struct GoEnv {
    vars: Vec<(&'static str, OsString)>,
}

impl GoEnv {
    fn new(gopath: &Path, work: &Path) -> GoEnv {
        let mut path = OsString::from(GO_BIN_DIR);
        if let Some(old) = std::env::var_os("PATH") {
            path.push(":");
            path.push(old);
        }
        GoEnv {
            vars: vec![
                ("PATH", path),
                ("GOPATH", gopath.into()),
                ("GOCACHE", work.join("go-build").into()),
                ("GO111MODULE", "off".into()),
                ("GOPROXY", "off".into()),
                ("GOFLAGS", "".into()),
                ("CGO_ENABLED", "0".into()),
                ("GOTOOLCHAIN", "local".into()),
            ],
        }
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Process {
        let mut cmd = Process::new(program);
        cmd.current_dir(dir).env_remove("GOROOT");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }
}

fn generate_openapi(go: &GoEnv, k8s_root: &Path, work: &Path) -> Result<()> {
    let tool = work.join("bin").join("openapi-gen");
    run_checked(
        go.command(Path::new(GO_BIN_DIR).join("go"), k8s_root)
            .args(["build", "-o"])
            .arg(&tool)
            .arg(format!(
                "{K8S_IMPORT}/vendor/k8s.io/kube-openapi/cmd/openapi-gen"
            )),
    )?;
    let inputs = openapi_input_dirs(k8s_root)?;
    println!(
        "[kube build]   {} packages carry {OPENAPI_TAG}",
        inputs.len()
    );
    let report = work.join("openapi-api-violations.report");
    run_checked(
        go.command(&tool, k8s_root)
            .arg("--input-dirs")
            .arg(inputs.join(","))
            .arg("--output-base")
            .arg(k8s_root.join("../..").as_os_str())
            .args(["--output-package", OPENAPI_PACKAGE])
            .args(["--output-file-base", "zz_generated.openapi"])
            .arg("--go-header-file")
            .arg(k8s_root.join("hack/boilerplate/boilerplate.generatego.txt"))
            .arg("--report-filename")
            .arg(&report),
    )?;
    let generated = k8s_root.join("pkg/generated/openapi/zz_generated.openapi.go");
    if !generated.is_file() {
        bail!("openapi-gen did not write {}", generated.display());
    }
    Ok(())
}

/// Import paths of every package under pkg, cmd, plugin and vendor/k8s.io whose Go files carry an
/// `+k8s:openapi-gen=` tag (minus code-generator and sample-apiserver, testdata, third_party).
fn openapi_input_dirs(k8s_root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for top in ["pkg", "cmd", "plugin", "vendor/k8s.io"] {
        walk_tagged(k8s_root, &k8s_root.join(top), &mut out)?;
    }
    out.sort();
    if out.is_empty() {
        bail!(
            "no package under {} carries {OPENAPI_TAG}",
            k8s_root.display()
        );
    }
    Ok(out)
}

fn walk_tagged(k8s_root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let rel = dir.strip_prefix(k8s_root).unwrap_or(dir);
    let rel_str = rel.to_string_lossy();
    if matches!(
        rel_str.as_ref(),
        "vendor/k8s.io/code-generator" | "vendor/k8s.io/sample-apiserver"
    ) {
        return Ok(());
    }
    let mut tagged = false;
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // vendor/k8s.io/* are symlinks into staging/: follow them.
        let is_dir = std::fs::metadata(&path)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_dir {
            if !matches!(name.as_ref(), "testdata" | "third_party" | "_output") {
                subdirs.push(path);
            }
        } else if !tagged && name.ends_with(".go") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            tagged = text.contains(OPENAPI_TAG);
        }
    }
    if tagged {
        out.push(format!("{K8S_IMPORT}/{rel_str}"));
    }
    for sub in subdirs {
        walk_tagged(k8s_root, &sub, out)?;
    }
    Ok(())
}

fn build_apiserver(go: &GoEnv, k8s_root: &Path, out: &Path) -> Result<()> {
    let (major, minor) = {
        let mut it = paths::KUBE_VERSION.split('.');
        (it.next().unwrap_or("1"), it.next().unwrap_or("20"))
    };
    let mut ldflags = vec!["-s".to_string(), "-w".to_string()];
    for pkg in ["component-base/version", "client-go/pkg/version"] {
        let p = format!("{K8S_IMPORT}/vendor/k8s.io/{pkg}");
        for (var, value) in [
            ("gitVersion", format!("v{}", paths::KUBE_VERSION)),
            ("gitMajor", major.to_string()),
            ("gitMinor", minor.to_string()),
            ("gitTreeState", "clean".to_string()),
            ("gitCommit", "debian-bookworm-source".to_string()),
        ] {
            ldflags.push(format!("-X {p}.{var}={value}"));
        }
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    run_checked(
        go.command(Path::new(GO_BIN_DIR).join("go"), k8s_root)
            .args(["build", "-o"])
            .arg(out)
            .arg("-ldflags")
            .arg(ldflags.join(" "))
            .arg(format!("{K8S_IMPORT}/cmd/kube-apiserver")),
    )
}

// ---------------------------------------------------------------------------------------------
// up

fn up(args: &UpArgs) -> Result<()> {
    let server = match &args.dir {
        Some(dir) => kube_harness::ApiServer::start_in(dir)?,
        None => kube_harness::ApiServer::start()?,
    };
    println!(
        "kube-apiserver v{} ready at {}",
        paths::KUBE_VERSION,
        server.url()
    );
    println!(
        "kubeconfig (admin, system:masters): {}",
        server.kubeconfig_path().display()
    );
    println!(
        "kubeconfig (unprivileged user {:?}): {}",
        kube_harness::UNPRIVILEGED_USER,
        server.user_kubeconfig_path().display()
    );
    println!("export KUBECONFIG={}", server.kubeconfig_path().display());
    println!("Press Ctrl-C to stop.");
    wait_for_ctrl_c()?;
    println!("stopping kube-apiserver and etcd");
    drop(server);
    Ok(())
}

/// Blocks until SIGINT (Ctrl-C) or SIGTERM.
fn wait_for_ctrl_c() -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    rx.recv().context("the Ctrl-C handler went away")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// process helpers

fn describe(cmd: &Process) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.len() > 120 {
            s.push_str(&format!(" {}...", &a[..120]));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn run_checked(cmd: &mut Process) -> Result<()> {
    let what = describe(cmd);
    println!("[kube build]   $ {what}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed with {status}");
    }
    Ok(())
}

fn capture(cmd: &mut Process) -> Result<String> {
    let what = describe(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
