//! Real mail from one machine: [`SmtpMailer`] sends each message to an SMTP server (STARTTLS,
//! implicit TLS, or plain text to a loopback relay), at most once per effect key.
//!
//! **At most once, crash-safe.** Effects run at least once, so the mailer keeps a row per key in
//! the same SQLite file (`mail_sends`): before it contacts the server it writes
//! `(key, 'sending', at)`, and after the server's `250` to the message it sets `'sent'`. A repeat
//! of a `sent` key sends nothing. A row left `sending` means this process (or an earlier one)
//! died or lost the connection somewhere between writing the row and recording the server's
//! answer: the server may have accepted the message, so it is **not** sent again, and the repeat
//! logs a warning naming the key. A duplicate "your software will be removed" is worse than a
//! logged gap; the SES mailer makes the same choice. Only a failure that certainly happened
//! before the server took the message (no connection, DNS, TLS, a refused login, a 4xx/5xx to
//! `MAIL FROM`, `RCPT TO`, `DATA`, or to the message itself) deletes the row, so a retry can
//! send.
//!
//! **Classification.** Connection failures, timeouts and 4xx answers are
//! [`MailError::Unavailable`] (the worker retries them with backoff). A 5xx to a recipient (or
//! to the message, which names one recipient: the application sends one message per person) is
//! [`MailError::RecipientRefused`], which the application turns into Attention Required for the
//! candidate's user. Any other 5xx (the login, the sender) is [`MailError::Rejected`].

use crate::sqlite::{millis, sql_error, SqliteStore, WriteOutcome};
use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Address;
use reclaim_workflow::ports::{Clock, MailError, Mailer, OutgoingMail, StoreError, SystemClock};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How the connection to the server is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with `STARTTLS` before anything else is said (port 587).
    #[default]
    StartTls,
    /// TLS from the first byte ("implicit TLS", port 465).
    Tls,
    /// No encryption: only for a relay on the same machine (refused with a login unless the
    /// host is loopback).
    None,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }

    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Security {
    type Err = String;

    fn from_str(s: &str) -> Result<Security, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "starttls" => Ok(Security::StartTls),
            "tls" => Ok(Security::Tls),
            "none" => Ok(Security::None),
            other => Err(format!(
                "'{other}' is not a security mode (starttls, tls or none)"
            )),
        }
    }
}

/// A password that never shows up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Password {
        Password(value.into())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The login, when the server wants one (`AUTH PLAIN` or `AUTH LOGIN`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpAuth {
    pub user: String,
    pub password: Password,
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: Option<SmtpAuth>,
    /// The sender, `reclaim@example.com` or `Reclaim <reclaim@example.com>`; its domain also
    /// ends every Message-ID.
    pub from: String,
    /// A PEM file of root certificates trusted besides the public ones (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The longest any one step (connect, TLS, each command, the message) may take.
    pub timeout: Duration,
}

impl SmtpSettings {
    /// STARTTLS on the usual port, no login, a 30-second timeout.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> SmtpSettings {
        SmtpSettings {
            host: host.into(),
            port: Security::StartTls.default_port(),
            security: Security::StartTls,
            auth: None,
            from: from.into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Settings the mailer refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("the SMTP host is empty")]
    NoHost,
    #[error("the sender '{from}' (--mail-from) is not an email address: {why}")]
    BadSender { from: String, why: String },
    #[error(
        "security 'none' with a login would send the password in clear text to {host}; \
         use starttls or tls, or a relay on this machine (a loopback address)"
    )]
    PlaintextLogin { host: String },
    #[error("cannot read the CA file {path}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no PEM certificate")]
    CaFileEmpty { path: PathBuf },
    #[error("cannot set up TLS for {host}: {why}")]
    Tls { host: String, why: String },
}

/// The local mode's real mailer: SMTP through lettre, once per effect key. See the module
/// documentation for the at-most-once rule and how failures are classified.
#[derive(Clone)]
pub struct SmtpMailer {
    store: SqliteStore,
    clock: Arc<dyn Clock>,
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    from: Mailbox,
    id_domain: String,
    timeout: Duration,
    hello: ClientId,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("login", &self.credentials.is_some())
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// True for `localhost` and loopback addresses: the only hosts plain text may carry a login to.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || IpAddr::from_str(host).is_ok_and(|ip| ip.is_loopback())
}

/// `<sha256(key) in hex @ domain>`: stable per effect key, so a message is recognisable as the
/// same one wherever it turns up.
pub fn message_id(key: &str, domain: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{domain}>")
}

impl SmtpMailer {
    /// Checks the settings and prepares TLS; nothing is contacted yet.
    pub fn new(store: SqliteStore, settings: SmtpSettings) -> Result<SmtpMailer, SmtpConfigError> {
        SmtpMailer::with_clock(store, settings, Arc::new(SystemClock))
    }

