//! The query side's own JSON shapes. Orders, payments and refunds use the
//! command API's views (`paystream_domain::api`), so a read
//! answers exactly like the write that preceded it.

use chrono::{DateTime, SecondsFormat, Utc};
use paystream_domain::api::{OrderView, PaymentView};
use paystream_kit::health::{Connection, Report, Status};
use paystream_store::{IdempotencyRecord, RecordedEvent};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// What the checkout shows of an order (no merchant data, no notes).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicOrderView {
    #[schema(example = "order_NXhj67fGH2jk9mPq")]
    pub id: String,
    /// Minor units.
    #[schema(example = 50000)]
    pub amount: i64,
    #[schema(example = "INR")]
    pub currency: String,
    /// `created`, `attempted` or `paid`.
    pub status: String,
}

impl From<OrderView> for PublicOrderView {
    fn from(order: OrderView) -> Self {
        Self {
            id: order.id,
            amount: order.amount,
            currency: order.currency,
            status: order.status,
        }
    }
}

/// What the checkout polls of a payment (no VPA, no card data, no merchant).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicPaymentView {
    #[schema(example = "pay_H8sK3jD9s2L1pQr5")]
    pub id: String,
    pub order_id: String,
    pub amount: i64,
    pub currency: String,
    /// `upi` or `card`.
    pub method: String,
    /// `pending` → `success` | `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl From<PaymentView> for PublicPaymentView {
    fn from(payment: PaymentView) -> Self {
        Self {
            id: payment.id,
            order_id: payment.order_id,
            amount: payment.amount,
            currency: payment.currency,
            method: payment.method,
            status: payment.status,
            error_code: payment.error_code,
            error_description: payment.error_description,
        }
    }
}

/// One stored event, with everything needed to check its hash:
/// `hash = SHA-256(previous_hash ‖ canonical bytes)`, where the canonical
/// bytes are built from `id`, `stream`, `version`, `type`, `schema_version`,
/// `recorded_at` (microseconds), `merchant_id`, `causation_id`,
/// `correlation_id`, `actor`, `idempotency` (when present) and `data` (see
/// docs/architecture.md).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEvent {
    /// The event's id (UUID v7); also its `Nats-Msg-Id`.
    pub id: Uuid,
    /// `order-order_…`, `payment-pay_…`.
    #[schema(example = "payment-pay_H8sK3jD9s2L1pQr5")]
    pub stream: String,
    /// Place in the global log (grows, not dense).
    pub position: i64,
    /// Place in its stream, from 1, gapless.
    pub version: u64,
    /// `OrderCreated`, `PaymentSucceeded`, `RefundCreated`, …
    #[serde(rename = "type")]
    #[schema(example = "PaymentCreated")]
    pub event_type: String,
    pub schema_version: u16,
    /// RFC 3339 with microseconds, as stored and hashed.
    #[schema(example = "2025-01-31T10:15:30.123456Z")]
    pub recorded_at: String,
    pub merchant_id: Option<Uuid>,
    /// `merchant:<id>`, `checkout`, `system:acquirer`, `staff:<email>`, …
    pub actor: String,
    pub causation_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    /// The `Idempotency-Key` request that caused the event (hashes only);
    /// `null` when it was sent without one.
    pub idempotency: Option<IdempotencyView>,
    /// Lowercase hex SHA-256 chaining this event to the previous one.
    pub hash: String,
    /// The previous event's hash in the same stream (64 zeros for version 1).
    pub previous_hash: String,
    /// The stored payload.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// What an event records of the `Idempotency-Key` request that caused it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdempotencyView {
    /// Lowercase hex SHA-256 of the key (as sent, trimmed): a client can
    /// find the events of its request by hashing its key.
    pub key_hash: String,
    /// Lowercase hex SHA-256 of the request (method, path and body; card
    /// number and CVV left out). Equal hashes: the same request.
    pub request_hash: String,
}

impl From<&IdempotencyRecord> for IdempotencyView {
    fn from(record: &IdempotencyRecord) -> Self {
        Self {
            key_hash: hex::encode(record.key_hash),
            request_hash: hex::encode(record.request_hash),
        }
    }
}

/// An object's history, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct History {
    /// The object's id.
    pub id: String,
    /// `order`, `payment` or `refund`.
    pub object: &'static str,
    pub data: Vec<HistoryEvent>,
}

pub fn recorded_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl History {
    /// The history of object `id` from its stream's events (all of them, in
    /// version order), keeping those `keep` selects.
    pub fn new(
        id: impl Into<String>,
        object: &'static str,
        events: &[RecordedEvent],
        keep: impl Fn(&RecordedEvent) -> bool,
    ) -> Self {
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
                    idempotency: event
                        .metadata
                        .idempotency
                        .as_ref()
                        .map(IdempotencyView::from),
                    hash: hex::encode(event.hash),
                    previous_hash: hex::encode(previous),
                    data: event.payload.clone(),
                });
            }
            previous = event.hash;
        }
        Self {
            id: id.into(),
            object,
            data,
        }
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
