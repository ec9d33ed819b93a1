//! The `effects` function's plugins as they are deployed: precompiled at build time by the
//! same code `reclaim-plugin precompile` runs, loaded with `deserialize` through the effects
//! function's own loader, and refused with a clear error when made for another machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use aws_lambda_events::dynamodb::Event as StreamEvent;
use reclaim_api::ManualTaskRevoker;
use reclaim_aws::plugins;
use reclaim_aws::wiring::Function;
use reclaim_host::precompile::{host_target, precompile_dir};
use reclaim_host::{HostConfig, HostError};
use reclaim_workflow::ports::{CandidateRead, CandidateWrite, Directory};
use reclaim_workflow::{Actor, AppliesTo, Event, Principal, State, User};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

const SKU: &str = "06ebc4ee-1bb5-47dd-8120-11324bc54e06";

/// The plugins as `plugins/build.sh` lays them out: the test command's build when it exported
/// `RECLAIM_PLUGINS_DIR`, else `plugins/dist` when built, else built here once.
fn built_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let candidates = [
            std::env::var_os("RECLAIM_PLUGINS_DIR").map(PathBuf::from),
            Some(root.join("plugins/dist")),
        ];
        for dir in candidates.into_iter().flatten() {
            if dir.join("m365-revoke/plugin.wasm").is_file() {
                return dir;
            }
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aws-plugins-dist");
        let status = std::process::Command::new("bash")
            .arg(root.join("plugins/build.sh"))
            .arg(&out)
            .status()
            .expect("run plugins/build.sh");
        assert!(status.success(), "plugins/build.sh failed: {status}");
        out
    })
}

/// A plugins directory holding only `id`, copied from the built ones.
fn only(id: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join(id);
    std::fs::create_dir_all(&dest).unwrap();
    for f in ["plugin.wasm", "reclaim-plugin.toml"] {
        std::fs::copy(built_plugins().join(id).join(f), dest.join(f)).unwrap();
    }
    tmp
}

