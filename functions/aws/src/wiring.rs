//! Building the application over DynamoDB and SES, once per Lambda process: the five
//! binaries call [`build`] (or [`build_loading`], [`build_plugins`]) in `main` and their
//! handlers borrow what it returns, so a cold start pays for clients, configuration, secrets
//! and plugins once and every invocation is cheap.
//!
//! Every AWS client a function uses comes from its [`Clients`], the one place where clients
//! are made: when calls are being recorded ([`crate::calls`]), each client carries the
//! recorder, tagged with the function, so what a function's role must allow can be checked
//! against `infra/template.yaml` (`tests/it/roles.rs`).

use crate::calls::CallLog;
pub use crate::calls::Function;
use crate::config::{sdk_config, AwsSettings, ConfigError, LinkKeySource, TlsRoots};
use crate::dynamo::DynamoStore;
use crate::ses::SesMailer;
use async_trait::async_trait;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;
use reclaim_api::http::ui::oidc::Oidc;
use reclaim_api::{
    admin_routes, ApiState, App, AuthError, Authenticate, HmacLinkSigner, Ports, Settings,
};
use reclaim_host::PluginHost;
use reclaim_workflow::ports::{Clock, NoSources, Revoker, SystemClock, UsageSources};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The AWS clients of one function: every client its code uses is made here, with the
/// function's call recorder when there is one.
///
/// Each client is made once, when first asked for, and shared by every clone of these
/// `Clients` (an SDK client is a handle: cloning it shares its connection pool). Making a
/// client builds its HTTPS connector and parses the trust store, so a cold start pays for it
/// once per service it uses, and never for a service it does not.
#[derive(Clone, Debug)]
pub struct Clients {
    function: Function,
    sdk: aws_config::SdkConfig,
    calls: Option<CallLog>,
    made: Arc<Made>,
}

/// The clients made so far.
#[derive(Debug, Default)]
struct Made {
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    ses: OnceLock<aws_sdk_sesv2::Client>,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
}

impl Clients {
    /// Clients for `function` from `sdk`, recording into `calls` when given.
    pub fn new(function: Function, sdk: &aws_config::SdkConfig, calls: Option<CallLog>) -> Self {
        Clients {
            function,
            sdk: sdk.clone(),
            calls,
            made: Arc::default(),
        }
    }

    pub fn function(&self) -> Function {
        self.function
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.made
            .dynamodb
            .get_or_init(|| {
                let mut conf = aws_sdk_dynamodb::config::Builder::from(&self.sdk);
                if let Some(log) = &self.calls {
                    conf = conf.interceptor(log.interceptor(self.function));
                }
                aws_sdk_dynamodb::Client::from_conf(conf.build())
            })
            .clone()
    }

    pub fn ses(&self) -> aws_sdk_sesv2::Client {
        self.made
            .ses
            .get_or_init(|| {
                let mut conf = aws_sdk_sesv2::config::Builder::from(&self.sdk);
                if let Some(log) = &self.calls {
                    conf = conf.interceptor(log.interceptor(self.function));
                }
                aws_sdk_sesv2::Client::from_conf(conf.build())
            })
            .clone()
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        self.made
            .secrets
            .get_or_init(|| {
                let mut conf = aws_sdk_secretsmanager::config::Builder::from(&self.sdk);
                if let Some(log) = &self.calls {
                    conf = conf.interceptor(log.interceptor(self.function));
                }
                aws_sdk_secretsmanager::Client::from_conf(conf.build())
            })
            .clone()
    }
}

/// Everything a function needs, built once.
#[derive(Clone, Debug)]
pub struct Wiring {
    pub app: App,
    /// Where further clients come from at init (the effects function's plugin secrets).
    pub clients: Clients,
    pub store: DynamoStore,
    pub settings: AwsSettings,
    /// Signs the workspace's form tokens; the same in every instance of the function.
    pub session_key: SessionKeyBytes,
    /// The `api` function's sign-in with the identity provider, when configured.
    pub oidc: Option<Arc<Oidc>>,
    /// The plugin host behind the application's usage sources (only the `connectors`
    /// function has one): its manifests say how long a page may take, which the function
    /// keeps free at the end of each invocation.
    pub sources: Option<PluginHost>,
}

