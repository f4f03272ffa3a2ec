//! The JSON shapes of the API (orders, payments, refunds, errors), as
//! clients of the original gateway know them. One place, so every endpoint
//! answers alike, the OpenAPI document describes exactly what is sent, and
//! the browser (`web/`) reads the very types the services write. Serde only;
//! the OpenAPI schemas come with the `openapi` feature.

use crate::order::Order;
use crate::payment::{Payment, Refund};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The serde name of a unit enum value (`"pending"`), or its JSON text.
pub fn text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// One value of an order's `notes` (documentation of what is accepted): a
/// string, an integer from -9223372036854775808 to 9223372036854775807, or a
/// boolean, at most 256 characters as JSON text. Decimals (`1.5`, `1e2`) and
/// larger integers are refused with a 400: the event store keeps only
/// numbers that survive PostgreSQL `jsonb` and the hash chain unchanged, so
/// send them as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum NoteValue {
    Text(String),
    Integer(i64),
    Flag(bool),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    /// `order_` + 16 alphanumerics.
    #[cfg_attr(feature = "openapi", schema(example = "order_NXhj67fGH2jk9mPq"))]
    pub id: String,
    pub merchant_id: uuid::Uuid,
    /// Minor units (paise for INR).
    #[cfg_attr(feature = "openapi", schema(example = 50000))]
    pub amount: i64,
    #[cfg_attr(feature = "openapi", schema(example = "INR"))]
    pub currency: String,
    pub receipt: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = HashMap<String, NoteValue>))]
    pub notes: Map<String, Value>,
    /// `created` → `attempted` → `paid`.
    #[cfg_attr(feature = "openapi", schema(example = "created"))]
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        Self {
            id: order.order_id.to_string(),
            merchant_id: order.merchant_id.into(),
            amount: order.amount.amount_minor,
            currency: text(&order.amount.currency),
            receipt: order.receipt.clone(),
            notes: order.notes.clone().unwrap_or_default(),
            status: text(&order.status),
            created_at: timestamp(order.created_at),
            updated_at: timestamp(order.updated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentView {
    /// `pay_` + 16 alphanumerics.
    #[cfg_attr(feature = "openapi", schema(example = "pay_H8sK3jD9s2L1pQr5"))]
    pub id: String,
    pub order_id: String,
    pub merchant_id: uuid::Uuid,
    pub amount: i64,
    pub currency: String,
    /// `upi` or `card`.
    pub method: String,
    /// `pending` → `success` | `failed`.
    pub status: String,
    pub captured: bool,
    /// Minor units refunded so far (processed refunds).
    pub amount_refunded: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpa: Option<String>,
    /// `visa`, `mastercard`, `amex`, `rupay` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Payment> for PaymentView {
    fn from(payment: &Payment) -> Self {
        Self {
            id: payment.payment_id.to_string(),
            order_id: payment.order_id.to_string(),
            merchant_id: payment.merchant_id.into(),
            amount: payment.amount.amount_minor,
            currency: text(&payment.amount.currency),
            method: text(&payment.method),
            status: text(&payment.status),
            captured: payment.captured,
            amount_refunded: payment.amount_refunded,
            vpa: payment.vpa.clone(),
            card_network: payment.card_network.as_ref().map(text),
            card_last4: payment.card_last4.clone(),
            error_code: payment.error_code.clone(),
            error_description: payment
                .error_code
                .as_ref()
                .and(payment.error_description.clone()),
            created_at: timestamp(payment.created_at),
            updated_at: timestamp(payment.updated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundView {
    /// `rfnd_` + 16 alphanumerics.
    #[cfg_attr(feature = "openapi", schema(example = "rfnd_K9sL2mN8pQ4rT6vX"))]
    pub id: String,
    pub payment_id: String,
    pub merchant_id: uuid::Uuid,
    pub amount: i64,
    pub currency: String,
    pub reason: Option<String>,
    /// `pending` → `processed`.
    pub status: String,
    pub created_at: String,
    pub processed_at: Option<String>,
}

impl RefundView {
    pub fn new(payment: &Payment, refund: &Refund) -> Self {
        Self::of(
            payment.payment_id.as_str(),
            payment.merchant_id.into(),
            &text(&payment.amount.currency),
            refund,
        )
    }

    /// From what a refund's read-model row holds: the refund and its
    /// payment's id, merchant and currency.
    pub fn of(payment_id: &str, merchant_id: uuid::Uuid, currency: &str, refund: &Refund) -> Self {
        Self {
            id: refund.refund_id.to_string(),
            payment_id: payment_id.to_owned(),
            merchant_id,
            amount: refund.amount,
            currency: currency.to_owned(),
            reason: refund.reason.clone(),
            status: text(&refund.status),
            created_at: timestamp(refund.created_at),
            processed_at: refund.processed_at.map(timestamp),
        }
    }
}

/// The contract's error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// `BAD_REQUEST_ERROR`, `AUTHENTICATION_ERROR`, `NOT_FOUND_ERROR`,
    /// `INVALID_VPA`, `INVALID_CARD`, `EXPIRED_CARD`, `IDEMPOTENCY_ERROR`,
    /// `CONFLICT_ERROR`, …
    pub code: String,
    pub description: String,
    /// The offending input, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Serialises a view for a response body.
pub fn body<T: Serialize>(view: T) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// What the checkout shows of an order (no merchant data, no notes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicOrderView {
    #[cfg_attr(feature = "openapi", schema(example = "order_NXhj67fGH2jk9mPq"))]
    pub id: String,
    /// Minor units.
    #[cfg_attr(feature = "openapi", schema(example = 50000))]
    pub amount: i64,
    #[cfg_attr(feature = "openapi", schema(example = "INR"))]
    pub currency: String,
    /// `created`, `attempted` or `paid`.
    pub status: String,
    /// The origins whose pages may embed the checkout for this order (its
    /// merchant's): the embedded checkout posts its result only to one of
    /// them.
    #[serde(default)]
    pub checkout_origins: Vec<String>,
}

/// What the checkout polls of a payment (no VPA, no card data, no merchant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicPaymentView {
    #[cfg_attr(feature = "openapi", schema(example = "pay_H8sK3jD9s2L1pQr5"))]
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

/// One stored event, with everything needed to check its hash:
/// `hash = SHA-256(previous_hash ‖ canonical bytes)`, where the canonical
/// bytes are built from `id`, `stream`, `version`, `type`, `schema_version`,
/// `recorded_at` (microseconds), `merchant_id`, `causation_id`,
/// `correlation_id`, `actor`, `idempotency` (when present) and `data` (see
/// docs/architecture.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEvent {
    /// The event's id (UUID v7); also its `Nats-Msg-Id`.
    pub id: Uuid,
    /// `order-order_…`, `payment-pay_…`.
    #[cfg_attr(feature = "openapi", schema(example = "payment-pay_H8sK3jD9s2L1pQr5"))]
    pub stream: String,
    /// Place in the global log (grows, not dense).
    pub position: i64,
    /// Place in its stream, from 1, gapless.
    pub version: u64,
    /// `OrderCreated`, `PaymentSucceeded`, `RefundCreated`, …
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "PaymentCreated"))]
    pub event_type: String,
    pub schema_version: u16,
    /// RFC 3339 with microseconds, as stored and hashed.
    #[cfg_attr(feature = "openapi", schema(example = "2025-01-31T10:15:30.123456Z"))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
}

/// What an event records of the `Idempotency-Key` request that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdempotencyView {
    /// Lowercase hex SHA-256 of the key (as sent, trimmed): a client can
    /// find the events of its request by hashing its key.
    pub key_hash: String,
    /// Lowercase hex SHA-256 of the request (method, path and body; card
    /// number and CVV left out). Equal hashes: the same request.
    pub request_hash: String,
}

