//! `reclaim`: run Reclaim on one machine, import candidates, reclaim from the command line.

/// mimalloc, with SQLite's allocations too (`override`): under concurrent requests glibc's
/// arenas and SQLite's own memory accounting cost the store's writer a fifth of its time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use reclaim_api::app::BulkProgress;
use reclaim_api::{HmacLinkSigner, ManualTaskRevoker, Settings};
use reclaim_local::files::{read_rows, FileError};
use reclaim_local::seed::{self, SeedFile};
use reclaim_local::{Embedded, MailChoice, Password, Security, SmtpAuth, SmtpSettings};
use reclaim_workflow::ports::{CandidateFilter, CandidateRead, Revoker, SystemClock};
use reclaim_workflow::{Actor, AppliesTo, Event, Justification, PricePeriod, State};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "reclaim",
    version,
    about = "Reclaim software licenses nobody uses."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct DbArgs {
    /// The SQLite database file (created if missing).
    #[arg(long, default_value = "reclaim.db", env = "RECLAIM_DB")]
    db: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API, the link pages and the workspace, and run the worker.
    Serve(ServeArgs),
    /// Work with removal candidates.
    Candidates {
        #[command(subcommand)]
        command: CandidatesCommand,
    },
    /// Reclaim Ready candidates by id/number or by filter (as a sam admin).
    Reclaim(ReclaimArgs),
    /// Import usage of installs and subscriptions and evaluate the rules against it.
    Usage {
        #[command(subcommand)]
        command: UsageCommand,
    },
    /// Reclamation rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Savings: potential (open) and actual (Closed Complete), per year and one-time apart, as
    /// a table or CSV.
    Savings {
        #[command(flatten)]
        db: DbArgs,
        /// Print CSV (by publisher, product, justification and month).
        #[arg(long)]
        csv: bool,
        /// Sum the running totals again from every candidate first (they are kept as
        /// transitions commit; this proves it, or repairs a file edited by hand).
        #[arg(long)]
        rebuild: bool,
    },
    /// Every candidate's audit trail over a period, oldest first, as CSV (or JSON lines), for
    /// auditors.
    History {
        #[command(flatten)]
        db: DbArgs,
        /// The first day (2026-01-01) or an RFC 3339 time.
        #[arg(long)]
        from: String,
        /// The last day, counted whole (2026-12-31), or an RFC 3339 time (not included).
        #[arg(long)]
        to: String,
        /// One JSON object per line instead of CSV.
        #[arg(long)]
        json: bool,
    },
    /// Open candidates that need a look (open > 30 days, Awaiting Revocation > 60 days).
    Alerts {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Usage connectors: the plugins that read usage from the vendors and create candidates
    /// by the rules, as a usage import does.
    Connectors {
        #[command(subcommand)]
        command: ConnectorsCommand,
    },
    /// Tools for plugin authors.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Load users, groups, rules and tokens from a seed file (JSON).
    Seed {
        #[command(flatten)]
        db: DbArgs,
        file: PathBuf,
    },
    /// Copy the live database to FILE, consistently, while `reclaim serve` runs.
    Backup {
        #[command(flatten)]
        db: DbArgs,
        /// Where the copy goes (refused if it exists).
        file: PathBuf,
    },
    /// Workspace sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SessionsCommand {
    /// End every signed-in browser session at once (API tokens stay valid).
    EndAll {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "RECLAIM_ADDR")]
    addr: SocketAddr,
    /// The currency of prices and savings (ISO 4217 code), shown with every amount.
    #[arg(long, default_value = "USD", env = "RECLAIM_CURRENCY", value_parser = currency)]
    currency: String,
    #[command(flatten)]
    price: PriceArgs,
    /// The demo: seed a demo organisation, serve demo vendors for the plugins and, into an
    /// empty database, run its two usage connectors against them to find its candidates (about
    /// 40; needs the built plugins); keep mail in an outbox page instead of sending it and let
    /// anyone pick a person to sign in as. Never for real use.
    #[arg(long)]
    demo: bool,
    /// Behind a TLS reverse proxy: believe its X-Forwarded-For and X-Forwarded-Proto, and mark
    /// every cookie Secure.
    #[arg(long, env = "RECLAIM_TRUST_PROXY")]
    trust_proxy: bool,
    /// A workspace session unused this many minutes ends.
    #[arg(long, default_value_t = 60, env = "RECLAIM_SESSION_IDLE_MINUTES")]
    session_idle_minutes: u32,
    /// No workspace session lasts longer than this many hours.
    #[arg(long, default_value_t = 12, env = "RECLAIM_SESSION_MAX_HOURS")]
    session_max_hours: u32,
    /// A seed file (users, groups, rules, tokens) to load at start.
    #[arg(long, env = "RECLAIM_SEED")]
    seed: Option<PathBuf>,
    /// The URL people reach this server at (links in emails start with it).
    #[arg(long, env = "RECLAIM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds between scheduler ticks (reminders, deadlines, retries).
    #[arg(long, default_value_t = 30)]
    tick_secs: u64,
    /// Plugin directories (each `<id>/reclaim-plugin.toml` + component) the revoker routes to.
    /// With --demo: the built plugins (`plugins/build.sh` output), installed with manifests
    /// pointing at demo vendor endpoints served on loopback.
    #[arg(long, env = "RECLAIM_PLUGINS")]
    plugins: Option<PathBuf>,
    #[command(flatten)]
    oidc: OidcArgs,
    #[command(flatten)]
    mail: MailArgs,
}

/// What a bare imported price means in this organisation. `serve` (API imports) and the import
/// commands read the same setting, so a file means the same whichever way it comes in.
#[derive(Args, Debug, Clone)]
struct PriceArgs {
    /// The period of imported prices when neither the row (`price_period`) nor its rule names
    /// one: monthly, yearly or one-time (perpetual licences).
    #[arg(long, default_value = "yearly", env = "RECLAIM_PRICE_PERIOD", value_parser = price_period)]
    price_period: PricePeriod,
}

impl PriceArgs {
    /// The settings of a command that imports.
    fn settings(&self) -> Settings {
        Settings {
            price_period: self.price_period,
            ..Settings::default()
        }
    }
}

/// Sign-in with the organisation's identity provider (OpenID Connect).
#[derive(Args, Debug, Clone)]
struct OidcArgs {
    /// The identity provider's issuer URL (discovery reads its
    /// /.well-known/openid-configuration). Without it, only API tokens sign in.
    #[arg(long, env = "RECLAIM_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The client id Reclaim is registered under at the provider.
    #[arg(long, env = "RECLAIM_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    /// A file holding the client secret (or set RECLAIM_OIDC_CLIENT_SECRET).
    #[arg(long, env = "RECLAIM_OIDC_CLIENT_SECRET_FILE")]
    oidc_client_secret_file: Option<PathBuf>,
    /// The ID token claim that names the person: email, sub, preferred_username or upn.
    #[arg(long, default_value = "email", env = "RECLAIM_OIDC_CLAIM")]
    oidc_claim: String,
    /// What the sign-in button calls the provider.
    #[arg(
        long,
        default_value = "your organisation's account",
        env = "RECLAIM_OIDC_NAME"
    )]
    oidc_name: String,
}

