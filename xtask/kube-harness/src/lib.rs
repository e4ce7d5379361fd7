//! A real etcd + kube-apiserver (v1.20.2) on loopback, for integration tests. No Docker.
//!
//! Build the binary once with `cargo xtask kube build` (cached outside the repository, see
//! [`paths`]). Then:
//!
//! ```no_run
//! let server = kube_harness::ApiServer::start()?; // ≈4 s; processes die when `server` drops
//! let yaml = server.kubeconfig_yaml(); // for kube::config::Kubeconfig::from_yaml
//! let path = server.kubeconfig_path(); // the same, written to a file
//! // or share one server between the tests of a binary (isolate them by namespace):
//! let shared = kube_harness::shared()?;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Every server process runs under a small `sh` supervisor reading a pipe held by this process:
//! when the test process exits for whatever reason (including a `static` that is never dropped),
//! the pipe closes and the supervisor stops the server. Nothing is left running.

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod https;
pub mod paths;

pub use https::HttpResponse;

/// User name of the admin token (group `system:masters`).
pub const ADMIN_USER: &str = "kube-harness-admin";
/// User name of the unprivileged token (no groups besides `system:authenticated`): for RBAC tests.
pub const UNPRIVILEGED_USER: &str = "kube-harness-user";
/// Name of the cluster, user and context in the written kubeconfigs.
pub const CONTEXT: &str = "kube-harness";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const ETCD_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const BUILD_HINT: &str = "run `cargo xtask kube build` first (it builds kube-apiserver v1.20.2 into the cache and installs etcd-server and openssl)";

/// Supervisor: runs `"$@"` in the background, records its pid, and stops it (TERM, then KILL after
/// 10 s) when stdin reaches EOF, i.e. when the owning process closes the pipe or dies.
/// Exits with the server's status.
const SUPERVISOR: &str = r#"
pidfile="$1"; shift
exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
echo "$pid" > "$pidfile"
{
  read -r _ <&3
  kill -TERM "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$pid" 2>/dev/null
} &
wait "$pid"
"#;

/// Janitor: removes the temp dir a few seconds after the owning process closes the pipe or dies.
const JANITOR: &str = r#"
read -r _
sleep 3
rm -rf -- "$1"
"#;

/// Where and with which binaries to start (all optional; [`ApiServer::start`] uses the defaults).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep everything in this directory (kept after drop) instead of a fresh temp dir.
    pub dir: Option<PathBuf>,
    /// kube-apiserver binary (default: [`paths::apiserver_binary`]).
    pub apiserver_binary: Option<PathBuf>,
    /// etcd binary (default: [`paths::etcd_binary`]).
    pub etcd_binary: Option<PathBuf>,
}

/// A running etcd + kube-apiserver pair. Dropping it stops both and removes its temp dir.
pub struct ApiServer {
    dir: PathBuf,
    remove_dir: bool,
    apiserver_bin: PathBuf,
    etcd: Option<Supervised>,
    apiserver: Option<Supervised>,
    janitor: Option<Supervised>,
    etcd_port: u16,
    secure_port: u16,
    admin_token: String,
    user_token: String,
    kubeconfig_path: PathBuf,
    user_kubeconfig_path: PathBuf,
}

impl ApiServer {
    /// Starts etcd and kube-apiserver in a fresh temp dir (removed on drop) and waits for `/readyz`.
    pub fn start() -> Result<ApiServer> {
        Self::start_with(Options::default())
    }

    /// Like [`ApiServer::start`], in `dir` (created if missing, kept after drop; etcd data in it is
    /// reused, so a later `start_in` of the same dir sees the same objects).
    pub fn start_in(dir: impl AsRef<Path>) -> Result<ApiServer> {
        Self::start_with(Options {
            dir: Some(dir.as_ref().to_path_buf()),
            ..Options::default()
        })
    }

    /// Starts with explicit [`Options`].
    pub fn start_with(options: Options) -> Result<ApiServer> {
        let apiserver_bin = options
            .apiserver_binary
            .unwrap_or_else(paths::apiserver_binary);
        let etcd_bin = options.etcd_binary.unwrap_or_else(paths::etcd_binary);
        match options.dir {
            Some(dir) => Self::launch(dir, false, apiserver_bin, &etcd_bin),
            None => Self::launch(fresh_temp_dir(), true, apiserver_bin, &etcd_bin),
        }
    }