/// An object's history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    /// The object's id.
    pub id: String,
    /// `order`, `payment` or `refund`.
    pub object: String,
    pub data: Vec<HistoryEvent>,
}

/// One delivery in the log (the original gateway's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookLogItem {
    #[cfg_attr(feature = "openapi", schema(example = "whd_Q2w3E4r5T6y7U8i9"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(example = "payment.success"))]
    pub event: String,
    /// `pending`, `success` or `failed`.
    pub status: String,
    /// Attempts so far (since the last manual retry).
    pub attempts: i32,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    /// HTTP status of the last attempt; `null` before the first one, or when
    /// it got no answer (timeout, connection refused).
    pub response_code: Option<i32>,
}

/// The delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookLog {
    pub data: Vec<WebhookLogItem>,
    /// Deliveries of the merchant in all.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// One attempt to send a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAttemptView {
    /// 1, 2, … within its round.
    pub attempt: u32,
    /// 1 for the scheduled round; each manual retry (or recover) starts the
    /// next round, whose attempts count from 1 again.
    pub round: u32,
    /// The delivery stream's version of the attempt's event: orders attempts
    /// across rounds.
    pub version: u64,
    pub attempted_at: String,
    /// HTTP status; `null` when no answer came (timeout, refused, DNS).
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    /// Why no answer came, when none did.
    pub error: Option<String>,
    /// The first 1 KiB of the endpoint's answer.
    pub response_body_excerpt: String,
    /// `Retry-After` the endpoint sent, in seconds (capped at 1 h).
    pub retry_after_seconds: Option<u32>,
}

