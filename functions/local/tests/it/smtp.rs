//! Mail over SMTP, against a real server: `tests/mail/smtp_server.py` (aiosmtpd, STARTTLS with
//! a private CA, AUTH required), which `test.sh` starts and describes in `RECLAIM_SMTP_TEST_*`.
//! These tests fail without it. To run them by hand:
//!
//! ```sh
//! python3 tests/mail/smtp_server.py --spool /tmp/spool --state /tmp/smtp --user reclaim --password s3cret
//! # prints: ready 127.0.0.1:PORT /tmp/smtp/ca.pem 127.0.0.1:TLS_PORT
//! export RECLAIM_SMTP_TEST_ADDR=127.0.0.1:PORT RECLAIM_SMTP_TEST_TLS_ADDR=127.0.0.1:TLS_PORT \
//!        RECLAIM_SMTP_TEST_SPOOL=/tmp/spool RECLAIM_SMTP_TEST_CA=/tmp/smtp/ca.pem \
//!        RECLAIM_SMTP_TEST_USER=reclaim RECLAIM_SMTP_TEST_PASSWORD=s3cret
//! cargo test -p reclaim-local --test it smtp::
//! ```
//!
//! The server's recipients steer it: `tempfail-*` gets a 451 the first time, `bounce-*` a 550,
//! `slowack-*` is spooled and then waits before the 250. Every test uses its own addresses,
//! since one server serves every test and every run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reclaim_api::{HmacLinkSigner, ManualTaskRevoker, Settings};
use reclaim_local::seed::SeedFile;
use reclaim_local::smtp::message_id;
use reclaim_local::{
    EffectState, Embedded, MailChoice, Password, Security, SmtpAuth, SmtpMailer, SmtpSettings,
    SqliteStore,
};
use reclaim_workflow::ports::{CandidateRead, Mailer, OutgoingMail, SystemClock};
use reclaim_workflow::{Actor, Candidate, EffectKind, Event, Principal, State};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FROM_DOMAIN: &str = "reclaim.test";

/// The server test.sh started.
struct Server {
    host: String,
    /// Speaks STARTTLS.
    port: u16,
    /// Speaks implicit TLS.
    tls_port: u16,
    spool: PathBuf,
    ca: PathBuf,
    user: String,
    password: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests send mail to the SMTP server of \
             tests/mail/smtp_server.py, which test.sh starts (see the top of this file to start \
             it by hand)"
        )
    })
}

fn port_of(name: &str) -> (String, u16) {
    let addr = var(name);
    let (host, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{name} is host:port"));
    (host.to_string(), port.parse().expect("a port number"))
}

fn server() -> Server {
    let (host, port) = port_of("RECLAIM_SMTP_TEST_ADDR");
    let (_, tls_port) = port_of("RECLAIM_SMTP_TEST_TLS_ADDR");
    Server {
        host,
        port,
        tls_port,
        spool: PathBuf::from(var("RECLAIM_SMTP_TEST_SPOOL")),
        ca: PathBuf::from(var("RECLAIM_SMTP_TEST_CA")),
        user: var("RECLAIM_SMTP_TEST_USER"),
        password: var("RECLAIM_SMTP_TEST_PASSWORD"),
    }
}

impl Server {
    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            host: self.host.clone(),
            port: self.port,
            security: Security::StartTls,
            auth: Some(SmtpAuth {
                user: self.user.clone(),
                password: Password::new(self.password.clone()),
            }),
            from: format!("Reclaim <reclaim@{FROM_DOMAIN}>"),
            ca_file: Some(self.ca.clone()),
            timeout: Duration::from_secs(10),
        }
    }

    /// The spooled messages whose envelope names `address`, oldest first.
    fn messages_to(&self, address: &str) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.spool)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "eml"));
        files.sort();
        let envelope_to = format!("<{address}>");
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|text| {
                text.lines()
                    .find(|l| l.starts_with("X-Envelope-To:"))
                    .is_some_and(|l| l.contains(&envelope_to))
            })
            .collect()
    }
}

