//! `GET /metrics`: the Prometheus text format, in the style of the webhook
//! dispatcher's (no metrics crate):
//!
//! * `query_api_http_requests_total{method, route, status}`: requests by
//!   route template (`/api/v1/payments/{id}`, never the raw path, so the
//!   label set stays small; `unmatched` for unknown paths);
//! * `query_api_http_request_duration_seconds{route}`: a histogram of the
//!   time to the response head (a streamed export's body is not counted);
//! * `query_api_projection_position{projection}`,
//!   `query_api_projection_lag_events{projection}` and
//!   `query_api_projection_parked{projection}`: read on each scrape with the
//!   health endpoint's query (one statement, lag counted with a cap).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::routes::health::{self, ProjectionHealth};
use crate::startup::QueryState;

/// Upper bounds of the latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Debug, Default)]
struct Recorded {
    /// (method, route, status) → count.
    requests: BTreeMap<(String, String, u16), u64>,
    /// route → latency.
    latency: BTreeMap<String, Histogram>,
}

/// A projection gauge: name, help, and how to read it.
type Gauge = (&'static str, &'static str, fn(&ProjectionHealth) -> i64);

/// The query API's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    recorded: Mutex<Recorded>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut recorded) = self.recorded.lock() else {
            return;
        };
        *recorded
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_insert(0) += 1;
        let histogram = recorded.latency.entry(route.to_string()).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// The text exposition; `projections` as read now (`None`: the database
    /// could not be read).
    pub fn render(&self, projections: Option<&[ProjectionHealth]>) -> String {
        let (requests, latency) = match self.recorded.lock() {
            Ok(recorded) => (recorded.requests.clone(), recorded.latency.clone()),
            Err(_) => Default::default(),
        };
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP query_api_http_requests_total HTTP requests answered, by route template and status.\n# TYPE query_api_http_requests_total counter"
        );
        for ((method, route, status), count) in &requests {
            let _ = writeln!(
                out,
                "query_api_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP query_api_http_request_duration_seconds Time to the response head, by route template.\n# TYPE query_api_http_request_duration_seconds histogram"
        );
        for (route, histogram) in &latency {
            let route = escape(route);
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "query_api_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "query_api_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}\n\
                 query_api_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}\n\
                 query_api_http_request_duration_seconds_count{{route=\"{route}\"}} {count}",
                count = histogram.count,
                sum = histogram.sum_seconds,
            );
        }
        let _ = writeln!(
            out,
            "# HELP query_api_database_up Whether the read-model tables could be read for this scrape.\n# TYPE query_api_database_up gauge\nquery_api_database_up {}",
            u8::from(projections.is_some())
        );
        if let Some(projections) = projections {
            let gauges: [Gauge; 3] = [
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
            for (name, help, value) in gauges {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for projection in projections {
                    let _ = writeln!(
                        out,
                        "{name}{{projection=\"{}\"}} {}",
                        escape(&projection.projection),
                        value(projection)
                    );
                }
            }
        }
        out
    }
}

/// A label value: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records every request's route, status and latency.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub fn router() -> Router<QueryState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<QueryState>) -> Response {
    let projections = health::projections(state.store.pool()).await.ok();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(projections.as_deref()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/api/v1/balance", 200, 0.003);
        metrics.observe("GET", "/api/v1/balance", 200, 7.0);
        metrics.observe("GET", "/api/v1/balance", 401, 0.0005);
        let projections = [ProjectionHealth {
            projection: "ledger".into(),
            position: 42,
            lag_events: 3,
            lag_capped: false,
            parked: 0,
        }];
        let text = metrics.render(Some(&projections));
        assert!(text.contains(
            "query_api_http_requests_total{method=\"GET\",route=\"/api/v1/balance\",status=\"200\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "query_api_http_request_duration_seconds_bucket{route=\"/api/v1/balance\",le=\"0.005\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "query_api_http_request_duration_seconds_bucket{route=\"/api/v1/balance\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains("query_api_projection_lag_events{projection=\"ledger\"} 3\n"));
        assert!(text.contains("query_api_database_up 1\n"));
        assert!(Metrics::default()
            .render(None)
            .contains("query_api_database_up 0\n"));
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
