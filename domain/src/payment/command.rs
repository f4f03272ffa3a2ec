use chrono::{DateTime, Utc};

use crate::id::{MerchantId, OrderId, PaymentId, RefundId};
use crate::money::Money;
use crate::validation::CardInput;

/// How the shopper pays. The card variant holds the full card details; they
/// are validated and reduced to network + last 4 by `decide`, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentMethodInput {
    Upi { vpa: String },
    Card(CardInput),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePayment {
    pub payment_id: PaymentId,
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    /// Copied from the order.
    pub amount: Money,
    /// Whether the order is already paid (read from the order's stream).
    pub order_paid: bool,
    pub method: PaymentMethodInput,
    /// "Today", for the card expiry check.
    pub current_year: i32,
    /// 1–12.
    pub current_month: u32,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPaymentSuccess {
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPaymentFailure {
    pub error_code: String,
    pub error_description: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePayment {
    /// Minor units, 1 up to the payment amount (and never above the
    /// currency's maximum).
    pub amount: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRefund {
    pub refund_id: RefundId,
    /// Minor units, at least 1 and at most what is not yet refunded or
    /// pending (and never above the currency's maximum).
    pub amount: i64,
    /// At most 255 characters.
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRefund {
    pub refund_id: RefundId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    CreatePayment(CreatePayment),
    RecordPaymentSuccess(RecordPaymentSuccess),
    RecordPaymentFailure(RecordPaymentFailure),
    CapturePayment(CapturePayment),
    RequestRefund(RequestRefund),
    ProcessRefund(ProcessRefund),
}

macro_rules! into_command {
    ($($variant:ident),+) => {
        $(impl From<$variant> for PaymentCommand {
            fn from(command: $variant) -> Self {
                Self::$variant(command)
            }
        })+
    };
}
into_command!(
    CreatePayment,
    RecordPaymentSuccess,
    RecordPaymentFailure,
    CapturePayment,
    RequestRefund,
    ProcessRefund
);
