use serde_json::{Map, Value};

use super::command::{CreateOrder, MarkOrderAttempted, MarkOrderPaid, OrderCommand};
use super::event::{OrderAttempted, OrderCreated, OrderEvent, OrderPaid};
use super::state::{Order, OrderState, OrderStatus};
use super::{NOTES_MAX_KEYS, NOTE_MAX_CHARS, ORDER_AMOUNT_MIN, RECEIPT_MAX_CHARS};
use crate::error::DomainError;
use crate::validation::at_most_chars;

pub(super) fn decide(
    state: &OrderState,
    command: OrderCommand,
) -> Result<Vec<OrderEvent>, DomainError> {
    match command {
        OrderCommand::CreateOrder(command) => create(state, command),
        OrderCommand::MarkOrderAttempted(command) => mark_attempted(existing(state)?, command),
        OrderCommand::MarkOrderPaid(command) => mark_paid(existing(state)?, command),
    }
}

fn existing(state: &OrderState) -> Result<&Order, DomainError> {
    state.as_ref().ok_or(DomainError::OrderNotFound)
}

fn create(state: &OrderState, command: CreateOrder) -> Result<Vec<OrderEvent>, DomainError> {
    if state.is_some() {
        return Err(DomainError::OrderAlreadyExists);
    }
    if command.amount.amount_minor < ORDER_AMOUNT_MIN {
        return Err(DomainError::invalid(
            "amount",
            format!("amount must be at least {ORDER_AMOUNT_MIN}"),
        ));
    }
    command.amount.at_most_maximum()?;
    if let Some(receipt) = &command.receipt {
        at_most_chars("receipt", receipt, RECEIPT_MAX_CHARS)?;
    }
    if let Some(notes) = &command.notes {
        validate_notes(notes)?;
    }
    Ok(vec![OrderCreated {
        order_id: command.order_id,
        merchant_id: command.merchant_id,
        amount: command.amount.amount_minor,
        currency: command.amount.currency,
        receipt: command.receipt,
        notes: command.notes,
        created_at: command.at,
    }
    .into()])
}

/// At most 15 keys; keys and values at most 256 characters; values are
/// strings, integers or booleans (an integer's length is that of its JSON text).
///
/// Numbers must be integers in the `i64` range: the event store keeps only
/// numbers that survive PostgreSQL's `jsonb` and the hash chain's canonical
/// form unchanged, and a decimal (`1.5`, `1e2`, `-0`) or a larger integer,
/// read as a binary floating-point number, does not. Clients send those as
/// strings, which are kept exactly.
pub fn validate_notes(notes: &Map<String, Value>) -> Result<(), DomainError> {
    if notes.len() > NOTES_MAX_KEYS {
        return Err(DomainError::invalid(
            "notes",
            format!("notes must have at most {NOTES_MAX_KEYS} keys"),
        ));
    }
    for (key, value) in notes {
        if key.chars().count() > NOTE_MAX_CHARS {
            return Err(DomainError::invalid(
                "notes",
                format!("notes keys must be at most {NOTE_MAX_CHARS} characters"),
            ));
        }
        let length = match value {
            Value::String(text) => text.chars().count(),
            Value::Number(number) if number.is_i64() => number.to_string().len(),
            Value::Number(_) => {
                return Err(DomainError::invalid(
                    "notes",
                    format!(
                        "notes numbers must be integers from {} to {}; send other numbers as strings",
                        i64::MIN,
                        i64::MAX
                    ),
                ));
            }
            Value::Bool(flag) => flag.to_string().len(),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                return Err(DomainError::invalid(
                    "notes",
                    "notes values must be strings, integers or booleans",
                ));
            }
        };
        if length > NOTE_MAX_CHARS {
            return Err(DomainError::invalid(
                "notes",
                format!("notes values must be at most {NOTE_MAX_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

fn mark_attempted(
    order: &Order,
    command: MarkOrderAttempted,
) -> Result<Vec<OrderEvent>, DomainError> {
    match order.status {
        OrderStatus::Created => Ok(vec![OrderAttempted {
            payment_id: command.payment_id,
            attempted_at: command.at,
        }
        .into()]),
        // Later payments, or a payment after the order was paid: nothing changes.
        OrderStatus::Attempted | OrderStatus::Paid => Ok(Vec::new()),
    }
}

fn mark_paid(order: &Order, command: MarkOrderPaid) -> Result<Vec<OrderEvent>, DomainError> {
    match &order.paid_by {
        None => Ok(vec![OrderPaid {
            payment_id: command.payment_id,
            paid_at: command.at,
        }
        .into()]),
        Some(paid_by) if *paid_by == command.payment_id => Ok(Vec::new()),
        Some(_) => Err(DomainError::OrderAlreadyPaid),
    }
}
