//! The Connectors page: sam admins see each usage connector, its schedule, when it next runs
//! and its latest runs with their counts and errors, and press *Run now*.

use super::form::UiForm;
use super::{see_other, UiResult, Viewer};
use crate::http::error::{ApiError, Path, Query};
use crate::http::outbox::encode_segment;
use crate::http::ApiState;
use axum::extract::State;
use minijinja::{context, Value};
use reclaim_workflow::text;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorsQuery {
    started: Option<String>,
}

fn when(t: reclaim_workflow::Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(reason, n)| format!("{reason}: {}", text::thousands(*n)))
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn connectors_page(
    State(s): State<ApiState>,
    v: Viewer,
    q: Result<Query<ConnectorsQuery>, ApiError>,
) -> UiResult {
    v.require_sam_admin("Running usage connectors")?;
    let started = q.ok().and_then(|Query(q)| q.started);
    let all = s.app.connectors().await?;
    let started = started.filter(|id| all.iter().any(|c| &c.info.id == id));
    let connectors: Vec<Value> = all
        .iter()
        .map(|c| {
            let runs: Vec<Value> = c
                .runs
                .iter()
                .map(|r| {
                    context! {
                        seq => r.seq,
                        started => when(r.started_at),
                        finished => r.finished_at.map(when),
                        trigger => r.trigger,
                        state => r.state.as_str(),
                        pages => r.pages,
                        rows => text::thousands(r.rows),
                        created => text::thousands(r.created),
                        report_only => text::thousands(r.report_only),
                        canceled => text::thousands(r.canceled),
                        skipped => counts(&r.skipped),
                        notes => counts(&r.notes),
                        error => r.error,
                    }
                })
                .collect();
            let running = c
                .runs
                .first()
                .is_some_and(|r| r.state == reclaim_workflow::ports::RunState::Running);
            context! {
                id => c.info.id, name => c.info.name, vendor => c.info.vendor,
                version => c.info.version, description => c.info.description,
                schedule => c.info.schedule, next => when(c.next_run_at),
                running, runs,
            }
        })
        .collect();
    Ok(v.render(
        "ui_connectors.html",
        "connectors",
        context! { connectors, started },
    ))
}

/// *Run now*: the run starts at the runner's next look (seconds locally).
pub async fn run_now(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    UiForm(f): UiForm,
) -> UiResult {
    v.require_sam_admin("Running usage connectors")?;
    v.check(&f)?;
    s.app
        .request_connector_run(&id, &v.principal.user_id)
        .await?;
    Ok(see_other(&format!(
        "/ui/connectors?started={}",
        encode_segment(&id)
    )))
}
