//! The dispatcher's series at `GET /metrics`, through its
//! `paystream_kit::metrics::Registry`.

use metrics::{Counter, Gauge, Histogram};
use paystream_kit::metrics::{CacheSize, Registry};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub attempts: Counter,
    pub successes: Counter,
    /// Attempts without a 2xx.
    pub failures: Counter,
    /// Deliveries that ended `failed`.
    pub deliveries_failed: Counter,
    /// Deliveries scheduled by this dispatcher from payment events.
    pub scheduled: Counter,
    /// Endpoints disabled after `410 Gone`.
    pub endpoints_disabled: Counter,
    /// Rows skipped because their endpoint was at its limit.
    pub endpoint_saturated: Counter,
    /// Errors of the consumer and the worker loop (each is retried).
    pub errors: Counter,
    pub in_flight: Gauge,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &'static str| {
            registry.describe_counter(name, help);
            registry.counter(name, &[])
        };
        let attempts = counter("webhook_attempts_total", "HTTP attempts made.");
        let successes = counter("webhook_successes_total", "Attempts answered with a 2xx.");
        let failures = counter("webhook_failures_total", "Attempts without a 2xx answer.");
        let deliveries_failed = counter(
            "webhook_deliveries_failed_total",
            "Deliveries that ended failed (exhausted or gone).",
        );
        let scheduled = counter(
            "webhook_deliveries_scheduled_total",
            "Deliveries scheduled from payment and refund events.",
        );
        let endpoints_disabled = counter(
            "webhook_endpoints_disabled_total",
            "Endpoints disabled after 410 Gone.",
        );
        let endpoint_saturated = counter(
            "webhook_endpoint_saturated_total",
            "Due deliveries left for later because their endpoint was at its concurrency limit.",
        );
        let errors = counter(
            "webhook_dispatcher_errors_total",
            "Internal errors (retried).",
        );
        registry.describe_gauge("webhook_in_flight", "Attempts in progress.");
        registry.describe_histogram(
            "webhook_attempt_latency_seconds",
            "Time to the response headers (or the error).",
        );
        registry.describe_gauge("webhook_queue_due", "Deliveries due now (leased or not).");
        registry.describe_gauge(
            "webhook_schedule_lag_seconds",
            "How overdue the oldest unclaimed due delivery is.",
        );
        Self {
            attempts,
            successes,
            failures,
            deliveries_failed,
            scheduled,
            endpoints_disabled,
            endpoint_saturated,
            errors,
            in_flight: registry.gauge("webhook_in_flight", &[]),
            latency: registry.histogram("webhook_attempt_latency_seconds", &[]),
            registry,
        }
    }
}

impl Metrics {
    pub fn observe_latency_ms(&self, latency_ms: u32) {
        self.latency.record(f64::from(latency_ms) / 1000.0);
    }

    /// The Prometheus text exposition, with the queue gauges and the caches'
    /// (name, entries, capacity) read by the caller (a gauge the caller
    /// could not read keeps its last value).
    pub fn render(
        &self,
        due_depth: Option<i64>,
        lag_seconds: Option<f64>,
        caches: &[CacheSize],
    ) -> String {
        if let Some(depth) = due_depth {
            self.registry
                .gauge("webhook_queue_due", &[])
                .set(depth as f64);
        }
        if let Some(lag) = lag_seconds {
            self.registry
                .gauge("webhook_schedule_lag_seconds", &[])
                .set(lag);
        }
        self.registry.caches("webhook", caches);
        self.registry.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.attempts.increment(3);
        metrics.observe_latency_ms(20);
        metrics.observe_latency_ms(7_000);
        let text = metrics.render(Some(4), Some(1.5), &[("payments", 3, 4096)]);
        for line in [
            "webhook_attempts_total 3",
            "webhook_attempt_latency_seconds_bucket{le=\"0.025\"} 1",
            "webhook_attempt_latency_seconds_bucket{le=\"5\"} 1",
            "webhook_attempt_latency_seconds_bucket{le=\"+Inf\"} 2",
            "webhook_queue_due 4",
            "webhook_schedule_lag_seconds 1.5",
            "webhook_cache_entries{cache=\"payments\"} 3",
            "webhook_cache_capacity{cache=\"payments\"} 4096",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
