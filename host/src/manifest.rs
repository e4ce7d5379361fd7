//! Reading Service objects from manifests: files, directories or standard input holding
//! multi-document YAML, JSON, `kind: List` (e.g. `kubectl get svc -A -o yaml`).
//!
//! Bad input never stops the run: every document that fails is reported with the file,
//! the document number, the object and the field at fault, and the rest is processed.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use dynamic_toolset_core::{ServiceSnapshot, TextError, limits};
use k8s_openapi::api::core::v1::Service;

use crate::error::Error;

/// Where a Service came from: enough for an error message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File path, or `<stdin>`.
    pub source: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// 0-based index in a `kind: List`, if the object came from one.
    pub item: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.source, self.document)?;
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        Ok(())
    }
}

/// A document or object that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub origin: Origin,
    /// `Service <namespace>/<name>` when known.
    pub object: Option<String>,
    /// The field at fault, e.g. `spec.ports[1].port`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(o) = &self.object {
            write!(f, " ({o})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The outcome of reading manifests.
#[derive(Debug, Default)]
pub struct Loaded {
    pub services: Vec<(Origin, ServiceSnapshot)>,
    pub errors: Vec<ManifestError>,
    /// Objects of other kinds, skipped (and Services past [`limits::MAX_SERVICES`]).
    pub skipped: usize,
    /// [`limits::MAX_SERVICES`] was reached (reported once, in `errors`).
    pub too_many_services: bool,
}

/// Options for turning objects into snapshots.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Namespace for objects that carry none (e.g. `helm template` output).
    pub default_namespace: String,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            default_namespace: "default".to_string(),
        }
    }
}

/// Expands the given paths: `-` is stdin, a directory contributes its `*.yaml`, `*.yml`
/// and `*.json` files recursively, in sorted order. Symbolic links are followed, but a link
/// leading back into a directory being walked is refused, and so is anything that is not a
/// regular file or a directory (FIFOs, sockets, devices): these become errors for that
/// path and the others are still read. A path that does not exist is a fatal error.
pub fn expand_paths(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<ManifestError>), Error> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        match std::fs::metadata(p) {
            Ok(meta) if meta.is_dir() => {
                let mut ancestors = Vec::new();
                collect_dir(p, &mut ancestors, &mut out, &mut errors);
            }
            Ok(meta) => match regular_file(p, &meta) {
                Ok(()) => out.push(p.clone()),
                Err(e) => errors.push(e),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(p).is_ok() {
                    errors.push(path_error(p, "a symbolic link to nothing".into()));
                } else {
                    return Err(Error::NoSuchPath(p.clone()));
                }
            }
            Err(e) => errors.push(path_error(p, format!("cannot read: {e}"))),
        }
    }
    Ok((out, errors))
}

fn path_error(path: &Path, message: String) -> ManifestError {
    ManifestError {
        origin: Origin {
            source: path.display().to_string(),
            document: 0,
            item: None,
        },
        object: None,
        field: None,
        message,
    }
}

/// Refuses what is not a regular file: reading a FIFO blocks, a device never ends.
fn regular_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), ManifestError> {
    if meta.is_file() {
        return Ok(());
    }
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    };
    Err(path_error(
        path,
        format!(
            "refused: {what}, not a regular file (manifests are read from regular files, directories or `-` for stdin)"
        ),
    ))
}

