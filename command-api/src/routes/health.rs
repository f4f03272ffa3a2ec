//! `GET /health`: no auth; reports the database and NATS
//! (`paystream_kit::health`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use paystream_kit::health::Report;

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> (StatusCode, Json<Report>) {
    let database = sqlx::query("select 1")
        .execute(state.store.pool())
        .await
        .is_ok();
    let nats = paystream_kit::nats::connected(&state.nats);
    let report = Report::new("command-api", database, nats, false);
    (
        StatusCode::from_u16(report.status.http_status()).unwrap_or(StatusCode::OK),
        Json(report),
    )
}
