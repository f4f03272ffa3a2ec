//! Per-projection counters, exported at `GET /metrics` (Prometheus text),
//! with the lag measured at scrape time (see [`crate::lag`]).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::Utc;
use paystream_store::RecordedEvent;

use crate::apply::Outcome;
use crate::projection::Projection;
use paystream_store::postgres::lag::Lag;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct ProjectionMetrics {
    pub batches: Counter,
    pub applied: Counter,
    /// Redelivered events at or below the checkpoint.
    pub skipped: Counter,
    pub parked: Counter,
    pub position: AtomicI64,
    /// Milliseconds from the last applied event's commit to its application.
    pub last_delay_ms: AtomicI64,
}

impl ProjectionMetrics {
    pub fn record(&self, outcome: &Outcome, last: Option<&RecordedEvent>) {
        self.batches.inc();
        self.applied.add(outcome.applied as u64);
        self.skipped.add(outcome.skipped as u64);
        self.parked.add(outcome.parked as u64);
        self.position.store(outcome.position, Ordering::Relaxed);
        if let Some(event) = last {
            let delay = (Utc::now() - event.recorded_at).num_milliseconds();
            self.last_delay_ms.store(delay, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    projections: [ProjectionMetrics; Projection::ALL.len()],
    /// Messages that held no readable event.
    pub unreadable: Counter,
    /// Consumer sessions restarted after an error (one consumer serves
    /// every projection).
    pub restarts: Counter,
}

impl Metrics {
    pub fn of(&self, projection: Projection) -> &ProjectionMetrics {
        let index = Projection::ALL
            .iter()
            .position(|p| *p == projection)
            .unwrap_or(0);
        &self.projections[index]
    }

    /// The Prometheus exposition; `lags` from [`lags`](crate::lag::lags).
    pub fn render(&self, lags: &[Lag]) -> String {
        let mut out = String::with_capacity(4096);
        let mut family =
            |name: &str, kind: &str, help: &str, value: &dyn Fn(Projection) -> Option<String>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for projection in Projection::ALL {
                    if let Some(value) = value(projection) {
                        let _ = writeln!(out, "{name}{{projection=\"{projection}\"}} {value}");
                    }
                }
            };
        let counter = |get: fn(&ProjectionMetrics) -> &Counter| {
            move |p: Projection| Some(get(self.of(p)).get().to_string())
        };
        family(
            "projector_batches_total",
            "counter",
            "Transactions committed.",
            &counter(|m| &m.batches),
        );
        family(
            "projector_events_applied_total",
            "counter",
            "Events applied.",
            &counter(|m| &m.applied),
        );
        family(
            "projector_events_skipped_total",
            "counter",
            "Redelivered events skipped (already applied).",
            &counter(|m| &m.skipped),
        );
        family(
            "projector_events_parked_total",
            "counter",
            "Poison events parked in projection_parked.",
            &counter(|m| &m.parked),
        );
        family(
            "projector_apply_delay_milliseconds",
            "gauge",
            "Commit-to-applied delay of the last applied event.",
            &|p| Some(self.of(p).last_delay_ms.load(Ordering::Relaxed).to_string()),
        );
        let lag_of = |p: Projection| lags.iter().find(|lag| lag.projection == p.name());
        family(
            "projector_checkpoint_position",
            "gauge",
            "Global position of the last applied event.",
            &|p| lag_of(p).map(|lag| lag.position.to_string()),
        );
        family(
            "projector_lag_events",
            "gauge",
            "Events published by the relay and not yet applied (counted up to 10001).",
            &|p| lag_of(p).map(|lag| lag.events.to_string()),
        );
        family(
            "projector_parked_events",
            "gauge",
            "Events parked now.",
            &|p| lag_of(p).map(|lag| lag.parked.to_string()),
        );
        for (name, help, value) in [
            (
                "projector_unreadable_messages_total",
                "JetStream messages that held no readable event.",
                &self.unreadable,
            ),
            (
                "projector_consumer_restarts_total",
                "Consumer sessions restarted after an error.",
                &self.restarts,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.get()
            );
        }
        out
    }
}
