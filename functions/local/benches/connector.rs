//! A usage connector run of 100,000 rows through the plugin host: the real `csd-inventory`
//! plugin reads the client software distribution fake on loopback (100 apps, each installed on
//! 1,000 devices, a page of 1,000 entries a call), and the runner (`App::run_connector`)
//! evaluates every page against the rules and stores the candidates in a fresh SQLite file,
//! saving the run after each page: the same work as `reclaim usage import` of the same rows,
//! plus the vendor's HTTP, the sandbox and the run's bookkeeping.
//!
//! ```sh
//! bash plugins/build.sh /tmp/rp
//! RECLAIM_PLUGINS_DIR=/tmp/rp cargo bench -p reclaim-local --bench connector
//! ```
//! `RECLAIM_CONNECTOR_ROWS` changes the size. Prints rows a second, pages, what was created
//! and the process's peak RSS (`VmHWM`), which includes the fake vendor's data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

// The allocator of the `reclaim` binary, so the store is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use reclaim_api::{HmacLinkSigner, Settings};
use reclaim_fakes::{CsdState, GraphState, ScimState};
use reclaim_local::Embedded;
use reclaim_workflow::ports::SystemClock;
use reclaim_workflow::Rule;
use std::sync::Arc;
use std::time::Instant;

const APPS: usize = 100;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    reclaim_local::allocator::return_freed_memory_at_once();
    // `RUST_LOG=reclaim_api=debug` shows where each page's time went.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let rows: usize = std::env::var("RECLAIM_CONNECTOR_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let built = std::env::var_os("RECLAIM_PLUGINS_DIR")
        .expect("RECLAIM_PLUGINS_DIR: the built plugins (bash plugins/build.sh DIR)");
    let per_app = rows / APPS;
    let csd = CsdState::new("bench-csd-token");
    csd.set_inventory_page_size(1_000);
    for a in 0..APPS {
        let app = format!("app-{a:03}");
        let devices: Vec<String> = (0..per_app).map(|d| format!("PC-{d:06}")).collect();
        let names: Vec<&str> = devices.iter().map(String::as_str).collect();
        csd.add_app(&app, &format!("Product {a}"), &names);
        csd.set_app_details(
            &app,
            Some(["Adobe", "Autodesk", "JetBrains", "7-Zip"][a % 4]),
            "1.0",
        );
        for (d, device) in devices.iter().enumerate() {
            // Last used spread over the last 130 days: 30 % more than 90 days ago, about the
            // share of rows the file import's bench makes candidates of.
            csd.set_last_used(&app, device, ((a * 7 + d * 13) % 130) as u32);
        }
    }
    for d in 0..per_app {
        let device = format!("PC-{d:06}");
        let user = format!("user-{d:06}");
        csd.set_device_user(
            &device,
            &user,
            &format!("{user}@example.com"),
            &format!("User {d}"),
        );
    }
    let vendors = reclaim_fakes::spawn_with(GraphState::demo(), ScimState::demo(), csd)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    vendors
        .install_plugins(std::path::Path::new(&built), &plugins)
        .unwrap();
    let host = reclaim_host::PluginHost::new(reclaim_host::HostConfig {
        allow_private_addresses: true,
        ..reclaim_host::HostConfig::default()
    })
    .unwrap();
    host.load_all(&plugins).unwrap();
    let embedded = Embedded::open(
        &dir.path().join("bench.db"),
        Settings::default(),
        Arc::new(HmacLinkSigner::new("k".repeat(32)).unwrap()),
        Arc::new(reclaim_host::PluginRevoker::new(host.clone())),
        Arc::new(SystemClock),
    )
    .unwrap()
    .with_sources(Arc::new(host));
    for rule in [
        serde_json::json!({"id": "installs-unused", "name": "Installs unused 90 days",
            "notify_user": true, "days_before_auto_reclamation": 14,
            "criteria": {"kind": "last-used-before", "days": 90},
            "exclusions": {"vips": true}}),
        serde_json::json!({"id": "jetbrains-dry-run", "name": "JetBrains never used (report)",
            "create_candidates": false, "software": [{"publisher": "JetBrains"}],
            "criteria": {"kind": "last-used-before", "days": 365}}),
    ] {
        let rule: Rule = serde_json::from_value(rule).unwrap();
        embedded.app.ports.rules.put_rule(&rule).await.unwrap();
    }
    let before = peak_rss_mb();
    let started = Instant::now();
    let run = embedded
        .app
        .run_connector("csd-inventory", "bench", None)
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    println!(
        "csd-inventory: {} rows in {} pages, {:.2} s: {:.0} rows a second; {} created, {} report-only, skipped {:?}, not reported {:?}, state {}",
        run.rows,
        run.pages,
        took,
        run.rows as f64 / took,
        run.created,
        run.report_only,
        run.skipped,
        run.notes,
        run.state.as_str()
    );
    println!(
        "peak RSS: {:.0} MB (before the run, with the fake's data and the loaded plugins: {:.0} MB)",
        peak_rss_mb(),
        before
    );
    assert_eq!(run.rows as usize, per_app * APPS, "{run:?}");
}
