//! Given / when / then for every payment and refund command and rejection.

use super::*;
use crate::currency::Currency;
use crate::id::{MerchantId, OrderId, PaymentId, RefundId};
use crate::money::Money;
use crate::testing::{given, time};
use crate::validation::{CardInput, CardNetwork, CardRejection};
use crate::{DomainError, DomainEvent};

fn payment_id() -> PaymentId {
    "pay_H8sK3jD9s2L1pQr5".parse().unwrap()
}

fn order_id() -> OrderId {
    "order_H8sK3jD9s2L1pQr5".parse().unwrap()
}

fn merchant_id() -> MerchantId {
    "550e8400-e29b-41d4-a716-446655440000".parse().unwrap()
}

fn refund(n: u8) -> RefundId {
    RefundId::from_random_bytes([n; 16])
}

fn card(number: &str, month: &str, year: &str, cvv: &str) -> CardInput {
    CardInput {
        number: number.to_owned(),
        expiry_month: month.to_owned(),
        expiry_year: year.to_owned(),
        cvv: cvv.to_owned(),
        holder_name: "Asha Rao".to_owned(),
    }
}

fn create(method: PaymentMethodInput) -> CreatePayment {
    CreatePayment {
        payment_id: payment_id(),
        merchant_id: merchant_id(),
        order_id: order_id(),
        amount: Money::new(50_000, Currency::INR),
        order_paid: false,
        method,
        current_year: 2025,
        current_month: 6,
        at: time(0),
    }
}

fn upi(vpa: &str) -> PaymentMethodInput {
    PaymentMethodInput::Upi {
        vpa: vpa.to_owned(),
    }
}

fn created_upi() -> PaymentEvent {
    PaymentCreated {
        payment_id: payment_id(),
        order_id: order_id(),
        merchant_id: merchant_id(),
        amount: 50_000,
        currency: Currency::INR,
        method: PaymentMethod::Upi,
        vpa: Some("user@paytm".to_owned()),
        card_network: None,
        card_last4: None,
        created_at: time(0),
    }
    .into()
}

fn succeeded() -> PaymentEvent {
    PaymentSucceeded {
        succeeded_at: time(5),
    }
    .into()
}

fn failed() -> PaymentEvent {
    PaymentFailed {
        error_code: "PAYMENT_FAILED".to_owned(),
        error_description: "Payment processing failed".to_owned(),
        failed_at: time(5),
    }
    .into()
}

fn captured(amount: i64) -> PaymentEvent {
    PaymentCaptured {
        amount,
        captured_at: time(10),
    }
    .into()
}

fn refund_created(n: u8, amount: i64) -> PaymentEvent {
    RefundCreated {
        refund_id: refund(n),
        payment_id: payment_id(),
        amount,
        reason: Some("customer request".to_owned()),
        created_at: time(20),
    }
    .into()
}

fn refund_processed(n: u8) -> PaymentEvent {
    RefundProcessed {
        refund_id: refund(n),
        processed_at: time(30),
    }
    .into()
}

fn refund_request(n: u8, amount: i64) -> PaymentCommand {
    RequestRefund {
        refund_id: refund(n),
        amount,
        reason: Some("customer request".to_owned()),
        at: time(20),
    }
    .into()
}

fn refund_processing(n: u8) -> PaymentCommand {
    ProcessRefund {
        refund_id: refund(n),
        at: time(30),
    }
    .into()
}

fn capture(amount: i64) -> PaymentCommand {
    CapturePayment {
        amount,
        at: time(10),
    }
    .into()
}

fn success() -> PaymentCommand {
    RecordPaymentSuccess { at: time(5) }.into()
}

fn failure() -> PaymentCommand {
    RecordPaymentFailure {
        error_code: "PAYMENT_FAILED".to_owned(),
        error_description: "Payment processing failed".to_owned(),
        at: time(5),
    }
    .into()
}

