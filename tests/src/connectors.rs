//! The usage connectors' runner, scenario by scenario, over any store: a run of several pages
//! gives what a file import of the same rows gives, a crashed run resumes from its cursor
//! without creating anything twice, a transient page error is retried, a permanent one ends
//! the run with the connector's message, and report-only rules create nothing. The connector
//! is a script of pages behind the port (the real connectors have their own tests against the
//! fake vendors in `host/tests/it/connectors.rs`).
//!
//! `tests/tests/it/connectors.rs` runs them on SQLite, `functions/aws/tests/dynamodb/connectors.rs` on
//! DynamoDB (the emulator).

use crate::verification::{Backend, SetClock};
use async_trait::async_trait;
use reclaim_api::App;
use reclaim_workflow::ports::{
    CandidateFilter, Clock, CollectFailure, CollectedPage, ConnectorInfo, RunState, UsageSources,
};
use reclaim_workflow::usage::{parse_usage_row, UsageBatch};
use reclaim_workflow::{Candidate, Rule};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// What the scripted connector does when asked for a page.
#[derive(Clone, Debug)]
pub enum Step {
    /// Serves the page the cursor names.
    Serve,
    Transient,
    Permanent(&'static str),
    /// The runner's process dies while the page is asked for.
    Crash,
}

/// A connector serving fixed rows a page at a time (the cursor is the page's number), with
/// scripted failures before given pages.
#[derive(Debug)]
pub struct ScriptedSource {
    pages: Vec<Vec<BTreeMap<String, String>>>,
    steps: Mutex<VecDeque<(usize, Step)>>,
    pub asked: Mutex<Vec<usize>>,
    /// The connector ids it answers to (each serves the same pages).
    ids: Vec<String>,
}

impl ScriptedSource {
    pub fn new(rows: &[BTreeMap<String, String>], per_page: usize) -> ScriptedSource {
        ScriptedSource {
            pages: rows.chunks(per_page).map(<[_]>::to_vec).collect(),
            steps: Mutex::new(VecDeque::new()),
            asked: Mutex::new(Vec::new()),
            ids: vec![CONNECTOR.to_string()],
        }
    }

    /// The same pages under these connector ids.
    pub fn named(mut self, ids: &[&str]) -> ScriptedSource {
        self.ids = ids.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The next time page `page` (0-based) is asked for, `step` happens instead.
    pub fn then(self, page: usize, step: Step) -> ScriptedSource {
        if let Ok(mut s) = self.steps.lock() {
            s.push_back((page, step));
        }
        self
    }
}

pub const CONNECTOR: &str = "scripted-usage";

#[async_trait]
impl UsageSources for ScriptedSource {
    async fn connectors(&self) -> Result<Vec<ConnectorInfo>, reclaim_workflow::ports::StoreError> {
        Ok(self
            .ids
            .iter()
            .map(|id| ConnectorInfo {
                id: id.clone(),
                name: "Scripted usage".into(),
                vendor: "tests".into(),
                version: "1".into(),
                description: "one row per seat".into(),
                schedule: "daily".into(),
                every_secs: 86_400,
            })
            .collect())
    }

