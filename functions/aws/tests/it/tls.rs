//! The functions' AWS calls still verify the server's certificate now that the roots they
//! trust are compiled in (`src/tls.rs`): a server on loopback whose certificate chains to a
//! test CA that no root program includes is refused by the very HTTP client the functions
//! use, while a client that trusts that CA talks to the same server (so the refusal is the
//! verification's, not a broken server's). Needs no emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::config::Credentials;
use reclaim_aws::config::TlsRoots;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/tls/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A TLS server on loopback presenting `localhost-cert.pem` (for `localhost` and 127.0.0.1,
/// issued by `test-ca.pem`); it completes handshakes and closes.
async fn serve() -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> =
        [fixture("localhost-cert.pem"), fixture("test-ca.pem")]
            .iter()
            .map(|pem| CertificateDer::from_pem_slice(pem).unwrap())
            .collect();
    let key = PrivateKeyDer::from_pem_slice(&fixture("localhost-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_server_no_trusted_root_vouches_for_is_refused() {
    let addr = serve().await;

    // The control: trusting the test CA, a rustls client completes the handshake.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&fixture("test-ca.pem")).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("the test server completes a handshake with a client that trusts its CA");

    // The functions' client, with the compiled-in roots, refuses the same server.
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(format!("https://{addr}"))
        .http_client(reclaim_aws::tls::http_client(TlsRoots::Embedded).unwrap())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let err = aws_sdk_secretsmanager::Client::new(&sdk)
        .get_secret_value()
        .secret_id("reclaim/link-key")
        .send()
        .await
        .expect_err("a certificate no embedded root issued must be refused");
    let why = reclaim_aws::error::describe(&err);
    assert!(
        why.contains("UnknownIssuer"),
        "refused, but not for the certificate: {why}"
    );
}
