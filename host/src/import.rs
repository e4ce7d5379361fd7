//! `dynamic-toolset overrides import`: moves the toolsets an admin configured in
//! HolmesGPT's own Helm chart into our `overrides.yaml`, so nothing is lost when HolmesGPT
//! switches to the generated file (it reads ONE toolset file: once it reads ours, the
//! chart's `toolsets:` and `mcp_servers:` values are no longer read).
//!
//! Input, any of:
//! - the chart's values file (`helm get values holmes -o yaml`, or the `-f` file): its
//!   `toolsets:` and `mcp_servers:` keys are taken, every other key is HolmesGPT's own;
//! - the ConfigMap the chart renders them into (`kubectl get configmap
//!   custom-toolsets-configmap -o yaml`): its `custom_toolset.yaml` key;
//! - that file itself (`toolsets:` / `mcp_servers:` at the top).
//!
//! With `--overrides`, an existing overrides.yaml is merged on top (it was written for
//! the generated file and wins, key by key). The result is validated exactly as the
//! controller validates overrides.yaml before it is printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use dynamic_toolset_core::limits;
use dynamic_toolset_core::overrides::{self, Overrides};
use dynamic_toolset_core::render;
use serde_json::{Map, Value};

use crate::manifest::{read_bounded, read_file_bounded};

/// The key of HolmesGPT's chart ConfigMap (`custom-toolsets-configmap`) holding its file.
pub const HOLMES_CONFIGMAP_KEY: &str = "custom_toolset.yaml";

/// The keys of HolmesGPT's toolset file this command carries over.
pub const CARRIED: &[&str] = &["toolsets", "mcp_servers"];

/// Largest input read (a chart values file is tens of KiB).
const MAX_INPUT: usize = 1024 * 1024;

/// Arguments of `dynamic-toolset overrides import`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
helm get values holmes -n holmes -o yaml | dynamic-toolset overrides import - > overrides.yaml\n  \
kubectl get configmap custom-toolsets-configmap -n holmes -o yaml | dynamic-toolset overrides import - --overrides current-overrides.yaml")]
pub struct ImportArgs {
    /// HolmesGPT chart values, its `custom-toolsets-configmap` ConfigMap, or its
    /// `custom_toolset.yaml` (`-` reads stdin).
    pub input: PathBuf,
    /// An existing overrides.yaml to merge on top (it wins, key by key).
    #[arg(long, value_name = "FILE")]
    pub overrides: Option<PathBuf>,
}

fn read(path: &Path, max: usize) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        read_bounded(std::io::stdin(), max).map_err(anyhow::Error::from)
    } else {
        read_file_bounded(path, max).map_err(anyhow::Error::from)
    }
}

/// What was imported, for the summary on stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// The overrides document (`toolsets:` and `mcp_servers:` maps).
    pub document: Map<String, Value>,
    /// Where the toolsets were found, for messages.
    pub shape: &'static str,
    /// Remarks for the admin (what could not be carried over).
    pub notes: Vec<String>,
}

/// Extracts the carried keys from HolmesGPT's chart values, its ConfigMap or its file.
/// Pure: `source` only names the input in messages.
pub fn extract(source: &str, text: &str) -> anyhow::Result<Imported> {
    limits::check_yaml(text, &limits::MANIFEST).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    let doc: Value = serde_yaml::from_str(text).with_context(|| format!("{source}: not YAML"))?;
    let Value::Object(top) = doc else {
        bail!("{source}: expected a YAML map at the top");
    };
    let mut out = Imported::default();
    let file = if top.get("kind").and_then(Value::as_str) == Some("ConfigMap") {
        let inner = top
            .get("data")
            .and_then(|d| d.get(HOLMES_CONFIGMAP_KEY))
            .and_then(Value::as_str)
            .with_context(|| {
                format!("{source}: ConfigMap has no data key `{HOLMES_CONFIGMAP_KEY}`")
            })?;
        out.shape = "ConfigMap data `custom_toolset.yaml`";
        let inner: Value = serde_yaml::from_str(inner)
            .with_context(|| format!("{source}: data `{HOLMES_CONFIGMAP_KEY}` is not YAML"))?;
        match inner {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => bail!("{source}: data `{HOLMES_CONFIGMAP_KEY}` is not a map"),
        }
    } else {
        out.shape = if top.keys().any(|k| !CARRIED.contains(&k.as_str())) {
            "chart values"
        } else {
            "toolset file"
        };
        top
    };
    for key in CARRIED {
        match file.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(Value::Object(m)) => {
                out.document
                    .insert((*key).to_string(), Value::Object(m.clone()));
            }
            Some(Value::Array(_)) if *key == "toolsets" => bail!(
                "{source}: `toolsets` is a list (HolmesGPT's old format, which it refuses): write it as a map of name -> entry"
            ),
            Some(_) => bail!("{source}: `{key}` must be a map"),
        }
    }
    if file
        .get("mcpAddons")
        .and_then(|a| a.get("aws"))
        .and_then(|a| a.get("enabled"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        out.notes.push(
            "mcpAddons.aws is enabled: the chart adds an `aws_api` MCP server to its own file; add it to mcp_servers in overrides.yaml by hand (its URL is http://<release>-aws-mcp-server.<namespace>.svc.cluster.local:8000)".into(),
        );
    }
    Ok(out)
}

/// The overrides.yaml text: `imported`, then `existing` merged on top; validated as the
/// controller validates it.
pub fn render_overrides(
    imported: &Imported,
    source: &str,
    existing: Option<&Overrides>,
) -> anyhow::Result<String> {
    let mut doc = Value::Object(imported.document.clone());
    if let Some(existing) = existing {
        overrides::deep_merge(&mut doc, &Value::Object(existing.as_map().clone()));
    }
    let body = if doc.as_object().is_some_and(Map::is_empty) {
        String::new()
    } else {
        serde_yaml::to_string(&render::canonical(&doc)).context("cannot render YAML")?
    };
    let text = format!(
        "# overrides.yaml for dynamic-toolset, imported from HolmesGPT's {} ({source}).\n\
         # Merged over the discovered toolsets: maps merge key by key (these values win),\n\
         # lists and scalars are replaced, `enabled: false` keeps a toolset off.\n{body}",
        imported.shape
    );
    let text = if text.ends_with('\n') {
        text
    } else {
        text + "\n"
    };
    Overrides::parse(&text)
        .map_err(|e| anyhow::anyhow!("the imported overrides are not valid: {e}"))?;
    Ok(text)
}

/// The command.
pub fn run(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let source = args.input.display().to_string();
    let text = read(&args.input, MAX_INPUT)?;
    let imported = extract(&source, &text)?;
    let existing = match &args.overrides {
        Some(path) => {
            let t = read(path, limits::OVERRIDES.max_bytes)?;
            Some(
                Overrides::parse(&t)
                    .map_err(|e| anyhow::anyhow!("overrides file {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let out = render_overrides(&imported, &source, existing.as_ref())?;
    print!("{out}");
    let count = |k: &str| {
        imported
            .document
            .get(k)
            .and_then(Value::as_object)
            .map_or(0, Map::len)
    };
    tracing::info!(
        from = imported.shape,
        toolsets = count("toolsets"),
        mcp_servers = count("mcp_servers"),
        merged_existing = existing.is_some(),
        "overrides imported"
    );
    for n in &imported.notes {
        tracing::warn!("{n}");
    }
    Ok(ExitCode::SUCCESS)
}
