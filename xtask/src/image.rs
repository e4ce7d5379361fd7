//! `cargo xtask image`: the container image, built without a Docker daemon.
//!
//! 1. A static binary: `cargo build --release --target x86_64-unknown-linux-musl` (adds the
//!    target; `musl-gcc` from Debian's `musl-tools` compiles ring's C code), stripped.
//! 2. A root filesystem: `/usr/local/bin/dynamic-toolset`, `/etc/passwd` and `/etc/group` with
//!    the `nonroot` user 65532, an empty `/tmp` (the chart mounts an emptyDir there). Nothing
//!    else: no shell, no libc, runs with a read-only root filesystem.
//! 3. An OCI image layout (`target/image/oci/`: oci-layout, index.json, blobs/sha256/...), one
//!    reproducible gzip layer (sorted, uid/gid 0, mtime 0), and the same as an archive
//!    `target/image/dynamic-toolset-oci.tar` (`skopeo copy oci-archive:...`, `podman load`).
//! 4. Proof: the layout is read back through index.json → manifest → layer (every digest and
//!    size checked), the layer is unpacked into a fresh directory, and the binary is run from
//!    there — under `chroot` as user 65532 when this runs as root, so nothing of the host is
//!    visible — with `--version`, `discover --example --no-health-check` and `deliver --help`.
//!
//! The same image, built by a Docker engine, is `deploy/Dockerfile`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{capture, run, workspace_root};

const TARGET: &str = "x86_64-unknown-linux-musl";
const BIN_IN_IMAGE: &str = "usr/local/bin/dynamic-toolset";

