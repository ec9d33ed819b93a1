//! Building the application over DynamoDB and SES, once per Lambda process: the four
//! binaries call [`build`] in `main` and their handlers borrow what it returns, so a cold
//! start pays for clients, configuration and secrets once and every invocation is cheap.

use crate::config::{sdk_config, AwsSettings, ConfigError, LinkKeySource};
use crate::dynamo::DynamoStore;
use crate::ses::SesMailer;
use async_trait::async_trait;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;
use reclaim_api::{App, AuthError, Authenticate, HmacLinkSigner, Ports, Settings};
use reclaim_workflow::ports::{Clock, Revoker, SystemClock};
use std::sync::Arc;

/// Everything a function needs, built once.
#[derive(Clone, Debug)]
pub struct Wiring {
    pub app: App,
    pub store: DynamoStore,
    pub settings: AwsSettings,
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("link-signing key: {0}")]
    LinkKey(String),
}

/// Reads the environment and builds the application over DynamoDB and SES with `revoker`.
pub async fn build(revoker: Arc<dyn Revoker>) -> Result<Wiring, WiringError> {
    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config().await;
    let key = match &settings.link_key {
        LinkKeySource::Inline(k) => k.clone(),
        LinkKeySource::Secret(id) => secret(&sdk, id).await?,
    };
    let signer = HmacLinkSigner::new(key.as_bytes()).map_err(WiringError::LinkKey)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &settings.table);
    let mailer = SesMailer::new(
        aws_sdk_sesv2::Client::new(&sdk),
        store.clone(),
        settings.sender.clone(),
        settings.configuration_set.clone(),
        clock.clone(),
    );
    Ok(Wiring {
        app: app(
            store.clone(),
            Arc::new(mailer),
            revoker,
            clock,
            Arc::new(signer),
            &settings,
        ),
        store,
        settings,
    })
}

/// The application over an existing store and mailer (tests pass their own clock).
pub fn app(
    store: DynamoStore,
    mailer: Arc<dyn reclaim_workflow::ports::Mailer>,
    revoker: Arc<dyn Revoker>,
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
            rules: shared,
            mailer,
            revoker,
            clock,
            signer,
        },
        Settings {
            public_url: settings.public_url.clone(),
            link_ttl_days: settings.link_ttl_days,
            outbox_page: false,
        },
    )
}

/// The link-signing key from Secrets Manager (a secret string), read once at init.
async fn secret(sdk: &aws_config::SdkConfig, id: &str) -> Result<String, WiringError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| WiringError::LinkKey(crate::error::describe(&e)))?;
    out.secret_string()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| WiringError::LinkKey(format!("secret {id} has no string value")))
}

/// The caller as API Gateway's JWT authorizer established it: the authorizer has already
/// checked the token's signature, issuer, audience and expiry, and hands the claims to the
/// function in the request context. The configured claim (`sub` by default) is the user id;
/// the directory gives that user's roles.
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
}

#[async_trait]
impl Authenticate for JwtClaims {
    async fn user_id(&self, parts: &Parts) -> Result<Option<String>, AuthError> {
        let Some(RequestContext::ApiGatewayV2(ctx)) = parts.extensions.get::<RequestContext>()
        else {
            return Ok(None);
        };
        Ok(ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get(&self.claim))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()))
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
