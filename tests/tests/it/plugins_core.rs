//! Revocation through the core with the real plugins: the workflow (App on the SQLite store)
//! routes an Awaiting Revocation candidate to a plugin loaded in the real host, which talks to
//! fake vendors on loopback, and the outcome moves the candidate as workflow.md says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use reclaim_host::{HostConfig, PluginHost, PluginRevoker};
use reclaim_tests::{Harness, SAM};
use reclaim_workflow::ports::Clock;
use reclaim_workflow::{Rule, State, TaskKind, Timestamp};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The plugins as `plugins/build.sh` lays them out: the test command's build when it exported
/// `RECLAIM_PLUGINS_DIR`, else built here once. A failed build fails the tests.
fn built_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("RECLAIM_PLUGINS_DIR").map(PathBuf::from) {
            if dir.join("m365-revoke/plugin.wasm").is_file() {
                return dir;
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("core-plugins-dist");
        let status = std::process::Command::new("bash")
            .arg(root.join("plugins/build.sh"))
            .arg(&out)
            .status()
            .expect("run plugins/build.sh");
        assert!(status.success(), "plugins/build.sh failed: {status}");
        out
    })
}

#[derive(Clone)]
struct TestClock(Arc<Mutex<Timestamp>>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

struct Setup {
    h: Harness,
    fakes: reclaim_fakes::FakeVendors,
    clock: TestClock,
    _plugins: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fakes = reclaim_fakes::spawn_all().await.unwrap();
    let plugins = tempfile::tempdir().unwrap();
    fakes
        .install_plugins(built_plugins(), plugins.path())
        .unwrap();
    let host = PluginHost::new(HostConfig {
        allow_private_addresses: true,
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("core-plugin-cache")),
        ..HostConfig::default()
    })
    .unwrap();
    let dir = plugins.path().to_path_buf();
    let h2 = host.clone();
    tokio::task::spawn_blocking(move || h2.load_all(&dir).unwrap())
        .await
        .unwrap();
    let start = DateTime::from_timestamp((Utc::now() + Duration::days(1)).timestamp(), 0).unwrap();
    let clock = TestClock(Arc::new(Mutex::new(start)));
    let h = Harness::with_clock_and_revoker(
        Arc::new(clock.clone()),
        Arc::new(PluginRevoker::new(host)),
    )
    .await;
    for (id, plugin) in [
        ("via-m365", "m365-revoke"),
        ("via-scim", "scim-deprovision"),
        ("via-csd", "csd-uninstall"),
        ("via-manual", "manual-task"),
    ] {
        let rule: Rule = serde_json::from_value(json!({
            "id": id, "name": id, "notify_user": false, "days_before_auto_reclamation": 0,
            "assignment_group": "saas", "plugin": plugin, "max_revocation_attempts": 3,
        }))
        .unwrap();
        h.embedded.app.ports.rules.put_rule(&rule).await.unwrap();
    }
    Setup {
        h,
        fakes,
        clock,
        _plugins: plugins,
    }
}

fn m365_row(rule: &str) -> serde_json::Value {
    json!({
        "rule": rule, "applies_to": "subscription", "publisher": "Microsoft",
        "product": "Microsoft 365 E5", "sku": "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        "device": null, "user_id": "uma", "user_email": "uma@example.com",
        "user_upn": "uma@example.com", "justification": "low-usage",
    })
}