/// What a function's plugins give its application: the revoker its effects run with
/// (`effects`), and the connectors its runner collects from (`connectors`; every other
/// function runs with [`NoSources`], so only the function whose role reads the vendors'
/// usage ever collects).
pub struct PluginPorts {
    pub revoker: Arc<dyn Revoker>,
    /// `None`: no connectors.
    pub sources: Option<PluginHost>,
}

impl std::fmt::Debug for PluginPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPorts")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl PluginPorts {
    /// A revoker and no connectors.
    pub fn revoker(revoker: Arc<dyn Revoker>) -> Self {
        PluginPorts {
            revoker,
            sources: None,
        }
    }
}

/// The workspace's session key, derived from the link-signing key so that every Lambda
/// instance (and every cold start) accepts the form tokens another one rendered, without a
/// second secret to provision. Never printed.
#[derive(Clone)]
pub struct SessionKeyBytes([u8; 32]);

impl std::fmt::Debug for SessionKeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeyBytes(..)")
    }
}

impl SessionKeyBytes {
    /// See [`SessionKey::derive`](reclaim_api::http::ui::session::SessionKey::derive).
    pub fn derive(link_key: &[u8]) -> Self {
        SessionKeyBytes(reclaim_api::http::ui::session::SessionKey::derive(link_key))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("link-signing key: {0}")]
    LinkKey(String),
    #[error("sign-in with the identity provider: {0}")]
    Oidc(String),
    #[error("plugins: {0}")]
    Plugins(#[from] reclaim_host::HostError),
    #[error("plugins: loading stopped: {0}")]
    PluginsLoading(#[from] tokio::task::JoinError),
}

/// Reads the environment and builds `function`'s application over DynamoDB and SES with
/// `revoker`. Calls are recorded only when [`crate::calls::CALL_LOG_ENV`] names a file.
pub async fn build(function: Function, revoker: Arc<dyn Revoker>) -> Result<Wiring, WiringError> {
    build_loading(function, |_| std::future::ready(Ok(revoker))).await
}

/// [`build`] for a function whose revoker takes a while to make (the `effects` function's
/// plugins): `revoker` is given the function's clients as soon as the SDK is configured, and
/// what it returns is awaited together with the secret reads, so the two overlap instead of
/// adding up before the function can take its first event.
pub async fn build_loading<F, Fut>(function: Function, revoker: F) -> Result<Wiring, WiringError>
where
    F: FnOnce(Clients) -> Fut,
    Fut: Future<Output = Result<Arc<dyn Revoker>, WiringError>>,
{
    build_plugins(function, |clients| {
        let revoker = revoker(clients);
        async move { revoker.await.map(PluginPorts::revoker) }
    })
    .await
}

/// [`build_loading`] for a function whose plugins also give its application usage sources
/// (the `connectors` function): `plugins` is given the function's clients as soon as the SDK
/// is configured, and its revoker and connectors are awaited together with the secret reads.
pub async fn build_plugins<F, Fut>(function: Function, plugins: F) -> Result<Wiring, WiringError>
where
    F: FnOnce(Clients) -> Fut,
    Fut: Future<Output = Result<PluginPorts, WiringError>>,
{
    let started = Instant::now();
    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config(TlsRoots::from_env()?).await?;
    let clients = Clients::new(function, &sdk, CallLog::from_env());
    let plugins = plugins(clients.clone());
    assemble(clients, settings, plugins, started).await
}

/// [`build`] over given clients and settings (tests pass the emulator's configuration and a
/// [`CallLog`]). `started` is when the cold start began, for the log line.
pub async fn build_with(
    clients: Clients,
    settings: AwsSettings,
    revoker: Arc<dyn Revoker>,
    started: Instant,
) -> Result<Wiring, WiringError> {
    build_with_plugins(clients, settings, PluginPorts::revoker(revoker), started).await
}

/// [`build_with`] with the plugins' revoker and connectors (tests wire the `connectors`
/// function with the plugins they loaded).
pub async fn build_with_plugins(
    clients: Clients,
    settings: AwsSettings,
    plugins: PluginPorts,
    started: Instant,
) -> Result<Wiring, WiringError> {
    assemble(clients, settings, std::future::ready(Ok(plugins)), started).await
}

/// Runs `fut`, timing it.
async fn timed<T>(fut: impl Future<Output = T>) -> (T, Duration) {
    let at = Instant::now();
    let out = fut.await;
    (out, at.elapsed())
}

/// The secrets (the link key; the `api` function's identity provider client secret), the
/// plugins and the store's clients at once, then the application over them. Each secret is one
/// Secrets Manager round trip; none depends on another, so the slowest of them, not their sum,
/// is what init waits for.
async fn assemble(
    clients: Clients,
    settings: AwsSettings,
    plugins: impl Future<Output = Result<PluginPorts, WiringError>>,
    started: Instant,
) -> Result<Wiring, WiringError> {
    let sdk_done = Instant::now();
    let link_key = async {
        match &settings.link_key {
            LinkKeySource::Inline(k) => Ok::<_, WiringError>(k.clone()),
            LinkKeySource::Secret(id) => secret(&clients, id).await.map_err(WiringError::LinkKey),
        }
    };
    // Only the `api` function signs people in, and only its role may read the client secret.
    let oidc = async {
        match (&settings.oidc, clients.function()) {
            (Some(o), Function::Api) => oidc(&clients, o, &settings.public_url)
                .await
                .map(|o| Some(Arc::new(o))),
            _ => Ok::<_, WiringError>(None),
        }
    };
    // The store's and the mailer's clients need no secret: they are made while the secret
    // requests are in flight (this is polled after their first poll has sent them).
    let parts = async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = DynamoStore::new(clients.dynamodb(), &settings.table);
        let mailer = SesMailer::new(
            clients.ses(),
            store.clone(),
            settings.sender.clone(),
            settings.configuration_set.clone(),
            clock.clone(),
        );
        (clock, store, mailer)
    };
    let ((key, key_took), (oidc, oidc_took), (plugins, revoker_took), (clock, store, mailer)) =
        tokio::join!(timed(link_key), timed(oidc), timed(plugins), parts);
    let (key, oidc, plugins) = (key?, oidc?, plugins?);
    // Only the `connectors` function collects (its role reads the vendors' secrets and
    // writes candidates on a schedule); `api` lists what it published and starts runs; the
    // others have no connectors.
    let sources: Arc<dyn UsageSources> = match (&plugins.sources, clients.function()) {
        (Some(host), Function::Connectors) => Arc::new(host.clone()),
        // The workspace and the API list the connectors and start runs from the list the
        // `connectors` function published.
        (_, Function::Api) => Arc::new(crate::dynamo::PublishedSources(store.clone())),
        _ => Arc::new(NoSources),
    };
    let clients_function = clients.function();
    let joined = Instant::now();
    let signer = HmacLinkSigner::new(key.as_bytes()).map_err(WiringError::LinkKey)?;
    let session_key = SessionKeyBytes::derive(key.as_bytes());
    let app = app_with_sources(
        store.clone(),
        Arc::new(mailer),
        plugins.revoker,
        sources,
        clock,
        Arc::new(signer),
        &settings,
    );
    // Cold starts are billed and felt: say where the time went (CloudWatch keeps it).
    tracing::info!(
        sdk_config_ms = ms(sdk_done - started),
        link_key_ms = ms(key_took),
        oidc_secret_ms = ms(oidc_took),
        revoker_ms = ms(revoker_took),
        app_ms = ms(joined.elapsed()),
        wiring_ms = ms(started.elapsed()),
        link_key_from = match settings.link_key {
            LinkKeySource::Inline(_) => "environment",
            LinkKeySource::Secret(_) => "secrets-manager",
        },
        function = %clients.function(),
        "init done"
    );
    Ok(Wiring {
        app,
        store,
        settings,
        session_key,
        clients,
        oidc,
        sources: plugins
            .sources
            .filter(|_| clients_function == Function::Connectors),
    })
}

/// The relying party of the `api` function: its client secret read once at init.
async fn oidc(
    clients: &Clients,
    o: &crate::config::OidcSettings,
    public_url: &str,
) -> Result<Oidc, WiringError> {
    use reclaim_api::http::ui::oidc::{MatchClaim, OidcConfig};
    let client_secret = match &o.client_secret {
        LinkKeySource::Inline(s) => s.clone(),
        LinkKeySource::Secret(id) => secret(clients, id).await.map_err(WiringError::Oidc)?,
    };
    let claim = MatchClaim::parse(&o.claim).ok_or_else(|| {
        WiringError::Oidc(format!(
            "RECLAIM_OIDC_CLAIM={}: use email, sub, preferred_username or upn",
            o.claim
        ))
    })?;
    Oidc::new(OidcConfig {
        issuer: o.issuer.clone(),
        client_id: o.client_id.clone(),
        client_secret,
        redirect_url: OidcConfig::redirect_for(public_url),
        claim,
        display_name: o.name.clone(),
    })
    .map_err(|e| WiringError::Oidc(e.to_string()))
}

/// The `api` function's Router: the JSON API, whose callers the gateway's verified JWT claims
/// name (`claim`, `sub` by default), and the workspace pages, whose people sign in with the
/// identity provider into sessions kept in DynamoDB; the session key is shared by every
/// instance.
pub fn api_router(w: &Wiring) -> axum::Router {
    // API Gateway terminates TLS and sets X-Forwarded-For and -Proto: cookies get `Secure`.
    let mut state = ApiState::new(
        w.app.clone(),
        Arc::new(JwtClaims::new(&w.settings.user_claim)),
    )
    .behind_proxy();
    state = match state.with_session_key(w.session_key.as_bytes()) {
        Ok(s) => s,
        Err(e) => unreachable!("a 32-byte derived key is long enough: {e}"),
    };
    if let Some(oidc) = &w.oidc {
        state = state.with_oidc(oidc.clone());
    }
    admin_routes(state)
}

/// The application over an existing store and mailer (tests pass their own clock), with no
/// connectors.
pub fn app(
    store: DynamoStore,
    mailer: Arc<dyn reclaim_workflow::ports::Mailer>,
    revoker: Arc<dyn Revoker>,
    clock: Arc<dyn Clock>,
    signer: Arc<dyn reclaim_workflow::ports::LinkSigner>,
    settings: &AwsSettings,
) -> App {
    app_with_sources(
        store,
        mailer,
        revoker,
        Arc::new(NoSources),
        clock,
        signer,
        settings,
    )
}

/// [`app`] whose connectors' runner collects from `sources` (the `connectors` function's
/// plugins).
pub fn app_with_sources(
    store: DynamoStore,
    mailer: Arc<dyn reclaim_workflow::ports::Mailer>,
    revoker: Arc<dyn Revoker>,
    sources: Arc<dyn UsageSources>,
    clock: Arc<dyn Clock>,
    signer: Arc<dyn reclaim_workflow::ports::LinkSigner>,
    settings: &AwsSettings,
) -> App {
    let shared = Arc::new(store);
    App::new(
        Ports {
            candidates: shared.clone(),
            tasks: shared.clone(),
            directory: shared.clone(),
            rules: shared.clone(),
            sessions: shared.clone(),
            tokens: shared.clone(),
            mailer,
            revoker,
            clock,
            signer,
            sources,
            runs: shared,
        },
        Settings {
            public_url: settings.public_url.clone(),
            link_ttl_days: settings.link_ttl_days,
            currency: settings.currency.clone(),
            price_period: settings.price_period,
        },
    )
}

/// A secret string from Secrets Manager (the link-signing key, the identity provider's client
/// secret), read once at init.
async fn secret(clients: &Clients, id: &str) -> Result<String, String> {
    let out = clients
        .secrets()
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| crate::error::describe(&e))?;
    out.secret_string()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("secret {id} has no string value"))
}

