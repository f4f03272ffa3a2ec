//! The query side's own JSON shapes. Orders, payments and refunds use the
//! command API's views (`paystream_domain::api`), so a read
//! answers exactly like the write that preceded it.

use chrono::{DateTime, SecondsFormat, Utc};
pub use paystream_domain::api::{
    History, HistoryEvent, IdempotencyView, PublicOrderView, PublicPaymentView,
};
use paystream_kit::health::{Connection, Report, Status};
use paystream_store::{IdempotencyRecord, RecordedEvent};
use serde::Serialize;
use utoipa::ToSchema;

/// What an event records of the request that caused it.
pub fn idempotency_view(record: &IdempotencyRecord) -> IdempotencyView {
    IdempotencyView {
        key_hash: hex::encode(record.key_hash),
        request_hash: hex::encode(record.request_hash),
    }
}

pub fn recorded_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The history of object `id` from its stream's events (all of them, in
/// version order), keeping those `keep` selects.
pub fn history(
    id: impl Into<String>,
    object: &'static str,
    events: &[RecordedEvent],
    keep: impl Fn(&RecordedEvent) -> bool,
) -> History {
    let mut previous = [0u8; 32];
    let mut data = Vec::new();
    for event in events {
        if keep(event) {
            data.push(HistoryEvent {
                id: event.event_id,
                stream: event.stream_id.to_string(),
                position: event.position.0,
                version: event.version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: recorded_at(event.recorded_at),
                merchant_id: event.metadata.merchant_id,
                actor: event.metadata.actor.clone(),
                causation_id: event.metadata.causation_id,
                correlation_id: event.metadata.correlation_id,
                idempotency: event.metadata.idempotency.as_ref().map(idempotency_view),
                hash: hex::encode(event.hash),
                previous_hash: hex::encode(previous),
                data: event.payload.clone(),
            });
        }
        previous = event.hash;
    }
    History {
        id: id.into(),
        object: object.to_owned(),
        data,
    }
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`; `degraded` (NATS down, a projection parked events or is
    /// more than 10 000 events behind); `unhealthy` (the database is down).
    pub status: Status,
    pub database: Connection,
    pub nats: Connection,
    pub timestamp: String,
    /// `query-api`.
    pub service: &'static str,
    /// Every projection's checkpoint, lag behind the relay and parked events.
    pub projections: Vec<crate::routes::health::ProjectionHealth>,
}

/// `GET /api/v1/test/jobs/status`: the simulated acquirer's work, from its
/// JetStream consumer and from the outcomes stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobsStatus {
    /// Payment/refund events not yet delivered to the acquirer.
    pub pending: u64,
    /// Delivered and not yet acknowledged: waiting out their delay or
    /// recording their outcome.
    pub processing: u64,
    /// Outcomes stored: payments succeeded or failed, refunds processed.
    pub completed: i64,
    /// Payments that failed.
    pub failed: i64,
    /// `running` when the acquirer's consumer exists and is pulling or
    /// working; else `stopped`.
    #[schema(example = "running")]
    pub worker_status: &'static str,
}

impl Health {
    /// The report every service gives (`paystream_kit::health`), with the
    /// projections' progress.
    pub fn new(report: Report, projections: Vec<crate::routes::health::ProjectionHealth>) -> Self {
        Self {
            status: report.status,
            database: report.database,
            nats: report.nats,
            timestamp: report.timestamp,
            service: report.service,
            projections,
        }
    }
}
