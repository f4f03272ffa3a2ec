//! Given / when / then for every order command and rejection.

use serde_json::{json, Map, Value};

use super::*;
use crate::currency::Currency;
use crate::id::{MerchantId, OrderId, PaymentId};
use crate::money::Money;
use crate::testing::{given, time};
use crate::DomainError;

fn order_id() -> OrderId {
    "order_H8sK3jD9s2L1pQr5".parse().unwrap()
}

fn merchant_id() -> MerchantId {
    "550e8400-e29b-41d4-a716-446655440000".parse().unwrap()
}

fn payment(n: u8) -> PaymentId {
    PaymentId::from_random_bytes([n; 16])
}

fn notes() -> Map<String, Value> {
    let Value::Object(map) = json!({ "customer": "Asha", "priority": 2, "gift": true }) else {
        unreachable!()
    };
    map
}

fn create() -> CreateOrder {
    CreateOrder {
        order_id: order_id(),
        merchant_id: merchant_id(),
        amount: Money::new(50_000, Currency::INR),
        receipt: Some("receipt#1".to_owned()),
        notes: Some(notes()),
        at: time(0),
    }
}

fn created() -> OrderEvent {
    OrderCreated {
        order_id: order_id(),
        merchant_id: merchant_id(),
        amount: 50_000,
        currency: Currency::INR,
        receipt: Some("receipt#1".to_owned()),
        notes: Some(notes()),
        created_at: time(0),
    }
    .into()
}

fn attempted(n: u8) -> OrderEvent {
    OrderAttempted {
        payment_id: payment(n),
        attempted_at: time(10),
    }
    .into()
}

fn paid(n: u8) -> OrderEvent {
    OrderPaid {
        payment_id: payment(n),
        paid_at: time(20),
    }
    .into()
}

fn mark_attempted(n: u8) -> OrderCommand {
    MarkOrderAttempted {
        payment_id: payment(n),
        at: time(10),
    }
    .into()
}

fn mark_paid(n: u8) -> OrderCommand {
    MarkOrderPaid {
        payment_id: payment(n),
        at: time(20),
    }
    .into()
}

fn with_notes(value: Value) -> CreateOrder {
    let Value::Object(map) = value else {
        panic!("notes must be an object")
    };
    CreateOrder {
        notes: Some(map),
        ..create()
    }
}

// ---- CreateOrder -----------------------------------------------------------

#[test]
fn create_order() {
    let order = given::<OrderAggregate>([])
        .when(create().into())
        .then([created()])
        .unwrap();
    assert_eq!(order.status, OrderStatus::Created);
    assert_eq!(order.amount, Money::new(50_000, Currency::INR));
    assert_eq!(order.receipt.as_deref(), Some("receipt#1"));
    assert_eq!(order.paid_by, None);
    assert_eq!(order.created_at, order.updated_at);
}

#[test]
fn create_order_accepts_the_limits() {
    let command = CreateOrder {
        amount: Money::new(100, Currency::JPY),
        receipt: Some("r".repeat(40)),
        notes: None,
        ..create()
    };
    let expected = OrderCreated {
        amount: 100,
        currency: Currency::JPY,
        receipt: Some("r".repeat(40)),
        notes: None,
        ..match created() {
            OrderEvent::OrderCreated(event) => event,
            _ => unreachable!(),
        }
    };
    given::<OrderAggregate>([])
        .when(command.into())
        .then([expected.into()]);

    let mut many = Map::new();
    for index in 0..15 {
        many.insert(format!("k{index}"), Value::String("v".repeat(256)));
    }
    many.insert("k0".to_owned(), json!(i64::MIN));
    many.insert("k1".to_owned(), json!(i64::MAX));
    let command = CreateOrder {
        notes: Some(many.clone()),
        ..create()
    };
    let OrderEvent::OrderCreated(mut expected) = created() else {
        unreachable!()
    };
    expected.notes = Some(many);
    given::<OrderAggregate>([])
        .when(command.into())
        .then([expected.into()]);
}

