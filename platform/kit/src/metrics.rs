//! `GET /metrics` for every service, through the `metrics` crate and its
//! Prometheus exporter (no hand-written exposition).
//!
//! Each service instance owns a [`Registry`]: a recorder of its own rather
//! than the process-global one, so that two services in one process (the
//! end-to-end tests run several) never mix their series. A service
//! registers its counters, gauges and histograms once and updates them;
//! values known only at scrape time (lags, cache sizes) are set just before
//! [`Registry::render`].

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// The content type of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of every `*_seconds` histogram.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How often histogram samples are folded into their buckets between
/// scrapes, so that they never pile up when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// One service instance's metrics.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    upkeep: Option<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(upkeep) = &self.upkeep {
            upkeep.abort();
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn key(name: &str, labels: &[(&'static str, &str)]) -> Key {
    Key::from_parts(
        name.to_owned(),
        labels
            .iter()
            .map(|(label, value)| Label::new(*label, (*value).to_owned()))
            .collect::<Vec<_>>(),
    )
}

impl Registry {
    /// A registry with [`LATENCY_BUCKETS`] for every `*_seconds` histogram;
    /// inside a Tokio runtime, it also keeps its histograms folded.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let upkeep = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let handle = handle.clone();
            runtime
                .spawn(async move {
                    let mut every = tokio::time::interval(UPKEEP_EVERY);
                    loop {
                        every.tick().await;
                        handle.run_upkeep();
                    }
                })
                .abort_handle()
        });
        Self {
            inner: Arc::new(Inner {
                recorder,
                handle,
                upkeep,
            }),
        }
    }

    /// `# HELP` of a counter.
    pub fn describe_counter(&self, name: &str, help: &'static str) {
        self.inner
            .recorder
            .describe_counter(name.to_owned().into(), None, help.into());
    }

    /// `# HELP` of a gauge.
    pub fn describe_gauge(&self, name: &str, help: &'static str) {
        self.inner
            .recorder
            .describe_gauge(name.to_owned().into(), None, help.into());
    }

    /// `# HELP` of a histogram.
    pub fn describe_histogram(&self, name: &str, help: &'static str) {
        self.inner
            .recorder
            .describe_histogram(name.to_owned().into(), None, help.into());
    }

    pub fn counter(&self, name: &str, labels: &[(&'static str, &str)]) -> Counter {
        self.inner
            .recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &str, labels: &[(&'static str, &str)]) -> Gauge {
        self.inner
            .recorder
            .register_gauge(&key(name, labels), &METADATA)
    }

    pub fn histogram(&self, name: &str, labels: &[(&'static str, &str)]) -> Histogram {
        self.inner
            .recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    /// The Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }

    /// Sets `{prefix}_cache_entries` and `{prefix}_cache_capacity`, one
    /// series per bounded in-memory cache.
    pub fn caches(&self, prefix: &str, caches: &[CacheSize]) {
        let entries = format!("{prefix}_cache_entries");
        let capacity = format!("{prefix}_cache_capacity");
        self.describe_gauge(&entries, "Entries in each bounded in-memory cache.");
        self.describe_gauge(
            &capacity,
            "Most entries each cache keeps (the oldest go first).",
        );
        for (cache, now, most) in caches {
            self.gauge(&entries, &[("cache", cache)]).set(*now as f64);
            self.gauge(&capacity, &[("cache", cache)]).set(*most as f64);
        }
    }
}

/// A bounded in-memory cache as `/metrics` shows it: (name, entries, most
/// entries it keeps).
pub type CacheSize = (&'static str, usize, usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_the_prometheus_text_format() {
        let registry = Registry::new();
        registry.describe_counter("svc_things_total", "Things.");
        registry
            .counter("svc_things_total", &[("kind", "a\"b")])
            .increment(2);
        registry.gauge("svc_level", &[]).set(7.0);
        let latency = registry.histogram("svc_wait_seconds", &[("route", "/x")]);
        latency.record(0.003);
        latency.record(7.0);
        registry.caches("svc", &[("heads", 3, 10)]);
        let text = registry.render();
        for line in [
            "# HELP svc_things_total Things.",
            "# TYPE svc_things_total counter",
            "svc_things_total{kind=\"a\\\"b\"} 2",
            "svc_level 7",
            "svc_wait_seconds_bucket{route=\"/x\",le=\"0.005\"} 1",
            "svc_wait_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2",
            "svc_wait_seconds_count{route=\"/x\"} 2",
            "svc_cache_entries{cache=\"heads\"} 3",
            "svc_cache_capacity{cache=\"heads\"} 10",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // Two registries never share series.
        assert!(!Registry::new().render().contains("svc_"));
    }
}