fn other_target() -> &'static str {
    if host_target().starts_with("aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompiled_plugins_load_through_the_effects_path_and_remove_the_seat() {
    // The real plugins, configured for fake vendors on loopback, precompiled for this machine.
    let fakes = reclaim_fakes::spawn_all().await.unwrap();
    let installed = tempfile::tempdir().unwrap();
    fakes
        .install_plugins(built_plugins(), installed.path())
        .unwrap();
    let package = tempfile::tempdir().unwrap();
    let (src, out) = (installed.path().to_path_buf(), package.path().to_path_buf());
    let done = tokio::task::spawn_blocking(move || {
        precompile_dir(&HostConfig::default(), None, &src, &out).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(done.len(), 6, "{done:?}");

    // The effects function's loader over that package (private addresses only for the fakes).
    let dir = package.path().to_path_buf();
    let revoker = tokio::task::spawn_blocking(move || {
        plugins::plugin_revoker(
            &dir,
            HostConfig {
                allow_private_addresses: true,
                ..plugins::host_config()
            },
        )
    })
    .await
    .unwrap()
    .unwrap();

    // A Microsoft 365 seat through the whole AWS path: transition (api) → stream → effects →
    // plugin, each function wired as its `main` wires it (their calls are checked at the end).
    let store = common::fresh_store("plugins").await;
    let key = "0123456789abcdef0123456789abcdef-plugins";
    let functions = common::Functions::new(&store, "reclaim@example.com", key).await;
    let api = functions
        .start(Function::Api, Arc::new(ManualTaskRevoker))
        .await
        .app;
    let app = functions
        .start(Function::Effects, Arc::new(revoker))
        .await
        .app;
    store
        .put_user(&User {
            id: "ada".into(),
            display_name: "Ada".into(),
            email: Some("ada@example.com".into()),
            upn: None,
            itil: false,
            vip: false,
            sam_admin: true,
        })
        .await
        .unwrap();
    let mut c = reclaim_workflow::testing::candidate();
    c.applies_to = AppliesTo::Subscription;
    c.software.publisher = "Microsoft".into();
    c.software.product = "Microsoft 365 E5".into();
    c.software.sku = Some(SKU.into());
    c.device = None;
    c.rule.plugin = Some("m365-revoke".into());
    c.rule.notify_user = false;
    c.rule.days_before_auto_reclamation = 0;
    c.opened_at = chrono::Utc::now();
    c.updated_at = c.opened_at;
    let id = c.id.clone();
    store.insert(&[c]).await.unwrap();
    fakes.graph.add_user("u-1", "uma@example.com", &[SKU]);
    let mut stream = common::StreamReader::open(store.table()).await;
    let _ = stream.next_event().await; // the import

    let admin = Actor::Person(Principal {
        sam_admin: true,
        ..Principal::user("ada")
    });
    api.transition(&id, &Event::Reclaim, &admin, None)
        .await
        .unwrap();
    for _ in 0..10 {
        let event: StreamEvent = serde_json::from_value(stream.next_event().await).unwrap();
        if event.records.is_empty() {
            break;
        }
        let r = reclaim_aws::stream::handle(&app, &event).await;
        assert!(r.batch_item_failures.is_empty(), "{r:?}");
    }
    let c = store.get(&id).await.unwrap().unwrap();
    assert_eq!(c.state, State::ClosedComplete, "{:?}", c.revocation);
    assert!(
        !fakes.graph.has_license("uma@example.com", SKU),
        "the vendor saw the removal"
    );
    functions.check();
}

#[test]
fn a_plugin_precompiled_for_another_machine_is_refused_with_the_fix() {
    let src = only("manual-task");
    let package = tempfile::tempdir().unwrap();
    let done = precompile_dir(
        &HostConfig::default(),
        Some(other_target()),
        src.path(),
        package.path(),
    )
    .expect("cross-target precompile");
    assert_eq!(done.len(), 1);

    let err = plugins::plugin_revoker(package.path(), plugins::host_config()).unwrap_err();
    let HostError::Precompiled { path, message } = &err else {
        panic!("expected a refused artifact, got {err}");
    };
    assert!(path.ends_with("manual-task/plugin.cwasm"), "{path:?}");
    let text = err.to_string();
    assert!(text.contains("another target or engine"), "{text}");
    assert!(
        message.contains(&format!(
            "reclaim-plugin precompile --target {}",
            host_target()
        )),
        "{text}"
    );
    eprintln!("{text}");
}

#[test]
fn a_plugin_without_its_artifact_is_refused_not_compiled() {
    let src = only("manual-task");
    let err = plugins::plugin_revoker(src.path(), plugins::host_config()).unwrap_err();
    assert!(
        matches!(&err, HostError::Precompiled { message, .. } if message.contains("missing")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_config_and_secrets_manager_secrets_configure_the_packaged_plugins() {
    // The package as a deployment ships it: the m365 manifest without its tenant and with its
    // client secret behind `store:`, so both must come from the function's configuration.
    let fakes = reclaim_fakes::spawn_all().await.unwrap();
    let installed = tempfile::tempdir().unwrap();
    fakes
        .install_plugins(built_plugins(), installed.path())
        .unwrap();
    let manifest = installed.path().join("m365-revoke/reclaim-plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let (tenant, _, client_secret) = fakes.graph.credentials();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("\"client-secret\" = ") {
                "\"client-secret\" = \"store:m365-client-secret\"".to_string()
            } else if l.starts_with("\"tenant-id\" = ") {
                "\"tenant-id\" = \"not-configured\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, text).unwrap();
    let package = tempfile::tempdir().unwrap();
    let (src, out) = (installed.path().to_path_buf(), package.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        precompile_dir(&HostConfig::default(), None, &src, &out).unwrap()
    })
    .await
    .unwrap();

    // A configuration naming a plugin that is not packaged stops the start, naming it.
    let bad = plugins::plugin_config(Some(r#"{"m365-revok": {"tenant-id": "x"}}"#)).unwrap();
    let dir = package.path().to_path_buf();
    let cfg = || HostConfig {
        allow_private_addresses: true,
        ..plugins::host_config()
    };
    let err = plugins::plugin_revoker_configured(&dir, cfg(), &bad).unwrap_err();
    assert!(err.to_string().contains("`m365-revok`"), "{err}");
    assert!(plugins::plugin_config(Some(r#"{"m365-revoke": {"tenant-id": 7}}"#)).is_err());

    let config_json = format!(r#"{{"m365-revoke": {{"tenant-id": "{tenant}"}}}}"#);
    let config = plugins::plugin_config(Some(&config_json)).unwrap();
    let revoker = plugins::plugin_revoker_configured(&dir, cfg(), &config).unwrap();
    let host = revoker.host().clone();
    assert_eq!(host.store_secret_names(), ["m365-client-secret"]);

    // The secret lives in Secrets Manager under the deployment's prefix, read by the effects
    // function's own client (its calls are checked against its role).
    let store = common::fresh_store("plugin-secrets").await;
    let mut functions =
        common::Functions::new(&store, "reclaim@example.com", &"k".repeat(32)).await;
    let sdk = functions.sdk.clone();
    let prefix = format!("reclaim-test-{}/", std::process::id());
    functions.deployment.vendor_prefix = prefix.clone();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("{prefix}m365-client-secret"))
        .secret_string(&client_secret)
        .send()
        .await
        .unwrap();
    // A deployment whose prefix names no secret (an operator's client: the role, rightly,
    // would not let the function read outside its prefix).
    assert_eq!(
        plugins::provide_store_secrets(
            &host,
            &aws_sdk_secretsmanager::Client::new(&sdk),
            "no-such-prefix/"
        )
        .await,
        0
    );
    let effects = functions
        .start(Function::Effects, Arc::new(ManualTaskRevoker))
        .await;
    assert_eq!(
        plugins::provide_store_secrets(&host, &effects.clients.secrets(), &prefix).await,
        1
    );
    functions.check();

    let mut c = reclaim_workflow::testing::candidate();
    c.applies_to = AppliesTo::Subscription;
    c.software.publisher = "Microsoft".into();
    c.software.product = "Microsoft 365 E5".into();
    c.software.sku = Some(SKU.into());
    c.rule.plugin = Some("m365-revoke".into());
    fakes.graph.add_user("u-1", "uma@example.com", &[SKU]);
    let outcome = reclaim_workflow::ports::Revoker::revoke(&revoker, &c, "k-1").await;
    assert!(
        matches!(outcome, reclaim_workflow::RevocationResult::Removed { .. }),
        "{outcome:?}"
    );
    assert!(!fakes.graph.has_license("uma@example.com", SKU));
}
