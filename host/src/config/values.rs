//! Reading one value into its slot: from YAML (the file) or from text (environment, flags),
//! and the checks of a namespace pattern. Each failure is a [`Problem`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dynamic_toolset_core::k8s_names;
use serde_yaml::Value;

use super::error::Problem;
use super::keys::Slot;
use super::settings::{Settings, is_wildcard};

/// Sets the slot from a YAML value of the settings file.
pub(super) fn set_from_yaml(slot: Slot, s: &mut Settings, v: &Value) -> Result<(), Problem> {
    match slot {
        Slot::Dur(acc, zero_ok) => *acc(s) = yaml_duration(v, zero_ok)?,
        Slot::Bool(acc) => {
            *acc(s) = v
                .as_bool()
                .ok_or_else(|| Problem::ExpectedBool(describe(v)))?
        }
        Slot::Count(acc, min, max) => {
            let n = v
                .as_u64()
                .ok_or_else(|| Problem::ExpectedNumber(describe(v)))?;
            *acc(s) = check_count(n, min, max)?;
        }
        Slot::Str(acc) => *acc(s) = yaml_string(v)?,
        Slot::OptStr(acc) => {
            let text = yaml_string(v)?;
            *acc(s) = (!text.trim().is_empty()).then(|| text.trim().to_string());
        }
        Slot::List(acc) => {
            let Value::Sequence(items) = v else {
                return Err(Problem::ExpectedList(describe(v)));
            };
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                match yaml_scalar_string(item) {
                    Some(text) => out.push(text),
                    None => {
                        return Err(Problem::BadListItem {
                            index,
                            found: describe(item),
                        });
                    }
                }
            }
            *acc(s) = out;
        }
        Slot::Path(acc) => {
            let text = yaml_string(v)?;
            *acc(s) = (!text.trim().is_empty()).then(|| PathBuf::from(text.trim()));
        }
        Slot::Addr(acc) => *acc(s) = parse_addr(&yaml_string(v)?)?,
    }
    Ok(())
}

/// Sets the slot from text (an environment variable, a flag, a default of the key table).
pub(super) fn set_from_text(slot: Slot, s: &mut Settings, text: &str) -> Result<(), Problem> {
    let t = text.trim();
    match slot {
        Slot::Dur(acc, zero_ok) => *acc(s) = parse_duration(t, zero_ok)?,
        Slot::Bool(acc) => *acc(s) = parse_bool(t)?,
        Slot::Count(acc, min, max) => {
            let n: u64 = t.parse().map_err(|_| Problem::NotNumber(t.to_string()))?;
            *acc(s) = check_count(n, min, max)?;
        }
        Slot::Str(acc) => *acc(s) = t.to_string(),
        Slot::OptStr(acc) => *acc(s) = (!t.is_empty()).then(|| t.to_string()),
        Slot::List(acc) => {
            *acc(s) = t
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()
        }
        Slot::Path(acc) => *acc(s) = (!t.is_empty()).then(|| PathBuf::from(t)),
        Slot::Addr(acc) => *acc(s) = parse_addr(t)?,
    }
    Ok(())
}

/// For a list with a bad item, the line index key of that item (`path[i]`), else the key.
pub(super) fn first_bad_item(path: &str, slot: Slot, v: &Value) -> String {
    if let (Slot::List(_), Value::Sequence(items)) = (slot, v)
        && let Some(i) = items.iter().position(|it| yaml_scalar_string(it).is_none())
    {
        return format!("{path}[{i}]");
    }
    path.to_string()
}

fn check_count(n: u64, min: u32, max: u32) -> Result<u32, Problem> {
    u32::try_from(n)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or(Problem::OutOfRange { n, min, max })
}

fn yaml_string(v: &Value) -> Result<String, Problem> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(Problem::ExpectedString(describe(other))),
    }
}

