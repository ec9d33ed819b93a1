//! The compile cache: precompiled components on disk, so a start-up loads plugins in well under
//! a millisecond instead of compiling them (tens of milliseconds each).
//!
//! An entry's name is the SHA-256 of the wasmtime version, the engine's compatibility hash
//! (every `Config` setting that affects code generation) and the component bytes. A changed
//! component, a wasmtime upgrade or a different engine config therefore simply misses, and the
//! component is compiled again. An entry that fails to load anyway (corrupt, truncated, written
//! by an incompatible build) is recompiled and overwritten.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::error::HostError;

/// The wasmtime release this host is built against (pinned in Cargo.toml).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// How a component was made ready, so callers (and tests) can tell a cache hit from a compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Loaded from a precompiled cache entry with `Component::deserialize_file`.
    Cache,
    /// Compiled from the component bytes (and written to the cache when there is one).
    Compiled,
    /// Loaded from the artifact shipped next to the component
    /// ([`HostConfig::precompiled_only`](crate::HostConfig::precompiled_only)).
    Precompiled,
}

/// Feeds `Hash` output into SHA-256, so that the engine's compatibility hash gives a stable,
/// collision-resistant file name instead of a 64-bit `DefaultHasher` value.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

/// The cache entry name for these bytes on this engine.
pub(crate) fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut h = Sha256Hasher(Sha256::new());
    h.write(b"reclaim-host-cache-v1\0wasmtime-");
    h.write(WASMTIME_VERSION.as_bytes());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.write(&Sha256::digest(wasm));
    let digest = h.0.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads `wasm` ready to instantiate: from the cache when an entry exists, else by compiling
/// (and then writing the entry). Returns how it was loaded and how long that took.
pub(crate) fn load(
    engine: &Engine,
    cache_dir: Option<&Path>,
    wasm_path: &Path,
    wasm: &[u8],
) -> Result<(Component, LoadSource, Duration), HostError> {
    let started = Instant::now();
    let entry = cache_dir.map(|dir| dir.join(format!("{}.cwasm", cache_key(engine, wasm))));
    if let Some(entry) = entry.as_deref().filter(|p| p.is_file()) {
        match deserialize(engine, entry) {
            Ok(component) => return Ok((component, LoadSource::Cache, started.elapsed())),
            Err(e) => {
                tracing::warn!(entry = %entry.display(), error = %e, "compile cache entry unusable; recompiling");
            }
        }
    }
    let component = Component::new(engine, wasm).map_err(|e| HostError::InvalidComponent {
        path: wasm_path.to_path_buf(),
        message: format!("{e:#}"),
    })?;
    if let Some(entry) = entry {
        if let Err(e) = store(&component, &entry) {
            // A read-only cache must not stop plugins from loading.
            tracing::warn!(entry = %entry.display(), error = %e, "could not write compile cache entry");
        }
    }
    Ok((component, LoadSource::Compiled, started.elapsed()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, entry: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be machine code that wasmtime itself
    // produced. The file is in the operator's cache directory, named by the hash of its inputs,
    // and was written only by `store` below (to a temporary name, then renamed into place, so a
    // reader never sees a partial file). wasmtime still checks its header, version and engine
    // compatibility and rejects a mismatch with an error. The cache directory must not be
    // writable by anyone less trusted than the host process, as documented on `HostConfig`.
    unsafe { Component::deserialize_file(engine, entry) }
}

fn store(component: &Component, entry: &Path) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let dir = entry.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.{}.tmp",
        entry
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, entry).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}
