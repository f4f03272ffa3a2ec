//! Request metrics of both APIs, recorded into the service's
//! [`Registry`]:
//!
//! * `<service>_http_requests_total{method, route, status}`: requests by
//!   route template (`/api/v1/payments/{id}`, never the raw path, so the
//!   label set stays small; `unmatched` for unknown paths);
//! * `<service>_http_request_duration_seconds{route}`: a histogram of the
//!   time to the response head.
//!
//! Each service sets its own gauges in [`HttpMetrics::registry`] before it
//! renders.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Registry;

/// One service's request counts and latencies.
#[derive(Debug)]
pub struct HttpMetrics {
    registry: Registry,
    requests: String,
    duration: String,
}

impl HttpMetrics {
    /// `service` is the metric name prefix: `command_api`, `query_api`.
    pub fn new(service: &'static str) -> Self {
        let registry = Registry::new();
        let requests = format!("{service}_http_requests_total");
        let duration = format!("{service}_http_request_duration_seconds");
        registry.describe_counter(
            &requests,
            "HTTP requests by method, route template and status.",
        );
        registry.describe_histogram(
            &duration,
            "Time from request to response head, by route template.",
        );
        Self {
            registry,
            requests,
            duration,
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.registry
            .counter(
                &self.requests,
                &[
                    ("method", method),
                    ("route", route),
                    ("status", &status.to_string()),
                ],
            )
            .increment(1);
        self.registry
            .histogram(&self.duration, &[("route", route)])
            .record(seconds);
    }

    /// Where the service adds its own series.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything the service recorded, as Prometheus text.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

/// Middleware: records every request's route, status and latency.
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_requests_and_latency() {
        let metrics = HttpMetrics::new("svc");
        metrics.observe("GET", "/api/v1/balance", 200, 0.003);
        metrics.observe("GET", "/api/v1/balance", 200, 7.0);
        metrics.observe("GET", "/api/v1/balance", 401, 0.0005);
        let text = metrics.render();
        for line in [
            "svc_http_requests_total{method=\"GET\",route=\"/api/v1/balance\",status=\"200\"} 2",
            "svc_http_request_duration_seconds_bucket{route=\"/api/v1/balance\",le=\"0.005\"} 2",
            "svc_http_request_duration_seconds_bucket{route=\"/api/v1/balance\",le=\"+Inf\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
