//! The real `reclaim serve` binary without `--demo`, as an organisation runs it: nothing is
//! reachable without a credential but the link pages and sign-in, forms from other sites are
//! refused, signing out ends the session, tokens loaded by `reclaim seed` work, and the log
//! names requests without their secrets.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SAM_TOKEN: &str = "doors-sam-admin-token-0001";
const UMA_TOKEN: &str = "doors-uma-user-token-00001";

const SEED: &str = r#"{
  "users": [
    {"id": "sam", "display_name": "Sam Admin", "email": "sam@example.com", "sam_admin": true},
    {"id": "uma", "display_name": "Uma User", "email": "uma@example.com"}
  ],
  "groups": [{"id": "desktop", "name": "Desktop approvers", "members": ["sam"]}],
  "tokens": {"doors-sam-admin-token-0001": "sam", "doors-uma-user-token-00001": "uma"}
}"#;

struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.join(format!("serve-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .current_dir(dir)
            .args(["serve", "--db", "reclaim.db", "--addr", &addr.to_string()])
            .args(["--tick-secs", "3600", "--mail", "outbox"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("RECLAIM_LINK_KEY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = Server { child, addr, log };
        let started = Instant::now();
        loop {
            if TcpStream::connect(addr).is_ok() && server.get("/healthz", &[]).status == 200 {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not start: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        Resp::parse(&String::from_utf8_lossy(&out))
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.request("GET", path, headers, "")
    }

    fn post_form(&self, path: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Resp {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut h = headers.to_vec();
        h.push(("Content-Type", "application/x-www-form-urlencoded"));
        self.request("POST", path, &h, &body)
    }

    /// The sign-in form's cookie and token, as a browser gets them.
    fn sign_in_form(&self) -> (String, String, Resp) {
        let r = self.get("/ui/sign-in", &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        let cookie = r.cookie("reclaim_sign_in").expect("sign-in cookie");
        let csrf = field(&r.body, "csrf");
        (cookie, csrf, r)
    }

    fn sign_in_with_token(&self, token: &str) -> String {
        let (cookie, csrf, _) = self.sign_in_form();
        let origin = self.origin();
        let r = self.post_form(
            "/ui/sign-in",
            &[("Cookie", &cookie), ("Origin", &origin)],
            &[("csrf", &csrf), ("token", token), ("next", "/ui")],
        );
        assert_eq!(r.status, 303, "{}", r.body);
        r.cookie("reclaim_session").expect("a session cookie")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn parse(text: &str) -> Resp {
        let status = text.split(' ').nth(1).unwrap().parse().unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Resp {
            status,
            head: head.to_string(),
            body,
        }
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.head
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("set-cookie").then_some(v.trim())
            })
            .collect()
    }

    /// `name=value` of a cookie this response sets (not one it clears).
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .map(|c| c.split(';').next().unwrap_or_default().to_string())
            .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
    }

    fn location(&self) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location").then_some(v.trim())
        })
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{page}"));
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn reclaim(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .current_dir(dir)
        .args(args)
        .env_remove("RECLAIM_LINK_KEY")
        .output()
        .unwrap()
}

fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.json"), SEED).unwrap();
    let out = reclaim(dir.path(), &["seed", "seed.json", "--db", "reclaim.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 tokens"));
    dir
}

#[test]
fn without_demo_there_is_no_outbox_no_person_picker_and_no_sign_in_without_a_credential() {
    let dir = seeded();
    let s = Server::start(dir.path(), &[]);
    for path in ["/outbox", "/outbox/anything", "/outbox/anything/html"] {
        assert_eq!(s.get(path, &[]).status, 404, "{path}");
    }
    let (cookie, csrf, page) = s.sign_in_form();
    assert!(!page.body.contains("Sam Admin"), "{}", page.body);
    assert!(!page.body.contains("choose a person"), "{}", page.body);
    assert!(!page.body.contains("name=\"user\""), "{}", page.body);
    assert!(page.body.contains("name=\"token\""));

    // Posting a person's id, as the demo's picker would, signs nobody in.
    let origin = s.origin();
    let r = s.post_form(
        "/ui/sign-in",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &[("csrf", &csrf), ("user", "sam"), ("next", "/ui")],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.cookie("reclaim_session"), None);
    let r = s.post_form(
        "/ui/sign-in",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &[("csrf", &csrf), ("token", "not-a-token-of-anyone-here")],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.cookie("reclaim_session"), None);

    // Every workspace page and API route wants a credential.
    assert_eq!(s.get("/ui", &[]).status, 303);
    assert_eq!(s.get("/ui/candidates", &[]).status, 303);
    assert_eq!(s.get("/api/v1/candidates", &[]).status, 401);
    assert_eq!(s.get("/api/v1/me", &[]).status, 401);
}

#[test]
fn serve_without_demo_will_not_start_until_told_where_mail_goes() {
    let dir = seeded();
    let out = Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .current_dir(dir.path())
        .args(["serve", "--db", "reclaim.db", "--addr", "127.0.0.1:0"])
        .env_remove("RECLAIM_MAIL")
        .env_remove("RECLAIM_SMTP_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--mail smtp") && err.contains("--smtp-host"),
        "{err}"
    );
}

#[test]
fn tokens_loaded_by_reclaim_seed_work_in_a_later_serve() {
    let dir = seeded();
    let s = Server::start(dir.path(), &[]);
    let auth = format!("Bearer {SAM_TOKEN}");
    let r = s.get("/api/v1/me", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"sam\""), "{}", r.body);
    let auth = format!("Bearer {UMA_TOKEN}");
    assert_eq!(s.get("/api/v1/me", &[("Authorization", &auth)]).status, 200);
    // Only digests are stored: the database file never holds a token.
    drop(s);
    let db = std::fs::read(dir.path().join("reclaim.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(!text.contains(SAM_TOKEN) && !text.contains(UMA_TOKEN));
}

#[test]
fn forms_from_another_site_are_refused_and_sign_out_ends_the_session() {
    let dir = seeded();
    let s = Server::start(dir.path(), &[]);
    let session = s.sign_in_with_token(SAM_TOKEN);
    let home = s.get("/ui", &[("Cookie", &session)]);
    assert_eq!(home.status, 200, "{}", home.body);
    let csrf = field(&home.body, "csrf");

    // A valid form token does not help a request from another site, or one that hides where
    // it comes from.
    for headers in [
        vec![("Origin", "https://evil.example")],
        vec![("Origin", "null")],
        vec![("Referer", "https://evil.example/page")],
        vec![],
    ] {
        let mut h = headers.clone();
        h.push(("Cookie", &session));
        let r = s.post_form("/ui/sign-out", &h, &[("csrf", &csrf)]);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
        assert_eq!(s.get("/ui", &[("Cookie", &session)]).status, 200);
    }
    // A Referer of our own pages stands in for a missing Origin.
    let referer = format!("{}/ui", s.origin());
    let r = s.post_form(
        "/ui/sign-out",
        &[("Cookie", &session), ("Referer", &referer)],
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), Some("/ui/sign-in"));

    // The old cookie no longer opens anything.
    let r = s.get("/ui", &[("Cookie", &session)]);
    assert_eq!(r.status, 303);
    assert!(r.location().unwrap_or_default().starts_with("/ui/sign-in"));
}

#[test]
fn a_sam_admin_signs_everyone_out_at_once() {
    let dir = seeded();
    let s = Server::start(dir.path(), &[]);
    let sam = s.sign_in_with_token(SAM_TOKEN);
    let uma = s.sign_in_with_token(UMA_TOKEN);
    assert_eq!(s.get("/ui", &[("Cookie", &uma)]).status, 200);
    let home = s.get("/ui", &[("Cookie", &sam)]);
    let csrf = field(&home.body, "csrf");
    let origin = s.origin();
    // Not for anyone else.
    let uma_home = s.get("/ui", &[("Cookie", &uma)]);
    let r = s.post_form(
        "/ui/sessions/end-all",
        &[("Cookie", &uma), ("Origin", &origin)],
        &[("csrf", &field(&uma_home.body, "csrf"))],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = s.post_form(
        "/ui/sessions/end-all",
        &[("Cookie", &sam), ("Origin", &origin)],
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(s.get("/ui", &[("Cookie", &uma)]).status, 303);
    assert_eq!(s.get("/ui", &[("Cookie", &sam)]).status, 303);
    // API tokens are not sessions.
    let auth = format!("Bearer {UMA_TOKEN}");
    assert_eq!(s.get("/api/v1/me", &[("Authorization", &auth)]).status, 200);
}

#[test]
fn cookies_are_secure_behind_a_trusted_proxy_and_for_an_https_public_url() {
    let dir = seeded();
    {
        let s = Server::start(dir.path(), &[]);
        let r = s.get("/ui/sign-in", &[]);
        assert!(
            r.set_cookies().iter().all(|c| !c.contains("Secure")),
            "plain http on loopback: {:?}",
            r.set_cookies()
        );
    }
    {
        let s = Server::start(dir.path(), &["--trust-proxy"]);
        let r = s.get("/ui/sign-in", &[]);
        assert!(
            r.set_cookies().iter().all(|c| c.contains("; Secure")),
            "{:?}",
            r.set_cookies()
        );
        let (cookie, csrf, _) = s.sign_in_form();
        let origin = s.origin();
        let r = s.post_form(
            "/ui/sign-in",
            &[("Cookie", &cookie), ("Origin", &origin)],
            &[("csrf", &csrf), ("token", SAM_TOKEN)],
        );
        assert_eq!(r.status, 303, "{}", r.body);
        let session = r
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("reclaim_session="))
            .unwrap()
            .to_string();
        assert!(session.contains("; Secure") && session.contains("HttpOnly"));
    }
    {
        let s = Server::start(dir.path(), &["--public-url", "https://reclaim.example.com"]);
        let r = s.get("/ui/sign-in", &[]);
        assert!(
            r.set_cookies().iter().all(|c| c.contains("; Secure")),
            "{:?}",
            r.set_cookies()
        );
    }
}

#[test]
fn the_log_has_one_line_per_request_with_an_id_and_no_secrets() {
    let dir = seeded();
    let s = Server::start(dir.path(), &[]);
    let session = s.sign_in_with_token(SAM_TOKEN);
    let auth = format!("Bearer {SAM_TOKEN}");
    let r = s.get("/api/v1/me", &[("Authorization", &auth)]);
    let id = r
        .head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a request id")
        .trim()
        .to_string();
    s.get("/respond/some-link-token-that-must-not-be-logged", &[]);
    // Refused as coming from another site: the warning names the route, not the path.
    let refused = s.post_form(
        "/respond/some-link-token-that-must-not-be-logged",
        &[("Origin", "https://evil.example")],
        &[("comment", "")],
    );
    assert_eq!(refused.status, 403);
    s.get("/ui", &[("Cookie", &session)]);
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log();
    assert!(log.contains(&id), "the id answered is in the log:\n{log}");
    assert!(log.contains("route=/api/v1/me"), "{log}");
    assert!(log.contains("route=/respond/{token}"), "{log}");
    for secret in [
        SAM_TOKEN,
        "some-link-token-that-must-not-be-logged",
        session.split_once('=').unwrap().1,
    ] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

#[test]
fn a_backup_of_the_live_database_opens_with_everything_in_it() {
    let dir = seeded();
    let s = Server::start(dir.path(), &[]);
    s.sign_in_with_token(SAM_TOKEN);
    let out = reclaim(dir.path(), &["backup", "copy.db", "--db", "reclaim.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second backup onto the same file is refused rather than overwriting it.
    let again = reclaim(dir.path(), &["backup", "copy.db", "--db", "reclaim.db"]);
    assert!(!again.status.success());
    drop(s);
    // The copy serves: the same people, the same tokens.
    std::fs::copy(
        dir.path().join("reclaim.db.link-key"),
        dir.path().join("copy.db.link-key"),
    )
    .unwrap();
    let out = reclaim(dir.path(), &["rules", "list", "--db", "copy.db"]);
    assert!(out.status.success());
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("copy.db"), copy.path().join("reclaim.db")).unwrap();
    let s = Server::start(copy.path(), &[]);
    let auth = format!("Bearer {SAM_TOKEN}");
    assert_eq!(s.get("/api/v1/me", &[("Authorization", &auth)]).status, 200);
}
