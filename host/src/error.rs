//! The host crate's error type: what its modules return across their boundaries (the
//! commands turn it into anyhow at the edge). Module-specific detail types (settings issues,
//! API query errors, ConfigMap write outcomes) convert into it.

use std::path::PathBuf;

/// Errors of the host crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading input failed (the message is a sentence without the path: callers add it).
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    #[error("cannot read: not UTF-8 text ({0})")]
    NotUtf8(#[from] std::string::FromUtf8Error),
    /// The input is larger than its limit, or not a regular file.
    #[error("{0}")]
    Refused(String),
    /// A path given on the command line does not exist.
    #[error("{}: no such file or directory", .0.display())]
    NoSuchPath(PathBuf),
    #[error("cannot build HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Query(#[from] crate::api::query::BadQuery),
    #[error(transparent)]
    Write(#[from] crate::controller::apply::WriteError),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Core(#[from] dynamic_toolset_core::Error),
    #[error(transparent)]
    Runtime(#[from] dynamic_toolset_runtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
