//! Fake vendor APIs for the demo and the plugin tests.
//!
//! The built-in plugins talk to Microsoft Graph (and its token endpoint), to SCIM 2.0 services
//! and to a client software distribution (CSD) service. Running them against the real things
//! needs tenants and credentials; these fakes answer the same requests from in-memory state so
//! that `reclaim serve --demo` can show an automatic reclamation end to end, and so that the
//! plugin tests can exercise every answer a plugin must handle (throttling, group-inherited
//! licenses, unknown users, refused tokens) without a network.
//!
//! Each fake is `pub fn router(state) -> axum::Router`; its state handle is cheap to clone and
//! lets a test arrange data and inspect what the plugin did. [`spawn_all`] serves all three on
//! loopback with the plugin tests' sample data, [`spawn_demo_organisation`] with the licenses
//! and installs of the demo organisation's people ([`organisation`]), and
//! [`FakeVendors::install_plugins`] lays out built plugins with manifests pointing at them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let fakes = reclaim_fakes::spawn_all().await?;
//! fakes.install_plugins("plugins/dist".as_ref(), "/tmp/reclaim-demo/plugins".as_ref())?;
//! println!("Graph at {}", fakes.graph_url);
//! # Ok(()) }
//! ```

pub mod csd;
pub mod csd_inventory;
pub mod dates;
pub mod graph;
pub mod graph_usage;
pub mod organisation;
pub mod scim;

use axum::Router;
use std::fmt::Write as _;
use std::path::Path;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use csd::CsdState;
pub use graph::GraphState;
pub use scim::ScimState;

/// Serves `router` on an ephemeral loopback port; returns its base URL (`http://127.0.0.1:N`).
pub async fn serve(router: Router) -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "fake vendor server stopped");
        }
    });
    Ok((format!("http://{addr}"), task))
}

