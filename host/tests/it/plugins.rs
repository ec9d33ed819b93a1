//! The built-in plugins, built from source by `plugins/build.sh`, loaded into the real host and
//! run against the fake vendors of `reclaim-fakes` on loopback.
//!
//! These are the plugins' tests: each vendor answer a plugin must handle (success, unknown
//! user, throttling, group-inherited licenses, refused credentials, deferred uninstall) is
//! arranged in a fake and the outcome or error kind the workflow will see is checked, together
//! with what the vendor was actually asked to do.

// Helpers outside #[test] fns panic on broken fixtures on purpose: a test that cannot set up
// must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reclaim_fakes::graph::{SKU_E3, SKU_E5, SKU_POWER_BI, SKU_VISIO};
use reclaim_fakes::{spawn_with, CsdState, FakeVendors, GraphState, ScimState};
use reclaim_host::{
    AppliesTo, HostConfig, Justification, Outcome, PluginError, PluginHost, Presence, Request,
    Software, User,
};

/// The plugins, built once per test binary into the test target's scratch dir. A failed build
/// fails every test here: these tests are never skipped.
fn built_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ has a parent");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins-dist");
        let status = std::process::Command::new("bash")
            .arg(root.join("plugins/build.sh"))
            .arg(&out)
            .stdout(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .status()
            .expect("run plugins/build.sh");
        assert!(status.success(), "plugins/build.sh failed: {status}");
        out
    })
}

/// Precompiled components shared by the tests of this binary.
fn compile_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins-compile-cache")
}

/// Fakes seeded with the demo data but strict (nothing created on first use).
fn strict_fakes() -> (GraphState, ScimState, CsdState) {
    let graph = GraphState::demo();
    graph.set_lenient(false);
    let scim = ScimState::demo();
    scim.set_lenient(false);
    let csd = CsdState::demo();
    csd.set_lenient(false);
    (graph, scim, csd)
}

struct Setup {
    fakes: FakeVendors,
    host: PluginHost,
    _dir: tempfile::TempDir,
}

/// Serves the fakes, installs the built plugins pointing at them (plus `overrides` as
/// `(plugin, key, value)` config) and loads `plugin` into a fresh host.
async fn setup(
    state: (GraphState, ScimState, CsdState),
    plugin: &str,
    overrides: &[(&str, &str, &str)],
) -> Setup {
    let built = built_plugins();
    let fakes = spawn_with(state.0, state.1, state.2)
        .await
        .expect("serve fakes");
    let dir = tempfile::tempdir().expect("tempdir");
    fakes
        .install_plugins_with(built, dir.path(), overrides)
        .expect("install plugins");
    let host = PluginHost::new(HostConfig {
        allow_private_addresses: true,
        cache_dir: Some(compile_cache()),
        ..Default::default()
    })
    .expect("host");
    let info = host
        .load_dir(&dir.path().join(plugin))
        .expect("load plugin");
    assert_eq!(info.id, plugin);
    Setup {
        fakes,
        host,
        _dir: dir,
    }
}

fn subscription(upn: &str, product: &str, sku: &str) -> Request {
    Request {
        candidate_id: "cand-1".into(),
        idempotency_key: "cand-1/4/revoke".into(),
        applies_to: AppliesTo::Subscription,
        user: User {
            id: format!("dir-{upn}"),
            email: Some(upn.into()),
            upn: Some(upn.into()),
        },
        software: Software {
            publisher: "Microsoft".into(),
            product: product.into(),
            version: None,
            sku: Some(sku.into()),
            subscription_id: None,
        },
        device: None,
        justification: Justification::Unused,
        dry_run: false,
    }
}

