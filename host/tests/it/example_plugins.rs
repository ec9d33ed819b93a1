//! The example plugins in other languages (`plugins/examples`: `python-seat-revoke` built with
//! componentize-py, `js-seat-revoke` built with componentize-js), loaded into the real host and
//! run against a seat API on loopback. Every test runs both: the same vendor answers must give
//! the workflow the same outcomes whatever language the plugin is written in.
//!
//! The test command builds them (`plugins/examples/build.sh`, which needs Python, Node and the
//! packages' registries) and exports `RECLAIM_EXAMPLE_PLUGINS_DIR`; without it these tests fail
//! rather than pass unchecked.

// Helpers outside #[test] fns panic on broken fixtures on purpose: a test that cannot set up
// must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use reclaim_host::{
    AppliesTo, HostConfig, Justification, Outcome, PluginError, PluginHost, Presence, Request,
    Software, User,
};

/// The example plugins, by manifest id.
const EXAMPLES: [&str; 2] = ["python-seat-revoke", "js-seat-revoke"];

/// The bearer token the seat API accepts.
const TOKEN: &str = "seat-api-token-5f2c9a";

/// The directory `plugins/examples/build.sh` wrote, from `RECLAIM_EXAMPLE_PLUGINS_DIR`.
fn built_examples() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = match std::env::var_os("RECLAIM_EXAMPLE_PLUGINS_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => panic!(
                "RECLAIM_EXAMPLE_PLUGINS_DIR is not set: these tests run the example plugins \
                 built by plugins/examples/build.sh. Run ./test.sh (it builds them), or \
                 `bash plugins/examples/build.sh /tmp/example-plugins` and export \
                 RECLAIM_EXAMPLE_PLUGINS_DIR=/tmp/example-plugins"
            ),
        };
        for id in EXAMPLES {
            assert!(
                dir.join(id).join("plugin.wasm").is_file(),
                "{} has no {id}/plugin.wasm: run plugins/examples/build.sh {}",
                dir.display(),
                dir.display()
            );
        }
        dir
    })
}

/// Precompiled components shared by the tests of this binary. The examples embed a Python
/// interpreter or a JavaScript engine, so each is compiled once, before any test loads it.
fn compile_cache() -> PathBuf {
    static WARM: OnceLock<PathBuf> = OnceLock::new();
    WARM.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-plugins-compile-cache");
        let host = PluginHost::new(HostConfig {
            cache_dir: Some(cache.clone()),
            ..HostConfig::default()
        })
        .expect("host");
        for id in EXAMPLES {
            host.load_dir(&built_examples().join(id))
                .unwrap_or_else(|e| panic!("loading {id}: {e}"));
        }
        cache
    })
    .clone()
}

fn host_config() -> HostConfig {
    HostConfig {
        cache_dir: Some(compile_cache()),
        allow_private_addresses: true,
        ..HostConfig::default()
    }
}

/// One request the seat API saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    idempotency_key: Option<String>,
}

#[derive(Default)]
struct SeatState {
    /// Paths (as sent, percent-encoded) of the seats that exist.
    seats: BTreeSet<String>,
    seen: Vec<Seen>,
    /// Answer the next request with 429 and this Retry-After.
    throttle_next: Option<u32>,
}

/// The example vendor API of plugins/README.md on loopback: `GET` and `DELETE`
/// `/api/v1/seats/{sku}/users/{user}` with a bearer token.
struct SeatApi {
    port: u16,
    state: Arc<Mutex<SeatState>>,
}

impl SeatApi {
    fn start(seats: &[&str]) -> SeatApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(SeatState {
            seats: seats.iter().map(|s| s.to_string()).collect(),
            ..SeatState::default()
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve_one(stream, &state));
            }
        });
        SeatApi { port, state }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1", self.port)
    }

    fn has_seat(&self, path: &str) -> bool {
        self.state.lock().unwrap().seats.contains(path)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn throttle_next(&self, retry_after: u32) {
        self.state.lock().unwrap().throttle_next = Some(retry_after);
    }
}

