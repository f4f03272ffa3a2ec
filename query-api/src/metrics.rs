//! `GET /metrics`: the Prometheus text format:
//!
//! * `query_api_http_requests_total` and
//!   `query_api_http_request_duration_seconds` (the shared
//!   [`HttpMetrics`]; a streamed export's body is not counted);
//! * `query_api_projection_position{projection}`,
//!   `query_api_projection_lag_events{projection}` and
//!   `query_api_projection_parked{projection}`: read on each scrape with the
//!   health endpoint's query (one statement, lag counted with a cap).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use paystream_kit::http::metrics::HttpMetrics;
use paystream_kit::metrics::{CacheSize, CONTENT_TYPE as TEXT};

use crate::routes::health::{self, ProjectionHealth};
use crate::startup::QueryState;

pub use paystream_kit::http::metrics::track;

/// A projection gauge: name, help, and how to read it.
type Gauge = (&'static str, &'static str, fn(&ProjectionHealth) -> i64);

const PROJECTION_GAUGES: [Gauge; 3] = [
    (
        "query_api_projection_position",
        "Global position of the last event the projection applied.",
        |projection| projection.position,
    ),
    (
        "query_api_projection_lag_events",
        "Events published by the relay and not yet applied (counted up to 10001).",
        |projection| projection.lag_events,
    ),
    (
        "query_api_projection_parked",
        "Events the projection could not apply, parked.",
        |projection| projection.parked,
    ),
];

/// The request metrics, the caches' (name, entries, capacity), then the
/// projections' gauges as read now (`None`: the database could not be read;
/// the gauges keep their last values and `query_api_database_up` is 0).
pub fn render(
    http: &HttpMetrics,
    caches: &[CacheSize],
    projections: Option<&[ProjectionHealth]>,
) -> String {
    let registry = http.registry();
    registry.caches("query_api", caches);
    registry.describe_gauge(
        "query_api_database_up",
        "Whether the read-model tables could be read for this scrape.",
    );
    registry
        .gauge("query_api_database_up", &[])
        .set(if projections.is_some() { 1.0 } else { 0.0 });
    for (name, help, value) in PROJECTION_GAUGES {
        registry.describe_gauge(name, help);
        for projection in projections.unwrap_or_default() {
            registry
                .gauge(name, &[("projection", &projection.projection)])
                .set(value(projection) as f64);
        }
    }
    http.render()
}

/// The API-key cache of the shared auth extractor.
fn credentials_cache() -> CacheSize {
    let (entries, capacity) = paystream_kit::http::auth::credential_cache_size();
    ("credentials", entries, capacity)
}

pub fn router() -> Router<QueryState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<QueryState>) -> Response {
    let projections = health::projections(&state.store).await.ok();
    (
        [(CONTENT_TYPE, TEXT)],
        render(
            &state.metrics,
            &[credentials_cache()],
            projections.as_deref(),
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_requests_then_projections() {
        let metrics = HttpMetrics::new("query_api");
        metrics.observe("GET", "/api/v1/balance", 200, 0.003);
        let projections = [ProjectionHealth {
            projection: "ledger".into(),
            position: 42,
            lag_events: 3,
            lag_capped: false,
            parked: 0,
        }];
        let text = render(&metrics, &[("credentials", 2, 10_000)], Some(&projections));
        assert!(text.contains(
            "query_api_http_requests_total{method=\"GET\",route=\"/api/v1/balance\",status=\"200\"} 1\n"
        ), "{text}");
        assert!(text.contains("query_api_projection_lag_events{projection=\"ledger\"} 3\n"));
        assert!(text.contains("query_api_database_up 1\n"));
        assert!(text.contains("query_api_cache_entries{cache=\"credentials\"} 2\n"));
        assert!(text.contains("query_api_cache_capacity{cache=\"credentials\"} 10000\n"));
        assert!(render(&metrics, &[], None).contains("query_api_database_up 0\n"));
    }
}
