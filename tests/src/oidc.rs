//! A real OpenID Provider for the sign-in tests, and a small browser to get through it.
//!
//! [`OidcProvider::start`] runs `node $RECLAIM_OIDC_PROVIDER` (`tests/oidc/provider.mjs`, the
//! `oidc-provider` package from npm; `./test.sh` installs it and sets the variable) on a free
//! loopback port with one confidential client (`client_secret_basic`, code flow, PKCE S256
//! required) and the given accounts, and stops it when dropped. Without the variable it
//! panics: these tests never skip.
//!
//! [`HttpClient`] speaks HTTP/1.1 over `std::net::TcpStream` and keeps cookies;
//! [`HttpClient::log_in`] (or [`log_in`]) goes from an authorization URL through the
//! provider's login form to the redirect back to the client, and returns that URL without
//! calling it. Everything here blocks: from an async test talking to a server that runs in
//! the same runtime, call it inside `tokio::task::spawn_blocking`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the provider may take to print its issuer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP exchange may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The provider's one client (confidential, `client_secret_basic`).
#[derive(Clone, Debug)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

impl OidcClient {
    pub fn new(client_id: &str, client_secret: &str, redirect_uris: &[&str]) -> OidcClient {
        OidcClient {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uris: redirect_uris.iter().map(|u| u.to_string()).collect(),
        }
    }
}

/// A person who can sign in at the provider (username or email, and password).
#[derive(Clone, Debug)]
pub struct OidcAccount {
    pub sub: String,
    /// `preferred_username`, and what the login form takes (the email works too).
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub password: String,
    /// The custom `upn` claim, only for accounts that have one.
    pub upn: Option<String>,
}

impl OidcAccount {
    /// An account with a verified email and no `upn`.
    pub fn new(sub: &str, username: &str, email: &str, name: &str, password: &str) -> OidcAccount {
        OidcAccount {
            sub: sub.to_string(),
            username: username.to_string(),
            email: email.to_string(),
            email_verified: true,
            name: name.to_string(),
            password: password.to_string(),
            upn: None,
        }
    }

    pub fn with_upn(mut self, upn: &str) -> OidcAccount {
        self.upn = Some(upn.to_string());
        self
    }

    pub fn email_unverified(mut self) -> OidcAccount {
        self.email_verified = false;
        self
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "sub": self.sub,
            "preferred_username": self.username,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "password": self.password,
        });
        if let Some(upn) = &self.upn {
            v["upn"] = json!(upn);
        }
        v
    }
}

/// Settings of one provider run beyond its client and accounts.
#[derive(Clone, Debug, Default)]
pub struct OidcOptions {
    /// Lifetime of ID tokens in seconds (the provider's default: 300).
    pub id_token_ttl: Option<u64>,
    /// The port to listen on (None: any free port).
    pub port: Option<u16>,
}

/// A running `tests/oidc/provider.mjs`; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    issuer: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl OidcProvider {
    /// Starts a provider on a free port and waits for its `ISSUER` line.
    pub fn start(client: &OidcClient, accounts: &[OidcAccount]) -> OidcProvider {
        OidcProvider::start_with(client, accounts, &OidcOptions::default())
    }

    pub fn start_with(
        client: &OidcClient,
        accounts: &[OidcAccount],
        options: &OidcOptions,
    ) -> OidcProvider {
        let script = std::env::var("RECLAIM_OIDC_PROVIDER").unwrap_or_else(|_| {
            panic!(
                "RECLAIM_OIDC_PROVIDER is not set: it must name tests/oidc/provider.mjs after \
                 `npm ci` in tests/oidc (./test.sh does both), e.g. \
                 RECLAIM_OIDC_PROVIDER=$PWD/tests/oidc/provider.mjs"
            )
        });
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg("--port")
            .arg(options.port.unwrap_or(0).to_string())
            .arg("--client-id")
            .arg(&client.client_id)
            .arg("--client-secret")
            .arg(&client.client_secret);
        for uri in &client.redirect_uris {
            cmd.arg("--redirect-uri").arg(uri);
        }
        for account in accounts {
            cmd.arg("--account").arg(account.to_json().to_string());
        }
        if let Some(ttl) = options.id_token_ttl {
            cmd.arg("--id-token-ttl").arg(ttl.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node {script}` (is node on PATH?): {e}"));

        // stdout: the ISSUER line, then nothing is expected; stderr: the provider's log.
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let out_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match line.strip_prefix("ISSUER ") {
                    Some(issuer) => {
                        let _ = tx.send(issuer.trim().to_string());
                    }
                    None => out_log.lock().unwrap().push(format!("stdout: {line}")),
                }
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let err_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                err_log.lock().unwrap().push(line);
            }
        });

        match rx.recv_timeout(START_TIMEOUT) {
            Ok(issuer) => OidcProvider { child, issuer, log },
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the OpenID Provider `node {script}` printed no ISSUER line ({e}; {status:?}); \
                     its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        }
    }

    /// `http://127.0.0.1:<port>`, exactly as in the tokens it issues.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What the provider wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        let r = HttpClient::new().get(&format!("{}/.well-known/openid-configuration", self.issuer));
        assert_eq!(r.status, 200, "discovery: {}", r.text());
        r.json()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        // SIGTERM (the provider exits at once), SIGKILL if it does not.
        let termed = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(3);
        while termed && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- OpenID Provider log ({}) ---\n{}",
                self.issuer,
                self.log()
            );
        }
    }
}

