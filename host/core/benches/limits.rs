//! Input bounds (issue 9): what hostile YAML costs now, next to what it cost before.
//!
//! `cargo bench -p dynamic-toolset-core --bench limits` prints a Markdown table (median of
//! several runs per row; the "before" rows run serde_yaml alone, once).
//!
//! The manifest rows do what `discover` does per file (`host/src/manifest.rs`): the size
//! check, [`limits::split_documents`] (pre-scan of each document) and serde_yaml on the
//! documents that pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use dynamic_toolset_core::limits::{self, MANIFEST};
use dynamic_toolset_core::overrides::Overrides;

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

/// What `discover` does with one file; returns (documents parsed, documents refused).
fn manifest(text: &str) -> (usize, usize) {
    let (mut ok, mut refused) = (0, 0);
    if text.len() > MANIFEST.max_bytes {
        return (0, 1);
    }
    for doc in limits::split_documents(text, &MANIFEST) {
        if doc.checked.is_err() {
            refused += 1;
            continue;
        }
        if serde_yaml::from_str::<serde_yaml::Value>(doc.text).is_ok() {
            ok += 1;
        }
    }
    (ok, refused)
}

fn laughs(levels: usize, indent: &str) -> String {
    let mut t = format!("{indent}a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..levels {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        t += &format!("{indent}a{i}: &a{i} [{refs}]\n");
    }
    t
}

fn fmt(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

fn main() {
    let prometheus = "apiVersion: v1\nkind: Service\nmetadata:\n  name: prometheus-server\n  \
        namespace: monitoring\n  labels: {app.kubernetes.io/name: prometheus}\nspec:\n  ports:\n  \
        - {name: http, port: 80, targetPort: 9090}\n";
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // 1. overrides.yaml: 100 KB of `[` (the reported attack, re-parsed every loop step).
    let nested = format!("toolsets: {}\n", "[".repeat(100_000));
    let d = median(21, || assert!(Overrides::parse(&nested).is_err()));
    rows.push((
        "overrides.yaml, 100 KB of nested `[`".into(),
        fmt(d),
        "refused (depth)".into(),
    ));

    // 2. overrides.yaml: billion laughs (9 levels × 9 aliases, 800 bytes).
    let bomb = laughs(9, "");
    let d = median(21, || assert!(Overrides::parse(&bomb).is_err()));
    rows.push((
        format!(
            "overrides.yaml, alias bomb ({} bytes, 72 aliases)",
            bomb.len()
        ),
        fmt(d),
        "refused (expansion)".into(),
    ));

    // 3. The largest accepted overrides: 256 KiB of collections 31 deep.
    let unit = format!("{}{},", "[".repeat(30), "]".repeat(30));
    let mut deep = String::from("other: [");
    while deep.len() + unit.len() + 3 < limits::OVERRIDES.max_bytes {
        deep += &unit;
    }
    deep += "]\n";
    let d = median(5, || assert!(Overrides::parse(&deep).is_ok()));
    rows.push((
        format!(
            "overrides.yaml, {} bytes nested 31 deep (worst accepted)",
            deep.len()
        ),
        fmt(d),
        "parsed".into(),
    ));

    // 4. A 200 KB manifest of nested `[` next to a good Service (the reported 2 minutes).
    let m = format!(
        "kind: Service\nmetadata:\n  labels: {}\n---\n{prometheus}",
        "[".repeat(200_000)
    );
    let d = median(21, || assert_eq!(manifest(&m), (1, 1)));
    rows.push((
        "manifest, 200 KB nested `[` + 1 Service".into(),
        fmt(d),
        "bomb refused, Service parsed".into(),
    ));

    // 5. A manifest alias bomb (11 levels) next to a good Service.
    let m2 = format!(
        "{prometheus}---\nkind: ConfigMap\ndata:\n{}",
        laughs(11, "  ")
    );
    let d = median(21, || assert_eq!(manifest(&m2), (1, 1)));
    rows.push((
        "manifest, alias bomb (9^10 copies) + 1 Service".into(),
        fmt(d),
        "bomb refused, Service parsed".into(),
    ));

    // 6. The largest accepted manifest: 16 MiB of collections 97 deep in one document.
    let unit = format!("{}{},", "[".repeat(96), "]".repeat(96));
    let mut big = String::from("kind: ConfigMap\ndata: [");
    while big.len() + unit.len() + 3 < MANIFEST.max_bytes {
        big += &unit;
    }
    big += "]\n";
    let d = median(3, || assert_eq!(manifest(&big), (1, 0)));
    rows.push((
        format!(
            "manifest, {} MiB nested 97 deep (worst accepted)",
            big.len() >> 20
        ),
        fmt(d),
        "parsed".into(),
    ));

    // 7. What the pre-scan costs on ordinary input: 2,000 chart-like Services.
    let ordinary = format!("---\n{prometheus}").repeat(2000);
    let scan = median(21, || {
        assert_eq!(limits::split_documents(&ordinary, &MANIFEST).len(), 2000)
    });
    let parse = median(5, || assert_eq!(manifest(&ordinary), (2000, 0)));
    rows.push((
        format!(
            "manifest, 2,000 ordinary Services ({} KB): pre-scan alone",
            ordinary.len() / 1000
        ),
        fmt(scan),
        format!("pre-scan + parse {}", fmt(parse)),
    ));

    // Before: serde_yaml alone on the hostile inputs (once each).
    let before = |text: &str| {
        let s = Instant::now();
        let _ = serde_yaml::from_str::<serde_yaml::Value>(text);
        s.elapsed()
    };
    let small = format!("toolsets: {}\n", "[".repeat(25_000));
    rows.push((
        "before: serde_yaml alone, 25 KB of nested `[`".into(),
        fmt(before(&small)),
        "quadratic".into(),
    ));
    rows.push((
        "before: serde_yaml alone, 100 KB of nested `[`".into(),
        fmt(before(&nested)),
        "quadratic".into(),
    ));

    println!("| input | time (median) | outcome |\n|---|---|---|");
    for (what, time, outcome) in rows {
        println!("| {what} | {time} | {outcome} |");
    }
}
