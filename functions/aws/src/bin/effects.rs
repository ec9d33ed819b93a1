//! The `effects` function: DynamoDB stream batches → email, tasks, revocations.
//!
//! Revocations run through the plugin host, built once at init over the plugins packaged with
//! the function (`RECLAIM_PLUGINS_DIR`: one directory per plugin, component + manifest).
//! Precompiled artifacts in `RECLAIM_PLUGIN_CACHE` (written at build time next to the
//! plugins) are loaded with `deserialize`, so init does not compile. Without plugins,
//! revocations become manual tasks.

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};
use reclaim_api::ManualTaskRevoker;
use reclaim_host::{HostConfig, PluginHost, PluginRevoker};
use reclaim_workflow::ports::Revoker;
use std::path::PathBuf;
use std::sync::Arc;

fn revoker() -> Result<Arc<dyn Revoker>, lambda_runtime::Error> {
    let Some(dir) = std::env::var_os("RECLAIM_PLUGINS_DIR").map(PathBuf::from) else {
        tracing::warn!("RECLAIM_PLUGINS_DIR is not set: revocations become manual tasks");
        return Ok(Arc::new(ManualTaskRevoker));
    };
    let cache = std::env::var_os("RECLAIM_PLUGIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join(".cache"));
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(cache),
        ..HostConfig::default()
    })?;
    let loaded = host.load_all(&dir)?;
    tracing::info!(plugins = loaded.len(), "plugins loaded");
    Ok(Arc::new(PluginRevoker::new(host)))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reclaim_aws::wiring::init_tracing();
    let w = reclaim_aws::wiring::build(revoker()?).await?;
    let app = &w.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(reclaim_aws::stream::handle(app, &event.payload).await)
    }))
    .await
}
