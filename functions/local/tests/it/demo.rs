//! `reclaim serve --demo` as `demo.sh` runs it: its candidates are what its two usage
//! connectors find at the demo vendors before the server answers, for the people of its
//! directory, priced from the connectors' price lists, across its four rules; two dormant
//! licenses are reclaimed without notification, one of them found back at the tenant. Without
//! the built plugins it says that it has no candidates.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SAM_TOKEN: &str = "demo-sam-admin-token";

struct Demo {
    child: Child,
    addr: SocketAddr,
    out: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(dir: &Path, extra: &[&str]) -> Demo {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let out = dir.join("serve.out");
        let child = Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .current_dir(dir)
            .args([
                "serve",
                "--demo",
                "--db",
                "demo.db",
                "--addr",
                &addr.to_string(),
            ])
            .args(["--tick-secs", "3600"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .env_remove("RECLAIM_LINK_KEY")
            .env_remove("RECLAIM_PLUGINS")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let demo = Demo { child, addr, out };
        let started = Instant::now();
        while demo.get("/healthz").0 != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the demo did not start: {}",
                demo.printed()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        demo
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// (status, body) of a GET as the demo's sam admin.
    fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path)
    }

    /// (status, body) of a request without a body as the demo's sam admin.
    fn request(&self, method: &str, path: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(self.addr) else {
            return (0, String::new());
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SAM_TOKEN}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        // Chunked bodies: the JSON is the one line that starts with `{`.
        let body = body
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or(body)
            .to_string();
        (status, body)
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_default()
}

#[test]
fn the_demo_candidates_are_what_its_connectors_find_for_its_own_people() {
    let built = std::env::var("RECLAIM_PLUGINS_DIR")
        .expect("RECLAIM_PLUGINS_DIR: the built plugins (test.sh builds them and sets it)");
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), &["--plugins", &built]);
    let printed = demo.printed();
    assert!(
        printed.contains("demo: m365-usage created 18 candidates"),
        "{printed}"
    );
    assert!(
        printed.contains("demo: csd-inventory created 25 candidates"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "installs on devices without a primary user (no one to ask): not reported: 1"
        ),
        "the lobby kiosk: {printed}"
    );

    let list = demo.json("/api/v1/candidates?limit=100&count=true");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 43, "{list}");
    let directory: BTreeSet<String> = reclaim_local::seed::demo()
        .users
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    let mut publishers = BTreeSet::new();
    let mut people = BTreeSet::new();
    let mut periods = BTreeSet::new();
    for c in items {
        let user = str_at(c, &["user", "id"]);
        assert!(directory.contains(user), "{user} is not in the directory");
        people.insert(user);
        *rules.entry(str_at(c, &["rule", "id"])).or_default() += 1;
        publishers.insert(str_at(c, &["software", "publisher"]));
        assert!(
            c["price_per_right_cents"].as_i64().unwrap_or(0) > 0,
            "priced from the price lists: {c}"
        );
        periods.insert(str_at(c, &["price_period"]));
    }
    assert_eq!(
        rules,
        BTreeMap::from([
            ("desktop-manual", 7),
            ("desktop-unused", 18),
            ("m365-dormant", 8),
            ("m365-low-usage", 10),
        ])
    );
    assert_eq!(
        publishers,
        BTreeSet::from([
            "Adobe",
            "Autodesk",
            "JetBrains",
            "Microsoft",
            "Tableau",
            "TechSmith"
        ])
    );
    assert_eq!(
        periods,
        BTreeSet::from(["monthly", "one-time", "yearly"]),
        "Power BI Pro monthly, Visio Professional one-time"
    );
    // ITIL and non-ITIL people, the VIP and the one without an email; staff used theirs.
    for who in [
        "dana", "eli", "fay", "gus", "hana", "ivan", "jo", "kim", "nomail",
    ] {
        assert!(people.contains(who), "{who} has candidates: {people:?}");
    }
    for who in ["sam", "alice", "bob", "carol", "tech"] {
        assert!(!people.contains(who), "{who} used everything");
    }
    let nomail = items
        .iter()
        .find(|c| str_at(c, &["user", "id"]) == "nomail")
        .unwrap();
    assert!(nomail["user"]["email"].is_null(), "{nomail}");
    // Its rule asks the user first: without an address it needs a person to add one.
    assert_eq!(str_at(nomail, &["rule", "id"]), "m365-low-usage");
    let number = str_at(nomail, &["number"]);
    let (status, body) = demo.request("POST", &format!("/api/v1/candidates/{number}/reclaim"));
    assert_eq!(status, 200, "{body}");
    let now = demo.json(&format!("/api/v1/candidates/{number}"));
    assert_eq!(
        str_at(&now, &["candidate", "state"]),
        "attention-required",
        "{now}"
    );
    assert_eq!(
        str_at(&now, &["candidate", "attention"]),
        "the user has no email address"
    );

    // Two dormant licenses reclaimed without notification: one verified absent, one back.
    let closed: Vec<&Value> = items
        .iter()
        .filter(|c| str_at(c, &["state"]) == "closed-complete")
        .collect();
    assert_eq!(closed.len(), 2, "{closed:?}");
    assert!(closed
        .iter()
        .all(|c| str_at(c, &["rule", "id"]) == "m365-dormant"));
    let reappeared = closed
        .iter()
        .filter(|c| !c["verification"]["reappeared_at"].is_null())
        .count();
    assert_eq!(reappeared, 1, "{closed:?}");
    assert!(
        printed.contains("verified absent at the demo tenant"),
        "{printed}"
    );
    assert!(printed.contains("reappeared (see Alerts)"), "{printed}");

    let savings = demo.json("/api/v1/savings");
    assert!(
        savings["potential_cents"].as_i64().unwrap_or(0) > 0,
        "{savings}"
    );
    assert!(
        savings["verified_cents"].as_i64().unwrap_or(0) > 0,
        "{savings}"
    );
    assert!(
        savings["one_time"]["potential_cents"].as_i64().unwrap_or(0) > 0,
        "{savings}"
    );
}

#[test]
fn without_the_built_plugins_the_demo_says_it_has_no_candidates() {
    // No --plugins and no plugins/dist where it runs.
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), &[]);
    let printed = demo.printed();
    assert!(
        printed.contains("demo: no usage connectors, so no candidates"),
        "{printed}"
    );
    let list = demo.json("/api/v1/candidates?limit=5");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
}
