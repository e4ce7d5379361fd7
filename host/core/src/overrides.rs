//! Admin overrides, written in HolmesGPT's own file format, merged over discovery.
//!
//! Parsing is strict where HolmesGPT is strict and errors say where: the line and
//! column, and the key path (`toolsets.prometheus/metrics.enabled: invalid type: string
//! "yes", expected a boolean`).
//! - `toolsets:` must be a map (a list is HolmesGPT's rejected "old format").
//! - Toolset entry keys are checked against HolmesGPT 0.45.0's `Toolset` model
//!   ([`ENTRY_KEYS`]); an unknown key is an error with a suggestion (`enable` →
//!   `enabled`). Keys inside `config` are free (HolmesGPT accepts unknown ones).
//! - `mcp_servers:` must be a map of maps.
//! - Any other top-level key is kept as written.
//! - An empty file, or one holding only comments, is valid and empty.
//!
//! Merging ([`merge`]): maps merge deeply with the override winning, lists and scalars are
//! replaced, new entries are added; `enabled: false` keeps a discovered toolset in the
//! output but disabled; `mcp_servers` and other top-level keys come from the overrides.
//! Nothing the admin wrote is dropped, with one deliberate exception: `enabled: false`
//! alone for a custom toolset that was not discovered this time is held back
//! ([`MergeReport::dormant`]) because HolmesGPT fails a custom entry without
//! `description`/`tools`; it applies again once the toolset is discovered.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::assemble::is_builtin;
use crate::error::TextError;
use crate::limits;

/// Keys HolmesGPT 0.45.0 accepts in a toolset entry (`holmes/core/tools.py` `Toolset`,
/// `ToolsetYamlFromConfig`), minus `name` (the loader passes it separately, a second one
/// fails) and minus the status fields it computes itself.
pub const ENTRY_KEYS: &[&str] = &[
    "approval_required_tools",
    "config",
    "description",
    "docs_url",
    "enabled",
    "experimental",
    "expose_remotely",
    "icon_url",
    "installation_instructions",
    "llm_instructions",
    "path",
    "prerequisites",
    "restricted_tools",
    "status_refresh_interval_seconds",
    "subtype",
    "tags",
    "tools",
    "transformers",
    "type",
    "url",
];

/// A parse or validation error in the overrides file (see [`TextError`]).
pub type OverridesError = TextError;

/// A validated overrides document (top-level map, keys in file order).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Overrides {
    doc: Map<String, Value>,
}

impl Overrides {
    /// Parses and validates an overrides file.
    /// The text is first held to [`limits::OVERRIDES`] (size, nesting depth, aliases), so a
    /// hostile file is refused in linear time, before the YAML parser sees it.
    pub fn parse(text: &str) -> Result<Self, OverridesError> {
        limits::check_yaml(text, &limits::OVERRIDES)?;
        // First pass: syntax (and emptiness). Comments-only and empty files are Null.
        let untyped: serde_yaml::Value = serde_yaml::from_str(text)?;
        if untyped.is_null() {
            return Ok(Overrides::default());
        }
        let Root(doc) = serde_yaml::from_str(text)?;
        Ok(Overrides { doc })
    }

    pub fn is_empty(&self) -> bool {
        self.doc.is_empty()
    }

    /// The whole document.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// The `toolsets:` map, if any.
    pub fn toolsets(&self) -> Option<&Map<String, Value>> {
        self.doc.get("toolsets").and_then(Value::as_object)
    }

