//! Line numbers of a settings file: a light index of block-style keys (`a:\n  b: 1` gives `a` → 1, `a.b` → 2) and
//! list items (`a.b[0]`). Flow style (`{a: 1}`) is not indexed: those errors carry no line.
//! Used for `config.yaml:12`-style error locations.

use std::collections::HashMap;

/// Key path (`a.b`, `a.b[0]`) → line number (from 1) of its first appearance.
pub(super) fn index_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut items: HashMap<String, usize> = HashMap::new();
    let path_of = |stack: &[(usize, String)]| {
        stack
            .iter()
            .map(|(_, k)| k.as_str())
            .collect::<Vec<_>>()
            .join(".")
    };
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with("---") || trimmed.starts_with("...") {
            stack.clear();
            continue;
        }
        if trimmed == "-" || trimmed.starts_with("- ") {
            while stack.last().is_some_and(|(n, _)| *n > indent) {
                stack.pop();
            }
            let parent = path_of(&stack);
            let n = items.entry(parent.clone()).or_insert(0);
            out.entry(format!("{parent}[{n}]")).or_insert(line_no);
            *n += 1;
            continue;
        }
        let Some(key) = line_key(trimmed) else {
            continue;
        };
        while stack.last().is_some_and(|(n, _)| *n >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        out.entry(path_of(&stack)).or_insert(line_no);
    }
    out
}

/// The key of a `key: value` line, unquoted.
fn line_key(trimmed: &str) -> Option<String> {
    if let Some(q) = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let rest = &trimmed[1..];
        let end = rest.find(q)?;
        let after = rest[end + 1..].trim_start();
        return after.starts_with(':').then(|| rest[..end].to_string());
    }
    let bytes = trimmed.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'#' | b'{' | b'[' => return None,
            b':' if bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace()) => {
                return Some(trimmed[..i].trim_end().to_string());
            }
            _ => {}
        }
    }
    None
}

/// The line of `key`, else of its list (`a.b[3]` in a flow list gives the line of `a.b`).
pub(super) fn line_of(lines: &HashMap<String, usize>, key: &str) -> Option<usize> {
    if let Some(l) = lines.get(key) {
        return Some(*l);
    }
    // `a.b[3]` without an indexed item (flow list): the list's key.
    key.split_once('[').and_then(|(k, _)| lines.get(k).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index() {
        let l =
            index_lines("a:\n  b: 1\n  c:\n    - x\n    - y\n  \"d\": 2\n# c\ne: [1]\nf:\n- z\n");
        assert_eq!(l.get("a"), Some(&1));
        assert_eq!(l.get("a.b"), Some(&2));
        assert_eq!(l.get("a.c[1]"), Some(&5));
        assert_eq!(l.get("a.d"), Some(&6));
        assert_eq!(l.get("e"), Some(&8));
        assert_eq!(l.get("f[0]"), Some(&10));
        assert_eq!(line_of(&l, "e[0]"), Some(8));
    }
}