    fn launch(
        dir: PathBuf,
        remove_dir: bool,
        apiserver_bin: PathBuf,
        etcd_bin: &Path,
    ) -> Result<ApiServer> {
        if !paths::is_executable(&apiserver_bin) {
            bail!(
                "kube-apiserver binary not found at {}: {BUILD_HINT}",
                apiserver_bin.display()
            );
        }
        if !paths::is_executable(etcd_bin) {
            bail!(
                "etcd binary not found at {}: {BUILD_HINT}",
                etcd_bin.display()
            );
        }
        if paths::find_on_path("openssl").is_none() {
            bail!("the openssl command is not on PATH: {BUILD_HINT}");
        }
        std::fs::create_dir_all(dir.join("certs"))
            .with_context(|| format!("cannot create the harness dir {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve the harness dir {}", dir.display()))?;

        let admin_token = random_hex(24)?;
        let user_token = random_hex(24)?;
        let tokens = format!(
            "{admin_token},{ADMIN_USER},{ADMIN_USER}-uid,\"system:masters\"\n\
             {user_token},{UNPRIVILEGED_USER},{UNPRIVILEGED_USER}-uid\n"
        );
        write_private(&dir.join("tokens.csv"), &tokens)?;
        service_account_keys(&dir)?;

        let [etcd_port, peer_port, secure_port] = free_ports::<3>()?;
        let mut server = ApiServer {
            kubeconfig_path: dir.join("kubeconfig"),
            user_kubeconfig_path: dir.join("kubeconfig-user"),
            dir,
            remove_dir,
            apiserver_bin,
            etcd: None,
            apiserver: None,
            janitor: None,
            etcd_port,
            secure_port,
            admin_token,
            user_token,
        };
        if remove_dir {
            let mut janitor = Command::new("sh");
            janitor.args(["-c", JANITOR, "sh"]).arg(&server.dir);
            server.janitor = Some(Supervised::spawn_plain("janitor", janitor)?);
        }
        // From here on, an error drops `server`, which stops whatever was started.
        // Free ports are picked before the servers bind them: another process may win the race,
        // so retry with new ports when a bind fails.
        let mut peer_port = peer_port;
        let mut attempt = 1;
        loop {
            let started = server
                .start_etcd(etcd_bin, peer_port)
                .and_then(|()| server.start_apiserver());
            match started {
                Ok(()) => break,
                Err(err)
                    if attempt < 3 && format!("{err:#}").contains("address already in use") =>
                {
                    attempt += 1;
                    server.stop_apiserver();
                    if let Some(mut etcd) = server.etcd.take() {
                        etcd.stop();
                    }
                    [server.etcd_port, peer_port, server.secure_port] = free_ports::<3>()?;
                }
                Err(err) => return Err(err),
            }
        }
        write_private(&server.kubeconfig_path, &server.kubeconfig_yaml())?;
        write_private(&server.user_kubeconfig_path, &server.user_kubeconfig_yaml())?;
        Ok(server)
    }

