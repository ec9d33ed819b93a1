//! `reclaim plugin check PATH [--request FILE]`: what a plugin author runs before shipping.
//!
//! It loads the plugin exactly as the host would (manifest, compile, world check, `describe()`),
//! lists what the manifest grants and whether each granted secret has a value (never the value),
//! then runs `reclaim` with `dry-run` forced on, against the given request or a sample one. A
//! usage source (connector) also collects its first page (collecting only reads), so an author
//! sees the rows and notes the runner would get.
//! PATH is a plugin directory, or a bare `.wasm` (then nothing is granted).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::{
    block_on, AppliesTo, CollectError, HostConfig, HostError, Justification, LoadReport, Outcome,
    PluginError, PluginHost, Request, Software, UsagePage, User,
};

/// Everything `plugin check` found, printable with `Display`.
#[derive(Debug)]
pub struct CheckReport {
    /// What was checked.
    pub path: PathBuf,
    /// Whether a manifest was found (a bare component is checked with no grants).
    pub manifest_found: bool,
    /// The load: `describe()`, manifest, cache, warnings.
    pub load: LoadReport,
    /// Granted secrets: name, where its value comes from, whether a value is there now.
    pub secrets: Vec<(String, String, bool)>,
    /// The request that was run (with `dry-run` true).
    pub request: Request,
    /// Whether the plugin reclaims (exports the reclaimer world); a usage source alone does not,
    /// and its dry run is not run.
    pub reclaims: bool,
    /// What the dry run returned.
    pub dry_run: Result<Outcome, PluginError>,
    /// A usage source's first page (`collect(none)`).
    pub first_page: Option<Result<UsagePage, CollectError>>,
}

impl CheckReport {
    /// True when the plugin loaded, has no warnings and the dry run gave an outcome.
    pub fn passed(&self) -> bool {
        self.load.warnings.is_empty()
            && (!self.reclaims || self.dry_run.is_ok())
            && self.first_page.as_ref().is_none_or(Result::is_ok)
    }
}

/// Checks a plugin with the default host config (private addresses refused, as in production).
pub fn check(path: &Path, request_json: Option<&str>) -> Result<CheckReport, HostError> {
    check_with(path, request_json, HostConfig::default())
}

/// Checks a plugin with a given host config (e.g. `allow_private_addresses` for a local fake).
pub fn check_with(
    path: &Path,
    request_json: Option<&str>,
    cfg: HostConfig,
) -> Result<CheckReport, HostError> {
    let request = match request_json {
        Some(json) => {
            let mut r: Request =
                serde_json::from_str(json).map_err(|e| HostError::Request(e.to_string()))?;
            r.dry_run = true;
            Some(r)
        }
        None => None,
    };
    let host = PluginHost::new(cfg)?;
    let (load, manifest_found) = if path.is_dir() {
        (host.load_dir_report(path)?, true)
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let file = PathBuf::from(path.file_name().unwrap_or_default());
        let beside = Manifest::load(&dir).ok().filter(|m| m.component == file);
        match beside {
            Some(m) => (host.load_with_manifest(&dir, m)?, true),
            None => (host.load_bare(&dir, file)?, false),
        }
    };
    let secrets = load
        .manifest
        .secrets
        .iter()
        .map(|(name, source)| {
            let present = host.secret_present(source);
            (name.clone(), source.to_string(), present)
        })
        .collect();
    let request = request.unwrap_or_else(|| sample_request(&load));
    let id = load.info.id.clone();
    let connector = host.connector(&id).ok();
    let reclaims = connector.as_ref().is_none_or(|c| c.also_reclaims());
    let (dry_run, first_page) = block_on(async {
        let dry_run = host.reclaim(&id, &request).await;
        let first_page = match &connector {
            Some(c) => Some(c.collect(None).await),
            None => None,
        };
        (dry_run, first_page)
    })?;
    Ok(CheckReport {
        path: path.to_path_buf(),
        manifest_found,
        load,
        secrets,
        request,
        reclaims,
        dry_run,
        first_page,
    })
}

