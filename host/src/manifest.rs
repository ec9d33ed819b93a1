//! The plugin manifest: what an operator grants one plugin.
//!
//! A component alone can do nothing outside its sandbox; the manifest beside it is the only
//! source of capabilities. Everything not granted here is refused.
//!
//! ## Manifest
//!
//! File `reclaim-plugin.toml` in the plugin directory, next to the component:
//!
//! ```toml
//! id = "m365-revoke"                 # must equal describe().id
//! component = "plugin.wasm"          # optional; default "plugin.wasm"
//! deadline_ms = 10000                # optional; wall-clock limit per call (default 10 s)
//! memory_mb = 64                     # optional; linear-memory cap per call (default 64 MiB)
//! verify_settle_ms = 2000            # optional; wait after `removed` before `verify` (default 0,
//!                                    # at most 60000): for vendors whose reads lag their writes
//!
//! # Usage sources (connectors) only; a plugin that only reclaims gets a warning at load:
//! schedule = "daily"                 # optional; how often the runner collects: hourly, daily,
//!                                    # weekly or an interval (30m, 6h, 2d), 15m to 30d
//! max_rows_per_page = 1000           # optional; a bigger page is refused (default 1000, max 10000)
//! max_pages_per_run = 1000           # optional; a run needing more is stopped (default 1000,
//!                                    # max 100000)
//!
//! # Outbound HTTP the plugin may make, as scheme://host:port patterns. Empty = none.
//! # host may be `*.example.com` (any subdomain) or `*` (any host); port may be `*`.
//! # A pattern without a port means the scheme's default port (443 / 80).
//! allowed_outbound_hosts = ["https://graph.microsoft.com:443", "https://login.microsoftonline.com"]
//!
//! # Names of the secrets the plugin may read with config.secret(name).
//! secrets = ["client-secret"]
//!
//! # Optional routing hints used by the workflow's revoker when a rule names no plugin:
//! # case-insensitive, `*` matches any run of characters. Empty = any.
//! products = ["Microsoft 365 *", "Office 365 E*"]
//! publishers = ["Microsoft*"]
//!
//! # Values the plugin reads with config.get(key); only these keys exist for it.
//! # Non-string TOML values are given to the plugin in their TOML spelling (10, true).
//! [config]
//! tenant-id = "contoso.onmicrosoft.com"
//! graph-base = "https://graph.microsoft.com/v1.0"
//!
//! # Where each granted secret's value comes from, chosen by the operator. Optional: a secret
//! # without an entry is read from the environment variable
//! # RECLAIM_SECRET_<PLUGIN_ID>_<NAME> (upper case, every non-alphanumeric replaced by `_`),
//! # e.g. RECLAIM_SECRET_M365_REVOKE_CLIENT_SECRET.
//! [secret_sources]
//! client-secret = "env:M365_CLIENT_SECRET"     # an environment variable of the host process
//! # client-secret = "file:/run/secrets/m365"  # a file (trailing newline trimmed)
//! # client-secret = "store:m365-client-secret" # handed to the host by the process embedding it
//! #                                           # (on AWS: a Secrets Manager secret, fetched at start)
//! ```
//!
//! Secret values are read when the plugin asks, never at load, never logged, and never
//! shown by `reclaim plugin check` (it says only whether a value is present). Unknown keys in the
//! manifest are an error so that a typo does not silently drop a limit.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::HostError;
use crate::net::HostPattern;

/// The manifest's file name inside a plugin directory.
pub const MANIFEST_FILE: &str = "reclaim-plugin.toml";

