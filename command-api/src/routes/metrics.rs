//! `GET /metrics`: request counts and latencies, the caches, and how far the
//! relay is behind the store (read on each scrape, counted with a cap).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use paystream_kit::metrics::CONTENT_TYPE as TEXT;

use crate::startup::AppState;

/// Most unpublished events counted per scrape.
const BACKLOG_CAP: u64 = 100_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let registry = state.metrics.registry();
    let relay = paystream_store::relay::backlog(&state.store, BACKLOG_CAP).await;
    registry.describe_gauge(
        "command_api_database_up",
        "Whether the store could be read for this scrape.",
    );
    registry
        .gauge("command_api_database_up", &[])
        .set(if relay.is_ok() { 1.0 } else { 0.0 });
    let heads = state.store.head_cache_size();
    let credentials = paystream_kit::http::auth::credential_cache_size();
    registry.caches(
        "command_api",
        &[
            ("stream_heads", heads.0, heads.1),
            ("credentials", credentials.0, credentials.1),
        ],
    );
    if let Ok((position, backlog)) = relay {
        registry.describe_gauge(
            "relay_position",
            "Global position of the last event published to JetStream.",
        );
        registry.gauge("relay_position", &[]).set(position.0 as f64);
        registry.describe_gauge(
            "relay_backlog_events",
            "Committed events not yet published (counted up to 100000).",
        );
        registry
            .gauge("relay_backlog_events", &[])
            .set(backlog as f64);
    }
    ([(CONTENT_TYPE, TEXT)], state.metrics.render())
}
