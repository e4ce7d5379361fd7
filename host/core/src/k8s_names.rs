//! Kubernetes name grammar, as the apiserver validates it (k8s.io/apimachinery
//! `util/validation`), and the checks a Service must pass before detectors see it.
//!
//! One owner for this grammar: the settings (`host/src/config/`), offline
//! `discover` and the controller (both through `host/src/manifest.rs`) call it.
//!
//! Errors ([`Error`]) read as plain sentences naming the value; callers add where it came
//! from.

use crate::error::{Error, Result};
use crate::limits;
use crate::model::ServiceSnapshot;

/// Longest DNS-1123 / DNS-1035 label.
pub const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain.
pub const SUBDOMAIN_MAX: usize = 253;
/// Longest IANA service name (a port name).
pub const IANA_SVC_NAME_MAX: usize = 15;
/// Total size of an object's annotations, keys and values (apiserver `TotalAnnotationSizeLimitB`).
pub const ANNOTATIONS_TOTAL_MAX: usize = 256 * 1024;

/// RFC 1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63): namespaces.
pub fn dns1123_label(s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::Empty);
    }
    if s.len() > LABEL_MAX {
        return Err(too_long(s, LABEL_MAX));
    }
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok_chars || s.starts_with('-') || s.ends_with('-') {
        return Err(Error::Dns1123Label(s.to_string()));
    }
    Ok(())
}

/// RFC 1035 label (`[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63): Service names.
pub fn dns1035_label(s: &str) -> Result<()> {
    dns1123_label(s)?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Error::Dns1035Label(s.to_string()));
    }
    Ok(())
}

/// RFC 1123 subdomain (dot-separated labels, at most `max`): object names, DNS domains.
pub fn dns1123_subdomain(s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::Empty);
    }
    if s.len() > max {
        return Err(too_long(s, max));
    }
    if s.split('.').any(|l| dns1123_label(l).is_err()) {
        return Err(Error::Dns1123Subdomain(s.to_string()));
    }
    Ok(())
}

fn too_long(s: &str, max: usize) -> Error {
    Error::TooLong {
        value: s.to_string(),
        max,
    }
}

/// A qualified name (`[prefix/]name`): label keys. The prefix is a DNS-1123 subdomain, the
/// name at most 63 of `[-A-Za-z0-9_.]`, starting and ending with a letter or digit.
pub fn label_key(k: &str) -> Result<()> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        dns1123_subdomain(p, SUBDOMAIN_MAX).map_err(|e| Error::LabelKeyPrefix {
            key: k.to_string(),
            reason: Box::new(e),
        })?;
    }
    if name.is_empty() {
        return Err(Error::EmptyLabelKey(k.to_string()));
    }
    label_value(name).map_err(|_| Error::LabelKey(k.to_string()))
}

/// An annotation key: a qualified name, checked in lowercase as the apiserver does.
pub fn annotation_key(k: &str) -> Result<()> {
    label_key(&k.to_ascii_lowercase()).map_err(|_| Error::AnnotationKey(k.to_string()))
}

/// A label value: empty, or at most 63 of `[-A-Za-z0-9_.]` starting and ending with a letter
/// or digit.
pub fn label_value(v: &str) -> Result<()> {
    if v.is_empty() {
        return Ok(());
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if v.len() > LABEL_MAX
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || !edge(v.chars().next())
        || !edge(v.chars().last())
    {
        return Err(Error::LabelValue(v.to_string()));
    }
    Ok(())
}

/// An IANA service name (port names): 1-15 of `[-a-z0-9]`, at least one letter, no leading,
/// trailing or double '-'.
pub fn iana_svc_name(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= IANA_SVC_NAME_MAX
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::IanaSvcName(s.to_string()))
    }
}

/// A Kubernetes label selector: comma-separated `k`, `!k`, `k=v`, `k==v`, `k!=v`,
/// `k in (a,b)`, `k notin (a,b)`, `k>1`, `k<1`.
pub fn label_selector(sel: &str) -> Result<()> {
    let in_selector = |reason: Error| Error::Selector {
        selector: sel.to_string(),
        reason: Box::new(reason),
    };
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(in_selector(Error::UnbalancedParen));
                }
            }
            ',' if depth == 0 => {
                parts.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(in_selector(Error::MissingParen));
    }
    parts.push(&sel[start..]);
    for part in parts {
        requirement(part.trim()).map_err(in_selector)?;
    }
    Ok(())
}

