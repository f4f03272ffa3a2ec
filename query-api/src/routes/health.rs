//! `GET /health`: no auth; reports the database, NATS and every projection.
//!
//! * HTTP 503 and `status: "unhealthy"` only while the database is
//!   unreachable (nothing can be read then).
//! * `status: "degraded"` (HTTP 200) when reads work but something behind
//!   them does not: NATS is disconnected, a projection has parked events, or
//!   a projection is more than [`LAG_CAP`] events behind the relay.
//! * Else `status: "healthy"`.
//!
//! A projection's `lag_events` counts the events between its checkpoint and
//! the relay's (`relay_checkpoints`): published to NATS, not yet applied. The
//! count stops at `LAG_CAP + 1` (`limit`), so it costs at most that many
//! index entries however far behind a projection is; `lag_capped` says the
//! count was cut.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use paystream_projector::lag::lags;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::startup::QueryState;
use crate::views::Health;

pub use paystream_projector::lag::LAG_CAP;

pub fn router() -> Router<QueryState> {
    Router::new().route("/health", get(health))
}

/// One projection's progress.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct ProjectionHealth {
    #[schema(example = "ledger")]
    pub projection: String,
    /// Global position of the last event it applied.
    pub position: i64,
    /// Events the relay has published that it has not applied yet (at most
    /// 10 001: see `lag_capped`).
    pub lag_events: i64,
    /// The lag is more than 10 000 events (the count stopped there).
    pub lag_capped: bool,
    /// Events it could not apply, parked for an operator.
    pub parked: i64,
}

/// Every projection's checkpoint, lag behind the relay and parked events
/// (one statement: `paystream_projector::lag`).
pub async fn projections(pool: &PgPool) -> Result<Vec<ProjectionHealth>, sqlx::Error> {
    Ok(lags(pool)
        .await?
        .into_iter()
        .map(|lag| ProjectionHealth {
            projection: lag.projection,
            position: lag.position,
            lag_events: lag.events,
            lag_capped: lag.capped,
            parked: lag.parked,
        })
        .collect())
}

/// Liveness and dependencies; 503 while the database is unreachable.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Healthy or degraded (see `status`)", body = Health),
        (status = 503, description = "The database is unreachable", body = Health),
    )
)]
pub async fn health(State(state): State<QueryState>) -> (StatusCode, Json<Health>) {
    let (database, projections) = match projections(state.store.pool()).await {
        Ok(projections) => ("connected", projections),
        Err(_) => match sqlx::query("select 1").execute(state.store.pool()).await {
            // Connected, but the read-model tables could not be read.
            Ok(_) => ("connected", Vec::new()),
            Err(_) => ("disconnected", Vec::new()),
        },
    };
    let nats = match state.nats.connection_state() {
        async_nats::connection::State::Connected => "connected",
        _ => "disconnected",
    };
    let (code, status) = if database != "connected" {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    } else if nats != "connected"
        || projections.is_empty()
        || projections
            .iter()
            .any(|projection| projection.parked > 0 || projection.lag_capped)
    {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "healthy")
    };
    (
        code,
        Json(Health {
            status,
            database,
            nats,
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            service: "query-api",
            projections,
        }),
    )
}