/// An address no other test or earlier run used.
fn address(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{kind}-{}-{nanos}-{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The value of a header of a message (first occurrence, folded lines joined).
fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with(' ') || line.starts_with('\t') {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case(name) {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

const SEED: &str = r#"{
  "users": [{"id": "sam", "display_name": "Sam Admin", "email": "sam@example.com", "sam_admin": true},
            {"id": "al", "display_name": "Al Approver", "email": "al@example.com"}],
  "groups": [{"id": "approvers", "name": "Approvers", "members": ["al"]}],
  "rules": [{"id": "ask", "name": "Ask the user", "notify_user": true,
             "days_before_auto_reclamation": 14, "assignment_group": "approvers"}],
  "tokens": {"sam-token-0123456789": "sam"}
}"#;

/// Local mode sending through the test server, with one Ready candidate for `email`.
struct Local {
    _dir: tempfile::TempDir,
    embedded: Embedded,
    candidate: Candidate,
}

async fn local(email: &str) -> Local {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open_with_mail(
        &dir.path().join("reclaim.db"),
        Settings::default(),
        Arc::new(HmacLinkSigner::new(b"a-link-key-for-the-smtp-tests-0123").unwrap()),
        Arc::new(ManualTaskRevoker),
        Arc::new(SystemClock),
        MailChoice::Smtp(server().settings()),
    )
    .unwrap();
    let seed: SeedFile = serde_json::from_str(SEED).unwrap();
    seed.apply(
        embedded.app.ports.directory.as_ref(),
        embedded.app.ports.rules.as_ref(),
        embedded.app.ports.tokens.as_ref(),
    )
    .await
    .unwrap();
    let row: BTreeMap<String, String> = [
        ("publisher", "Adobe"),
        ("product", "Acrobat"),
        ("device", "PC-1"),
        ("user_id", "uma"),
        ("user_name", "Uma User"),
        ("user_email", email),
        ("justification", "unused"),
        ("rule", "ask"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let report = embedded.app.import(vec![(2, row)], false).await.unwrap();
    assert!(report.invalid.is_empty(), "{:?}", report.invalid);
    let candidate = embedded
        .store
        .get(&report.created[0])
        .await
        .unwrap()
        .unwrap();
    Local {
        _dir: dir,
        embedded,
        candidate,
    }
}

fn admin() -> Actor {
    Actor::Person(Principal {
        sam_admin: true,
        ..Principal::user("sam")
    })
}

impl Local {
    async fn reclaim(&self) {
        self.embedded
            .app
            .transition(&self.candidate.id, &Event::Reclaim, &admin(), None)
            .await
            .unwrap();
    }

    async fn now(&self) -> Candidate {
        self.embedded
            .store
            .get(&self.candidate.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// The key of the candidate's ask-user email effect.
    async fn ask_key(&self) -> String {
        self.embedded
            .store
            .effects_for(&self.candidate.id)
            .await
            .unwrap()
            .into_iter()
            .find(|e| matches!(e.effect.kind, EffectKind::Email { .. }))
            .expect("an email effect")
            .key
    }
}

#[tokio::test]
async fn a_candidates_question_arrives_once_over_starttls_with_login_and_both_parts() {
    let server = server();
    let email = address("uma");
    let local = local(&email).await;
    local.reclaim().await;
    let stats = local.embedded.drain().await.unwrap();
    assert_eq!(stats.failed, 0, "{stats:?}");
    // The server takes mail only after STARTTLS and a login: its spool proves both happened.
    let messages = server.messages_to(&email);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    let key = local.ask_key().await;
    assert_eq!(
        header(m, "From").as_deref(),
        Some(format!("Reclaim <reclaim@{FROM_DOMAIN}>").as_str())
    );
    assert_eq!(header(m, "To").as_deref(), Some(email.as_str()));
    assert_eq!(
        header(m, "Subject").as_deref(),
        Some("Do you still need Adobe Acrobat?")
    );
    assert_eq!(
        header(m, "Message-ID"),
        Some(message_id(&key, FROM_DOMAIN)),
        "the Message-ID is derived from the effect key"
    );
    let date = header(m, "Date").expect("a Date header");
    let sent = chrono::DateTime::parse_from_rfc2822(&date).expect("an RFC 2822 date");
    let age = chrono::Utc::now().signed_duration_since(sent);
    assert!(age.num_seconds().abs() < 120, "Date {date}");
    let content_type = header(m, "Content-Type").unwrap();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let body = m.split_once("\r\n\r\n").unwrap().1;
    let plain = body.find("Content-Type: text/plain").expect("a text part");
    let html = body.find("Content-Type: text/html").expect("an HTML part");
    assert!(plain < html, "text first, then HTML (the preferred last)");
    assert!(
        body.contains("/respond/"),
        "the answer links are in the mail"
    );
    assert_eq!(
        local
            .embedded
            .smtp
            .as_ref()
            .unwrap()
            .send_state(&key)
            .await
            .unwrap(),
        Some("sent".to_string())
    );
    let effect = local.embedded.store.effect(&key).await.unwrap().unwrap();
    assert_eq!(effect.state, EffectState::Done);
    assert_eq!(local.now().await.state, State::AwaitingUser);
}

#[tokio::test]
async fn the_same_effect_key_sent_twice_arrives_once() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("reclaim.db")).unwrap();
    let mailer = SmtpMailer::new(store.clone(), server.settings()).unwrap();
    let email = address("twice");
    let mail = OutgoingMail {
        key: format!("c-twice:{}:email-ask-user-user", std::process::id()),
        to: vec![email.clone()],
        subject: "Do you still need Adobe Acrobat?".into(),
        text: "Answer Yes or No.".into(),
        html: "<p>Answer <b>Yes</b> or <b>No</b>.</p>".into(),
    };
    mailer.send(&mail).await.unwrap();
    mailer.send(&mail).await.unwrap();
    // A restarted process with the same file does not send it either.
    drop(mailer);
    drop(store);
    let store = SqliteStore::open(dir.path().join("reclaim.db")).unwrap();
    let mailer = SmtpMailer::new(store, server.settings()).unwrap();
    mailer.send(&mail).await.unwrap();
    assert_eq!(server.messages_to(&email).len(), 1);
    assert_eq!(
        mailer.send_state(&mail.key).await.unwrap().as_deref(),
        Some("sent")
    );
}

fn kept_mail(key: &str, to: &str) -> OutgoingMail {
    OutgoingMail {
        key: format!("{key}:{}:email-kept-user", std::process::id()),
        to: vec![to.to_string()],
        subject: "You keep Adobe Acrobat".into(),
        text: "You keep it.".into(),
        html: "<p>You keep it.</p>".into(),
    }
}

#[tokio::test]
async fn implicit_tls_with_a_login_delivers_too() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("reclaim.db")).unwrap();
    let settings = SmtpSettings {
        port: server.tls_port,
        security: Security::Tls,
        ..server.settings()
    };
    let mailer = SmtpMailer::new(store, settings).unwrap();
    let email = address("implicit");
    mailer.send(&kept_mail("c-implicit", &email)).await.unwrap();
    let messages = server.messages_to(&email);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        header(&messages[0], "Subject").as_deref(),
        Some("You keep Adobe Acrobat")
    );
}

#[tokio::test]
async fn a_server_whose_certificate_is_not_trusted_gets_nothing_and_the_send_may_be_retried() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("reclaim.db")).unwrap();
    // Without the private CA, the server's certificate is not trusted.
    let settings = SmtpSettings {
        ca_file: None,
        ..server.settings()
    };
    let mailer = SmtpMailer::new(store, settings).unwrap();
    let email = address("untrusted");
    let mail = kept_mail("c-untrusted", &email);
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(server.messages_to(&email).is_empty());
    assert_eq!(
        mailer.send_state(&mail.key).await.unwrap(),
        None,
        "the key is given back: nothing reached the server"
    );
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_and_the_message_arrives() {
    let server = server();
    let email = address("tempfail");
    let local = local(&email).await;
    local.reclaim().await;
    let first = local.embedded.drain().await.unwrap();
    assert_eq!(first.retried, 1, "the 451 is retryable: {first:?}");
    let key = local.ask_key().await;
    let effect = local.embedded.store.effect(&key).await.unwrap().unwrap();
    assert_eq!(effect.state, EffectState::Pending);
    let why = effect.last_error.clone().unwrap_or_default();
    assert!(why.contains("451"), "{why}");
    assert!(server.messages_to(&email).is_empty());
    assert_eq!(
        local
            .embedded
            .smtp
            .as_ref()
            .unwrap()
            .send_state(&key)
            .await
            .unwrap(),
        None,
        "a refused send gives its key back"
    );
    // The worker's first backoff is about two seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        local.embedded.drain().await.unwrap();
        let effect = local.embedded.store.effect(&key).await.unwrap().unwrap();
        if effect.state == EffectState::Done {
            assert_eq!(effect.attempts, 2);
            break;
        }
        assert!(Instant::now() < deadline, "not retried: {effect:?}");
    }
    assert_eq!(server.messages_to(&email).len(), 1);
    assert_eq!(local.now().await.state, State::AwaitingUser);
}

