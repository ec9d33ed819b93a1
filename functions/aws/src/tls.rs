//! Which certificate authorities the functions trust when they call AWS over TLS, and the
//! HTTP client every AWS client of a function shares.
//!
//! The SDK's default client reads the operating system's root certificates when the first
//! client is made (rustls-native-certs: the CA bundle, then every file of the certificate
//! directory, 292 on Debian) and turns them into a rustls root store again for every client
//! made. On a cold start that was most of the SDK's set-up (5–6.5 ms of a 9–12 ms init,
//! BENCHMARKS.md), paid before the function could take its first event, for a trust decision
//! that does not depend on the machine.
//!
//! So by default the functions trust Mozilla's root program, compiled in from the
//! `webpki-root-certs` crate: the rustls project's copy of the roots Mozilla includes for TLS
//! server authentication, generated from the CCADB report (the same project's `webpki-roots`,
//! the same list as anchors only, already serves the workspace's sign-in client). No file is
//! read at start. It is safe to rely on for AWS: the service endpoints the functions call
//! (DynamoDB, SES, Secrets Manager, and STS when the SDK needs it) present certificates from
//! Amazon Trust Services, whose five roots (Amazon Root CA 1–4 and Starfield Services Root
//! Certificate Authority – G2, the five Amazon Trust Services asks custom trust stores to
//! include) are all in Mozilla's program, and Amazon Linux's own CA bundle is built from the
//! same Mozilla list. Verification itself is unchanged: the SDK's rustls client, with the
//! SDK's cipher suites, checks the chain, validity and host name exactly as before, against
//! this list of anchors instead of the files. The list is as fresh as the crate version in
//! `Cargo.lock` (a root Mozilla removes stays trusted until the next build; roots change
//! rarely), and a test (`tests/it/tls.rs`) shows a server no listed root vouches for is refused.
//!
//! `RECLAIM_TLS_ROOTS=system` brings back the operating system's store (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honoured there) for a deployment whose AWS traffic meets a certificate
//! from a CA outside Mozilla's program: a TLS-inspecting proxy with a private CA, or a region
//! whose endpoints chain to roots not yet in the program.

use crate::config::ConfigError;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use base64::Engine as _;
use std::sync::OnceLock;

/// `embedded` (default) or `system`: which roots the functions trust.
pub const TLS_ROOTS_ENV: &str = "RECLAIM_TLS_ROOTS";

/// The certificate authorities AWS calls are verified against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsRoots {
    /// Mozilla's roots, compiled in (`webpki-root-certs`): nothing is read at start.
    #[default]
    Embedded,
    /// The operating system's store, read when the first client is made.
    System,
}

impl TlsRoots {
    /// Reads [`TLS_ROOTS_ENV`] from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse(std::env::var(TLS_ROOTS_ENV).ok().as_deref())
    }

    /// Unset or empty is [`TlsRoots::Embedded`]; anything but the two names is refused, so a
    /// typo never silently changes whom the function trusts.
    pub fn parse(value: Option<&str>) -> Result<Self, ConfigError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(TlsRoots::Embedded),
            Some(v) if v.eq_ignore_ascii_case("embedded") => Ok(TlsRoots::Embedded),
            Some(v) if v.eq_ignore_ascii_case("system") => Ok(TlsRoots::System),
            Some(v) => Err(ConfigError(format!(
                "{TLS_ROOTS_ENV}={v}: use embedded (the default) or system"
            ))),
        }
    }
}

/// The compiled-in roots as one PEM document, made once per process: the SDK's trust store
/// takes PEM, and every connector it builds parses it again.
fn embedded_pem() -> &'static [u8] {
    static PEM: OnceLock<Vec<u8>> = OnceLock::new();
    PEM.get_or_init(|| {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2_200);
        for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            let text = b64.encode(cert.as_ref());
            for line in text.as_bytes().chunks(64) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            out.extend_from_slice(b"-----END CERTIFICATE-----\n");
        }
        out
    })
}

/// The trust store for `roots`.
pub fn trust_store(roots: TlsRoots) -> TrustStore {
    match roots {
        TlsRoots::Embedded => TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(embedded_pem()),
        TlsRoots::System => TrustStore::default(),
    }
}

/// The HTTPS client every AWS client of the process shares: the SDK's own default client
/// (hyper 1 over rustls with aws-lc, the SDK's cipher suites, the connect and read timeouts
/// each client's configuration asks for, the proxy from the environment), trusting `roots`,
/// whose connector is built when the first request needs it ([`ConnectorOnFirstUse`]).
pub fn http_client(roots: TlsRoots) -> Result<SharedHttpClient, ConfigError> {
    let tls = TlsContext::builder()
        .with_trust_store(trust_store(roots))
        .build()
        .map_err(|e| ConfigError(format!("TLS configuration: {e}")))?;
    let sdk_client = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut conn = ConnectorBuilder::default()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls.clone());
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    });
    Ok(SharedHttpClient::new(ConnectorOnFirstUse(sdk_client)))
}

/// The SDK's client, less one thing: making an SDK client (`Client::from_conf`) no longer
/// builds a throw-away connector to check its configuration early.
///
/// The SDK does that so that loading the system's certificates happens when a client is made
/// rather than at its first request; each such connector builds a rustls configuration and
/// parses the whole trust store again (0.65 ms for the embedded PEM, measured), and a function
/// makes three clients. The connector that requests use is built by the SDK's client on the
/// first request and cached for every client of the process (by timeout settings, which
/// all share), so the store is parsed once per process, when a connection is first needed.
/// Nothing about verification changes: every request still goes through that connector.
#[derive(Debug)]
struct ConnectorOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectorOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_names_the_roots_and_refuses_anything_else() {
        assert_eq!(TlsRoots::parse(None).unwrap(), TlsRoots::Embedded);
        assert_eq!(TlsRoots::parse(Some(" ")).unwrap(), TlsRoots::Embedded);
        assert_eq!(
            TlsRoots::parse(Some("embedded")).unwrap(),
            TlsRoots::Embedded
        );
        assert_eq!(TlsRoots::parse(Some("System")).unwrap(), TlsRoots::System);
        let e = TlsRoots::parse(Some("none")).unwrap_err();
        assert!(e.to_string().contains(TLS_ROOTS_ENV), "{e}");
    }

    /// The roots AWS endpoints chain to (Amazon Trust Services, and the Starfield root that
    /// cross-signs them) are among the compiled-in ones, and every one of them is a
    /// certificate the PEM document carries whole.
    #[test]
    fn the_embedded_roots_include_the_ones_aws_endpoints_chain_to() {
        let pem = String::from_utf8(embedded_pem().to_vec()).unwrap();
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----").count(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .any(|c| c.as_ref().windows(name.len()).any(|w| w == name.as_bytes())),
                "{name} is not among the embedded roots"
            );
        }
    }
}
