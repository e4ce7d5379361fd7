//! The Helm chart (`deploy/helm/dynamic-toolset`), rendered by the real Helm and checked:
//! its settings pass `dynamic-toolset config check`, its RBAC never grants ConfigMaps
//! cluster-wide, `deploy/dynamic-toolset.yaml` is its default rendering, and everything it
//! renders (default and `ci/*.yaml` values) passes a server-side dry run
//! (`kubectl apply --dry-run=server`) on the real kube-apiserver; the ServiceMonitor and
//! PrometheusRule included, against the real prometheus-operator CRDs (tests/fixtures/crds)
//! created on that server.
//!
//! helm and kubectl come from `cargo xtask helm-tools` (run by `cargo xtask ci`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize as _;
use serde_yaml::Value;

const RELEASE: &str = "dynamic-toolset";
const NAMESPACE: &str = "kubernaut-system";
const SETTINGS_CM: &str = "kubernaut-dynamic-toolset-config";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn chart() -> PathBuf {
    root().join("deploy/helm/dynamic-toolset")
}

fn tool(name: &str) -> PathBuf {
    let path = kube_harness::paths::cache_root().join("helm").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask helm-tools` (or `cargo xtask ci`)",
        path.display()
    );
    path
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(label, values file)`: the default values and every `ci/*.yaml` file.
fn value_sets() -> Vec<(String, Option<PathBuf>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart().join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "expected ci/*.yaml values files");
    let mut sets = vec![("default values".to_string(), None)];
    for f in files {
        sets.push((
            f.file_name().unwrap().to_string_lossy().into_owned(),
            Some(f),
        ));
    }
    sets
}

fn render(values: Option<&Path>, kube_version: Option<&str>) -> String {
    let mut cmd = Command::new(tool("helm"));
    cmd.args(["template", RELEASE])
        .arg(chart())
        .args(["--namespace", NAMESPACE]);
    if let Some(v) = values {
        cmd.arg("-f").arg(v);
    }
    if let Some(k) = kube_version {
        cmd.args(["--kube-version", k]);
    }
    ok(cmd.output().unwrap(), "helm template")
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str, ns: &str) -> Option<&'a Value> {
    objs.iter().find(|o| {
        s(o, &["kind"]) == kind
            && s(o, &["metadata", "name"]) == name
            && s(o, &["metadata", "namespace"]) == ns
    })
}