/// One delivery and every attempt, oldest attempt first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDeliveryView {
    #[cfg_attr(feature = "openapi", schema(example = "whd_Q2w3E4r5T6y7U8i9"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(example = "payment.success"))]
    pub event: String,
    /// The URL this delivery goes to (the endpoint when it was scheduled).
    pub url: String,
    /// `pending`, `success` or `failed`.
    pub status: String,
    /// Attempts in the current round.
    pub attempts: u32,
    /// Attempts a round allows.
    pub max_attempts: u32,
    /// When the next attempt is due; `null` once final, or while an
    /// attempt's outcome is being recorded.
    pub next_retry_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// HTTP status of the last attempt.
    pub response_code: Option<u16>,
    pub delivered_at: Option<String>,
    /// `gone` (the endpoint answered 410) or `exhausted`, when failed.
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The exact body every attempt sent, and signed (`X-Webhook-Signature`
    /// is the hex HMAC-SHA256 of these bytes with the webhook secret).
    pub body: String,
    /// Every attempt, in the order they were made.
    pub attempt_log: Vec<WebhookAttemptView>,
}

/// The merchant's webhook endpoint and signing secret (the dashboard shows it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookSettingsView {
    /// `null`: no endpoint, no deliveries.
    pub url: Option<String>,
    /// Subscribed events; empty means all.
    pub events: Vec<String>,
    /// False when no URL is set, or after the endpoint answered `410 Gone`
    /// (saving the configuration again re-enables it).
    pub enabled: bool,
    /// Why the endpoint was disabled (`gone`), while it is.
    pub disabled_reason: Option<String>,
    /// The current signing secret. `X-Webhook-Signature` is the hex
    /// HMAC-SHA256 of the body keyed with this whole string (`whsec_`
    /// included).
    #[cfg_attr(feature = "openapi", schema(example = "whsec_test_abc123"))]
    pub secret: String,
    /// The string to give the official Standard Webhooks libraries to verify
    /// `webhook-signature`: the secret itself when it is `whsec_` + base64
    /// (every generated secret), else `whsec_` + base64 of the secret's UTF-8
    /// bytes (the seeded dev secret).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "whsec_d2hzZWNfdGVzdF9hYmMxMjM=")
    )]
    pub standard_webhooks_secret: String,
    /// Until then the previous secret still signs too (a second
    /// `webhook-signature` entry); `null` when there is no previous secret.
    pub previous_secret_valid_until: Option<String>,
}

/// One page of a cursor list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// Newest first.
    pub data: Vec<T>,
    /// True when another page follows.
    pub has_more: bool,
    /// Send as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One page of the order, payment or refund list: a cursor page, plus the
