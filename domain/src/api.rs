//! The JSON shapes of the API (orders, payments, refunds, errors), as
//! clients of the original gateway know them. One place, so every endpoint
//! answers alike, the OpenAPI document describes exactly what is sent, and
//! the browser (`web/`) reads the very types the services write. Serde only;
//! the OpenAPI schemas come with the `openapi` feature.

use crate::order::Order;
use crate::payment::{Payment, Refund};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
