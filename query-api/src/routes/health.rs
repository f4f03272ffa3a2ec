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
use paystream_kit::health::Report;
use paystream_store::{PgEventStore, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::startup::QueryState;
use crate::views::Health;

pub use paystream_store::postgres::lag::LAG_CAP;

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
/// (one statement: `PgEventStore::projection_lags`).
pub async fn projections(store: &PgEventStore) -> Result<Vec<ProjectionHealth>, StoreError> {
    Ok(store
        .projection_lags()
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
    let (database, projections) = match projections(&state.store).await {
        Ok(projections) => (true, projections),
        // Connected, but the read-model tables could not be read?
        Err(_) => (state.store.ping().await, Vec::new()),
    };
    let troubled = projections.is_empty()
        || projections
            .iter()
            .any(|projection| projection.parked > 0 || projection.lag_capped);
    let nats = paystream_kit::nats::connected(&state.nats);
    let report = Report::new("query-api", database, nats, troubled);
    (report.status_code(), Json(Health::new(report, projections)))
}
