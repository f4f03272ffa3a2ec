use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::{MerchantId, OrderId, PaymentId};
use crate::money::Money;

/// `None` until the order is created.
pub type OrderState = Option<Order>;

/// `created` → `attempted` → `paid` (`created` → `paid` is allowed too: see
/// [`Order::payment_attempted`]).
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

    /// Whether a payment has been attempted for the order: it is `attempted`
    /// or `paid`. Paid implies attempted even when the history holds no
    /// `OrderAttempted`, as it may not: the acquirer can claim the order
    /// (`MarkOrderPaid`) before the request that created the payment marks
    /// it attempted, which is then a no-op; and a mark that failed is only
    /// logged (the payment stands).
    pub fn payment_attempted(&self) -> bool {
        self.status != OrderStatus::Created || self.paid_by.is_some()
    }
}
