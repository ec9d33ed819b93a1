//! The workflow's Revoker port through real plugins: routing and outcome mapping.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reclaim_host::revoker::{request_for, PluginRevoker};
use reclaim_host::PluginHost;
use reclaim_workflow::event::RevocationResult;
use reclaim_workflow::model::Justification;
use reclaim_workflow::ports::Revoker;
use reclaim_workflow::testing::candidate;

fn revoker(manifest: &str) -> (PluginRevoker, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path(), "hostile", &guests().hostile, manifest);
    let host = PluginHost::new(test_config()).unwrap();
    host.load_dir(&dir).unwrap();
    (PluginRevoker::new(host), tmp)
}

#[test]
fn the_request_is_built_from_the_candidate() {
    let c = candidate();
    let r = request_for(&c, "c-1/4/revoke", true);
    assert_eq!(r.candidate_id, "c-1");
    assert_eq!(r.idempotency_key, "c-1/4/revoke");
    assert_eq!(r.user.upn.as_deref(), Some("uma@example.com"));
    assert_eq!(r.software.product, "Acrobat Pro");
    assert_eq!(r.device.as_deref(), Some("LAPTOP-042"));
    assert!(r.dry_run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_and_errors_map_to_revocation_results() {
    let (rev, _tmp) = revoker("id = \"hostile\"\ndeadline_ms = 200\n");
    let mut c = candidate();
    c.id = "good".into();
    assert_eq!(
        rev.revoke(&c, "k").await,
        RevocationResult::Removed {
            evidence: "ok good".into()
        }
    );
    c.id = "loop".into();
    assert!(matches!(
        rev.revoke(&c, "k").await,
        RevocationResult::Transient { .. }
    ));
    c.id = "trap".into();
    assert!(matches!(
        rev.revoke(&c, "k").await,
        RevocationResult::Permanent { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_follows_the_rule_then_describe_and_manifest_patterns() {
    // Catch-all plugin (no patterns) takes any software it says it handles.
    let (rev, _tmp) = revoker("id = \"hostile\"\n");
    let mut c = candidate();
    assert_eq!(rev.route(&c), Ok("hostile".into()));

    // A justification the plugin does not list: no route.
    c.justification = Justification::Downgrade;
    let err = rev.route(&c).unwrap_err();
    assert!(err.contains("no loaded plugin"), "{err}");
    assert!(matches!(
        rev.revoke(&c, "k").await,
        RevocationResult::Permanent { .. }
    ));

    // The rule names a plugin: that one, whatever describe() says; unknown → permanent.
    c.rule.plugin = Some("hostile".into());
    assert_eq!(rev.route(&c), Ok("hostile".into()));
    c.rule.plugin = Some("m365-revoke".into());
    let err = rev.route(&c).unwrap_err();
    assert!(err.contains("`m365-revoke`, which is not loaded"), "{err}");

    // Product patterns in the manifest.
    let (zoom_only, _t2) = revoker("id = \"hostile\"\nproducts = [\"Zoom*\"]\n");
    let c = candidate();
    assert!(zoom_only.route(&c).is_err());
    let (acrobat, _t3) =
        revoker("id = \"hostile\"\nproducts = [\"acrobat *\"]\npublishers = [\"Adobe\"]\n");
    assert_eq!(acrobat.route(&c), Ok("hostile".into()));
}