/// A plausible request for a plugin that was given none, shaped by what it says it handles.
fn sample_request(load: &LoadReport) -> Request {
    let applies_to = load
        .info
        .applies_to
        .first()
        .copied()
        .unwrap_or(AppliesTo::Subscription);
    Request {
        candidate_id: "check-0001".into(),
        idempotency_key: "check-0001/1/revoke".into(),
        applies_to,
        user: User {
            id: "user-0001".into(),
            email: Some("ann.example@example.com".into()),
            upn: Some("ann.example@example.com".into()),
        },
        software: Software {
            publisher: "Example Corp".into(),
            product: "Example Product".into(),
            version: Some("1.0".into()),
            sku: Some("example-sku".into()),
            subscription_id: None,
        },
        device: (applies_to == AppliesTo::InstalledSoftware).then(|| "DEVICE-0001".into()),
        justification: load
            .info
            .justifications
            .first()
            .copied()
            .unwrap_or(Justification::Unused),
        dry_run: true,
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.load.info;
        let m = &self.load.manifest;
        writeln!(f, "plugin check: {}", self.path.display())?;
        let world = match (self.reclaims, &self.load.source_info) {
            (true, None) => "reclaimer",
            (true, Some(_)) => "reclaimer-and-source",
            (false, _) => "usage-source",
        };
        writeln!(f, "  world        reclaim:plugin/{world}@0.1.0: ok")?;
        if self.manifest_found {
            writeln!(f, "  manifest     {MANIFEST_FILE}: ok")?;
        } else {
            writeln!(f, "  manifest     none found: checked with no grants")?;
        }
        writeln!(f, "  id           {}", i.id)?;
        writeln!(f, "  name         {} {} ({})", i.name, i.version, i.vendor)?;
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        writeln!(
            f,
            "  applies-to   {}",
            list(i.applies_to.iter().map(kebab).collect())
        )?;
        writeln!(
            f,
            "  reasons      {}",
            list(i.justifications.iter().map(kebab).collect())
        )?;
        for k in &i.config_keys {
            let set = if m.config.contains_key(&k.name) {
                "set"
            } else {
                "NOT SET"
            };
            writeln!(
                f,
                "  config       {}{}: {} [{set}]",
                k.name,
                if k.required { " (required)" } else { "" },
                k.description
            )?;
        }
        for s in &i.secrets {
            writeln!(
                f,
                "  secret       {}{}: {}",
                s.name,
                if s.required { " (required)" } else { "" },
                s.description
            )?;
        }
        for (name, source, present) in &self.secrets {
            writeln!(
                f,
                "  granted      secret {name} from {source}: {}",
                if *present {
                    "value present"
                } else {
                    "NO VALUE"
                }
            )?;
        }
        writeln!(
            f,
            "  outbound     {}",
            list(
                m.allowed_outbound_hosts
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            )
        )?;
        writeln!(
            f,
            "  limits       deadline {} ms, memory {} MiB",
            m.deadline_ms, m.memory_mb
        )?;
        writeln!(
            f,
            "  load         {:?} in {:.1} ms",
            self.load.source,
            self.load.load_time.as_secs_f64() * 1e3
        )?;
        if let Some(s) = &self.load.source_info {
            writeln!(
                f,
                "  reports      {} ({})",
                list(s.reports.iter().map(kebab).collect()),
                s.description
            )?;
            writeln!(
                f,
                "  collecting   schedule {}, at most {} rows a page, {} pages a run",
                m.schedule, m.max_rows_per_page, m.max_pages_per_run
            )?;
        }
        for w in &self.load.warnings {
            writeln!(f, "  WARNING      {w}")?;
        }
        match &self.first_page {
            Some(Ok(page)) => {
                writeln!(
                    f,
                    "  first page   ok: {} rows, {}",
                    page.rows.len(),
                    if page.next_cursor.is_some() {
                        "more pages follow"
                    } else {
                        "the last page"
                    }
                )?;
                for n in &page.notes {
                    writeln!(f, "  note         {} x {}", n.count, n.reason)?;
                }
            }
            Some(Err(e)) => writeln!(
                f,
                "  first page   error{}: {e}",
                if e.is_retryable() { " (retryable)" } else { "" }
            )?,
            None => {}
        }
        match &self.dry_run {
            _ if !self.reclaims => writeln!(f, "  dry run      - (a usage source only)")?,
            Ok(o) => writeln!(
                f,
                "  dry run      ok: {}",
                serde_json::to_string(o).unwrap_or_default()
            )?,
            Err(e) => writeln!(
                f,
                "  dry run      error{}: {e}",
                if e.is_retryable() { " (retryable)" } else { "" }
            )?,
        }
        write!(
            f,
            "  result       {}",
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// The kebab-case name of an enum value, as in the WIT and the JSON.
fn kebab<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