    async fn collect(
        &self,
        connector: &str,
        cursor: Option<&str>,
        _pages_done: u32,
    ) -> Result<CollectedPage, CollectFailure> {
        assert!(self.ids.iter().any(|id| id == connector), "{connector}");
        let page: usize = cursor.map_or(0, |c| c.parse().unwrap_or(usize::MAX));
        if let Ok(mut a) = self.asked.lock() {
            a.push(page);
        }
        let step = {
            let mut steps = self
                .steps
                .lock()
                .map_err(|_| CollectFailure::Permanent("poisoned".into()))?;
            match steps.front() {
                Some((p, _)) if *p == page => steps.pop_front().map(|(_, s)| s),
                _ => None,
            }
        };
        match step {
            Some(Step::Transient) => {
                return Err(CollectFailure::Transient {
                    message: "throttled".into(),
                    retry_after_secs: Some(0),
                })
            }
            Some(Step::Permanent(why)) => return Err(CollectFailure::Permanent(why.into())),
            Some(Step::Crash) => panic!("the runner's process died"),
            Some(Step::Serve) | None => {}
        }
        let rows = self.pages.get(page).cloned().unwrap_or_default();
        let next = page + 1;
        Ok(CollectedPage {
            rows: rows.iter().map(parse_usage_row).collect(),
            next_cursor: (next < self.pages.len()).then(|| next.to_string()),
            notes: vec![("names concealed".into(), 1)],
        })
    }
}

/// Rules: unused Adobe software (not VIPs) creates candidates; never-used Zoom is report-only.
pub async fn rules(app: &App) {
    for rule in [
        serde_json::json!({"id": "adobe-unused", "name": "Adobe unused 90 days",
            "notify_user": true, "days_before_auto_reclamation": 14,
            "assignment_group": "desktop", "software": [{"publisher": "Adobe"}],
            "criteria": {"kind": "last-used-before", "days": 90}, "exclusions": {"vips": true}}),
        serde_json::json!({"id": "zoom-never", "name": "Zoom never used (dry run)",
            "assignment_group": "saas", "create_candidates": false,
            "software": [{"publisher": "Zoom"}], "criteria": {"kind": "never-used"}}),
    ] {
        let rule: Rule = serde_json::from_value(rule).unwrap();
        app.ports.rules.put_rule(&rule).await.unwrap();
    }
}

/// 37 usage rows: old Adobe use (candidates), recent Adobe use, VIPs, never-used Zoom, a bad
/// row.
pub fn usage_rows(now: reclaim_workflow::Timestamp) -> Vec<BTreeMap<String, String>> {
    let days_ago = |d: i64| (now - chrono::Duration::days(d)).to_rfc3339();
    (0..37)
        .map(|i| {
            let mut row = BTreeMap::new();
            let mut set = |k: &str, v: String| {
                row.insert(k.to_string(), v);
            };
            set("user_id", format!("user-{i:02}"));
            set("user_name", format!("User {i}"));
            set("user_email", format!("user-{i:02}@example.com"));
            set("device", format!("PC-{i}"));
            match i % 5 {
                0 | 1 => {
                    set("publisher", "Adobe".into());
                    set("product", "Acrobat Pro".into());
                    set("last_used_at", days_ago(200));
                }
                2 => {
                    set("publisher", "Adobe".into());
                    set("product", "Photoshop".into());
                    set("last_used_at", days_ago(3));
                }
                3 => {
                    set("publisher", "Zoom".into());
                    set("product", "Zoom Pro".into());
                    set("applies_to", "subscription".into());
                }
                _ => {
                    set("publisher", "Adobe".into());
                    set("product", "Illustrator".into());
                    set("last_used_at", days_ago(400));
                    set("user_vip", (i % 2 == 0).to_string());
                }
            }
            if i == 36 {
                set("last_used_at", "not a date".into());
            }
            row
        })
        .collect()
}

async fn all(app: &App) -> Vec<Candidate> {
    app.list_all(&CandidateFilter::default()).await.unwrap()
}

fn seats(cs: &[Candidate]) -> BTreeSet<(String, String, String)> {
    cs.iter()
        .map(|c| {
            (
                c.user.as_ref().map(|u| u.id.clone()).unwrap_or_default(),
                c.software.product.clone(),
                c.rule.id.clone(),
            )
        })
        .collect()
}

/// Two stores from the backend's maker: one runs the connector, one imports the same rows as
/// a file; they end with the same candidates and the run's counts say what the import said.
pub async fn a_run_of_several_pages_equals_the_file_import<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let clock = SetClock::new();
    let by_connector = make(Arc::new(clock.clone())).await;
    let by_file = make(Arc::new(clock.clone())).await;
    let now = clock.now();
    let rows = usage_rows(now);
    let mut app = by_connector.app().clone();
    rules(&app).await;
    rules(by_file.app()).await;
    let source = Arc::new(ScriptedSource::new(&rows, 10));
    app.ports.sources = source.clone();
    let run = app
        .run_connector(CONNECTOR, "schedule", None)
        .await
        .unwrap();

