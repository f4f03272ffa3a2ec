//! Payments and their refunds.
//!
//! Refunds live inside the payment aggregate so that "pending + processed
//! refunds never exceed the amount" is checked inside one consistency boundary
//! (contract invariant 2), under any concurrency: two refund requests race on
//! the same stream version, and the loser is re-decided against the winner.
//!
//! Lifecycle: `pending` → `success` | `failed`; capture once, only after
//! `success`; refunds only after `success`.

mod command;
mod decide;
mod event;
mod evolve;
mod state;
#[cfg(test)]
mod tests;

pub use command::{
    CapturePayment, CreatePayment, PaymentCommand, PaymentMethodInput, ProcessRefund,
    RecordPaymentFailure, RecordPaymentSuccess, RequestRefund,
};
pub use event::{
    PaymentCaptured, PaymentCreated, PaymentEvent, PaymentFailed, PaymentMethod, PaymentSucceeded,
    RefundCreated, RefundProcessed,
};
pub use state::{Payment, PaymentState, PaymentStatus, Refund, RefundStatus};

use crate::aggregate::Aggregate;
use crate::error::DomainError;

/// Longest refund reason, in characters.
pub const REFUND_REASON_MAX_CHARS: usize = 255;
/// Longest failure code, in characters.
pub const ERROR_CODE_MAX_CHARS: usize = 64;
/// Longest failure description, in characters.
pub const ERROR_DESCRIPTION_MAX_CHARS: usize = 255;

/// The payment aggregate (stream `payment-pay_…`), refunds included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentAggregate;

impl Aggregate for PaymentAggregate {
    const CATEGORY: &'static str = "payment";
    type State = PaymentState;
    type Command = PaymentCommand;
    type Event = PaymentEvent;

    fn decide(
        state: &PaymentState,
        command: PaymentCommand,
    ) -> Result<Vec<PaymentEvent>, DomainError> {
        decide::decide(state, command)
    }

    fn evolve(state: PaymentState, event: &PaymentEvent) -> PaymentState {
        evolve::evolve(state, event)
    }
}