fn installed(product: &str, version: &str, device: &str) -> Request {
    Request {
        candidate_id: "cand-2".into(),
        idempotency_key: "cand-2/3/revoke".into(),
        applies_to: AppliesTo::InstalledSoftware,
        user: User {
            id: "u-ann".into(),
            email: Some("ann@demo.example".into()),
            upn: Some("ann@demo.example".into()),
        },
        software: Software {
            publisher: "Microsoft".into(),
            product: product.into(),
            version: Some(version.into()),
            sku: None,
            subscription_id: None,
        },
        device: Some(device.into()),
        justification: Justification::LowUsage,
        dry_run: false,
    }
}

fn scim_user(id: &str) -> Request {
    let mut req = subscription("ann@demo.example", "Acme Cloud", "acme-pro");
    req.user.id = id.into();
    req
}

// ---- m365-revoke ----------------------------------------------------------------------------

#[tokio::test]
async fn m365_removes_a_direct_license_and_verify_sees_it_gone() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    let req = subscription("ann@demo.example", "Microsoft 365 E5", SKU_E5.0);
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Present)
    );

    let outcome = s.host.reclaim("m365-revoke", &req).await;
    match outcome {
        Ok(Outcome::Removed(evidence)) => {
            assert!(evidence.contains(SKU_E5.0), "{evidence}");
            assert!(evidence.contains("ann@demo.example"), "{evidence}");
        }
        other => panic!("expected removed, got {other:?}"),
    }
    assert!(!s.fakes.graph.has_license("ann@demo.example", SKU_E5.0));
    assert!(s.fakes.graph.has_license("ann@demo.example", SKU_VISIO.0));
    assert!(s
        .fakes
        .graph
        .requests()
        .contains(&"POST /v1.0/users/ann@demo.example/assignLicense".to_string()));
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Absent)
    );
}

#[tokio::test]
async fn m365_resolves_a_sku_part_number() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    let req = subscription("bob@demo.example", "Microsoft 365 E3", SKU_E3.1);
    assert!(matches!(
        s.host.reclaim("m365-revoke", &req).await,
        Ok(Outcome::Removed(_))
    ));
    assert!(!s.fakes.graph.has_license("bob@demo.example", SKU_E3.0));
    // Not held any more: the part number no longer resolves, so nothing to do.
    assert_eq!(
        s.host.reclaim("m365-revoke", &req).await,
        Ok(Outcome::AlreadyAbsent)
    );
}

#[tokio::test]
async fn m365_unknown_user_is_already_absent() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    let req = subscription("nobody@demo.example", "Microsoft 365 E5", SKU_E5.0);
    assert_eq!(
        s.host.reclaim("m365-revoke", &req).await,
        Ok(Outcome::AlreadyAbsent)
    );
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Absent)
    );
}

#[tokio::test]
async fn m365_throttled_is_transient_with_retry_after_then_succeeds() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    s.fakes.graph.throttle_next(1, 7);
    let req = subscription("ann@demo.example", "Microsoft 365 E5", SKU_E5.0);
    match s.host.reclaim("m365-revoke", &req).await {
        Err(PluginError::Transient {
            message,
            retry_after_secs,
        }) => {
            assert_eq!(retry_after_secs, Some(7), "{message}");
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("expected transient, got {other:?}"),
    }
    assert!(s.fakes.graph.has_license("ann@demo.example", SKU_E5.0));
    assert!(matches!(
        s.host.reclaim("m365-revoke", &req).await,
        Ok(Outcome::Removed(_))
    ));
}

#[tokio::test]
async fn m365_inherited_license_leaves_a_group_that_grants_only_it() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    let req = subscription("cem@demo.example", "Visio Plan 2", SKU_VISIO.0);
    match s.host.reclaim("m365-revoke", &req).await {
        Ok(Outcome::Removed(evidence)) => {
            assert!(evidence.contains("inherited"), "{evidence}");
            assert!(evidence.contains("Visio users"), "{evidence}");
        }
        other => panic!("expected removed, got {other:?}"),
    }
    assert!(!s.fakes.graph.is_member("g-visio", "u-cem"));
    assert!(!s.fakes.graph.has_license("cem@demo.example", SKU_VISIO.0));
    let requests = s.fakes.graph.requests();
    assert!(
        requests.contains(&"DELETE /v1.0/groups/g-visio/members/u-cem/$ref".to_string()),
        "{requests:?}"
    );
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Absent)
    );
}

