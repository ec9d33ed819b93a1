//! `reclaim usage import` and `reclaim rules put`, run as a process against a database in a
//! temp dir: bad rows named by line and field with nothing stored, --skip-invalid, report-only
//! rules, re-imports that create nothing new, rules refused with the field to fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use std::path::Path;
use std::process::{Command, Output};

fn reclaim(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .args(args)
        .env("RECLAIM_DB", dir.join("r.db"))
        .env_remove("RECLAIM_USER")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const SEED: &str = r#"{
  "users": [
    {"id": "sam", "display_name": "Sam", "email": "sam@example.com", "sam_admin": true},
    {"id": "al", "display_name": "Al", "email": "al@example.com"}
  ],
  "groups": [{"id": "approvers", "name": "Approvers", "members": ["al"]}],
  "rules": [
    {"id": "adobe-unused", "name": "Adobe unused 90 days", "notify_user": true,
     "days_before_auto_reclamation": 14, "assignment_group": "approvers",
     "software": [{"publisher": "Adobe"}],
     "criteria": {"kind": "last-used-before", "days": 90},
     "exclusions": {"vips": true}},
    {"id": "zoom-low", "name": "Zoom under 2 hours (dry run)", "create_candidates": false,
     "assignment_group": "approvers", "software": [{"publisher": "Zoom"}],
     "criteria": {"kind": "usage-below", "hours": 2}}
  ]
}"#;

fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.json"), SEED).unwrap();
    let out = reclaim(
        dir.path(),
        &["seed", dir.path().join("seed.json").to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

fn count(dir: &Path) -> usize {
    let out = reclaim(dir, &["candidates", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().count()
}

fn usage_csv(bad_rows: bool) -> String {
    let old = (Utc::now() - Duration::days(200)).format("%Y-%m-%d");
    let recent = (Utc::now() - Duration::days(3)).format("%Y-%m-%d");
    let mut csv = format!(
        "user_id,user_email,user_vip,applies_to,device,publisher,product,last_used_at,hours_used,price_per_right\n\
         uma,uma@example.com,,installed-software,PC-1,Adobe,Acrobat Pro,{old},,239.88\n\
         vic,vic@example.com,yes,installed-software,PC-2,Adobe,Acrobat Pro,{old},,239.88\n\
         uma,uma@example.com,,installed-software,PC-1,Adobe,Photoshop,{recent},,120.00\n\
         bo,bo@example.com,,subscription,,Zoom,Zoom Pro,{recent},0.5,14.99\n"
    );
    if bad_rows {
        csv.push_str(&format!(
            "al,al@,,installed-software,PC-3,Adobe,Acrobat Pro,{old},,239.88\n\
             al,al@example.com,,installed-software,,Adobe,Acrobat Pro,someday,,12.5.0\n"
        ));
    }
    csv
}

#[test]
fn usage_prices_without_a_period_take_the_deployments_from_the_environment() {
    let dir = seeded();
    let file = dir.path().join("usage.csv");
    std::fs::write(&file, usage_csv(false)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .args(["usage", "import", file.to_str().unwrap()])
        .env("RECLAIM_DB", dir.path().join("r.db"))
        .env("RECLAIM_PRICE_PERIOD", "monthly")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = reclaim(dir.path(), &["savings", "--csv"]);
    let csv = text(&out.stdout);
    // uma's Acrobat Pro at 239.88 a month.
    assert!(
        csv.contains("total,all,per year,2878.56,0.00,0.00,0.00,0.00,1\n"),
        "{csv}"
    );
}

#[test]
fn a_usage_file_with_bad_rows_imports_nothing_and_names_each_line_and_field() {
    let dir = seeded();
    let file = dir.path().join("usage.csv");
    std::fs::write(&file, usage_csv(true)).unwrap();
    let out = reclaim(dir.path(), &["usage", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 6: user_email"), "{err}");
    assert!(err.contains("line 7: device: is required"), "{err}");
    assert!(err.contains("line 7: last_used_at"), "{err}");
    assert!(err.contains("line 7: price_per_right"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    for good in 2..=5 {
        assert!(!err.contains(&format!("line {good}:")), "{err}");
    }
    assert_eq!(count(dir.path()), 0);

    let out = reclaim(
        dir.path(),
        &["usage", "import", file.to_str().unwrap(), "--skip-invalid"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("created:          1"), "{summary}");
    assert!(summary.contains("bad rows:         2"), "{summary}");
    assert!(text(&out.stderr).contains("line 6: user_email"));
    assert_eq!(count(dir.path()), 1);
}

#[test]
fn report_only_rules_create_nothing_but_appear_in_the_report_and_reimports_add_nothing() {
    let dir = seeded();
    let file = dir.path().join("usage.csv");
    std::fs::write(&file, usage_csv(false)).unwrap();
    let report = dir.path().join("report.json");
    let out = reclaim(
        dir.path(),
        &[
            "usage",
            "import",
            file.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("rows read:        4"), "{summary}");
    assert!(summary.contains("created:          1"), "{summary}");
    assert!(summary.contains("report only:      1"), "{summary}");
    assert!(summary.contains("VIP users are excluded"), "{summary}");
    // Every row is accounted for: Photoshop (line 4) was used 3 days ago.
    assert!(
        summary.contains("no rule applied:  1 (") && summary.contains("  line 4\n"),
        "{summary}"
    );
    let findings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let outcomes: Vec<(u64, &str, &str)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["rule"].as_str().unwrap(),
                f["decision"]["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (2, "adobe-unused", "create"),
            (3, "adobe-unused", "excluded"),
            (5, "zoom-low", "would-create"),
        ]
    );
    assert_eq!(findings[2]["justification"], "low-usage");
    assert_eq!(count(dir.path()), 1, "the dry-run rule created nothing");

    let out = reclaim(dir.path(), &["usage", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("created:          0"), "{summary}");
    assert!(summary.contains("an open candidate exists"), "{summary}");
    assert_eq!(count(dir.path()), 1);
}

#[test]
fn rules_put_refuses_a_bad_rule_naming_the_field_and_stores_none_of_the_file() {
    let dir = seeded();
    let file = dir.path().join("rules.json");
    std::fs::write(
        &file,
        r#"[{"id": "fine", "name": "Fine", "criteria": {"kind": "never-used"}},
            {"id": "broken", "name": "Broken", "assignment_group": "nobody",
             "criteria": {"kind": "last-used-before", "days": 0}}]"#,
    )
    .unwrap();
    let out = reclaim(dir.path(), &["rules", "put", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("rule 2: assignment_group"), "{err}");
    assert!(err.contains("rule 2: criteria.days"), "{err}");
    assert!(err.contains("nothing stored"), "{err}");
    let listed = text(&reclaim(dir.path(), &["rules", "list"]).stdout);
    assert!(!listed.contains("\"fine\""), "{listed}");

    std::fs::write(
        &file,
        r#"{"id": "fine", "name": "Fine", "criteria": {"kind": "never-used"}}"#,
    )
    .unwrap();
    let out = reclaim(dir.path(), &["rules", "put", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&reclaim(dir.path(), &["rules", "list"]).stdout);
    assert!(listed.contains("\"never-used\""), "{listed}");
}

#[test]
fn rules_delete_removes_a_rule_and_names_one_that_is_not_there() {
    let dir = seeded();
    let file = dir.path().join("rules.json");
    std::fs::write(&file, r#"{"id": "gone-soon", "name": "Gone soon"}"#).unwrap();
    let out = reclaim(dir.path(), &["rules", "put", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = reclaim(dir.path(), &["rules", "delete", "gone-soon"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("deleted rule gone-soon"));
    let listed = text(&reclaim(dir.path(), &["rules", "list"]).stdout);
    assert!(!listed.contains("gone-soon"), "{listed}");
    let out = reclaim(dir.path(), &["rules", "delete", "gone-soon"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no rule 'gone-soon'"),
        "{}",
        text(&out.stderr)
    );
}

/// `reclaim connectors`: the real m365-usage plugin, against the Graph fake on loopback, finds
/// the licenses nobody used for 30 days and the rule makes candidates of them; `list` and
/// `runs` report the run, and a second run finds them open.
#[tokio::test(flavor = "multi_thread")]
async fn connectors_run_a_plugin_against_the_vendor_and_report_the_runs() {
    let built = std::env::var_os("RECLAIM_PLUGINS_DIR")
        .expect("RECLAIM_PLUGINS_DIR: the built plugins (test.sh builds them and sets it)");
    let vendors = reclaim_fakes::spawn_all().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    vendors
        .install_plugins(Path::new(&built), &plugins)
        .unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"id": "m365-inactive", "name": "Microsoft 365 unused 30 days", "notify_user": true,
            "days_before_auto_reclamation": 7, "assignment_group": "approvers",
            "software": [{"publisher": "Microsoft"}],
            "criteria": {"kind": "last-used-before", "days": 30}}"#,
    )
    .unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, SEED).unwrap();
    let d = dir.path().to_path_buf();
    let plugins = plugins.to_str().unwrap().to_string();
    let rules = rules.to_str().unwrap().to_string();
    let seed = seed.to_str().unwrap().to_string();
    let outputs = tokio::task::spawn_blocking(move || {
        let seeded = reclaim(&d, &["seed", &seed]);
        assert!(seeded.status.success(), "{}", text(&seeded.stderr));
        let with = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--plugins", &plugins, "--allow-private-addresses"]);
            reclaim(&d, &all)
        };
        let put = reclaim(&d, &["rules", "put", &rules]);
        assert!(put.status.success(), "{}", text(&put.stderr));
        [
            with(&["connectors", "list"]),
            with(&["connectors", "run", "m365-usage"]),
            with(&["connectors", "run", "m365-usage"]),
            with(&["connectors", "runs", "m365-usage"]),
            with(&["connectors", "run", "no-such-connector"]),
        ]
    })
    .await
    .unwrap();
    let [list, first, second, runs, missing] = outputs;
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert!(text(&list.stdout).contains("m365-usage\tMicrosoft 365 license usage\tdaily"));
    assert!(text(&list.stdout).contains("csd-inventory"));
    assert!(first.status.success(), "{}", text(&first.stderr));
    let first = text(&first.stdout);
    assert!(first.contains("run 1 (cli"), "{first}");
    assert!(first.contains("finished from m365-usage"), "{first}");
    assert!(!first.contains(" 0 created"), "{first}");
    let second = text(&second.stdout);
    assert!(
        second.contains("run 2 (cli") && second.contains(" 0 created"),
        "{second}"
    );
    assert!(
        second.contains("skipped: a candidate is already open"),
        "{second}"
    );
    let runs = text(&runs.stdout);
    assert!(
        runs.starts_with("run 2") && runs.contains("\nrun 1"),
        "{runs}"
    );
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no-such-connector"));
}