/// Default per-call wall-clock limit; long enough for a token fetch plus one vendor call.
pub const DEFAULT_DEADLINE_MS: u64 = 10_000;
/// Default linear-memory cap; JSON-over-HTTP plugins need a few MiB.
pub const DEFAULT_MEMORY_MB: u64 = 64;
/// Highest deadline a manifest may ask for, so a typo cannot park an effect for hours.
pub const MAX_DEADLINE_MS: u64 = 15 * 60 * 1000;
/// Highest `verify_settle_ms`: the wait holds a revocation effect open, and a vendor that needs
/// longer for its reads to catch up is better served by `pending` and later checks.
pub const MAX_VERIFY_SETTLE_MS: u64 = 60_000;
/// Default rows a connector may return in one page: a page of this size is well inside the
/// host's answer cap and a plugin's default memory.
pub const DEFAULT_MAX_ROWS_PER_PAGE: u32 = 1_000;
/// Highest `max_rows_per_page`: the whole page is held in memory by the guest and the host.
pub const MAX_ROWS_PER_PAGE: u32 = 10_000;
/// Default pages one run may take (a million rows at the default page size).
pub const DEFAULT_MAX_PAGES_PER_RUN: u32 = 1_000;
/// Highest `max_pages_per_run`, so a connector whose cursor never ends is stopped.
pub const MAX_PAGES_PER_RUN: u32 = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    id: String,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    deadline_ms: Option<u64>,
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    verify_settle_ms: Option<u64>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    max_rows_per_page: Option<u32>,
    #[serde(default)]
    max_pages_per_run: Option<u32>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    products: Vec<String>,
    #[serde(default)]
    publishers: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    secret_sources: BTreeMap<String, String>,
}

/// Where a granted secret's value lives on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the host process.
    Env(String),
    /// A file on the host (trailing newline trimmed).
    File(PathBuf),
    /// A value the embedding process hands over with [`PluginHost::provide_secret`] (the AWS
    /// functions fetch it from Secrets Manager at start), under this name.
    ///
    /// [`PluginHost::provide_secret`]: crate::PluginHost::provide_secret
    Store(String),
}

impl SecretSource {
    fn parse(spec: &str) -> Option<Self> {
        if let Some(var) = spec.strip_prefix("env:") {
            (!var.is_empty()).then(|| SecretSource::Env(var.to_string()))
        } else if let Some(name) = spec.strip_prefix("store:") {
            (!name.is_empty()).then(|| SecretSource::Store(name.to_string()))
        } else {
            spec.strip_prefix("file:")
                .filter(|p| !p.is_empty())
                .map(|p| SecretSource::File(PathBuf::from(p)))
        }
    }

    /// The conventional source for a secret with no `[secret_sources]` entry.
    pub fn default_for(plugin_id: &str, name: &str) -> Self {
        let norm = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        SecretSource::Env(format!("RECLAIM_SECRET_{}_{}", norm(plugin_id), norm(name)))
    }

    /// Reads the value now; `None` when the variable, file or provided value is absent.
    pub(crate) fn read(&self, provided: &ProvidedSecrets) -> Option<Secret> {
        match self {
            SecretSource::Env(var) => std::env::var(var).ok().map(Secret),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .ok()
                .map(|s| Secret(s.trim_end_matches(['\r', '\n']).to_string())),
            SecretSource::Store(name) => provided
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(name)
                .cloned(),
        }
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(v) => write!(f, "env:{v}"),
            SecretSource::File(p) => write!(f, "file:{}", p.display()),
            SecretSource::Store(n) => write!(f, "store:{n}"),
        }
    }
}

/// Values handed over by the embedding process, by name (the `store:` source).
pub(crate) type ProvidedSecrets = std::sync::RwLock<std::collections::HashMap<String, Secret>>;

/// A secret value; its `Debug` never shows the value, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The plugin id; equals `describe().id`.
    pub id: String,
    /// The component file, relative to the plugin directory.
    pub component: PathBuf,
    /// Wall-clock limit per call.
    pub deadline_ms: u64,
    /// Linear-memory cap per call.
    pub memory_mb: u64,
    /// How long the host waits after the plugin answers `removed` before it calls `verify`,
    /// so a vendor whose reads lag its writes is not reported as still holding the seat.
    /// 0 (the default) verifies at once.
    pub verify_settle_ms: u64,
    /// How often a usage source is collected (the runner reads it; default daily).
    pub schedule: Schedule,
    /// Rows a usage source may return in one page; a bigger page is an error.
    pub max_rows_per_page: u32,
    /// Pages one collection run may take; a run that needs more is stopped.
    pub max_pages_per_run: u32,
    /// Whether `schedule`, `max_rows_per_page` or `max_pages_per_run` were written in the
    /// manifest, so loading a plugin that is not a usage source can warn that they do nothing.
    pub source_keys_set: bool,
    /// Outbound HTTP grants.
    pub allowed_outbound_hosts: Vec<HostPattern>,
    /// Secret names the plugin may read, with where each value comes from.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Config values the plugin may read.
    pub config: BTreeMap<String, String>,
    /// Product patterns for routing (empty = any).
    pub products: Vec<String>,
    /// Publisher patterns for routing (empty = any).
    pub publishers: Vec<String>,
}