/// One response, read whole.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// `Location` of a redirect (3xx) answer.
    pub fn location(&self) -> Option<&str> {
        if (300..400).contains(&self.status) {
            self.header("location")
        } else {
            None
        }
    }
}

/// A stored cookie. Cookies are not isolated by port, as in browsers.
#[derive(Clone, Debug)]
struct Cookie {
    host: String,
    name: String,
    value: String,
    path: String,
}

/// Why [`HttpClient::try_log_in`] got no redirect back to the client.
#[derive(Clone, Debug)]
pub struct LoginRefused {
    /// The URL of the last answer.
    pub url: String,
    pub status: u16,
    /// The last page (the login form again, with its error, after a wrong password).
    pub page: String,
}

impl std::fmt::Display for LoginRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no redirect to the client: {} answered {}:\n{}",
            self.url, self.status, self.page
        )
    }
}

/// A minimal cookie-keeping browser over plain HTTP/1.1 (`http://` URLs only, one request per
/// connection, redirects followed only by [`HttpClient::log_in`]).
#[derive(Clone, Debug, Default)]
pub struct HttpClient {
    cookies: Vec<Cookie>,
}

impl HttpClient {
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    pub fn get(&mut self, url: &str) -> HttpResponse {
        self.request("GET", url, &[], b"")
    }

