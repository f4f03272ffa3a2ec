//! `GET /health`: no auth; reports the database and NATS.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
        Json(json!({
            "status": if healthy { "healthy" } else { "unhealthy" },
            "database": database,
            "nats": nats,
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "service": "command-api",
        })),
    )
}