impl Manifest {
    /// Reads `reclaim-plugin.toml` from a plugin directory.
    pub fn load(dir: &Path) -> Result<Self, HostError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| HostError::Io {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|message| HostError::Manifest { path, message })
    }

    /// Parses and validates manifest text; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| e.to_string())?;
        if raw.id.is_empty()
            || !raw
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "id `{}` must be non-empty and use only letters, digits, `-`, `_` and `.`",
                raw.id
            ));
        }
        let component = PathBuf::from(raw.component.unwrap_or_else(|| "plugin.wasm".into()));
        if component.is_absolute()
            || component
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "component `{}` must be a path inside the plugin directory",
                component.display()
            ));
        }
        let deadline_ms = raw.deadline_ms.unwrap_or(DEFAULT_DEADLINE_MS);
        if deadline_ms == 0 || deadline_ms > MAX_DEADLINE_MS {
            return Err(format!(
                "deadline_ms = {deadline_ms} must be between 1 and {MAX_DEADLINE_MS}"
            ));
        }
        let memory_mb = raw.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        if memory_mb == 0 || memory_mb > 4096 {
            return Err(format!(
                "memory_mb = {memory_mb} must be between 1 and 4096"
            ));
        }
        let verify_settle_ms = raw.verify_settle_ms.unwrap_or(0);
        if verify_settle_ms > MAX_VERIFY_SETTLE_MS {
            return Err(format!(
                "verify_settle_ms = {verify_settle_ms} must be at most {MAX_VERIFY_SETTLE_MS}"
            ));
        }
        let source_keys_set = raw.schedule.is_some()
            || raw.max_rows_per_page.is_some()
            || raw.max_pages_per_run.is_some();
        let schedule = match &raw.schedule {
            Some(text) => Schedule::parse(text).map_err(|e| format!("schedule: {e}"))?,
            None => Schedule::default(),
        };
        let max_rows_per_page = raw.max_rows_per_page.unwrap_or(DEFAULT_MAX_ROWS_PER_PAGE);
        if max_rows_per_page == 0 || max_rows_per_page > MAX_ROWS_PER_PAGE {
            return Err(format!(
                "max_rows_per_page = {max_rows_per_page} must be between 1 and {MAX_ROWS_PER_PAGE}"
            ));
        }
        let max_pages_per_run = raw.max_pages_per_run.unwrap_or(DEFAULT_MAX_PAGES_PER_RUN);
        if max_pages_per_run == 0 || max_pages_per_run > MAX_PAGES_PER_RUN {
            return Err(format!(
                "max_pages_per_run = {max_pages_per_run} must be between 1 and {MAX_PAGES_PER_RUN}"
            ));
        }
        let allowed_outbound_hosts = raw
            .allowed_outbound_hosts
            .iter()
            .map(|p| HostPattern::parse(p).map_err(|e| format!("allowed_outbound_hosts: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        for name in raw.secret_sources.keys() {
            if !raw.secrets.contains(name) {
                return Err(format!(
                    "secret_sources names `{name}`, which is not in `secrets`"
                ));
            }
        }
        let mut secrets = BTreeMap::new();
        for name in &raw.secrets {
            let source = match raw.secret_sources.get(name) {
                Some(spec) => SecretSource::parse(spec).ok_or_else(|| {
                    format!("secret_sources.{name} = `{spec}`: expected `env:VAR`, `file:/path` or `store:NAME`")
                })?,
                None => SecretSource::default_for(&raw.id, name),
            };
            secrets.insert(name.clone(), source);
        }
        let config = raw
            .config
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Table(_) | toml::Value::Array(_) => {
                        return Err(format!("config.{k}: values must be scalars"))
                    }
                    other => other.to_string(),
                };
                Ok((k, v))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        Ok(Manifest {
            id: raw.id,
            component,
            deadline_ms,
            memory_mb,
            verify_settle_ms,
            schedule,
            max_rows_per_page,
            max_pages_per_run,
            source_keys_set,
            allowed_outbound_hosts,
            secrets,
            config,
            products: raw.products,
            publishers: raw.publishers,
        })
    }

    /// A manifest granting nothing, for checking a bare component with `plugin check`.
    pub fn bare(id: &str, component: PathBuf) -> Self {
        Manifest {
            id: id.to_string(),
            component,
            deadline_ms: DEFAULT_DEADLINE_MS,
            memory_mb: DEFAULT_MEMORY_MB,
            verify_settle_ms: 0,
            schedule: Schedule::default(),
            max_rows_per_page: DEFAULT_MAX_ROWS_PER_PAGE,
            max_pages_per_run: DEFAULT_MAX_PAGES_PER_RUN,
            source_keys_set: false,
            allowed_outbound_hosts: Vec::new(),
            secrets: BTreeMap::new(),
            config: BTreeMap::new(),
            products: Vec::new(),
            publishers: Vec::new(),
        }
    }
}

