//! Per-projection counters, exported at `GET /metrics` through the
//! service's `paystream_kit::metrics::Registry`, with the lag measured at
//! scrape time (`PgEventStore::projection_lags`).

use chrono::Utc;
use metrics::{Counter, Gauge};
use paystream_kit::metrics::Registry;
use paystream_store::postgres::lag::Lag;
use paystream_store::RecordedEvent;

use crate::apply::Outcome;
use crate::projection::Projection;

/// One projection's series.
#[derive(Debug)]
pub struct ProjectionMetrics {
    batches: Counter,
    applied: Counter,
    /// Redelivered events at or below the checkpoint.
    skipped: Counter,
    parked: Counter,
    /// Milliseconds from the last applied event's commit to its application.
    last_delay_ms: Gauge,
}

impl ProjectionMetrics {
    fn new(registry: &Registry, projection: Projection) -> Self {
        let labels = [("projection", projection.name())];
        Self {
            batches: registry.counter("projector_batches_total", &labels),
            applied: registry.counter("projector_events_applied_total", &labels),
            skipped: registry.counter("projector_events_skipped_total", &labels),
            parked: registry.counter("projector_events_parked_total", &labels),
            last_delay_ms: registry.gauge("projector_apply_delay_milliseconds", &labels),
        }
    }

    pub fn record(&self, outcome: &Outcome, last: Option<&RecordedEvent>) {
        self.batches.increment(1);
        self.applied.increment(outcome.applied as u64);
        self.skipped.increment(outcome.skipped as u64);
        self.parked.increment(outcome.parked as u64);
        if let Some(event) = last {
            let delay = (Utc::now() - event.recorded_at).num_milliseconds();
            self.last_delay_ms.set(delay as f64);
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    projections: Vec<ProjectionMetrics>,
    /// Messages that held no readable event.
    pub unreadable: Counter,
    /// Consumer sessions restarted after an error (one consumer serves
    /// every projection).
    pub restarts: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        for (name, help) in [
            ("projector_batches_total", "Transactions committed."),
            ("projector_events_applied_total", "Events applied."),
            (
                "projector_events_skipped_total",
                "Redelivered events skipped (already applied).",
            ),
            (
                "projector_events_parked_total",
                "Poison events parked in projection_parked.",
            ),
            (
                "projector_unreadable_messages_total",
                "JetStream messages that held no readable event.",
            ),
            (
                "projector_consumer_restarts_total",
                "Consumer sessions restarted after an error.",
            ),
        ] {
            registry.describe_counter(name, help);
        }
        for (name, help) in [
            (
                "projector_apply_delay_milliseconds",
                "Commit-to-applied delay of the last applied event.",
            ),
            (
                "projector_checkpoint_position",
                "Global position of the last applied event.",
            ),
            (
                "projector_lag_events",
                "Events published by the relay and not yet applied (counted up to 10001).",
            ),
            ("projector_parked_events", "Events parked now."),
        ] {
            registry.describe_gauge(name, help);
        }
        Self {
            projections: Projection::ALL
                .iter()
                .map(|projection| ProjectionMetrics::new(&registry, *projection))
                .collect(),
            unreadable: registry.counter("projector_unreadable_messages_total", &[]),
            restarts: registry.counter("projector_consumer_restarts_total", &[]),
            registry,
        }
    }
}

impl Metrics {
    pub fn of(&self, projection: Projection) -> &ProjectionMetrics {
        let index = Projection::ALL
            .iter()
            .position(|p| *p == projection)
            .unwrap_or(0);
        &self.projections[index]
    }

    /// The Prometheus exposition, with `lags` as read for this scrape.
    pub fn render(&self, lags: &[Lag]) -> String {
        for lag in lags {
            let labels = [("projection", lag.projection.as_str())];
            self.registry
                .gauge("projector_checkpoint_position", &labels)
                .set(lag.position as f64);
            self.registry
                .gauge("projector_lag_events", &labels)
                .set(lag.events as f64);
            self.registry
                .gauge("projector_parked_events", &labels)
                .set(lag.parked as f64);
        }
        self.registry.render()
    }
}