/// The three fakes, served. Dropping it stops the servers.
#[derive(Debug)]
pub struct FakeVendors {
    /// Root of the fake Graph; also the fake login endpoint (`{graph_url}/{tenant}/oauth2/...`).
    pub graph_url: String,
    /// The SCIM service root (`.../scim/v2`).
    pub scim_url: String,
    /// The CSD API root; the plugin appends `/deviceAppManagement/...`.
    pub csd_url: String,
    pub graph: GraphState,
    pub scim: ScimState,
    pub csd: CsdState,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeVendors {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// All three fakes on loopback, seeded with the plugin tests' sample data and lenient: users,
/// seats and apps a test's candidates name are created on first use, so any of them can be
/// reclaimed.
pub async fn spawn_all() -> std::io::Result<FakeVendors> {
    spawn_with(GraphState::demo(), ScimState::demo(), CsdState::demo()).await
}

/// The vendors of `reclaim serve --demo`: the demo organisation's Microsoft 365 tenant and
/// device inventory ([`organisation`]), whose usage connectors find the demo's candidates, and
/// the sample SCIM service. Lenient like [`spawn_all`].
pub async fn spawn_demo_organisation() -> std::io::Result<FakeVendors> {
    spawn_with(
        organisation::graph(),
        ScimState::demo(),
        organisation::csd(),
    )
    .await
}

/// The three fakes on loopback with the given state (tests arrange their own).
pub async fn spawn_with(
    graph: GraphState,
    scim: ScimState,
    csd: CsdState,
) -> std::io::Result<FakeVendors> {
    let (graph_url, g) = serve(graph::router(graph.clone())).await?;
    let (scim_root, s) = serve(scim::router(scim.clone())).await?;
    let (csd_url, c) = serve(csd::router(csd.clone())).await?;
    Ok(FakeVendors {
        graph_url,
        scim_url: format!("{scim_root}{}", scim::BASE_PATH),
        csd_url,
        graph,
        scim,
        csd,
        tasks: vec![g, s, c],
    })
}

/// One plugin's settings for talking to a fake: what goes in its manifest.
#[derive(Debug, Clone)]
pub struct PluginSetup {
    pub id: &'static str,
    pub allowed_outbound_hosts: Vec<String>,
    pub config: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
}

impl FakeVendors {
    /// Manifest settings for each built-in plugin, pointing at these fakes.
    pub fn plugin_setups(&self) -> Vec<PluginSetup> {
        let (tenant, client_id, client_secret) = self.graph.credentials();
        let (tenant_u, client_id_u, client_secret_u) =
            (tenant.clone(), client_id.clone(), client_secret.clone());
        vec![
            PluginSetup {
                id: "m365-revoke",
                allowed_outbound_hosts: vec![self.graph_url.clone()],
                config: vec![
                    ("tenant-id".into(), tenant),
                    ("client-id".into(), client_id),
                    ("login-base".into(), self.graph_url.clone()),
                    ("graph-base".into(), self.graph_url.clone()),
                ],
                secrets: vec![("client-secret".into(), client_secret)],
            },
            PluginSetup {
                id: "scim-deprovision",
                allowed_outbound_hosts: vec![origin(&self.scim_url)],
                config: vec![("base".into(), self.scim_url.clone())],
                secrets: vec![("bearer-token".into(), self.scim.token())],
            },
            self.csd_setup(),
            PluginSetup {
                id: "m365-usage",
                // Graph, its login and the report download are all this one fake.
                allowed_outbound_hosts: vec![self.graph_url.clone()],
                config: vec![
                    ("tenant-id".into(), tenant_u),
                    ("client-id".into(), client_id_u),
                    ("login-base".into(), self.graph_url.clone()),
                    ("graph-base".into(), self.graph_url.clone()),
                ],
                secrets: vec![("client-secret".into(), client_secret_u)],
            },
            PluginSetup {
                id: "csd-inventory",
                ..self.csd_setup()
            },
            PluginSetup {
                id: "manual-task",
                allowed_outbound_hosts: vec![],
                config: vec![("assignee".into(), "tech".into())],
                secrets: vec![],
            },
        ]
    }

    /// csd-uninstall with the static `api-token`, or, once the CSD fake accepts the fake
    /// Graph's tokens ([`CsdState::accept_tokens_from`]), with OAuth client credentials from the
    /// fake Graph's login.
    fn csd_setup(&self) -> PluginSetup {
        let mut config = vec![
            ("base".into(), self.csd_url.clone()),
            ("poll-after-secs".into(), "5".into()),
        ];
        let Some(issuer) = self.csd.token_issuer() else {
            return PluginSetup {
                id: "csd-uninstall",
                allowed_outbound_hosts: vec![self.csd_url.clone()],
                config,
                secrets: vec![("api-token".into(), self.csd.token())],
            };
        };
        let (tenant, client_id, client_secret) = issuer.credentials();
        config.extend([
            ("tenant-id".into(), tenant),
            ("client-id".into(), client_id),
            ("login-base".into(), self.graph_url.clone()),
        ]);
        PluginSetup {
            id: "csd-uninstall",
            allowed_outbound_hosts: vec![self.csd_url.clone(), self.graph_url.clone()],
            config,
            secrets: vec![("client-secret".into(), client_secret)],
        }
    }

    /// Copies each built plugin (`built/<id>/plugin.wasm`, as `plugins/build.sh` lays them out)
    /// to `into/<id>/` with a manifest pointing at these fakes. Secrets are written to files
    /// under `into/.secrets/` and granted through `file:` sources, as an operator would.
    pub fn install_plugins(&self, built: &Path, into: &Path) -> std::io::Result<()> {
        self.install_plugins_with(built, into, &[])
    }

    /// [`install_plugins`](Self::install_plugins) with `(plugin id, key, value)` config overrides.
    pub fn install_plugins_with(
        &self,
        built: &Path,
        into: &Path,
        extra_config: &[(&str, &str, &str)],
    ) -> std::io::Result<()> {
        let secrets_dir = into.join(".secrets");
        std::fs::create_dir_all(&secrets_dir)?;
        for setup in self.plugin_setups() {
            let dir = into.join(setup.id);
            std::fs::create_dir_all(&dir)?;
            std::fs::copy(
                built.join(setup.id).join("plugin.wasm"),
                dir.join("plugin.wasm"),
            )?;
            let mut config = setup.config.clone();
            for (id, key, value) in extra_config {
                if *id == setup.id {
                    config.retain(|(k, _)| k != key);
                    config.push(((*key).to_owned(), (*value).to_owned()));
                }
            }
            let mut toml = String::new();
            let _ = writeln!(toml, "id = {}", quote(setup.id));
            let _ = writeln!(toml, "component = \"plugin.wasm\"");
            let _ = writeln!(toml, "deadline_ms = 10000");
            let hosts: Vec<String> = setup
                .allowed_outbound_hosts
                .iter()
                .map(|h| quote(h))
                .collect();
            let _ = writeln!(toml, "allowed_outbound_hosts = [{}]", hosts.join(", "));
            let names: Vec<String> = setup.secrets.iter().map(|(n, _)| quote(n)).collect();
            let _ = writeln!(toml, "secrets = [{}]", names.join(", "));
            let _ = writeln!(toml, "\n[config]");
            for (key, value) in &config {
                let _ = writeln!(toml, "{} = {}", quote(key), quote(value));
            }
            if !setup.secrets.is_empty() {
                let _ = writeln!(toml, "\n[secret_sources]");
                for (name, value) in &setup.secrets {
                    let file = secrets_dir.join(format!("{}-{name}", setup.id));
                    std::fs::write(&file, value)?;
                    let source = format!("file:{}", file.display());
                    let _ = writeln!(toml, "{} = {}", quote(name), quote(&source));
                }
            }
            std::fs::write(dir.join("reclaim-plugin.toml"), toml)?;
        }
        Ok(())
    }
}

/// `scheme://host:port` of a URL, as manifests grant hosts.
fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Shared helpers for the fakes' handlers.
pub(crate) mod util {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    /// A poisoned lock only means another handler panicked; the data is still usable for a fake.
    pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn bearer(headers: &HeaderMap) -> Option<&str> {
        headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
    }

    pub fn json(status: StatusCode, value: serde_json::Value) -> Response {
        (status, axum::Json(value)).into_response()
    }

    /// `name eq 'value'` or `name eq "value"` (OData and SCIM filters), for the one attribute
    /// each fake filters on.
    pub fn filter_eq(filter: &str, attribute: &str) -> Option<String> {
        let rest = filter.trim().strip_prefix(attribute)?.trim_start();
        let rest = rest.strip_prefix("eq")?.trim();
        if let Some(inner) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            return Some(inner.replace("''", "'"));
        }
        serde_json::from_str::<String>(rest).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_toml_and_origins() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(origin("http://127.0.0.1:9/scim/v2"), "http://127.0.0.1:9");
        assert_eq!(
            util::filter_eq("deviceName eq 'PC ''1'''", "deviceName").as_deref(),
            Some("PC '1'")
        );
        assert_eq!(
            util::filter_eq("userName eq \"a@b.c\"", "userName").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(util::filter_eq("other eq 'x'", "userName"), None);
    }
}
