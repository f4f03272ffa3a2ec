use std::collections::BTreeMap;

use super::event::PaymentEvent;
use super::state::{Payment, PaymentState, PaymentStatus, Refund, RefundStatus};
use crate::money::Money;

pub(super) fn evolve(state: PaymentState, event: &PaymentEvent) -> PaymentState {
    if let PaymentEvent::PaymentCreated(created) = event {
        return Some(Payment {
            payment_id: created.payment_id.clone(),
            order_id: created.order_id.clone(),
            merchant_id: created.merchant_id,
            amount: Money::new(created.amount, created.currency),
            method: created.method,
            vpa: created.vpa.clone(),
            card_network: created.card_network,
            card_last4: created.card_last4.clone(),
            status: PaymentStatus::Pending,
            captured: false,
            captured_amount: 0,
            captured_at: None,
            error_code: None,
            error_description: None,
            refunds: BTreeMap::new(),
            amount_refunded: 0,
            amount_refund_pending: 0,
            created_at: created.created_at,
            updated_at: created.created_at,
        });
    }
    let mut payment = state?;
    match event {
        PaymentEvent::PaymentCreated(_) => {}
        PaymentEvent::PaymentSucceeded(succeeded) => {
            payment.status = PaymentStatus::Success;
            payment.updated_at = succeeded.succeeded_at;
        }
        PaymentEvent::PaymentFailed(failed) => {
            payment.status = PaymentStatus::Failed;
            payment.error_code = Some(failed.error_code.clone());
            payment.error_description = Some(failed.error_description.clone());
            payment.updated_at = failed.failed_at;
        }
        PaymentEvent::PaymentCaptured(captured) => {
            payment.captured = true;
            payment.captured_amount = captured.amount;
            payment.captured_at = Some(captured.captured_at);
            payment.updated_at = captured.captured_at;
        }
        PaymentEvent::RefundCreated(created) => {
            payment.amount_refund_pending =
                payment.amount_refund_pending.saturating_add(created.amount);
            payment.refunds.insert(
                created.refund_id.clone(),
                Refund {
                    refund_id: created.refund_id.clone(),
                    amount: created.amount,
                    reason: created.reason.clone(),
                    status: RefundStatus::Pending,
                    created_at: created.created_at,
                    processed_at: None,
                },
            );
            payment.updated_at = created.created_at;
        }
        PaymentEvent::RefundProcessed(processed) => {
            if let Some(refund) = payment.refunds.get_mut(&processed.refund_id) {
                if refund.status == RefundStatus::Pending {
                    refund.status = RefundStatus::Processed;
                    refund.processed_at = Some(processed.processed_at);
                    payment.amount_refund_pending =
                        payment.amount_refund_pending.saturating_sub(refund.amount);
                    payment.amount_refunded = payment.amount_refunded.saturating_add(refund.amount);
                }
            }
            payment.updated_at = processed.processed_at;
        }
    }
    Some(payment)
}
