//! Input bounds of `discover` (issue 9): hostile manifests, overrides and paths are refused
//! with an error naming file, document, object and field, and the rest of the input still
//! yields its toolsets (exit status 3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PROMETHEUS: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: prometheus-server\n  \
     namespace: monitoring\n  labels:\n    app.kubernetes.io/name: prometheus\n    \
     app.kubernetes.io/component: server\n    app.kubernetes.io/instance: prometheus\nspec:\n  \
     ports:\n  - {name: http, port: 80, targetPort: 9090}\n";

const PROM_URL: &str = "http://prometheus-server.monitoring.svc.cluster.local:80";

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("input-bounds")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn discover(args: &[&str], paths: &[&Path], stdin: Option<&[u8]>) -> (Output, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"));
    cmd.args(["discover", "--no-health-check"]).args(args);
    for p in paths {
        cmd.arg("-m").arg(p);
    }
    cmd.env(
        "DETECTOR_CACHE_DIR",
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache"),
    )
    .stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The reader stops at its limit: a broken pipe past it is expected.
        let _ = pipe.write_all(bytes);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Exit status 3, the Prometheus toolset still in the output.
fn assert_partial_with_prometheus(out: &Output, stdout: &str, stderr: &str) {
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stdout.contains("prometheus/metrics:"), "{stdout}");
    assert!(stdout.contains(PROM_URL), "{stdout}");
}

#[test]
fn hostile_service_is_refused_by_field_and_prometheus_kept() {
    let d = dir("hostile-service");
    let f = d.join("svc.yaml");
    std::fs::write(
        &f,
        format!(
            "{PROMETHEUS}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: grafana\n  \
             namespace: tenant\n  labels:\n    app.kubernetes.io/name: \"{{{{ env.GRAFANA_API_KEY }}}}\"\n\
             spec:\n  ports:\n  - {{name: http, port: 80}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata:\n  name: Evil.Name\n  namespace: tenant\n---\n\
             apiVersion: v1\nkind: Service\nmetadata:\n  name: ports\n  namespace: tenant\n\
             spec:\n  ports:\n  - {{name: HTTP_WEB, port: 80}}\n"
        ),
    )
    .unwrap();
    let (out, stdout, stderr) = discover(&[], &[&f], None);
    assert_partial_with_prometheus(&out, &stdout, &stderr);
    let src = f.display();
    assert!(
        stderr.contains(&format!(
            "{src}: document 2 (Service tenant/grafana): field `metadata.labels[\"app.kubernetes.io/name\"]`: \
             \"{{{{ env.GRAFANA_API_KEY }}}}\" is not a label value"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{src}: document 3 (Service tenant/Evil.Name): field `metadata.name`: \"Evil.Name\" is not a valid name"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{src}: document 4 (Service tenant/ports): field `spec.ports[0].name`: \"HTTP_WEB\" is not a valid port name"
        )),
        "{stderr}"
    );
    assert!(!stdout.contains("GRAFANA_API_KEY"), "{stdout}");
    assert!(!stdout.contains("grafana/dashboards"), "{stdout}");
}

#[test]
fn nesting_bomb_document_is_refused_before_parsing_and_prometheus_kept() {
    // The reported attack: a 200 KB manifest took two minutes.
    let d = dir("nesting");
    let f = d.join("bomb.yaml");
    let bomb = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: {}\n",
        "[".repeat(200_000)
    );
    std::fs::write(&f, format!("{bomb}---\n{PROMETHEUS}")).unwrap();
    let (out, stdout, stderr) = discover(&[], &[&f], None);
    assert_partial_with_prometheus(&out, &stdout, &stderr);
    assert!(
        stderr.contains(&format!(
            "{}: document 1: refused before parsing: line 5 column 109: nested more than 100 levels deep (YAML nesting limit)",
            f.display()
        )),
        "{stderr}"
    );
}

#[test]
fn alias_bomb_document_is_refused_and_prometheus_kept() {
    let d = dir("aliases");
    let f = d.join("laughs.yaml");
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb += &format!("  a{i}: &a{i} [{refs}]\n");
    }
    std::fs::write(&f, format!("{PROMETHEUS}---\n{bomb}")).unwrap();
    let (out, stdout, stderr) = discover(&[], &[&f], None);
    assert_partial_with_prometheus(&out, &stdout, &stderr);
    assert!(
        stderr.contains(&format!(
            "{}: document 2: refused before parsing: line 24 column ",
            f.display()
        )) && stderr.contains("expands the document past 16 MiB (YAML alias expansion limit)"),
        "{stderr}"
    );
}

#[test]
fn symlink_cycle_and_special_files_are_refused_and_prometheus_kept() {
    let d = dir("fs");
    std::fs::write(d.join("prometheus.yaml"), PROMETHEUS).unwrap();
    std::os::unix::fs::symlink(&d, d.join("loop")).unwrap();
    let fifo = d.join("pipe.yaml");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let (out, stdout, stderr) = discover(&[], &[&d, Path::new("/dev/zero")], None);
    assert_partial_with_prometheus(&out, &stdout, &stderr);
    assert!(
        stderr.contains(&format!(
            "{}: document 0: refused: symbolic link cycle (leads back to {}, already being read)",
            d.join("loop").display(),
            std::fs::canonicalize(&d).unwrap().display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{}: document 0: refused: a FIFO, not a regular file",
            fifo.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("/dev/zero: document 0: refused: a character device, not a regular file"),
        "{stderr}"
    );
}

#[test]
fn stdin_is_read_up_to_the_limit_and_files_still_count() {
    let d = dir("stdin");
    let f = d.join("prometheus.yaml");
    std::fs::write(&f, PROMETHEUS).unwrap();
    let big = vec![b'#'; 16 * 1024 * 1024 + 1];
    let (out, stdout, stderr) = discover(&[], &[Path::new("-"), &f], Some(&big));
    assert_partial_with_prometheus(&out, &stdout, &stderr);
    assert!(
        stderr.contains("<stdin>: document 0: too large: more, the limit is 16 MiB"),
        "{stderr}"
    );
}

#[test]
fn hostile_overrides_file_is_a_fatal_error_naming_file_and_line() {
    let d = dir("overrides");
    let f = d.join("prometheus.yaml");
    std::fs::write(&f, PROMETHEUS).unwrap();
    let o = d.join("overrides.yaml");
    std::fs::write(&o, format!("toolsets: {}\n", "[".repeat(100_000))).unwrap();
    let (out, stdout, stderr) = discover(&["--overrides", o.to_str().unwrap()], &[&f], None);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "overrides file {}: line 1 column 42: nested more than 32 levels deep (YAML nesting limit)",
            o.display()
        )),
        "{stderr}"
    );
    let (out, _, stderr) = discover(&["--overrides", "/dev/zero"], &[&f], None);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("overrides file /dev/zero: refused: a character device, not a regular file"),
        "{stderr}"
    );
}
