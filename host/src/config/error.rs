//! What can go wrong with the settings: [`ConfigError`] (the one error type of this module),
//! made of [`Issue`]s, each naming a key, the [`Source`] of its value and the [`Problem`].

use std::fmt;
use std::path::PathBuf;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The settings file, with the line when known.
    File { path: PathBuf, line: Option<usize> },
    /// An environment variable.
    Env(String),
    /// A command-line flag (without the leading `--`).
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File {
                path,
                line: Some(l),
            } => write!(f, "{}:{l}", path.display()),
            Source::File { path, line: None } => write!(f, "{}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag --{name}"),
        }
    }
}

/// What is wrong with one value (or, for warnings, what is worth knowing about it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("expected a mapping with service_discovery, configmap, ... at the top, found {0}")]
    TopNotMapping(&'static str),
    #[error("expected a mapping of keys, found {0}")]
    SectionNotMapping(&'static str),
    #[error("keys must be strings, found {0:?}")]
    KeyNotString(String),
    #[error("unknown key; did you mean {path}? (it belongs under {section})")]
    KeyElsewhere {
        path: &'static str,
        section: &'static str,
    },
    #[error("unknown key; did you mean {0}?")]
    KeyTypo(&'static str),
    #[error("unknown key (known keys here: {0})")]
    UnknownKey(String),
    #[error(
        "deprecated and ignored: discovery is watch-driven, there is no cache to expire \
         (discovery_interval sets the full resync)"
    )]
    CacheTtlIgnored,
    #[error(
        "{value} conflicts with {other} ({other_value}, {other_source}); they are the same setting, keep one"
    )]
    SameSetting {
        value: String,
        other: &'static str,
        other_value: String,
        other_source: Source,
    },
    /// A text duration: `{0}` is the text, quoted.
    #[error("{0:?} is negative; durations must be positive")]
    Negative(String),
    #[error("{0:?} has no unit; write e.g. \"{0}s\" or \"{0}ms\"")]
    NoUnit(String),
    /// A YAML number where a duration was expected.
    #[error("{0} has no unit; write e.g. \"{0}s\" or \"{0}ms\"")]
    NumberNoUnit(String),
    #[error("{0:?} is not a duration (e.g. 30s, 5m)")]
    NotDuration(String),
    #[error("{0:?}: must be greater than zero")]
    ZeroDuration(String),
    #[error("must be greater than zero")]
    MustBePositive,
    #[error("expected a duration (e.g. 30s, 5m), found {0}")]
    ExpectedDuration(String),
    #[error("expected true or false, found {0}")]
    ExpectedBool(String),
    #[error("{0:?} is not a boolean (use true, false, 1 or 0)")]
    NotBool(String),
    #[error("expected a whole number, found {0}")]
    ExpectedNumber(String),
    #[error("{0:?} is not a whole number")]
    NotNumber(String),
    #[error("{n} is out of range ({min} to {max})")]
    OutOfRange { n: u64, min: u32, max: u32 },
    #[error("expected a string, found {0}")]
    ExpectedString(String),
    #[error("expected a list (e.g. [monitoring, team-*]), found {0}")]
    ExpectedList(String),
    #[error("item {index}: expected a namespace name or pattern, found {found}")]
    BadListItem { index: usize, found: String },
    #[error("{text:?} is not a listen address; write \"0.0.0.0:{port}\" or \"[::]:{port}\"")]
    PortOnly { text: String, port: String },
    #[error("{0:?} is not a listen address (IP:PORT, e.g. 0.0.0.0:8080 or [::]:8080)")]
    NotListenAddress(String),
    #[error("empty namespace pattern")]
    EmptyPattern,
    #[error(
        "{pattern:?} is not a namespace pattern: {bad:?} is not allowed (namespaces use a-z, \
         0-9 and '-'; the wildcards are '*' and '?', not regular expressions)"
    )]
    PatternChar { pattern: String, bad: char },
    #[error("{0:?} is longer than a namespace (63 characters)")]
    PatternTooLong(String),
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// A Kubernetes name or selector refused by `dynamic_toolset_core::k8s_names`.
    #[error("{0}")]
    Name(dynamic_toolset_core::Error),
    #[error("{value} must be shorter than {other} ({other_value}, {other_source})")]
    NotShorter {
        value: String,
        other: &'static str,
        other_value: String,
        other_source: Source,
    },
    #[error("{value} is also {other} ({other_source}); the two endpoints need different addresses")]
    SameAddress {
        value: String,
        other: &'static str,
        other_source: Source,
    },
}

/// One problem (or warning) with one key: a line of [`ConfigError::Invalid`], shown as
/// `SOURCE: KEY: PROBLEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path, e.g. `leader_election.renew_deadline` (`(file)` for the file as a whole).
    pub key: String,
    /// Where the offending value came from.
    pub source: Source,
    pub message: Problem,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.key, self.message)
    }
}

/// Why the settings could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Every problem found; the controller refuses to start on any.
    #[error("{}", invalid_summary(issues))]
    Invalid {
        issues: Vec<Issue>,
        /// Warnings found on the way (deprecated keys); not part of the message.
        warnings: Vec<Issue>,
    },
    // The I/O errors are part of the message, not a `source`: `{:#}` would repeat them.
    #[error("cannot read settings from stdin: {0}")]
    Stdin(std::io::Error),
    #[error("cannot read settings file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn invalid_summary(issues: &[Issue]) -> String {
    let n = issues.len();
    let mut out = format!(
        "invalid settings ({n} error{})",
        if n == 1 { "" } else { "s" }
    );
    for issue in issues {
        out.push_str(&format!("\n  {issue}"));
    }
    out
}

impl ConfigError {
    /// The problems with the settings (none when the file could not be read).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }

    /// Warnings found before the settings were refused.
    pub fn warnings(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { warnings, .. } => warnings,
            _ => &[],
        }
    }

    /// Whether some issue is about `key`.
    pub fn mentions(&self, key: &str) -> bool {
        self.issues().iter().any(|i| i.key == key)
    }
}
