//! Bounds on input, checked before any YAML parser sees it.
//!
//! serde_yaml 0.9 (and its maintained forks serde_yaml_ng and serde_norway, which share the
//! same libyaml scanner) spend time quadratic in the flow nesting depth before their own
//! recursion limit fires: 100 KB of `[` took ~25 s. Their alias guard allows a 100-fold
//! expansion of the event count, which a 200 KB file turns into gigabytes. So every YAML
//! text we parse is first pre-scanned here in linear time: size, nesting depth, alias count
//! and the size the text would have with every alias expanded.
//!
//! The pre-scan is conservative: it follows YAML's lexical rules (quotes, comments, block
//! scalars, flow and block collections, anchors and aliases) closely enough to never count
//! less than the parser would build, and may count more only on inputs far from anything a
//! tool writes (e.g. dozens of unclosed `[` inside a plain scalar in flow context).

use std::collections::HashMap;

use crate::error::TextError;

/// Bounds for one YAML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest text, in bytes; also the largest size after expanding aliases.
    pub max_bytes: usize,
    /// Deepest nesting of collections (block and flow together).
    pub max_depth: usize,
    /// Most aliases (`*name`).
    pub max_aliases: usize,
}

/// `overrides.yaml` (a key of a ConfigMap, whose whole size is at most 1 MiB). Parsing
/// costs grow with size × depth, and the controller parses it at every loop step: the
/// depth allows ~4× what a HolmesGPT configuration needs.
pub const OVERRIDES: YamlLimits = YamlLimits {
    max_bytes: 256 * 1024,
    max_depth: 32,
    max_aliases: 256,
};

/// One manifest source of `discover`: a file or standard input (`kubectl get svc -A -o
/// yaml` of [`MAX_SERVICES`] Services fits). The depth leaves room for CRDs' schemas and
/// stays under serde_yaml's own recursion limit (128).
pub const MANIFEST: YamlLimits = YamlLimits {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 100,
    max_aliases: 256,
};

/// Services read by one `discover` run (all files together).
pub const MAX_SERVICES: usize = 10_000;
/// Labels on one Service.
pub const MAX_LABELS: usize = 256;
/// Annotations on one Service (their total size is bounded as the apiserver does, see
/// [`crate::k8s_names::ANNOTATIONS_TOTAL_MAX`]).
pub const MAX_ANNOTATIONS: usize = 256;

/// A text over one of the bounds (see [`TextError`]).
pub type LimitError = TextError;

/// `n` bytes in words: `256 KiB`, `16 MiB`, `1000 bytes`.
pub fn human_bytes(n: usize) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// The error for a text (or a stream) larger than `max` bytes.
pub fn too_large(size: Option<usize>, max: usize) -> LimitError {
    let size = size
        .map(|s| format!("{s} bytes"))
        .unwrap_or_else(|| "more".into());
    LimitError {
        line: None,
        column: None,
        message: format!("too large: {size}, the limit is {}", human_bytes(max)),
    }
}

/// A serde_yaml error as its location (1-based line and column, within the text parsed)
/// and its message without the " at line L column C" serde_yaml appends.
pub fn yaml_error_parts(err: &serde_yaml::Error) -> TextError {
    let mut message = err.to_string();
    let Some(loc) = err.location() else {
        return TextError {
            line: None,
            column: None,
            message,
        };
    };
    for suffix in [
        format!(" at line {} column {}", loc.line(), loc.column()),
        format!(", line {} column {}", loc.line(), loc.column()),
    ] {
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
            break;
        }
    }
    TextError {
        line: Some(loc.line()),
        column: Some(loc.column()),
        message,
    }
}

/// Checks one YAML text (any number of documents) against the limits.
pub fn check_yaml(text: &str, limits: &YamlLimits) -> Result<(), LimitError> {
    if text.len() > limits.max_bytes {
        return Err(too_large(Some(text.len()), limits.max_bytes));
    }
    scan(text, 1, limits)
}

/// One document of a YAML stream, as cut at its `---` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentText<'a> {
    /// 1-based line of the document's first line in the whole text.
    pub first_line: usize,
    pub text: &'a str,
    /// The bounds check of this document alone (the stream's size is checked by the caller).
    pub checked: Result<(), LimitError>,
}

