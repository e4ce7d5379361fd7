//! Controller settings, resolved in three layers: the YAML settings file (the `config.yaml` key
//! of ConfigMap `kubernaut-dynamic-toolset-config`), then the environment (the seeds' variable
//! names), then command-line flags. Later layers win.
//!
//! One room per job:
//! - [`keys`]: the key table, every key described once (path, type, default, env, flag, doc);
//! - [`settings`]: the resolved [`Settings`] and the namespace scope;
//! - [`resolve`](resolve()): the layers, with the [`Source`] of every value; `validate`: the
//!   checks of the merged values; `values`: reading one value; `lines`: the line index of the
//!   file for `config.yaml:12`-style locations;
//! - [`error`]: [`ConfigError`], the one error type, made of [`Issue`]s;
//! - `example.yaml`: [`EXAMPLE_CONFIG`], checked against the key table by unit tests.
//!
//! Everything is pure except [`load`] and [`check`], which read the file and the process
//! environment and hand them to [`resolve()`]. [`resolve()`] takes the environment as a
//! function, so tests need no process environment.
//!
//! Validation refuses to start and reports *every* problem, each naming the key and where the
//! value came from (`config.yaml:12`, `env LEASE_DURATION`, `flag --listen`, `default`).
//!
//! Decisions worth knowing:
//! - Unknown keys are errors (with a "did you mean"), except the seeds' `cache_ttl`, which is
//!   accepted with a deprecation warning and ignored: discovery is watch-driven, there is no cache
//!   to expire.
//! - A key set to `null` (e.g. `label_selector:` with nothing after it) keeps its default.
//! - An environment variable set to the empty string counts as unset.
//! - `service_discovery.health_check_interval` (the seeds' flat key) and
//!   `service_discovery.health_check.interval` are the same setting; setting both to different
//!   values is an error.
//! - `configmap.namespace` left empty resolves to `POD_NAMESPACE`, else the service account's
//!   namespace file (read by [`load`] only), else `kubernaut-system`; `leader_election.lease_namespace`
//!   left empty resolves to the pod's own namespace (`POD_NAMESPACE`, else the service
//!   account's namespace file), else the ConfigMap's namespace: with `configmap.namespace` set
//!   to HolmesGPT's namespace, the Lease stays in ours. The resolved [`Settings`] always hold the
//!   concrete values.
//! - Durations use the `humantime` syntax (`250ms`, `30s`, `5m`, `1h 30m`); a bare number is
//!   refused because its unit would be a guess.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

pub mod error;
pub mod keys;
mod lines;
mod resolve;
pub mod settings;
mod validate;
mod values;

pub use error::{ConfigError, Issue, Problem, Source};
pub use keys::env_variables;
pub use resolve::{FlagValue, Flags, Resolved, resolve, resolve_detailed};
pub use settings::{
    ConfigMapSettings, DetectorSettings, FALLBACK_NAMESPACE, HealthCheck, LeaderElection,
    SERVICE_ACCOUNT_NAMESPACE_FILE, SecuritySettings, ServerSettings, ServiceDiscovery, Settings,
    matches_namespace, wildcard_match,
};
pub use values::{parse_bool, parse_duration};

/// A complete, commented settings file holding the defaults (`example.yaml`). Valid as is,
/// and it names every key of the table with its environment variable and flag (unit tests).
pub const EXAMPLE_CONFIG: &str = include_str!("example.yaml");

/// The process environment, with the pod's namespace file standing in for an unset
/// `POD_NAMESPACE`.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| {
        (name == keys::POD_NAMESPACE)
            .then(|| std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE).ok())
            .flatten()
            .map(|s| s.trim().to_string())
    })
}

fn read_settings_file(path: &Path) -> Result<String, ConfigError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(ConfigError::Stdin)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// The controller's settings: the settings `file` (if any), the process environment, the
/// `flags`. Warnings (deprecated keys) are logged.
pub fn load(file: Option<&Path>, flags: &Flags) -> Result<Settings, ConfigError> {
    let text = file.map(read_settings_file).transpose()?;
    let resolved = resolve_detailed(file.zip(text.as_deref()), process_env, flags)?;
    for w in &resolved.warnings {
        tracing::warn!("{w}");
    }
    for (key, source) in &resolved.sources {
        if !matches!(source, Source::Default) {
            tracing::debug!(key, %source, "setting");
        }
    }
    Ok(resolved.settings)
}

/// `dynamic-toolset config check FILE [--no-env]`: prints the effective settings, or every
/// problem on stderr (exit status 1).
pub fn check(file: &Path, no_env: bool) -> Result<ExitCode, ConfigError> {
    let text = read_settings_file(file)?;
    let env = |name: &str| if no_env { None } else { process_env(name) };
    match resolve_detailed(Some((file, &text)), env, &Flags::default()) {
        Ok(resolved) => {
            for w in &resolved.warnings {
                eprintln!("warning: {w}");
            }
            for (key, source) in &resolved.sources {
                if let Source::Env(var) = source {
                    eprintln!("note: {key} from env {var}");
                }
            }
            print!("{}", resolved.settings.to_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for w in e.warnings() {
                eprintln!("warning: {w}");
            }
            for issue in e.issues() {
                eprintln!("error: {issue}");
            }
            let n = e.issues().len();
            eprintln!(
                "{}: {n} error{}; the controller would refuse to start",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::keys::{Flag, KEYS, POD_NAMESPACE};
    use super::lines::index_lines;
    use super::resolve::tests::{file, no_env, ok};
    use super::*;

    #[test]
    fn example_config_is_valid_and_holds_the_defaults() {
        let from_example = ok(EXAMPLE_CONFIG);
        let defaults = resolve(None, no_env, &Flags::default()).unwrap();
        assert_eq!(from_example, defaults);
        let r = resolve_detailed(file(EXAMPLE_CONFIG), no_env, &Flags::default()).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn every_key_is_in_the_example() {
        let lines = index_lines(EXAMPLE_CONFIG);
        for k in KEYS {
            assert!(
                lines.contains_key(k.path),
                "{} missing from EXAMPLE_CONFIG",
                k.path
            );
        }
    }

    /// The comment lines right above the line of `path` in the example.
    fn comment_above(path: &str) -> String {
        let lines = index_lines(EXAMPLE_CONFIG);
        let text: Vec<&str> = EXAMPLE_CONFIG.lines().collect();
        let at = lines[path] - 1;
        let mut start = at;
        while start > 0 && text[start - 1].trim_start().starts_with('#') {
            start -= 1;
        }
        text[start..at].join("\n")
    }

    /// The words after `marker` in `text` (`env X` → `X`, `flag --y` → `--y`).
    fn named(text: &str, marker: &str) -> Vec<String> {
        text.split(marker)
            .skip(1)
            .filter_map(|rest| rest.split([' ', ',', ')', '\n']).next())
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_example_names_each_keys_env_and_flag_and_no_other() {
        for k in KEYS {
            let comment = comment_above(k.path);
            let envs = named(&comment, "env ");
            let flags = named(&comment, "flag ");
            if let Some(env) = k.env {
                assert!(
                    envs.iter().any(|e| e == env),
                    "{}: {env}\n{comment}",
                    k.path
                );
            }
            for e in &envs {
                assert!(
                    Some(e.as_str()) == k.env || e == POD_NAMESPACE,
                    "{}: example names env {e}\n{comment}",
                    k.path
                );
            }
            let flag = k.flag.map(|f: Flag| format!("--{}", f.name()));
            assert_eq!(flags, flag.into_iter().collect::<Vec<_>>(), "{}", k.path);
        }
    }
}