    fn start_etcd(&mut self, etcd_bin: &Path, peer_port: u16) -> Result<()> {
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(etcd_bin);
        cmd.arg("--name=harness")
            .arg(format!("--data-dir={}", self.dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=harness={peer}"))
            .arg("--initial-cluster-state=new")
            .env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH);
        let mut etcd = Supervised::spawn("etcd", cmd, &self.dir)?;
        let deadline = Instant::now() + ETCD_TIMEOUT;
        loop {
            if let Some(status) = etcd.exited()? {
                bail!(
                    "etcd exited with {status} during startup; log tail:\n{}",
                    etcd.log_tail()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.etcd_port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd did not listen on 127.0.0.1:{} within {ETCD_TIMEOUT:?}; log tail:\n{}",
                    self.etcd_port,
                    etcd.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.etcd = Some(etcd);
        Ok(())
    }

    /// Starts kube-apiserver (again) on the same port, data and certificates; waits for `/readyz`.
    /// A no-op when it is already running.
    pub fn start_apiserver(&mut self) -> Result<()> {
        if self.apiserver.is_some() {
            return Ok(());
        }
        let d = |name: &str| self.dir.join(name).display().to_string();
        let mut cmd = Command::new(&self.apiserver_bin);
        cmd.arg(format!(
            "--etcd-servers=http://127.0.0.1:{}",
            self.etcd_port
        ))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={}", self.secure_port))
        .arg("--insecure-port=0")
        .arg(format!("--cert-dir={}", d("certs")))
        .arg(format!("--token-auth-file={}", d("tokens.csv")))
        .arg("--authorization-mode=RBAC")
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(format!("--service-account-key-file={}", d("sa.pub")))
        .arg(format!(
            "--service-account-signing-key-file={}",
            d("sa.key")
        ))
        .arg("--service-cluster-ip-range=10.96.0.0/16")
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg("--endpoint-reconciler-type=none")
        .arg("--profiling=false")
        .arg("--v=1");
        let mut apiserver = Supervised::spawn("kube-apiserver", cmd, &self.dir)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = apiserver.exited()? {
                bail!(
                    "kube-apiserver exited with {status} during startup; log tail:\n{}",
                    apiserver.log_tail()
                );
            }
            let last = match self.get("/readyz") {
                Ok(resp) if resp.status == 200 => break,
                Ok(resp) => format!("HTTP {}: {}", resp.status, resp.body.trim()),
                Err(err) => format!("{err:#}"),
            };
            if Instant::now() > deadline {
                let tail = apiserver.log_tail();
                apiserver.stop();
                bail!(
                    "kube-apiserver at {} not ready within {READY_TIMEOUT:?} (last /readyz: {last}); log tail:\n{tail}",
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.apiserver = Some(apiserver);
        Ok(())
    }

    /// Stops kube-apiserver (etcd keeps running), for "API server went away" tests.
    pub fn stop_apiserver(&mut self) {
        if let Some(mut apiserver) = self.apiserver.take() {
            apiserver.stop();
        }
    }

    /// True while kube-apiserver runs (not stopped, not crashed).
    pub fn apiserver_running(&mut self) -> bool {
        match self.apiserver.as_mut().map(|a| a.exited()) {
            Some(Ok(None)) => true,
            Some(_) | None => false,
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.secure_port)
    }

    /// The kube-apiserver's secure port.
    pub fn port(&self) -> u16 {
        self.secure_port
    }

    /// Bearer token of [`ADMIN_USER`] (group `system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Bearer token of [`UNPRIVILEGED_USER`] (no RBAC bindings until a test creates some).
    pub fn user_token(&self) -> &str {
        &self.user_token
    }

    /// Admin kubeconfig file (written once the server is ready).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// Kubeconfig file for [`UNPRIVILEGED_USER`].
    pub fn user_kubeconfig_path(&self) -> &Path {
        &self.user_kubeconfig_path
    }

    /// Admin kubeconfig (token auth, `insecure-skip-tls-verify`: the serving cert is self-signed).
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(ADMIN_USER, &self.admin_token)
    }

    /// Kubeconfig for [`UNPRIVILEGED_USER`].
    pub fn user_kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(UNPRIVILEGED_USER, &self.user_token)
    }

    /// Kubeconfig for any bearer token (e.g. a ServiceAccount token from the TokenRequest API),
    /// with `insecure-skip-tls-verify`.
    pub fn kubeconfig_yaml_for(&self, user: &str, token: &str) -> String {
        kubeconfig(
            &self.url(),
            "    insecure-skip-tls-verify: true\n",
            user,
            token,
        )
    }

    /// Admin kubeconfig that verifies the serving certificate against [`ApiServer::ca_cert_pem`]
    /// (`certificate-authority-data`), for tests of real TLS verification. The certificate is
    /// valid for the IP 127.0.0.1 (the URL), not for `localhost`.
    pub fn kubeconfig_yaml_verified(&self) -> Result<String> {
        let ca = base64(self.ca_cert_pem()?.as_bytes());
        Ok(kubeconfig(
            &self.url(),
            &format!("    certificate-authority-data: {ca}\n"),
            ADMIN_USER,
            &self.admin_token,
        ))
    }

    /// PEM of the CA that signed the serving certificate (kube-apiserver generates both into
    /// `certs/apiserver.crt` on first start and reuses them on restart).
    pub fn ca_cert_pem(&self) -> Result<String> {
        let path = self.dir.join("certs").join("apiserver.crt");
        let chain = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the serving certificate {}", path.display()))?;
        let begin = "-----BEGIN CERTIFICATE-----";
        let start = chain
            .rfind(begin)
            .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
        if start == 0 {
            bail!("{} holds only the leaf certificate, no CA", path.display());
        }
        Ok(chain[start..].trim_end().to_string() + "\n")
    }

    /// `GET path` with the admin token (a tiny HTTPS/1.1 client; for probes and diagnostics).
    pub fn get(&self, path: &str) -> Result<HttpResponse> {
        https::get(self.secure_port, path, Some(&self.admin_token))
    }

    /// `GET path` with any token, or anonymously with `None`.
    pub fn get_as(&self, path: &str, token: Option<&str>) -> Result<HttpResponse> {
        https::get(self.secure_port, path, token)
    }

    /// The directory holding certificates, etcd data, logs and kubeconfigs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resident set size of the kube-apiserver process in KiB (Linux `/proc`), if it runs.
    pub fn apiserver_rss_kib(&self) -> Option<u64> {
        self.apiserver.as_ref().and_then(|a| a.server_rss_kib())
    }

    /// Resident set size of the etcd process in KiB, if it runs.
    pub fn etcd_rss_kib(&self) -> Option<u64> {
        self.etcd.as_ref().and_then(|e| e.server_rss_kib())
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_apiserver();
        if let Some(mut etcd) = self.etcd.take() {
            etcd.stop();
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let Some(mut janitor) = self.janitor.take() {
            // Our own removal is done; the janitor only matters when Drop never runs.
            let _ = janitor.child.kill();
            let _ = janitor.child.wait();
        }
    }
}

/// One server shared by every test of the calling test binary (started on first use, stopped
/// when the process exits). Tests sharing it must isolate themselves by namespace and must not
/// stop it: start an own [`ApiServer`] for restart tests.
pub fn shared() -> Result<&'static ApiServer> {
    static SHARED: OnceLock<std::result::Result<ApiServer, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| ApiServer::start().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the shared kube-apiserver failed to start: {e}"))
}

/// A process under the [`SUPERVISOR`] script.
struct Supervised {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    pidfile: Option<PathBuf>,
    log: Option<PathBuf>,
}

impl Supervised {
    fn spawn(name: &'static str, server: Command, dir: &Path) -> Result<Supervised> {
        let log = dir.join(format!("{name}.log"));
        let pidfile = dir.join(format!("{name}.pid"));
        let _ = std::fs::remove_file(&pidfile);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open the {name} log {}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .with_context(|| format!("cannot reopen the {name} log {}", log.display()))?;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", SUPERVISOR, "sh"])
            .arg(&pidfile)
            .arg(server.get_program())
            .args(server.get_args())
            .stdout(log_file)
            .stderr(log_err);
        for (k, v) in server.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut s = Supervised::spawn_plain(name, cmd)?;
        s.pidfile = Some(pidfile);
        s.log = Some(log);
        Ok(s)
    }

    fn spawn_plain(name: &'static str, mut cmd: Command) -> Result<Supervised> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot spawn sh to supervise {name}"))?;
        let stdin = child.stdin.take();
        Ok(Supervised {
            name,
            child,
            stdin,
            pidfile: None,
            log: None,
        })
    }

    fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("cannot poll the {} supervisor", self.name))
    }

    /// Closes the pipe (the supervisor then TERMs the server) and waits for the supervisor.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn server_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.pidfile.as_ref()?).ok()?;
        text.trim().parse().ok()
    }

    fn server_rss_kib(&self) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.server_pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.stop();
        }
    }
}