fn requirement(req: &str) -> Result<()> {
    if req.is_empty() {
        return Err(Error::EmptyRequirement);
    }
    if let Some(k) = req.strip_prefix('!') {
        return label_key(k.trim());
    }
    let key_end = req
        .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '<' | '>' | '('))
        .unwrap_or(req.len());
    let (k, rest) = req.split_at(key_end);
    label_key(k)?;
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Ok(());
    }
    for op in ["!=", "==", "="] {
        if let Some(v) = rest.strip_prefix(op) {
            return label_value(v.trim());
        }
    }
    for op in ["<", ">"] {
        if let Some(v) = rest.strip_prefix(op) {
            let v = v.trim();
            return v
                .parse::<i64>()
                .map(|_| ())
                .map_err(|_| Error::NotAnInteger {
                    requirement: req.to_string(),
                    op,
                    value: v.to_string(),
                });
        }
    }
    for op in ["notin", "in"] {
        if let Some(v) = rest.strip_prefix(op) {
            let v = v.trim();
            let inner = v
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| Error::ListExpected {
                    requirement: req.to_string(),
                    op,
                })?;
            if inner.trim().is_empty() {
                return Err(Error::EmptyList {
                    requirement: req.to_string(),
                    op,
                });
            }
            for value in inner.split(',') {
                label_value(value.trim())?;
            }
            return Ok(());
        }
    }
    Err(Error::UnknownOperator {
        requirement: req.to_string(),
    })
}

/// A Service that fails a check: the field at fault (`metadata.labels["a/b"]`) and why
/// (the [`Error`]'s text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: Error) -> Self {
        Self {
            field: field.into(),
            message: reason.to_string(),
        }
    }
}

/// What the apiserver would check on a Service's metadata and port names (port numbers are
/// checked when the snapshot is built), plus the counts of
/// [`limits`] (labels and annotations per Service). The first failure is returned.
pub fn validate_service(s: &ServiceSnapshot) -> Result<(), FieldError> {
    dns1035_label(&s.name).map_err(|m| FieldError::new("metadata.name", m))?;
    dns1123_label(&s.namespace).map_err(|m| FieldError::new("metadata.namespace", m))?;
    if s.labels.len() > limits::MAX_LABELS {
        return Err(FieldError::new(
            "metadata.labels",
            Error::TooManyLabels(s.labels.len()),
        ));
    }
    for (k, v) in &s.labels {
        label_key(k).map_err(|m| FieldError::new(format!("metadata.labels[{k:?}]"), m))?;
        label_value(v).map_err(|m| FieldError::new(format!("metadata.labels[{k:?}]"), m))?;
    }
    if s.annotations.len() > limits::MAX_ANNOTATIONS {
        return Err(FieldError::new(
            "metadata.annotations",
            Error::TooManyAnnotations(s.annotations.len()),
        ));
    }
    let mut total = 0usize;
    for (k, v) in &s.annotations {
        annotation_key(k)
            .map_err(|m| FieldError::new(format!("metadata.annotations[{k:?}]"), m))?;
        total += k.len() + v.len();
    }
    if total > ANNOTATIONS_TOTAL_MAX {
        return Err(FieldError::new(
            "metadata.annotations",
            Error::AnnotationsTooLarge(total),
        ));
    }
    // As the apiserver's validateServicePort: a port name is a DNS-1123 label (unique in
    // the Service), a named targetPort an IANA service name.
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in s.ports.iter().enumerate() {
        if let Some(name) = &p.name {
            dns1123_label(name).map_err(|_| {
                FieldError::new(
                    format!("spec.ports[{i}].name"),
                    Error::PortName(name.clone()),
                )
            })?;
            if !names.insert(name.as_str()) {
                return Err(FieldError::new(
                    format!("spec.ports[{i}].name"),
                    Error::DuplicatePortName(name.clone()),
                ));
            }
        }
        if let Some(target) = &p.target_port {
            let field = || format!("spec.ports[{i}].targetPort");
            match target.parse::<i64>() {
                // 0 (or none) means "the same as port" once the apiserver has defaulted it.
                Ok(n) if (0..=65535).contains(&n) => {}
                Ok(n) => return Err(FieldError::new(field(), Error::PortNumber(n))),
                Err(_) => iana_svc_name(target).map_err(|m| FieldError::new(field(), m))?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors() {
        for good in [
            "app=prometheus",
            "app==prometheus,tier!=cache",
            "environment in (production, qa)",
            "tier notin (frontend,backend)",
            "partition",
            "!partition",
            "app.kubernetes.io/name=grafana",
            "a=",
            "x > 3",
            "app=a, !b ,c in (d)",
        ] {
            assert!(
                label_selector(good).is_ok(),
                "{good}: {:?}",
                label_selector(good)
            );
        }
        for bad in [
            "app in (a,b",
            "app in a,b",
            "app in ()",
            "a,,b",
            "app=-x",
            "app ~ x",
            "x > y",
            "-a",
            "Foo_/a=b",
            ",",
        ] {
            assert!(label_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_are_typed_and_read_as_sentences() {
        let e = label_selector("a=b, x > y").unwrap_err();
        assert!(
            matches!(&e, Error::Selector { reason, .. } if matches!(**reason, Error::NotAnInteger { op: ">", .. })),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            r#""a=b, x > y": "x > y": > needs an integer, found "y""#
        );
        assert_eq!(dns1123_label(""), Err(Error::Empty));
        assert_eq!(
            label_key("Bad.Prefix/x").unwrap_err().to_string(),
            "label key \"Bad.Prefix/x\": prefix \"Bad.Prefix\" is not a valid DNS name (dot-separated \
             parts of lowercase letters, digits and '-')"
        );
    }
}
