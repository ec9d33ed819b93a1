//! # reclaim-host: runs vendor plugins in a sandbox
//!
//! The revocation step of the workflow (remove a seat, uninstall software, open a manual task)
//! is done by per-vendor plugins: WebAssembly components implementing the WIT world
//! `reclaim:plugin/reclaimer` in `wit/reclaimer.wit`; usage sources (connectors) implement
//! `reclaim:plugin/usage-source` there and find the candidates in the first place. This crate
//! loads them and runs them so that a plugin can only do what its manifest grants, and so that a
//! buggy or hostile plugin costs one failed call, never the host.
//!
//! [`PluginHost`] is the one type to use. It owns one wasmtime `Engine` (with the pooling
//! allocator and one epoch-ticker thread), the linker, and the loaded plugins:
//!
//! * **Load** ([`PluginHost::load_dir`], [`PluginHost::load_all`]): read the manifest
//!   (see [`manifest`] for its format), compile the component or load it precompiled from the
//!   cache ([`HostConfig::cache_dir`]), check it against the world (a clear
//!   [`HostError::WorldMismatch`] if it does not fit), pre-instantiate it, and call
//!   `describe()` once.
//! * **Call** ([`PluginHost::reclaim`], [`PluginHost::verify`]): each call gets a fresh
//!   instance from the pre-instantiated component, with an empty WASI context (no files,
//!   environment, arguments or sockets; stdout/stderr go to `tracing`), a wall-clock deadline
//!   (epoch interruption plus a timer around host I/O), a memory cap, an answer-size cap, and
//!   outbound HTTP limited to the granted hosts (see [`net`]). A trap, loop, OOM or bad answer
//!   comes back as a [`PluginError`]; the next call starts from a clean instance.
//! * **Collect** ([`PluginHost::connector`], [`PluginHost::connectors`]): a plugin that exports
//!   the `usage-source` world (alone or beside `reclaimer`) reads usage from its vendor a page
//!   at a time, under the same sandbox plus a cap on rows per page and pages per run; see
//!   [`usage`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use reclaim_host::{HostConfig, PluginHost};
//! let host = PluginHost::new(HostConfig {
//!     cache_dir: Some("/var/cache/reclaim/plugins".into()),
//!     ..HostConfig::default()
//! })?;
//! host.load_all(std::path::Path::new("/opt/reclaim/plugins"))?;
//! let req: reclaim_host::Request = serde_json::from_str(r#"{"candidate-id":"c-1",
//!     "idempotency-key":"c-1/3/revoke","applies-to":"subscription",
//!     "user":{"id":"u-1","upn":"ann@contoso.com"},
//!     "software":{"publisher":"Microsoft","product":"Microsoft 365 E5","sku":"c7df2760"},
//!     "justification":"unused","dry-run":false}"#)?;
//! match host.reclaim("m365-revoke", &req).await {
//!     Ok(outcome) => println!("{outcome:?}"),
//!     Err(e) if e.is_retryable() => println!("retry later: {e}"),
//!     Err(e) => println!("needs a person: {e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! Request/answer JSON uses the WIT's kebab-case names; see [`types`](crate::Request).

mod bindings;
mod cache;
pub mod check;
mod error;
pub mod manifest;
pub mod net;
pub mod precompile;
pub mod revoker;
mod state;
mod types;
pub mod usage;

pub use cache::{LoadSource, WASMTIME_VERSION};
pub use error::HostError;
pub use manifest::{Manifest, Schedule};
pub use revoker::PluginRevoker;
pub use types::{
    AppliesTo, Justification, ManualTask, Outcome, PluginError, PluginInfo, Presence, Request,
    Requirement, Software, User,
};
pub use usage::{
    CollectError, CollectRun, Connector, PricePeriod, SourceInfo, UsageNote, UsagePage, UsageRow,
};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store,
    UpdateDeadline,
};

use bindings::reclaim::plugin::types as wit;
use bindings::source::{UsageSource, UsageSourcePre};
use bindings::{Reclaimer, ReclaimerPre};
use net::{OutboundGrants, OutboundPolicy};
use state::CallState;
use types::AnswerSize;

