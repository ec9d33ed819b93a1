//! Configuration from the standard AWS environment plus a few `RECLAIM_*` variables, so the
//! same binaries run in Lambda, against an emulator (`AWS_ENDPOINT_URL`) and in tests.

pub use crate::tls::TlsRoots;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// Loads the SDK configuration once per process (credentials, region, endpoint) with the
/// retry policy every call shares: throttling and 5xx are retried by the SDK with exponential
/// backoff and jitter before an error ever reaches the store. Every client made from it shares
/// one HTTPS client that trusts `roots` ([`crate::tls`]: by default the compiled-in roots, so
/// no certificate file is read at start).
pub async fn sdk_config(roots: TlsRoots) -> Result<SdkConfig, ConfigError> {
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::tls::http_client(roots)?)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await)
}

/// What a deployment must tell the functions; read from the environment the SAM template
/// sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// The single DynamoDB table (`RECLAIM_TABLE`).
    pub table: String,
    /// The verified SES sender (`RECLAIM_SENDER`), e.g. `Reclaim <reclaim@example.com>`.
    pub sender: String,
    /// SES configuration set for delivery events (`RECLAIM_SES_CONFIGURATION_SET`), optional.
    pub configuration_set: Option<String>,
    /// Where people reach the link pages (`RECLAIM_PUBLIC_URL`): emails' links start here.
    pub public_url: String,
    /// The link-signing key itself (`RECLAIM_LINK_KEY`), or the name of the Secrets Manager
    /// secret / SSM parameter that holds it (`RECLAIM_LINK_KEY_SECRET`), read at init.
    pub link_key: LinkKeySource,
    /// Days an approver's link (and a link without a deadline) stays valid.
    pub link_ttl_days: i64,
    /// `RECLAIM_CURRENCY` (ISO 4217, default USD): shown with every amount.
    pub currency: String,
    /// `RECLAIM_PRICE_PERIOD` (monthly, yearly or one-time; default yearly): the period of
    /// imported prices whose row and rule name none.
    pub price_period: reclaim_workflow::PricePeriod,
    /// The JWT claim that names the user (`RECLAIM_USER_CLAIM`, default `sub`).
    pub user_claim: String,
    /// Sign-in to the workspace with the organisation's identity provider, when
    /// `RECLAIM_OIDC_ISSUER` is set (only the `api` function uses it).
    pub oidc: Option<OidcSettings>,
}

/// The identity provider the `api` function signs people in with.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// `RECLAIM_OIDC_ISSUER`.
    pub issuer: String,
    /// `RECLAIM_OIDC_CLIENT_ID`.
    pub client_id: String,
    /// `RECLAIM_OIDC_CLIENT_SECRET` (tests) or the Secrets Manager secret
    /// `RECLAIM_OIDC_CLIENT_SECRET_ID` (its name or ARN), read at init.
    pub client_secret: LinkKeySource,
    /// `RECLAIM_OIDC_CLAIM`: email (default), sub, preferred_username or upn.
    pub claim: String,
    /// `RECLAIM_OIDC_NAME`: what the sign-in button calls the provider.
    pub name: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &match &self.client_secret {
                    LinkKeySource::Inline(_) => "<inline>".to_string(),
                    LinkKeySource::Secret(id) => id.clone(),
                },
            )
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

/// Where the link-signing key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkKeySource {
    /// The key is in the environment (local runs, tests).
    Inline(String),
    /// A Secrets Manager secret id, fetched through the Lambda extension-free SSM/Secrets API.
    Secret(String),
}