#[test]
fn create_order_accepts_the_maximum_amount_in_any_currency() {
    for currency in [Currency::INR, Currency::JPY, Currency::KWD] {
        let maximum = currency.max_amount_minor();
        let OrderEvent::OrderCreated(expected) = created() else {
            unreachable!()
        };
        given::<OrderAggregate>([])
            .when(
                CreateOrder {
                    amount: Money::new(maximum, currency),
                    ..create()
                }
                .into(),
            )
            .then([OrderCreated {
                amount: 99_999_999,
                currency,
                ..expected
            }
            .into()]);
    }
}

#[test]
fn create_order_rejects_an_amount_above_the_maximum() {
    for amount in [100_000_000, i64::MAX] {
        let error = given::<OrderAggregate>([])
            .when(
                CreateOrder {
                    amount: Money::new(amount, Currency::INR),
                    ..create()
                }
                .into(),
            )
            .then_error(DomainError::AmountAboveMaximum {
                maximum: Money::new(99_999_999, Currency::INR),
            });
        assert_eq!(error.field(), Some("amount"));
        assert_eq!(
            error.to_string(),
            "amount must be at most 99999999 (999999.99 INR)"
        );
    }
}

#[test]
fn create_order_rejects_an_existing_order() {
    given::<OrderAggregate>([created()])
        .when(create().into())
        .then_error(DomainError::OrderAlreadyExists);
}

#[test]
fn create_order_rejects_a_small_amount() {
    for amount in [99, 0, -1, i64::MIN] {
        given::<OrderAggregate>([])
            .when(
                CreateOrder {
                    amount: Money::new(amount, Currency::INR),
                    ..create()
                }
                .into(),
            )
            .then_error(DomainError::invalid(
                "amount",
                "amount must be at least 100",
            ));
    }
}

#[test]
fn create_order_rejects_a_long_receipt() {
    given::<OrderAggregate>([])
        .when(
            CreateOrder {
                receipt: Some("r".repeat(41)),
                ..create()
            }
            .into(),
        )
        .then_error(DomainError::invalid(
            "receipt",
            "receipt must be at most 40 characters",
        ));
}

#[test]
fn create_order_rejects_bad_notes() {
    let mut sixteen = Map::new();
    for index in 0..16 {
        sixteen.insert(format!("k{index}"), json!("v"));
    }
    given::<OrderAggregate>([])
        .when(
            CreateOrder {
                notes: Some(sixteen),
                ..create()
            }
            .into(),
        )
        .then_error(DomainError::invalid(
            "notes",
            "notes must have at most 15 keys",
        ));
    let long_value = "v".repeat(257);
    given::<OrderAggregate>([])
        .when(with_notes(json!({ "a": long_value })).into())
        .then_error(DomainError::invalid(
            "notes",
            "notes values must be at most 256 characters",
        ));
    let long_key = "k".repeat(257);
    let mut map = Map::new();
    map.insert(long_key, json!("v"));
    given::<OrderAggregate>([])
        .when(
            CreateOrder {
                notes: Some(map),
                ..create()
            }
            .into(),
        )
        .then_error(DomainError::invalid(
            "notes",
            "notes keys must be at most 256 characters",
        ));
    for value in [json!(null), json!([1, 2]), json!({ "nested": "x" })] {
        given::<OrderAggregate>([])
            .when(with_notes(json!({ "a": value })).into())
            .then_error(DomainError::invalid(
                "notes",
                "notes values must be strings, integers or booleans",
            ));
    }
}