/// How often a usage source is collected: the runner runs a connector when this much time has
/// passed since its last run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    every: std::time::Duration,
    text: String,
}

/// Shortest schedule: more often hammers the vendor's reporting APIs, whose data is hours old.
pub const MIN_SCHEDULE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Longest schedule: rarer runs leave candidates weeks behind the vendor.
pub const MAX_SCHEDULE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            every: std::time::Duration::from_secs(24 * 3600),
            text: "daily".into(),
        }
    }
}

impl Schedule {
    /// `hourly`, `daily`, `weekly`, or a whole number with `m`, `h` or `d` (`30m`, `6h`, `2d`),
    /// from 15 minutes to 30 days.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let secs = match t {
            "hourly" => 3600,
            "daily" => 24 * 3600,
            "weekly" => 7 * 24 * 3600,
            _ => {
                let unit = match t.char_indices().last() {
                    Some((i, 'm')) => Some((i, 60)),
                    Some((i, 'h')) => Some((i, 3600)),
                    Some((i, 'd')) => Some((i, 24 * 3600)),
                    _ => None,
                };
                let parsed = unit.and_then(|(i, mult)| {
                    let n = &t[..i];
                    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| n.parse::<u64>().ok())
                        .flatten()
                        .and_then(|n| n.checked_mul(mult))
                });
                parsed.ok_or_else(|| {
                    format!("`{text}` is not hourly, daily, weekly or an interval such as 30m, 6h or 2d")
                })?
            }
        };
        let every = std::time::Duration::from_secs(secs);
        if every < MIN_SCHEDULE || every > MAX_SCHEDULE {
            return Err(format!("`{text}` must be between 15m and 30d"));
        }
        Ok(Schedule {
            every,
            text: t.to_string(),
        })
    }

    /// Time between two runs.
    pub fn every(&self) -> std::time::Duration {
        self.every
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_manifest_parses_with_defaults_and_sources() {
        let m = Manifest::parse(
            r#"
            id = "m365-revoke"
            allowed_outbound_hosts = ["https://graph.microsoft.com", "http://127.0.0.1:*"]
            secrets = ["client-secret", "other"]
            [config]
            tenant = "contoso"
            retries = 3
            [secret_sources]
            client-secret = "env:M365_SECRET"
            "#,
        )
        .unwrap();
        assert_eq!(m.component, PathBuf::from("plugin.wasm"));
        assert_eq!(m.deadline_ms, DEFAULT_DEADLINE_MS);
        assert_eq!(m.config["retries"], "3");
        assert_eq!(
            m.secrets["client-secret"],
            SecretSource::Env("M365_SECRET".into())
        );
        assert_eq!(
            m.secrets["other"],
            SecretSource::Env("RECLAIM_SECRET_M365_REVOKE_OTHER".into())
        );
        assert_eq!(m.allowed_outbound_hosts.len(), 2);
    }

    #[test]
    fn typos_and_escapes_are_rejected() {
        assert!(Manifest::parse("id = \"x\"\ndeadline = 5").is_err());
        assert!(Manifest::parse("id = \"x\"\ncomponent = \"../x.wasm\"").is_err());
        assert!(Manifest::parse("id = \"x y\"").is_err());
        assert!(Manifest::parse("id = \"x\"\n[secret_sources]\na = \"env:A\"").is_err());
        assert!(
            Manifest::parse("id = \"x\"\nsecrets=[\"a\"]\n[secret_sources]\na = \"vault:A\"")
                .is_err()
        );
        assert!(Manifest::parse("id = \"x\"\nmemory_mb = 0").is_err());
    }

    #[test]
    fn verify_settle_defaults_to_zero_and_is_capped_at_a_minute() {
        assert_eq!(Manifest::parse("id = \"x\"").unwrap().verify_settle_ms, 0);
        assert_eq!(
            Manifest::parse("id = \"x\"\nverify_settle_ms = 1500")
                .unwrap()
                .verify_settle_ms,
            1500
        );
        assert_eq!(
            Manifest::parse(&format!(
                "id = \"x\"\nverify_settle_ms = {MAX_VERIFY_SETTLE_MS}"
            ))
            .unwrap()
            .verify_settle_ms,
            MAX_VERIFY_SETTLE_MS
        );
        let too_long = Manifest::parse(&format!(
            "id = \"x\"\nverify_settle_ms = {}",
            MAX_VERIFY_SETTLE_MS + 1
        ))
        .unwrap_err();
        assert!(too_long.contains("verify_settle_ms"), "{too_long}");
        assert!(Manifest::parse("id = \"x\"\nverify_settle_ms = -1").is_err());
        assert!(Manifest::parse("id = \"x\"\nverify_settle_ms = \"2s\"").is_err());
        assert!(Manifest::parse("id = \"x\"\nverify_settle = 100").is_err());
        assert_eq!(
            Manifest::bare("x", "plugin.wasm".into()).verify_settle_ms,
            0
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn a_store_source_names_a_value_the_embedding_process_provides() {
        let m = Manifest::parse(
            "id = \"x\"\nsecrets = [\"token\"]\n[secret_sources]\ntoken = \"store:vendor-token\"",
        )
        .unwrap();
        let source = &m.secrets["token"];
        assert_eq!(source, &SecretSource::Store("vendor-token".into()));
        assert_eq!(source.to_string(), "store:vendor-token");
        let provided = ProvidedSecrets::default();
        assert!(source.read(&provided).is_none(), "not provided yet");
        provided
            .write()
            .unwrap()
            .insert("vendor-token".into(), Secret("s3cret".into()));
        assert_eq!(source.read(&provided), Some(Secret("s3cret".into())));
        assert!(
            Manifest::parse("id = \"x\"\nsecrets=[\"a\"]\n[secret_sources]\na = \"store:\"")
                .is_err()
        );
    }

    #[test]
    fn schedule_defaults_to_daily_and_takes_words_or_intervals() {
        let m = Manifest::parse("id = \"x\"").unwrap();
        assert_eq!(m.schedule.every().as_secs(), 24 * 3600);
        assert_eq!(m.schedule.to_string(), "daily");
        assert!(!m.source_keys_set);
        for (text, secs) in [
            ("hourly", 3600),
            ("weekly", 7 * 24 * 3600),
            ("15m", 900),
            ("6h", 6 * 3600),
            ("30d", 30 * 24 * 3600),
        ] {
            let m = Manifest::parse(&format!("id = \"x\"\nschedule = \"{text}\"")).unwrap();
            assert_eq!(m.schedule.every().as_secs(), secs, "{text}");
            assert!(m.source_keys_set);
        }
        for bad in [
            "",
            "often",
            "5m",
            "31d",
            "6",
            "h",
            "-6h",
            "6 h",
            "1.5h",
            "99999999999999999d",
        ] {
            let err = Manifest::parse(&format!("id = \"x\"\nschedule = \"{bad}\"")).unwrap_err();
            assert!(err.contains("schedule"), "{bad}: {err}");
        }
    }

    #[test]
    fn connector_caps_have_defaults_and_maxima() {
        let m = Manifest::parse("id = \"x\"").unwrap();
        assert_eq!(m.max_rows_per_page, DEFAULT_MAX_ROWS_PER_PAGE);
        assert_eq!(m.max_pages_per_run, DEFAULT_MAX_PAGES_PER_RUN);
        let m =
            Manifest::parse("id = \"x\"\nmax_rows_per_page = 10\nmax_pages_per_run = 3").unwrap();
        assert_eq!((m.max_rows_per_page, m.max_pages_per_run), (10, 3));
        for bad in [
            "max_rows_per_page = 0",
            "max_rows_per_page = 10001",
            "max_pages_per_run = 0",
            "max_pages_per_run = 100001",
            "max_rows_per_page = -1",
            "max_rows = 5",
        ] {
            assert!(
                Manifest::parse(&format!("id = \"x\"\n{bad}")).is_err(),
                "{bad}"
            );
        }
    }
}