#[derive(clap::Args)]
pub struct Args {
    /// Image reference recorded in index.json (io.containerd.image.name; its tag as
    /// org.opencontainers.image.ref.name).
    #[arg(long, default_value = concat!("kubernaut/dynamic-toolset:", env!("CARGO_PKG_VERSION")))]
    pub tag: String,
    /// Skip the build; package and check the binary already in target/x86_64-unknown-linux-musl/release.
    #[arg(long)]
    pub no_build: bool,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

pub fn build(args: Args) -> Result<()> {
    let started = std::time::Instant::now();
    let binary = target_dir()
        .join(TARGET)
        .join("release")
        .join("dynamic-toolset");
    if !args.no_build {
        build_static(&binary)?;
    }
    if !binary.is_file() {
        bail!("{} is missing (build it first)", binary.display());
    }
    let out = target_dir().join("image");
    let layout = out.join("oci");
    let info = assemble(&binary, &out, &layout, &args.tag)?;
    let root = out.join("rootfs-check");
    verify(&layout, &root)?;
    let archive = out.join("dynamic-toolset-oci.tar");
    tar(&layout, &archive, false)?;
    println!(
        "image {} built and checked in {:.0}s",
        args.tag,
        started.elapsed().as_secs_f64()
    );
    println!("  OCI layout:   {}", layout.display());
    println!("  OCI archive:  {}", archive.display());
    println!("  manifest:     {}", info.manifest_digest);
    println!(
        "  size:         {:.1} MB compressed layer, {:.1} MB unpacked (binary {:.1} MB)",
        mb(info.layer_size),
        mb(info.uncompressed_size),
        mb(info.binary_size)
    );
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn build_static(binary: &Path) -> Result<()> {
    guest_build::ensure_target()?; // wasm32-wasip2 for the bundled detectors
    let installed = capture(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !installed.lines().any(|l| l.trim() == TARGET) {
        run(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    if kube_harness::paths::find_on_path("musl-gcc").is_none() {
        eprintln!("[image] musl-gcc missing: apt-get install musl-tools");
        let _ = Command::new("apt-get").arg("update").status();
        run(Command::new("apt-get").args([
            "install",
            "-y",
            "--no-install-recommends",
            "musl-tools",
        ]))?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "dynamic-toolset",
            "--target",
            TARGET,
        ])
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc"))?;
    let header =
        std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    if is_dynamic_elf(&header) {
        bail!("{} is dynamically linked (has PT_INTERP)", binary.display());
    }
    Ok(())
}

/// True when the ELF64 file has a program interpreter (i.e. is dynamically linked).
fn is_dynamic_elf(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let at = phoff as usize + i * usize::from(phentsize);
        u32_at(at) == Some(3) // PT_INTERP
    })
}

struct Built {
    manifest_digest: String,
    layer_size: u64,
    uncompressed_size: u64,
    binary_size: u64,
}

fn assemble(binary: &Path, out: &Path, layout: &Path, tag: &str) -> Result<Built> {
    let rootfs = out.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    let _ = std::fs::remove_dir_all(layout);
    std::fs::create_dir_all(rootfs.join("usr/local/bin"))?;
    std::fs::create_dir_all(rootfs.join("etc"))?;
    std::fs::create_dir_all(rootfs.join("tmp"))?;
    set_mode(&rootfs.join("tmp"), 0o1777)?;
    std::fs::copy(binary, rootfs.join(BIN_IN_IMAGE))?;
    set_mode(&rootfs.join(BIN_IN_IMAGE), 0o755)?;
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnonroot:x:65532:\n")?;
    let binary_size = std::fs::metadata(binary)?.len();

    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let layer_tar = out.join("layer.tar");
    tar(&rootfs, &layer_tar, true)?;
    let diff_id = sha256(&layer_tar)?;
    let uncompressed_size = std::fs::metadata(&layer_tar)?.len();
    let gz = out.join("layer.tar.gz");
    let file = std::fs::File::create(&gz)?;
    let status = Command::new("gzip")
        .args(["-n", "-9", "-c"])
        .arg(&layer_tar)
        .stdout(file)
        .status()
        .context("cannot run gzip")?;
    if !status.success() {
        bail!("gzip failed");
    }
    let _ = std::fs::remove_file(&layer_tar);
    let layer_digest = sha256(&gz)?;
    let layer_size = std::fs::metadata(&gz)?.len();
    std::fs::rename(&gz, blobs.join(&layer_digest))?;

    let version = env!("CARGO_PKG_VERSION");
    let config = format!(
        concat!(
            r#"{{"created":"1970-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{{"User":"65532:65532","#,
            r#""Entrypoint":["/{bin}"],"Cmd":["run"],"WorkingDir":"/","#,
            r#""Env":["PATH=/usr/local/bin"],"ExposedPorts":{{"8080/tcp":{{}},"9090/tcp":{{}}}},"#,
            r#""Labels":{{"org.opencontainers.image.title":"dynamic-toolset","org.opencontainers.image.version":"{version}"}}}},"#,
            r#""rootfs":{{"type":"layers","diff_ids":["sha256:{diff}"]}},"#,
            r#""history":[{{"created":"1970-01-01T00:00:00Z","created_by":"cargo xtask image (static {target} binary)"}}]}}"#
        ),
        bin = BIN_IN_IMAGE,
        version = version,
        diff = diff_id,
        target = TARGET,
    );
    let config_digest = write_blob(&blobs, config.as_bytes())?;
    let manifest = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            r#""config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{cd}","size":{cs}}},"#,
            r#""layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{ld}","size":{ls}}}]}}"#
        ),
        cd = config_digest,
        cs = config.len(),
        ld = layer_digest,
        ls = layer_size,
    );
    let manifest_digest = write_blob(&blobs, manifest.as_bytes())?;
    let index = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","#,
            r#""manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{md}","size":{ms},"#,
            r#""platform":{{"architecture":"amd64","os":"linux"}},"#,
            r#""annotations":{{"org.opencontainers.image.ref.name":"{short}","io.containerd.image.name":"{tag}"}}}}]}}"#
        ),
        md = manifest_digest,
        ms = manifest.len(),
        tag = tag.replace(['"', '\\'], ""),
        // The OCI ref name is the tag alone (what skopeo/umoci address as `oci:DIR:TAG`).
        short = tag
            .rsplit(':')
            .next()
            .unwrap_or(tag)
            .replace(['"', '\\', '/'], ""),
    );
    std::fs::write(layout.join("index.json"), index)?;
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(Built {
        manifest_digest: format!("sha256:{manifest_digest}"),
        layer_size,
        uncompressed_size,
        binary_size,
    })
}