// ---- CreatePayment -----------------------------------------------------------

#[test]
fn create_upi_payment() {
    let payment = given::<PaymentAggregate>([])
        .when(create(upi("user@paytm")).into())
        .then([created_upi()])
        .unwrap();
    assert_eq!(payment.status, PaymentStatus::Pending);
    assert_eq!(payment.method, PaymentMethod::Upi);
    assert_eq!(payment.amount, Money::new(50_000, Currency::INR));
    assert!(!payment.captured);
    assert_eq!(payment.refundable_amount(), 50_000);
}

#[test]
fn create_card_payment_keeps_network_and_last4_only() {
    let command = create(PaymentMethodInput::Card(card(
        "4111 1111 1111 1111",
        "12",
        "30",
        "123",
    )));
    let expected = PaymentCreated {
        payment_id: payment_id(),
        order_id: order_id(),
        merchant_id: merchant_id(),
        amount: 50_000,
        currency: Currency::INR,
        method: PaymentMethod::Card,
        vpa: None,
        card_network: Some(CardNetwork::Visa),
        card_last4: Some("1111".to_owned()),
        created_at: time(0),
    };
    let payment = given::<PaymentAggregate>([])
        .when(command.into())
        .then([expected.clone().into()])
        .unwrap();
    assert_eq!(payment.card_network, Some(CardNetwork::Visa));
    let payload = serde_json::to_string(&PaymentEvent::from(expected).to_payload()).unwrap();
    assert!(
        !payload.contains("4111111111111111") && !payload.contains("123\""),
        "{payload}"
    );
}

#[test]
fn create_card_payment_in_the_current_month() {
    let command = create(PaymentMethodInput::Card(card(
        "5555555555554444",
        "6",
        "2025",
        "1234",
    )));
    let events = crate::execute::<PaymentAggregate>(&None, command.into())
        .unwrap()
        .0;
    let PaymentEvent::PaymentCreated(created) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(created.card_network, Some(CardNetwork::Mastercard));
    assert_eq!(created.card_last4.as_deref(), Some("4444"));
}

#[test]
fn create_payment_rejections() {
    given::<PaymentAggregate>([created_upi()])
        .when(create(upi("user@paytm")).into())
        .then_error(DomainError::PaymentAlreadyExists);
    given::<PaymentAggregate>([])
        .when(
            CreatePayment {
                order_paid: true,
                ..create(upi("user@paytm"))
            }
            .into(),
        )
        .then_error(DomainError::OrderAlreadyPaid);
    given::<PaymentAggregate>([])
        .when(
            CreatePayment {
                amount: Money::new(0, Currency::INR),
                ..create(upi("user@paytm"))
            }
            .into(),
        )
        .then_error(DomainError::invalid("amount", "amount must be at least 1"));
    given::<PaymentAggregate>([])
        .when(create(upi("user@pay.tm")).into())
        .then_error(DomainError::InvalidVpa);
    given::<PaymentAggregate>([])
        .when(create(upi("")).into())
        .then_error(DomainError::InvalidVpa);
}

#[test]
fn create_card_payment_rejections() {
    let cases = [
        (
            card("4111111111111112", "12", "30", "123"),
            DomainError::InvalidCard {
                reason: CardRejection::Luhn,
            },
        ),
        (
            card("4111", "12", "30", "123"),
            DomainError::InvalidCard {
                reason: CardRejection::NumberLength,
            },
        ),
        (
            card("4111x111111111111", "12", "30", "123"),
            DomainError::InvalidCard {
                reason: CardRejection::NumberFormat,
            },
        ),
        (
            card("4111111111111111", "12", "30", "12"),
            DomainError::InvalidCard {
                reason: CardRejection::Cvv,
            },
        ),
        (
            card("4111111111111111", "13", "30", "123"),
            DomainError::InvalidCard {
                reason: CardRejection::ExpiryMonth,
            },
        ),
        (
            card("4111111111111111", "0", "30", "123"),
            DomainError::InvalidCard {
                reason: CardRejection::ExpiryMonth,
            },
        ),
        (
            card("4111111111111111", "12", "3", "123"),
            DomainError::InvalidCard {
                reason: CardRejection::ExpiryYear,
            },
        ),
        (
            card("4111111111111111", "5", "2025", "123"),
            DomainError::ExpiredCard,
        ),
        (
            card("4111111111111111", "12", "24", "123"),
            DomainError::ExpiredCard,
        ),
    ];
    for (input, expected) in cases {
        let error = given::<PaymentAggregate>([])
            .when(create(PaymentMethodInput::Card(input)).into())
            .then_error(expected);
        assert!(!error.to_string().contains("4111"), "{error}");
    }
}

