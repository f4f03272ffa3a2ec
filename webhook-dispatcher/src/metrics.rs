//! Counters exported at `GET /metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use paystream_kit::metrics::{render_caches, CacheSize};

/// Upper bounds of the latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Default)]
pub struct Metrics {
    pub attempts: AtomicU64,
    pub successes: AtomicU64,
    /// Attempts without a 2xx.
    pub failures: AtomicU64,
    /// Deliveries that ended `failed`.
    pub deliveries_failed: AtomicU64,
    /// Deliveries scheduled by this dispatcher from payment events.
    pub scheduled: AtomicU64,
    /// Endpoints disabled after `410 Gone`.
    pub endpoints_disabled: AtomicU64,
    /// Rows skipped because their endpoint was at its limit.
    pub endpoint_saturated: AtomicU64,
    /// Errors of the consumer and the worker loop (each is retried).
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn observe_latency_ms(&self, latency_ms: u32) {
        let seconds = f64::from(latency_ms) / 1000.0;
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(u64::from(latency_ms) * 1000, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the queue gauges and the caches'
    /// (name, entries, capacity) read by the caller.
    pub fn render(
        &self,
        due_depth: Option<i64>,
        lag_seconds: Option<f64>,
        caches: &[CacheSize],
    ) -> String {
        let mut out = String::with_capacity(2048);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "webhook_attempts_total",
            "HTTP attempts made.",
            load(&self.attempts),
        );
        counter(
            "webhook_successes_total",
            "Attempts answered with a 2xx.",
            load(&self.successes),
        );
        counter(
            "webhook_failures_total",
            "Attempts without a 2xx answer.",
            load(&self.failures),
        );
        counter(
            "webhook_deliveries_failed_total",
            "Deliveries that ended failed (exhausted or gone).",
            load(&self.deliveries_failed),
        );
        counter(
            "webhook_deliveries_scheduled_total",
            "Deliveries scheduled from payment and refund events.",
            load(&self.scheduled),
        );
        counter(
            "webhook_endpoints_disabled_total",
            "Endpoints disabled after 410 Gone.",
            load(&self.endpoints_disabled),
        );
        counter(
            "webhook_endpoint_saturated_total",
            "Due deliveries left for later because their endpoint was at its concurrency limit.",
            load(&self.endpoint_saturated),
        );
        counter(
            "webhook_dispatcher_errors_total",
            "Internal errors (retried).",
            load(&self.errors),
        );
        let _ = writeln!(
            out,
            "# HELP webhook_in_flight Attempts in progress.\n# TYPE webhook_in_flight gauge\nwebhook_in_flight {}",
            load(&self.in_flight)
        );
        let _ = writeln!(
            out,
            "# HELP webhook_attempt_latency_seconds Time to the response headers (or the error).\n# TYPE webhook_attempt_latency_seconds histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "webhook_attempt_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "webhook_attempt_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "webhook_attempt_latency_seconds_sum {}\nwebhook_attempt_latency_seconds_count {count}",
            load(&self.latency_sum_micros) as f64 / 1e6
        );
        if let Some(depth) = due_depth {
            let _ = writeln!(
                out,
                "# HELP webhook_queue_due Deliveries due now (leased or not).\n# TYPE webhook_queue_due gauge\nwebhook_queue_due {depth}"
            );
        }
        if let Some(lag) = lag_seconds {
            let _ = writeln!(
                out,
                "# HELP webhook_schedule_lag_seconds How overdue the oldest unclaimed due delivery is.\n# TYPE webhook_schedule_lag_seconds gauge\nwebhook_schedule_lag_seconds {lag}"
            );
        }
        render_caches(&mut out, "webhook", caches);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.attempts.fetch_add(3, Ordering::Relaxed);
        metrics.observe_latency_ms(20);
        metrics.observe_latency_ms(7_000);
        let text = metrics.render(Some(4), Some(1.5), &[("payments", 3, 4096)]);
        assert!(text.contains("webhook_attempts_total 3\n"), "{text}");
        assert!(text.contains("webhook_attempt_latency_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("webhook_attempt_latency_seconds_bucket{le=\"5\"} 1\n"));
        assert!(text.contains("webhook_attempt_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("webhook_queue_due 4\n"));
        assert!(text.contains("webhook_schedule_lag_seconds 1.5\n"));
        assert!(text.contains("webhook_cache_entries{cache=\"payments\"} 3\n"));
        assert!(text.contains("webhook_cache_capacity{cache=\"payments\"} 4096\n"));
    }
}
