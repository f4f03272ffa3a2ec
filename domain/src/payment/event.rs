use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::event::domain_events;
use crate::id::{MerchantId, OrderId, PaymentId, RefundId};
use crate::validation::CardNetwork;

/// Serialized `"upi"` / `"card"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Upi,
    Card,
}

impl PaymentMethod {
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Upi => "upi",
            Self::Card => "card",
        }
    }
}

/// A payment was created, `pending`. Holds the card's network and last four
/// digits only: never the number, the CVV or the expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCreated {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub method: PaymentMethod,
    pub vpa: Option<String>,
    pub card_network: Option<CardNetwork>,
    pub card_last4: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    pub succeeded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub error_code: String,
    pub error_description: String,
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    /// Minor units captured.
    pub amount: i64,
    pub captured_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundCreated {
    pub refund_id: RefundId,
    pub payment_id: PaymentId,
    /// Minor units, in the payment's currency.
    pub amount: i64,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundProcessed {
    pub refund_id: RefundId,
    pub processed_at: DateTime<Utc>,
}

domain_events! {
    /// Everything that can happen to a payment and its refunds.
    pub enum PaymentEvent {
        PaymentCreated => [],
        PaymentSucceeded => [],
        PaymentFailed => [],
        PaymentCaptured => [],
        RefundCreated => [],
        RefundProcessed => [],
    }
}