// ---- RecordPaymentSuccess / RecordPaymentFailure -----------------------------

#[test]
fn record_payment_success() {
    let payment = given::<PaymentAggregate>([created_upi()])
        .when(success())
        .then([succeeded()])
        .unwrap();
    assert_eq!(payment.status, PaymentStatus::Success);
    assert_eq!(payment.updated_at, time(5));
}

#[test]
fn record_payment_failure() {
    let payment = given::<PaymentAggregate>([created_upi()])
        .when(failure())
        .then([failed()])
        .unwrap();
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert_eq!(payment.error_code.as_deref(), Some("PAYMENT_FAILED"));
    assert_eq!(
        payment.error_description.as_deref(),
        Some("Payment processing failed")
    );
}

#[test]
fn outcomes_are_recorded_only_once() {
    for history in [
        vec![created_upi(), succeeded()],
        vec![created_upi(), failed()],
    ] {
        given::<PaymentAggregate>(history.clone())
            .when(success())
            .then_error(DomainError::PaymentAlreadyFinalized);
        given::<PaymentAggregate>(history)
            .when(failure())
            .then_error(DomainError::PaymentAlreadyFinalized);
    }
}

#[test]
fn outcome_rejections() {
    given::<PaymentAggregate>([])
        .when(success())
        .then_error(DomainError::PaymentNotFound);
    given::<PaymentAggregate>([])
        .when(failure())
        .then_error(DomainError::PaymentNotFound);
    let failure_with = |code: &str, description: &str| {
        PaymentCommand::from(RecordPaymentFailure {
            error_code: code.to_owned(),
            error_description: description.to_owned(),
            at: time(5),
        })
    };
    given::<PaymentAggregate>([created_upi()])
        .when(failure_with("", "x"))
        .then_error(DomainError::invalid(
            "error_code",
            "error_code must not be empty",
        ));
    given::<PaymentAggregate>([created_upi()])
        .when(failure_with(&"C".repeat(65), "x"))
        .then_error(DomainError::invalid(
            "error_code",
            "error_code must be at most 64 characters",
        ));
    given::<PaymentAggregate>([created_upi()])
        .when(failure_with("PAYMENT_FAILED", &"d".repeat(256)))
        .then_error(DomainError::invalid(
            "error_description",
            "error_description must be at most 255 characters",
        ));
}

// ---- CapturePayment ------------------------------------------------------------

#[test]
fn capture_payment() {
    let payment = given::<PaymentAggregate>([created_upi(), succeeded()])
        .when(capture(50_000))
        .then([captured(50_000)])
        .unwrap();
    assert!(payment.captured);
    assert_eq!(payment.captured_amount, 50_000);
    assert_eq!(payment.captured_at, Some(time(10)));
    // A partial capture is allowed.
    given::<PaymentAggregate>([created_upi(), succeeded()])
        .when(capture(1))
        .then([captured(1)]);
}

