//! `GET /health`: no auth; reports the database and NATS.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};

use crate::startup::QueryState;
use crate::views::Health;

pub fn router() -> Router<QueryState> {
    Router::new().route("/health", get(health))
}

/// Liveness and dependencies; 503 while the database is unreachable.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database is unreachable", body = Health),
    )
)]
pub async fn health(State(state): State<QueryState>) -> (StatusCode, Json<Health>) {
    let database = match sqlx::query("select 1").execute(state.store.pool()).await {
        Ok(_) => "connected",
        Err(_) => "disconnected",
    };
    let nats = match state.nats.connection_state() {
        async_nats::connection::State::Connected => "connected",
        _ => "disconnected",
    };
    let healthy = database == "connected";
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if healthy { "healthy" } else { "unhealthy" },
            database,
            nats,
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            service: "query-api",
        }),
    )
}
