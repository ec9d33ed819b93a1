//! Shared by the host's integration tests: builds the guests once per test binary, lays out
//! plugin directories, and serves a tiny HTTP "vendor" on loopback.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reclaim_host::{AppliesTo, HostConfig, Justification, PluginHost, Request, Software, User};

/// The built test components.
pub struct Guests {
    pub hostile: PathBuf,
    pub wrong_world: PathBuf,
    /// A usage source that also reclaims (`reclaimer-and-source`).
    pub source_guest: PathBuf,
    /// Built for wasm32-wasip2 (std talks WASI: stderr, env, args). False on the Debian
    /// fallback (wasm32-unknown-unknown), where those std calls are stubs.
    pub wasi_std: bool,
}

/// Builds host/tests/guests with host/tests/build-guests.sh (once per test binary).
pub fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build-guests.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run build-guests.sh");
        assert!(out.status.success(), "building the test guests failed");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let dir = PathBuf::from(stdout.lines().last().expect("guest dir").trim());
        let path = std::fs::read_to_string(dir.join("BUILD_PATH")).unwrap_or_default();
        Guests {
            hostile: dir.join("hostile.wasm"),
            wrong_world: dir.join("wrong_world.wasm"),
            source_guest: dir.join("source_guest.wasm"),
            wasi_std: path.trim() != "debian",
        }
    })
}

/// A compile cache shared by the tests of one binary, so each component compiles once.
pub fn shared_cache() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_path_buf()
}

/// Writes a plugin directory: the component as plugin.wasm plus the given manifest.
pub fn plugin_dir(parent: &Path, name: &str, wasm: &Path, manifest: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(wasm, dir.join("plugin.wasm")).unwrap();
    std::fs::write(dir.join("reclaim-plugin.toml"), manifest).unwrap();
    dir
}

/// A host config for tests: shared cache, loopback allowed unless a test says otherwise.
pub fn test_config() -> HostConfig {
    HostConfig {
        cache_dir: Some(shared_cache()),
        allow_private_addresses: true,
        ..HostConfig::default()
    }
}

/// A host with the hostile guest loaded under `manifest` (its id must be "hostile").
pub fn hostile_host(cfg: HostConfig, manifest: &str) -> (PluginHost, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path(), "hostile", &guests().hostile, manifest);
    let host = PluginHost::new(cfg).unwrap();
    host.load_dir(&dir).unwrap();
    (host, tmp)
}

/// A request whose candidate id picks the hostile guest's behaviour.
pub fn req(behaviour: &str) -> Request {
    Request {
        candidate_id: behaviour.to_string(),
        idempotency_key: format!("{behaviour}/1/revoke"),
        applies_to: AppliesTo::Subscription,
        user: User {
            id: "u-1".into(),
            email: Some("ann@example.com".into()),
            upn: Some("ann@example.com".into()),
        },
        software: Software {
            publisher: "Microsoft".into(),
            product: "Microsoft 365 E5".into(),
            version: None,
            sku: Some("c7df2760".into()),
            subscription_id: None,
        },
        device: None,
        justification: Justification::Unused,
        dry_run: false,
    }
}

/// Proves the host still works after a hostile call: a well-behaved call succeeds.
pub async fn assert_still_serves(host: &PluginHost) {
    let out = host.reclaim("hostile", &req("good")).await;
    assert_eq!(
        out,
        Ok(reclaim_host::Outcome::Removed("ok good".into())),
        "the host must keep serving after a hostile call"
    );
}

/// A loopback HTTP server answering every request with `body`; counts connections.
pub struct FakeVendor {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
}

impl FakeVendor {
    pub fn start(body: Vec<u8>, delay: Duration) -> FakeVendor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = stream.read(&mut buf);
                    std::thread::sleep(delay);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                });
            }
        });
        FakeVendor { port, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
