//! What plugins and the host write to the log: guest log lines and stdout/stderr arrive tagged
//! with the plugin id, secret values never do, and refused requests are logged.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use reclaim_host::PluginError;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `f` on a current-thread runtime with every event of this thread captured.
fn with_captured_logs<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f());
    captured.text()
}

#[test]
fn guest_output_is_logged_with_secret_values_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let secret_file = tmp.path().join("token");
    std::fs::write(&secret_file, "s3cr3t-t0ken").unwrap();
    let manifest = format!(
        "id = \"hostile\"\nsecrets = [\"api-token\"]\n[secret_sources]\napi-token = \"file:{}\"\n",
        secret_file.display()
    );
    let (host, _tmp) = hostile_host(test_config(), &manifest);
    let logs = with_captured_logs(|| async {
        let err = host
            .reclaim("hostile", &req("secret:api-token"))
            .await
            .unwrap_err();
        assert!(matches!(err, PluginError::Permanent { .. }));
        let err = host.reclaim("hostile", &req("trap")).await.unwrap_err();
        assert!(matches!(err, PluginError::Crashed { .. }));
    });
    assert!(
        !logs.contains("s3cr3t-t0ken"),
        "secret leaked into logs:\n{logs}"
    );
    assert!(logs.contains("the secret is <redacted>"), "{logs}");
    if guests().wasi_std {
        assert!(logs.contains("stderr also sees <redacted>"), "{logs}");
    }
    assert!(logs.contains("plugin=\"hostile\""), "{logs}");
    if guests().wasi_std {
        assert!(
            logs.contains("deliberate panic in the hostile guest"),
            "a guest panic goes to the log: {logs}"
        );
    }
}

#[test]
fn refused_outbound_requests_are_logged_without_their_query() {
    let manifest = "id = \"hostile\"\n[config]\nx = \"http://127.0.0.1:9/steal?token=abc123\"\n";
    let (host, _tmp) = hostile_host(test_config(), manifest);
    let logs = with_captured_logs(|| async {
        let err = host.reclaim("hostile", &req("http:x")).await.unwrap_err();
        assert!(matches!(err, PluginError::Permanent { .. }));
    });
    assert!(logs.contains("outbound request refused"), "{logs}");
    assert!(logs.contains("http://127.0.0.1:9/steal"), "{logs}");
    assert!(
        !logs.contains("abc123"),
        "query strings stay out of logs: {logs}"
    );
}
