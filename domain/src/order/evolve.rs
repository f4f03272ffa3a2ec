use super::event::OrderEvent;
use super::state::{Order, OrderState, OrderStatus};
use crate::money::Money;

pub(super) fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
    if let OrderEvent::OrderCreated(created) = event {
        return Some(Order {
            order_id: created.order_id.clone(),
            merchant_id: created.merchant_id,
            amount: Money::new(created.amount, created.currency),
            receipt: created.receipt.clone(),
            notes: created.notes.clone(),
            status: OrderStatus::Created,
            paid_by: None,
            created_at: created.created_at,
            updated_at: created.created_at,
        });
    }
    let mut order = state?;
    match event {
        OrderEvent::OrderCreated(_) => {}
        OrderEvent::OrderAttempted(attempted) => {
            order.status = OrderStatus::Attempted;
            order.updated_at = attempted.attempted_at;
        }
        OrderEvent::OrderPaid(paid) => {
            order.status = OrderStatus::Paid;
            order.paid_by = Some(paid.payment_id.clone());
            order.updated_at = paid.paid_at;
        }
    }
    Some(order)
}
