//! The compile cache: a second load is a cache hit via `deserialize_file`; an engine with a
//! different config, or a damaged entry, compiles again. Plus `plugin check`.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reclaim_host::{HostConfig, LoadSource, Outcome, PluginHost};

const MANIFEST: &str = "id = \"hostile\"\n";

fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_load_is_a_cache_hit_and_runs() {
    let cache = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path(), "hostile", &guests().hostile, MANIFEST);
    let cfg = HostConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..HostConfig::default()
    };

    let first = PluginHost::new(cfg.clone()).unwrap();
    assert_eq!(
        first.load_dir_report(&dir).unwrap().source,
        LoadSource::Compiled
    );
    assert_eq!(entries(cache.path()).len(), 1);

    let second = PluginHost::new(cfg).unwrap();
    let report = second.load_dir_report(&dir).unwrap();
    assert_eq!(report.source, LoadSource::Cache);
    assert_eq!(entries(cache.path()).len(), 1);
    assert_eq!(
        second.reclaim("hostile", &req("good")).await,
        Ok(Outcome::Removed("ok good".into()))
    );
}

#[test]
fn a_different_engine_config_recompiles_into_its_own_entry() {
    let cache = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path(), "hostile", &guests().hostile, MANIFEST);
    let optimized = HostConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..HostConfig::default()
    };
    let unoptimized = HostConfig {
        optimize: false,
        ..optimized.clone()
    };
    let load = |cfg: &HostConfig| {
        PluginHost::new(cfg.clone())
            .unwrap()
            .load_dir_report(&dir)
            .unwrap()
            .source
    };
    assert_eq!(load(&optimized), LoadSource::Compiled);
    assert_eq!(load(&unoptimized), LoadSource::Compiled);
    assert_eq!(entries(cache.path()).len(), 2);
    assert_eq!(load(&optimized), LoadSource::Cache);
    assert_eq!(load(&unoptimized), LoadSource::Cache);
}

#[test]
fn a_damaged_or_foreign_cache_entry_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path(), "hostile", &guests().hostile, MANIFEST);
    let cfg = HostConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..HostConfig::default()
    };
    let load = || {
        PluginHost::new(cfg.clone())
            .unwrap()
            .load_dir_report(&dir)
            .unwrap()
            .source
    };
    assert_eq!(load(), LoadSource::Compiled);
    let entry = entries(cache.path()).remove(0);

    // An artifact of an engine whose settings wasmtime rejects (no epoch interruption),
    // placed under this config's name.
    let foreign = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let wasm = std::fs::read(&guests().hostile).unwrap();
    let artifact = wasmtime::component::Component::new(&foreign, &wasm)
        .unwrap()
        .serialize()
        .unwrap();
    std::fs::write(&entry, artifact).unwrap();
    assert_eq!(
        load(),
        LoadSource::Compiled,
        "a foreign artifact must not load"
    );
    assert_eq!(load(), LoadSource::Cache, "and is replaced by a good one");

    // Truncated.
    let bytes = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &bytes[..bytes.len() / 3]).unwrap();
    assert_eq!(load(), LoadSource::Compiled);
    assert_eq!(load(), LoadSource::Cache);
}

#[test]
fn plugin_check_validates_and_dry_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(
        tmp.path(),
        "hostile",
        &guests().hostile,
        "id = \"hostile\"\nsecrets = [\"api-token\"]\n",
    );
    let report = reclaim_host::check::check(&dir, Some(&request_json("good"))).unwrap();
    assert!(report.request.dry_run, "check forces dry-run");
    assert_eq!(report.dry_run, Ok(Outcome::Removed("ok good".into())));
    assert!(report.passed());
    let text = report.to_string();
    assert!(text.contains("id           hostile"), "{text}");
    assert!(text.contains("secret api-token"), "{text}");
    assert!(text.contains("NO VALUE"), "{text}");
    assert!(text.contains("PASS"), "{text}");

    // A bare component (no manifest beside it) is checked with no grants; the sample request
    // is unknown to this guest, so the dry run reports the plugin's permanent error.
    let bare = tmp.path().join("bare.wasm");
    std::fs::copy(&guests().hostile, &bare).unwrap();
    let report = reclaim_host::check::check(&bare, None).unwrap();
    assert!(!report.manifest_found);
    assert_eq!(report.load.info.id, "hostile");
    assert!(report.dry_run.is_err());
    assert!(report.to_string().contains("FAIL"));

    // A wrong world is an error with a clear message.
    let wrong = tmp.path().join("wrong.wasm");
    std::fs::copy(&guests().wrong_world, &wrong).unwrap();
    let err = reclaim_host::check::check(&wrong, None).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    // Bad request JSON names the problem.
    let err = reclaim_host::check::check(&dir, Some("{\"candidate-id\": 1}")).unwrap_err();
    assert!(err.to_string().starts_with("request JSON"), "{err}");
}

fn request_json(behaviour: &str) -> String {
    serde_json::to_string(&req(behaviour)).unwrap()
}