    /// Names of toolsets the overrides set `enabled: false`.
    pub fn disabled(&self) -> Vec<String> {
        self.toolsets()
            .map(|t| {
                t.iter()
                    .filter(|(_, e)| e.get("enabled") == Some(&Value::Bool(false)))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What a merge changed, for `discovery.json` and `--explain`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MergeReport {
    /// Toolsets the overrides turned off (`enabled: false`), discovered or not.
    pub disabled: Vec<String>,
    /// Toolsets only the overrides define.
    pub added: Vec<String>,
    /// Discovered toolsets the overrides modified.
    pub modified: Vec<String>,
    /// Other top-level keys taken from the overrides (e.g. `mcp_servers`).
    pub top_level: Vec<String>,
    /// `enabled: false` switches for custom toolsets not discovered this time: not
    /// written (HolmesGPT would fail a custom entry without `description`/`tools`),
    /// applied again as soon as the toolset is discovered.
    #[serde(default)]
    pub dormant: Vec<String>,
}

/// An override entry that only switches off a custom (non built-in) toolset.
fn is_dormant_switch(name: &str, entry: &Value) -> bool {
    entry.get("enabled") == Some(&Value::Bool(false))
        && !is_builtin(name)
        && entry.get("description").is_none()
        && entry.get("tools").is_none()
}

/// Deep merge: objects merge key by key (override wins), anything else is replaced.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Merges the overrides over a generated document (`{"toolsets": {...}}`).
pub fn merge(generated: &Value, overrides: &Overrides) -> (Value, MergeReport) {
    let mut result = match generated {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut report = MergeReport::default();
    for (key, value) in &overrides.doc {
        if key == "toolsets" {
            let Value::Object(over_toolsets) = value else {
                continue;
            };
            let toolsets = result
                .entry("toolsets")
                .or_insert_with(|| Value::Object(Map::new()));
            if !toolsets.is_object() {
                *toolsets = Value::Object(Map::new());
            }
            let Value::Object(toolsets) = toolsets else {
                continue;
            };
            for (name, entry) in over_toolsets {
                if entry.get("enabled") == Some(&Value::Bool(false)) {
                    report.disabled.push(name.clone());
                }
                match toolsets.get_mut(name) {
                    Some(existing) => {
                        deep_merge(existing, entry);
                        report.modified.push(name.clone());
                    }
                    None if is_dormant_switch(name, entry) => {
                        report.dormant.push(name.clone());
                    }
                    None => {
                        toolsets.insert(name.clone(), entry.clone());
                        report.added.push(name.clone());
                    }
                }
            }
        } else {
            result.insert(key.clone(), value.clone());
            report.top_level.push(key.clone());
        }
    }
    report.disabled.sort();
    report.added.sort();
    report.modified.sort();
    report.top_level.sort();
    report.dormant.sort();
    (Value::Object(result), report)
}

/// The closest allowed key, if close enough to be a typo.
pub fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (strsim::levenshtein(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min()
        .map(|(_, a)| a)
}

// ---- typed, path-aware deserialisation -------------------------------------------

struct Root(Map<String, Value>);

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Root;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a HolmesGPT configuration map (toolsets:, mcp_servers:, ...)")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Root, E> {
                Ok(Root(Map::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Root, A::Error> {
                let mut out = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.contains_key(&key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    let value = match key.as_str() {
                        "toolsets" => Value::Object(map.next_value::<Toolsets>()?.0),
                        "mcp_servers" => Value::Object(map.next_value::<McpServers>()?.0),
                        _ => map.next_value::<Value>()?,
                    };
                    out.insert(key, value);
                }
                Ok(Root(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct Toolsets(Map<String, Value>);

impl<'de> Deserialize<'de> for Toolsets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Toolsets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of toolset name to entry")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Toolsets, E> {
                Ok(Toolsets(Map::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Toolsets, A::Error> {
                Err(de::Error::custom(
                    "`toolsets` is a list: that is HolmesGPT's old format, which it rejects; \
                     write a map instead: `toolsets: {<name>: {enabled: true, config: {...}}}`",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Toolsets, A::Error> {
                let mut out = Map::new();
                while let Some(name) = map.next_key::<String>()? {
                    if out.contains_key(&name) {
                        return Err(de::Error::custom(format!("duplicate toolset `{name}`")));
                    }
                    let Entry(entry) = map.next_value()?;
                    out.insert(name, Value::Object(entry));
                }
                Ok(Toolsets(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct McpServers(Map<String, Value>);

impl<'de> Deserialize<'de> for McpServers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = McpServers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of MCP server name to its settings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<McpServers, E> {
                Ok(McpServers(Map::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<McpServers, A::Error> {
                let mut out = Map::new();
                while let Some(name) = map.next_key::<String>()? {
                    let server: Map<String, Value> = map.next_value()?;
                    out.insert(name, Value::Object(server));
                }
                Ok(McpServers(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct Entry(Map<String, Value>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a toolset entry map (enabled:, config:, ...)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut out = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = match key.as_str() {
                        "enabled" | "experimental" | "expose_remotely" => {
                            Value::Bool(map.next_value::<bool>()?)
                        }
                        "description"
                        | "docs_url"
                        | "icon_url"
                        | "installation_instructions"
                        | "llm_instructions"
                        | "subtype"
                        | "type"
                        | "url"
                        | "path" => Value::String(map.next_value::<String>()?),
                        "config" => match map.next_value::<Option<Map<String, Value>>>()? {
                            Some(m) => Value::Object(m),
                            None => Value::Null,
                        },
                        "prerequisites"
                        | "tools"
                        | "tags"
                        | "transformers"
                        | "approval_required_tools"
                        | "restricted_tools" => Value::Array(map.next_value::<Vec<Value>>()?),
                        "status_refresh_interval_seconds" => Value::from(map.next_value::<u64>()?),
                        other => {
                            let hint = suggest(other, ENTRY_KEYS)
                                .map(|s| format!(" (did you mean `{s}`?)"))
                                .unwrap_or_default();
                            return Err(de::Error::custom(format!(
                                "unknown toolset entry key `{other}`{hint}; HolmesGPT rejects \
                                 the whole toolset. Allowed: {}",
                                ENTRY_KEYS.join(", ")
                            )));
                        }
                    };
                    if out.insert(key.clone(), value).is_some() {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                }
                Ok(Entry(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("enable", ENTRY_KEYS), Some("enabled"));
        assert_eq!(suggest("confg", ENTRY_KEYS), Some("config"));
        assert_eq!(suggest("zzzzzzzz", ENTRY_KEYS), None);
    }

    #[test]
    fn distance_basics() {
        assert_eq!(strsim::levenshtein("", "abc"), 3);
        assert_eq!(strsim::levenshtein("kitten", "sitting"), 3);
        assert_eq!(strsim::levenshtein("same", "same"), 0);
    }
}