#[test]
fn capture_requires_a_successful_uncaptured_payment() {
    let error = given::<PaymentAggregate>([created_upi()])
        .when(capture(50_000))
        .then_error(DomainError::PaymentNotCapturable);
    assert_eq!(error.to_string(), "Payment not in capturable state");
    assert_eq!(error.code(), "BAD_REQUEST_ERROR");
    given::<PaymentAggregate>([created_upi(), failed()])
        .when(capture(50_000))
        .then_error(DomainError::PaymentNotCapturable);
    given::<PaymentAggregate>([created_upi(), succeeded(), captured(50_000)])
        .when(capture(50_000))
        .then_error(DomainError::PaymentNotCapturable);
    given::<PaymentAggregate>([])
        .when(capture(50_000))
        .then_error(DomainError::PaymentNotFound);
}

#[test]
fn capture_amount_must_be_within_the_payment() {
    for amount in [0, -5, 50_001] {
        given::<PaymentAggregate>([created_upi(), succeeded()])
            .when(capture(amount))
            .then_error(DomainError::invalid(
                "amount",
                "amount must be between 1 and 50000",
            ));
    }
}

#[test]
fn capture_amount_above_the_maximum_is_rejected_as_such() {
    let maximum = DomainError::AmountAboveMaximum {
        maximum: Money::new(99_999_999, Currency::INR),
    };
    for amount in [100_000_000, i64::MAX] {
        let error = given::<PaymentAggregate>([created_upi(), succeeded()])
            .when(capture(amount))
            .then_error(maximum.clone());
        assert_eq!(error.field(), Some("amount"));
    }
}

#[test]
fn payment_of_an_order_at_the_maximum_is_captured_and_refunded_in_full() {
    let created = PaymentCreated {
        amount: 99_999_999,
        ..match created_upi() {
            PaymentEvent::PaymentCreated(created) => created,
            _ => unreachable!(),
        }
    };
    given::<PaymentAggregate>([])
        .when(
            CreatePayment {
                amount: Money::new(99_999_999, Currency::INR),
                ..create(upi("user@paytm"))
            }
            .into(),
        )
        .then([created.clone().into()]);
    given::<PaymentAggregate>([created.clone().into(), succeeded()])
        .when(capture(99_999_999))
        .then([captured(99_999_999)]);
    given::<PaymentAggregate>([created.into(), succeeded(), captured(99_999_999)])
        .when(refund_request(1, 99_999_999))
        .then([refund_created(1, 99_999_999)]);
}

#[test]
fn payment_of_an_order_above_the_maximum_is_rejected() {
    // Orders stored before the maximum existed may carry more.
    given::<PaymentAggregate>([])
        .when(
            CreatePayment {
                amount: Money::new(100_000_000, Currency::JPY),
                ..create(upi("user@paytm"))
            }
            .into(),
        )
        .then_error(DomainError::AmountAboveMaximum {
            maximum: Money::new(99_999_999, Currency::JPY),
        });
}

// ---- RequestRefund ---------------------------------------------------------------

#[test]
fn request_refund() {
    let payment = given::<PaymentAggregate>([created_upi(), succeeded()])
        .when(refund_request(1, 20_000))
        .then([refund_created(1, 20_000)])
        .unwrap();
    assert_eq!(payment.amount_refund_pending, 20_000);
    assert_eq!(payment.amount_refunded, 0);
    assert_eq!(payment.refundable_amount(), 30_000);
    let refund = &payment.refunds[&refund(1)];
    assert_eq!(refund.status, RefundStatus::Pending);
    assert_eq!(refund.amount, 20_000);
    assert_eq!(refund.processed_at, None);
}

#[test]
fn request_refund_without_reason_and_for_the_exact_remainder() {
    let history = [
        created_upi(),
        succeeded(),
        refund_created(1, 20_000),
        refund_processed(1),
        refund_created(2, 10_000),
    ];
    let command = RequestRefund {
        refund_id: refund(3),
        amount: 20_000,
        reason: None,
        at: time(40),
    };
    let expected = RefundCreated {
        refund_id: refund(3),
        payment_id: payment_id(),
        amount: 20_000,
        reason: None,
        created_at: time(40),
    };
    let payment = given::<PaymentAggregate>(history)
        .when(command.into())
        .then([expected.into()])
        .unwrap();
    assert_eq!(payment.refundable_amount(), 0);
}