#[test]
fn create_order_rejects_notes_numbers_that_are_not_i64_integers() {
    // As a JSON body parses them: a decimal, an exponent, a negative zero and
    // integers beyond i64 are not kept exactly by the store, so they are refused.
    for text in [
        "1.5",
        "12.50",
        "1e2",
        "-0",
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
    ] {
        let value: Value = serde_json::from_str(text).unwrap();
        given::<OrderAggregate>([])
            .when(with_notes(json!({ "a": value })).into())
            .then_error(DomainError::invalid(
                "notes",
                "notes numbers must be integers from -9223372036854775808 to 9223372036854775807; send other numbers as strings",
            ));
    }
    // The same values as strings are kept as sent.
    let OrderEvent::OrderCreated(expected) = created() else {
        unreachable!()
    };
    let as_text = json!({ "a": "1.5", "b": "18446744073709551616", "c": 7 });
    given::<OrderAggregate>([])
        .when(with_notes(as_text.clone()).into())
        .then([OrderCreated {
            notes: as_text.as_object().cloned(),
            ..expected
        }
        .into()]);
}

// ---- MarkOrderAttempted ----------------------------------------------------

#[test]
fn mark_order_attempted() {
    let order = given::<OrderAggregate>([created()])
        .when(mark_attempted(1))
        .then([attempted(1)])
        .unwrap();
    assert_eq!(order.status, OrderStatus::Attempted);
    assert_eq!(order.updated_at, time(10));
}

#[test]
fn mark_order_attempted_again_or_after_payment_is_a_no_op() {
    given::<OrderAggregate>([created(), attempted(1)])
        .when(mark_attempted(2))
        .then_nothing();
    given::<OrderAggregate>([created(), attempted(1), paid(1)])
        .when(mark_attempted(3))
        .then_nothing();
}

/// The race behind issue 18: the acquirer claims the order before the
/// request that created the payment marks it attempted. The mark is then a
/// no-op, so the history has no `OrderAttempted`; the order still counts as
/// attempted.
#[test]
fn an_order_paid_before_its_attempted_mark_counts_as_attempted() {
    let order = given::<OrderAggregate>([created(), paid(1)])
        .when(mark_attempted(1))
        .then_nothing()
        .unwrap();
    assert_eq!(order.status, OrderStatus::Paid);
    assert!(order.payment_attempted());
}

#[test]
fn payment_attempted_follows_the_status() {
    let at = |events: &[OrderEvent]| {
        crate::replay::<OrderAggregate>(events)
            .unwrap()
            .payment_attempted()
    };
    assert!(!at(&[created()]));
    assert!(at(&[created(), attempted(1)]));
    assert!(at(&[created(), attempted(1), paid(1)]));
    assert!(at(&[created(), paid(1)]));
}

#[test]
fn mark_order_attempted_rejects_an_unknown_order() {
    given::<OrderAggregate>([])
        .when(mark_attempted(1))
        .then_error(DomainError::OrderNotFound);
}

// ---- MarkOrderPaid -----------------------------------------------------------

#[test]
fn mark_order_paid() {
    let order = given::<OrderAggregate>([created(), attempted(1)])
        .when(mark_paid(1))
        .then([paid(1)])
        .unwrap();
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.paid_by, Some(payment(1)));
    assert!(order.is_paid());
    // Straight from created, too.
    given::<OrderAggregate>([created()])
        .when(mark_paid(1))
        .then([paid(1)]);
}

#[test]
fn mark_order_paid_by_the_same_payment_is_a_no_op() {
    given::<OrderAggregate>([created(), attempted(1), paid(1)])
        .when(mark_paid(1))
        .then_nothing();
}

#[test]
fn mark_order_paid_by_another_payment_is_rejected() {
    given::<OrderAggregate>([created(), attempted(1), paid(1)])
        .when(mark_paid(2))
        .then_error(DomainError::OrderAlreadyPaid);
}

#[test]
fn mark_order_paid_rejects_an_unknown_order() {
    given::<OrderAggregate>([])
        .when(mark_paid(1))
        .then_error(DomainError::OrderNotFound);
}

#[test]
fn events_before_creation_are_ignored() {
    assert_eq!(
        crate::replay::<OrderAggregate>(&[attempted(1), paid(1)]),
        None
    );
}