/// A required setting is missing or unusable: the function cannot start.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl AwsSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let need = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError(format!("{k} is not set")))
        };
        let link_key = match (get("RECLAIM_LINK_KEY"), get("RECLAIM_LINK_KEY_SECRET")) {
            (Some(k), _) if !k.is_empty() => LinkKeySource::Inline(k),
            (_, Some(s)) if !s.is_empty() => LinkKeySource::Secret(s),
            _ => {
                return Err(ConfigError(
                    "set RECLAIM_LINK_KEY or RECLAIM_LINK_KEY_SECRET".into(),
                ))
            }
        };
        let link_ttl_days = match get("RECLAIM_LINK_TTL_DAYS") {
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .ok_or_else(|| ConfigError(format!("RECLAIM_LINK_TTL_DAYS={v}: 1 to 365")))?,
            None => 14,
        };
        let currency = match get("RECLAIM_CURRENCY").filter(|v| !v.trim().is_empty()) {
            Some(v) => reclaim_workflow::text::currency_code(&v)
                .map_err(|e| ConfigError(format!("RECLAIM_CURRENCY: {e}")))?,
            None => "USD".into(),
        };
        let price_period = match get("RECLAIM_PRICE_PERIOD").filter(|v| !v.trim().is_empty()) {
            Some(v) => reclaim_workflow::PricePeriod::parse(v.trim()).ok_or_else(|| {
                ConfigError(format!(
                    "RECLAIM_PRICE_PERIOD: '{v}' is not a price period: use monthly, yearly or \
                     one-time"
                ))
            })?,
            None => reclaim_workflow::PricePeriod::default(),
        };
        let oidc = match get("RECLAIM_OIDC_ISSUER").filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(issuer) => {
                let client_secret = match (
                    get("RECLAIM_OIDC_CLIENT_SECRET").filter(|s| !s.is_empty()),
                    get("RECLAIM_OIDC_CLIENT_SECRET_ID").filter(|s| !s.is_empty()),
                ) {
                    (Some(s), _) => LinkKeySource::Inline(s),
                    (None, Some(arn)) => LinkKeySource::Secret(arn),
                    (None, None) => {
                        return Err(ConfigError(
                            "RECLAIM_OIDC_ISSUER needs RECLAIM_OIDC_CLIENT_SECRET_ID".into(),
                        ))
                    }
                };
                Some(OidcSettings {
                    issuer,
                    client_id: need("RECLAIM_OIDC_CLIENT_ID")?,
                    client_secret,
                    claim: get("RECLAIM_OIDC_CLAIM")
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "email".into()),
                    name: get("RECLAIM_OIDC_NAME")
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "your organisation's account".into()),
                })
            }
        };
        Ok(AwsSettings {
            oidc,
            table: need("RECLAIM_TABLE")?,
            sender: get("RECLAIM_SENDER").unwrap_or_default(),
            configuration_set: get("RECLAIM_SES_CONFIGURATION_SET").filter(|s| !s.is_empty()),
            public_url: need("RECLAIM_PUBLIC_URL")?,
            link_key,
            link_ttl_days,
            currency,
            price_period,
            user_claim: get("RECLAIM_USER_CLAIM")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "sub".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<AwsSettings, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AwsSettings::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn required_settings_are_named_when_missing() {
        let e = from(&[("RECLAIM_LINK_KEY", "k")]).unwrap_err();
        assert!(e.to_string().contains("RECLAIM_TABLE"), "{e}");
        let e = from(&[("RECLAIM_TABLE", "t"), ("RECLAIM_PUBLIC_URL", "https://x")]).unwrap_err();
        assert!(e.to_string().contains("RECLAIM_LINK_KEY"), "{e}");
    }

    #[test]
    fn defaults_and_overrides() {
        let s = from(&[
            ("RECLAIM_TABLE", "t"),
            ("RECLAIM_PUBLIC_URL", "https://x"),
            ("RECLAIM_LINK_KEY_SECRET", "reclaim/link-key"),
        ])
        .unwrap();
        assert_eq!(s.user_claim, "sub");
        assert_eq!(s.link_ttl_days, 14);
        assert_eq!(s.link_key, LinkKeySource::Secret("reclaim/link-key".into()));
        assert_eq!(s.price_period, reclaim_workflow::PricePeriod::Yearly);
        assert!(from(&[
            ("RECLAIM_TABLE", "t"),
            ("RECLAIM_PUBLIC_URL", "https://x"),
            ("RECLAIM_LINK_KEY", "k"),
            ("RECLAIM_LINK_TTL_DAYS", "0"),
        ])
        .is_err());
    }

    #[test]
    fn the_price_period_is_read_and_a_bad_one_stops_the_start() {
        let base = [
            ("RECLAIM_TABLE", "t"),
            ("RECLAIM_PUBLIC_URL", "https://x"),
            ("RECLAIM_LINK_KEY", "k"),
        ];
        let with = |v: &'static str| {
            let mut pairs = base.to_vec();
            pairs.push(("RECLAIM_PRICE_PERIOD", v));
            from(&pairs)
        };
        assert_eq!(
            with("monthly").unwrap().price_period,
            reclaim_workflow::PricePeriod::Monthly
        );
        assert_eq!(
            with("one-time").unwrap().price_period,
            reclaim_workflow::PricePeriod::OneTime
        );
        let e = with("weekly").unwrap_err();
        assert!(e.to_string().contains("RECLAIM_PRICE_PERIOD"), "{e}");
    }
}