/// original gateway's `total`, `limit` and `offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListPage<T> {
    /// Newest first.
    pub data: Vec<T>,
    /// True when another page follows.
    pub has_more: bool,
    /// Send as `cursor` for the next page (the fast way to page); `null` on
    /// the last page.
    pub next_cursor: Option<String>,
    /// Objects matching the filters in all. Left out of pages asked for with
    /// a `cursor` (counting is what cursors save).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// The page size used.
    pub limit: i64,
    /// Objects skipped before this page (0 with a `cursor`).
    pub offset: i64,
}

impl From<OrderView> for PublicOrderView {
    fn from(order: OrderView) -> Self {
        Self {
            id: order.id,
            amount: order.amount,
            currency: order.currency,
            status: order.status,
            checkout_origins: Vec::new(),
        }
    }
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

/// One currency's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrencyStats {
    #[cfg_attr(feature = "openapi", schema(example = "INR"))]
    pub currency: String,
    pub total_transactions: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
    /// Succeeded volume, minor units.
    pub total_amount: i64,
    /// Percent, two decimals.
    #[cfg_attr(feature = "openapi", schema(example = 95.24))]
    pub success_rate: f64,
}

/// One UTC day and currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayStats {
    /// `YYYY-MM-DD` (UTC), the payments' creation day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2025-01-31"))]
    pub date: NaiveDate,
    pub currency: String,
    pub total_transactions: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Succeeded volume, minor units.
    pub total_amount: i64,
}

/// The merchant's payment statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    /// First day included (`from`), if bounded.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub from: Option<NaiveDate>,
    /// Last day included (`to`), if bounded.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub to: Option<NaiveDate>,
    /// Payments created, every currency.
    pub total_transactions: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
    /// Succeeded volume in `currency`, minor units.
    pub total_amount: i64,
    /// The currency of `total_amount`.
    #[cfg_attr(feature = "openapi", schema(example = "INR"))]
    pub currency: String,
    /// Percent of payments created that succeeded, two decimals.
    #[cfg_attr(feature = "openapi", schema(example = 95.24))]
    pub success_rate: f64,
    /// Each currency, most used first.
    pub by_currency: Vec<CurrencyStats>,
    /// Each day (oldest first) and currency with payments.
    pub per_day: Vec<DayStats>,
}

/// One step of the conversion funnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunnelStage {
    /// One of [`FUNNEL_STAGES`].
    #[cfg_attr(feature = "openapi", schema(example = "paid"))]
    pub stage: String,
    /// Orders of the period that reached this step.
    pub count: i64,
    /// The step this one is measured against (`null` for the first).
    #[cfg_attr(feature = "openapi", schema(example = "payment_attempted"))]
    pub of: Option<String>,
    /// `count` as a percent of `of`'s count, two decimals (100 for the
    /// first step; 0 when `of` counts none).
    #[cfg_attr(feature = "openapi", schema(example = 95.24))]
    pub rate: f64,
    /// `count` as a percent of the orders created, two decimals.
    pub of_created: f64,
}

/// `GET /api/v1/stats/funnel`: what became of the orders created in a
/// period (a cohort: every step counts those orders only, whenever the step
/// happened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Funnel {
    /// First UTC day of the orders' creation (`from`), if bounded.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub from: Option<NaiveDate>,
    /// Last UTC day of the orders' creation (`to`), if bounded.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub to: Option<NaiveDate>,
    /// The steps, in [`FUNNEL_STAGES`] order.
    pub stages: Vec<FunnelStage>,
    /// Paid orders as a percent of the orders created, two decimals.
    #[cfg_attr(feature = "openapi", schema(example = 60.0))]
    pub conversion_rate: f64,
}

/// The funnel's steps, in order, each with the step its rate is measured
/// against: an order is created, a payment is attempted for it, it is paid
/// (its payment succeeded), that payment is captured, and refunded (at
/// least one refund processed). Refunds need no capture, so `refunded` is
/// measured against `paid`, like `captured`.
pub const FUNNEL_STAGES: [(&str, Option<&str>); 5] = [
    ("orders_created", None),
    ("payment_attempted", Some("orders_created")),
    ("paid", Some("payment_attempted")),
    ("captured", Some("paid")),
    ("refunded", Some("paid")),
];