/// Reads the layout back, checks every digest, unpacks the layer and runs the binary from it.
fn verify(layout: &Path, root: &Path) -> Result<()> {
    let blobs = layout.join("blobs/sha256");
    let index = std::fs::read_to_string(layout.join("index.json"))?;
    let manifest_digest = digest_after(&index, "application/vnd.oci.image.manifest.v1+json")?;
    let manifest = read_blob(&blobs, &manifest_digest)?;
    let config_digest = digest_after(&manifest, "application/vnd.oci.image.config.v1+json")?;
    let config = read_blob(&blobs, &config_digest)?;
    let layer_digest = digest_after(&manifest, "application/vnd.oci.image.layer.v1.tar+gzip")?;
    let layer = blobs.join(&layer_digest);
    if sha256(&layer)? != layer_digest {
        bail!("layer blob does not match its digest");
    }
    for needle in [
        r#""User":"65532:65532""#,
        "\"Entrypoint\":[\"/usr/local/bin/dynamic-toolset\"]",
    ] {
        if !config.contains(needle) {
            bail!("image config lacks {needle}");
        }
    }
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(root))?;
    let chroot = kube_harness::paths::find_on_path("chroot");
    let as_root =
        chroot.is_some() && capture(Command::new("id").arg("-u")).is_ok_and(|u| u.trim() == "0");
    let exec = |args: &[&str]| -> Result<String> {
        let mut cmd = if let (true, Some(chroot)) = (as_root, &chroot) {
            let mut c = Command::new(chroot);
            c.arg("--userspec=65532:65532")
                .arg(root)
                .arg(format!("/{BIN_IN_IMAGE}"));
            c
        } else {
            Command::new(root.join(BIN_IN_IMAGE))
        };
        cmd.args(args).env_clear().env("RUST_LOG", "warn");
        capture(&mut cmd)
    };
    let version = exec(&["--version"])?;
    println!(
        "[image] {} the unpacked image: {}",
        if as_root {
            "chroot (uid 65532) into"
        } else {
            "run from"
        },
        version.trim()
    );
    let toolsets = exec(&["discover", "--example", "--no-health-check"])?;
    if !toolsets.contains("toolsets:") || !toolsets.contains("prometheus/metrics") {
        bail!("discover --example from the image printed no toolsets:\n{toolsets}");
    }
    println!(
        "[image] discover --example --no-health-check from the image: {} lines of toolsets",
        toolsets.lines().count()
    );
    // The same image is the delivery sidecar beside HolmesGPT.
    let deliver = exec(&["deliver", "--help"])?;
    if !deliver.contains("--holmes-url") {
        bail!("deliver --help from the image does not document --holmes-url:\n{deliver}");
    }
    println!("[image] deliver --help from the image: ok");
    Ok(())
}

/// The hex digest of the first descriptor with this media type in a JSON document.
fn digest_after(json: &str, media_type: &str) -> Result<String> {
    let at = json
        .find(&format!("\"mediaType\":\"{media_type}\""))
        .with_context(|| format!("no {media_type} descriptor"))?;
    let rest = &json[at..];
    let d = rest
        .find("\"digest\":\"sha256:")
        .context("descriptor without digest")?;
    let hex: String = rest[d + 17..].chars().take(64).collect();
    Ok(hex)
}

fn read_blob(blobs: &Path, digest: &str) -> Result<String> {
    let path = blobs.join(digest);
    if sha256(&path)? != digest {
        bail!("blob {digest} does not match its digest");
    }
    Ok(std::fs::read_to_string(path)?)
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<String> {
    let tmp = blobs.join("tmp");
    std::fs::write(&tmp, bytes)?;
    let digest = sha256(&tmp)?;
    std::fs::rename(&tmp, blobs.join(&digest))?;
    Ok(digest)
}

/// A reproducible tar of `dir`'s contents (sorted, root-owned, mtime 0 when `normalise`).
fn tar(dir: &Path, out: &Path, normalise: bool) -> Result<()> {
    let mut cmd = Command::new("tar");
    cmd.arg("-C").arg(dir);
    if normalise {
        cmd.args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "--format=gnu",
        ]);
    }
    cmd.arg("-cf").arg(out).arg(".");
    run(&mut cmd)
}

fn sha256(path: &Path) -> Result<String> {
    let out = capture(Command::new("sha256sum").arg(path))?;
    let hex = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if hex.len() != 64 {
        bail!("sha256sum printed {out:?}");
    }
    Ok(hex)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}
