//! Orders: created by a merchant, then `attempted` once a payment is made for
//! them and `paid` once a payment succeeds. An order is paid at most once
//! (contract invariant 3).

mod command;
mod decide;
mod event;
mod evolve;
mod state;
#[cfg(test)]
mod tests;

pub use command::{CreateOrder, MarkOrderAttempted, MarkOrderPaid, OrderCommand};
pub use decide::validate_notes;
pub use event::{OrderAttempted, OrderCreated, OrderEvent, OrderPaid};
pub use state::{Order, OrderState, OrderStatus};

use crate::aggregate::Aggregate;
use crate::error::DomainError;

/// Smallest order amount, in minor units (contract: `amount >= 100`).
pub const ORDER_AMOUNT_MIN: i64 = 100;
/// Longest receipt, in characters.
pub const RECEIPT_MAX_CHARS: usize = 40;
/// Most keys in `notes`.
pub const NOTES_MAX_KEYS: usize = 15;
/// Longest `notes` key or value (as text), in characters.
pub const NOTE_MAX_CHARS: usize = 256;

/// The order aggregate (stream `order-order_…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAggregate;

impl Aggregate for OrderAggregate {
    const CATEGORY: &'static str = "order";
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;

    fn decide(state: &OrderState, command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        decide::decide(state, command)
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        evolve::evolve(state, event)
    }
}
