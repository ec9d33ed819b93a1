//! The plugin host of the `effects` and `connectors` functions: the plugins come precompiled
//! in the function's package (a Lambda layer, `RECLAIM_PLUGINS_DIR`), made at build time by
//! `reclaim-plugin precompile --target aarch64-unknown-linux-gnu` with the same engine settings
//! as [`host_config`], and are loaded with `deserialize` in `main`: a cold start never
//! compiles, and an artifact made for another machine or engine is refused with the command
//! that makes a fitting one, so a wrong package fails its first start rather than running
//! slowly or not at all.
//!
//! The deployment configures the packaged plugins without editing their manifests:
//! `RECLAIM_PLUGIN_CONFIG` (JSON, `{"plugin-id": {"key": "value"}}`) sets `[config]` keys, and
//! a manifest's `store:NAME` secret is read at start from the Secrets Manager secret
//! `RECLAIM_VENDOR_SECRETS_PREFIX` + `NAME`, the only vendor secrets these two functions (and
//! no other) may read.

use reclaim_api::ManualTaskRevoker;
use reclaim_host::{HostConfig, HostError, PluginHost, PluginRevoker};
use reclaim_workflow::ports::Revoker;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Where the precompiled plugins are (one directory per plugin: manifest, component, artifact).
pub const PLUGINS_DIR_ENV: &str = "RECLAIM_PLUGINS_DIR";

/// `[config]` keys per plugin id, as JSON.
pub const PLUGIN_CONFIG_ENV: &str = "RECLAIM_PLUGIN_CONFIG";

/// Name prefix of the Secrets Manager secrets behind the manifests' `store:` sources.
pub const VENDOR_SECRETS_PREFIX_ENV: &str = "RECLAIM_VENDOR_SECRETS_PREFIX";

/// Reads `RECLAIM_PLUGIN_CONFIG`: unset or empty is no configuration; anything but an object
/// of objects of strings is refused with what was expected, so the function does not start
/// with a configuration it half understood.
pub fn plugin_config(
    text: Option<&str>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, HostError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(t) => serde_json::from_str(t).map_err(|e| HostError::Manifest {
            path: PLUGIN_CONFIG_ENV.into(),
            message: format!(
                "expected {{\"plugin-id\": {{\"key\": \"value\"}}}} with string values: {e}"
            ),
        }),
    }
}

/// The host settings of the `effects` function. The precompile step uses
/// `HostConfig::default()` too: any setting that changes the engine must change in both.
pub fn host_config() -> HostConfig {
    HostConfig {
        precompiled_only: true,
        ..HostConfig::default()
    }
}

/// Loads every precompiled plugin under `dir` into a host built with `cfg`.
pub fn plugin_revoker(dir: &Path, cfg: HostConfig) -> Result<PluginRevoker, HostError> {
    plugin_revoker_configured(dir, cfg, &BTreeMap::new())
}

