//! Precompiled plugins: made ahead of time by `precompile_dir`, loaded by a
//! `precompiled_only` host without compiling, and refused (never compiled instead) when the
//! artifact does not fit the host's engine.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reclaim_host::precompile::{artifact_path, host_target, precompile_dir};
use reclaim_host::{HostConfig, HostError, LoadSource, Outcome, PluginHost};

const MANIFEST: &str = "id = \"hostile\"\n";

fn precompiled_only() -> HostConfig {
    HostConfig {
        precompiled_only: true,
        ..HostConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precompiled_plugin_loads_without_compiling_and_runs() {
    let src = tempfile::tempdir().unwrap();
    plugin_dir(src.path(), "hostile", &guests().hostile, MANIFEST);
    let out = tempfile::tempdir().unwrap();
    let done = precompile_dir(&HostConfig::default(), None, src.path(), out.path()).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, "hostile");
    assert!(done[0].artifact.is_file());
    assert!(out.path().join("hostile/reclaim-plugin.toml").is_file());

    let host = PluginHost::new(precompiled_only()).unwrap();
    let report = host.load_dir_report(&out.path().join("hostile")).unwrap();
    assert_eq!(report.source, LoadSource::Precompiled);
    assert_eq!(
        host.reclaim("hostile", &req("good")).await,
        Ok(Outcome::Removed("ok good".into()))
    );
}

#[test]
fn an_artifact_from_an_engine_configured_otherwise_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path(), "hostile", &guests().hostile, MANIFEST);
    // Same machine, same wasmtime, but no epoch interruption: code the host cannot stop.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(false);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let bytes = engine
        .precompile_component(&std::fs::read(dir.join("plugin.wasm")).unwrap())
        .unwrap();
    std::fs::write(artifact_path(&dir.join("plugin.wasm")), bytes).unwrap();

    let host = PluginHost::new(precompiled_only()).unwrap();
    let err = host.load_dir(&dir).unwrap_err();
    assert!(matches!(err, HostError::Precompiled { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("another target or engine configuration"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "reclaim-plugin precompile --target {}",
            host_target()
        )),
        "{text}"
    );
}

#[test]
fn a_cross_target_precompile_succeeds_and_is_refused_here() {
    let src = tempfile::tempdir().unwrap();
    plugin_dir(src.path(), "hostile", &guests().hostile, MANIFEST);
    let other = if host_target().starts_with("aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    let out = tempfile::tempdir().unwrap();
    precompile_dir(&HostConfig::default(), Some(other), src.path(), out.path()).unwrap();
    let host = PluginHost::new(precompiled_only()).unwrap();
    let err = host
        .load_dir(&out.path().join("hostile"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("precompiled plugin refused"), "{err}");
    assert!(
        err.contains("architecture"),
        "wasmtime names the mismatch: {err}"
    );
}

#[test]
fn an_unknown_target_is_an_engine_error() {
    let src = tempfile::tempdir().unwrap();
    plugin_dir(src.path(), "hostile", &guests().hostile, MANIFEST);
    let out = tempfile::tempdir().unwrap();
    let err = precompile_dir(
        &HostConfig::default(),
        Some("not-a-target"),
        src.path(),
        out.path(),
    )
    .unwrap_err();
    assert!(matches!(err, HostError::Engine(_)), "{err}");
    assert!(err.to_string().contains("not-a-target"), "{err}");
}