/// Cuts a YAML stream into documents at lines starting with `---` (a document marker at
/// column 0 ends a document wherever it appears, in YAML) and checks each one, so that one
/// hostile document does not cost the others. Content before the first marker that holds
/// nothing but comments, blank lines and directives is not a document.
pub fn split_documents<'a>(text: &'a str, limits: &YamlLimits) -> Vec<DocumentText<'a>> {
    let mut starts = vec![(0usize, 1usize)];
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i > 0 && is_document_start(line) {
            starts.push((offset, i + 1));
        }
        offset += line.len();
    }
    let mut docs = Vec::with_capacity(starts.len());
    for (n, &(start, first_line)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(text.len(), |s| s.0);
        let chunk = &text[start..end];
        if n == 0 && !is_document_start(chunk) && !has_content(chunk) {
            continue;
        }
        docs.push(DocumentText {
            first_line,
            text: chunk,
            checked: scan(chunk, first_line, limits),
        });
    }
    docs
}

fn is_document_start(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r']))
}

fn has_content(chunk: &str) -> bool {
    chunk.lines().any(|l| {
        let t = l.trim_start();
        !(t.is_empty() || t.starts_with('#') || l.starts_with('%'))
    })
}

// ---- the scanner ---------------------------------------------------------------------------

/// Where an anchored node ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnchorEnd {
    /// A flow collection: when the flow depth falls back to this.
    Flow(usize),
    /// A block node: at the next content line indented at most this much (a line starting
    /// with `-` at this indentation continues it: a sequence under a mapping key).
    Block(usize),
    /// A scalar: at the end of its line, or at `,` / a closing bracket at this flow depth.
    Scalar(usize),
}

struct OpenAnchor {
    name: String,
    start: usize,
    /// Expanded size of the aliases inside it.
    inner: usize,
    end: AnchorEnd,
}

struct Scanner<'a> {
    limits: &'a YamlLimits,
    first_line: usize,
    flow: usize,
    block: Vec<usize>,
    aliases: usize,
    expanded: usize,
    anchors: HashMap<String, usize>,
    open: Vec<OpenAnchor>,
}

