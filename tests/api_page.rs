//! The API over loopback HTTP (the real router and handlers), and the status page in a real
//! headless Chromium: the DOM it built holds what an operator looks for first, and the
//! screenshot shows the page laid out (the header band drawn, tables on white).
//!
//! Chromium comes from Debian's `chromium` package (`cargo xtask ci` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use dynamic_toolset::api::auth::Authorizer;
use dynamic_toolset::api::model::{
    DetectorStats, DetectorView, Health, LimitsView, Outcome, OverrideEffect, Provenance,
    ServiceView, ToolsetView, VerdictView, View, WriteView,
};
use dynamic_toolset::api::server::{self, ApiState};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

fn verdict(
    detector: &str,
    outcome: Outcome,
    reason: Option<&str>,
    toolset: Option<&str>,
) -> VerdictView {
    VerdictView {
        detector: detector.into(),
        outcome,
        reason: reason.map(str::to_string),
        toolset: toolset.map(str::to_string),
        instance: None,
        endpoint: None,
    }
}

fn sample_view() -> View {
    let prom_url = "http://kps-prometheus.monitoring.svc.cluster.local:9090";
    let mut services = vec![
        ServiceView {
            namespace: "monitoring".into(),
            name: "kps-prometheus".into(),
            verdicts: vec![verdict(
                "prometheus",
                Outcome::Matched,
                None,
                Some("prometheus/metrics"),
            )],
            chosen: true,
            not_chosen_because: vec![],
        },
        ServiceView {
            namespace: "monitoring".into(),
            name: "kps-kube-state-metrics".into(),
            verdicts: vec![verdict(
                "prometheus",
                Outcome::Declined,
                Some("kube-state-metrics (a scrape target)"),
                None,
            )],
            chosen: false,
            not_chosen_because: vec![],
        },
        ServiceView {
            namespace: "team-a".into(),
            name: "lookalike".into(),
            verdicts: vec![verdict(
                "custom",
                Outcome::Refused,
                Some("endpoint: http://evil.example.com is not in the cluster"),
                Some("grafana/dashboards"),
            )],
            chosen: false,
            not_chosen_because: vec!["refused by the gate".into()],
        },
    ];
    services.sort_by_key(ServiceView::key);
    View {
        generated_at: Some("2026-12-01T10:00:00Z".into()),
        toolsets_yaml: "toolsets:\n  prometheus/metrics:\n    enabled: true\n".into(),
        toolsets: vec![
            ToolsetView {
                name: "prometheus/metrics".into(),
                enabled: true,
                config: json!({"enabled": true, "config": {"prometheus_url": prom_url}}),
                override_effect: OverrideEffect::None,
                provenance: vec![Provenance {
                    instance: "monitoring/kps".into(),
                    service: "monitoring/kps-prometheus".into(),
                    detector: "prometheus".into(),
                    detector_version: "1.0.0".into(),
                    endpoint: prom_url.into(),
                    health: Health::Healthy,
                    last_probe: Some("2026-12-01T09:59:58Z".into()),
                    health_reason: None,
                }],
            },
            ToolsetView {
                name: "grafana/loki".into(),
                enabled: false,
                config: json!({"enabled": false}),
                override_effect: OverrideEffect::Disabled,
                provenance: vec![],
            },
        ],
        services,
        detectors: vec![DetectorView {
            name: "prometheus".into(),
            status: "loaded".into(),
            reason: None,
            emits: Some(vec!["prometheus/metrics".into()]),
            http_apis: Vec::new(),
            version: "1.0.0".into(),
            source: "bundled".into(),
            sha256: "ab".repeat(32),
            wit_version: "1.0.0".into(),
            limits: LimitsView {
                call_deadline_ms: 100,
                memory_bytes: 16 << 20,
                output_bytes: 64 << 10,
            },
            stats: DetectorStats {
                calls: 3,
                matches: 1,
                declines: 1,
                failures: BTreeMap::from([("timeout".to_string(), 1)]),
                call_mean_us: Some(40),
                call_max_us: Some(90),
            },
        }],
        last_write: Some(WriteView {
            at: "2026-12-01T10:00:01Z".into(),
            configmap: "kubernaut-system/kubernaut-toolset-config".into(),
            ok: true,
            message: None,
        }),
        last_error: Some("overrides.yaml line 3 column 5: unknown key `enabeld`".into()),
    }
}

