use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::currency::Currency;
use crate::event::domain_events;
use crate::id::{MerchantId, OrderId, PaymentId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub receipt: Option<String>,
    pub notes: Option<Map<String, Value>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAttempted {
    pub payment_id: PaymentId,
    pub attempted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub payment_id: PaymentId,
    pub paid_at: DateTime<Utc>,
}

domain_events! {
    /// Everything that can happen to an order.
    pub enum OrderEvent {
        OrderCreated => [],
        OrderAttempted => [],
        OrderPaid => [],
    }
}