impl Scanner<'_> {
    fn err(&self, line: usize, col: usize, message: String) -> LimitError {
        LimitError {
            line: Some(self.first_line + line),
            column: Some(col + 1),
            message,
        }
    }

    fn check_depth(&self, line: usize, col: usize) -> Result<(), LimitError> {
        let depth = self.flow + self.block.len();
        if depth > self.limits.max_depth {
            return Err(self.err(
                line,
                col,
                format!(
                    "nested more than {} levels deep (YAML nesting limit)",
                    self.limits.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn close(&mut self, idx: usize, at: usize) {
        for a in self.open.drain(idx..).rev().collect::<Vec<_>>() {
            let size = at.saturating_sub(a.start).saturating_add(a.inner);
            self.anchors.insert(a.name, size);
        }
    }

    /// Closes the anchors whose end condition `done` says is reached (innermost last).
    fn close_where(&mut self, at: usize, done: impl Fn(AnchorEnd) -> bool) {
        if let Some(idx) = self.open.iter().position(|a| done(a.end)) {
            self.close(idx, at);
        }
    }

    fn alias(&mut self, name: &str, line: usize, col: usize) -> Result<(), LimitError> {
        self.aliases += 1;
        if self.aliases > self.limits.max_aliases {
            return Err(self.err(
                line,
                col,
                format!(
                    "more than {} aliases (YAML alias limit)",
                    self.limits.max_aliases
                ),
            ));
        }
        let size = self.anchors.get(name).copied().unwrap_or(0);
        self.expanded = self.expanded.saturating_add(size);
        for a in &mut self.open {
            a.inner = a.inner.saturating_add(size);
        }
        if self.expanded > self.limits.max_bytes {
            return Err(self.err(
                line,
                col,
                format!(
                    "alias `*{name}` expands the document past {} (YAML alias expansion limit)",
                    human_bytes(self.limits.max_bytes)
                ),
            ));
        }
        Ok(())
    }
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r' || c == b'\n'
}

fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

/// End of an anchor or alias name.
fn name_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() && !is_blank(bytes[i]) && !is_flow_indicator(bytes[i]) {
        i += 1;
    }
    i
}

fn indent_of(line: &[u8]) -> usize {
    line.iter().take_while(|&&c| c == b' ').count()
}

/// Scans `text` (whose first line is line `first_line` of its file).
fn scan(text: &str, first_line: usize, limits: &YamlLimits) -> Result<(), LimitError> {
    let mut s = Scanner {
        limits,
        first_line,
        flow: 0,
        block: Vec::new(),
        aliases: 0,
        expanded: text.len(),
        anchors: HashMap::new(),
        open: Vec::new(),
    };
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    // A block scalar in progress: the indentation its content must exceed, and the
    // content's own indentation once its first line is seen.
    let mut block_scalar: Option<(usize, Option<usize>)> = None;
    let mut offset = 0usize;
    for (ln, line_str) in text.split_inclusive('\n').enumerate() {
        let line = line_str.as_bytes();
        let line_start = offset;
        offset += line.len();
        let indent = indent_of(line);
        let blank = line[indent..].iter().all(|&c| is_blank(c));

        if let Some((parent, content)) = block_scalar {
            if blank {
                continue;
            }
            match content {
                Some(ci) if indent >= ci => continue,
                None if indent > parent => {
                    block_scalar = Some((parent, Some(indent)));
                    continue;
                }
                _ => block_scalar = None,
            }
        }

        let mut i = 0usize;
        let mut token_start = true;
        // Position where the last mapping key or sequence entry on this line began.
        let mut node_col = indent;
        if quote == Quote::None && s.flow == 0 {
            if blank || line[indent] == b'#' || (indent == 0 && line[0] == b'%') {
                continue;
            }
            if is_document_start(line_str) {
                s.close(0, line_start);
                s.block.clear();
                i = 3;
            } else {
                s.close_where(line_start, |end| match end {
                    AnchorEnd::Block(n) => {
                        indent < n || (indent == n && line.get(indent) != Some(&b'-'))
                    }
                    AnchorEnd::Scalar(_) => true,
                    AnchorEnd::Flow(_) => false,
                });
                while s.block.last().is_some_and(|&b| b >= indent) {
                    s.block.pop();
                }
                s.block.push(indent);
                s.check_depth(ln, indent)?;
                i = indent;
            }
        } else if quote == Quote::None {
            // Inside a flow collection spanning lines: a new token may start here.
            s.close_where(
                line_start,
                |end| matches!(end, AnchorEnd::Scalar(d) if d == 0),
            );
        }

        while i < line.len() {
            let c = line[i];
            match quote {
                Quote::Double => {
                    if c == b'\\' {
                        i += 2;
                        continue;
                    }
                    if c == b'"' {
                        quote = Quote::None;
                    }
                    i += 1;
                    continue;
                }
                Quote::Single => {
                    if c == b'\'' {
                        if line.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        quote = Quote::None;
                    }
                    i += 1;
                    continue;
                }
                Quote::None => {}
            }
            let next = line.get(i + 1).copied();
            let next_blank = next.is_none_or(is_blank);
            let prev_blank = i == 0 || is_blank(line[i - 1]);
            if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
                i += 1;
                continue;
            }
            if c == b'#' && prev_blank {
                break; // comment
            }
            match c {
                b'[' | b'{' if token_start || s.flow > 0 => {
                    s.flow += 1;
                    s.check_depth(ln, i)?;
                    token_start = true;
                }
                b']' | b'}' if s.flow > 0 => {
                    let inner = s.flow;
                    s.close_where(line_start + i, |end| match end {
                        AnchorEnd::Scalar(d) => d >= inner,
                        _ => false,
                    });
                    s.flow -= 1;
                    let flow = s.flow;
                    s.close_where(line_start + i + 1, |end| match end {
                        AnchorEnd::Flow(d) => d >= flow,
                        AnchorEnd::Scalar(d) => d > flow,
                        AnchorEnd::Block(_) => false,
                    });
                    token_start = false;
                }
                b',' if s.flow > 0 => {
                    let flow = s.flow;
                    s.close_where(
                        line_start + i,
                        |end| matches!(end, AnchorEnd::Scalar(d) if d >= flow),
                    );
                    token_start = true;
                }
                b':' if next_blank || (s.flow > 0 && next.is_some_and(is_flow_indicator)) => {
                    token_start = true;
                }
                b':' if s.flow > 0 && !token_start => {
                    // JSON style `"a":"b"`: a value may follow without a space.
                    token_start = true;
                }
                b'-' | b'?' if token_start && next_blank => {
                    if c == b'-' && s.flow == 0 && i > indent {
                        // A compact nested sequence (`- - x`): one more block level.
                        while s.block.last().is_some_and(|&b| b >= i) {
                            s.block.pop();
                        }
                        s.block.push(i);
                        s.check_depth(ln, i)?;
                    }
                    node_col = i;
                    token_start = true;
                }
                b'"' if token_start => {
                    quote = Quote::Double;
                    token_start = false;
                }
                b'\'' if token_start => {
                    quote = Quote::Single;
                    token_start = false;
                }
                b'|' | b'>' if token_start && s.flow == 0 => {
                    block_scalar = Some((node_col, None));
                    break;
                }
                b'!' if token_start => {
                    i = name_end(line, i);
                    continue; // a tag: the node follows
                }
                b'&' if token_start => {
                    let end = name_end(line, i + 1);
                    let name = String::from_utf8_lossy(&line[i + 1..end]).into_owned();
                    let mut j = end;
                    while j < line.len() && (line[j] == b' ' || line[j] == b'\t') {
                        j += 1;
                    }
                    let rest = line.get(j).copied();
                    let kind = match rest {
                        Some(b'[' | b'{') => AnchorEnd::Flow(s.flow),
                        None | Some(b'\n' | b'\r' | b'#') if s.flow == 0 => {
                            AnchorEnd::Block(indent)
                        }
                        _ => AnchorEnd::Scalar(s.flow),
                    };
                    s.open.push(OpenAnchor {
                        name,
                        start: line_start + i,
                        inner: 0,
                        end: kind,
                    });
                    i = end;
                    continue; // token_start stays: the node follows
                }
                b'*' if token_start => {
                    let end = name_end(line, i + 1);
                    let name = String::from_utf8_lossy(&line[i + 1..end]).into_owned();
                    s.alias(&name, ln, i)?;
                    i = end;
                    token_start = false;
                    continue;
                }
                _ => {
                    if token_start && s.flow == 0 {
                        node_col = i;
                    }
                    token_start = false;
                }
            }
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: YamlLimits = YamlLimits {
        max_bytes: 10_000,
        max_depth: 8,
        max_aliases: 32,
    };

    fn depth_ok(text: &str) -> bool {
        check_yaml(text, &L).is_ok()
    }

    #[test]
    fn brackets_in_quotes_comments_and_block_scalars_do_not_count() {
        let deep = "[".repeat(20);
        assert!(depth_ok(&format!("a: \"{deep}\"\nb: '{deep}'\n# {deep}\n")));
        assert!(depth_ok(&format!("a: |\n  {deep}\n  more\nb: 1\n")));
        assert!(depth_ok(&format!("a: x{deep}\n")));
        assert!(!depth_ok(&format!("a: {deep}\n")));
        assert!(!depth_ok(&format!("a: |\n  x\nb: {deep}\n")));
    }

    #[test]
    fn block_nesting_counts() {
        let mut t = String::new();
        for i in 0..10 {
            t += &format!("{}k{i}:\n", " ".repeat(i * 2));
        }
        assert!(!depth_ok(&t));
        assert!(!depth_ok(&format!("{}x\n", "- ".repeat(10))));
        assert!(depth_ok(&format!("{}x\n", "- ".repeat(6))));
    }

    #[test]
    fn anchors_sized_by_extent() {
        // A block anchor ends where its indentation ends.
        let t = "a: &a\n  x: 1\n  y: 2\nb: *a\nc: *a\n";
        assert!(check_yaml(t, &L).is_ok());
        let laughs = |levels: usize| {
            let mut s = String::from("a0: &a0 [lol, lol]\n");
            for i in 1..levels {
                s += &format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1);
            }
            check_yaml(&s, &L)
        };
        assert!(laughs(4).is_ok());
        // 2^11 copies of a 20-byte node: past 10,000 bytes, with only 22 aliases.
        let e = laughs(12).unwrap_err();
        assert!(e.message.contains("expands the document past"), "{e}");
        let many = format!("a: &a x\nb: [{}]\n", vec!["*a"; 40].join(", "));
        let e = check_yaml(&many, &L).unwrap_err();
        assert_eq!(e.message, "more than 32 aliases (YAML alias limit)");
    }
}
