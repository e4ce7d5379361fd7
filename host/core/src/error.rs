//! The core crate's error type: one enum for every fallible function of the crate, plus
//! [`TextError`], the payload of errors located in a text (overrides file, YAML bounds).
//!
//! Display texts are the messages users read (and tests check): a name error names the
//! value, never where it came from (callers add that).

use std::fmt;

use crate::k8s_names::ANNOTATIONS_TOTAL_MAX;
use crate::limits::{MAX_ANNOTATIONS, MAX_LABELS};

/// Errors of the core crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // --- Kubernetes name grammar (`k8s_names`) ---
    #[error("must not be empty")]
    Empty,
    #[error("{value:?} is longer than {max} characters")]
    TooLong { value: String, max: usize },
    #[error(
        "{0:?} is not a valid name (lowercase letters, digits and '-', starting and ending \
         with a letter or digit)"
    )]
    Dns1123Label(String),
    #[error(
        "{0:?} is not a valid Service name (DNS-1035 label: lowercase letters, digits and \
         '-', starting with a letter and ending with a letter or digit)"
    )]
    Dns1035Label(String),
    #[error(
        "{0:?} is not a valid DNS name (dot-separated parts of lowercase letters, digits and \
         '-')"
    )]
    Dns1123Subdomain(String),
    #[error("label key {key:?}: prefix {reason}")]
    LabelKeyPrefix { key: String, reason: Box<Error> },
    #[error("label key {0:?} is empty")]
    EmptyLabelKey(String),
    #[error(
        "{0:?} is not a label key (at most 63 of a-z, A-Z, 0-9, '-', '_', '.', starting \
         and ending with a letter or digit, after an optional DNS prefix and '/')"
    )]
    LabelKey(String),
    #[error(
        "{0:?} is not an annotation key (at most 63 of a-z, A-Z, 0-9, '-', '_', '.', \
         starting and ending with a letter or digit, after an optional DNS prefix and '/')"
    )]
    AnnotationKey(String),
    #[error(
        "{0:?} is not a label value (at most 63 of a-z, A-Z, 0-9, '-', '_', '.', starting \
         and ending with a letter or digit)"
    )]
    LabelValue(String),
    #[error(
        "{0:?} is not a valid port name (IANA service name: at most 15 of a-z, 0-9 and '-', \
         with at least one letter, no '-' at either end and no '--')"
    )]
    IanaSvcName(String),
    #[error("{selector:?}: {reason}")]
    Selector {
        selector: String,
        reason: Box<Error>,
    },
    #[error("unbalanced ')'")]
    UnbalancedParen,
    #[error("missing ')'")]
    MissingParen,
    #[error("empty requirement (stray comma?)")]
    EmptyRequirement,
    #[error("{requirement:?}: {op} needs an integer, found {value:?}")]
    NotAnInteger {
        requirement: String,
        op: &'static str,
        value: String,
    },
    #[error("{requirement:?}: {op} needs a list in parentheses, e.g. (a,b)")]
    ListExpected {
        requirement: String,
        op: &'static str,
    },
    #[error("{requirement:?}: {op} needs at least one value")]
    EmptyList {
        requirement: String,
        op: &'static str,
    },
    #[error("{requirement:?}: expected =, ==, !=, in (...), notin (...) after the key")]
    UnknownOperator { requirement: String },

    // --- What the apiserver checks on a Service (`k8s_names::validate_service`) ---
    #[error("{0} labels, the limit is {MAX_LABELS} per Service")]
    TooManyLabels(usize),
    #[error("{0} annotations, the limit is {MAX_ANNOTATIONS} per Service")]
    TooManyAnnotations(usize),
    #[error("annotations total {0} bytes, the limit is {ANNOTATIONS_TOTAL_MAX} (256 KiB)")]
    AnnotationsTooLarge(usize),
    #[error(
        "{0:?} is not a valid port name (DNS-1123 label: at most 63 of a-z, 0-9 and '-', \
         starting and ending with a letter or digit)"
    )]
    PortName(String),
    #[error("duplicate port name {0:?}")]
    DuplicatePortName(String),
    #[error("{0} is not a port number (1-65535)")]
    PortNumber(i64),

    // --- URLs (`HealthProbe::url_for`) ---
    #[error("endpoint {endpoint:?}: {error}")]
    EndpointUrl {
        endpoint: String,
        error: url::ParseError,
    },
    #[error("endpoint {0:?} has no host")]
    EndpointHost(String),
    #[error("probe URL {url:?}: {error}")]
    ProbeUrl { url: String, error: url::ParseError },

    // --- Texts (overrides file, YAML bounds) ---
    #[error("overrides: {0}")]
    Overrides(#[from] TextError),

    // --- Rendering (serialisation of an unrepresentable value) ---
    #[error("rendering {what} as YAML: {message}")]
    RenderYaml { what: &'static str, message: String },
    #[error("rendering {what} as JSON: {message}")]
    RenderJson { what: &'static str, message: String },
}

/// Result alias of the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error at a place in a text: a parse or validation error in the overrides file, or a
/// text over one of the [`crate::limits`]. Line and column are 1-based, where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Key path and message, e.g. `toolsets.x.enabled: invalid type: ...`.
    pub message: String,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l} column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TextError {}

impl From<serde_yaml::Error> for TextError {
    fn from(err: serde_yaml::Error) -> Self {
        crate::limits::yaml_error_parts(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_errors_show_their_location() {
        let at = |line, column| TextError {
            line,
            column,
            message: "bad".into(),
        };
        assert_eq!(at(Some(2), Some(3)).to_string(), "line 2 column 3: bad");
        assert_eq!(at(Some(2), None).to_string(), "line 2: bad");
        assert_eq!(at(None, None).to_string(), "bad");
        assert_eq!(
            Error::from(at(None, None)).to_string(),
            "overrides: bad",
            "wrapped"
        );
    }

    #[test]
    fn nested_name_errors_read_as_one_sentence() {
        let e = Error::Selector {
            selector: "a in (b".into(),
            reason: Box::new(Error::MissingParen),
        };
        assert_eq!(e.to_string(), "\"a in (b\": missing ')'");
    }
}