/// [`plugin_revoker`] with `[config]` keys set per plugin ([`plugin_config`]).
pub fn plugin_revoker_configured(
    dir: &Path,
    cfg: HostConfig,
    config: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<PluginRevoker, HostError> {
    let started = std::time::Instant::now();
    let host = PluginHost::new(cfg)?;
    let engine_ready = std::time::Instant::now();
    let loaded = host.load_all_configured(dir, config)?;
    tracing::info!(
        plugins = loaded.len(),
        engine_ms = (engine_ready - started).as_secs_f64() * 1e3,
        load_ms = engine_ready.elapsed().as_secs_f64() * 1e3,
        dir = %dir.display(),
        "precompiled plugins loaded"
    );
    Ok(PluginRevoker::new(host))
}

/// The revoker `effects` runs with: the precompiled plugins in [`PLUGINS_DIR_ENV`] configured
/// by [`PLUGIN_CONFIG_ENV`], or, when it is not set, manual tasks for every revocation. The
/// host is returned too, for [`provide_store_secrets`].
pub fn revoker_from_env() -> Result<(Arc<dyn Revoker>, Option<PluginHost>), HostError> {
    match std::env::var_os(PLUGINS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => {
            let config = plugin_config(std::env::var(PLUGIN_CONFIG_ENV).ok().as_deref())?;
            let revoker = plugin_revoker_configured(Path::new(&dir), host_config(), &config)?;
            let host = revoker.host().clone();
            Ok((Arc::new(revoker), Some(host)))
        }
        _ => {
            tracing::warn!(
                "{PLUGINS_DIR_ENV} is not set: no plugins (revocations become manual tasks, no usage connectors run)"
            );
            Ok((Arc::new(ManualTaskRevoker), None))
        }
    }
}

/// What [`revoker_from_env`] makes: the revoker, and the host behind it when there are plugins.
pub type Loaded = (Arc<dyn Revoker>, Option<PluginHost>);

/// Starts [`revoker_from_env`] on a blocking thread and returns at once. Loading the plugins
/// is CPU work that needs nothing from AWS, so `effects` starts it first thing and it runs
/// while the SDK is configured and the link key is read ([`finish_loading`] waits for it).
pub fn start_loading() -> tokio::task::JoinHandle<Result<Loaded, HostError>> {
    tokio::task::spawn_blocking(revoker_from_env)
}

/// The revoker of a loading begun by [`start_loading`], once the plugins' `store:` secrets
/// (`RECLAIM_VENDOR_SECRETS_PREFIX` + NAME) are read with `clients`' Secrets Manager client
/// and handed to the host. Given to [`crate::wiring::build_loading`], so all of it overlaps
/// the link key's read.
pub async fn finish_loading(
    loading: tokio::task::JoinHandle<Result<Loaded, HostError>>,
    clients: crate::wiring::Clients,
) -> Result<Arc<dyn Revoker>, crate::wiring::WiringError> {
    let prefix = std::env::var(VENDOR_SECRETS_PREFIX_ENV).unwrap_or_default();
    let (revoker, _) = finish(loading, &clients, &prefix).await?;
    Ok(revoker)
}

/// [`finish_loading`] for the `connectors` function: the same plugins, settings and secrets
/// as `effects`, whose connectors become the application's usage sources (the revoker stays
/// unused there: removals run in `effects`, from the stream). Without plugins there are no
/// connectors, and the function has nothing to run.
pub async fn finish_loading_sources(
    loading: tokio::task::JoinHandle<Result<Loaded, HostError>>,
    clients: crate::wiring::Clients,
) -> Result<crate::wiring::PluginPorts, crate::wiring::WiringError> {
    let prefix = std::env::var(VENDOR_SECRETS_PREFIX_ENV).unwrap_or_default();
    finish_loading_sources_with(loading, clients, &prefix).await
}

/// [`finish_loading_sources`] with the secrets' name prefix given rather than read from the
/// environment (tests wire the function with their own deployment's prefix).
pub async fn finish_loading_sources_with(
    loading: tokio::task::JoinHandle<Result<Loaded, HostError>>,
    clients: crate::wiring::Clients,
    prefix: &str,
) -> Result<crate::wiring::PluginPorts, crate::wiring::WiringError> {
    let (revoker, sources) = finish(loading, &clients, prefix).await?;
    if let Some(host) = &sources {
        tracing::info!(
            connectors = host.connectors().len(),
            "usage connectors loaded"
        );
    }
    Ok(crate::wiring::PluginPorts { revoker, sources })
}

/// Waits for the loading and hands the host its `store:` secrets.
async fn finish(
    loading: tokio::task::JoinHandle<Result<Loaded, HostError>>,
    clients: &crate::wiring::Clients,
    prefix: &str,
) -> Result<Loaded, crate::wiring::WiringError> {
    let (revoker, host) = loading.await??;
    if let Some(host) = &host {
        provide_store_secrets(host, &clients.secrets(), prefix).await;
    }
    Ok((revoker, host))
}

/// The longest a page of any loaded connector may take (its manifest's `deadline_ms`): the
/// runner looks at its deadline only between pages, so an invocation stops starting pages
/// this long before its end.
pub fn longest_page(host: &PluginHost) -> std::time::Duration {
    host.connectors()
        .iter()
        .filter_map(|c| host.manifest(c.id()))
        .map(|m| std::time::Duration::from_millis(m.deadline_ms))
        .max()
        .unwrap_or_default()
}

/// Fetches the Secrets Manager secret `prefix + NAME` for every `store:NAME` source the loaded
/// plugins are granted ([`store_secrets`]), and hands each value to the host; returns how many
/// were provided. `client` is the function's own ([`crate::wiring::Clients::secrets`]).
pub async fn provide_store_secrets(
    host: &PluginHost,
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
) -> usize {
    let names = host.store_secret_names();
    if names.is_empty() {
        return 0;
    }
    let found = store_secrets(client, prefix, &names).await;
    for (name, value) in &found {
        host.provide_secret(name, value.clone());
    }
    found.len()
}

/// The values of the secrets `prefix + NAME` for `names`, as (NAME, value), in the order of
/// `names`. The secrets are read at once (each is a round trip, and none depends on another).
/// A secret that cannot be read is logged (by name, never by value) and left out: its plugin
/// then answers "misconfigured" naming the secret, and only that plugin's candidates wait.
pub async fn store_secrets(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    names: &[String],
) -> Vec<(String, String)> {
    let started = std::time::Instant::now();
    let mut reads = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let (client, id) = (client.clone(), format!("{prefix}{name}"));
        reads.spawn(async move {
            let got = client.get_secret_value().secret_id(&id).send().await;
            (i, id, got)
        });
    }
    let mut found = Vec::new();
    while let Some(joined) = reads.join_next().await {
        let (i, id, got) = match joined {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "plugin secret read stopped");
                continue;
            }
        };
        match got {
            Ok(out) => match out.secret_string().filter(|s| !s.is_empty()) {
                Some(value) => found.push((i, value.to_string())),
                None => tracing::error!(secret = %id, "plugin secret has no string value"),
            },
            Err(e) => tracing::error!(
                secret = %id,
                error = %crate::error::describe(&e),
                "plugin secret could not be read"
            ),
        }
    }
    found.sort_by_key(|(i, _)| *i);
    let found: Vec<(String, String)> = found
        .into_iter()
        .filter_map(|(i, value)| names.get(i).map(|name| (name.clone(), value)))
        .collect();
    tracing::info!(
        provided = found.len(),
        wanted = names.len(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "plugin secrets from Secrets Manager"
    );
    found
}