/// Reads one request (request line, headers and any body, which the plugins never send) and
/// answers it.
fn serve_one(mut stream: TcpStream, state: &Mutex<SeatState>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let (mut authorization, mut idempotency_key) = (None, None);
    let (mut content_length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim().to_string();
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(value),
                "idempotency-key" => idempotency_key = Some(value),
                "content-length" => content_length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
    }
    // Drain the body, so that closing the connection cannot reset it under the answer.
    if chunked {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                break;
            }
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                let mut end = String::new();
                let _ = reader.read_line(&mut end);
                break;
            }
            if reader.read_exact(&mut vec![0u8; size + 2]).is_err() {
                break;
            }
        }
    } else if content_length > 0 {
        let _ = reader.read_exact(&mut vec![0u8; content_length]);
    }
    let (status, extra, body) = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            authorization: authorization.clone(),
            idempotency_key,
        });
        let held = s.seats.contains(&path);
        if let Some(secs) = s.throttle_next.take() {
            (429, format!("retry-after: {secs}\r\n"), "slow down")
        } else if authorization.as_deref() != Some(format!("Bearer {TOKEN}").as_str()) {
            (401, String::new(), r#"{"detail":"invalid token"}"#)
        } else {
            match (method.as_str(), held) {
                ("GET", true) => (200, String::new(), r#"{"seat":"held"}"#),
                ("DELETE", true) => {
                    s.seats.remove(&path);
                    (204, String::new(), "")
                }
                ("GET" | "DELETE", false) => (404, String::new(), r#"{"detail":"no such seat"}"#),
                _ => (405, String::new(), ""),
            }
        }
    };
    // A 204 has no body and so no length; every other answer says how long its body is.
    let length = if status == 204 {
        String::new()
    } else {
        format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        )
    };
    let head = format!("HTTP/1.1 {status} X\r\n{extra}{length}connection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// The seat path the API sees for `sku` and an already percent-encoded user.
fn seat_path(sku: &str, encoded_user: &str) -> String {
    format!("/api/v1/seats/{sku}/users/{encoded_user}")
}

/// A plugin directory for example `id`: the built component with a manifest granting the
/// seat API's host (or `outbound`), `base` (unless `None`) and the token from a file.
struct Installed {
    host: PluginHost,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn install(id: &str, base: Option<&str>, outbound: &str, token: &str) -> Installed {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        built_examples().join(id).join("plugin.wasm"),
        dir.join("plugin.wasm"),
    )
    .unwrap();
    let token_file = tmp.path().join("api-token");
    std::fs::write(&token_file, token).unwrap();
    let base_line = base.map_or(String::new(), |b| format!("base = \"{b}\"\n"));
    std::fs::write(
        dir.join("reclaim-plugin.toml"),
        format!(
            "id = \"{id}\"\nmemory_mb = 32\nallowed_outbound_hosts = [\"{outbound}\"]\n\
             secrets = [\"api-token\"]\n[config]\n{base_line}[secret_sources]\n\
             api-token = \"file:{}\"\n",
            token_file.display()
        ),
    )
    .unwrap();
    let host = PluginHost::new(host_config()).expect("host");
    let info = host
        .load_dir(&dir)
        .unwrap_or_else(|e| panic!("loading {id}: {e}"));
    assert_eq!(info.id, id);
    Installed {
        host,
        dir,
        _tmp: tmp,
    }
}

/// `id` installed against `api` with the right token.
fn install_for(id: &str, api: &SeatApi) -> Installed {
    install(id, Some(&api.base()), "http://127.0.0.1:*", TOKEN)
}

fn seat_request(upn: &str, sku: &str, dry_run: bool) -> Request {
    Request {
        candidate_id: "cand-7".into(),
        idempotency_key: "cand-7/2/revoke".into(),
        applies_to: AppliesTo::Subscription,
        user: User {
            id: "dir-7".into(),
            email: Some(upn.into()),
            upn: Some(upn.into()),
        },
        software: Software {
            publisher: "Acme".into(),
            product: "Acme Pro".into(),
            version: None,
            sku: Some(sku.into()),
            subscription_id: None,
        },
        device: None,
        justification: Justification::Unused,
        dry_run,
    }
}

#[tokio::test]
async fn each_example_removes_a_seat_with_one_delete_and_verify_then_sees_it_gone() {
    for id in EXAMPLES {
        let seat = seat_path("acme-pro", "ann%40example.com");
        let api = SeatApi::start(&[&seat]);
        let p = install_for(id, &api);
        let req = seat_request("ann@example.com", "acme-pro", false);

        assert_eq!(p.host.verify(id, &req).await, Ok(Presence::Present), "{id}");
        match p.host.reclaim(id, &req).await {
            Ok(Outcome::Removed(evidence)) => {
                assert!(evidence.contains("DELETE"), "{id}: {evidence}");
                assert!(evidence.contains(&seat), "{id}: {evidence}");
                assert!(evidence.contains("204"), "{id}: {evidence}");
            }
            other => panic!("{id}: expected removed, got {other:?}"),
        }
        assert!(!api.has_seat(&seat), "{id}: the seat must be gone");
        let deletes: Vec<Seen> = api
            .seen()
            .into_iter()
            .filter(|s| s.method == "DELETE")
            .collect();
        assert_eq!(deletes.len(), 1, "{id}: {deletes:?}");
        assert_eq!(deletes[0].path, seat, "{id}");
        assert_eq!(
            deletes[0].authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{id}"
        );
        assert_eq!(
            deletes[0].idempotency_key.as_deref(),
            Some("cand-7/2/revoke"),
            "{id}: the DELETE carries the request's idempotency key"
        );

        assert_eq!(p.host.verify(id, &req).await, Ok(Presence::Absent), "{id}");
        assert_eq!(
            p.host.reclaim(id, &req).await,
            Ok(Outcome::AlreadyAbsent),
            "{id}: a second run finds nothing to remove"
        );
    }
}

#[tokio::test]
async fn each_example_dry_run_reads_the_seat_and_never_deletes() {
    for id in EXAMPLES {
        let seat = seat_path("acme-pro", "ann%40example.com");
        let api = SeatApi::start(&[&seat]);
        let p = install_for(id, &api);

        let held = seat_request("ann@example.com", "acme-pro", true);
        assert_eq!(
            p.host.reclaim(id, &held).await,
            Ok(Outcome::Removed(format!(
                "dry run: would DELETE http://127.0.0.1:{}{seat}",
                api.port
            ))),
            "{id}"
        );
        let not_held = seat_request("bob@example.com", "acme-pro", true);
        assert_eq!(
            p.host.reclaim(id, &not_held).await,
            Ok(Outcome::AlreadyAbsent),
            "{id}"
        );
        assert!(api.has_seat(&seat), "{id}: a dry run changes nothing");
        let methods: Vec<String> = api.seen().into_iter().map(|s| s.method).collect();
        assert_eq!(methods, ["GET", "GET"], "{id}");
    }
}

#[tokio::test]
async fn each_example_keeps_a_user_name_inside_one_path_segment() {
    for id in EXAMPLES {
        let seat = seat_path("acme-pro", "eve%2F..%2Fadmin%20x%40example.com");
        let api = SeatApi::start(&[&seat]);
        let p = install_for(id, &api);
        let req = seat_request("eve/../admin x@example.com", "acme-pro", false);
        assert!(
            matches!(p.host.reclaim(id, &req).await, Ok(Outcome::Removed(_))),
            "{id}: {:?}",
            api.seen()
        );
        assert!(!api.has_seat(&seat), "{id}");
    }
}

#[tokio::test]
async fn each_example_reports_throttling_as_transient_with_retry_after() {
    for id in EXAMPLES {
        let seat = seat_path("acme-pro", "ann%40example.com");
        let api = SeatApi::start(&[&seat]);
        let p = install_for(id, &api);
        let req = seat_request("ann@example.com", "acme-pro", false);

        api.throttle_next(30);
        match p.host.reclaim(id, &req).await {
            Err(PluginError::Transient {
                message,
                retry_after_secs,
            }) => {
                assert_eq!(retry_after_secs, Some(30), "{id}: {message}");
                assert!(message.contains("429"), "{id}: {message}");
            }
            other => panic!("{id}: expected transient, got {other:?}"),
        }
        assert!(api.has_seat(&seat), "{id}");
        assert!(
            matches!(p.host.reclaim(id, &req).await, Ok(Outcome::Removed(_))),
            "{id}: the retry succeeds"
        );
    }
}

#[tokio::test]
async fn each_example_reports_a_refused_token_as_misconfigured_without_showing_it() {
    for id in EXAMPLES {
        let seat = seat_path("acme-pro", "ann%40example.com");
        let api = SeatApi::start(&[&seat]);
        let wrong = "not-the-token-31d7";
        let p = install(id, Some(&api.base()), "http://127.0.0.1:*", wrong);
        let req = seat_request("ann@example.com", "acme-pro", false);
        match p.host.reclaim(id, &req).await {
            Err(PluginError::Misconfigured { message }) => {
                assert!(message.contains("401"), "{id}: {message}");
                assert!(!message.contains(wrong), "{id}: {message}");
            }
            other => panic!("{id}: expected misconfigured, got {other:?}"),
        }
        assert!(api.has_seat(&seat), "{id}");
    }
}

#[tokio::test]
async fn each_example_without_a_base_url_is_misconfigured_and_calls_nobody() {
    for id in EXAMPLES {
        let api = SeatApi::start(&[]);
        let p = install(id, None, "http://127.0.0.1:*", TOKEN);
        let req = seat_request("ann@example.com", "acme-pro", false);
        match p.host.reclaim(id, &req).await {
            Err(PluginError::Misconfigured { message }) => {
                assert!(message.contains("base"), "{id}: {message}");
            }
            other => panic!("{id}: expected misconfigured, got {other:?}"),
        }
        assert!(api.seen().is_empty(), "{id}");
    }
}

#[tokio::test]
async fn each_example_cannot_reach_a_host_its_manifest_does_not_grant() {
    for id in EXAMPLES {
        let seat = seat_path("acme-pro", "ann%40example.com");
        let api = SeatApi::start(&[&seat]);
        let p = install(id, Some(&api.base()), "https://seats.example.com", TOKEN);
        let req = seat_request("ann@example.com", "acme-pro", false);
        let result = p.host.reclaim(id, &req).await;
        // Python sees wasi:http's `http-request-denied` and says misconfigured; JavaScript's
        // fetch hides the reason, so it answers transient. Neither reaches the vendor.
        assert!(
            matches!(
                result,
                Err(PluginError::Misconfigured { .. } | PluginError::Transient { .. })
            ),
            "{id}: {result:?}"
        );
        assert!(api.seen().is_empty(), "{id}: {:?}", api.seen());
        assert!(api.has_seat(&seat), "{id}");
    }
}

#[test]
fn each_example_passes_plugin_check_against_the_seat_api() {
    for id in EXAMPLES {
        let seat = seat_path("acme-pro", "ann%40example.com");
        let api = SeatApi::start(&[&seat]);
        let p = install_for(id, &api);
        let request =
            serde_json::to_string(&seat_request("ann@example.com", "acme-pro", false)).unwrap();
        let report = reclaim_host::check::check_with(&p.dir, Some(&request), host_config())
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(report.passed(), "{id}:\n{report}");
        assert!(report.load.warnings.is_empty(), "{id}:\n{report}");
        assert_eq!(
            report.dry_run,
            Ok(Outcome::Removed(format!(
                "dry run: would DELETE http://127.0.0.1:{}{seat}",
                api.port
            ))),
            "{id}: plugin check forces dry-run on"
        );
        assert!(api.has_seat(&seat), "{id}");
    }
}