/// Extra time beyond a call's deadline for the timer around host I/O; the epoch check inside
/// wasm fires first for compute, this one for a guest parked on a slow vendor.
const IO_GRACE: Duration = Duration::from_millis(50);

/// Bytes of each linear memory reset in place (not unmapped) after a call. Covers a Rust
/// guest's 1 MiB stack, its data and a first heap.
const KEEP_RESIDENT: usize = 4 * 1024 * 1024;

/// Host-wide settings; plugin-specific limits live in each plugin's manifest.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where precompiled components are kept. `None` compiles every plugin at every load.
    /// Must not be writable by anyone less trusted than the host process: entries are loaded
    /// as machine code.
    pub cache_dir: Option<PathBuf>,
    /// Let plugins reach loopback, private and link-local addresses. Off in production (it
    /// is how a plugin would reach internal services or cloud metadata); tests and the local
    /// demo, whose fake vendors listen on 127.0.0.1, turn it on.
    pub allow_private_addresses: bool,
    /// Largest answer accepted from a plugin, and largest HTTP response body a plugin may
    /// receive from a vendor. Bigger ones are a [`PluginError::Malformed`] (answer) or a
    /// `http-response-body-size` error to the guest (vendor response).
    pub max_response_bytes: usize,
    /// Calls that may run at once; also sizes the instance pool. Further calls wait.
    pub max_concurrent_calls: u32,
    /// Largest page a usage source may return in one `collect` answer (rows are also capped
    /// by the manifest's `max_rows_per_page`). Bigger ones are a [`PluginError::Malformed`].
    pub max_page_bytes: usize,
    /// How often the epoch ticker ticks; deadlines are enforced to within one tick.
    pub epoch_tick: Duration,
    /// Optimise generated code (default). Off compiles faster and is part of the cache key.
    pub optimize: bool,
    /// Load each component only from its precompiled artifact (`plugin.wasm` →
    /// `plugin.cwasm`, made by [`precompile::precompile_dir`]) and never compile: for
    /// functions whose cold start must stay short. A missing or mismatched artifact is a
    /// [`HostError::Precompiled`]. `cache_dir` is not used then.
    pub precompiled_only: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            cache_dir: None,
            allow_private_addresses: false,
            max_response_bytes: 1024 * 1024,
            max_page_bytes: 16 * 1024 * 1024,
            max_concurrent_calls: 32,
            epoch_tick: Duration::from_millis(5),
            optimize: true,
            precompiled_only: false,
        }
    }
}

/// What loading one plugin found, for `plugin check` and for start-up logs.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The plugin's `describe()`; for a usage source alone, its `describe-source()` as a
    /// [`PluginInfo`] that reclaims nothing (no applies-to, no justifications).
    pub info: PluginInfo,
    /// The plugin's `describe-source()` when it is a usage source.
    pub source_info: Option<SourceInfo>,
    /// The manifest as loaded.
    pub manifest: Arc<Manifest>,
    /// Cache hit or compile.
    pub source: LoadSource,
    /// Time to compile or deserialize.
    pub load_time: Duration,
    /// Things an operator should fix that do not stop the plugin from loading (e.g. a
    /// required config key missing from the manifest).
    pub warnings: Vec<String>,
}

pub(crate) struct Loaded {
    pub(crate) manifest: Arc<Manifest>,
    info: PluginInfo,
    source_info: Option<Arc<SourceInfo>>,
    /// Set when the component exports the reclaimer world.
    pub(crate) reclaimer: Option<ReclaimerPre<CallState>>,
    /// Set when the component exports the usage-source world.
    source: Option<UsageSourcePre<CallState>>,
    policy: OutboundPolicy,
}

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    cfg: HostConfig,
    plugins: RwLock<Vec<Arc<Loaded>>>,
    permits: tokio::sync::Semaphore,
    provided: Arc<manifest::ProvidedSecrets>,
}

