//! `/api/v1/connectors`: the usage connectors, their runs, and *Run now*. Sam admins only:
//! a run creates candidates for everyone.

use super::auth::Caller;
use super::error::{ApiError, Json, Path, Query};
use super::ApiState;
use crate::connectors::ConnectorStatus;
use axum::extract::State;
use axum::http::StatusCode;
use reclaim_workflow::ports::ConnectorRun;
use serde::Deserialize;

/// Every loaded connector, its schedule, when it next runs and its latest runs.
pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<ConnectorStatus>>, ApiError> {
    caller.require_sam_admin("listing the connectors")?;
    Ok(Json(s.app.connectors().await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<u32>,
}

/// A connector's runs, newest first (`limit`, default 20, at most 200).
pub async fn runs(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<ConnectorRun>>, ApiError> {
    caller.require_sam_admin("reading a connector's runs")?;
    let limit = match q.limit {
        None => 20,
        Some(l) if (1..=200).contains(&l) => l,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "limit",
                "must be between 1 and 200",
            ))
        }
    };
    s.app.connector_status(&id).await?;
    Ok(Json(s.app.ports.runs.runs(&id, limit).await?))
}

/// *Run now*: a run any runner takes at once (202 with the run); 409 while one is running.
pub async fn run(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ConnectorRun>), ApiError> {
    caller.require_sam_admin("running a connector")?;
    let run = s.app.request_connector_run(&id, &caller.0.user_id).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}
