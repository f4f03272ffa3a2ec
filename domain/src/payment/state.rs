use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::PaymentMethod;
use crate::id::{MerchantId, OrderId, PaymentId, RefundId};
use crate::money::Money;
use crate::validation::CardNetwork;

/// `None` until the payment is created.
pub type PaymentState = Option<Payment>;

/// `pending` → `success` | `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Success,
    Failed,
}

/// `pending` → `processed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    Pending,
    Processed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: RefundId,
    /// Minor units, in the payment's currency.
    pub amount: i64,
    pub reason: Option<String>,
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    pub amount: Money,
    pub method: PaymentMethod,
    pub vpa: Option<String>,
    pub card_network: Option<CardNetwork>,
    pub card_last4: Option<String>,
    pub status: PaymentStatus,
    pub captured: bool,
    /// Minor units captured (0 until captured).
    pub captured_amount: i64,
    pub captured_at: Option<DateTime<Utc>>,
    pub error_code: Option<String>,
    pub error_description: Option<String>,
    pub refunds: BTreeMap<RefundId, Refund>,
    /// Sum of processed refunds, minor units.
    pub amount_refunded: i64,
    /// Sum of refunds requested but not yet processed, minor units.
    pub amount_refund_pending: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// What can still be refunded: amount − (pending + processed refunds).
    pub fn refundable_amount(&self) -> i64 {
        self.amount
            .amount_minor
            .saturating_sub(self.amount_refunded)
            .saturating_sub(self.amount_refund_pending)
    }

    /// True once the payment succeeded or failed.
    pub fn is_final(&self) -> bool {
        self.status != PaymentStatus::Pending
    }
}