#[tokio::test]
async fn m365_inherited_license_from_a_multi_license_group_is_refused() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    let req = subscription("dee@demo.example", "Power BI Pro", SKU_POWER_BI.0);
    match s.host.reclaim("m365-revoke", &req).await {
        Err(PluginError::Permanent { message }) => {
            assert!(message.contains("Analysts"), "{message}");
            assert!(message.contains("other licenses"), "{message}");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert!(s.fakes.graph.is_member("g-analysts", "u-dee"));
    assert!(s
        .fakes
        .graph
        .has_license("dee@demo.example", SKU_POWER_BI.0));
    assert!(!s
        .fakes
        .graph
        .requests()
        .iter()
        .any(|r| r.starts_with("DELETE")));
}

#[tokio::test]
async fn m365_dry_run_reads_and_says_what_it_would_do() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    let mut req = subscription("cem@demo.example", "Visio Plan 2", SKU_VISIO.0);
    req.dry_run = true;
    match s.host.reclaim("m365-revoke", &req).await {
        Ok(Outcome::Removed(plan)) => {
            assert!(plan.starts_with("dry run: would"), "{plan}");
            assert!(plan.contains("Visio users"), "{plan}");
        }
        other => panic!("expected a dry-run plan, got {other:?}"),
    }
    assert!(s.fakes.graph.is_member("g-visio", "u-cem"));
    let requests = s.fakes.graph.requests();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "dry run must only read: {requests:?}"
    );
}

#[tokio::test]
async fn m365_refused_client_secret_is_misconfigured() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    s.fakes.graph.0.lock().unwrap().client_secret = "rotated".into();
    let req = subscription("ann@demo.example", "Microsoft 365 E5", SKU_E5.0);
    match s.host.reclaim("m365-revoke", &req).await {
        Err(PluginError::Misconfigured { message }) => {
            assert!(message.contains("token request"), "{message}");
            assert!(!message.contains("demo-client-secret"), "{message}");
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
}

#[tokio::test]
async fn m365_removed_license_that_is_reassigned_verifies_present_again() {
    let s = setup(strict_fakes(), "m365-revoke", &[]).await;
    let req = subscription("ann@demo.example", "Microsoft 365 E5", SKU_E5.0);
    assert!(matches!(
        s.host.reclaim("m365-revoke", &req).await,
        Ok(Outcome::Removed(_))
    ));
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Absent)
    );

    // An admin gives the seat back at the vendor.
    assert!(s.fakes.graph.reassign_license("ann@demo.example", SKU_E5.1));
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Present)
    );
}

#[tokio::test]
async fn m365_token_expired_mid_call_is_renewed_once_and_the_removal_succeeds() {
    let state = strict_fakes();
    // The first token is good for the licenseDetails read only; assignLicense meets it expired.
    state.0.expire_tokens_after(1);
    let s = setup(state, "m365-revoke", &[]).await;
    let req = subscription("bob@demo.example", "Microsoft 365 E3", SKU_E3.1);
    match s.host.reclaim("m365-revoke", &req).await {
        Ok(Outcome::Removed(evidence)) => assert!(evidence.contains(SKU_E3.0), "{evidence}"),
        other => panic!("expected removed after one token renewal, got {other:?}"),
    }
    assert_eq!(s.fakes.graph.token_requests(), 2);
    assert!(!s.fakes.graph.has_license("bob@demo.example", SKU_E3.0));
    let assigns = s
        .fakes
        .graph
        .requests()
        .iter()
        .filter(|r| r.ends_with("/assignLicense"))
        .count();
    assert_eq!(assigns, 2, "refused once, repeated once");
}