#[test]
fn request_refund_beyond_the_available_amount_is_rejected() {
    let error = given::<PaymentAggregate>([created_upi(), succeeded()])
        .when(refund_request(1, 50_001))
        .then_error(DomainError::RefundExceedsAvailable);
    assert_eq!(error.to_string(), "Refund amount exceeds available amount");
    assert_eq!(error.code(), "BAD_REQUEST_ERROR");
    // Pending refunds count as well as processed ones.
    given::<PaymentAggregate>([
        created_upi(),
        succeeded(),
        refund_created(1, 30_000),
        refund_processed(1),
        refund_created(2, 15_000),
    ])
    .when(refund_request(3, 5_001))
    .then_error(DomainError::RefundExceedsAvailable);
}

#[test]
fn request_refund_rejections() {
    given::<PaymentAggregate>([])
        .when(refund_request(1, 100))
        .then_error(DomainError::PaymentNotFound);
    given::<PaymentAggregate>([created_upi()])
        .when(refund_request(1, 100))
        .then_error(DomainError::PaymentNotRefundable);
    given::<PaymentAggregate>([created_upi(), failed()])
        .when(refund_request(1, 100))
        .then_error(DomainError::PaymentNotRefundable);
    given::<PaymentAggregate>([created_upi(), succeeded(), refund_created(1, 100)])
        .when(refund_request(1, 100))
        .then_error(DomainError::RefundAlreadyExists);
    for amount in [0, -1] {
        given::<PaymentAggregate>([created_upi(), succeeded()])
            .when(refund_request(1, amount))
            .then_error(DomainError::invalid("amount", "amount must be at least 1"));
    }
    for amount in [100_000_000, i64::MAX] {
        given::<PaymentAggregate>([created_upi(), succeeded()])
            .when(refund_request(1, amount))
            .then_error(DomainError::AmountAboveMaximum {
                maximum: Money::new(99_999_999, Currency::INR),
            });
    }
    given::<PaymentAggregate>([created_upi(), succeeded()])
        .when(
            RequestRefund {
                refund_id: refund(1),
                amount: 100,
                reason: Some("r".repeat(256)),
                at: time(20),
            }
            .into(),
        )
        .then_error(DomainError::invalid(
            "reason",
            "reason must be at most 255 characters",
        ));
}

// ---- ProcessRefund ---------------------------------------------------------------

#[test]
fn process_refund() {
    let payment =
        given::<PaymentAggregate>([created_upi(), succeeded(), refund_created(1, 20_000)])
            .when(refund_processing(1))
            .then([refund_processed(1)])
            .unwrap();
    assert_eq!(payment.amount_refunded, 20_000);
    assert_eq!(payment.amount_refund_pending, 0);
    let refund = &payment.refunds[&refund(1)];
    assert_eq!(refund.status, RefundStatus::Processed);
    assert_eq!(refund.processed_at, Some(time(30)));
}

#[test]
fn process_refund_rejections() {
    given::<PaymentAggregate>([])
        .when(refund_processing(1))
        .then_error(DomainError::PaymentNotFound);
    given::<PaymentAggregate>([created_upi(), succeeded()])
        .when(refund_processing(1))
        .then_error(DomainError::RefundNotFound);
    given::<PaymentAggregate>([
        created_upi(),
        succeeded(),
        refund_created(1, 100),
        refund_processed(1),
    ])
    .when(refund_processing(1))
    .then_error(DomainError::RefundAlreadyProcessed);
}

#[test]
fn events_before_creation_are_ignored() {
    assert_eq!(
        crate::replay::<PaymentAggregate>(&[succeeded(), captured(1)]),
        None
    );
}
