//! `dynamic-toolset get toolsets|services|detectors`: reads the API and prints a table a
//! person can read (kubectl-style), or the JSON/YAML the API answered.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::model::{DetectorView, ErrorBody, ServicePage, ServiceView, ToolsetView};
use super::table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Toolsets,
    Services,
    Detectors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table (default).
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to list.
    pub kind: Kind,
    /// The API's base URL (e.g. through `kubectl port-forward svc/dynamic-toolset 8080`).
    #[arg(
        long,
        env = "DYNAMIC_TOOLSET_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// Bearer token (e.g. `$(kubectl create token NAME)`); the user needs `get` on the
    /// non-resource URL `/dynamic-toolset/api/v1/*`. Prefer --token-file or the environment.
    #[arg(long, env = "DYNAMIC_TOOLSET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the bearer token from this file.
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
    /// services: only this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// services: only those matched as this backend or toolset (`prometheus`, `grafana/loki`).
    #[arg(long)]
    pub backend: Option<String>,
    /// services: only chosen (true) or not chosen (false) ones.
    #[arg(long)]
    pub chosen: Option<bool>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut req = self.http.get(&url).query(query);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {url}"))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .with_context(|| format!("cannot read the answer of {url}"))?;
        if !status.is_success() {
            let why = serde_json::from_str::<ErrorBody>(&body)
                .map(|e| format!("{}: {}", e.error, e.reason))
                .unwrap_or_else(|_| body.chars().take(300).collect());
            bail!("{url} answered {status}: {why}");
        }
        serde_json::from_str(&body)
            .with_context(|| format!("{url} answered something that is not the API's JSON"))
    }
}

fn print<T: serde::Serialize>(
    output: Output,
    items: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = match output {
        Output::Table => table(),
        Output::Json => serde_json::to_string_pretty(items)? + "\n",
        Output::Yaml => serde_yaml::to_string(items)?,
    };
    print!("{text}");
    Ok(())
}

pub fn run(args: &GetArgs) -> anyhow::Result<ExitCode> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the token file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
        base: args.server.clone(),
        token,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match args.kind {
            Kind::Toolsets => {
                let items: Vec<ToolsetView> = client.get("/api/v1/toolsets", &[]).await?;
                print(args.output, &items, || table::toolsets(&items))
            }
            Kind::Detectors => {
                let items: Vec<DetectorView> = client.get("/api/v1/detectors", &[]).await?;
                print(args.output, &items, || table::detectors(&items))
            }
            Kind::Services => {
                let mut filters: BTreeMap<&str, String> = BTreeMap::new();
                if let Some(ns) = &args.namespace {
                    filters.insert("namespace", ns.clone());
                }
                if let Some(b) = &args.backend {
                    filters.insert("backend", b.clone());
                }
                if let Some(c) = args.chosen {
                    filters.insert("chosen", c.to_string());
                }
                // Every page.
                let mut items: Vec<ServiceView> = vec![];
                let mut next: Option<String> = None;
                loop {
                    let mut q: Vec<(&str, String)> =
                        filters.iter().map(|(k, v)| (*k, v.clone())).collect();
                    if let Some(n) = &next {
                        q.push(("continue", n.clone()));
                    }
                    let page: ServicePage = client.get("/api/v1/services", &q).await?;
                    items.extend(page.items);
                    match page.next {
                        Some(n) => next = Some(n),
                        None => break,
                    }
                }
                print(args.output, &items, || table::services(&items))
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