/// Where mail goes. The SMTP password is read from `--smtp-password-file` or the environment
/// variable `RECLAIM_SMTP_PASSWORD`, never from a flag value.
#[derive(Args, Debug, Clone)]
struct MailArgs {
    /// `smtp`: mail is sent to the SMTP server below (what `serve` uses for real);
    /// `outbox`: mail is kept in the database and never sent (development; the demo always
    /// uses it, and lists it at /outbox). Without it, the SMTP settings decide.
    #[arg(long = "mail", value_enum, env = "RECLAIM_MAIL")]
    mode: Option<MailMode>,
    /// The SMTP server's host name.
    #[arg(long, env = "RECLAIM_SMTP_HOST")]
    smtp_host: Option<String>,
    /// The SMTP server's port (default: 587 for starttls, 465 for tls, 25 for none).
    #[arg(long, env = "RECLAIM_SMTP_PORT")]
    smtp_port: Option<u16>,
    /// `starttls`, `tls` (implicit TLS) or `none` (only for a relay on this machine).
    #[arg(long, env = "RECLAIM_SMTP_SECURITY", default_value = "starttls", value_parser = parse_security)]
    smtp_security: Security,
    /// The SMTP login (AUTH PLAIN or LOGIN); the password comes from --smtp-password-file or
    /// RECLAIM_SMTP_PASSWORD.
    #[arg(long, env = "RECLAIM_SMTP_USER")]
    smtp_user: Option<String>,
    /// A file holding the SMTP password (one line).
    #[arg(long, env = "RECLAIM_SMTP_PASSWORD_FILE")]
    smtp_password_file: Option<PathBuf>,
    /// Root certificates (PEM) to trust besides the public ones, for a server with a private CA.
    #[arg(long, env = "RECLAIM_SMTP_CA_FILE")]
    smtp_ca_file: Option<PathBuf>,
    /// Seconds any one step of sending (connect, TLS, each command) may take.
    #[arg(long, env = "RECLAIM_SMTP_TIMEOUT_SECS", default_value_t = 30)]
    smtp_timeout_secs: u64,
    /// The sender of every message, e.g. `Reclaim <reclaim@example.com>`.
    #[arg(long, env = "RECLAIM_MAIL_FROM")]
    mail_from: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MailMode {
    Outbox,
    Smtp,
}

fn parse_security(s: &str) -> Result<Security, String> {
    s.parse()
}

impl MailArgs {
    /// The mailer these options describe; checks that SMTP has what it needs. `serve` must
    /// be told (`required`): a production server that quietly kept its mail would ask nobody.
    fn choice(&self, required: bool) -> Result<MailChoice> {
        match (self.mode, &self.smtp_host) {
            (Some(MailMode::Outbox), _) => return Ok(MailChoice::Outbox),
            (Some(MailMode::Smtp), _) | (None, Some(_)) => {}
            (None, None) if required => bail!(
                "say where mail goes: --mail smtp with --smtp-host and --mail-from (or \
                 RECLAIM_MAIL=smtp, RECLAIM_SMTP_HOST, RECLAIM_MAIL_FROM), or --mail outbox to \
                 keep it in the database unsent (development only)"
            ),
            (None, None) => return Ok(MailChoice::Outbox),
        }
        let Some(host) = self.smtp_host.clone().filter(|h| !h.trim().is_empty()) else {
            bail!("--mail smtp needs --smtp-host (or RECLAIM_SMTP_HOST)");
        };
        let Some(from) = self.mail_from.clone().filter(|f| !f.trim().is_empty()) else {
            bail!("--mail smtp needs --mail-from (or RECLAIM_MAIL_FROM)");
        };
        let from_env = std::env::var("RECLAIM_SMTP_PASSWORD").ok();
        let password = match (&self.smtp_password_file, from_env) {
            (Some(_), Some(_)) => {
                bail!("both --smtp-password-file and RECLAIM_SMTP_PASSWORD are set: give one")
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the SMTP password file {}", path.display())
                })?;
                Some(text.trim_end_matches(['\r', '\n']).to_string())
            }
            (None, Some(p)) => Some(p),
            (None, None) => None,
        };
        let auth = match (&self.smtp_user, password) {
            (Some(user), Some(password)) => Some(SmtpAuth {
                user: user.clone(),
                password: Password::new(password),
            }),
            (Some(_), None) => {
                bail!("--smtp-user needs a password: --smtp-password-file or RECLAIM_SMTP_PASSWORD")
            }
            (None, Some(_)) => bail!("an SMTP password is set but no --smtp-user"),
            (None, None) => None,
        };
        let security = self.smtp_security;
        Ok(MailChoice::Smtp(SmtpSettings {
            host,
            port: self.smtp_port.unwrap_or(security.default_port()),
            security,
            auth,
            from,
            ca_file: self.smtp_ca_file.clone(),
            timeout: Duration::from_secs(self.smtp_timeout_secs.max(1)),
        }))
    }
}

