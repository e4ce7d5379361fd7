//! The status page at `/`: server-rendered HTML, no JavaScript. What an operator looks for
//! first: the toolsets with their Services and health, the Services that were declined or
//! refused and why, the detectors and their failures, the last write and the last error.
//!
//! Every text on the page comes from cluster objects or detectors (untrusted): all of it goes
//! through [`esc`].

use std::fmt::Write;

use super::model::{Health, Outcome, View};

/// Declined Services listed at most (the rest: `/api/v1/services`).
const MAX_DECLINED_ROWS: usize = 200;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:14px 28px}header h1{font-size:20px;margin:0}
header p{margin:4px 0 0;color:#c9d1dc;font-size:13px}
main{max-width:1280px;margin:0 auto;padding:8px 28px 40px}
h2{font-size:17px;margin:26px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef1f5;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#4a5567}
td.url{font-family:ui-monospace,monospace;font-size:13px;word-break:break-all}
.ok{color:#137333;font-weight:600}.bad{color:#b3261e;font-weight:600}.unk{color:#7a6400}
.err{background:#fdecea;border-left:4px solid #b3261e;padding:8px 12px;margin:12px 0}
.muted{color:#6b7686}
";

fn health_cell(h: Health) -> &'static str {
    match h {
        Health::Healthy => "<span class=\"ok\">healthy</span>",
        Health::Unhealthy => "<span class=\"bad\">unhealthy</span>",
        Health::Unknown => "<span class=\"unk\">unknown</span>",
    }
}

/// The whole page.
pub fn render(view: &View) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>dynamic-toolset status</title><style>{STYLE}</style></head><body>\
         <header><h1>dynamic-toolset</h1><p>Generated configuration: {}</p></header><main>",
        esc(view.generated_at.as_deref().unwrap_or("not yet computed"))
    );
    match &view.last_write {
        Some(w) => {
            let state = if w.ok {
                "<span class=\"ok\">written</span>"
            } else {
                "<span class=\"bad\">refused</span>"
            };
            let _ = write!(
                h,
                "<p>Last write of <b>{}</b>: {state} at {}{}</p>",
                esc(&w.configmap),
                esc(&w.at),
                w.message
                    .as_deref()
                    .map(|m| format!(" — {}", esc(m)))
                    .unwrap_or_default()
            );
        }
        None => h.push_str("<p class=\"muted\">No write yet.</p>"),
    }
    if let Some(e) = &view.last_error {
        let _ = write!(h, "<div class=\"err\"><b>Last error:</b> {}</div>", esc(e));
    }

    let _ = write!(h, "<h2>Toolsets ({})</h2>", view.toolsets.len());
    h.push_str(
        "<table><tr><th>Toolset</th><th>Enabled</th><th>Instance</th><th>Service</th>\
         <th>Endpoint</th><th>Health</th><th>Last probe</th><th>Override</th></tr>",
    );
    for t in &view.toolsets {
        let effect = serde_json::to_value(t.override_effect)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let enabled = if t.enabled { "yes" } else { "no" };
        if t.provenance.is_empty() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{enabled}</td><td colspan=\"5\" class=\"muted\">\
                 not discovered</td><td>{}</td></tr>",
                esc(&t.name),
                esc(&effect)
            );
        }
        for p in &t.provenance {
            let reason = p
                .health_reason
                .as_deref()
                .map(|r| format!("<br><span class=\"muted\">{}</span>", esc(r)))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{enabled}</td><td>{}</td><td>{}</td>\
                 <td class=\"url\">{}</td><td>{}{reason}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.name),
                esc(&p.instance),
                esc(&p.service),
                esc(&p.endpoint),
                health_cell(p.health),
                esc(p.last_probe.as_deref().unwrap_or("-")),
                esc(&effect)
            );
        }
    }
    h.push_str("</table>");

    let declined: Vec<_> = view
        .services
        .iter()
        .flat_map(|s| {
            s.verdicts
                .iter()
                .filter(|v| {
                    matches!(
                        v.outcome,
                        Outcome::Declined | Outcome::Failed | Outcome::Refused
                    )
                })
                .map(move |v| (s, v))
        })
        .collect();
    let _ = write!(
        h,
        "<h2>Declined, refused or failed ({} of {} Services watched)</h2>",
        declined.len(),
        view.services.len()
    );
    h.push_str("<table><tr><th>Service</th><th>Detector</th><th>Verdict</th><th>Reason</th></tr>");
    for (s, v) in declined.iter().take(MAX_DECLINED_ROWS) {
        let verdict = match v.outcome {
            Outcome::Failed => "<span class=\"bad\">failed</span>",
            Outcome::Refused => "<span class=\"bad\">refused</span>",
            _ => "declined",
        };
        let _ = write!(
            h,
            "<tr><td>{}/{}</td><td>{}</td><td>{verdict}</td><td>{}</td></tr>",
            esc(&s.namespace),
            esc(&s.name),
            esc(&v.detector),
            esc(v.reason.as_deref().unwrap_or("-"))
        );
    }
    h.push_str("</table>");
    if declined.len() > MAX_DECLINED_ROWS {
        let _ = write!(
            h,
            "<p class=\"muted\">and {} more: <code>GET /api/v1/services</code></p>",
            declined.len() - MAX_DECLINED_ROWS
        );
    }

    let _ = write!(h, "<h2>Detectors ({})</h2>", view.detectors.len());
    h.push_str(
        "<table><tr><th>Detector</th><th>Version</th><th>Source</th><th>Calls</th>\
         <th>Matches</th><th>Failures</th><th>Longest call</th></tr>",
    );
    for d in &view.detectors {
        let failures = if d.stats.failures.is_empty() {
            "0".to_string()
        } else {
            d.stats
                .failures
                .iter()
                .map(|(k, n)| format!("<span class=\"bad\">{n} {}</span>", esc(k)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{failures}</td>\
             <td>{}</td></tr>",
            esc(&d.name),
            esc(&d.version),
            esc(&d.source),
            d.stats.calls,
            d.stats.matches,
            d.stats
                .call_max_us
                .map_or("-".into(), |us| format!("{us} µs"))
        );
    }
    h.push_str(
        "</table><p class=\"muted\">JSON: <code>/api/v1/toolsets</code>, \
         <code>/api/v1/services</code>, <code>/api/v1/detectors</code>; \
         schema: <code>/openapi.json</code>.</p></main></body></html>",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{ServiceView, VerdictView};

    #[test]
    fn untrusted_text_is_escaped() {
        let view = View {
            services: vec![ServiceView {
                namespace: "ns".into(),
                name: "svc".into(),
                verdicts: vec![VerdictView {
                    detector: "evil".into(),
                    outcome: Outcome::Declined,
                    reason: Some("<script>alert(1)</script> & \"x\"".into()),
                    toolset: None,
                    instance: None,
                    endpoint: None,
                }],
                chosen: false,
                not_chosen_because: vec![],
            }],
            ..View::default()
        };
        let page = render(&view);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
        assert!(page.contains("ns/svc"));
        assert!(page.contains("No write yet."));
    }
}