async fn reclaim(s: &Setup, number: &str) {
    let r =
        s.h.post(
            &format!("/api/v1/candidates/{number}/reclaim"),
            SAM,
            json!({}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    s.h.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_removes_the_seat_closes_the_candidate_complete() {
    let s = setup().await;
    let n =
        s.h.create_one(json!({"rule": "via-scim", "applies_to": "subscription",
        "publisher": "Slack", "product": "Slack Business+", "device": null}))
            .await;
    reclaim(&s, &n).await;
    let c = s.h.candidate(&n).await;
    assert_eq!(c.state, State::ClosedComplete, "{:?}", c.revocation);
    assert_eq!(
        s.fakes.scim.active("uma"),
        Some(false),
        "the vendor saw the deactivation"
    );
    // Closed on the vendor's word, not the plugin's: verify found the user inactive.
    assert_eq!(
        c.verification.map(|v| v.status),
        Some(reclaim_workflow::VerificationStatus::Verified)
    );
    let history = s.h.history(&n).await;
    let events: Vec<&str> = history.iter().map(|e| e.event.as_str()).collect();
    assert!(
        events.ends_with(&["revocation-removed", "verified-absent"]),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_task_outcome_opens_a_task_and_waits_for_close_complete() {
    let s = setup().await;
    let n = s.h.create_one(json!({"rule": "via-manual"})).await;
    reclaim(&s, &n).await;
    let c = s.h.candidate(&n).await;
    assert_eq!(c.state, State::AwaitingRevocation);
    assert!(c.revocation.manual_task_open);
    let tasks = s.h.embedded.app.ports.tasks.tasks_for(&c.id).await.unwrap();
    assert!(tasks
        .iter()
        .any(|t| t.kind == TaskKind::ManualRemoval && t.open));
    let r =
        s.h.post(
            &format!("/api/v1/candidates/{n}/close-complete"),
            SAM,
            json!({}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    assert_eq!(s.h.candidate(&n).await.state, State::ClosedComplete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_vendor_is_retried_after_retry_after_and_then_succeeds() {
    let s = setup().await;
    let n = s.h.create(vec![m365_row("via-m365")]).await.remove(0);
    s.fakes.graph.throttle_next(1, 120);
    reclaim(&s, &n).await;
    let c = s.h.candidate(&n).await;
    assert_eq!(c.state, State::AwaitingRevocation, "{:?}", c.revocation);
    let now = s.clock.now();
    let due = c.due_at.expect("a retry is scheduled");
    assert!(
        due >= now + Duration::seconds(120),
        "Retry-After honoured: {due} vs {now}"
    );
    // Before the retry is due, a tick does nothing.
    s.h.embedded.app.tick().await.unwrap();
    s.h.drain().await;
    assert_eq!(s.h.candidate(&n).await.state, State::AwaitingRevocation);
    *s.clock.0.lock().unwrap() = due;
    s.h.embedded.app.tick().await.unwrap();
    s.h.drain().await;
    let c = s.h.candidate(&n).await;
    assert_eq!(c.state, State::ClosedComplete, "{:?}", c.revocation);
    assert!(!s
        .fakes
        .graph
        .has_license("uma@example.com", "06ebc4ee-1bb5-47dd-8120-11324bc54e06"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_plugin_error_needs_attention_with_the_error_on_the_record() {
    let s = setup().await;
    s.fakes.csd.set_lenient(false);
    let n =
        s.h.create_one(json!({"rule": "via-csd", "product": "No Such App"}))
            .await;
    reclaim(&s, &n).await;
    let c = s.h.candidate(&n).await;
    assert_eq!(c.state, State::AttentionRequired, "{:?}", c.revocation);
    let why = c.attention.unwrap_or_default();
    assert!(why.starts_with("revocation failed"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_naming_a_plugin_that_is_not_installed_is_refused_with_the_installed_ones() {
    let s = setup().await;
    let rule = |plugin: &str| {
        json!({"id": "typo", "name": "Typo", "notify_user": false,
               "days_before_auto_reclamation": 0, "plugin": plugin})
    };
    let r =
        s.h.call(
            axum::http::Method::PUT,
            "/api/v1/rules/typo",
            Some(SAM),
            Some(rule("m365-revokee")),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text());
    let field = &r.json()["error"]["fields"][0];
    assert_eq!(field["field"], "plugin");
    let message = field["message"].as_str().unwrap();
    assert!(
        message.contains("no plugin 'm365-revokee' is installed"),
        "{message}"
    );
    assert!(
        message.contains("m365-revoke") && message.contains("manual-task"),
        "{message}"
    );
    assert!(s
        .h
        .embedded
        .app
        .ports
        .rules
        .rule("typo")
        .await
        .unwrap()
        .is_none());

    let r =
        s.h.call(
            axum::http::Method::PUT,
            "/api/v1/rules/typo",
            Some(SAM),
            Some(rule("m365-revoke")),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
}