    /// As [`SmtpMailer::new`], stamping rows and the `Date` header with `clock`.
    pub fn with_clock(
        store: SqliteStore,
        settings: SmtpSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<SmtpMailer, SmtpConfigError> {
        let host = settings.host.trim().to_string();
        if host.is_empty() {
            return Err(SmtpConfigError::NoHost);
        }
        let from: Mailbox =
            settings
                .from
                .trim()
                .parse()
                .map_err(
                    |e: lettre::address::AddressError| SmtpConfigError::BadSender {
                        from: settings.from.clone(),
                        why: e.to_string(),
                    },
                )?;
        if settings.security == Security::None && settings.auth.is_some() && !is_loopback(&host) {
            return Err(SmtpConfigError::PlaintextLogin { host });
        }
        let tls = match settings.security {
            Security::None => None,
            Security::StartTls | Security::Tls => {
                let mut builder = TlsParameters::builder(host.clone());
                if let Some(path) = &settings.ca_file {
                    let pem = std::fs::read(path).map_err(|source| SmtpConfigError::CaFile {
                        path: path.clone(),
                        source,
                    })?;
                    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                        return Err(SmtpConfigError::CaFileEmpty { path: path.clone() });
                    }
                    let cert = Certificate::from_pem(&pem).map_err(|e| SmtpConfigError::Tls {
                        host: host.clone(),
                        why: format!("{}: {e}", path.display()),
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build_rustls().map_err(|e| SmtpConfigError::Tls {
                    host: host.clone(),
                    why: e.to_string(),
                })?)
            }
        };
        let id_domain = from.email.domain().to_string();
        Ok(SmtpMailer {
            store,
            clock,
            host,
            port: settings.port,
            security: settings.security,
            tls,
            credentials: settings
                .auth
                .map(|a| Credentials::new(a.user, a.password.0)),
            from,
            id_domain,
            timeout: settings.timeout,
            hello: ClientId::default(),
        })
    }

    /// Builds the message with lettre's builder: From, To, Subject, Date, a Message-ID derived
    /// from the key, and a multipart/alternative body with the text and the HTML.
    pub fn build_message(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .date(self.clock.now().into())
            .message_id(Some(message_id(&mail.key, &self.id_domain)));
        for to in &mail.to {
            let to: Mailbox = to
                .trim()
                .parse()
                .map_err(|e| MailError::Rejected(format!("'{to}' is not an email address: {e}")))?;
            builder = builder.to(to);
        }
        builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html.clone()),
                    ),
            )
            .map_err(|e| MailError::Rejected(format!("cannot build message {}: {e}", mail.key)))
    }

    /// Where a key stands: `None` (never tried, or given back), `sending` or `sent`.
    pub async fn send_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.store
            .read(move |conn| {
                conn.prepare_cached("SELECT state FROM mail_sends WHERE key = ?1")
                    .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
                    .map_err(sql_error)
            })
            .await
    }

    /// Writes `(key, 'sending')` unless a row exists; returns the existing state otherwise.
    async fn claim(&self, key: &str) -> Result<Option<String>, MailError> {
        let key = key.to_string();
        let now = millis(self.clock.now());
        self.store
            .write(move |conn| {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO mail_sends (key, state, at) VALUES (?1, 'sending', ?2) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .and_then(|mut st| st.execute(params![key, now]))
                    .map_err(sql_error)?;
                if inserted > 0 {
                    return Ok(WriteOutcome::new(None));
                }
                let state: Option<String> = conn
                    .prepare_cached("SELECT state FROM mail_sends WHERE key = ?1")
                    .and_then(|mut st| st.query_row([&key], |r| r.get(0)).optional())
                    .map_err(sql_error)?;
                Ok(WriteOutcome::new(Some(
                    state.unwrap_or_else(|| "sending".into()),
                )))
            })
            .await
            .map_err(store_to_mail)
    }

    async fn mark_sent(&self, key: &str, message_id: &str) {
        let (key2, id) = (key.to_string(), message_id.to_string());
        let now = millis(self.clock.now());
        let out = self
            .store
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE mail_sends SET state = 'sent', sent_at = ?2, message_id = ?3 \
                     WHERE key = ?1",
                )
                .and_then(|mut st| st.execute(params![key2, now, id]))
                .map_err(sql_error)?;
                Ok(WriteOutcome::new(()))
            })
            .await;
        // Only bookkeeping: the 'sending' row already keeps the key from being sent again.
        if let Err(e) = out {
            tracing::warn!(key, error = %e, "the message was sent but cannot be marked sent");
        }
    }

    /// Gives the key back after a send that certainly did not happen.
    async fn release(&self, key: &str) {
        let key2 = key.to_string();
        let out = self
            .store
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM mail_sends WHERE key = ?1 AND state = 'sending'")
                    .and_then(|mut st| st.execute([&key2]))
                    .map_err(sql_error)?;
                Ok(WriteOutcome::new(()))
            })
            .await;
        if let Err(e) = out {
            tracing::error!(key, error = %e, "cannot give a mail key back; the message will not be retried");
        }
    }

    /// One step of the conversation, bounded by the timeout.
    async fn step<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, StepError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StepError::Smtp(what.to_string(), e)),
            Err(_) => Err(StepError::Timeout(format!(
                "{what}: no answer within {}s",
                self.timeout.as_secs_f32()
            ))),
        }
    }

    /// Connects, secures and logs in.
    async fn open(&self) -> Result<AsyncSmtpConnection, MailError> {
        let server = format!("{}:{}", self.host, self.port);
        let implicit = match self.security {
            Security::Tls => self.tls.clone(),
            _ => None,
        };
        let mut conn = self
            .step(
                &format!("connect to {server}"),
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    implicit,
                    None,
                ),
            )
            .await
            .map_err(|e| e.before_accept(None))?;
        if self.security == Security::StartTls {
            let Some(tls) = self.tls.clone() else {
                return Err(MailError::Unavailable(
                    "STARTTLS without TLS settings".into(),
                ));
            };
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(MailError::Unavailable(format!(
                    "{server} does not offer STARTTLS"
                )));
            }
            self.step("STARTTLS", conn.starttls(tls, &self.hello))
                .await
                .map_err(|e| e.before_accept(None))?;
        }
        if let Some(credentials) = &self.credentials {
            let mechanisms = [Mechanism::Plain, Mechanism::Login];
            if let Err(e) = self.step("AUTH", conn.auth(&mechanisms, credentials)).await {
                conn.abort().await;
                return Err(e.before_accept(None));
            }
        }
        Ok(conn)
    }

    /// `MAIL FROM`, `RCPT TO` for each recipient, `DATA`, the message.
    async fn transact(
        &self,
        conn: &mut AsyncSmtpConnection,
        message: &Message,
        bytes: &[u8],
    ) -> Delivery {
        let envelope = message.envelope();
        let mut options = Vec::new();
        let info = conn.server_info();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Delivery::NotTaken(MailError::Rejected(
                    "an address is not ASCII and the server does not offer SMTPUTF8".into(),
                ));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Delivery::NotTaken(MailError::Rejected(
                    "the message is not ASCII and the server does not offer 8BITMIME".into(),
                ));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if let Err(e) = self
            .step(
                "MAIL FROM",
                conn.command(Mail::new(envelope.from().cloned(), options)),
            )
            .await
        {
            return Delivery::NotTaken(e.before_accept(None));
        }
        for to in envelope.to() {
            if let Err(e) = self
                .step("RCPT TO", conn.command(Rcpt::new(to.clone(), Vec::new())))
                .await
            {
                return Delivery::NotTaken(e.before_accept(Some(to.as_ref())));
            }
        }
        if let Err(e) = self.step("DATA", conn.command(Data)).await {
            return Delivery::NotTaken(e.before_accept(None));
        }
        // From here the server may have the message: only a definite answer settles it.
        let recipients: Vec<&str> = envelope.to().iter().map(|a| a.as_ref()).collect();
        match self.step("the message", conn.message(bytes)).await {
            Ok(_) => Delivery::Accepted,
            Err(StepError::Smtp(_, e)) if e.is_transient() || e.is_permanent() => {
                Delivery::NotTaken(
                    StepError::Smtp("the message".into(), e).after_data(&recipients.join(", ")),
                )
            }
            Err(e) => Delivery::Unknown(e.to_string()),
        }
    }
}