#[derive(Subcommand, Debug)]
enum CandidatesCommand {
    /// Import candidates from a CSV or JSON file. A file with any bad row imports nothing,
    /// unless --skip-invalid.
    Import {
        #[command(flatten)]
        db: DbArgs,
        file: PathBuf,
        /// Import the good rows and report the bad ones.
        #[arg(long)]
        skip_invalid: bool,
        #[command(flatten)]
        price: PriceArgs,
    },
    /// List candidates.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[derive(Subcommand, Debug)]
enum UsageCommand {
    /// Import a usage file (CSV or JSON) and create candidates by the rules. A file with any
    /// bad row imports nothing, unless --skip-invalid.
    Import {
        #[command(flatten)]
        db: DbArgs,
        file: PathBuf,
        #[arg(long)]
        skip_invalid: bool,
        /// Write every finding (created, would create, excluded, already open) as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
        #[command(flatten)]
        price: PriceArgs,
        #[command(flatten)]
        send: SendArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ConnectorsCommand {
    /// Each connector among the plugins, its schedule, when it next runs and its latest run.
    List(ConnectorArgs),
    /// Run a connector to its end now (or finish its run left unfinished) and report it.
    Run {
        #[command(flatten)]
        args: ConnectorArgs,
        /// The connector's id (its plugin's id).
        id: String,
    },
    /// A connector's latest runs, newest first.
    Runs {
        #[command(flatten)]
        args: ConnectorArgs,
        id: String,
        /// How many.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

#[derive(Args, Debug)]
struct ConnectorArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The plugin directories `serve --plugins` loads (each `<id>/reclaim-plugin.toml` +
    /// component); the connectors are those that collect usage.
    #[arg(long, env = "RECLAIM_PLUGINS")]
    plugins: PathBuf,
    /// Let the plugins reach private and loopback addresses (a vendor service on this network).
    #[arg(long)]
    allow_private_addresses: bool,
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Validate a plugin (world, manifest), print describe(), run reclaim with dry-run.
    Check {
        /// A plugin directory (with reclaim-plugin.toml) or a component .wasm file.
        path: PathBuf,
        /// The database whose compile cache (`DB.plugin-cache`, the one `serve` uses) keeps
        /// compiled plugins, so a second check of the same component does not compile it again.
        #[command(flatten)]
        db: DbArgs,
        /// A request JSON file; dry-run is forced on.
        #[arg(long)]
        request: Option<PathBuf>,
        /// Let the plugin reach loopback/private addresses (for a local fake vendor).
        #[arg(long)]
        allow_private_addresses: bool,
    },
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// List the rules (JSON).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create or replace rules from a JSON file (one rule or an array).
    Put {
        #[command(flatten)]
        db: DbArgs,
        file: PathBuf,
    },
    /// Delete a rule. Candidates it created keep their copy of it and go on as they started.
    Delete {
        #[command(flatten)]
        db: DbArgs,
        id: String,
    },
}

#[derive(Args, Debug, Default)]
struct FilterArgs {
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    justification: Option<String>,
    #[arg(long)]
    applies_to: Option<String>,
    #[arg(long)]
    publisher: Option<String>,
    #[arg(long)]
    product: Option<String>,
    #[arg(long)]
    group: Option<String>,
}

#[derive(Args, Debug)]
struct ReclaimArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Candidate ids or numbers (RC0000042). Without any, the filter selects.
    ids: Vec<String>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Reclaim every Ready candidate the filter selects (required when no ids are given and
    /// no filter is set, so nothing happens by accident).
    #[arg(long)]
    all: bool,
    /// The sam admin acting (a user id from the directory).
    #[arg(long = "as", env = "RECLAIM_USER")]
    actor: Option<String>,
    #[command(flatten)]
    send: SendArgs,
}

/// How commands that run the resulting effects at once send their mail: as `serve` does.
#[derive(Args, Debug, Clone)]
struct SendArgs {
    /// The URL people reach the server at (links in the emails sent now start with it).
    #[arg(long, env = "RECLAIM_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(flatten)]
    mail: MailArgs,
}

impl SendArgs {
    fn open(&self, db: &Path, mut settings: Settings) -> Result<Embedded> {
        if let Some(url) = &self.public_url {
            settings.public_url = url.clone();
        }
        open_with(
            db,
            settings,
            Arc::new(ManualTaskRevoker),
            &link_key(db)?,
            self.mail.choice(false)?,
        )
    }
}

fn filter(f: &FilterArgs) -> Result<CandidateFilter> {
    let parse = |v: &Option<String>, name: &str, ok: &dyn Fn(&str) -> bool| -> Result<()> {
        match v {
            Some(s) if !ok(s) => bail!("--{name}: '{s}' is not a known value"),
            _ => Ok(()),
        }
    };
    parse(&f.state, "state", &|s| State::parse(s).is_some())?;
    parse(&f.justification, "justification", &|s| {
        Justification::parse(s).is_some()
    })?;
    parse(&f.applies_to, "applies-to", &|s| {
        AppliesTo::parse(s).is_some()
    })?;
    Ok(CandidateFilter {
        state: f.state.as_deref().and_then(State::parse),
        justification: f.justification.as_deref().and_then(Justification::parse),
        applies_to: f.applies_to.as_deref().and_then(AppliesTo::parse),
        publisher: f.publisher.clone(),
        product: f.product.clone(),
        group: f.group.clone(),
        ..CandidateFilter::default()
    })
}

/// The link-signing key lives beside the database, created once with owner-only access.
fn link_key(db: &Path) -> Result<Vec<u8>> {
    if let Ok(k) = std::env::var("RECLAIM_LINK_KEY") {
        return Ok(k.into_bytes());
    }
    let mut path = db.as_os_str().to_owned();
    path.push(".link-key");
    let path = PathBuf::from(path);
    if let Ok(k) = std::fs::read(&path) {
        return Ok(k);
    }
    let key: Vec<u8> = (0..48).map(|_| rand::random::<u8>()).collect();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, hex.as_bytes())
        .with_context(|| format!("cannot write the link-signing key {}", path.display()))?;
    Ok(hex.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

fn open(db: &Path, settings: Settings, revoker: Arc<dyn Revoker>) -> Result<Embedded> {
    open_with(db, settings, revoker, &link_key(db)?, MailChoice::Outbox)
}

fn open_with(
    db: &Path,
    settings: Settings,
    revoker: Arc<dyn Revoker>,
    key: &[u8],
    mail: MailChoice,
) -> Result<Embedded> {
    let signer = HmacLinkSigner::new(key).map_err(anyhow::Error::msg)?;
    Embedded::open_with_mail(
        db,
        settings,
        Arc::new(signer),
        revoker,
        Arc::new(SystemClock),
        mail,
    )
    .map_err(|e| match e {
        reclaim_local::EmbeddedError::Open(e) => {
            anyhow::Error::new(e).context(format!("cannot open {}", db.display()))
        }
        reclaim_local::EmbeddedError::Mail(e) => anyhow::Error::new(e).context("mail settings"),
    })
}

/// What `serve` says about its mail at start (never the password).
fn describe_mail(mail: &MailChoice, outbox_page: Option<&str>) -> String {
    match mail {
        MailChoice::Outbox => format!(
            "mail: kept in the database, never sent{}",
            outbox_page
                .map(|url| format!(" (the demo lists it at {url}/outbox)"))
                .unwrap_or_default()
        ),
        MailChoice::Smtp(s) => format!(
            "mail: SMTP {}:{} ({}{}), from {}",
            s.host,
            s.port,
            s.security,
            s.auth
                .as_ref()
                .map(|a| format!(", login {}", a.user))
                .unwrap_or_default(),
            s.from
        ),
    }
}

fn print_import_errors(report: &reclaim_api::app::ImportReport) {
    print_row_errors(&report.invalid);
}

/// Bad rows, one line per problem; a problem every one of several lines has (a column the
/// file should not have) is said once, with the lines it is on.
fn print_row_errors(rows: &[reclaim_api::app::RowError]) {
    let mut seen: Vec<(&str, &str, Vec<usize>)> = Vec::new();
    for row in rows {
        for e in &row.errors {
            match seen
                .iter_mut()
                .find(|(f, m, _)| *f == e.field && *m == e.message)
            {
                Some((_, _, lines)) => lines.push(row.line),
                None => seen.push((&e.field, &e.message, vec![row.line])),
            }
        }
    }
    for (field, message, lines) in seen {
        eprintln!("{}: {field}: {message}", line_list(&lines));
    }
}

/// "line 4", "lines 2-6", "lines 2, 5-7".
fn line_list(lines: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        while j + 1 < lines.len() && lines[j + 1] == lines[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            lines[i].to_string()
        } else {
            format!("{}-{}", lines[i], lines[j])
        });
        i = j + 1;
    }
    let word = if lines.len() == 1 { "line" } else { "lines" };
    format!("{word} {}", parts.join(", "))
}

async fn import(db: &DbArgs, file: &Path, skip_invalid: bool, price: &PriceArgs) -> Result<()> {
    let rows = match read_rows(file) {
        Ok(rows) => rows,
        Err(FileError::Rows { path, rows }) => {
            for (line, e) in &rows {
                eprintln!("{path}: item {line}: {}: {}", e.field, e.message);
            }
            bail!("{path}: nothing imported ({} bad value(s))", rows.len());
        }
        Err(e) => return Err(e.into()),
    };
    let embedded = open(&db.db, price.settings(), Arc::new(ManualTaskRevoker))?;
    let report = embedded.app.import(rows, skip_invalid).await?;
    print_import_errors(&report);
    if report.rejected {
        bail!(
            "{}: nothing imported: {} bad row(s); fix them or pass --skip-invalid",
            file.display(),
            report.invalid.len()
        );
    }
    println!(
        "imported {} candidate(s){}",
        report.created.len(),
        if report.invalid.is_empty() {
            String::new()
        } else {
            format!(", skipped {} bad row(s)", report.invalid.len())
        }
    );
    Ok(())
}

async fn import_usage(
    db: &DbArgs,
    file: &Path,
    skip_invalid: bool,
    report_path: Option<&Path>,
    price: &PriceArgs,
    send: &SendArgs,
) -> Result<()> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    // Only large files get a bar; it draws on stderr and only on a terminal.
    let bar = if size > 1_000_000 {
        ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("reading");
    let started = std::time::Instant::now();
    // Each row is parsed as it is read; only the parsed records are kept.
    let mut batch = reclaim_workflow::usage::UsageBatch::default();
    let read = reclaim_local::files::for_each_row(
        file,
        |done, _| bar.set_position(done),
        |line, row| batch.push(line, row),
    );
    match read {
        Ok(_) => {}
        Err(FileError::Rows { path, rows }) => {
            bar.finish_and_clear();
            for (line, e) in &rows {
                eprintln!("{path}: item {line}: {}: {}", e.field, e.message);
            }
            bail!("{path}: nothing imported ({} bad value(s))", rows.len());
        }
        Err(e) => return Err(e.into()),
    }
    tracing::debug!(
        rows = batch.rows,
        read_ms = started.elapsed().as_millis(),
        "usage file read and parsed"
    );
    bar.set_message("evaluating");
    let embedded = send.open(&db.db, price.settings())?;
    let report = embedded.app.import_usage_batch(batch, skip_invalid).await?;
    bar.finish_and_clear();
    print_row_errors(&report.invalid);
    if report.rejected {
        bail!(
            "{}: nothing imported: {} bad row(s); fix them or pass --skip-invalid",
            file.display(),
            report.invalid.len()
        );
    }
    if let Some(path) = report_path {
        std::fs::write(path, serde_json::to_vec_pretty(&report.findings)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    embedded.drain().await?;
    let mut skipped: std::collections::BTreeMap<String, usize> = Default::default();
    let mut would = 0;
    for f in &report.findings {
        use reclaim_workflow::usage::Decision;
        match &f.decision {
            Decision::Create => {}
            Decision::WouldCreate => would += 1,
            Decision::Excluded(why) => *skipped.entry(why.clone()).or_default() += 1,
            Decision::AlreadyOpen(_) => {
                *skipped
                    .entry("an open candidate exists".into())
                    .or_default() += 1
            }
        }
    }
    println!("rows read:        {}", report.rows);
    println!("created:          {}", report.created.len());
    println!("report only:      {would} (rules with create_candidates off)");
    println!(
        "canceled:         {} (user active again)",
        report.canceled.len()
    );
    println!("skipped:          {}", skipped.values().sum::<usize>());
    for (why, n) in &skipped {
        println!("  {n:>6}  {why}");
    }
    println!(
        "no rule applied:  {} (used recently enough, or no rule covers the software)",
        report.unmatched.len()
    );
    if !report.unmatched.is_empty() {
        println!("  {}", line_list(&report.unmatched));
    }
    println!("bad rows:         {}", report.invalid.len());
    Ok(())
}

async fn acting_admin(embedded: &Embedded, actor: Option<&str>) -> Result<Actor> {
    let id = match actor {
        Some(id) => id.to_string(),
        None => {
            let admins: Vec<_> = embedded
                .app
                .ports
                .directory
                .users()
                .await?
                .into_iter()
                .filter(|u| u.sam_admin)
                .collect();
            match admins.as_slice() {
                [one] => one.id.clone(),
                [] => bail!(
                    "no sam admin in the directory: load a seed file first (reclaim seed FILE)"
                ),
                _ => bail!("several sam admins exist: say which with --as USER"),
            }
        }
    };
    match embedded.app.principal(&id).await? {
        Some(p) if p.sam_admin => Ok(Actor::Person(p)),
        Some(_) => bail!("{id} is not a sam admin"),
        None => bail!("no user {id} in the directory"),
    }
}

/// Reports a bulk action's progress on standard error: on one line rewritten in place at a
/// terminal, else a line at each tenth (so a log is not flooded).
fn say_progress(verb: &'static str) -> impl Fn(BulkProgress) + Send + Sync {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let last_tenth = std::sync::atomic::AtomicUsize::new(usize::MAX);
    move |p: BulkProgress| {
        if p.total == 0 {
            return;
        }
        let line = format!("{verb} {} of {}", p.done, p.total);
        if terminal {
            eprint!("\r{line}");
            if p.done == p.total {
                eprintln!();
            }
        } else {
            let tenth = p.done * 10 / p.total;
            if last_tenth.swap(tenth, std::sync::atomic::Ordering::Relaxed) != tenth {
                eprintln!("{line}");
            }
        }
    }
}

async fn reclaim(args: &ReclaimArgs) -> Result<()> {
    let embedded = args.send.open(&args.db.db, Settings::default())?;
    let actor = acting_admin(&embedded, args.actor.as_deref()).await?;
    let mut failed = 0;
    if args.ids.is_empty() {
        let f = filter(&args.filter)?;
        if f == CandidateFilter::default() && !args.all {
            bail!("give candidate ids, a filter (--state, --publisher, ...), or --all");
        }
        let report = embedded
            .app
            .reclaim_all(&f, &actor, &say_progress("reclaimed"))
            .await?;
        for n in &report.reclaimed {
            println!("{n}: reclaimed");
        }
        for r in &report.refused {
            eprintln!("{}: {}", r.number, r.error);
        }
        failed = report.refused.len();
    } else {
        for id in &args.ids {
            match embedded
                .app
                .transition(id, &Event::Reclaim, &actor, None)
                .await
            {
                Ok(c) => println!("{}: {}", c.number, c.state),
                Err(e) => {
                    failed += 1;
                    eprintln!("{id}: {e}");
                }
            }
        }
    }
    embedded.drain().await?;
    if failed > 0 {
        bail!("{failed} candidate(s) not reclaimed");
    }
    Ok(())
}

async fn list(db: &DbArgs, f: &FilterArgs) -> Result<()> {
    let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
    let f = filter(f)?;
    let mut page = reclaim_workflow::ports::PageRequest {
        limit: 500,
        cursor: None,
        sort: None,
    };
    loop {
        let p = embedded.store.list(&f, &page).await?;
        for c in &p.items {
            let user = c.user.as_ref().map_or("-", |u| u.id.as_str());
            println!(
                "{}\t{}\t{} {}\t{}\t{}",
                c.number,
                c.state,
                c.software.publisher,
                c.software.product,
                user,
                c.justification.as_str()
            );
        }
        match p.next {
            Some(n) => page.cursor = Some(n),
            None => return Ok(()),
        }
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.addr));
    if args.session_idle_minutes == 0 || args.session_max_hours == 0 {
        bail!("--session-idle-minutes and --session-max-hours must be at least 1");
    }
    if args.demo && args.mail.mode == Some(MailMode::Smtp) {
        bail!("--demo keeps its mail in the outbox; leave out --mail smtp");
    }
    let mail = if args.demo {
        MailChoice::Outbox
    } else {
        args.mail.choice(true)?
    };
    let settings = Settings {
        public_url: public_url.clone(),
        currency: args.currency.clone(),
        price_period: args.price.price_period,
        ..Settings::default()
    };
    let mail_line = describe_mail(&mail, args.demo.then_some(public_url.as_str()));
    let (revoker, sources) = plugin_revoker(&args).await?;
    let _vendors = sources.vendors;
    let link_key = link_key(&args.db.db)?;
    let embedded = open_with(&args.db.db, settings, revoker, &link_key, mail)?
        .with_sources(sources.connectors);
    let mut seed_file = SeedFile::default();
    if args.demo {
        seed_file = seed::demo();
        seed_file
            .apply(
                embedded.app.ports.directory.as_ref(),
                embedded.app.ports.rules.as_ref(),
                embedded.app.ports.tokens.as_ref(),
            )
            .await?;
        let existing = embedded
            .store
            .list(
                &CandidateFilter::default(),
                &reclaim_workflow::ports::PageRequest {
                    limit: 1,
                    cursor: None,
                    sort: None,
                },
            )
            .await?;
        if existing.items.is_empty() {
            demo_candidates(&embedded).await?;
            if let Some(vendors) = &_vendors {
                demo_verification(&embedded, vendors).await?;
            }
        }
    }
    if let Some(path) = &args.seed {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: SeedFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid seed file", path.display()))?;
        file.apply(
            embedded.app.ports.directory.as_ref(),
            embedded.app.ports.rules.as_ref(),
            embedded.app.ports.tokens.as_ref(),
        )
        .await
        .with_context(|| format!("{}", path.display()))?;
    }
    let tokens = reclaim_api::StoredTokens::new(embedded.app.ports.tokens.clone());
    let mut state = reclaim_api::ApiState::new(embedded.app.clone(), Arc::new(tokens))
        .with_session_key(&reclaim_api::http::ui::session::SessionKey::derive(
            &link_key,
        ))
        .map_err(anyhow::Error::msg)?
        .with_session_policy(reclaim_api::http::ui::session::SessionPolicy {
            idle: chrono::Duration::minutes(i64::from(args.session_idle_minutes)),
            absolute: chrono::Duration::hours(i64::from(args.session_max_hours)),
        });
    if args.trust_proxy {
        state = state.behind_proxy();
    }
    if args.demo {
        state = state.demo(Arc::new(embedded.mailer.clone()));
    }
    if let Some(oidc) = oidc_config(&args.oidc, &public_url)? {
        println!("sign-in: {} ({})", oidc.issuer, oidc.claim.as_str());
        let oidc = reclaim_api::http::ui::oidc::Oidc::new(oidc).map_err(anyhow::Error::msg)?;
        state = state.with_oidc(Arc::new(oidc));
    }
    let router = reclaim_api::router(state);

    let worker = embedded.start_worker(Some(Duration::from_secs(args.tick_secs.max(1))));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    println!(
        "Reclaim is serving on {public_url} (database {})",
        args.db.db.display()
    );
    println!("{mail_line}");
    if args.demo {
        println!(
            "DEMO MODE: mail stays in the outbox page, anyone can sign in as anyone, demo \
             vendors answer the plugins. Never use --demo for real."
        );
        print_demo_help(&public_url, &seed_file);
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    worker.shutdown().await;
    Ok(())
}

fn currency(code: &str) -> Result<String, String> {
    reclaim_workflow::text::currency_code(code)
}

fn price_period(name: &str) -> Result<PricePeriod, String> {
    PricePeriod::parse(name.trim()).ok_or_else(|| {
        let all: Vec<_> = PricePeriod::ALL.iter().map(|p| p.as_str()).collect();
        format!("'{name}' is not a price period: use {}", all.join(", "))
    })
}

/// The identity provider's settings, when an issuer is given; the secret from its file or the
/// environment, never from a flag (flags show in `ps`).
fn oidc_config(
    args: &OidcArgs,
    public_url: &str,
) -> Result<Option<reclaim_api::http::ui::oidc::OidcConfig>> {
    use reclaim_api::http::ui::oidc::{MatchClaim, OidcConfig};
    let Some(issuer) = args.oidc_issuer.clone() else {
        return Ok(None);
    };
    let client_id = args
        .oidc_client_id
        .clone()
        .context("--oidc-issuer needs --oidc-client-id (RECLAIM_OIDC_CLIENT_ID)")?;
    let client_secret = match (
        &args.oidc_client_secret_file,
        std::env::var("RECLAIM_OIDC_CLIENT_SECRET"),
    ) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the client secret {}", path.display()))?
            .trim()
            .to_string(),
        (None, Ok(secret)) => secret.trim().to_string(),
        (None, Err(_)) => bail!(
            "--oidc-issuer needs the client secret: --oidc-client-secret-file FILE or \
             RECLAIM_OIDC_CLIENT_SECRET"
        ),
    };
    if client_secret.is_empty() {
        bail!("the OpenID Connect client secret is empty");
    }
    let claim = MatchClaim::parse(&args.oidc_claim).with_context(|| {
        format!(
            "--oidc-claim {}: use email, sub, preferred_username or upn",
            args.oidc_claim
        )
    })?;
    Ok(Some(OidcConfig {
        issuer,
        client_id,
        client_secret,
        redirect_url: OidcConfig::redirect_for(public_url),
        claim,
        display_name: args.oidc_name.clone(),
    }))
}

/// Ctrl-C, or SIGTERM from systemd or a container runtime: either lets requests in flight and
/// the worker's runs finish.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The revoker `serve` uses: the plugin host over `--plugins` (for the demo, the built plugins
/// pointed at demo vendor endpoints this process serves on loopback, which are returned so they
/// live as long as the server), or the built-in manual task when no plugins are given.
async fn plugin_revoker(args: &ServeArgs) -> Result<(Arc<dyn Revoker>, Sources)> {
    let default_dist = PathBuf::from("plugins/dist");
    let source = match (&args.plugins, args.demo) {
        (Some(p), _) => p.clone(),
        (None, true) if default_dist.is_dir() => default_dist,
        (None, true) => {
            eprintln!(
                "demo: no built plugins at plugins/dist (run plugins/build.sh plugins/dist, as \
                 demo.sh does): the demo has no usage connectors, so no candidates, and \
                 revocations become manual tasks"
            );
            return Ok((Arc::new(ManualTaskRevoker), Sources::none()));
        }
        (None, false) => return Ok((Arc::new(ManualTaskRevoker), Sources::none())),
    };
    let cache = plugin_cache(&args.db.db);
    let (dir, vendors, allow_private) = if args.demo {
        let vendors = reclaim_fakes::spawn_demo_organisation()
            .await
            .context("cannot start the demo vendor endpoints")?;
        let mut dir = args.db.db.as_os_str().to_owned();
        dir.push(".demo-plugins");
        let dir = PathBuf::from(dir);
        // Vendors report no prices: the organisation's price list goes to its connectors.
        vendors
            .install_plugins_with(
                &source,
                &dir,
                &[
                    ("m365-usage", "prices", seed::DEMO_M365_PRICES),
                    ("csd-inventory", "prices", seed::DEMO_DESKTOP_PRICES),
                ],
            )
            .with_context(|| format!("cannot install the plugins of {}", source.display()))?;
        println!(
            "demo vendors: Graph {}, SCIM {}, CSD {}",
            vendors.graph_url, vendors.scim_url, vendors.csd_url
        );
        (dir, Some(vendors), true)
    } else {
        (source, None, false)
    };
    let host = reclaim_host::PluginHost::new(reclaim_host::HostConfig {
        cache_dir: Some(cache),
        allow_private_addresses: allow_private,
        ..reclaim_host::HostConfig::default()
    })?;
    let loaded = tokio::task::block_in_place(|| host.load_all(&dir))
        .with_context(|| format!("cannot load the plugins in {}", dir.display()))?;
    let ids: Vec<_> = loaded.iter().map(|p| p.id.as_str()).collect();
    println!("plugins: {}", ids.join(", "));
    let sources = Sources {
        connectors: Arc::new(host.clone()),
        vendors,
    };
    Ok((Arc::new(reclaim_host::PluginRevoker::new(host)), sources))
}

/// The usage connectors `serve` runs (the loaded plugins that collect usage), with the demo's
/// vendor endpoints they and the other plugins call, kept alive as long as the server.
struct Sources {
    connectors: Arc<dyn reclaim_workflow::ports::UsageSources>,
    vendors: Option<reclaim_fakes::FakeVendors>,
}

impl Sources {
    fn none() -> Sources {
        Sources {
            connectors: Arc::new(reclaim_workflow::ports::NoSources),
            vendors: None,
        }
    }
}

async fn connectors(command: ConnectorsCommand) -> Result<()> {
    let args = match &command {
        ConnectorsCommand::List(a)
        | ConnectorsCommand::Run { args: a, .. }
        | ConnectorsCommand::Runs { args: a, .. } => a,
    };
    let host = reclaim_host::PluginHost::new(reclaim_host::HostConfig {
        cache_dir: Some(plugin_cache(&args.db.db)),
        allow_private_addresses: args.allow_private_addresses,
        ..reclaim_host::HostConfig::default()
    })?;
    let dir = args.plugins.clone();
    tokio::task::block_in_place(|| host.load_all(&dir))
        .with_context(|| format!("cannot load the plugins in {}", dir.display()))?;
    let embedded = open(
        &args.db.db,
        Settings::default(),
        Arc::new(reclaim_host::PluginRevoker::new(host.clone())),
    )?
    .with_sources(Arc::new(host));
    let app = &embedded.app;
    match command {
        ConnectorsCommand::List(_) => {
            let all = app.connectors().await?;
            if all.is_empty() {
                println!("no usage connectors among the plugins in {}", dir.display());
            }
            for c in all {
                println!(
                    "{}\t{}\t{}\tnext run {}",
                    c.info.id,
                    c.info.name,
                    c.info.schedule,
                    c.next_run_at.format("%Y-%m-%d %H:%M UTC")
                );
                if let Some(r) = c.runs.first() {
                    println!("  last run: {}", run_line(r));
                }
            }
        }
        ConnectorsCommand::Run { id, .. } => {
            let run = app.run_connector(&id, "cli", None).await?;
            println!("{}", run_line(&run));
            for (what, counts) in [("skipped", &run.skipped), ("not reported", &run.notes)] {
                for (reason, n) in counts {
                    println!("  {what}: {reason}: {n}");
                }
            }
            if let Some(e) = &run.error {
                bail!("connector {id} failed: {e}");
            }
        }
        ConnectorsCommand::Runs { id, limit, .. } => {
            app.connector_status(&id).await?;
            for r in app.ports.runs.runs(&id, limit).await? {
                println!("{}", run_line(&r));
            }
        }
    }
    Ok(())
}

/// One run in a line: what the CLI prints for `connectors list|run|runs`.
fn run_line(r: &reclaim_workflow::ports::ConnectorRun) -> String {
    format!(
        "run {} ({}, {}): {} from {}, {} pages, {} rows, {} created, {} report-only, {} canceled",
        r.seq,
        r.trigger,
        r.started_at.format("%Y-%m-%d %H:%M UTC"),
        r.state.as_str(),
        r.connector,
        r.pages,
        r.rows,
        r.created,
        r.report_only,
        r.canceled
    )
}

/// Where compiled plugins are kept: beside the database, shared by `serve` and `plugin check`.
fn plugin_cache(db: &std::path::Path) -> PathBuf {
    let mut cache = db.as_os_str().to_owned();
    cache.push(".plugin-cache");
    PathBuf::from(cache)
}

async fn plugin(command: PluginCommand) -> Result<()> {
    let PluginCommand::Check {
        path,
        db,
        request,
        allow_private_addresses,
    } = command;
    let request = request
        .map(|r| {
            std::fs::read_to_string(&r).with_context(|| format!("cannot read {}", r.display()))
        })
        .transpose()?;
    let cfg = reclaim_host::HostConfig {
        allow_private_addresses,
        cache_dir: Some(plugin_cache(&db.db)),
        ..reclaim_host::HostConfig::default()
    };
    let report = tokio::task::spawn_blocking(move || {
        reclaim_host::check::check_with(&path, request.as_deref(), cfg)
    })
    .await??;
    println!("{report}");
    if !report.passed() {
        bail!("the plugin check failed");
    }
    Ok(())
}

/// The demo's candidates: its usage connectors run to the end against the demo vendors, as
/// their first scheduled run would, before the server answers anyone. Each connector's run is
/// an ordinary run (trigger `demo`), on the Connectors page like any other.
async fn demo_candidates(embedded: &reclaim_local::Embedded) -> Result<()> {
    let app = &embedded.app;
    let connectors = app.ports.sources.connectors().await?;
    if connectors.is_empty() {
        println!(
            "demo: no usage connectors, so no candidates: the demo finds its candidates with \
             the built plugins (demo.sh builds them; or pass --plugins DIR)"
        );
        return Ok(());
    }
    for info in connectors {
        let run = app.run_connector(&info.id, "demo", None).await?;
        let by_rule: Vec<String> = run
            .created_by_rule
            .iter()
            .map(|(rule, n)| format!("{n} by {rule}"))
            .collect();
        println!(
            "demo: {} created {} candidates from {} rows ({})",
            info.id,
            run.created,
            run.rows,
            by_rule.join(", ")
        );
        for (reason, n) in &run.skipped {
            println!("  skipped: {reason}: {n}");
        }
        // The connector's notes say themselves what was not reported.
        for (reason, n) in &run.notes {
            println!("  {reason}: {n}");
        }
        if let Some(e) = &run.error {
            eprintln!("demo: {} failed: {e}", info.id);
        }
    }
    Ok(())
}

/// The rule whose Microsoft 365 licenses the demo reclaims at start, without notification.
const DEMO_NO_NOTIFY_RULE: &str = "m365-dormant";

/// The demo shows verification at once instead of after a week: two dormant Microsoft 365
/// licenses are reclaimed without notification through the m365-revoke plugin and verified
/// absent at the demo tenant; then the tenant assigns one of the two again (as an admin giving
/// the license back would), and a sam admin's Check now finds it: reappeared, an alert, out of
/// the actual savings. VIPs are left alone, as the rule's exclusion would hold them.
async fn demo_verification(
    embedded: &reclaim_local::Embedded,
    vendors: &reclaim_fakes::FakeVendors,
) -> Result<()> {
    let app = &embedded.app;
    let Some(sam) = app.principal("sam").await? else {
        return Ok(());
    };
    let sam = reclaim_workflow::Actor::Person(sam);
    let licenses = CandidateFilter {
        state: Some(reclaim_workflow::State::Ready),
        publisher: Some("Microsoft".into()),
        applies_to: Some(reclaim_workflow::AppliesTo::Subscription),
        ..CandidateFilter::default()
    };
    let mut picked: Vec<reclaim_workflow::Candidate> = Vec::new();
    for c in app.list_all(&licenses).await? {
        if picked.len() == 2 || c.rule.id != DEMO_NO_NOTIFY_RULE {
            continue;
        }
        let Some(user) = c.user.clone() else {
            continue;
        };
        let vip = app
            .ports
            .directory
            .user(&user.id)
            .await?
            .is_some_and(|u| u.vip);
        let other = picked
            .iter()
            .all(|p| p.user.as_ref().map(|u| &u.id) != Some(&user.id));
        if !vip && !user.vip && other && user.upn.is_some() && c.software.sku.is_some() {
            picked.push(c);
        }
    }
    let [verified, reappeared] = picked.as_slice() else {
        return Ok(());
    };
    for c in [verified, reappeared] {
        app.transition(&c.id, &reclaim_workflow::Event::Reclaim, &sam, None)
            .await?;
    }
    embedded.drain().await?;
    let upn = reappeared
        .user
        .as_ref()
        .and_then(|u| u.upn.clone())
        .unwrap_or_default();
    let sku = reappeared.software.sku.clone().unwrap_or_default();
    if !vendors.graph.reassign_license(&upn, &sku) {
        return Ok(());
    }
    app.transition(
        &reappeared.id,
        &reclaim_workflow::Event::CheckNow,
        &sam,
        None,
    )
    .await?;
    embedded.drain().await?;
    for c in [verified, reappeared] {
        let now = app.candidate(&c.id).await?;
        let v = now.verification.as_ref();
        let how = match v {
            Some(v) if v.reappeared_at.is_some() => {
                "reclaimed without notification, verified absent, then the demo tenant \
                 assigned it again: reappeared (see Alerts)"
            }
            Some(v) if v.status == reclaim_workflow::VerificationStatus::Verified => {
                "reclaimed without notification and verified absent at the demo tenant"
            }
            _ => "reclaimed",
        };
        println!(
            "demo: {} ({}, {}) {how}",
            now.number,
            now.software.label(),
            now.user.as_ref().map_or("", |u| u.id.as_str())
        );
    }
    Ok(())
}

fn print_demo_help(url: &str, seed: &SeedFile) {
    println!();
    println!("Try it:");
    println!("  Web workspace (sign in as any demo user):   {url}/ui");
    println!("  Outbox (emails with clickable Yes/No links): {url}/outbox");
    println!("  API description:                              {url}/api/v1/openapi.json");
    println!();
    println!("Tokens (Authorization: Bearer <token>):");
    for (token, user) in &seed.tokens {
        let u = seed.users.iter().find(|x| &x.id == user);
        let role = match u {
            Some(u) if u.sam_admin => "sam admin",
            Some(_) if seed.groups.iter().any(|g| g.members.contains(user)) => "approver",
            Some(u) if u.itil => "ITIL user",
            _ => "user",
        };
        println!("  {user:<6} ({role:<9}) {token}");
    }
    let admin = seed
        .tokens
        .iter()
        .find(|(_, u)| seed.users.iter().any(|x| &x.id == *u && x.sam_admin))
        .map_or("<token>", |(t, _)| t.as_str());
    println!();
    println!("  curl -s -H 'Authorization: Bearer {admin}' '{url}/api/v1/candidates?state=ready&limit=5'");
    println!("  curl -s -X POST -H 'Authorization: Bearer {admin}' {url}/api/v1/candidates/RC0000001/reclaim");
    println!("  then open {url}/outbox and click Yes or No in the email;");
    println!(
        "  curl -s -H 'Authorization: Bearer {admin}' {url}/api/v1/candidates/RC0000001/workflow"
    );
}

async fn rules(command: RulesCommand) -> Result<()> {
    match command {
        RulesCommand::List { db } => {
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            let rules = embedded.app.ports.rules.rules().await?;
            println!("{}", serde_json::to_string_pretty(&rules)?);
            Ok(())
        }
        RulesCommand::Put { db, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not valid JSON", file.display()))?;
            let items = match value {
                serde_json::Value::Array(items) => items,
                one => vec![one],
            };
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            // Check every rule first (the same check as the API), so one bad rule stores none.
            let mut rules = Vec::new();
            let mut bad = 0;
            for (i, item) in items.iter().enumerate() {
                match embedded.app.check_rule(item).await {
                    Ok(rule) => rules.push(rule),
                    Err(reclaim_api::AppError::Invalid(errors)) => {
                        bad += 1;
                        for e in errors {
                            eprintln!(
                                "{}: rule {}: {}: {}",
                                file.display(),
                                i + 1,
                                e.field,
                                e.message
                            );
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if bad > 0 {
                bail!("{}: nothing stored: {bad} bad rule(s)", file.display());
            }
            for r in &rules {
                embedded.app.ports.rules.put_rule(r).await?;
                println!("stored rule {}", r.id);
            }
            Ok(())
        }
        RulesCommand::Delete { db, id } => {
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            match embedded.app.delete_rule(&id).await {
                Ok(()) => {
                    println!("deleted rule {id}");
                    Ok(())
                }
                Err(reclaim_api::AppError::NotFound { .. }) => bail!("no rule '{id}'"),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Errors end the process with a one-line message and status 1: a CLI user (or a plugin
/// author running `plugin check`) reads what is wrong, never a Rust backtrace, whatever
/// `RUST_BACKTRACE` says.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    reclaim_local::allocator::return_freed_memory_at_once();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal; a log file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Candidates { command } => match command {
            CandidatesCommand::Import {
                db,
                file,
                skip_invalid,
                price,
            } => import(&db, &file, skip_invalid, &price).await,
            CandidatesCommand::List { db, filter } => list(&db, &filter).await,
        },
        Command::Reclaim(args) => reclaim(&args).await,
        Command::Usage {
            command:
                UsageCommand::Import {
                    db,
                    file,
                    skip_invalid,
                    report,
                    price,
                    send,
                },
        } => import_usage(&db, &file, skip_invalid, report.as_deref(), &price, &send).await,
        Command::Rules { command } => rules(command).await,
        Command::Plugin { command } => plugin(command).await,
        Command::Connectors { command } => connectors(command).await,
        Command::Savings { db, csv, rebuild } => {
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            if rebuild {
                let n = embedded.store.rebuild_savings().await?;
                eprintln!("rebuilt the savings totals from {n} candidates");
            }
            let s = match embedded
                .app
                .ports
                .candidates
                .savings(reclaim_workflow::savings::ALL_SCOPE)
                .await?
            {
                Some(s) => s,
                None => reclaim_workflow::savings::Savings::of(
                    &embedded.app.list_all(&CandidateFilter::default()).await?,
                ),
            };
            if csv {
                print!("{}", s.to_csv());
            } else {
                use reclaim_workflow::intake::format_money;
                for (basis, about) in [
                    (
                        PricePeriod::Yearly,
                        "monthly prices × 12, yearly prices as they are",
                    ),
                    (
                        PricePeriod::OneTime,
                        "perpetual licences, not in the yearly savings",
                    ),
                ] {
                    let t = s.total.on(basis);
                    println!("savings {} ({about}):", basis.words());
                    println!("  potential:    {}", format_money(t.potential_cents));
                    println!("  actual:       {}", format_money(t.actual_cents));
                    println!("    verified:   {}", format_money(t.verified_cents));
                    println!("    unverified: {}", format_money(t.unverified_cents));
                    println!("  reappeared:   {}", format_money(t.reappeared_cents));
                    for (month, cents) in s.by_month(basis) {
                        println!("    {month}  {}", format_money(*cents));
                    }
                }
            }
            Ok(())
        }
        Command::History { db, from, to, json } => {
            let (start, end) = reclaim_workflow::history::period(&from, &to)
                .map_err(|(field, message)| anyhow::anyhow!("--{field}: {message}"))?;
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            use std::io::Write as _;
            let store = &embedded.app.ports.candidates;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if !json {
                out.write_all(reclaim_workflow::history::CSV_HEADER.as_bytes())?;
            }
            let mut page = reclaim_workflow::ports::PageRequest {
                limit: 1000,
                cursor: None,
                sort: None,
            };
            loop {
                let got = store.history_between(start, end, &page).await?;
                for t in &got.items {
                    if json {
                        serde_json::to_writer(&mut out, t)?;
                        out.write_all(b"\n")?;
                    } else {
                        out.write_all(
                            reclaim_workflow::history::csv_line(&t.number, &t.entry).as_bytes(),
                        )?;
                    }
                }
                match got.next {
                    Some(next) => page.cursor = Some(next),
                    None => break,
                }
            }
            out.flush()?;
            Ok(())
        }
        Command::Alerts { db } => {
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            let alerts = embedded.app.stale_alerts().await?;
            if alerts.is_empty() {
                println!("no alerts: nothing is stale, waiting for a person or reappeared");
            }
            for a in alerts {
                println!("{}\t{}\t{}", a.number, a.state, a.reason);
            }
            Ok(())
        }
        Command::Seed { db, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let seed: SeedFile = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a valid seed file", file.display()))?;
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            seed.apply(
                embedded.app.ports.directory.as_ref(),
                embedded.app.ports.rules.as_ref(),
                embedded.app.ports.tokens.as_ref(),
            )
            .await
            .with_context(|| format!("{}", file.display()))?;
            println!(
                "loaded {} users, {} groups, {} rules, {} tokens",
                seed.users.len(),
                seed.groups.len(),
                seed.rules.len(),
                seed.tokens.len()
            );
            Ok(())
        }
        Command::Backup { db, file } => {
            if file.exists() {
                bail!("{} exists: choose a new file for the copy", file.display());
            }
            let store = reclaim_local::SqliteStore::open(&db.db)
                .with_context(|| format!("cannot open {}", db.db.display()))?;
            let pages = store.backup_to(&file).await.with_context(|| {
                format!("cannot copy {} to {}", db.db.display(), file.display())
            })?;
            println!(
                "copied {} to {} ({pages} pages); keep {}.link-key with it",
                db.db.display(),
                file.display(),
                db.db.display()
            );
            Ok(())
        }
        Command::Sessions {
            command: SessionsCommand::EndAll { db },
        } => {
            let embedded = open(&db.db, Settings::default(), Arc::new(ManualTaskRevoker))?;
            let n = embedded.app.ports.sessions.end_all_sessions().await?;
            println!("ended {n} session(s)");
            Ok(())
        }
    }
}
