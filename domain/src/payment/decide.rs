use super::command::{
    CapturePayment, CreatePayment, PaymentCommand, PaymentMethodInput, ProcessRefund,
    RecordPaymentFailure, RecordPaymentSuccess, RequestRefund,
};
use super::event::{
    PaymentCaptured, PaymentCreated, PaymentEvent, PaymentFailed, PaymentMethod, PaymentSucceeded,
    RefundCreated, RefundProcessed,
};
use super::state::{Payment, PaymentState, PaymentStatus, RefundStatus};
use super::{ERROR_CODE_MAX_CHARS, ERROR_DESCRIPTION_MAX_CHARS, REFUND_REASON_MAX_CHARS};
use crate::error::DomainError;
use crate::money::Money;
use crate::validation::{at_most_chars, required_text, validate_card, validate_vpa};

pub(super) fn decide(
    state: &PaymentState,
    command: PaymentCommand,
) -> Result<Vec<PaymentEvent>, DomainError> {
    match command {
        PaymentCommand::CreatePayment(command) => create(state, command),
        PaymentCommand::RecordPaymentSuccess(command) => record_success(existing(state)?, command),
        PaymentCommand::RecordPaymentFailure(command) => record_failure(existing(state)?, command),
        PaymentCommand::CapturePayment(command) => capture(existing(state)?, command),
        PaymentCommand::RequestRefund(command) => request_refund(existing(state)?, command),
        PaymentCommand::ProcessRefund(command) => process_refund(existing(state)?, command),
    }
}

fn existing(state: &PaymentState) -> Result<&Payment, DomainError> {
    state.as_ref().ok_or(DomainError::PaymentNotFound)
}

/// Checks, in order: the payment is new, the order is not paid, the amount is
/// positive and at most the maximum (an order stored before the maximum
/// existed may be above it), then the method (VPA, or card number → CVV →
/// expiry).
fn create(state: &PaymentState, command: CreatePayment) -> Result<Vec<PaymentEvent>, DomainError> {
    if state.is_some() {
        return Err(DomainError::PaymentAlreadyExists);
    }
    if command.order_paid {
        return Err(DomainError::OrderAlreadyPaid);
    }
    if !command.amount.is_positive() {
        return Err(DomainError::invalid("amount", "amount must be at least 1"));
    }
    command.amount.at_most_maximum()?;
    let (method, vpa, card_network, card_last4) = match &command.method {
        PaymentMethodInput::Upi { vpa } => {
            validate_vpa(vpa)?;
            (PaymentMethod::Upi, Some(vpa.clone()), None, None)
        }
        PaymentMethodInput::Card(card) => {
            let card = validate_card(card, command.current_year, command.current_month)?;
            (
                PaymentMethod::Card,
                None,
                Some(card.network),
                Some(card.last4),
            )
        }
    };
    Ok(vec![PaymentCreated {
        payment_id: command.payment_id,
        order_id: command.order_id,
        merchant_id: command.merchant_id,
        amount: command.amount.amount_minor,
        currency: command.amount.currency,
        method,
        vpa,
        card_network,
        card_last4,
        created_at: command.at,
    }
    .into()])
}

fn record_success(
    payment: &Payment,
    command: RecordPaymentSuccess,
) -> Result<Vec<PaymentEvent>, DomainError> {
    if payment.is_final() {
        return Err(DomainError::PaymentAlreadyFinalized);
    }
    Ok(vec![PaymentSucceeded {
        succeeded_at: command.at,
    }
    .into()])
}

fn record_failure(
    payment: &Payment,
    command: RecordPaymentFailure,
) -> Result<Vec<PaymentEvent>, DomainError> {
    if payment.is_final() {
        return Err(DomainError::PaymentAlreadyFinalized);
    }
    required_text("error_code", &command.error_code, ERROR_CODE_MAX_CHARS)?;
    at_most_chars(
        "error_description",
        &command.error_description,
        ERROR_DESCRIPTION_MAX_CHARS,
    )?;
    Ok(vec![PaymentFailed {
        error_code: command.error_code,
        error_description: command.error_description,
        failed_at: command.at,
    }
    .into()])
}

fn capture(payment: &Payment, command: CapturePayment) -> Result<Vec<PaymentEvent>, DomainError> {
    if payment.status != PaymentStatus::Success || payment.captured {
        return Err(DomainError::PaymentNotCapturable);
    }
    Money::new(command.amount, payment.amount.currency).at_most_maximum()?;
    let amount = payment.amount.amount_minor;
    if !(1..=amount).contains(&command.amount) {
        return Err(DomainError::invalid(
            "amount",
            format!("amount must be between 1 and {amount}"),
        ));
    }
    Ok(vec![PaymentCaptured {
        amount: command.amount,
        captured_at: command.at,
    }
    .into()])
}

/// Checks, in order: the refund id is new, the payment succeeded, the amount
/// is at least 1 and at most the maximum, the reason fits, and the amount is
/// within what is left.
fn request_refund(
    payment: &Payment,
    command: RequestRefund,
) -> Result<Vec<PaymentEvent>, DomainError> {
    if payment.refunds.contains_key(&command.refund_id) {
        return Err(DomainError::RefundAlreadyExists);
    }
    if payment.status != PaymentStatus::Success {
        return Err(DomainError::PaymentNotRefundable);
    }
    if command.amount < 1 {
        return Err(DomainError::invalid("amount", "amount must be at least 1"));
    }
    Money::new(command.amount, payment.amount.currency).at_most_maximum()?;
    if let Some(reason) = &command.reason {
        at_most_chars("reason", reason, REFUND_REASON_MAX_CHARS)?;
    }
    if command.amount > payment.refundable_amount() {
        return Err(DomainError::RefundExceedsAvailable);
    }
    Ok(vec![RefundCreated {
        refund_id: command.refund_id,
        payment_id: payment.payment_id.clone(),
        amount: command.amount,
        reason: command.reason,
        created_at: command.at,
    }
    .into()])
}

fn process_refund(
    payment: &Payment,
    command: ProcessRefund,
) -> Result<Vec<PaymentEvent>, DomainError> {
    let refund = payment
        .refunds
        .get(&command.refund_id)
        .ok_or(DomainError::RefundNotFound)?;
    if refund.status == RefundStatus::Processed {
        return Err(DomainError::RefundAlreadyProcessed);
    }
    Ok(vec![RefundProcessed {
        refund_id: command.refund_id,
        processed_at: command.at,
    }
    .into()])
}