/// Walks `dir`; `ancestors` holds the canonical paths of the directories being walked.
fn collect_dir(
    dir: &Path,
    ancestors: &mut Vec<PathBuf>,
    out: &mut Vec<PathBuf>,
    errors: &mut Vec<ManifestError>,
) {
    let canonical = match std::fs::canonicalize(dir) {
        Ok(c) => c,
        Err(e) => return errors.push(path_error(dir, format!("cannot read: {e}"))),
    };
    if let Some(first) = ancestors.iter().find(|a| **a == canonical) {
        return errors.push(path_error(
            dir,
            format!(
                "refused: symbolic link cycle (leads back to {}, already being read)",
                first.display()
            ),
        ));
    }
    let entries = std::fs::read_dir(dir).and_then(|rd| {
        rd.map(|e| e.map(|e| e.path()))
            .collect::<Result<Vec<PathBuf>, _>>()
    });
    let mut entries = match entries {
        Ok(e) => e,
        Err(e) => return errors.push(path_error(dir, format!("cannot read: {e}"))),
    };
    entries.sort();
    ancestors.push(canonical);
    for path in entries {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                errors.push(path_error(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        if meta.is_dir() {
            collect_dir(&path, ancestors, out, errors);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            match regular_file(&path, &meta) {
                Ok(()) => out.push(path),
                Err(e) => errors.push(e),
            }
        }
    }
    ancestors.pop();
}

/// Reads at most `max` bytes of UTF-8 text; more is an error (checked before parsing).
pub fn read_bounded(reader: impl Read, max: usize) -> Result<String, Error> {
    let mut buf = Vec::new();
    reader
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(Error::Io)?;
    if buf.len() > max {
        return Err(Error::Refused(limits::too_large(None, max).message));
    }
    Ok(String::from_utf8(buf)?)
}

/// Reads a regular file of at most `max` bytes (anything else is refused, see
/// [`expand_paths`]); the error is a sentence without the path.
pub fn read_file_bounded(path: &Path, max: usize) -> Result<String, Error> {
    let meta = std::fs::metadata(path).map_err(Error::Io)?;
    regular_file(path, &meta).map_err(|e| Error::Refused(e.message))?;
    let file = std::fs::File::open(path).map_err(Error::Io)?;
    read_bounded(file, max)
}

/// Reads every path (see [`expand_paths`]). I/O failures on a file become errors for that
/// file; the other files are still read. Each file (and stdin) is read up to
/// [`limits::MANIFEST`]`.max_bytes`.
pub fn read_paths(paths: &[PathBuf], opts: &ReadOptions) -> Result<Loaded, Error> {
    let mut loaded = Loaded::default();
    let (files, errors) = expand_paths(paths)?;
    loaded.errors.extend(errors);
    let max = limits::MANIFEST.max_bytes;
    for path in files {
        let (source, text) = if path.as_os_str() == "-" {
            ("<stdin>".to_string(), read_bounded(std::io::stdin(), max))
        } else {
            (path.display().to_string(), read_file_bounded(&path, max))
        };
        match text {
            Ok(text) => parse_into(&source, &text, opts, &mut loaded),
            Err(e) => loaded.errors.push(ManifestError {
                origin: Origin {
                    source,
                    document: 0,
                    item: None,
                },
                object: None,
                field: None,
                message: e.to_string(),
            }),
        }
    }
    loaded.refuse_duplicates();
    Ok(loaded)
}

/// Parses one file's text.
pub fn parse_str(source: &str, text: &str, opts: &ReadOptions) -> Loaded {
    let mut loaded = Loaded::default();
    parse_into(source, text, opts, &mut loaded);
    loaded.refuse_duplicates();
    loaded
}

impl Loaded {
    /// A namespace/name given more than once (impossible in a cluster) makes the output
    /// depend on input order: every copy is refused, each error naming the others.
    fn refuse_duplicates(&mut self) {
        let mut count: std::collections::BTreeMap<(String, String), Vec<String>> =
            std::collections::BTreeMap::new();
        for (origin, s) in &self.services {
            count
                .entry((s.namespace.clone(), s.name.clone()))
                .or_default()
                .push(origin.to_string());
        }
        let services = std::mem::take(&mut self.services);
        for (origin, s) in services {
            let key = (s.namespace.clone(), s.name.clone());
            match count.get(&key) {
                Some(origins) if origins.len() > 1 => self.errors.push(ManifestError {
                    object: Some(format!("Service {}/{}", s.namespace, s.name)),
                    field: Some("metadata.name".into()),
                    message: format!(
                        "given {} times ({}): every copy is skipped, the output must not depend on input order",
                        origins.len(),
                        origins.join("; ")
                    ),
                    origin,
                }),
                _ => self.services.push((origin, s)),
            }
        }
    }
}

/// Parses one source's text: held to [`limits::MANIFEST`] first, then cut into documents,
/// each checked (depth, aliases) and parsed on its own, so one bad document costs only
/// itself.
fn parse_into(source: &str, text: &str, opts: &ReadOptions, out: &mut Loaded) {
    use serde::Deserialize;
    let origin = |document: usize| Origin {
        source: source.to_string(),
        document,
        item: None,
    };
    let limits = &limits::MANIFEST;
    if text.len() > limits.max_bytes {
        out.errors.push(ManifestError {
            origin: origin(0),
            object: None,
            field: None,
            message: limits::too_large(Some(text.len()), limits.max_bytes).message,
        });
        return;
    }
    let mut document = 0usize;
    for doc in limits::split_documents(text, limits) {
        if let Err(e) = doc.checked {
            document += 1;
            out.errors.push(ManifestError {
                origin: origin(document),
                object: None,
                field: None,
                message: format!("refused before parsing: {e}"),
            });
            continue;
        }
        for de in serde_yaml::Deserializer::from_str(doc.text) {
            document += 1;
            match serde_yaml::Value::deserialize(de) {
                Ok(value) => object_into(origin(document), value, opts, out),
                Err(e) => {
                    out.errors.push(ManifestError {
                        origin: origin(document),
                        object: None,
                        field: None,
                        message: yaml_error(&e, doc.first_line),
                    });
                    // A syntax error leaves this document unusable; the next starts at `---`.
                    break;
                }
            }
        }
    }
}

/// `not valid YAML (line L, column C): ...`, with the line counted in the whole file.
fn yaml_error(e: &serde_yaml::Error, first_line: usize) -> String {
    match limits::yaml_error_parts(e) {
        TextError {
            line: Some(line),
            column: Some(column),
            message,
        } => format!(
            "not valid YAML (line {}, column {column}): {message}",
            first_line + line - 1
        ),
        TextError { message, .. } => format!("not valid YAML: {message}"),
    }
}

fn object_into(origin: Origin, value: serde_yaml::Value, opts: &ReadOptions, out: &mut Loaded) {
    if value.is_null() {
        return; // empty document, e.g. a trailing `---`
    }
    let err = |field: Option<&str>, message: String| ManifestError {
        origin: origin.clone(),
        object: None,
        field: field.map(str::to_string),
        message,
    };
    let Some(map) = value.as_mapping() else {
        out.errors
            .push(err(None, "expected a Kubernetes object (a mapping)".into()));
        return;
    };
    let kind = match map.get("kind") {
        Some(serde_yaml::Value::String(k)) => k.as_str(),
        Some(_) => {
            out.errors
                .push(err(Some("kind"), "expected a string".into()));
            return;
        }
        None => {
            out.errors.push(err(Some("kind"), "missing".into()));
            return;
        }
    };
    if kind == "List" || kind.ends_with("List") {
        match map.get("items") {
            Some(serde_yaml::Value::Sequence(items)) => {
                for (idx, item) in items.iter().enumerate() {
                    let origin = Origin {
                        item: Some(idx),
                        ..origin.clone()
                    };
                    // `kubectl get` omits kind on items of a typed list.
                    let mut item = item.clone();
                    if let (Some(m), Some(elem)) =
                        (item.as_mapping_mut(), kind.strip_suffix("List"))
                        && !m.contains_key("kind")
                        && !elem.is_empty()
                    {
                        m.insert("kind".into(), elem.into());
                    }
                    object_into(origin, item, opts, out);
                }
            }
            Some(serde_yaml::Value::Null) | None => {}
            Some(_) => out
                .errors
                .push(err(Some("items"), "expected a list".into())),
        }
        return;
    }
    if kind != "Service" {
        out.skipped += 1;
        return;
    }
    let object = service_label(map, &opts.default_namespace);
    if out.services.len() >= limits::MAX_SERVICES {
        if !out.too_many_services {
            out.too_many_services = true;
            out.errors.push(ManifestError {
                origin,
                object,
                field: None,
                message: format!(
                    "more than {} Services in the input: this one and every later one are skipped",
                    limits::MAX_SERVICES
                ),
            });
        } else {
            out.skipped += 1;
        }
        return;
    }
    match serde_path_to_error::deserialize::<_, Service>(value) {
        Ok(svc) => match crate::services::snapshot(&svc, &opts.default_namespace) {
            Ok(snap) => out.services.push((origin, snap)),
            Err(e) => out.errors.push(ManifestError {
                origin,
                object,
                field: Some(e.field),
                message: e.message,
            }),
        },
        Err(e) => {
            let path = e.path().to_string();
            out.errors.push(ManifestError {
                origin,
                object,
                field: (path != ".").then_some(path),
                message: e.into_inner().to_string(),
            })
        }
    }
}

fn service_label(map: &serde_yaml::Mapping, default_ns: &str) -> Option<String> {
    let meta = map.get("metadata")?.as_mapping()?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta
        .get("namespace")
        .and_then(|n| n.as_str())
        .unwrap_or(default_ns);
    Some(format!("Service {ns}/{name}"))
}

#[cfg(test)]
mod duplicate_tests {
    use super::*;

    #[test]
    fn duplicate_services_are_refused_whatever_the_order() {
        let doc = |port: u16| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: prom, namespace: mon}}\nspec: {{ports: [{{name: http, port: {port}}}]}}\n"
            )
        };
        let other = "apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: mon}\nspec: {ports: [{name: http, port: 80}]}\n";
        let opts = ReadOptions {
            default_namespace: "default".into(),
        };
        let a = parse_str(
            "a.yaml",
            &format!("{}---\n{}---\n{other}", doc(9090), doc(9091)),
            &opts,
        );
        let b = parse_str(
            "b.yaml",
            &format!("{}---\n{}---\n{other}", doc(9091), doc(9090)),
            &opts,
        );
        for l in [&a, &b] {
            assert_eq!(l.services.len(), 1, "{:?}", l.errors);
            assert_eq!(l.services[0].1.name, "other");
            assert_eq!(l.errors.len(), 2);
            let text = l.errors[0].to_string();
            assert!(
                text.contains("(Service mon/prom): field `metadata.name`: given 2 times"),
                "{text}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Loaded {
        parse_str("test.yaml", text, &ReadOptions::default())
    }

    #[test]
    fn multi_document_yaml_with_other_kinds_and_empty_docs() {
        let l = parse(
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: ns, labels: {app: x}}\n\
             spec: {ports: [{name: http, port: 80, targetPort: web}]}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n",
        );
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.skipped, 1);
        assert_eq!(l.services.len(), 1);
        let s = &l.services[0].1;
        assert_eq!((s.namespace.as_str(), s.name.as_str()), ("ns", "a"));
        assert_eq!(s.ports[0].target_port.as_deref(), Some("web"));
        assert_eq!(s.ports[0].protocol, "TCP");
        assert_eq!(s.service_type, "ClusterIP");
        assert_eq!(s.labels.get("app").map(String::as_str), Some("x"));
    }

    #[test]
    fn kubectl_list_output_and_json() {
        let l = parse(
            r#"{"apiVersion":"v1","kind":"List","items":[
              {"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"n1"},"spec":{"clusterIP":"None","ports":[{"port":9090,"targetPort":9090}]}},
              {"metadata":{"name":"b","namespace":"n2"},"spec":{}}]}"#,
        );
        // The second item has no kind inside a plain List: an error, the first still counts.
        assert_eq!(l.services.len(), 1);
        assert!(l.services[0].1.headless());
        assert_eq!(
            l.services[0].1.ports[0].target_port.as_deref(),
            Some("9090")
        );
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].origin.item, Some(1));
        assert_eq!(l.errors[0].field.as_deref(), Some("kind"));

        let typed = parse(
            "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: c, namespace: n}\n",
        );
        assert!(typed.errors.is_empty(), "{:?}", typed.errors);
        assert_eq!(typed.services.len(), 1);
    }

    #[test]
    fn bad_field_is_named_and_other_documents_survive() {
        let l = parse(
            "kind: Service\nmetadata: {name: bad, namespace: ns}\nspec: {ports: [{port: 80}, {port: eighty}]}\n---\n\
             kind: Service\nmetadata: {name: good, namespace: ns}\n---\n\
             kind: Service\nmetadata: {name: big, namespace: ns}\nspec: {ports: [{port: 70000}]}\n---\n\
             kind: Service\nmetadata: {namespace: ns}\n",
        );
        assert_eq!(l.services.len(), 1, "{:?}", l.errors);
        assert_eq!(l.services[0].1.name, "good");
        assert_eq!(l.errors.len(), 3);
        let e = &l.errors[0];
        assert_eq!(e.origin.document, 1);
        assert_eq!(e.object.as_deref(), Some("Service ns/bad"));
        assert_eq!(e.field.as_deref(), Some("spec.ports[1].port"));
        let text = e.to_string();
        assert!(
            text.starts_with("test.yaml: document 1 (Service ns/bad): field `spec.ports[1].port`"),
            "{text}"
        );
        assert_eq!(l.errors[1].field.as_deref(), Some("spec.ports[0].port"));
        assert_eq!(l.errors[2].field.as_deref(), Some("metadata.name"));
    }

    #[test]
    fn yaml_syntax_error_names_line_and_keeps_earlier_documents() {
        let l =
            parse("kind: Service\nmetadata: {name: ok}\n---\nkind: Service\nmetadata: [unclosed\n");
        assert_eq!(l.services.len(), 1);
        assert_eq!(l.services[0].1.namespace, "default");
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].origin.document, 2);
        assert!(
            l.errors[0].message.contains("line"),
            "{}",
            l.errors[0].message
        );
    }

    #[test]
    fn services_per_input_are_bounded_and_reported_once() {
        let n = limits::MAX_SERVICES + 3;
        let items: Vec<String> = (0..n)
            .map(|i| {
                format!(r#"{{"kind":"Service","metadata":{{"name":"s{i}","namespace":"n"}}}}"#)
            })
            .collect();
        let l = parse(&format!(
            r#"{{"kind":"List","items":[{}]}}"#,
            items.join(",")
        ));
        assert_eq!(l.services.len(), limits::MAX_SERVICES);
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors.first());
        assert_eq!(l.skipped, 2);
        assert_eq!(
            l.errors[0].to_string(),
            "test.yaml: document 1, items[10000] (Service n/s10000): more than 10000 Services in \
             the input: this one and every later one are skipped"
        );
    }

    #[test]
    fn a_broken_document_does_not_cost_the_next_one() {
        let l = parse(
            "kind: Service\nmetadata: {name: a}\n---\nkind: Service\nmetadata: [x\n---\n\
             kind: Service\nmetadata: {name: c}\n",
        );
        let names: Vec<&str> = l.services.iter().map(|s| s.1.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].origin.document, 2);
        assert!(
            l.errors[0]
                .message
                .starts_with("not valid YAML (line 6, column 1): "),
            "{}",
            l.errors[0].message
        );
        assert_eq!(l.services[1].0.document, 3);
    }

    #[test]
    fn missing_kind_and_non_mapping_are_errors() {
        let l = parse("metadata: {name: x}\n---\n- just\n- a list\n");
        assert_eq!(l.errors.len(), 2);
        assert_eq!(l.errors[0].field.as_deref(), Some("kind"));
        assert!(l.errors[1].message.contains("mapping"));
    }
}