/// The caller as API Gateway's JWT authorizer established it: the authorizer has already
/// checked the token's signature, issuer, audience and expiry, and hands the claims to the
/// function in the request context. The configured claim (`sub` by default) is the user id;
/// the directory gives that user's roles.
///
/// Only the JSON API (`/api/v1`) is behind the authorizer. The workspace pages never read
/// claims: browsers sign in there with the identity provider (a session in DynamoDB).
#[derive(Clone, Debug)]
pub struct JwtClaims {
    claim: String,
}

impl JwtClaims {
    pub fn new(claim: impl Into<String>) -> Self {
        JwtClaims {
            claim: claim.into(),
        }
    }

    /// The configured claim from the request context API Gateway attached, if any. Headers
    /// are never read: only the gateway can put a request context on a request.
    fn claimed_user(&self, parts: &Parts) -> Option<String> {
        let Some(RequestContext::ApiGatewayV2(ctx)) = parts.extensions.get::<RequestContext>()
        else {
            return None;
        };
        ctx.authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get(&self.claim))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

#[async_trait]
impl Authenticate for JwtClaims {
    async fn user_id(&self, parts: &Parts) -> Result<Option<String>, AuthError> {
        Ok(self.claimed_user(parts))
    }
}

/// Logs as JSON-less plain lines without colour (CloudWatch shows escape codes literally),
/// filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}
