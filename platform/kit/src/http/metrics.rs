//! Request metrics for `GET /metrics`, in the Prometheus text format (no
//! metrics crate), shared by the command and query APIs:
//!
//! * `<service>_http_requests_total{method, route, status}`: requests by
//!   route template (`/api/v1/payments/{id}`, never the raw path, so the
//!   label set stays small; `unmatched` for unknown paths);
//! * `<service>_http_request_duration_seconds{route}`: a histogram of the
//!   time to the response head.
//!
//! Each service appends its own gauges after [`HttpMetrics::render`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use crate::metrics::{escape, CONTENT_TYPE};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

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

/// One service's request counts and latencies.
#[derive(Debug)]
pub struct HttpMetrics {
    /// Metric name prefix: `command_api`, `query_api`.
    service: &'static str,
    recorded: Mutex<Recorded>,
}

impl HttpMetrics {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            recorded: Mutex::default(),
        }
    }

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

    /// The request metrics as Prometheus text.
    pub fn render(&self) -> String {
        let (requests, latency) = match self.recorded.lock() {
            Ok(recorded) => (recorded.requests.clone(), recorded.latency.clone()),
            Err(_) => Default::default(),
        };
        let service = self.service;
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP {service}_http_requests_total HTTP requests answered, by route template and status.\n# TYPE {service}_http_requests_total counter"
        );
        for ((method, route, status), count) in &requests {
            let _ = writeln!(
                out,
                "{service}_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP {service}_http_request_duration_seconds Time to the response head, by route template.\n# TYPE {service}_http_request_duration_seconds histogram"
        );
        for (route, histogram) in &latency {
            let route = escape(route);
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "{service}_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "{service}_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}\n\
                 {service}_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}\n\
                 {service}_http_request_duration_seconds_count{{route=\"{route}\"}} {count}",
                count = histogram.count,
                sum = histogram.sum_seconds,
            );
        }
        out
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

    #[test]
    fn renders_prometheus_text() {
        let metrics = HttpMetrics::new("svc");
        metrics.observe("GET", "/api/v1/balance", 200, 0.003);
        metrics.observe("GET", "/api/v1/balance", 200, 7.0);
        metrics.observe("GET", "/api/v1/balance", 401, 0.0005);
        let text = metrics.render();
        assert!(
            text.contains(
                "svc_http_requests_total{method=\"GET\",route=\"/api/v1/balance\",status=\"200\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "svc_http_request_duration_seconds_bucket{route=\"/api/v1/balance\",le=\"0.005\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "svc_http_request_duration_seconds_bucket{route=\"/api/v1/balance\",le=\"+Inf\"} 3\n"
        ));
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
