//! Usage sources (connectors) in the real host: the built-in connectors built from source by
//! `plugins/build.sh` and run against the fake vendors of `reclaim-fakes` on loopback, and the
//! `source-guest` test component for the host's own caps (rows per page, pages per run, the
//! per-page deadline, a cursor that does not move).

// Helpers outside #[test] fns panic on broken fixtures on purpose: a test that cannot set up
// must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reclaim_fakes::{spawn_with, CsdState, FakeVendors, GraphState, ScimState};
use reclaim_host::{
    AppliesTo, CollectError, Connector, HostConfig, PluginError, PluginHost, PricePeriod, UsagePage,
};

/// The plugins, built once per test binary (as the plugins module builds them).
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

fn compile_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins-compile-cache")
}

fn host() -> PluginHost {
    PluginHost::new(HostConfig {
        allow_private_addresses: true,
        cache_dir: Some(compile_cache()),
        ..Default::default()
    })
    .expect("host")
}

/// Fakes with the demo's data, strict (nothing created on first use).
fn strict_fakes() -> (GraphState, ScimState, CsdState) {
    let graph = GraphState::demo();
    graph.set_lenient(false);
    let csd = CsdState::demo();
    csd.set_lenient(false);
    (graph, ScimState::demo(), csd)
}

struct Setup {
    fakes: FakeVendors,
    connector: Connector,
    _host: PluginHost,
    _dir: tempfile::TempDir,
}

/// Serves the fakes, installs the built plugins pointing at them (with `overrides` as
/// `(plugin, key, value)` config and `manifest_keys` as top-level manifest lines of `plugin`),
/// and loads the connector `plugin` into a fresh host.
async fn setup(
    state: (GraphState, ScimState, CsdState),
    plugin: &str,
    overrides: &[(&str, &str, &str)],
    manifest_keys: &str,
) -> Setup {
    let fakes = spawn_with(state.0, state.1, state.2)
        .await
        .expect("serve fakes");
    let dir = tempfile::tempdir().expect("tempdir");
    fakes
        .install_plugins_with(built_plugins(), dir.path(), overrides)
        .expect("install plugins");
    let manifest = dir.path().join(plugin).join("reclaim-plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{manifest_keys}\n{text}")).unwrap();
    let host = host();
    let report = host
        .load_dir_report(&dir.path().join(plugin))
        .expect("load connector");
    assert!(report.source_info.is_some(), "{plugin} is a usage source");
    let connector = host.connector(plugin).expect("connector");
    Setup {
        fakes,
        connector,
        _host: host,
        _dir: dir,
    }
}

/// Every page of a run, to the end.
async fn collect_all(connector: &Connector) -> Vec<UsagePage> {
    let mut run = connector.run();
    let mut pages = Vec::new();
    while let Some(page) = run.next_page().await.expect("page") {
        pages.push(page);
    }
    assert!(run.is_finished());
    assert_eq!(run.cursor(), None);
    pages
}

