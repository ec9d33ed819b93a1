//! The `reclaim` command line, run as a process against a database in a temp dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    {"id": "uma", "display_name": "Uma", "email": "uma@example.com"},
    {"id": "al", "display_name": "Al", "email": "al@example.com"}
  ],
  "groups": [{"id": "approvers", "name": "Approvers", "members": ["al"]}],
  "rules": [{"id": "r1", "name": "Ask", "notify_user": true, "days_before_auto_reclamation": 7,
             "assignment_group": "approvers"}],
  "tokens": {"token-for-sam-123": "sam"}
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

const BAD_CSV: &str = "publisher,product,device,user_id,user_email,justification,price_per_right\n\
Adobe,Acrobat,PC-1,uma,uma@example.com,unused,10.00\n\
Adobe,Acrobat,PC-2,uma,not-an-email,unused,10.00\n\
Adobe,,PC-3,uma,uma@example.com,sometimes,ten\n\
Zoom,Zoom Pro,PC-4,uma,uma@example.com,low-usage,14.99\n";

#[test]
fn a_csv_with_bad_rows_imports_nothing_and_names_each_line_and_field() {
    let dir = seeded();
    let file = dir.path().join("c.csv");
    std::fs::write(&file, BAD_CSV).unwrap();
    let out = reclaim(
        dir.path(),
        &["candidates", "import", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 3: user_email"), "{err}");
    assert!(err.contains("line 4: product: is required"), "{err}");
    assert!(err.contains("line 4: justification: 'sometimes'"), "{err}");
    assert!(err.contains("line 4: price_per_right"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert!(!err.contains("line 2") && !err.contains("line 5"), "{err}");
    assert_eq!(count(dir.path()), 0);
}

#[test]
fn the_price_period_comes_from_the_row_else_the_deployment_and_a_bad_one_names_its_line() {
    let dir = seeded();
    let file = dir.path().join("c.csv");
    let good =
        "publisher,product,device,user_id,user_email,justification,price_per_right,price_period\n\
                Adobe,Acrobat,PC-1,uma,uma@example.com,unused,10.00,\n\
                Adobe,Acrobat,PC-2,uma,uma@example.com,unused,400.00,one-time\n";
    std::fs::write(
        &file,
        format!("{good}Adobe,Acrobat,PC-3,uma,uma@example.com,unused,10.00,fortnightly\n"),
    )
    .unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec!["candidates", "import", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        reclaim(dir.path(), &args)
    };
    let out = import(&["--price-period", "monthly"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("line 4: price_period: 'fortnightly' is not one of monthly, yearly, one-time"),
        "{err}"
    );
    assert!(!err.contains("line 2") && !err.contains("line 3"), "{err}");
    assert_eq!(count(dir.path()), 0);

    let out = import(&["--price-period", "weekly"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("'weekly' is not a price period"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(&file, good).unwrap();
    let out = import(&["--price-period", "monthly"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = reclaim(dir.path(), &["savings", "--csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    // The first row said nothing: monthly, as the deployment says, counted 12 times a year.
    assert!(
        csv.contains("total,all,per year,120.00,0.00,0.00,0.00,0.00,1\n"),
        "{csv}"
    );
    assert!(
        csv.contains("total,all,one-time,400.00,0.00,0.00,0.00,0.00,1\n"),
        "{csv}"
    );
    let out = reclaim(dir.path(), &["savings"]);
    let table = text(&out.stdout);
    assert!(table.contains("savings per year ("), "{table}");
    assert!(table.contains("savings one-time ("), "{table}");
}

#[test]
fn skip_invalid_imports_the_good_rows_and_reports_the_bad() {
    let dir = seeded();
    let file = dir.path().join("c.csv");
    std::fs::write(&file, BAD_CSV).unwrap();
    let out = reclaim(
        dir.path(),
        &[
            "candidates",
            "import",
            file.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("imported 2 candidate(s), skipped 2 bad row(s)"));
    assert!(text(&out.stderr).contains("line 3: user_email"));
    assert_eq!(count(dir.path()), 2);
}

#[test]
fn a_seat_that_already_has_an_open_candidate_is_refused_naming_it() {
    let dir = seeded();
    let first = dir.path().join("first.csv");
    std::fs::write(
        &first,
        "publisher,product,device,user_id,user_email,justification,price_per_right\n\
         Adobe,Acrobat,PC-1,uma,uma@example.com,unused,10.00\n",
    )
    .unwrap();
    let out = reclaim(
        dir.path(),
        &["candidates", "import", first.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = dir.path().join("again.csv");
    std::fs::write(
        &again,
        "publisher,product,device,user_id,user_email,justification,price_per_right\n\
         adobe,ACROBAT,PC-1,uma,uma@example.com,unused,10.00\n\
         Adobe,Acrobat,PC-2,uma,uma@example.com,unused,10.00\n",
    )
    .unwrap();
    let out = reclaim(
        dir.path(),
        &["candidates", "import", again.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("line 2: user_id: uma already has an open candidate for adobe ACROBAT on PC-1 (RC0000001)"),
        "{err}"
    );
    assert_eq!(count(dir.path()), 1);
    let out = reclaim(
        dir.path(),
        &[
            "candidates",
            "import",
            again.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("imported 1 candidate(s), skipped 1 bad row(s)"));
    assert_eq!(count(dir.path()), 2);
}

#[test]
fn a_column_reclaim_does_not_know_is_reported_once_with_its_lines() {
    let dir = seeded();
    let file = dir.path().join("c.csv");
    std::fs::write(
        &file,
        "publisher,product,device,user_id,user_email,justification,price_per_right,colour\n\
         Adobe,Acrobat,PC-1,uma,uma@example.com,unused,10.00,red\n\
         Adobe,Acrobat,PC-2,uma,uma@example.com,unused,10.00,blue\n\
         Adobe,Acrobat,PC-3,uma,uma@example.com,unused,10.00,\n",
    )
    .unwrap();
    let out = reclaim(
        dir.path(),
        &["candidates", "import", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.matches("colour: unknown field").count(), 1, "{err}");
    assert!(err.contains("lines 2-4: colour: unknown field"), "{err}");
}

#[test]
fn json_imports_and_unknown_fields_are_refused_by_item() {
    let dir = seeded();
    let file = dir.path().join("c.json");
    std::fs::write(
        &file,
        r#"[{"publisher":"Adobe","product":"Acrobat","device":"PC-1","user_id":"uma",
             "user_email":"uma@example.com","justification":"unused","unused_rights":2},
            {"publisher":"Adobe","product":"Acrobat","device":"PC-1","justification":"unused",
             "colour":"red"}]"#,
    )
    .unwrap();
    let out = reclaim(
        dir.path(),
        &["candidates", "import", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("line 2: colour: unknown field"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(dir.path()), 0);

    std::fs::write(
        &file,
        r#"{"candidates": [{"publisher":"Adobe","product":"Acrobat","device":"PC-1",
            "user_id":"uma","user_email":"uma@example.com","justification":"unused"}]}"#,
    )
    .unwrap();
    let out = reclaim(
        dir.path(),
        &["candidates", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(count(dir.path()), 1);
}

#[test]
fn malformed_json_is_reported_and_changes_nothing() {
    let dir = seeded();
    let file = dir.path().join("c.json");
    std::fs::write(&file, "[{\"publisher\": ").unwrap();
    let out = reclaim(
        dir.path(),
        &["candidates", "import", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(dir.path()), 0);
}

#[test]
fn reclaim_by_number_and_by_filter_moves_ready_candidates_and_emails_users() {
    let dir = seeded();
    let file = dir.path().join("c.csv");
    std::fs::write(&file, BAD_CSV).unwrap();
    let out = reclaim(
        dir.path(),
        &[
            "candidates",
            "import",
            file.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert!(out.status.success());
    let out = reclaim(dir.path(), &["reclaim", "RC0000001"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("RC0000001: Awaiting User"),
        "{}",
        text(&out.stdout)
    );
    // Reclaiming again is refused with the reason, and the exit code says so.
    let out = reclaim(dir.path(), &["reclaim", "RC0000001"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not allowed in state Awaiting User"),
        "{}",
        text(&out.stderr)
    );
    // Without ids or a filter nothing happens by accident.
    let out = reclaim(dir.path(), &["reclaim"]);
    assert!(!out.status.success());
    let out = reclaim(dir.path(), &["reclaim", "--publisher", "zoom"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(
        &reclaim(
            dir.path(),
            &["candidates", "list", "--state", "awaiting-user"],
        )
        .stdout,
    );
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let out = reclaim(dir.path(), &["candidates", "list", "--state", "sleeping"]);
    assert!(text(&out.stderr).contains("--state: 'sleeping'"));
}

#[test]
fn history_exports_a_periods_trails_oldest_first_as_csv_or_json_lines() {
    let dir = seeded();
    let file = dir.path().join("c.csv");
    std::fs::write(&file, BAD_CSV).unwrap();
    let out = reclaim(
        dir.path(),
        &[
            "candidates",
            "import",
            file.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert!(out.status.success());
    for n in ["RC0000001", "RC0000002"] {
        assert!(reclaim(dir.path(), &["reclaim", n]).status.success());
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let out = reclaim(
        dir.path(),
        &["history", "--from", "2020-01-01", "--to", &today],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "candidate,at,who,what,event,from,to,details,ip,user_agent"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with("RC0000001,") && lines[2].starts_with("RC0000002,"),
        "{csv}"
    );
    assert!(lines[1].contains(",reclaim,Ready,Awaiting User,"), "{csv}");
    let out = reclaim(
        dir.path(),
        &["history", "--from", "2020-01-01", "--to", &today, "--json"],
    );
    let json = text(&out.stdout);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["number"], "RC0000001");
    assert_eq!(first["event"], "reclaim");
    // A period before anything happened is empty; a bad date names its option.
    let out = reclaim(
        dir.path(),
        &["history", "--from", "2020-01-01", "--to", "2020-12-31"],
    );
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let out = reclaim(
        dir.path(),
        &["history", "--from", "last tuesday", "--to", &today],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--from: 'last tuesday' is not a date"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn savings_come_from_running_totals_and_rebuild_gives_the_same() {
    let dir = seeded();
    let file = dir.path().join("c.csv");
    std::fs::write(&file, BAD_CSV).unwrap();
    let out = reclaim(
        dir.path(),
        &[
            "candidates",
            "import",
            file.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert!(out.status.success());
    assert!(reclaim(dir.path(), &["reclaim", "RC0000001"])
        .status
        .success());
    let kept = text(&reclaim(dir.path(), &["savings", "--csv"]).stdout);
    assert!(kept.contains("total,all,per year,"), "{kept}");
    // Totals lost by hand: the report shows nothing until they are summed again.
    let conn = rusqlite::Connection::open(dir.path().join("r.db")).unwrap();
    conn.execute("DELETE FROM savings_totals", []).unwrap();
    drop(conn);
    let lost = text(&reclaim(dir.path(), &["savings", "--csv"]).stdout);
    assert_ne!(lost, kept);
    let out = reclaim(dir.path(), &["savings", "--csv", "--rebuild"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("rebuilt the savings totals from 2 candidates"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), kept);
}

#[test]
fn a_seed_file_that_refers_to_unknown_users_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.json");
    std::fs::write(
        &file,
        r#"{"users": [], "groups": [{"id": "g", "name": "G", "members": ["ghost"]}]}"#,
    )
    .unwrap();
    let out = reclaim(dir.path(), &["seed", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("member 'ghost' is not a user"),
        "{}",
        text(&out.stderr)
    );
}
