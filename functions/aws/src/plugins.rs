//! The plugin host of the `effects` function: the plugins come precompiled in the function's
//! package (a Lambda layer, `RECLAIM_PLUGINS_DIR`), made at build time by
//! `reclaim-plugin precompile --target aarch64-unknown-linux-gnu` with the same engine settings
//! as [`host_config`], and are loaded with `deserialize` in `main`: a cold start never
//! compiles, and an artifact made for another machine or engine is refused with the command
//! that makes a fitting one, so a wrong package fails its first start rather than running
//! slowly or not at all.

use reclaim_api::ManualTaskRevoker;
use reclaim_host::{HostConfig, HostError, PluginHost, PluginRevoker};
use reclaim_workflow::ports::Revoker;
use std::path::Path;
use std::sync::Arc;

/// Where the precompiled plugins are (one directory per plugin: manifest, component, artifact).
pub const PLUGINS_DIR_ENV: &str = "RECLAIM_PLUGINS_DIR";

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
    let started = std::time::Instant::now();
    let host = PluginHost::new(cfg)?;
    let engine_ready = std::time::Instant::now();
    let loaded = host.load_all(dir)?;
    tracing::info!(
        plugins = loaded.len(),
        engine_ms = (engine_ready - started).as_secs_f64() * 1e3,
        load_ms = engine_ready.elapsed().as_secs_f64() * 1e3,
        dir = %dir.display(),
        "precompiled plugins loaded"
    );
    Ok(PluginRevoker::new(host))
}

/// The revoker `effects` runs with: the precompiled plugins in [`PLUGINS_DIR_ENV`], or, when
/// it is not set, manual tasks for every revocation.
pub fn revoker_from_env() -> Result<Arc<dyn Revoker>, HostError> {
    match std::env::var_os(PLUGINS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => {
            Ok(Arc::new(plugin_revoker(Path::new(&dir), host_config())?))
        }
        _ => {
            tracing::warn!("{PLUGINS_DIR_ENV} is not set: revocations become manual tasks");
            Ok(Arc::new(ManualTaskRevoker))
        }
    }
}
