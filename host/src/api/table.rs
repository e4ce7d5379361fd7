//! kubectl-style tables for `dynamic-toolset get toolsets|services|detectors`. Pure.

use super::model::{DetectorView, Health, Outcome, ServiceView, ToolsetView};

/// Longest cell printed; the rest is cut (`-o json` has it whole).
const MAX_CELL_CHARS: usize = 160;

/// A cell as it may reach a terminal: text from cluster objects and third-party detectors
/// (a decline reason, say) is untrusted, so control characters (escape sequences, newlines)
/// become `?` and long text is cut.
fn cell(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_CELL_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_CELL_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Columns separated by three spaces, each as wide as its widest cell, headers in capitals.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("   ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

fn health(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
        Health::Unknown => "unknown",
    }
}

/// One row per installation of each toolset (a toolset without any: one row).
pub fn toolsets(items: &[ToolsetView]) -> String {
    let mut rows = vec![];
    for t in items {
        let effect = serde_json::to_value(t.override_effect)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let enabled = if t.enabled { "true" } else { "false" }.to_string();
        if t.provenance.is_empty() {
            rows.push(vec![
                t.name.clone(),
                enabled.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                effect.clone(),
            ]);
        }
        for p in &t.provenance {
            rows.push(vec![
                t.name.clone(),
                enabled.clone(),
                p.instance.clone(),
                p.service.clone(),
                p.endpoint.clone(),
                health(p.health).into(),
                effect.clone(),
            ]);
        }
    }
    render(
        &[
            "TOOLSET", "ENABLED", "INSTANCE", "SERVICE", "ENDPOINT", "HEALTH", "OVERRIDE",
        ],
        &rows,
    )
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Matched => "matched",
        Outcome::Declined => "declined",
        Outcome::Unrelated => "unrelated",
        Outcome::Failed => "failed",
        Outcome::Refused => "refused",
    }
}

/// One row per Service: what matched it (or the first reason it was declined).
pub fn services(items: &[ServiceView]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|s| {
            let interesting: Vec<_> = s
                .verdicts
                .iter()
                .filter(|v| v.outcome != Outcome::Unrelated)
                .collect();
            let verdict = match interesting.first() {
                None => "unrelated".to_string(),
                Some(v) => format!("{} by {}", outcome(v.outcome), v.detector),
            };
            let toolset = or_dash(interesting.iter().find_map(|v| v.toolset.as_deref()));
            let reason = if s.chosen {
                "-".to_string()
            } else {
                or_dash(
                    s.not_chosen_because
                        .first()
                        .map(String::as_str)
                        .or_else(|| interesting.iter().find_map(|v| v.reason.as_deref())),
                )
            };
            vec![
                s.namespace.clone(),
                s.name.clone(),
                verdict,
                toolset,
                if s.chosen { "yes" } else { "no" }.into(),
                reason,
            ]
        })
        .collect();
    render(
        &[
            "NAMESPACE",
            "NAME",
            "VERDICT",
            "TOOLSET",
            "CHOSEN",
            "REASON",
        ],
        &rows,
    )
}

pub fn detectors(items: &[DetectorView]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|d| {
            let failures: u64 = d.stats.failures.values().sum();
            vec![
                d.name.clone(),
                d.version.clone(),
                d.source.clone(),
                d.wit_version.clone(),
                d.stats.calls.to_string(),
                d.stats.matches.to_string(),
                failures.to_string(),
                d.stats
                    .call_max_us
                    .map_or("-".into(), |us| format!("{us}µs")),
            ]
        })
        .collect();
    render(
        &[
            "NAME", "VERSION", "SOURCE", "WIT", "CALLS", "MATCHES", "FAILURES", "MAX",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_cells_cannot_steer_the_terminal() {
        let evil = format!(
            "\u{1b}]0;pwned\u{7}\u{1b}[2J{{{{ env.X }}}}\r\n{}",
            "x".repeat(1 << 20)
        );
        let t = render(&["REASON"], &[vec![evil]]);
        assert!(
            !t.chars().any(|c| c.is_control() && c != '\n'),
            "{:?}",
            &t[..80]
        );
        assert_eq!(t.lines().count(), 2, "one header, one row");
        assert!(t.len() < 1024, "cut to a cell's length");
        assert!(
            t.contains("{{ env.X }}"),
            "printed as text, nothing interprets it"
        );
    }

    #[test]
    fn columns_align_and_lines_have_no_trailing_space() {
        let t = render(
            &["NAME", "X"],
            &[
                vec!["a".into(), "1".into()],
                vec!["longer-name".into(), "22".into()],
            ],
        );
        assert_eq!(t, "NAME          X\na             1\nlonger-name   22\n");
        assert!(t.lines().all(|l| !l.ends_with(' ')));
    }
}
