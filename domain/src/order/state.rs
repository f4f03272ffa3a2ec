use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::{MerchantId, OrderId, PaymentId};
use crate::money::Money;

/// `None` until the order is created.
pub type OrderState = Option<Order>;

/// `created` → `attempted` → `paid` (`created` → `paid` is allowed too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Created,
    Attempted,
    Paid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    pub amount: Money,
    pub receipt: Option<String>,
    pub notes: Option<Map<String, Value>>,
    pub status: OrderStatus,
    /// The payment that paid the order, once paid.
    pub paid_by: Option<PaymentId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    pub fn is_paid(&self) -> bool {
        self.status == OrderStatus::Paid
    }
}
