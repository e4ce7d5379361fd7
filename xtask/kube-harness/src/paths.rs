//! Where the cached binaries live (shared by `cargo xtask kube build` and the harness).

use std::path::{Path, PathBuf};

/// Kubernetes version built from Debian bookworm's `kubernetes` source package.
pub const KUBE_VERSION: &str = "1.20.2";

/// Environment variable that moves the cache (default `$HOME/.cache/dynamic-toolset`).
pub const CACHE_ENV: &str = "DYNAMIC_TOOLSET_CACHE";
/// Environment variable naming a kube-apiserver binary to use instead of the cached one.
pub const APISERVER_ENV: &str = "KUBE_HARNESS_APISERVER";
/// Environment variable naming an etcd binary to use instead of the one on `PATH`.
pub const ETCD_ENV: &str = "KUBE_HARNESS_ETCD";

/// The cache root: `$DYNAMIC_TOOLSET_CACHE`, else `$HOME/.cache/dynamic-toolset`
/// (`$XDG_CACHE_HOME/dynamic-toolset` when set), else the system temp dir.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = non_empty_env(CACHE_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty_env("XDG_CACHE_HOME") {
        return Path::new(&dir).join("dynamic-toolset");
    }
    if let Some(home) = non_empty_env("HOME") {
        return Path::new(&home).join(".cache").join("dynamic-toolset");
    }
    std::env::temp_dir().join("dynamic-toolset-cache")
}

/// Revision of the build recipe (`cargo xtask kube build`); bumped when the recipe changes what
/// the binary does, so a cache built by an older recipe is rebuilt rather than reused.
/// r2: vendored modern-go/reflect2 replaced by 1.0.2 (custom resources no longer crash).
pub const BUILD_REVISION: &str = "r2";

/// `<cache>/kube-v1.20.2-r2`: holds the built `kube-apiserver`.
pub fn kube_dir() -> PathBuf {
    cache_root().join(format!("kube-v{KUBE_VERSION}-{BUILD_REVISION}"))
}

/// The cached kube-apiserver binary (may not exist yet).
pub fn cached_apiserver() -> PathBuf {
    kube_dir().join("kube-apiserver")
}

/// The kube-apiserver to run: `$KUBE_HARNESS_APISERVER` or the cached build.
pub fn apiserver_binary() -> PathBuf {
    non_empty_env(APISERVER_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(cached_apiserver)
}

/// The etcd to run: `$KUBE_HARNESS_ETCD`, else `etcd` on `PATH`, else `/usr/bin/etcd`.
pub fn etcd_binary() -> PathBuf {
    if let Some(path) = non_empty_env(ETCD_ENV) {
        return PathBuf::from(path);
    }
    find_on_path("etcd").unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"))
}

/// First executable file called `name` in `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// A regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