/// Loads plugins and runs their calls. Cheap to clone; all clones share one engine, one epoch
/// ticker and one set of loaded plugins.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("cfg", &self.inner.cfg)
            .field(
                "plugins",
                &self
                    .plugins()
                    .iter()
                    .map(|p| p.id.clone())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Raised inside wasm by the epoch callback when a call's deadline has passed.
#[derive(Debug)]
struct DeadlineHit;

impl fmt::Display for DeadlineHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineHit {}

enum Call {
    Describe,
    Reclaim(wit::Request),
    Verify(wit::Request),
    DescribeSource,
    Collect(Option<String>),
}

enum Answer {
    Info(PluginInfo),
    Reclaim(Outcome),
    Verify(Presence),
    Source(SourceInfo),
    Page(UsagePage),
}

/// The engine settings every host (and every precompile for one) uses for `cfg`.
pub(crate) fn engine_config(cfg: &HostConfig) -> Config {
    let n = cfg.max_concurrent_calls.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(16))
        .max_core_instances_per_component(16)
        .total_memories(n.saturating_mul(2))
        .max_memories_per_component(2)
        .total_tables(n.saturating_mul(8))
        .max_tables_per_component(8)
        .total_stacks(n)
        .max_memory_size(4096 * 1024 * 1024)
        // Reset a finished instance's memory by rewriting only the pages it dirtied (found with
        // Linux's PAGEMAP_SCAN where available) instead of unmapping them: the next call then
        // takes no page faults. This is most of the cost of a fresh instance.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 * 1024)
        .async_stack_keep_resident(64 * 1024);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .cranelift_opt_level(if cfg.optimize {
            OptLevel::Speed
        } else {
            OptLevel::None
        })
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

impl PluginHost {
    /// Creates the engine, the linker (WASI with an empty context, `wasi:http` behind the
    /// grant check, and the `log` and `config` imports) and starts the epoch ticker.
    pub fn new(cfg: HostConfig) -> Result<Self, HostError> {
        let engine =
            Engine::new(&engine_config(&cfg)).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::<CallState>::new(&engine);
        let link = |r: wasmtime::Result<()>| r.map_err(|e| HostError::Engine(format!("{e:#}")));
        link(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
        // `wasi:http/types` as wasmtime-wasi-http serves it; the outgoing handler behind the
        // grant check (`net::add_guarded_handler`).
        link(
            wasmtime_wasi_http::p2::bindings::http::types::add_to_linker::<
                _,
                wasmtime_wasi_http::WasiHttp,
            >(
                &mut linker,
                &wasmtime_wasi_http::p2::bindings::LinkOptions::default().into(),
                wasmtime_wasi_http::WasiHttpView::http,
            ),
        )?;
        link(net::add_guarded_handler(&mut linker))?;
        link(bindings::reclaim::plugin::log::add_to_linker::<
            _,
            HasSelf<CallState>,
        >(&mut linker, |s| s))?;
        link(bindings::reclaim::plugin::config::add_to_linker::<
            _,
            HasSelf<CallState>,
        >(&mut linker, |s| s))?;
        spawn_ticker(&engine, cfg.epoch_tick)?;
        let permits = tokio::sync::Semaphore::new(cfg.max_concurrent_calls.max(1) as usize);
        Ok(PluginHost {
            inner: Arc::new(Inner {
                engine,
                linker,
                cfg,
                plugins: RwLock::new(Vec::new()),
                permits,
                provided: Arc::default(),
            }),
        })
    }

    /// The wasmtime engine, for tools that compile ahead of time with the same settings.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Loads one plugin directory (manifest + component) and returns its `describe()`.
    pub fn load_dir(&self, dir: &Path) -> Result<PluginInfo, HostError> {
        self.load_dir_report(dir).map(|r| r.info)
    }

    /// Like [`PluginHost::load_dir`], with how it was loaded and what to fix.
    pub fn load_dir_report(&self, dir: &Path) -> Result<LoadReport, HostError> {
        let manifest = Manifest::load(dir)?;
        self.load_with_manifest(dir, manifest)
    }

    /// Loads every subdirectory of `plugins_root` that has a `reclaim-plugin.toml`, in name
    /// order (which is also the routing order). Stops at the first plugin that fails, so a
    /// broken deployment is noticed at start-up rather than at the first revocation.
    pub fn load_all(&self, plugins_root: &Path) -> Result<Vec<PluginInfo>, HostError> {
        self.load_all_configured(plugins_root, &BTreeMap::new())
    }

    /// Like [`PluginHost::load_all`], with `[config]` keys set or replaced per plugin id
    /// (`overrides[id][key] = value`): a deployment configures packaged plugins (its tenant,
    /// its client id) without editing their manifests. An override for a plugin that is not
    /// there is an error, so a mistyped id is noticed at start-up.
    pub fn load_all_configured(
        &self,
        plugins_root: &Path,
        overrides: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Vec<PluginInfo>, HostError> {
        let io = |source| HostError::Io {
            path: plugins_root.to_path_buf(),
            source,
        };
        let mut dirs = std::fs::read_dir(plugins_root)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(manifest::MANIFEST_FILE).is_file())
            .collect::<Vec<_>>();
        dirs.sort();
        let mut manifests = Vec::new();
        for d in &dirs {
            let mut m = Manifest::load(d)?;
            if let Some(keys) = overrides.get(&m.id) {
                m.config
                    .extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            manifests.push((d, m));
        }
        if let Some(id) = overrides
            .keys()
            .find(|id| !manifests.iter().any(|(_, m)| &m.id == *id))
        {
            return Err(HostError::Manifest {
                path: plugins_root.to_path_buf(),
                message: format!("configuration is given for plugin `{id}`, which is not there"),
            });
        }
        manifests
            .into_iter()
            .map(|(d, m)| self.load_with_manifest(d, m).map(|r| r.info))
            .collect()
    }

    /// Loads a component with a manifest built by the caller (used by `plugin check` on a bare
    /// `.wasm`).
    pub fn load_with_manifest(
        &self,
        dir: &Path,
        manifest: Manifest,
    ) -> Result<LoadReport, HostError> {
        self.load_inner(dir, manifest, false)
    }

    /// Loads a component with no manifest: nothing granted, id taken from `describe()`.
    pub(crate) fn load_bare(&self, dir: &Path, file: PathBuf) -> Result<LoadReport, HostError> {
        self.load_inner(dir, Manifest::bare("unnamed", file), true)
    }

    fn policy_for(&self, manifest: &Manifest) -> OutboundPolicy {
        OutboundPolicy {
            grants: Arc::new(OutboundGrants {
                plugin: Arc::from(manifest.id.as_str()),
                patterns: manifest.allowed_outbound_hosts.clone(),
                allow_private_addresses: self.inner.cfg.allow_private_addresses,
                max_response_bytes: self.inner.cfg.max_response_bytes,
            }),
        }
    }

    fn load_inner(
        &self,
        dir: &Path,
        manifest: Manifest,
        adopt_described_id: bool,
    ) -> Result<LoadReport, HostError> {
        let wasm_path = dir.join(&manifest.component);
        let (component, source, load_time) = if self.inner.cfg.precompiled_only {
            let (component, took) = precompile::load_artifact(&self.inner.engine, &wasm_path)?;
            (component, LoadSource::Precompiled, took)
        } else {
            let bytes = std::fs::read(&wasm_path).map_err(|source| HostError::Io {
                path: wasm_path.clone(),
                source,
            })?;
            cache::load(
                &self.inner.engine,
                self.inner.cfg.cache_dir.as_deref(),
                &wasm_path,
                &bytes,
            )?
        };
        let mismatch = |e: wasmtime::Error| HostError::WorldMismatch {
            path: wasm_path.clone(),
            message: format!("{e:#}"),
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(mismatch)?;
        // A component may export the reclaimer world, the usage-source world, or both
        // (`reclaimer-and-source`); it must export at least one of them.
        let (reclaimer, source_pre) = match (
            ReclaimerPre::new(pre.clone()),
            UsageSourcePre::new(pre),
        ) {
            (Err(r), Err(u)) => {
                return Err(mismatch(wasmtime::Error::msg(format!(
                    "{r:#}; nor does it export the usage-source world's `reclaim:plugin/collector`: {u:#}"
                ))))
            }
            (r, u) => (r.ok(), u.ok()),
        };
        let policy = self.policy_for(&manifest);
        let mut manifest = Arc::new(manifest);
        let mut loaded = Loaded {
            manifest: Arc::clone(&manifest),
            info: PluginInfo {
                id: manifest.id.clone(),
                name: String::new(),
                version: String::new(),
                vendor: String::new(),
                applies_to: Vec::new(),
                justifications: Vec::new(),
                config_keys: Vec::new(),
                secrets: Vec::new(),
            },
            source_info: None,
            reclaimer,
            source: source_pre,
            policy,
        };
        let describe = |call| match block_on(self.run(&loaded, call)) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(HostError::Describe {
                path: wasm_path.clone(),
                source: error,
            }),
            Err(e) => Err(e),
        };
        let source_info = match loaded.source {
            Some(_) => match describe(Call::DescribeSource)? {
                Answer::Source(info) => Some(info),
                _ => unreachable_answer(&manifest.id)?,
            },
            None => None,
        };
        let info = match (&loaded.reclaimer, &source_info) {
            (Some(_), _) => match describe(Call::Describe)? {
                Answer::Info(info) => info,
                _ => unreachable_answer(&manifest.id)?,
            },
            (None, Some(s)) => PluginInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                version: s.version.clone(),
                vendor: s.vendor.clone(),
                applies_to: Vec::new(),
                justifications: Vec::new(),
                config_keys: s.config_keys.clone(),
                secrets: s.secrets.clone(),
            },
            (None, None) => unreachable_answer(&manifest.id)?,
        };
        if let Some(s) = source_info.as_ref().filter(|s| s.id != info.id) {
            return Err(HostError::IdMismatch {
                path: dir.to_path_buf(),
                manifest: info.id.clone(),
                described: format!("{} (describe-source)", s.id),
            });
        }
        if info.id != manifest.id && adopt_described_id {
            let mut renamed = (*manifest).clone();
            renamed.id = info.id.clone();
            loaded.policy = self.policy_for(&renamed);
            manifest = Arc::new(renamed);
            loaded.manifest = Arc::clone(&manifest);
        }
        if info.id != manifest.id {
            return Err(HostError::IdMismatch {
                path: dir.to_path_buf(),
                manifest: manifest.id.clone(),
                described: info.id,
            });
        }
        let mut warnings = Vec::new();
        if source_info.is_none() && manifest.source_keys_set {
            warnings.push(
                "`schedule`, `max_rows_per_page` and `max_pages_per_run` do nothing: the plugin is not a usage source".into(),
            );
        }
        let source_keys = source_info.iter().flat_map(|s| s.config_keys.iter());
        let source_secrets = source_info.iter().flat_map(|s| s.secrets.iter());
        let mut keys: Vec<&Requirement> = info.config_keys.iter().chain(source_keys).collect();
        keys.dedup_by(|a, b| a.name == b.name);
        let mut secrets: Vec<&Requirement> = info.secrets.iter().chain(source_secrets).collect();
        secrets.dedup_by(|a, b| a.name == b.name);
        for key in keys.into_iter().filter(|k| k.required) {
            if !manifest.config.contains_key(&key.name) {
                warnings.push(format!(
                    "required config key `{}` ({}) is not set in [config]",
                    key.name, key.description
                ));
            }
        }
        for secret in secrets.into_iter().filter(|s| s.required) {
            if !manifest.secrets.contains_key(&secret.name) {
                warnings.push(format!(
                    "required secret `{}` ({}) is not granted in `secrets`",
                    secret.name, secret.description
                ));
            }
        }
        for w in &warnings {
            tracing::warn!(plugin = %manifest.id, "{w}");
        }
        loaded.info = info.clone();
        loaded.source_info = source_info.clone().map(Arc::new);
        {
            let mut plugins = self
                .inner
                .plugins
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if plugins.iter().any(|p| p.manifest.id == manifest.id) {
                return Err(HostError::Duplicate(manifest.id.clone()));
            }
            plugins.push(Arc::new(loaded));
        }
        tracing::info!(plugin = %manifest.id, ?source, load_ms = load_time.as_secs_f64() * 1e3, "plugin loaded");
        Ok(LoadReport {
            info,
            source_info,
            manifest,
            source,
            load_time,
            warnings,
        })
    }

    /// The loaded plugins' `describe()`, in load order.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.read_plugins().iter().map(|p| p.info.clone()).collect()
    }

    /// Hands the host the value of a `store:NAME` secret source: for processes whose secrets
    /// live in a service (Secrets Manager) rather than in the environment or a file. Replaces
    /// an earlier value; read by plugins when they ask, like every other source.
    pub fn provide_secret(&self, name: &str, value: String) {
        self.inner
            .provided
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), manifest::Secret(value));
    }

    /// The `store:` names the loaded plugins' manifests grant, each once, sorted: what the
    /// embedding process must fetch and [`provide`](PluginHost::provide_secret).
    pub fn store_secret_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .read_plugins()
            .iter()
            .flat_map(|p| p.manifest.secrets.values())
            .filter_map(|s| match s {
                manifest::SecretSource::Store(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether a granted secret has a value on this host now (without revealing it).
    pub fn secret_present(&self, source: &manifest::SecretSource) -> bool {
        source.read(&self.inner.provided).is_some()
    }

    /// The manifest of a loaded plugin, for routing decisions.
    pub fn manifest(&self, plugin_id: &str) -> Option<Arc<Manifest>> {
        self.find(plugin_id).map(|p| Arc::clone(&p.manifest))
    }

    /// Runs the plugin's `reclaim` in a fresh instance under its manifest's limits.
    ///
    /// Must run inside a tokio runtime with its time and I/O drivers enabled (what
    /// `#[tokio::main]` gives): the deadline timer and `wasi:http` use them. The future is
    /// `Send`, so callers may spawn it.
    pub async fn reclaim(&self, plugin_id: &str, req: &Request) -> Result<Outcome, PluginError> {
        let loaded = self.get_reclaimer(plugin_id)?;
        match self.run(&loaded, Call::Reclaim(req.into())).await? {
            Answer::Reclaim(outcome) => Ok(outcome),
            _ => unreachable_call(plugin_id),
        }
    }

    /// Runs the plugin's `verify` (is the seat or install still there?) in a fresh instance.
    pub async fn verify(&self, plugin_id: &str, req: &Request) -> Result<Presence, PluginError> {
        let loaded = self.get_reclaimer(plugin_id)?;
        match self.run(&loaded, Call::Verify(req.into())).await? {
            Answer::Verify(presence) => Ok(presence),
            _ => unreachable_call(plugin_id),
        }
    }

    /// Calls `describe()` again in a fresh instance (the cheapest full round trip; used by
    /// health checks and the benchmark).
    pub async fn describe(&self, plugin_id: &str) -> Result<PluginInfo, PluginError> {
        let loaded = self.get(plugin_id)?;
        if loaded.reclaimer.is_none() {
            return Ok(loaded.info.clone());
        }
        match self.run(&loaded, Call::Describe).await? {
            Answer::Info(info) => Ok(info),
            _ => unreachable_call(plugin_id),
        }
    }

    /// The loaded usage sources (connectors), in load order: what the runner schedules.
    pub fn connectors(&self) -> Vec<Connector> {
        self.read_plugins()
            .iter()
            .filter_map(|p| self.connector_of(p))
            .collect()
    }

    /// One loaded usage source by id; an error when no plugin has that id or it does not
    /// export `collect`.
    pub fn connector(&self, plugin_id: &str) -> Result<Connector, CollectError> {
        let loaded = self.get(plugin_id)?;
        self.connector_of(&loaded)
            .ok_or_else(|| CollectError::NotASource {
                plugin: plugin_id.to_string(),
            })
    }

    fn connector_of(&self, loaded: &Arc<Loaded>) -> Option<Connector> {
        loaded.source_info.as_ref().map(|info| Connector {
            host: self.clone(),
            loaded: Arc::clone(loaded),
            info: Arc::clone(info),
        })
    }

    /// One `collect` call in a fresh instance; the row cap is the caller's ([`Connector`]).
    pub(crate) async fn collect_page(
        &self,
        loaded: &Loaded,
        cursor: Option<&str>,
    ) -> Result<UsagePage, PluginError> {
        match self
            .run(loaded, Call::Collect(cursor.map(str::to_string)))
            .await?
        {
            Answer::Page(page) => Ok(page),
            _ => unreachable_call(&loaded.manifest.id),
        }
    }

    fn read_plugins(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Loaded>>> {
        self.inner
            .plugins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, plugin_id: &str) -> Option<Arc<Loaded>> {
        self.read_plugins()
            .iter()
            .find(|p| p.manifest.id == plugin_id)
            .cloned()
    }

    /// A loaded plugin that reclaims; a usage source alone is a configuration mistake of
    /// whoever routed a revocation to it.
    fn get_reclaimer(&self, plugin_id: &str) -> Result<Arc<Loaded>, PluginError> {
        let loaded = self.get(plugin_id)?;
        if loaded.reclaimer.is_none() {
            return Err(PluginError::Misconfigured {
                message: format!(
                    "plugin `{plugin_id}` is a usage source only: it cannot reclaim or verify (route the rule to a plugin that reclaims)"
                ),
            });
        }
        Ok(loaded)
    }

    fn get(&self, plugin_id: &str) -> Result<Arc<Loaded>, PluginError> {
        self.find(plugin_id)
            .ok_or_else(|| PluginError::UnknownPlugin {
                plugin: plugin_id.to_string(),
            })
    }

    /// One call in a fresh store and instance, with every limit applied.
    async fn run(&self, loaded: &Loaded, call: Call) -> Result<Answer, PluginError> {
        let plugin = loaded.manifest.id.as_str();
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| PluginError::Host {
                plugin: plugin.to_string(),
                message: "host is shutting down".into(),
            })?;
        let deadline_ms = loaded.manifest.deadline_ms;
        let is_page = matches!(call, Call::Collect(_));
        let budget = Duration::from_millis(deadline_ms);
        let deadline = Instant::now() + budget;

        let mut store = Store::new(
            &self.inner.engine,
            CallState::new(
                Arc::clone(&loaded.policy.grants.plugin),
                Arc::clone(&loaded.manifest),
                loaded.policy.clone(),
                Arc::clone(&self.inner.provided),
            ),
        );
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineHit))
            } else {
                // Give the executor a turn each tick, so a busy guest cannot starve other
                // tasks on this thread and the outer timer can fire.
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let (reclaimer, source) = (&loaded.reclaimer, &loaded.source);
        let missing =
            || wasmtime::Error::msg("internal error: the component does not export this call");
        let result = {
            let store = &mut store;
            tokio::time::timeout(budget + IO_GRACE, async move {
                Ok::<_, wasmtime::Error>(match call {
                    Call::DescribeSource | Call::Collect(_) => {
                        let pre = source.as_ref().ok_or_else(missing)?;
                        let instance: UsageSource = pre.instantiate_async(&mut *store).await?;
                        let collector = instance.reclaim_plugin_collector();
                        match call {
                            Call::Collect(cursor) => RawAnswer::Page(
                                collector
                                    .call_collect(&mut *store, cursor.as_deref())
                                    .await?,
                            ),
                            _ => RawAnswer::Source(
                                collector.call_describe_source(&mut *store).await?,
                            ),
                        }
                    }
                    call => {
                        let pre = reclaimer.as_ref().ok_or_else(missing)?;
                        let instance: Reclaimer = pre.instantiate_async(&mut *store).await?;
                        match call {
                            Call::Reclaim(req) => {
                                RawAnswer::Reclaim(instance.call_reclaim(&mut *store, &req).await?)
                            }
                            Call::Verify(req) => {
                                RawAnswer::Verify(instance.call_verify(&mut *store, &req).await?)
                            }
                            _ => RawAnswer::Info(instance.call_describe(&mut *store).await?),
                        }
                    }
                })
            })
            .await
        };

        let state = store.data();
        let mut transcript = state.transcript();
        transcript.finish(plugin);
        let raw = match result {
            Err(_elapsed) => {
                tracing::warn!(plugin, deadline_ms, "plugin call stopped at its deadline");
                return Err(PluginError::DeadlineExceeded {
                    plugin: plugin.to_string(),
                    deadline_ms,
                });
            }
            Ok(Err(e)) => {
                let err = classify(plugin, deadline_ms, state, transcript.stderr_tail(), &e);
                tracing::warn!(plugin, error = %err, "plugin call failed");
                return Err(err);
            }
            Ok(Ok(raw)) => raw,
        };
        let redact = |e: PluginError| match e {
            PluginError::Transient {
                message,
                retry_after_secs,
            } => PluginError::Transient {
                message: transcript.redact(&message),
                retry_after_secs,
            },
            PluginError::Permanent { message } => PluginError::Permanent {
                message: transcript.redact(&message),
            },
            PluginError::Misconfigured { message } => PluginError::Misconfigured {
                message: transcript.redact(&message),
            },
            other => other,
        };
        let (answer, size) = match raw {
            RawAnswer::Info(info) => {
                let info = PluginInfo::from(info);
                let size = info.answer_bytes();
                (Ok(Answer::Info(info)), size)
            }
            RawAnswer::Reclaim(r) => {
                let r = r.map(Outcome::from).map_err(PluginError::from);
                let size = r.answer_bytes();
                (r.map(Answer::Reclaim).map_err(redact), size)
            }
            RawAnswer::Verify(r) => {
                let r = r.map(Presence::from).map_err(PluginError::from);
                let size = r.answer_bytes();
                (r.map(Answer::Verify).map_err(redact), size)
            }
            RawAnswer::Source(info) => {
                let info = SourceInfo::from(info);
                let size = info.answer_bytes();
                (Ok(Answer::Source(info)), size)
            }
            RawAnswer::Page(r) => {
                let r = r.map(UsagePage::from).map_err(PluginError::from);
                let size = r.answer_bytes();
                (r.map(Answer::Page).map_err(redact), size)
            }
        };
        let max = if is_page {
            self.inner.cfg.max_page_bytes
        } else {
            self.inner.cfg.max_response_bytes
        };
        if size > max {
            let err = PluginError::Malformed {
                plugin: plugin.to_string(),
                message: format!("answer is {size} bytes; the host accepts at most {max}"),
            };
            tracing::warn!(plugin, error = %err, "plugin answer rejected");
            return Err(err);
        }
        answer
    }
}