// ---- m365-usage ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_usage_reports_every_user_and_license_across_pages_with_the_reports_activity() {
    let state = strict_fakes();
    state.0.set_users_page_size(3);
    let s = setup(state, "m365-usage", &[], "").await;
    assert_eq!(s.connector.info().reports, vec![AppliesTo::Subscription]);
    assert_eq!(s.connector.schedule().to_string(), "daily");

    let pages = collect_all(&s.connector).await;
    assert!(pages.len() >= 3, "paged by 3 users: {} pages", pages.len());
    let rows: Vec<_> = pages.iter().flat_map(|p| p.rows.iter()).collect();
    let found: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.user_id.clone(), r.sku.clone().unwrap()))
        .collect();
    let unique: BTreeSet<_> = found.iter().cloned().collect();
    assert_eq!(unique.len(), found.len(), "no row twice: {found:?}");
    let expected: BTreeSet<_> = s.fakes.graph.license_assignments().into_iter().collect();
    assert_eq!(unique, expected, "one row per user and license");

    // Last activity from the report, which Graph answered with a redirect to its download.
    for r in &rows {
        assert_eq!(
            r.last_used_at,
            s.fakes.graph.last_activity_date(&r.user_id),
            "{}",
            r.user_id
        );
        assert_eq!(r.applies_to, AppliesTo::Subscription);
        assert_eq!(r.publisher, "Microsoft");
        let record = r.to_record().expect("a valid usage row");
        assert_eq!(record.user.id, r.user_id);
    }
    let bob = rows.iter().find(|r| r.user_id == "u-bob").unwrap();
    assert_eq!(bob.product, "Microsoft 365 E3");
    assert_eq!(bob.user_upn.as_deref(), Some("bob@demo.example"));
    assert!(bob.provisioned_at.is_some());
    let cem = rows.iter().find(|r| r.user_id == "u-cem").unwrap();
    assert_eq!(
        cem.last_used_at, None,
        "listed without activity: never used"
    );
    let requests = s.fakes.graph.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /_fake/report-download/")),
        "the redirect was followed: {requests:?}"
    );
    assert!(pages.iter().all(|p| p.notes.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_usage_takes_the_last_sign_in_of_a_user_the_report_does_not_list() {
    let state = strict_fakes();
    state.0.leave_out_of_report("u-gus");
    let s = setup(state, "m365-usage", &[], "").await;
    let pages = collect_all(&s.connector).await;
    let gus: Vec<_> = pages
        .iter()
        .flat_map(|p| p.rows.iter())
        .filter(|r| r.user_id == "u-gus")
        .collect();
    assert_eq!(gus.len(), 2, "E3 and Power BI");
    let signed_in = gus[0].last_used_at.clone().expect("the last sign-in");
    let day = s.fakes.graph.last_activity_date("u-gus").unwrap();
    assert!(signed_in.starts_with(&day), "{signed_in} on {day}");
    gus[0]
        .to_record()
        .expect("an RFC 3339 time is a valid last use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_usage_throttled_is_transient_with_the_vendors_retry_after_and_the_page_is_retried() {
    let state = strict_fakes();
    state.0.throttle_next(1, 17);
    let s = setup(state, "m365-usage", &[], "").await;
    let mut run = s.connector.run();
    match run.next_page().await {
        Err(e @ CollectError::Plugin(PluginError::Transient { .. })) => {
            assert!(e.is_retryable());
            assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(17)));
        }
        other => panic!("expected transient, got {other:?}"),
    }
    assert_eq!(run.pages(), 0);
    assert_eq!(run.cursor(), None, "the cursor stays for the retry");
    let page = run
        .next_page()
        .await
        .expect("retried page")
        .expect("a page");
    assert!(!page.rows.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_usage_counts_users_of_a_concealed_report_in_notes_and_reports_no_rows_for_them() {
    let state = strict_fakes();
    state.0.set_users_page_size(4);
    state.0.conceal_report_names(true);
    let s = setup(state, "m365-usage", &[], "").await;
    let pages = collect_all(&s.connector).await;
    assert!(pages.iter().all(|p| p.rows.is_empty()), "{pages:?}");
    let licensed: BTreeSet<String> = s
        .fakes
        .graph
        .license_assignments()
        .into_iter()
        .map(|(user, _)| user)
        .collect();
    let counted: u32 = pages
        .iter()
        .flat_map(|p| p.notes.iter())
        .filter(|n| n.reason.contains("concealed"))
        .map(|n| n.count)
        .sum();
    assert_eq!(counted as usize, licensed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_over_the_row_cap_is_refused_whole_with_a_clear_error() {
    let s = setup(strict_fakes(), "m365-usage", &[], "max_rows_per_page = 2").await;
    assert_eq!(s.connector.max_rows_per_page(), 2);
    match s.connector.collect(None).await {
        Err(e @ CollectError::TooManyRows { .. }) => {
            let text = e.to_string();
            assert!(text.contains("max_rows_per_page"), "{text}");
            assert!(text.contains("at most 2"), "{text}");
            assert!(!e.is_retryable());
        }
        other => panic!("expected too many rows, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_usage_pointed_at_a_host_not_granted_is_misconfigured() {
    let s = setup(
        strict_fakes(),
        "m365-usage",
        &[("m365-usage", "graph-base", "http://127.0.0.2:9")],
        "",
    )
    .await;
    match s.connector.collect(None).await {
        Err(CollectError::Plugin(PluginError::Misconfigured { message })) => {
            assert!(message.contains("127.0.0.2"), "{message}");
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_usage_prices_each_license_from_the_price_list_by_part_number_or_name() {
    let prices =
        "# what the contract says\nSPE_E3 = 432.00 yearly\nMicrosoft Power BI Pro = 14 monthly";
    let s = setup(
        strict_fakes(),
        "m365-usage",
        &[("m365-usage", "prices", prices)],
        "",
    )
    .await;
    let pages = collect_all(&s.connector).await;
    let rows: Vec<_> = pages.iter().flat_map(|p| p.rows.iter()).collect();
    let e3 = rows
        .iter()
        .find(|r| r.user_id == "u-bob" && r.product == "Microsoft 365 E3")
        .unwrap();
    assert_eq!(e3.price_per_right.as_deref(), Some("432.00"));
    assert_eq!(e3.price_period, Some(PricePeriod::Yearly));
    let record = e3.to_record().expect("a priced row is a valid usage row");
    assert_eq!(record.price_per_right_cents, 43_200);
    let power_bi = rows
        .iter()
        .find(|r| r.product == "Microsoft Power BI Pro")
        .unwrap();
    assert_eq!(power_bi.price_per_right.as_deref(), Some("14"));
    assert_eq!(power_bi.price_period, Some(PricePeriod::Monthly));
    let e5 = rows
        .iter()
        .find(|r| r.product == "Microsoft 365 E5")
        .unwrap();
    assert_eq!(
        (e5.price_per_right.as_deref(), e5.price_period),
        (None, None),
        "not in the list: no price"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_price_list_is_misconfigured_naming_the_entry() {
    let s = setup(
        strict_fakes(),
        "csd-inventory",
        &[(
            "csd-inventory",
            "prices",
            "Adobe Acrobat Pro = 239,88 yearly",
        )],
        "",
    )
    .await;
    match s.connector.collect(None).await {
        Err(CollectError::Plugin(PluginError::Misconfigured { message })) => {
            assert!(message.contains("`prices`"), "{message}");
            assert!(message.contains("Adobe Acrobat Pro = 239,88"), "{message}");
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
}

// ---- csd-inventory ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csd_inventory_reports_one_row_per_device_and_install_across_pages() {
    let state = strict_fakes();
    state.2.set_inventory_page_size(2);
    let s = setup(
        state,
        "csd-inventory",
        &[("csd-inventory", "page-size", "3")],
        "",
    )
    .await;
    let pages = collect_all(&s.connector).await;
    assert!(pages.len() >= 3, "{} pages", pages.len());
    assert!(pages.iter().all(|p| p.rows.len() <= 3));
    let rows: Vec<_> = pages.iter().flat_map(|p| p.rows.iter()).collect();
    let names = s.fakes.csd.0.lock().unwrap().apps.clone();
    let found: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let app = names
                .values()
                .find(|a| a.name == r.product)
                .expect("a known app");
            (app.id.clone(), r.device.clone().unwrap())
        })
        .collect();
    let unique: BTreeSet<_> = found.iter().cloned().collect();
    assert_eq!(unique.len(), found.len(), "no row twice: {found:?}");
    let expected: BTreeSet<_> = s.fakes.csd.installs(true).into_iter().collect();
    assert_eq!(unique, expected, "one row per device and install");
    for r in &rows {
        assert_eq!(r.applies_to, AppliesTo::InstalledSoftware);
        r.to_record().expect("a valid usage row");
    }
    let visio_bob = rows
        .iter()
        .find(|r| {
            r.product == "Microsoft Visio Professional" && r.device.as_deref() == Some("PC-BOB-02")
        })
        .unwrap();
    assert_eq!(visio_bob.user_id, "u-bob");
    assert_eq!(visio_bob.publisher, "Microsoft");
    assert!(visio_bob.last_used_at.is_some());
    // The lobby kiosk has no user: counted, not reported.
    let no_user: u32 = pages
        .iter()
        .flat_map(|p| p.notes.iter())
        .filter(|n| n.reason.contains("without a primary user"))
        .map(|n| n.count)
        .sum();
    assert_eq!(no_user, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csd_inventory_prices_each_install_from_the_price_list_by_the_apps_name() {
    let prices =
        "Adobe Acrobat Pro = 239.88 yearly; Microsoft Visio Professional = 579.99 one-time";
    let s = setup(
        strict_fakes(),
        "csd-inventory",
        &[("csd-inventory", "prices", prices)],
        "",
    )
    .await;
    let pages = collect_all(&s.connector).await;
    let rows: Vec<_> = pages.iter().flat_map(|p| p.rows.iter()).collect();
    for r in &rows {
        let expected = match r.product.as_str() {
            "Adobe Acrobat Pro" => (Some("239.88"), Some(PricePeriod::Yearly)),
            "Microsoft Visio Professional" => (Some("579.99"), Some(PricePeriod::OneTime)),
            _ => (None, None),
        };
        assert_eq!(
            (r.price_per_right.as_deref(), r.price_period),
            expected,
            "{} on {:?}",
            r.product,
            r.device
        );
        r.to_record().expect("a valid usage row");
    }
    assert!(rows.iter().any(|r| r.price_per_right.is_some()));
}

// ---- the host's caps, with the source-guest component ---------------------------------------

/// The source guest loaded under a manifest with `keys` and `[config]` `config`.
fn source_guest(keys: &str, config: &str) -> (PluginHost, Connector, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = format!("id = \"source-guest\"\n{keys}\n[config]\n{config}\n");
    let dir = common::plugin_dir(
        tmp.path(),
        "source-guest",
        &common::guests().source_guest,
        &manifest,
    );
    let host = PluginHost::new(common::test_config()).unwrap();
    host.load_dir(&dir).unwrap();
    let connector = host.connector("source-guest").unwrap();
    (host, connector, tmp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_both_worlds_reclaims_and_collects() {
    let (host, connector, _tmp) = source_guest("", "pages = \"3\"\nrows = \"2\"");
    assert!(connector.also_reclaims());
    assert_eq!(host.connectors().len(), 1);
    let out = host.reclaim("source-guest", &common::req("good")).await;
    assert_eq!(out, Ok(reclaim_host::Outcome::Removed("ok".into())));
    let pages = collect_all(&connector).await;
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.iter().map(|p| p.rows.len()).sum::<usize>(), 6);
    let record = pages[0].rows[0].to_record().unwrap();
    assert_eq!(record.user_groups, vec!["staff".to_string()]);
    assert_eq!(record.hours_used, Some(1.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_stopped_at_its_pages_cap_and_resumes_count_pages_already_taken() {
    let (_host, connector, _tmp) = source_guest("max_pages_per_run = 2", "mode = \"endless\"");
    let mut run = connector.run();
    assert!(run.next_page().await.unwrap().is_some());
    assert!(run.next_page().await.unwrap().is_some());
    match run.next_page().await {
        Err(e @ CollectError::TooManyPages { max: 2, .. }) => {
            assert!(e.to_string().contains("max_pages_per_run"), "{e}");
        }
        other => panic!("expected the pages cap, got {other:?}"),
    }
    let mut resumed = connector.resume(run.cursor().map(str::to_string), 2);
    assert!(matches!(
        resumed.next_page().await,
        Err(CollectError::TooManyPages { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_past_its_deadline_stops_the_connector_with_a_retryable_error() {
    let (_host, connector, _tmp) = source_guest("deadline_ms = 300", "mode = \"slow\"");
    let started = std::time::Instant::now();
    match connector.collect(None).await {
        Err(e @ CollectError::Plugin(PluginError::DeadlineExceeded { .. })) => {
            assert!(e.to_string().contains("300 ms"), "{e}");
            assert!(e.is_retryable());
        }
        other => panic!("expected the deadline, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_repeats_its_cursor_is_stopped() {
    let (_host, connector, _tmp) = source_guest("", "mode = \"same-cursor\"");
    let mut run = connector.run();
    assert!(run.next_page().await.unwrap().is_some(), "first page moves");
    assert!(matches!(
        run.next_page().await,
        Err(CollectError::CursorRepeated { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaimer_alone_is_not_a_connector_and_a_source_alone_does_not_reclaim() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::plugin_dir(
        tmp.path(),
        "hostile",
        &common::guests().hostile,
        "id = \"hostile\"\nschedule = \"6h\"\n",
    );
    let host = PluginHost::new(common::test_config()).unwrap();
    let report = host.load_dir_report(&dir).unwrap();
    assert!(report.source_info.is_none());
    assert!(
        report.warnings.iter().any(|w| w.contains("schedule")),
        "{:?}",
        report.warnings
    );
    assert!(host.connectors().is_empty());
    assert!(matches!(
        host.connector("hostile"),
        Err(CollectError::NotASource { .. })
    ));

    let s = setup(strict_fakes(), "m365-usage", &[], "").await;
    let err = s._host.reclaim("m365-usage", &common::req("good")).await;
    assert!(
        matches!(&err, Err(PluginError::Misconfigured { message }) if message.contains("usage source")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_collects_a_connectors_first_page_instead_of_a_dry_run() {
    let fakes = spawn_with(GraphState::demo(), ScimState::demo(), CsdState::demo())
        .await
        .expect("serve fakes");
    let dir = tempfile::tempdir().expect("tempdir");
    fakes
        .install_plugins(built_plugins(), dir.path())
        .expect("install plugins");
    for id in ["m365-usage", "csd-inventory"] {
        let report = reclaim_host::check::check_with(
            &dir.path().join(id),
            None,
            HostConfig {
                allow_private_addresses: true,
                cache_dir: Some(compile_cache()),
                ..Default::default()
            },
        )
        .expect("check");
        let text = report.to_string();
        assert!(report.passed(), "{text}");
        assert!(!report.reclaims);
        assert!(
            text.contains("reclaim:plugin/usage-source@0.1.0: ok"),
            "{text}"
        );
        assert!(text.contains("first page   ok:"), "{text}");
        assert!(text.contains("schedule daily"), "{text}");
    }
}