fn target_namespace(values: Option<&Path>) -> String {
    values
        .map(|p| {
            let v: Value = serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            v["targetNamespace"].as_str().unwrap_or("").to_string()
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| NAMESPACE.to_string())
}

#[test]
fn rendered_settings_pass_config_check() {
    for (label, values) in value_sets() {
        let objs = docs(&render(values.as_deref(), None));
        let cm = find(&objs, "ConfigMap", SETTINGS_CM, NAMESPACE)
            .unwrap_or_else(|| panic!("{label}: no settings ConfigMap"));
        let text = s(cm, &["data", "config.yaml"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
            .args(["config", "check", "--no-env"])
            .arg(&file)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let effective = ok(out, &format!("config check of the {label} settings"));
        let eff: Value = serde_yaml::from_str(&effective).unwrap();
        let target = target_namespace(values.as_deref());
        assert_eq!(s(&eff, &["configmap", "namespace"]), target, "{label}");
        // The Lease stays in the release namespace whatever the target namespace.
        assert_eq!(
            s(&eff, &["leader_election", "lease_namespace"]),
            NAMESPACE,
            "{label}"
        );
    }
}

#[test]
fn rbac_keeps_configmaps_namespaced_and_the_lease_home() {
    for (label, values) in value_sets() {
        let objs = docs(&render(values.as_deref(), None));
        let target = target_namespace(values.as_deref());
        for o in &objs {
            if s(o, &["kind"]) != "ClusterRole" {
                continue;
            }
            // The API reader role grants reads of our own API's URLs, nothing of the cluster.
            if s(o, &["metadata", "name"]).ends_with("-api-reader") {
                let rules = o["rules"].as_sequence().unwrap();
                assert_eq!(rules.len(), 1, "{label}: {o:?}");
                assert!(rules[0].get("resources").is_none(), "{label}: {o:?}");
                for url in rules[0]["nonResourceURLs"].as_sequence().unwrap() {
                    assert!(
                        url.as_str().unwrap().starts_with("/dynamic-toolset"),
                        "{label}: {url:?}"
                    );
                }
                assert_eq!(
                    serde_yaml::to_string(&rules[0]["verbs"]).unwrap().trim(),
                    "- get"
                );
                continue;
            }
            let rules = o["rules"].as_sequence().unwrap();
            assert_eq!(rules.len(), 1, "{label}: ClusterRole {o:?}");
            assert_eq!(
                serde_yaml::to_string(&rules[0]["resources"])
                    .unwrap()
                    .trim(),
                "- services",
                "{label}"
            );
            let verbs: Vec<&str> = rules[0]["verbs"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(verbs, ["list", "watch"], "{label}");
        }
        // Services: one ClusterRole (list/watch), or, when every watched namespace is a literal
        // name, a Role in each of them and no ClusterRole at all.
        let settings: Value = serde_yaml::from_str(s(
            find(&objs, "ConfigMap", SETTINGS_CM, NAMESPACE).unwrap(),
            &["data", "config.yaml"],
        ))
        .unwrap();
        let watched: Vec<String> = settings["service_discovery"]["namespaces"]
            .as_sequence()
            .map(|v| v.iter().map(|n| n.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let literal = !watched.is_empty() && watched.iter().all(|n| !n.contains(['*', '?']));
        let cluster_roles = objs
            .iter()
            .filter(|o| s(o, &["kind"]) == "ClusterRole")
            .filter(|o| !s(o, &["metadata", "name"]).ends_with("-api-reader"))
            .count();
        assert_eq!(cluster_roles, usize::from(!literal), "{label}");
        let grants = |ns: &str, resource: &str| -> Vec<String> {
            objs.iter()
                .filter(|o| s(o, &["kind"]) == "Role" && s(o, &["metadata", "namespace"]) == ns)
                .filter(|o| !s(o, &["metadata", "name"]).ends_with("-delivery"))
                .flat_map(|o| o["rules"].as_sequence().unwrap().clone())
                .filter(|r| {
                    r["resources"]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .any(|x| x.as_str() == Some(resource))
                })
                .flat_map(|r| r["verbs"].as_sequence().unwrap().clone())
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let cm = grants(&target, "configmaps");
        for verb in ["get", "list", "watch", "create", "update", "patch"] {
            assert!(
                cm.contains(&verb.to_string()),
                "{label}: configmaps {verb} in {target}"
            );
        }
        assert!(
            grants(&target, "events").contains(&"create".to_string()),
            "{label}"
        );
        if literal {
            for ns in &watched {
                assert_eq!(grants(ns, "services"), ["list", "watch"], "{label}: {ns}");
            }
        }
        let lease = grants(NAMESPACE, "leases");
        assert_eq!(lease, ["get", "create", "update"], "{label}");
        if target != NAMESPACE {
            assert!(grants(NAMESPACE, "configmaps").is_empty(), "{label}");
            assert!(grants(&target, "leases").is_empty(), "{label}");
        }
        // The RoleBindings name our ServiceAccount in the release namespace.
        let sa = find(&objs, "Deployment", RELEASE, NAMESPACE).unwrap()["spec"]["template"]["spec"]
            ["serviceAccountName"]
            .as_str()
            .unwrap()
            .to_string();
        let bound = objs.iter().any(|o| {
            s(o, &["kind"]) == "RoleBinding"
                && s(o, &["metadata", "namespace"]) == target
                && o["subjects"][0]["name"].as_str() == Some(sa.as_str())
                && o["subjects"][0]["namespace"].as_str() == Some(NAMESPACE)
        });
        assert!(bound, "{label}: no RoleBinding for {sa} in {target}");
    }
}

#[test]
fn deployment_follows_the_issue() {
    let objs = docs(&render(None, None));
    let d = find(&objs, "Deployment", RELEASE, NAMESPACE).unwrap();
    let spec = &d["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(2));
    assert_eq!(
        spec["strategy"]["rollingUpdate"]["maxUnavailable"].as_u64(),
        Some(0)
    );
    let pod = &spec["template"]["spec"];
    assert!(!pod["affinity"]["podAntiAffinity"].is_null());
    let c = &pod["containers"][0];
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(s(c, &["livenessProbe", "httpGet", "path"]), "/healthz");
    assert_eq!(s(c, &["readinessProbe", "httpGet", "path"]), "/readyz");
    let yaml = serde_yaml::to_string(c).unwrap();
    assert!(yaml.contains("containerPort: 8080") && yaml.contains("containerPort: 9090"));
    assert!(
        yaml.contains("fieldPath: metadata.namespace"),
        "POD_NAMESPACE from the downward API"
    );
    assert!(yaml.contains("/etc/dynamic-toolset/config.yaml"));
    let pdb = find(&objs, "PodDisruptionBudget", RELEASE, NAMESPACE).unwrap();
    assert_eq!(pdb["spec"]["minAvailable"].as_u64(), Some(1));
    assert!(find(&objs, "Service", RELEASE, NAMESPACE).is_some());
}

#[test]
fn detectors_are_declared_mounted_and_reloadable_without_a_pod_roll() {
    let values = chart().join("ci/detectors-values.yaml");
    let objs = docs(&render(Some(&values), None));
    // The declarations ConfigMap parses with the controller's own parser.
    let cm = find(
        &objs,
        "ConfigMap",
        &format!("{RELEASE}-detectors"),
        NAMESPACE,
    )
    .expect("the declarations ConfigMap");
    let text = s(cm, &["data", "detectors.yaml"]);
    let decl = dynamic_toolset::detectors::declare::parse(
        text,
        "detectors.yaml",
        Path::new("/etc/dynamic-toolset/detectors"),
    )
    .unwrap();
    let names: Vec<&str> = decl.detectors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["kubernaut-context", "team-detector", "grafana"]);
    // The settings point at the mounted file.
    let settings = find(&objs, "ConfigMap", SETTINGS_CM, NAMESPACE).unwrap();
    let settings: Value = serde_yaml::from_str(s(settings, &["data", "config.yaml"])).unwrap();
    assert_eq!(
        s(&settings, &["detectors", "file"]),
        "/etc/dynamic-toolset/detectors/detectors.yaml"
    );
    let d = find(&objs, "Deployment", RELEASE, NAMESPACE).unwrap();
    let pod = &d["spec"]["template"]["spec"];
    let mounts = serde_yaml::to_string(&pod["containers"][0]["volumeMounts"]).unwrap();
    for path in [
        "/etc/dynamic-toolset/detectors",
        "/var/lib/dynamic-toolset/detectors/images",
        "/var/lib/dynamic-toolset/detectors/configmaps/team-detectors",
    ] {
        assert!(mounts.contains(path), "{path} not mounted: {mounts}");
    }
    let init = &pod["initContainers"][0];
    assert_eq!(s(init, &["name"]), "detector-kubernaut-context");
    assert_eq!(
        init["command"],
        serde_yaml::from_str::<Value>(
            "[cp, /detectors/kubernaut_context.wasm, /out/kubernaut_context.wasm]"
        )
        .unwrap()
    );
    assert_eq!(
        init["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    // Changing the declarations does not change the pod template (no roll: hot reload).
    let template = |extra: &str| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v.yaml");
        std::fs::write(
            &f,
            format!("{}{extra}", std::fs::read_to_string(&values).unwrap()),
        )
        .unwrap();
        let objs = docs(&render(Some(&f), None));
        find(&objs, "Deployment", RELEASE, NAMESPACE).unwrap()["spec"]["template"].clone()
    };
    let before = template("");
    let after = template("");
    assert_eq!(before, after);
    let text = std::fs::read_to_string(&values)
        .unwrap()
        .replace("settings: {port: 8091}", "settings: {port: 9999}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v.yaml");
    std::fs::write(&f, text).unwrap();
    let objs2 = docs(&render(Some(&f), None));
    let changed = find(&objs2, "Deployment", RELEASE, NAMESPACE).unwrap();
    assert_eq!(
        changed["spec"]["template"], before,
        "a declaration change must not roll the pods"
    );
    let cm2 = find(
        &objs2,
        "ConfigMap",
        &format!("{RELEASE}-detectors"),
        NAMESPACE,
    )
    .unwrap();
    assert!(s(cm2, &["data", "detectors.yaml"]).contains("port: 9999"));
}

#[test]
fn prometheus_rule_uses_metrics_the_binary_exports() {
    let values = chart().join("ci/cross-namespace-values.yaml");
    let objs = docs(&render(Some(&values), None));
    let rule = find(&objs, "PrometheusRule", RELEASE, NAMESPACE).expect("PrometheusRule");
    let text = serde_yaml::to_string(&rule["spec"]).unwrap();
    // Every metric the rules read is one the binary registers (or Prometheus' `up`, or
    // kube-state-metrics for the crash-loop alert).
    let exported = std::fs::read_to_string(root().join("host/src/metrics.rs")).unwrap();
    let mut checked = 0;
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if (word.starts_with("toolset_") || word.starts_with("dynamic_toolset_")) && word.len() > 8
        {
            // A histogram's series are its name plus `_bucket`, `_sum` or `_count`.
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s))
                .filter(|n| exported.contains(&format!("\"{n}\"")))
                .unwrap_or(word);
            assert!(
                exported.contains(&format!("\"{name}\"")),
                "the PrometheusRule reads {word}, which the binary does not export"
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "too few metrics checked: {checked}");
    assert!(find(&objs, "ServiceMonitor", RELEASE, NAMESPACE).is_some());
    assert!(find(&objs, "NetworkPolicy", RELEASE, NAMESPACE).is_some());
}

#[test]
fn deploy_manifest_is_the_default_rendering() {
    let file = std::fs::read_to_string(root().join("deploy/dynamic-toolset.yaml")).unwrap();
    assert!(
        file.ends_with(&render(None, None)),
        "deploy/dynamic-toolset.yaml is stale: run `cargo xtask deploy-manifests`"
    );
}

fn kubectl(server: &kube_harness::ApiServer, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(tool("kubectl"));
    cmd.arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn everything_rendered_passes_a_server_side_dry_run() {
    let server = kube_harness::shared().expect("kube-apiserver (run `cargo xtask kube build`)");
    // Every namespace any rendering puts an object in (release, target, watched).
    let mut namespaces = vec![NAMESPACE.to_string()];
    for (_, values) in value_sets() {
        for o in docs(&render(values.as_deref(), None)) {
            let ns = s(&o, &["metadata", "namespace"]);
            if !ns.is_empty() {
                namespaces.push(ns.to_string());
            }
        }
    }
    namespaces.sort();
    namespaces.dedup();
    for ns in &namespaces {
        let manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
        ok(
            kubectl(server, &["apply", "-f", "-"], Some(&manifest)),
            "create namespace",
        );
    }
    // The real prometheus-operator CRDs, then wait until they serve. `create` (not apply: the
    // 1.20 server-side apply turns their `default: ""` into null, and client-side apply's
    // last-applied annotation is too large); "AlreadyExists" from an earlier test run is fine.
    let crds = root().join("tests/fixtures/crds");
    let out = kubectl(server, &["create", "-f", crds.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.lines().all(|l| l.contains("AlreadyExists")),
        "create the prometheus-operator CRDs: {stderr}"
    );
    ok(
        kubectl(
            server,
            &[
                "wait",
                "--for=condition=established",
                "--timeout=30s",
                "crd/servicemonitors.monitoring.coreos.com",
                "crd/prometheusrules.monitoring.coreos.com",
            ],
            None,
        ),
        "wait for the CRDs",
    );
    let version = String::from_utf8(server.get("/version").unwrap().body.into_bytes()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&version).unwrap();
    let git_version = v["gitVersion"].as_str().unwrap().to_string();
    for (label, values) in value_sets() {
        // Rendered for the server's version (1.20: PodDisruptionBudget is policy/v1beta1 there).
        let rendered = render(values.as_deref(), Some(&git_version));
        let all: Vec<&str> = rendered
            .split("\n---\n")
            .filter(|d| d.contains("kind:"))
            .collect();
        let custom: Vec<&str> = all
            .iter()
            .copied()
            .filter(|d| d.contains("apiVersion: monitoring.coreos.com/"))
            .collect();
        let all = all.join("\n---\n");
        // Everything, the ServiceMonitor and PrometheusRule included (validated by the server
        // against the real prometheus-operator CRDs' schemas).
        let out = ok(
            kubectl(
                server,
                &["apply", "--dry-run=server", "-f", "-"],
                Some(&all),
            ),
            &format!("kubectl apply --dry-run=server ({label})"),
        );
        let accepted = out
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(accepted, docs(&all).len(), "{label}: {out}");
        if !custom.is_empty() {
            let custom = custom.join("\n---\n");
            // The server's check is real: a rule whose `for` is a number, not a duration
            // string, is refused by the apiserver itself (kubectl's own validation off).
            let wrong_type = custom.replacen("      for: ", "      for: 5 #", 1);
            assert_ne!(wrong_type, custom);
            let refused = kubectl(
                server,
                &["apply", "--dry-run=server", "--validate=false", "-f", "-"],
                Some(&wrong_type),
            );
            assert!(
                !refused.status.success(),
                "{label}: a PrometheusRule with `for: 5` passed the server dry run"
            );
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(
                stderr.contains("spec.groups.rules.for")
                    && stderr.contains("must be of type string"),
                "{label}: {stderr}"
            );
            // A 1.20 server prunes unknown fields of a structural schema silently, so a
            // misspelt key is caught by kubectl's strict validation against the OpenAPI the
            // server publishes, which takes the new CRDs in asynchronously; a fresh cache dir
            // per call so no earlier (pre-CRD) schema is reused.
            let validate = |text: &str| {
                let cache = tempfile::tempdir().unwrap();
                let dir = format!("--cache-dir={}", cache.path().display());
                kubectl(
                    server,
                    &[
                        "apply",
                        &dir,
                        "--dry-run=client",
                        "--validate=strict",
                        "-f",
                        "-",
                    ],
                    Some(text),
                )
            };
            let broken = custom.replacen("      for: ", "      fro: ", 1);
            assert_ne!(broken, custom);
            let mut refused = validate(&broken);
            for _ in 0..40 {
                if !refused.status.success() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
                refused = validate(&broken);
            }
            assert!(
                !refused.status.success(),
                "{label}: a PrometheusRule with `fro:` passed validation"
            );
            assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown field \"fro\""));
        }
        // Nothing was really created.
        let listed = ok(
            kubectl(
                server,
                &["get", "deployments", "-n", NAMESPACE, "-o", "name"],
                None,
            ),
            "get deployments",
        );
        assert!(
            listed.trim().is_empty(),
            "{label}: dry run created {listed}"
        );
    }
}

/// deploy/holmesgpt: the values for HolmesGPT's chart plus the delivery-container patch, on a
/// stand-in of HolmesGPT's Deployment built the way its chart template uses those values
/// (`additionalEnvVars`, `additionalVolumeMounts` on container `holmes`, `additionalVolumes`).
#[test]
fn holmesgpt_wiring_patches_a_holmes_deployment() {
    let server = kube_harness::shared().expect("kube-apiserver (run `cargo xtask kube build`)");
    let ns = "holmes-wiring";
    let manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
    ok(
        kubectl(server, &["apply", "-f", "-"], Some(&manifest)),
        "create namespace",
    );
    let values: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("deploy/holmesgpt/values.yaml")).unwrap(),
    )
    .unwrap();
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "holmes-holmes", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "holmes"}},
            "template": {
                "metadata": {"labels": {"app": "holmes"}},
                "spec": {
                    "containers": [{
                        "name": "holmes",
                        "image": "robustadev/holmes:0.45.0",
                        "command": ["python3", "-u", "server.py"],
                        "env": values["additionalEnvVars"],
                        "volumeMounts": values["additionalVolumeMounts"],
                    }],
                    "volumes": values["additionalVolumes"],
                }
            }
        }
    });
    let out = kubectl(
        server,
        &["create", "-f", "-"],
        Some(&deployment.to_string()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("AlreadyExists"),
        "{stderr}"
    );
    let patch = root().join("deploy/holmesgpt/delivery-patch.yaml");
    let patched = ok(
        kubectl(
            server,
            &[
                "-n",
                ns,
                "patch",
                "deployment",
                "holmes-holmes",
                "--type",
                "strategic",
                "--patch-file",
                patch.to_str().unwrap(),
                "--dry-run=server",
                "-o",
                "json",
            ],
            None,
        ),
        "kubectl patch --dry-run=server with the delivery container",
    );
    let d: serde_json::Value = serde_json::from_str(&patched).unwrap();
    let pod = &d["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "{pod}");
    let holmes = containers.iter().find(|c| c["name"] == "holmes").unwrap();
    let deliver = containers
        .iter()
        .find(|c| c["name"] == "dynamic-toolset-deliver")
        .unwrap();
    // HolmesGPT reads the file the delivery container writes, in the shared emptyDir.
    let location = holmes["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "CUSTOM_TOOLSET_LOCATION")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let args: Vec<&str> = deliver["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "deliver");
    assert!(
        args.contains(&format!("--output={location}").as_str()),
        "{args:?}"
    );
    assert!(args.contains(&"--holmes-url=http://127.0.0.1:5050"));
    let mount = |c: &serde_json::Value| {
        c["volumeMounts"][0]["mountPath"]
            .as_str()
            .map(str::to_string)
    };
    assert!(location.starts_with(&format!("{}/", mount(holmes).unwrap())));
    assert_eq!(mount(holmes), mount(deliver));
    assert_eq!(pod["volumes"][0]["name"], "dynamic-toolsets");
    assert!(pod["volumes"][0]["emptyDir"].is_object());
    let key = &deliver["env"][0];
    assert_eq!(key["name"], "HOLMES_API_KEY");
    assert!(
        key["valueFrom"]["secretKeyRef"].is_object(),
        "the API key comes from a Secret"
    );
}

/// The PrometheusRule's alerts, as Prometheus evaluates them (`promtool check rules` and
/// `promtool test rules` on synthetic series of this release; annotations are left out of the
/// unit test because promtool compares them verbatim).
#[test]
fn alert_rules_fire_as_the_runbook_says() {
    let promtool = kube_harness::paths::cache_root().join("promtool/promtool");
    assert!(
        promtool.is_file(),
        "{} is missing: run `cargo xtask helm-tools`",
        promtool.display()
    );
    let values = chart().join("ci/cross-namespace-values.yaml");
    let objs = docs(&render(Some(&values), None));
    let rule = find(&objs, "PrometheusRule", RELEASE, NAMESPACE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.yaml");
    std::fs::write(&full, serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
    ok(
        Command::new(&promtool)
            .args(["check", "rules"])
            .arg(&full)
            .output()
            .unwrap(),
        "promtool check rules",
    );
    let mut spec = rule["spec"].clone();
    for group in spec["groups"].as_sequence_mut().unwrap() {
        for r in group["rules"].as_sequence_mut().unwrap() {
            r.as_mapping_mut().unwrap().remove("annotations");
        }
    }
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml::to_string(&spec).unwrap(),
    )
    .unwrap();
    let sel = r#"namespace="kubernaut-system",job="dynamic-toolset",pod="dt-0""#;
    let series = |name: &str, values: &str| {
        format!("      - series: '{name}{{{sel}}}'\n        values: '{values}'\n")
    };
    // One detection batch a minute, under 1 s (healthy) or between 60 and 120 s (broken).
    let bucket = |le: &str, values: &str| {
        format!(
            "      - series: 'toolset_discovery_duration_seconds_bucket{{{sel},le=\"{le}\"}}'\n        values: '{values}'\n"
        )
    };
    let healthy = [
        series("up", "1x40"),
        series("toolset_synced", "1x40"),
        series("toolset_services_watched", "12x40"),
        series("toolset_leader", "1x40"),
        series("toolset_configmap_update_failures_total", "0x40"),
        series("dynamic_toolset_output_stale", "0x40"),
        series("dynamic_toolset_configmap_refused_writes_total", "0x40"),
        series("dynamic_toolset_detectors_failed", "0x40"),
        bucket("1", "0+1x40"),
        bucket("60", "0+1x40"),
        bucket("120", "0+1x40"),
        bucket("+Inf", "0+1x40"),
    ]
    .concat();
    let quiet: String = [
        "DynamicToolsetNoServicesDiscovered",
        "DynamicToolsetConfigMapUpdateFailures",
        "DynamicToolsetOutputStale",
        "DynamicToolsetDiscoverySlow",
        "DynamicToolsetConfigurationTooLarge",
        "DynamicToolsetDetectorsFailed",
        "DynamicToolsetNoLeader",
        "DynamicToolsetDown",
        "DynamicToolsetGateRefusals",
        "DynamicToolsetCrashLooping",
    ]
    .iter()
    .map(|a| format!("      - {{eval_time: 30m, alertname: {a}, exp_alerts: []}}\n"))
    .collect();
    let broken = [
        series("toolset_synced", "0x40"),
        series("toolset_services_watched", "0x40"),
        series("toolset_leader", "0x40"),
        series("toolset_configmap_update_failures_total", "0+1x40"),
        series("dynamic_toolset_output_stale", "1x40"),
        series("dynamic_toolset_detectors_failed", "2x40"),
        series("dynamic_toolset_configmap_refused_writes_total", "0+1x40"),
        bucket("1", "0x40"),
        bucket("60", "0x40"),
        bucket("120", "0+1x40"),
        bucket("+Inf", "0+1x40"),
        format!(
            "      - series: 'dynamic_toolset_gate_refusals_total{{{sel},detector=\"custom\",reason=\"endpoint\"}}'\n        values: '0+1x40'\n"
        ),
        "      - series: 'kube_pod_container_status_waiting_reason{namespace=\"kubernaut-system\",container=\"dynamic-toolset\",reason=\"CrashLoopBackOff\",pod=\"dt-0\"}'\n        values: '1x40'\n".to_string(),
    ]
    .concat();
    let fires = |name: &str, at: &str, labels: &str| {
        format!(
            "      - eval_time: {at}\n        alertname: {name}\n        exp_alerts: [{{exp_labels: {{{labels}}}}}]\n"
        )
    };
    let no_leader_yet =
        "      - {eval_time: 14m, alertname: DynamicToolsetNoServicesDiscovered, exp_alerts: []}\n";
    let expected = [
        fires(
            "DynamicToolsetNoServicesDiscovered",
            "16m",
            "severity: critical",
        ),
        no_leader_yet.to_string(),
        fires(
            "DynamicToolsetConfigMapUpdateFailures",
            "12m",
            "severity: warning",
        ),
        fires("DynamicToolsetOutputStale", "11m", "severity: warning"),
        fires("DynamicToolsetDiscoverySlow", "12m", "severity: warning"),
        fires(
            "DynamicToolsetConfigurationTooLarge",
            "12m",
            "severity: warning",
        ),
        fires("DynamicToolsetDetectorsFailed", "6m", "severity: warning"),
        fires("DynamicToolsetDown", "6m", "severity: critical"),
        fires("DynamicToolsetCrashLooping", "6m", "severity: critical"),
        fires(
            "DynamicToolsetGateRefusals",
            "12m",
            "severity: info, detector: custom, reason: endpoint",
        ),
        // Not synced: no leader alert (it would only repeat the not-synced one).
        "      - {eval_time: 20m, alertname: DynamicToolsetNoLeader, exp_alerts: []}\n".to_string(),
    ]
    .concat();
    let test = format!(
        "rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{healthy}    alert_rule_test:\n{quiet}  - interval: 1m\n    input_series:\n{broken}    alert_rule_test:\n{expected}"
    );
    let test_file = dir.path().join("test.yaml");
    std::fs::write(&test_file, &test).unwrap();
    ok(
        Command::new(&promtool)
            .args(["test", "rules"])
            .arg(&test_file)
            .current_dir(dir.path())
            .output()
            .unwrap(),
        &format!("promtool test rules\n{test}"),
    );
}