/// The real router on loopback, auth explicitly off (local use), the sample view published.
async fn serve(
    discover: Option<mpsc::Sender<server::DiscoverRequest>>,
) -> (String, watch::Sender<Arc<View>>) {
    let (tx, rx) = watch::channel(Arc::new(sample_view()));
    let app = server::router(ApiState { view: rx, discover }, Authorizer::disabled());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), tx)
}

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_with_its_shape() {
    let (rounds_tx, mut rounds_rx) = mpsc::channel::<server::DiscoverRequest>(16);
    let (base, view_tx) = serve(Some(rounds_tx)).await;

    let (code, body) = get(&format!("{base}/api/v1/toolsets")).await;
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["name"], "prometheus/metrics");
    assert_eq!(v[0]["provenance"][0]["health"], "healthy");
    assert_eq!(v[1]["override_effect"], "disabled");

    let (code, body) = get(&format!("{base}/api/v1/toolsets?format=yaml")).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        sample_view().toolsets_yaml,
        "exactly the bytes of toolsets.yaml"
    );
    let (code, body) = get(&format!("{base}/api/v1/toolsets?format=xml")).await;
    assert_eq!(code, 400);
    assert!(body.contains("`format`"), "{body}");

    let (code, body) = get(&format!("{base}/api/v1/toolsets/prometheus/metrics")).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(&format!("{base}/api/v1/toolsets/nope/x")).await;
    assert_eq!(code, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "not_found"
    );

    let (code, body) = get(&format!(
        "{base}/api/v1/services?namespace=monitoring&limit=1"
    ))
    .await;
    assert_eq!(code, 200);
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["continue"].as_str().unwrap().to_string();
    let (_, body) = get(&format!(
        "{base}/api/v1/services?namespace=monitoring&continue={next}"
    ))
    .await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["items"][0]["name"], "kps-prometheus");
    assert!(page.get("continue").is_none());
    let (code, body) = get(&format!("{base}/api/v1/services?chosen=maybe")).await;
    assert_eq!(code, 400);
    assert!(body.contains("`chosen`"), "{body}");
    let (code, _) = get(&format!("{base}/api/v1/services/team-a/lookalike")).await;
    assert_eq!(code, 200);
    let (code, _) = get(&format!("{base}/api/v1/services/team-a/nothing")).await;
    assert_eq!(code, 404);

    let (code, body) = get(&format!("{base}/api/v1/detectors")).await;
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()[0]["stats"]["failures"]["timeout"],
        1
    );

    let (code, body) = get(&format!("{base}/openapi.json")).await;
    assert_eq!(code, 200);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["paths"]["/api/v1/services"].is_object());

    let (code, body) = get(&format!("{base}/no/such/path")).await;
    assert_eq!(code, 404);
    assert!(body.contains("/no/such/path"), "{body}");

    // overrides/validate: line and column of the error, never a write; over 1 MiB: 413.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/api/v1/overrides/validate"))
        .body("toolsets:\n  prometheus/metrics:\n    enabled: [\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["errors"][0]["line"].as_u64().is_some(), "{v}");
    let resp = http
        .post(format!("{base}/api/v1/overrides/validate"))
        .body("x".repeat(server::MAX_BODY_BYTES + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // discover: the request reaches the controller's channel; the answer names what changed
    // between the views before and after the round. Two concurrent calls, one round.
    let controller = tokio::spawn(async move {
        let first = rounds_rx.recv().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut waiting = vec![first];
        while let Ok(more) = rounds_rx.try_recv() {
            waiting.push(more);
        }
        let mut v = sample_view();
        v.toolsets.retain(|t| t.name != "grafana/loki");
        view_tx.send(Arc::new(v)).unwrap();
        let n = waiting.len();
        for w in waiting {
            let _ = w.send(());
        }
        n
    });
    let call = || {
        let http = http.clone();
        let url = format!("{base}/api/v1/discover");
        async move { http.post(url).send().await.unwrap().text().await.unwrap() }
    };
    let alias = {
        let http = http.clone();
        let url = format!("{base}/api/v1/services/discover");
        async move { http.post(url).send().await.unwrap().text().await.unwrap() }
    };
    let (a, b) = tokio::join!(call(), alias);
    let (a, b): (Value, Value) = (
        serde_json::from_str(&a).unwrap(),
        serde_json::from_str(&b).unwrap(),
    );
    assert_eq!(
        controller.await.unwrap(),
        2,
        "both calls served by one round"
    );
    for r in [a, b] {
        assert_eq!(r["removed"], json!(["grafana/loki"]), "{r}");
    }
}

/// `dynamic-toolset get` against the real router: kubectl-style tables, JSON, every page,
/// and the server's reason when it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_command_prints_tables_from_the_api() {
    let (base, _tx) = serve(None).await;
    let get = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
                .arg("get")
                .args(args)
                .env_remove("DYNAMIC_TOOLSET_TOKEN")
                .output()
                .unwrap()
        })
    };
    let out = get(vec!["toolsets".into(), "--server".into(), base.clone()])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TOOLSET"), "{table}");
    assert!(lines[0].contains("HEALTH"), "{table}");
    assert!(
        lines.iter().any(|l| l.starts_with("prometheus/metrics")
            && l.contains("monitoring/kps-prometheus")
            && l.contains("healthy")),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("grafana/loki") && l.contains("disabled"))
    );

    // Services: every page (limit is the server's; the sample has 3), filters passed on.
    let out = get(vec![
        "services".into(),
        "--server".into(),
        base.clone(),
        "--chosen=false".into(),
    ])
    .await
    .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("refused by custom"), "{table}");
    assert!(table.contains("declined by prometheus"), "{table}");
    assert!(
        !table.contains("kps-prometheus "),
        "chosen ones filtered out: {table}"
    );

    let out = get(vec![
        "detectors".into(),
        "--server".into(),
        base.clone(),
        "-o".into(),
        "json".into(),
    ])
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["name"], "prometheus");

    // An unreachable server: exit 1 and an error naming the URL.
    let out = get(vec![
        "toolsets".into(),
        "--server".into(),
        "http://127.0.0.1:1".into(),
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://127.0.0.1:1/api/v1/toolsets"));
}

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1366,768",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium (Debian package `chromium`; `cargo xtask ci` installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_in_a_real_browser() {
    let (base, _tx) = serve(None).await;
    let url = format!("{base}/");

    // The DOM Chromium built from the page.
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || chromium(&["--dump-dom", &url])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "<title>dynamic-toolset status</title>",
        "prometheus/metrics",
        "http://kps-prometheus.monitoring.svc.cluster.local:9090",
        "healthy",
        "monitoring/kps-kube-state-metrics",
        "kube-state-metrics (a scrape target)",
        "team-a/lookalike",
        "refused",
        "1 timeout",
        "unknown key `enabeld`",
        "kubernaut-system/kubernaut-toolset-config",
    ]
    .iter()
    .filter(|e| **e != "monitoring/kube-state-metrics")
    {
        assert!(
            dom.contains(expected),
            "the page lacks {expected:?}:\n{dom}"
        );
    }
    assert!(dom.contains("monitoring/kps-kube-state-metrics"));

    // The screenshot: a laptop-sized page, the dark header band at the top, white table
    // cells below it (the stylesheet applied and the tables laid out).
    let dir = tempfile::tempdir().unwrap();
    let shot = std::env::var_os("STATUS_PAGE_SCREENSHOT")
        .map_or_else(|| dir.path().join("status.png"), std::path::PathBuf::from);
    let arg = format!("--screenshot={}", shot.display());
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || chromium(&[&arg, &url])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1366, 768));
    let channels = info.color_type.samples();
    let pixel = |x: usize, y: usize| {
        let i = (y * info.width as usize + x) * channels;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    // Header background #1d2430.
    let (r, g, b) = pixel(5, 5);
    assert!(
        r < 60 && g < 60 && b < 80,
        "header band not drawn: {:?}",
        (r, g, b)
    );
    // Page background #f6f7f9 below the header, somewhere at the bottom-left margin.
    let (r, g, b) = pixel(3, 700);
    assert!(
        r > 230 && g > 230 && b > 230,
        "page background: {:?}",
        (r, g, b)
    );
    // Text was drawn: many distinct dark pixels in the table area.
    let dark = (120..700)
        .flat_map(|y| (40..1300).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let (r, g, b) = pixel(x, y);
            (r as u32 + g as u32 + b as u32) < 300
        })
        .count();
    assert!(dark > 2000, "too little text drawn: {dark} dark pixels");
}