#[tokio::test]
async fn m365_token_refused_again_after_one_renewal_is_misconfigured() {
    let state = strict_fakes();
    // The login keeps issuing tokens Graph refuses.
    state.0.expire_tokens_after(0);
    let s = setup(state, "m365-revoke", &[]).await;
    let req = subscription("ann@demo.example", "Microsoft 365 E5", SKU_E5.0);
    match s.host.reclaim("m365-revoke", &req).await {
        Err(PluginError::Misconfigured { message }) => {
            assert!(message.contains("401"), "{message}");
            assert!(message.contains("expired"), "{message}");
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
    assert_eq!(s.fakes.graph.token_requests(), 2, "exactly one renewal");
    assert!(s.fakes.graph.has_license("ann@demo.example", SKU_E5.0));
}

#[tokio::test]
async fn m365_membership_already_gone_is_evidence_of_not_a_member_not_of_a_removal() {
    let state = strict_fakes();
    // Cem holds Visio through two groups; another admin already took him out of the second,
    // and group-based licensing has not processed that yet.
    state
        .0
        .add_group("g-visio-pilot", "Visio pilot", &[SKU_VISIO.0], &["u-cem"]);
    assert!(state
        .0
        .remove_member_before_licensing("g-visio-pilot", "u-cem"));
    let s = setup(state, "m365-revoke", &[]).await;
    let req = subscription("cem@demo.example", "Visio Plan 2", SKU_VISIO.0);
    match s.host.reclaim("m365-revoke", &req).await {
        Ok(Outcome::Removed(evidence)) => {
            assert!(
                evidence.contains("removed the membership in group Visio users (g-visio)"),
                "{evidence}"
            );
            assert!(
                evidence.contains("already not a member of group Visio pilot (g-visio-pilot)"),
                "{evidence}"
            );
            assert!(
                !evidence.contains("removed the membership in group Visio pilot"),
                "{evidence}"
            );
        }
        other => panic!("expected removed, got {other:?}"),
    }
    assert!(!s.fakes.graph.is_member("g-visio", "u-cem"));
    // Until Graph processes the earlier removal, the license is still listed.
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Present)
    );
    s.fakes.graph.process_group_licensing();
    assert_eq!(
        s.host.verify("m365-revoke", &req).await,
        Ok(Presence::Absent)
    );
}

