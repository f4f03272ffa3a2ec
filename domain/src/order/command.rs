use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::id::{MerchantId, OrderId, PaymentId};
use crate::money::Money;

#[derive(Debug, Clone, PartialEq)]
pub struct CreateOrder {
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    /// At least 100 minor units, at most the currency's maximum.
    pub amount: Money,
    /// At most 40 characters.
    pub receipt: Option<String>,
    /// At most 15 keys; values are strings, `i64` integers or booleans of at
    /// most 256 characters.
    pub notes: Option<Map<String, Value>>,
    pub at: DateTime<Utc>,
}

/// A payment was created for the order (no-op once attempted or paid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkOrderAttempted {
    pub payment_id: PaymentId,
    pub at: DateTime<Utc>,
}

/// A payment for the order succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkOrderPaid {
    pub payment_id: PaymentId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    CreateOrder(CreateOrder),
    MarkOrderAttempted(MarkOrderAttempted),
    MarkOrderPaid(MarkOrderPaid),
}

impl From<CreateOrder> for OrderCommand {
    fn from(command: CreateOrder) -> Self {
        Self::CreateOrder(command)
    }
}

impl From<MarkOrderAttempted> for OrderCommand {
    fn from(command: MarkOrderAttempted) -> Self {
        Self::MarkOrderAttempted(command)
    }
}

impl From<MarkOrderPaid> for OrderCommand {
    fn from(command: MarkOrderPaid) -> Self {
        Self::MarkOrderPaid(command)
    }
}
