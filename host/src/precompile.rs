//! Ahead-of-time compilation of plugins for another machine, and loading them there.
//!
//! A serverless function must not compile plugins at start-up (hundreds of milliseconds each)
//! and cannot keep a cache between cold starts, so the deployment package carries each
//! component already compiled: `plugin.wasm` next to `plugin.cwasm`. The build machine is
//! rarely the function's machine (Lambda runs arm64), so compilation takes a target triple;
//! every other engine setting comes from the same [`HostConfig`] the function uses, because
//! wasmtime accepts an artifact only from an engine configured like its own.
//!
//! A host with [`HostConfig::precompiled_only`] loads only these artifacts and never falls back
//! to compiling: a missing or mismatched artifact is a [`HostError::Precompiled`] naming the
//! file and the command that makes a fitting one, so a wrong package fails its first start
//! instead of quietly starting slowly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::error::HostError;
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::{engine_config, HostConfig};

/// Extension of a precompiled component, next to the component it was made from.
pub const ARTIFACT_EXTENSION: &str = "cwasm";

/// Where the artifact of `component` lives: `plugin.wasm` → `plugin.cwasm`.
pub fn artifact_path(component: &Path) -> PathBuf {
    component.with_extension(ARTIFACT_EXTENSION)
}

/// The target triple this host was built for, which an artifact must have been made for.
pub fn host_target() -> String {
    target_lexicon::HOST.to_string()
}

/// One plugin precompiled by [`precompile_dir`].
#[derive(Debug, Clone)]
pub struct Precompiled {
    /// The plugin id from its manifest.
    pub id: String,
    /// The artifact written.
    pub artifact: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// Time spent compiling.
    pub compile_time: Duration,
}

fn engine_for(cfg: &HostConfig, target: Option<&str>) -> Result<Engine, HostError> {
    let mut config = engine_config(cfg);
    if let Some(t) = target {
        config
            .target(t)
            .map_err(|e| HostError::Engine(format!("target `{t}`: {e:#}")))?;
    }
    Engine::new(&config).map_err(|e| HostError::Engine(format!("{e:#}")))
}

/// Compiles one component for `target` (`None`: this machine) with the engine settings `cfg`
/// gives, returning the artifact's bytes.
pub fn precompile_component(
    cfg: &HostConfig,
    target: Option<&str>,
    wasm_path: &Path,
    wasm: &[u8],
) -> Result<Vec<u8>, HostError> {
    let engine = engine_for(cfg, target)?;
    engine
        .precompile_component(wasm)
        .map_err(|e| HostError::InvalidComponent {
            path: wasm_path.to_path_buf(),
            message: format!("{e:#}"),
        })
}

/// Precompiles every plugin directory under `src` (each with a `reclaim-plugin.toml`) for
/// `target` into `out/<directory name>/`: the manifest and the component are copied, the
/// artifact is written next to them. `out` is then a plugins directory a host with
/// [`HostConfig::precompiled_only`] loads.
pub fn precompile_dir(
    cfg: &HostConfig,
    target: Option<&str>,
    src: &Path,
    out: &Path,
) -> Result<Vec<Precompiled>, HostError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HostError::Io { path, source }
    };
    let mut dirs = std::fs::read_dir(src)
        .map_err(io(src))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect::<Vec<_>>();
    dirs.sort();
    if dirs.is_empty() {
        return Err(HostError::Manifest {
            path: src.to_path_buf(),
            message: format!("no plugin directories (with {MANIFEST_FILE}) here"),
        });
    }
    // One engine for all of them: creating it is most of the fixed cost.
    let engine = engine_for(cfg, target)?;
    let mut done = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let manifest = Manifest::load(&dir)?;
        let name = dir.file_name().map(PathBuf::from).unwrap_or_default();
        let dest = out.join(&name);
        std::fs::create_dir_all(&dest).map_err(io(&dest))?;
        let wasm_path = dir.join(&manifest.component);
        let wasm = std::fs::read(&wasm_path).map_err(io(&wasm_path))?;
        let started = Instant::now();
        let artifact =
            engine
                .precompile_component(&wasm)
                .map_err(|e| HostError::InvalidComponent {
                    path: wasm_path.clone(),
                    message: format!("{e:#}"),
                })?;
        let compile_time = started.elapsed();
        for file in [PathBuf::from(MANIFEST_FILE), manifest.component.clone()] {
            let from = dir.join(&file);
            let to = dest.join(&file);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::copy(&from, &to).map_err(io(&from))?;
        }
        let artifact_file = artifact_path(&dest.join(&manifest.component));
        std::fs::write(&artifact_file, &artifact).map_err(io(&artifact_file))?;
        done.push(Precompiled {
            id: manifest.id.clone(),
            artifact: artifact_file,
            bytes: artifact.len(),
            compile_time,
        });
    }
    Ok(done)
}

/// Loads the artifact of the component at `wasm_path`, refusing (never compiling) when it is
/// missing or was made for another target or engine configuration.
pub(crate) fn load_artifact(
    engine: &Engine,
    wasm_path: &Path,
) -> Result<(Component, Duration), HostError> {
    let started = Instant::now();
    let artifact = artifact_path(wasm_path);
    if !artifact.is_file() {
        return Err(HostError::Precompiled {
            path: artifact,
            message: format!(
                "missing: this host loads plugins only precompiled; make it with \
                 `reclaim-plugin precompile --target {} SRC OUT`",
                host_target()
            ),
        });
    }
    match deserialize(engine, &artifact) {
        Ok(component) => Ok((component, started.elapsed())),
        Err(e) => Err(HostError::Precompiled {
            path: artifact,
            message: format!(
                "made for another target or engine configuration than this host's \
                 ({}, wasmtime {}): {e:#}; precompile the plugins again with \
                 `reclaim-plugin precompile --target {}` from the same Reclaim build",
                host_target(),
                crate::WASMTIME_VERSION,
                host_target()
            ),
        }),
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be machine code wasmtime produced. The
    // artifact ships inside the function's own read-only package (a Lambda layer or zip),
    // written by `precompile_dir` at build time; whoever can change it can change the binary
    // too. wasmtime still checks its header, version, target and engine settings, and a
    // mismatch is an error (reported above), not undefined behaviour.
    unsafe { Component::deserialize_file(engine, artifact) }
}