#[tokio::test]
async fn a_bounced_user_address_puts_the_candidate_in_attention_required_naming_the_bounce() {
    let server = server();
    let email = address("bounce");
    let local = local(&email).await;
    local.reclaim().await;
    let stats = local.embedded.drain().await.unwrap();
    assert_eq!((stats.retried, stats.failed), (0, 0), "{stats:?}");
    assert!(server.messages_to(&email).is_empty());
    let c = local.now().await;
    assert_eq!(c.state, State::AttentionRequired);
    assert_eq!(
        c.attention.as_deref(),
        Some("the user's address was refused: 550 5.1.1 mailbox unavailable")
    );
    // Resume, after the address is fixed, asks the user again.
    assert_eq!(c.attention_from, Some(State::AwaitingUser));
    let history = local.embedded.store.history(&c.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.event, "mail-refused");
    assert_eq!(last.actor.to_string(), "mail");
    let reason = last.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&email) && reason.contains("550 5.1.1 mailbox unavailable"),
        "{reason}"
    );
    // The email effect is settled, not failed: the candidate carries the problem now.
    let effect = local
        .embedded
        .store
        .effect(&local.ask_key().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(effect.state, EffectState::Done);
}

// --- the real binary, killed while the server holds the message -------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn reclaim_cli(db: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .args(args)
        .env("RECLAIM_DB", db)
        .env_remove("RECLAIM_MAIL")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reclaim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `reclaim serve` sending through the test server, its log in `log`.