fn kubeconfig(url: &str, tls: &str, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {url}\n{tls}users:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {user}\n    namespace: default\ncurrent-context: {CONTEXT}\n"
    )
}

/// Standard base64 with padding (for kubeconfig `*-data` fields).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn fresh_temp_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "kube-harness-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `N` distinct free loopback ports, never handed out twice by this process.
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut used = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = [0u16; N];
    let mut listeners = Vec::new();
    let mut i = 0;
    let mut attempts = 0;
    while i < N {
        attempts += 1;
        if attempts > 1000 {
            bail!("cannot find {N} free loopback ports");
        }
        let l = TcpListener::bind(("127.0.0.1", 0)).context("cannot bind a loopback port")?;
        let port = l.local_addr().context("cannot read a bound port")?.port();
        if used.contains(&port) {
            continue;
        }
        used.push(port);
        out[i] = port;
        listeners.push(l);
        i += 1;
    }
    Ok(out)
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom for a token")?;
    Ok(buf.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// ServiceAccount token signing key pair: `sa.key` (private) and `sa.pub`, via the openssl CLI.
fn service_account_keys(dir: &Path) -> Result<()> {
    let key = dir.join("sa.key");
    let public = dir.join("sa.pub");
    if key.is_file() && public.is_file() {
        return Ok(());
    }
    for args in [
        vec![
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ],
        vec!["pkey", "-pubout", "-in"],
    ] {
        let mut cmd = Command::new("openssl");
        cmd.args(&args);
        if args[0] == "genpkey" {
            cmd.arg(&key);
        } else {
            cmd.arg(&key).arg("-out").arg(&public);
        }
        let out = cmd
            .output()
            .with_context(|| format!("cannot run openssl {}", args[0]))?;
        if !out.status.success() {
            bail!(
                "openssl {} failed for the service-account key {}: {}",
                args[0],
                key.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn kubeconfig_names_server_user_and_token() {
        let y = kubeconfig(
            "https://127.0.0.1:1",
            "    insecure-skip-tls-verify: true\n",
            "u",
            "t0k",
        );
        assert!(y.contains(
            "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:"
        ));
        assert!(y.contains("- name: u\n  user:\n    token: t0k\n"));
        assert!(y.ends_with("current-context: kube-harness\n"));
    }
}