enum RawAnswer {
    Info(wit::PluginInfo),
    Reclaim(Result<wit::Outcome, wit::PluginError>),
    Verify(Result<wit::Presence, wit::PluginError>),
    Source(bindings::source::reclaim::plugin::usage_types::SourceInfo),
    Page(Result<bindings::source::reclaim::plugin::usage_types::Page, wit::PluginError>),
}

/// Turns a failed instantiate or call into the error a person can act on.
fn classify(
    plugin: &str,
    deadline_ms: u64,
    state: &CallState,
    stderr_tail: Option<String>,
    e: &wasmtime::Error,
) -> PluginError {
    if e.downcast_ref::<DeadlineHit>().is_some() {
        return PluginError::DeadlineExceeded {
            plugin: plugin.to_string(),
            deadline_ms,
        };
    }
    if let Some(requested) = state.memory.refused {
        return PluginError::OutOfMemory {
            plugin: plugin.to_string(),
            limit_mb: state.manifest.memory_mb,
            requested_mb: (requested as u64).div_ceil(1024 * 1024),
        };
    }
    let mut message = match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{e:#}"),
    };
    if let Some(tail) = stderr_tail {
        message.push_str("; guest stderr: ");
        message.push_str(&tail);
    }
    PluginError::Crashed {
        plugin: plugin.to_string(),
        message,
    }
}

