//! `GET /metrics`: request counts and latencies, and how far the relay is
//! behind the store (read on each scrape, counted with a cap).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;

use crate::startup::AppState;
use paystream_kit::metrics::{render_caches, CONTENT_TYPE as TEXT};

/// Most unpublished events counted per scrape.
const BACKLOG_CAP: u64 = 100_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let mut out = state.metrics.render();
    let relay = paystream_store::relay::backlog(&state.store, BACKLOG_CAP).await;
    let _ = writeln!(
        out,
        "# HELP command_api_database_up Whether the store could be read for this scrape.\n# TYPE command_api_database_up gauge\ncommand_api_database_up {}",
        u8::from(relay.is_ok())
    );
    let heads = state.store.head_cache_size();
    let credentials = paystream_kit::http::auth::credential_cache_size();
    render_caches(
        &mut out,
        "command_api",
        &[
            ("stream_heads", heads.0, heads.1),
            ("credentials", credentials.0, credentials.1),
        ],
    );
    if let Ok((position, backlog)) = relay {
        let _ = writeln!(
            out,
            "# HELP relay_position Global position of the last event published to JetStream.\n# TYPE relay_position gauge\nrelay_position {position}\n\
             # HELP relay_backlog_events Committed events not yet published (counted up to {BACKLOG_CAP}).\n# TYPE relay_backlog_events gauge\nrelay_backlog_events {backlog}"
        );
    }
    ([(CONTENT_TYPE, TEXT)], out)
}