#[tokio::test]
async fn m365_every_membership_already_gone_is_already_absent() {
    let state = strict_fakes();
    assert!(state.0.remove_member_before_licensing("g-visio", "u-cem"));
    let s = setup(state, "m365-revoke", &[]).await;
    let req = subscription("cem@demo.example", "Visio Plan 2", SKU_VISIO.0);
    assert_eq!(
        s.host.reclaim("m365-revoke", &req).await,
        Ok(Outcome::AlreadyAbsent)
    );
    let requests = s.fakes.graph.requests();
    assert!(
        requests.contains(&"DELETE /v1.0/groups/g-visio/members/u-cem/$ref".to_string()),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_pointed_at_a_host_not_granted_is_misconfigured() {
    let s = setup(
        strict_fakes(),
        "m365-revoke",
        &[("m365-revoke", "graph-base", "http://127.0.0.2:9")],
    )
    .await;
    let req = subscription("ann@demo.example", "Microsoft 365 E5", SKU_E5.0);
    // The refusal used to race with the guest streaming the request body (it saw the body's
    // stream closed, a transient error, on a busy machine); it is now decided when the request
    // is handed over. Several calls at once make the old race likely, and each must be refused
    // the same way.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (host, req) = (s.host.clone(), req.clone());
        calls.spawn(async move { host.reclaim("m365-revoke", &req).await });
    }
    while let Some(answer) = calls.join_next().await {
        match answer.expect("call task") {
            Err(PluginError::Misconfigured { message }) => {
                assert!(message.contains("127.0.0.2"), "{message}");
            }
            other => panic!("expected misconfigured, got {other:?}"),
        }
    }
}

// ---- scim-deprovision -----------------------------------------------------------------------

#[tokio::test]
async fn scim_deactivates_with_patch_and_verify_sees_it() {
    let s = setup(strict_fakes(), "scim-deprovision", &[]).await;
    let req = scim_user("u-ann");
    assert_eq!(
        s.host.verify("scim-deprovision", &req).await,
        Ok(Presence::Present)
    );
    match s.host.reclaim("scim-deprovision", &req).await {
        Ok(Outcome::Removed(evidence)) => assert!(evidence.contains("204"), "{evidence}"),
        other => panic!("expected removed, got {other:?}"),
    }
    assert_eq!(s.fakes.scim.active("u-ann"), Some(false));
    assert!(s
        .fakes
        .scim
        .requests()
        .contains(&"PATCH /Users/u-ann".to_string()));
    assert_eq!(
        s.host.verify("scim-deprovision", &req).await,
        Ok(Presence::Absent)
    );
    // Deactivated already: a retry does nothing.
    assert_eq!(
        s.host.reclaim("scim-deprovision", &req).await,
        Ok(Outcome::AlreadyAbsent)
    );
}

#[tokio::test]
async fn scim_deactivated_user_that_is_reactivated_verifies_present_again() {
    let s = setup(strict_fakes(), "scim-deprovision", &[]).await;
    let req = scim_user("u-ann");
    assert!(matches!(
        s.host.reclaim("scim-deprovision", &req).await,
        Ok(Outcome::Removed(_))
    ));
    assert_eq!(
        s.host.verify("scim-deprovision", &req).await,
        Ok(Presence::Absent)
    );

    assert!(s.fakes.scim.reactivate("u-ann"));
    assert_eq!(
        s.host.verify("scim-deprovision", &req).await,
        Ok(Presence::Present)
    );
}

#[tokio::test]
async fn scim_unknown_user_is_already_absent() {
    let s = setup(strict_fakes(), "scim-deprovision", &[]).await;
    let req = scim_user("u-nobody");
    assert_eq!(
        s.host.reclaim("scim-deprovision", &req).await,
        Ok(Outcome::AlreadyAbsent)
    );
    assert_eq!(
        s.host.verify("scim-deprovision", &req).await,
        Ok(Presence::Absent)
    );
}

#[tokio::test]
async fn scim_refused_token_is_misconfigured() {
    let s = setup(strict_fakes(), "scim-deprovision", &[]).await;
    s.fakes.scim.0.lock().unwrap().token = "rotated".into();
    match s
        .host
        .reclaim("scim-deprovision", &scim_user("u-ann"))
        .await
    {
        Err(PluginError::Misconfigured { message }) => {
            assert!(message.contains("401"), "{message}")
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
    assert_eq!(s.fakes.scim.active("u-ann"), Some(true));
}

#[tokio::test]
async fn scim_delete_mode_deletes() {
    let s = setup(
        strict_fakes(),
        "scim-deprovision",
        &[("scim-deprovision", "mode", "delete")],
    )
    .await;
    let req = scim_user("u-bob");
    assert!(matches!(
        s.host.reclaim("scim-deprovision", &req).await,
        Ok(Outcome::Removed(_))
    ));
    assert_eq!(s.fakes.scim.active("u-bob"), None);
    assert_eq!(
        s.host.verify("scim-deprovision", &req).await,
        Ok(Presence::Absent)
    );
}

#[tokio::test]
async fn scim_delete_mode_without_delete_support_is_misconfigured() {
    let state = strict_fakes();
    state.1.set_allow_delete(false);
    let s = setup(
        state,
        "scim-deprovision",
        &[("scim-deprovision", "mode", "delete")],
    )
    .await;
    assert!(matches!(
        s.host
            .reclaim("scim-deprovision", &scim_user("u-bob"))
            .await,
        Err(PluginError::Misconfigured { .. })
    ));
    assert_eq!(s.fakes.scim.active("u-bob"), Some(true));
}

// ---- csd-uninstall --------------------------------------------------------------------------

#[tokio::test]
async fn csd_accepts_an_uninstall_then_reports_it_gone() {
    let state = strict_fakes();
    state.2.set_polls_before_gone(1);
    let s = setup(state, "csd-uninstall", &[]).await;
    let req = installed("Microsoft Visio Professional", "2021", "PC-ANN-01");

    assert_eq!(
        s.host.reclaim("csd-uninstall", &req).await,
        Ok(Outcome::Pending(5))
    );
    let assignments = s.fakes.csd.assignments();
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0]["intent"], "uninstall");
    assert_eq!(assignments[0]["target"]["deviceName"], "PC-ANN-01");
    assert_eq!(assignments[0]["appId"], "app-visio");

    // A retry of the same effect while the device has not checked in: still pending (409).
    assert_eq!(
        s.host.reclaim("csd-uninstall", &req).await,
        Ok(Outcome::Pending(5))
    );
    assert_eq!(s.fakes.csd.assignments().len(), 1);

    // The device checks in on the next status read.
    assert_eq!(
        s.host.verify("csd-uninstall", &req).await,
        Ok(Presence::Absent)
    );
    assert_eq!(
        s.fakes
            .csd
            .install_state("app-visio", "PC-ANN-01")
            .as_deref(),
        Some("notInstalled")
    );
    assert_eq!(
        s.host.reclaim("csd-uninstall", &req).await,
        Ok(Outcome::AlreadyAbsent)
    );
}

#[tokio::test]
async fn csd_uninstalled_app_that_is_reinstalled_verifies_present_again() {
    let s = setup(strict_fakes(), "csd-uninstall", &[]).await;
    let req = installed("Microsoft Visio Professional", "2021", "PC-ANN-01");
    assert_eq!(
        s.host.reclaim("csd-uninstall", &req).await,
        Ok(Outcome::Pending(5))
    );
    // The device checks in on the first status read (polls_before_gone = 0).
    assert_eq!(
        s.host.verify("csd-uninstall", &req).await,
        Ok(Presence::Absent)
    );

    assert!(s.fakes.csd.reinstall("app-visio", "PC-ANN-01"));
    assert_eq!(
        s.host.verify("csd-uninstall", &req).await,
        Ok(Presence::Present)
    );
}

#[tokio::test]
async fn csd_pending_uninstall_verifies_present_until_the_device_checks_in() {
    let state = strict_fakes();
    state.2.hold_uninstalls(true);
    let s = setup(state, "csd-uninstall", &[]).await;
    let req = installed("Microsoft Visio Professional", "2021", "PC-ANN-01");
    assert_eq!(
        s.host.reclaim("csd-uninstall", &req).await,
        Ok(Outcome::Pending(5))
    );
    for _ in 0..2 {
        assert_eq!(
            s.host.verify("csd-uninstall", &req).await,
            Ok(Presence::Present)
        );
    }
    assert!(s.fakes.csd.is_uninstall_pending("app-visio", "PC-ANN-01"));

    assert!(s.fakes.csd.complete_uninstall("app-visio", "PC-ANN-01"));
    assert_eq!(
        s.host.verify("csd-uninstall", &req).await,
        Ok(Presence::Absent)
    );
}

/// Fakes where the CSD service takes the fake Graph login's OAuth tokens, so csd-uninstall is
/// set up with `tenant-id` and `client-secret`.
fn csd_oauth_fakes() -> (GraphState, ScimState, CsdState) {
    let state = strict_fakes();
    state.2.accept_tokens_from(&state.0);
    state
}

#[tokio::test]
async fn csd_oauth_token_expired_mid_call_is_renewed_once_and_the_uninstall_is_requested() {
    let state = csd_oauth_fakes();
    // Good for the status read only; the assignment POST meets it expired.
    state.0.expire_tokens_after(1);
    let s = setup(state, "csd-uninstall", &[]).await;
    let mut req = installed("Microsoft Visio Professional", "2021", "PC-ANN-01");
    req.software.sku = Some("app-visio".into());
    assert_eq!(
        s.host.reclaim("csd-uninstall", &req).await,
        Ok(Outcome::Pending(5))
    );
    assert_eq!(s.fakes.graph.token_requests(), 2);
    assert_eq!(s.fakes.csd.assignments().len(), 1);
}

#[tokio::test]
async fn csd_oauth_token_refused_again_after_one_renewal_is_misconfigured() {
    let state = csd_oauth_fakes();
    state.0.expire_tokens_after(0);
    let s = setup(state, "csd-uninstall", &[]).await;
    let req = installed("Microsoft Visio Professional", "2021", "PC-ANN-01");
    match s.host.reclaim("csd-uninstall", &req).await {
        Err(PluginError::Misconfigured { message }) => {
            assert!(message.contains("401"), "{message}")
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
    assert_eq!(s.fakes.graph.token_requests(), 2, "exactly one renewal");
    assert!(s.fakes.csd.assignments().is_empty());
}

#[tokio::test]
async fn csd_refused_static_api_token_is_misconfigured_without_a_repeat() {
    let s = setup(strict_fakes(), "csd-uninstall", &[]).await;
    s.fakes.csd.0.lock().unwrap().token = "rotated".into();
    let req = installed("Microsoft Visio Professional", "2021", "PC-ANN-01");
    assert!(matches!(
        s.host.reclaim("csd-uninstall", &req).await,
        Err(PluginError::Misconfigured { .. })
    ));
    assert_eq!(
        s.fakes.csd.requests().len(),
        1,
        "nothing to renew, no repeat"
    );
}

#[tokio::test]
async fn csd_unknown_app_is_permanent() {
    let s = setup(strict_fakes(), "csd-uninstall", &[]).await;
    let req = installed("Nonexistent Studio", "1.0", "PC-ANN-01");
    match s.host.reclaim("csd-uninstall", &req).await {
        Err(PluginError::Permanent { message }) => {
            assert!(message.contains("Nonexistent Studio"), "{message}")
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert!(s.fakes.csd.assignments().is_empty());
}

#[tokio::test]
async fn csd_dry_run_requests_nothing() {
    let s = setup(strict_fakes(), "csd-uninstall", &[]).await;
    let mut req = installed("Adobe Acrobat Pro", "2024", "PC-ANN-01");
    req.dry_run = true;
    match s.host.reclaim("csd-uninstall", &req).await {
        Ok(Outcome::Removed(plan)) => assert!(plan.starts_with("dry run: would POST"), "{plan}"),
        other => panic!("expected a dry-run plan, got {other:?}"),
    }
    assert!(s.fakes.csd.assignments().is_empty());
}

// ---- manual-task ----------------------------------------------------------------------------

#[tokio::test]
async fn manual_task_for_installed_software_names_device_product_and_user() {
    let s = setup(strict_fakes(), "manual-task", &[]).await;
    let req = installed("Microsoft Project Professional", "2019", "PC-CEM-03");
    match s.host.reclaim("manual-task", &req).await {
        Ok(Outcome::ManualTask(task)) => {
            assert_eq!(
                task.title,
                "Uninstall Microsoft Project Professional 2019 from PC-CEM-03"
            );
            for needle in [
                "Device: PC-CEM-03",
                "Product: Microsoft Project Professional 2019",
                "ann@demo.example",
                "Uninstall",
                "cand-2",
            ] {
                assert!(
                    task.instructions.contains(needle),
                    "{needle}: {}",
                    task.instructions
                );
            }
            assert_eq!(task.assignee_hint.as_deref(), Some("tech"));
        }
        other => panic!("expected a manual task, got {other:?}"),
    }
    assert_eq!(
        s.host.verify("manual-task", &req).await,
        Ok(Presence::Unknown)
    );
}

#[tokio::test]
async fn manual_task_for_a_subscription_names_the_admin_console() {
    let s = setup(
        strict_fakes(),
        "manual-task",
        &[(
            "manual-task",
            "console.acme",
            "ACME portal, https://admin.acme.example",
        )],
    )
    .await;
    let mut req = subscription("ann@demo.example", "Creative Cloud All Apps", "CC-ALL");
    req.software.publisher = "Adobe".into();
    match s.host.reclaim("manual-task", &req).await {
        Ok(Outcome::ManualTask(task)) => {
            assert_eq!(
                task.title,
                "Remove Creative Cloud All Apps seat from ann@demo.example"
            );
            assert!(
                task.instructions.contains("adminconsole.adobe.com"),
                "{}",
                task.instructions
            );
            assert!(
                task.instructions.contains("CC-ALL"),
                "{}",
                task.instructions
            );
        }
        other => panic!("expected a manual task, got {other:?}"),
    }
    req.software.publisher = "ACME".into();
    match s.host.reclaim("manual-task", &req).await {
        Ok(Outcome::ManualTask(task)) => {
            assert!(
                task.instructions.contains("https://admin.acme.example"),
                "{}",
                task.instructions
            )
        }
        other => panic!("expected a manual task, got {other:?}"),
    }
}

// ---- as shipped and as checked by a plugin author ------------------------------------------

#[test]
fn shipped_plugins_load_and_name_the_config_they_still_need() {
    let built = built_plugins();
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(compile_cache()),
        ..Default::default()
    })
    .expect("host");
    let mut ids: Vec<String> = host
        .load_all(built)
        .expect("load the shipped layout")
        .into_iter()
        .map(|info| info.id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "csd-inventory",
            "csd-uninstall",
            "m365-revoke",
            "m365-usage",
            "manual-task",
            "scim-deprovision"
        ]
    );
    let mut connectors: Vec<String> = host
        .connectors()
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    connectors.sort();
    assert_eq!(connectors, ["csd-inventory", "m365-usage"]);
    // The shipped m365 manifest leaves the tenant to the operator; loading says so.
    let other = PluginHost::new(HostConfig {
        cache_dir: Some(compile_cache()),
        ..Default::default()
    })
    .expect("host");
    let report = other
        .load_dir_report(&built.join("m365-revoke"))
        .expect("load m365-revoke");
    let warnings = report.warnings.join("\n");
    assert!(warnings.contains("tenant-id"), "{warnings}");
    let manual = other
        .load_dir_report(&built.join("manual-task"))
        .expect("load manual-task");
    assert!(manual.warnings.is_empty(), "{:?}", manual.warnings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_passes_for_every_built_in_plugin_set_up_for_the_fakes() {
    let built = built_plugins();
    let fakes = spawn_with(GraphState::demo(), ScimState::demo(), CsdState::demo())
        .await
        .expect("serve fakes");
    let dir = tempfile::tempdir().expect("tempdir");
    fakes
        .install_plugins(built, dir.path())
        .expect("install plugins");
    let requests = [
        (
            "m365-revoke",
            subscription("ann@demo.example", "Microsoft 365 E5", SKU_E5.0),
        ),
        ("scim-deprovision", scim_user("u-ann")),
        (
            "csd-uninstall",
            installed("Adobe Acrobat Pro", "2024", "PC-ANN-01"),
        ),
        ("manual-task", installed("Snagit", "2025", "PC-ANN-01")),
    ];
    for (id, req) in requests {
        let json = serde_json::to_string(&req).expect("request json");
        let report = reclaim_host::check::check_with(
            &dir.path().join(id),
            Some(&json),
            HostConfig {
                allow_private_addresses: true,
                cache_dir: Some(compile_cache()),
                ..Default::default()
            },
        )
        .expect("plugin check");
        assert!(report.passed(), "{report}");
        assert!(report.request.dry_run);
    }
    // Dry runs changed nothing at the vendors.
    assert!(fakes.graph.has_license("ann@demo.example", SKU_E5.0));
    assert_eq!(fakes.scim.active("u-ann"), Some(true));
    assert!(fakes.csd.assignments().is_empty());
}