fn unreachable_call<T>(plugin: &str) -> Result<T, PluginError> {
    Err(PluginError::Host {
        plugin: plugin.to_string(),
        message: "internal error: answer does not match the call".into(),
    })
}

fn unreachable_answer<T>(plugin: &str) -> Result<T, HostError> {
    Err(HostError::Engine(format!(
        "internal error: describe() of `{plugin}` gave another answer"
    )))
}

/// Runs a future to completion from synchronous code (loading calls `describe()`), whether
/// or not the caller is inside a tokio runtime.
fn block_on<F: std::future::Future + Send>(fut: F) -> Result<F::Output, HostError>
where
    F::Output: Send,
{
    let run = |fut: F| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(fut))
            .map_err(|e| HostError::Engine(format!("cannot start a runtime to load a plugin: {e}")))
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        // A runtime cannot be nested in this thread; run on a scoped helper thread.
        std::thread::scope(|s| s.spawn(|| run(fut)).join())
            .unwrap_or_else(|_| Err(HostError::Engine("plugin load thread panicked".into())))
    } else {
        run(fut)
    }
}

fn spawn_ticker(engine: &Engine, tick: Duration) -> Result<(), HostError> {
    let weak = engine.weak();
    let tick = tick.max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("reclaim-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .map(|_| ())
        .map_err(|e| HostError::Engine(format!("cannot start the epoch ticker thread: {e}")))
}