    /// POSTs `application/x-www-form-urlencoded` fields.
    pub fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> HttpResponse {
        let body = crate::form_encode(fields);
        self.request(
            "POST",
            url,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    /// The value of a stored cookie, whatever its path.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }

    /// Sends one request with the cookies that apply, stores the cookies of the answer.
    pub fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let (authority, target) = split_url(url);
        let host = host_of(&authority);
        let path = target.split('?').next().unwrap_or("/");

        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
             User-Agent: reclaim-tests\r\nAccept: */*\r\n"
        );
        let mut sent: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.host == host && path_matches(path, &c.path))
            .collect();
        sent.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        if !sent.is_empty() {
            let pairs: Vec<String> = sent
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect();
            req.push_str(&format!("Cookie: {}\r\n", pairs.join("; ")));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method != "GET" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");

        let mut stream = TcpStream::connect(authority.as_str())
            .unwrap_or_else(|e| panic!("{method} {url}: cannot connect: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        stream
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let response = parse_response(&raw, method, url);

        for (k, v) in &response.headers {
            if k == "set-cookie" {
                self.store_cookie(&host, path, v);
            }
        }
        response
    }

    fn store_cookie(&mut self, host: &str, request_path: &str, header: &str) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        // RFC 6265 5.1.4: without a Path, the directory of the request path.
        let mut path = match request_path.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => request_path[..i].to_string(),
        };
        let mut expired = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "path" if v.trim().starts_with('/') => path = v.trim().to_string(),
                "max-age" => expired |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                "expires" => {
                    expired |=
                        chrono::DateTime::parse_from_rfc2822(&v.trim().replace("GMT", "+0000"))
                            .is_ok_and(|t| t <= chrono::Utc::now())
                }
                _ => {}
            }
        }
        self.cookies
            .retain(|c| !(c.host == host && c.name == name && c.path == path));
        if !expired {
            self.cookies.push(Cookie {
                host: host.to_string(),
                name,
                value,
                path,
            });
        }
    }

    /// [`HttpClient::try_log_in`], panicking when no redirect to the client comes back.
    pub fn log_in(&mut self, authorize_url: &str, username: &str, password: &str) -> String {
        self.try_log_in(authorize_url, username, password)
            .unwrap_or_else(|refused| panic!("log in as {username}: {refused}"))
    }

    /// Opens `authorize_url`, follows the provider's redirects, fills in and submits its login
    /// form once (and submits any other form, a consent, as it is), and returns the redirect to
    /// the request's `redirect_uri` (with `code` and `state`, or `error`) without calling it
    /// (without a `redirect_uri` in the request: the first redirect off the provider's origin).
    /// With a session already open at the provider no form comes, and the password is unused.
    /// A form shown again (a wrong password) or any other page is a [`LoginRefused`].
    pub fn try_log_in(
        &mut self,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> Result<String, LoginRefused> {
        // Back at the client: at the request's redirect_uri, or, when the request names none
        // (one is registered), at the first redirect off the provider's origin.
        let redirect_uri = query_param(authorize_url, "redirect_uri");
        let provider = split_url(authorize_url).0;
        let is_back = |url: &str| match &redirect_uri {
            Some(r) => is_at(url, r),
            None => !url.starts_with("http://") || split_url(url).0 != provider,
        };
        let mut url = authorize_url.to_string();
        let mut response = self.get(&url);
        let mut logged_in = false;
        for _ in 0..20 {
            if let Some(location) = response.location() {
                let next = resolve(&url, location);
                if is_back(&next) {
                    return Ok(next);
                }
                url = next;
                response = self.get(&url);
                continue;
            }
            let page = response.text();
            let form = (response.status == 200)
                .then(|| parse_form(&page))
                .flatten();
            let Some(form) = form else {
                break;
            };
            let mut fields = form.fields;
            if form.has_password {
                if logged_in {
                    break;
                }
                logged_in = true;
                for (name, kind, value) in &mut fields {
                    match kind.as_str() {
                        "password" => *value = password.to_string(),
                        "text" | "email" | "" if name != "password" => {
                            *value = username.to_string()
                        }
                        _ => {}
                    }
                }
            }
            let pairs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(n, _, v)| (n.as_str(), v.as_str()))
                .collect();
            url = resolve(&url, &form.action);
            response = self.post_form(&url, &pairs);
        }
        Err(LoginRefused {
            url,
            status: response.status,
            page: response.text(),
        })
    }
}

/// Logs in with a fresh [`HttpClient`]: see [`HttpClient::log_in`].
pub fn log_in(authorize_url: &str, username: &str, password: &str) -> String {
    HttpClient::new().log_in(authorize_url, username, password)
}

/// The `Authorization` header value of `client_secret_basic` (RFC 6749 2.3.1: each part
/// form-encoded first).
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    use reclaim_api::http::outbox::encode_segment;
    let pair = format!(
        "{}:{}",
        encode_segment(client_id),
        encode_segment(client_secret)
    );
    format!("Basic {}", STANDARD.encode(pair))
}

/// The payload of a compact JWS, decoded but NOT verified.
pub fn jwt_payload(jwt: &str) -> Value {
    let part = jwt
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("JWT payload is not base64url ({e}): {jwt}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT payload is not JSON ({e})"))
}

/// The first value of a query parameter of a URL, percent-decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` and `+` (form encoding).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `http://authority/target?query` → (`authority`, `/target?query`).
fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("only http:// URLs are supported: {url}"));
    let rest = rest.split('#').next().unwrap_or_default();
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (rest[..i].to_string(), rest[i..].to_string()),
        Some(i) => (rest[..i].to_string(), format!("/{}", &rest[i..])),
        None => (rest.to_string(), "/".to_string()),
    }
}

fn host_of(authority: &str) -> String {
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_ascii_lowercase()
}

/// RFC 6265 5.1.4 path-match.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// A `Location` resolved against the URL it came from (absolute, or absolute-path).
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with('/') {
        let (authority, _) = split_url(base);
        format!("http://{authority}{location}")
    } else {
        panic!("relative Location {location:?} (from {base}) is not supported")
    }
}

/// Whether `url` is `redirect_uri` with a query or fragment.
fn is_at(url: &str, redirect_uri: &str) -> bool {
    url.strip_prefix(redirect_uri)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('?') || rest.starts_with('#'))
}

fn parse_response(raw: &[u8], method: &str, url: &str) -> HttpResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{method} {url}: no complete head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {url}: bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest, method, url)
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        assert!(
            rest.len() >= n,
            "{method} {url}: body shorter than its Content-Length"
        );
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8], method: &str, url: &str) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("{method} {url}: truncated chunked body"));
        let size_line = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .unwrap_or_else(|_| panic!("{method} {url}: bad chunk size {size_line:?}"));
        rest = &rest[line_end + 2..];
        if size == 0 {
            return out;
        }
        assert!(rest.len() >= size + 2, "{method} {url}: truncated chunk");
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The first form of a page.
struct Form {
    action: String,
    /// (name, type in lower case, value) of each named input.
    fields: Vec<(String, String, String)>,
    has_password: bool,
}

fn parse_form(page: &str) -> Option<Form> {
    let start = page.find("<form")?;
    let page = &page[start..];
    let tag_end = page.find('>')?;
    let action = attr(&page[..tag_end], "action")?;
    let body = &page[tag_end..page.find("</form>").unwrap_or(page.len())];
    let mut fields = Vec::new();
    for piece in body.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let kind = attr(tag, "type").unwrap_or_default().to_ascii_lowercase();
        let value = attr(tag, "value").unwrap_or_default();
        fields.push((name, kind, value));
    }
    let has_password = fields.iter().any(|(_, kind, _)| kind == "password");
    Some(Form {
        action,
        fields,
        has_password,
    })
}

/// The value of an attribute in a tag's text (quoted with " or ', or bare), entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut search = tag;
    loop {
        let at = search.find(name)?;
        let before = search[..at].chars().last();
        let after = &search[at + name.len()..];
        search = after;
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let Some(after) = after.trim_start().strip_prefix('=') else {
            continue;
        };
        let after = after.trim_start();
        let value = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = &after[1..];
                &inner[..inner.find(q)?]
            }
            _ => {
                let end = after
                    .find(|c: char| c.is_whitespace() || c == '>')
                    .unwrap_or(after.len());
                &after[..end]
            }
        };
        return Some(decode_entities(value));
    }
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_sized_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\n\r\n\
                    4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n";
        let r = parse_response(raw, "GET", "http://h/");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Wikipedia ");
        assert_eq!(r.header("SET-COOKIE"), Some("a=1"));
        let raw = b"HTTP/1.1 303 See Other\r\nLocation: /x\r\nContent-Length: 2\r\n\r\nokEXTRA";
        let r = parse_response(raw, "GET", "http://h/");
        assert_eq!((r.location(), r.text().as_str()), (Some("/x"), "ok"));
    }

    #[test]
    fn cookies_by_path_and_expiry() {
        let mut c = HttpClient::new();
        c.store_cookie("127.0.0.1", "/auth", "s=1; path=/; httponly");
        c.store_cookie(
            "127.0.0.1",
            "/auth",
            "i=2; path=/interaction/abc; samesite=lax",
        );
        c.store_cookie("127.0.0.1", "/a/b", "d=3");
        let names = |c: &HttpClient, path: &str| {
            let mut v: Vec<_> = c
                .cookies
                .iter()
                .filter(|k| path_matches(path, &k.path))
                .map(|k| k.name.clone())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&c, "/interaction/abc/login"), ["i", "s"]);
        assert_eq!(names(&c, "/interaction/abcd"), ["s"]);
        assert_eq!(names(&c, "/a/x"), ["d", "s"]);
        c.store_cookie(
            "127.0.0.1",
            "/",
            "i=; path=/interaction/abc; expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        c.store_cookie("127.0.0.1", "/", "s=; path=/; max-age=0");
        assert_eq!(names(&c, "/interaction/abc/login"), Vec::<String>::new());
    }

    #[test]
    fn forms_urls_and_entities() {
        let page = r#"<p>x</p><form method="post" action='/interaction/u1/login'>
            <input type="hidden" name="t" value="a&amp;b&#38;c&#x3c;">
            <input name=username value="">
            <input name="password" type="password"></form><form action="/other">"#;
        let form = parse_form(page).unwrap();
        assert_eq!(form.action, "/interaction/u1/login");
        assert!(form.has_password);
        assert_eq!(
            form.fields,
            [
                ("t".into(), "hidden".into(), "a&b&c<".into()),
                ("username".into(), String::new(), String::new()),
                ("password".into(), "password".into(), String::new()),
            ]
        );
        let url = "http://127.0.0.1:9/cb?code=a%2Bb&state=s+t&iss=http%3A%2F%2Fx#f";
        assert_eq!(query_param(url, "code").as_deref(), Some("a+b"));
        assert_eq!(query_param(url, "state").as_deref(), Some("s t"));
        assert_eq!(query_param(url, "iss").as_deref(), Some("http://x"));
        assert!(is_at(url, "http://127.0.0.1:9/cb"));
        assert!(!is_at(
            "http://127.0.0.1:9/cb2?code=x",
            "http://127.0.0.1:9/cb"
        ));
        assert_eq!(resolve("http://h:1/a?b", "/c"), "http://h:1/c");
        assert_eq!(
            split_url("http://h:1?x=1"),
            ("h:1".to_string(), "/?x=1".to_string())
        );
        assert_eq!(
            basic_auth("a b", "s:1"),
            format!("Basic {}", STANDARD.encode("a%20b:s%3A1"))
        );
    }
}