    let mut batch = UsageBatch::default();
    for (i, row) in rows.iter().enumerate() {
        batch.push(i + 1, row);
    }
    let report = by_file.app().import_usage_batch(batch, true).await.unwrap();

    assert_eq!(run.state, RunState::Finished, "{run:?}");
    assert_eq!(run.pages, 4);
    assert_eq!(run.rows, 37);
    assert_eq!(run.created as usize, report.created.len(), "{run:?}");
    assert!(run.created > 0);
    assert_eq!(seats(&all(&app).await), seats(&all(by_file.app()).await));
    assert_eq!(run.report_only, 7, "the Zoom rows: {run:?}");
    assert_eq!(run.skipped.get("invalid row"), Some(&1));
    assert_eq!(run.notes.get("names concealed"), Some(&4));
    let created_by_connector = all(&app).await;
    assert!(created_by_connector
        .iter()
        .all(|c| c.software.publisher == "Adobe"));
    // Saved: the runs listing shows it.
    let listed = app.connectors().await.unwrap();
    assert_eq!(listed[0].runs[0], run);

    // A second run finds them open and creates nothing more.
    clock.advance(chrono::Duration::days(1));
    let again = app
        .run_connector(CONNECTOR, "schedule", None)
        .await
        .unwrap();
    assert_eq!(again.seq, 2);
    assert_eq!(again.created, 0, "{again:?}");
    assert_eq!(
        again.skipped.get("a candidate is already open").copied(),
        Some(run.created)
    );
    assert_eq!(all(&app).await.len(), created_by_connector.len());
}

/// A runner that dies mid-run leaves the run to its lease; until the lease passes nobody
/// else takes it, then the next runner resumes at the page it died on, and the candidates are
/// those of an uninterrupted run, none twice.
pub async fn a_crashed_run_resumes_from_its_cursor_without_duplicates<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let clock = SetClock::new();
    let backend = make(Arc::new(clock.clone())).await;
    let rows = usage_rows(clock.now());
    let mut app = backend.app().clone();
    rules(&app).await;
    let source = Arc::new(ScriptedSource::new(&rows, 10).then(2, Step::Crash));
    app.ports.sources = source.clone();
    let dying = app.clone();
    let died =
        tokio::spawn(async move { dying.run_connector(CONNECTOR, "schedule", None).await }).await;
    assert!(died.is_err(), "the runner died");
    let left = app.ports.runs.runs(CONNECTOR, 1).await.unwrap().remove(0);
    assert_eq!(left.state, RunState::Running);
    assert_eq!(left.pages, 2);
    assert_eq!(left.cursor.as_deref(), Some("2"));
    let created_before = all(&app).await.len();

    // Its lease holds: a scheduled runner leaves it alone, a person is told it is running.
    assert!(app.run_due_connectors(None).await.unwrap().is_empty());
    assert!(app.run_connector(CONNECTOR, "ada", None).await.is_err());

    clock.advance(reclaim_api::connectors::LEASE + chrono::Duration::seconds(1));
    let done = app.run_due_connectors(None).await.unwrap();
    assert_eq!(done.len(), 1);
    let run = &done[0];
    assert_eq!(
        (run.seq, run.state, run.pages, run.rows),
        (1, RunState::Finished, 4, 37)
    );
    let asked = source.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![0, 1, 2, 2, 3],
        "page 2 asked again, nothing before it"
    );
    let cs = all(&app).await;
    assert!(cs.len() > created_before);
    assert_eq!(seats(&cs).len(), cs.len(), "no seat twice");
    assert_eq!(run.created as usize, cs.len());
}