/// `GET /api/v1/auth/session`: who the session is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub email: String,
    /// `merchant`, `staff` or `auditor`.
    #[cfg_attr(feature = "openapi", schema(example = "merchant"))]
    pub role: String,
    /// Set for (and only for) merchant users.
    pub merchant_id: Option<Uuid>,
}

/// A merchant account as staff see it: never a secret or a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffMerchantView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    /// `active` or `suspended`.
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub status: String,
    /// The (publishable) API key.
    pub api_key: String,
    /// Fee per capture, basis points.
    pub fee_bps: i64,
    /// The configured webhook endpoint, if any.
    pub webhook_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Set while suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
    /// Origins whose pages may embed the checkout.
    #[serde(default)]
    pub checkout_origins: Vec<String>,
}

/// A broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakView {
    pub stream_id: String,
    /// The first version that does not verify.
    pub version: u64,
    /// `altered` (content or order changed), `missing` (a version removed
    /// from the middle) or `truncated` (the head says more, or another last
    /// hash, than the rows show).
    #[cfg_attr(feature = "openapi", schema(example = "altered"))]
    pub kind: String,
}

/// `GET /api/v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyReport {
    /// Every stream was checked (`complete`) and none is broken.
    pub ok: bool,
    /// False when the time budget or `limit` stopped the walk: continue
    /// with `after = next_after`.
    pub complete: bool,
    pub streams_checked: u64,
    pub events_checked: u64,
    /// The first breaks found (at most 100), in stream order.
    pub breaks: Vec<BreakView>,
    pub breaks_total: u64,
    /// The last stream checked, when the walk stopped early.
    pub next_after: Option<String>,
    /// The `after` this walk started from.
    pub after: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
}

/// One currency of a merchant's balance. Minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrencyBalance {
    #[cfg_attr(feature = "openapi", schema(example = "INR"))]
    pub currency: String,
    /// What Paystream owes the merchant: `captured − refunded − fees`.
    #[cfg_attr(feature = "openapi", schema(example = 48020))]
    pub balance: i64,
    /// Sum of captures.
    #[cfg_attr(feature = "openapi", schema(example = 50000))]
    pub captured: i64,
    /// Sum of processed refunds.
    #[cfg_attr(feature = "openapi", schema(example = 1000))]
    pub refunded: i64,
    /// Fees charged less fees returned on refunds.
    #[cfg_attr(feature = "openapi", schema(example = 980))]
    pub fees: i64,
}

/// `GET /api/v1/balance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BalanceView {
    pub merchant_id: Uuid,
    /// The moment asked for; `null` for now.
    pub as_of: Option<String>,
    /// Position of the last event the ledger has applied.
    pub ledger_position: i64,
    /// One row per currency the merchant has moved money in.
    pub data: Vec<CurrencyBalance>,
}

/// One side of an entry: debit positive, credit negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostingView {
    /// 1 (debit) or 2 (credit).
    pub line: i16,
    /// `acquirer_clearing`, `fee_revenue` or `merchant_payable:<merchant id>`.
    #[cfg_attr(feature = "openapi", schema(example = "acquirer_clearing"))]
    pub account: String,
    pub currency: String,
    /// Signed minor units.
    pub amount: i64,
}

/// One money movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntryView {
    pub id: String,
    /// `capture`, `fee`, `refund` or `fee_reversal`.
    #[cfg_attr(feature = "openapi", schema(example = "capture"))]
    pub kind: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub currency: String,
    /// Positive minor units.
    pub amount: i64,
    pub posted_at: String,
    /// Global position of the event that posted it.
    pub position: i64,
    /// The entry's postings; they sum to zero.
    pub postings: Vec<PostingView>,
}

/// A page of ledger entries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntriesPage {
    pub data: Vec<LedgerEntryView>,
    pub has_more: bool,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}