/// What became of one message.
enum Delivery {
    /// The server answered 250 to the message.
    Accepted,
    /// The server certainly does not have it.
    NotTaken(MailError),
    /// The server may have it (the answer to the message never came).
    Unknown(String),
}

/// A failed step of the SMTP conversation.
enum StepError {
    Smtp(String, lettre::transport::smtp::Error),
    Timeout(String),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Smtp(what, e) => write!(f, "{what}: {}", describe(e)),
            StepError::Timeout(what) => f.write_str(what),
        }
    }
}

/// The server's answer as it said it (`550 5.1.1 mailbox unavailable`), or lettre's words for
/// anything that is not an answer.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    match (e.status(), e.source()) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

impl StepError {
    /// Classifies a failure that happened before the message was handed over. `recipient` is
    /// set for `RCPT TO`.
    fn before_accept(self, recipient: Option<&str>) -> MailError {
        match &self {
            StepError::Smtp(_, e) if e.is_permanent() => match recipient {
                Some(to) => MailError::RecipientRefused {
                    recipient: to.to_string(),
                    message: describe(e),
                },
                None => MailError::Rejected(self.to_string()),
            },
            _ => MailError::Unavailable(self.to_string()),
        }
    }

    /// Classifies a negative answer to the message itself (4xx: try later; 5xx: the message
    /// for these recipients is refused).
    fn after_data(self, recipients: &str) -> MailError {
        match &self {
            StepError::Smtp(_, e) if e.is_permanent() => MailError::RecipientRefused {
                recipient: recipients.to_string(),
                message: describe(e),
            },
            _ => MailError::Unavailable(self.to_string()),
        }
    }
}

