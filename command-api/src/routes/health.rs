//! `GET /health`: no auth; reports the database and NATS
//! (`paystream_kit::health`).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use paystream_kit::health::Report;

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> Report {
    Report::probe("command-api", &state.store, &state.nats, false).await
}