/// Strings, and numbers written without quotes (a namespace may be called `2024`).
fn yaml_scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A duration in the settings file: a string with a unit.
pub(super) fn yaml_duration(v: &Value, zero_ok: bool) -> Result<Duration, Problem> {
    match v {
        Value::String(s) => parse_duration(s.trim(), zero_ok),
        Value::Number(n) => Err(Problem::NumberNoUnit(n.to_string())),
        other => Err(Problem::ExpectedDuration(describe(other))),
    }
}

/// `250ms`, `30s`, `5m`, `1h 30m` (humantime).
pub fn parse_duration(text: &str, zero_ok: bool) -> Result<Duration, Problem> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(Problem::Negative(t.to_string()));
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(Problem::NoUnit(t.to_string()));
    }
    let d = humantime::parse_duration(t).map_err(|_| Problem::NotDuration(t.to_string()))?;
    if d.is_zero() && !zero_ok {
        return Err(Problem::ZeroDuration(t.to_string()));
    }
    Ok(d)
}

/// `true`/`false`/`1`/`0` (case-insensitive), as environment variables give booleans.
pub fn parse_bool(text: &str) -> Result<bool, Problem> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Problem::NotBool(text.to_string())),
    }
}

fn parse_addr(text: &str) -> Result<SocketAddr, Problem> {
    let t = text.trim();
    t.parse::<SocketAddr>()
        .map_err(|_| match t.strip_prefix(':') {
            Some(port) => Problem::PortOnly {
                text: t.to_string(),
                port: port.to_string(),
            },
            None => Problem::NotListenAddress(t.to_string()),
        })
}

/// What kind of YAML value this is, for messages.
pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        other => kind_of(other).to_string(),
    }
}

/// A duration as the settings write it (`5m`, `200ms`).
pub(super) fn fmt_dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A namespace or a pattern with `*` and `?`; the literal ones are checked by
/// [`k8s_names::dns1123_label`].
pub(super) fn check_namespace_pattern(p: &str) -> Result<(), Problem> {
    if p.is_empty() {
        return Err(Problem::EmptyPattern);
    }
    if let Some(bad) = p
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?')))
    {
        return Err(Problem::PatternChar {
            pattern: p.to_string(),
            bad,
        });
    }
    if p.len() > k8s_names::LABEL_MAX {
        return Err(Problem::PatternTooLong(p.to_string()));
    }
    if !is_wildcard(p) {
        k8s_names::dns1123_label(p).map_err(Problem::Name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_patterns() {
        for good in ["monitoring", "team-*", "*", "?-prod", "a1"] {
            assert!(check_namespace_pattern(good).is_ok(), "{good}");
        }
        for bad in ["", "Team", "team.*", "team_a", "-a", "a/b", &"a".repeat(64)] {
            assert!(check_namespace_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duration_messages() {
        let msg = |t: &str| parse_duration(t, false).map_err(|e| e.to_string());
        assert_eq!(
            msg("5x"),
            Err("\"5x\" is not a duration (e.g. 30s, 5m)".into())
        );
        assert_eq!(
            msg("5"),
            Err("\"5\" has no unit; write e.g. \"5s\" or \"5ms\"".into())
        );
        assert_eq!(msg("0s"), Err("\"0s\": must be greater than zero".into()));
        assert_eq!(parse_duration("0s", true), Ok(Duration::ZERO));
        assert_eq!(
            yaml_duration(&Value::Number(5.into()), false).map_err(|e| e.to_string()),
            Err("5 has no unit; write e.g. \"5s\" or \"5ms\"".into())
        );
    }

    #[test]
    fn listen_address_messages() {
        assert_eq!(
            parse_addr(":8080").map_err(|e| e.to_string()),
            Err(
                "\":8080\" is not a listen address; write \"0.0.0.0:8080\" or \"[::]:8080\"".into()
            )
        );
        assert!(parse_addr("[::]:9090").is_ok());
    }
}