fn store_to_mail(e: StoreError) -> MailError {
    if e.is_retryable() {
        MailError::Unavailable(e.to_string())
    } else {
        MailError::Rejected(e.to_string())
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        if mail.to.is_empty() {
            return Err(MailError::Rejected(format!(
                "message {} has no recipients",
                mail.key
            )));
        }
        let message = self.build_message(mail)?;
        let bytes = message.formatted();
        match self.claim(&mail.key).await?.as_deref() {
            None => {}
            Some("sent") => {
                tracing::info!(key = %mail.key, "already sent; skipped");
                return Ok(());
            }
            Some(_) => {
                tracing::warn!(
                    key = %mail.key,
                    "an earlier send of this message stopped before the server's answer was \
                     recorded; the server may have it, so it is not sent again"
                );
                return Ok(());
            }
        }
        let mut conn = match self.open().await {
            Ok(conn) => conn,
            Err(e) => {
                self.release(&mail.key).await;
                return Err(e);
            }
        };
        let id = message_id(&mail.key, &self.id_domain);
        match self.transact(&mut conn, &message, &bytes).await {
            Delivery::Accepted => {
                self.mark_sent(&mail.key, &id).await;
                tracing::info!(key = %mail.key, message_id = %id, "sent");
                let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
                Ok(())
            }
            Delivery::NotTaken(e) => {
                conn.abort().await;
                self.release(&mail.key).await;
                Err(e)
            }
            Delivery::Unknown(why) => {
                conn.abort().await;
                tracing::warn!(
                    key = %mail.key,
                    error = %why,
                    "no answer to the message; the server may have it, so it is not sent again"
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_modes_parse_and_name_their_ports() {
        assert_eq!("STARTTLS".parse::<Security>(), Ok(Security::StartTls));
        assert_eq!("tls".parse::<Security>(), Ok(Security::Tls));
        assert_eq!("none".parse::<Security>(), Ok(Security::None));
        assert!("ssl".parse::<Security>().is_err());
        assert_eq!(Security::Tls.default_port(), 465);
    }

    #[test]
    fn only_loopback_hosts_count_as_loopback() {
        assert!(is_loopback("localhost"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("mail.example.com"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn the_message_id_is_the_keys_sha256_at_the_senders_domain() {
        let id = message_id("c-1:2:email-ask-user-user", "example.com");
        assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
        assert_eq!(id.len(), 1 + 64 + "@example.com>".len());
        assert_eq!(id, message_id("c-1:2:email-ask-user-user", "example.com"));
        assert_ne!(id, message_id("c-1:3:email-ask-user-user", "example.com"));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let auth = SmtpAuth {
            user: "reclaim".into(),
            password: Password::new("hunter2"),
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_login_in_clear_text_is_refused_unless_the_host_is_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("m.db")).unwrap();
        let mut settings = SmtpSettings::new("mail.example.com", "reclaim@example.com");
        settings.security = Security::None;
        settings.auth = Some(SmtpAuth {
            user: "u".into(),
            password: Password::new("p"),
        });
        let err = SmtpMailer::new(store.clone(), settings.clone()).unwrap_err();
        assert!(
            matches!(err, SmtpConfigError::PlaintextLogin { .. }),
            "{err}"
        );
        settings.host = "127.0.0.1".into();
        assert!(SmtpMailer::new(store.clone(), settings.clone()).is_ok());
        settings.from = "not an address".into();
        assert!(matches!(
            SmtpMailer::new(store, settings).unwrap_err(),
            SmtpConfigError::BadSender { .. }
        ));
    }

    #[test]
    fn line_breaks_in_a_subject_cannot_start_a_header_or_a_body() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("m.db")).unwrap();
        let mailer = SmtpMailer::new(
            store,
            SmtpSettings::new("mail.example.com", "reclaim@example.com"),
        )
        .unwrap();
        let mail = OutgoingMail {
            key: "c:1:email".into(),
            to: vec!["uma@example.com".into()],
            subject: "Do you still need Acro\r\nBcc: evil@example.com\n\nYes, keep it".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
        };
        let raw = String::from_utf8(mailer.build_message(&mail).unwrap().formatted()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
        assert!(!head.contains("\nYes, keep it"), "{head}");
    }
}