/// A transient error on a page is retried and the run goes on; a permanent one ends it as
/// failed, with the connector's message, keeping what earlier pages created.
pub async fn page_errors_are_retried_or_end_the_run<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let clock = SetClock::new();
    let backend = make(Arc::new(clock.clone())).await;
    let rows = usage_rows(clock.now());
    let mut app = backend.app().clone();
    rules(&app).await;
    app.ports.sources = Arc::new(
        ScriptedSource::new(&rows, 10)
            .then(1, Step::Transient)
            .then(1, Step::Serve),
    );
    let run = app
        .run_connector(CONNECTOR, "schedule", None)
        .await
        .unwrap();
    assert_eq!(
        (run.state, run.retries, run.pages),
        (RunState::Finished, 1, 4)
    );

    let backend = make(Arc::new(clock.clone())).await;
    let mut app = backend.app().clone();
    rules(&app).await;
    let cap = "connector `scripted-usage` returned 5000 rows in one page; its manifest allows at most 1000";
    app.ports.sources = Arc::new(ScriptedSource::new(&rows, 10).then(2, Step::Permanent(cap)));
    let run = app
        .run_connector(CONNECTOR, "schedule", None)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.error.as_deref(), Some(cap));
    assert_eq!(run.pages, 2);
    assert!(run.finished_at.is_some());
    assert_eq!(all(&app).await.len() as u64, run.created);
    // The next scheduled run starts afresh, on its schedule.
    assert!(app.run_due_connectors(None).await.unwrap().is_empty());
    clock.advance(chrono::Duration::days(1));
    assert_eq!(app.run_due_connectors(None).await.unwrap()[0].seq, 2);
}

/// Report-only rules count what they would create and create nothing.
pub async fn report_only_rules_create_nothing<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let clock = SetClock::new();
    let backend = make(Arc::new(clock.clone())).await;
    let mut app = backend.app().clone();
    rules(&app).await;
    let zoom: Vec<_> = usage_rows(clock.now())
        .into_iter()
        .filter(|r| r.get("publisher").map(String::as_str) == Some("Zoom"))
        .collect();
    app.ports.sources = Arc::new(ScriptedSource::new(&zoom, 3));
    let run = app
        .run_connector(CONNECTOR, "schedule", None)
        .await
        .unwrap();
    assert_eq!(
        (run.state, run.report_only, run.created),
        (RunState::Finished, 7, 0)
    );
    assert!(all(&app).await.is_empty());
}

/// A vendor cannot say who is an ITIL user; the directory can. A seat a connector finds for
/// an ITIL person carries it, so Reclaim asks them with a task beside the email; a person the
/// directory does not know keeps what the connector said.
pub async fn itil_people_a_connector_finds_are_asked_with_a_task<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let clock = SetClock::new();
    let backend = make(Arc::new(clock.clone())).await;
    let mut app = backend.app().clone();
    rules(&app).await;
    app.ports
        .directory
        .put_user(&reclaim_workflow::User {
            id: "user-00".into(),
            display_name: "User 0".into(),
            email: Some("user-00@example.com".into()),
            upn: None,
            itil: true,
            vip: false,
            sam_admin: false,
        })
        .await
        .unwrap();
    app.ports.sources = Arc::new(ScriptedSource::new(&usage_rows(clock.now()), 10));
    let run = app
        .run_connector(CONNECTOR, "schedule", None)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Finished, "{run:?}");
    let created = all(&app).await;
    let of = |user: &str| {
        created
            .iter()
            .find(|c| c.user.as_ref().is_some_and(|u| u.id == user))
            .cloned()
            .unwrap()
    };
    let itil = of("user-00");
    assert!(itil.user.as_ref().is_some_and(|u| u.itil), "{itil:?}");
    let unknown = of("user-01");
    assert!(
        unknown.user.as_ref().is_some_and(|u| !u.itil),
        "{unknown:?}"
    );

    let sam = reclaim_workflow::Actor::Person(reclaim_workflow::Principal {
        sam_admin: true,
        ..reclaim_workflow::Principal::user("sam")
    });
    for c in [&itil, &unknown] {
        let asked = app
            .transition(&c.id, &reclaim_workflow::Event::Reclaim, &sam, None)
            .await
            .unwrap();
        assert_eq!(asked.state, reclaim_workflow::State::AwaitingUser);
    }
    backend.drain().await;
    let tasks = |user: &'static str| {
        let app = app.clone();
        async move { app.ports.tasks.open_tasks(user, &[]).await.unwrap() }
    };
    let asked = tasks("user-00").await;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].candidate_id, itil.id);
    assert!(tasks("user-01").await.is_empty());
}