fn serve(server: &Server, db: &Path, port: u16, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--seed", db.with_file_name("seed.json").to_str().unwrap()])
        .args(["--mail", "smtp", "--smtp-host", &server.host])
        .args(["--smtp-port", &server.port.to_string()])
        .args(["--smtp-security", "starttls", "--smtp-user", &server.user])
        .args(["--smtp-ca-file", server.ca.to_str().unwrap()])
        .args(["--mail-from", &format!("Reclaim <reclaim@{FROM_DOMAIN}>")])
        .args(["--tick-secs", "3600"])
        .env("RECLAIM_DB", db)
        .env("RECLAIM_SMTP_PASSWORD", &server.password)
        .env_remove("RECLAIM_SMTP_PASSWORD_FILE")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "reclaim serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// One request in plain HTTP/1.1; returns the status code and body.
fn post(port: u16, path: &str, token: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

/// The state of the candidate's ask-user email effect and of its send record.
fn states(db: &Path) -> (Option<String>, Option<String>) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let one = |sql: &str| -> Option<String> { conn.query_row(sql, [], |r| r.get(0)).ok() };
    (
        one("SELECT state FROM outbox WHERE key LIKE '%:email-ask-user-user'"),
        one("SELECT state FROM mail_sends WHERE key LIKE '%:email-ask-user-user'"),
    )
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_process_killed_after_the_server_took_the_message_never_sends_it_again() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reclaim.db");
    std::fs::write(dir.path().join("seed.json"), SEED).unwrap();
    let email = address("slowack");
    let csv = dir.path().join("candidates.csv");
    std::fs::write(
        &csv,
        format!(
            "publisher,product,device,user_id,user_name,user_email,justification,rule\n\
             Adobe,Acrobat,PC-1,uma,Uma User,{email},unused,ask\n"
        ),
    )
    .unwrap();
    reclaim_cli(
        &db,
        &["seed", dir.path().join("seed.json").to_str().unwrap()],
    );
    reclaim_cli(&db, &["candidates", "import", csv.to_str().unwrap()]);

    let port = free_port();
    let mut first = serve(&server, &db, port, &dir.path().join("first.log"));
    let (status, answer) = post(
        port,
        "/api/v1/candidates/RC0000001/reclaim",
        "sam-token-0123456789",
    );
    assert_eq!(status, 200, "{answer}");
    // The server writes the message to its spool, then holds back its 250 for a while.
    wait_for("the message in the spool", 30, || {
        !server.messages_to(&email).is_empty()
    });
    first.kill().unwrap(); // SIGKILL: no chance to record anything more
    first.wait().unwrap();
    assert_eq!(
        states(&db),
        (Some("pending".into()), Some("sending".into())),
        "killed before the server's answer: the effect is not done, the send is in flight"
    );

    let port = free_port();
    let second_log = dir.path().join("second.log");
    let mut second = serve(&server, &db, port, &second_log);
    wait_for("the worker to settle the email effect", 30, || {
        states(&db).0.as_deref() == Some("done")
    });
    second.kill().unwrap();
    second.wait().unwrap();

    assert_eq!(
        server.messages_to(&email).len(),
        1,
        "exactly one copy reached the server"
    );
    assert_eq!(
        states(&db),
        (Some("done".into()), Some("sending".into())),
        "the effect ran again, but sent nothing"
    );
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert!(
        log.contains("not sent again") && log.contains("email-ask-user-user"),
        "the skipped send is logged with its key: {log}"
    );
    assert!(
        !log.contains(&server.password),
        "the password is never logged"
    );
}
