//! Property tests: random command sequences folded through `execute`, as the
//! services would drive them, checking the contract's invariants after every
//! step:
//!
//! * invariant 2: `pending` → `success` | `failed` only; capture once and only
//!   after `success`; refunds only after `success`; pending + processed refunds
//!   never exceed the amount;
//! * invariant 3: an order is paid at most once (and by one payment);
//! * a rejected command changes nothing;
//! * `replay(all events)` equals the state built step by step;
//! * every event survives its stored form (`to_payload` / `from_stored`).

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use paystream_domain::order::{
    CreateOrder, MarkOrderAttempted, MarkOrderPaid, OrderAggregate, OrderCommand, OrderEvent,
};
use paystream_domain::payment::{
    CapturePayment, CreatePayment, PaymentAggregate, PaymentCommand, PaymentEvent,
    PaymentMethodInput, PaymentState, PaymentStatus, ProcessRefund, RecordPaymentFailure,
    RecordPaymentSuccess, RefundStatus, RequestRefund,
};
use paystream_domain::validation::{card::luhn_valid, CardInput};
use paystream_domain::webhook::{
    RecordWebhookAttempt, RetryWebhookDelivery, ScheduleWebhookDelivery, WebhookCommand,
    WebhookDeliveryAggregate, WebhookDeliveryEvent, WebhookDeliveryState, WebhookDeliveryStatus,
};
use paystream_domain::{
    execute, replay, Aggregate, Currency, DomainError, DomainEvent, MerchantId, Money, OrderId,
    PaymentId, RefundId, WebhookDeliveryId,
};

fn start() -> DateTime<Utc> {
    "2025-06-01T10:00:00Z".parse().unwrap()
}

fn merchant_id() -> MerchantId {
    "550e8400-e29b-41d4-a716-446655440000".parse().unwrap()
}

/// One object's stream as the services hold it: the events and the state
/// obtained by executing commands one by one.
#[derive(Debug)]
struct Stream<A: Aggregate> {
    events: Vec<A::Event>,
    state: A::State,
}

impl<A: Aggregate> Stream<A> {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            state: A::State::default(),
        }
    }

    /// Executes `command`; on success appends its events. A rejection must leave
    /// the stream exactly as it was.
    fn run(&mut self, command: A::Command) -> Result<Vec<A::Event>, DomainError> {
        let before = self.state.clone();
        match execute::<A>(&self.state, command) {
            Ok((events, state)) => {
                self.events.extend(events.iter().cloned());
                self.state = state;
                Ok(events)
            }
            Err(error) => {
                assert_eq!(self.state, before);
                Err(error)
            }
        }
    }

    /// Incremental state == replay from scratch, and every event round-trips.
    fn check_replay_and_storage(&self) {
        assert_eq!(
            replay::<A>(&self.events),
            self.state,
            "replay differs from the incremental state"
        );
        for event in &self.events {
            let stored = A::Event::from_stored(
                event.event_type(),
                event.schema_version(),
                event.to_payload(),
            );
            assert_eq!(stored.as_ref(), Ok(event), "event does not round-trip");
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    CreatePayment {
        card: bool,
        /// Whether the order is marked attempted right away; if not, the
        /// mark was lost, or comes after the acquirer paid the order (a
        /// no-op then): the order goes `created` → `paid`.
        mark_attempted: bool,
    },
    Succeed {
        payment: usize,
    },
    Fail {
        payment: usize,
    },
    Capture {
        payment: usize,
        amount: i64,
    },
    RequestRefund {
        payment: usize,
        slot: u8,
        amount: i64,
    },
    ProcessRefund {
        payment: usize,
        slot: u8,
    },
}

fn amount_strategy(order_amount: i64) -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 1..=order_amount,
        1 => 1..=(order_amount / 4).max(1),
        1 => -5i64..=5,
        1 => (order_amount - 2)..=(order_amount + 2),
    ]
}

fn step_strategy(order_amount: i64) -> impl Strategy<Value = Step> {
    let payment = prop_oneof![3 => 0usize..2, 1 => 2usize..4];
    prop_oneof![
        2 => (any::<bool>(), prop::bool::weighted(0.8))
            .prop_map(|(card, mark_attempted)| Step::CreatePayment { card, mark_attempted }),
        2 => payment.clone().prop_map(|payment| Step::Succeed { payment }),
        1 => payment.clone().prop_map(|payment| Step::Fail { payment }),
        1 => (payment.clone(), amount_strategy(order_amount))
            .prop_map(|(payment, amount)| Step::Capture { payment, amount }),
        4 => (payment.clone(), 0u8..3, amount_strategy(order_amount))
            .prop_map(|(payment, slot, amount)| Step::RequestRefund { payment, slot, amount }),
        4 => (payment, 0u8..3).prop_map(|(payment, slot)| Step::ProcessRefund { payment, slot }),
    ]
}

fn scenario() -> impl Strategy<Value = (i64, Vec<Step>)> {
    (100i64..=1_000_000).prop_flat_map(|amount| {
        (
            Just(amount),
            prop::collection::vec(step_strategy(amount), 1..80),
        )
    })
}

fn payment_id(index: usize) -> PaymentId {
    PaymentId::from_random_bytes([u8::try_from(index).unwrap() + 1; 16])
}

fn refund_id(payment: usize, slot: u8) -> RefundId {
    let mut bytes = [0u8; 16];
    bytes[14] = u8::try_from(payment).unwrap();
    bytes[15] = slot;
    RefundId::from_random_bytes(bytes)
}

fn method(card: bool) -> PaymentMethodInput {
    if card {
        PaymentMethodInput::Card(CardInput {
            number: "4111 1111 1111 1111".to_owned(),
            expiry_month: "12".to_owned(),
            expiry_year: "30".to_owned(),
            cvv: "123".to_owned(),
            holder_name: "Asha Rao".to_owned(),
        })
    } else {
        PaymentMethodInput::Upi {
            vpa: "user@paytm".to_owned(),
        }
    }
}

/// A snapshot of what invariant 2 compares between two steps.
#[derive(Debug, Clone, PartialEq)]
struct Lifecycle {
    status: PaymentStatus,
    captured: bool,
    captured_amount: i64,
    refunds: Vec<(RefundId, i64, RefundStatus)>,
}

fn lifecycle(state: &PaymentState) -> Option<Lifecycle> {
    state.as_ref().map(|payment| Lifecycle {
        status: payment.status,
        captured: payment.captured,
        captured_amount: payment.captured_amount,
        refunds: payment
            .refunds
            .values()
            .map(|refund| (refund.refund_id.clone(), refund.amount, refund.status))
            .collect(),
    })
}

fn check_payment_invariants(stream: &Stream<PaymentAggregate>, previous: Option<&Lifecycle>) {
    stream.check_replay_and_storage();
    let Some(payment) = &stream.state else {
        assert!(stream.events.is_empty());
        return;
    };
    let amount = payment.amount.amount_minor;
    // Lifecycle: pending -> success | failed, never back.
    if let Some(previous) = previous {
        match previous.status {
            PaymentStatus::Pending => {}
            final_status => assert_eq!(payment.status, final_status, "a final status changed"),
        }
        if previous.captured {
            assert!(payment.captured);
            assert_eq!(
                payment.captured_amount, previous.captured_amount,
                "captured twice"
            );
        }
        for (refund_id, refund_amount, status) in &previous.refunds {
            let refund = payment
                .refunds
                .get(refund_id)
                .expect("a refund disappeared");
            assert_eq!(refund.amount, *refund_amount);
            if *status == RefundStatus::Processed {
                assert_eq!(
                    refund.status,
                    RefundStatus::Processed,
                    "a processed refund went back"
                );
            }
        }
    }
    let outcomes = stream
        .events
        .iter()
        .filter(|event| {
            matches!(
                event,
                PaymentEvent::PaymentSucceeded(_) | PaymentEvent::PaymentFailed(_)
            )
        })
        .count();
    assert!(outcomes <= 1, "{outcomes} outcomes recorded");
    let captures = stream
        .events
        .iter()
        .filter(|event| matches!(event, PaymentEvent::PaymentCaptured(_)))
        .count();
    assert!(captures <= 1, "{captures} captures");
    // Capture only after success, for 1..=amount.
    if payment.captured {
        assert_eq!(payment.status, PaymentStatus::Success);
        assert!((1..=amount).contains(&payment.captured_amount));
    } else {
        assert_eq!(payment.captured_amount, 0);
    }
    // Refunds only after success, and never more than the amount in total.
    if !payment.refunds.is_empty() {
        assert_eq!(payment.status, PaymentStatus::Success);
    }
    let processed: i64 = payment
        .refunds
        .values()
        .filter(|r| r.status == RefundStatus::Processed)
        .map(|r| r.amount)
        .sum();
    let pending: i64 = payment
        .refunds
        .values()
        .filter(|r| r.status == RefundStatus::Pending)
        .map(|r| r.amount)
        .sum();
    assert_eq!(payment.amount_refunded, processed);
    assert_eq!(payment.amount_refund_pending, pending);
    assert!(payment.refunds.values().all(|refund| refund.amount >= 1));
    assert!(
        processed + pending <= amount,
        "refunds {processed} + {pending} exceed {amount}"
    );
    assert!(payment.refundable_amount() >= 0);
}

fn check_order_invariants(
    order: &Stream<OrderAggregate>,
    payments: &[Stream<PaymentAggregate>],
    paid_by_before: Option<&PaymentId>,
) {
    order.check_replay_and_storage();
    let state = order.state.as_ref().expect("the order exists");
    let paid_events: Vec<&PaymentId> = order
        .events
        .iter()
        .filter_map(|event| match event {
            OrderEvent::OrderPaid(paid) => Some(&paid.payment_id),
            _ => None,
        })
        .collect();
    assert!(
        paid_events.len() <= 1,
        "order paid {} times",
        paid_events.len()
    );
    assert_eq!(state.paid_by.as_ref(), paid_events.first().copied());
    // Paid implies attempted, with or without an `OrderAttempted` (the
    // funnel counts on it: payment_attempted >= paid).
    let attempted_events = order
        .events
        .iter()
        .filter(|event| matches!(event, OrderEvent::OrderAttempted(_)))
        .count();
    assert!(
        attempted_events <= 1,
        "order attempted {attempted_events} times"
    );
    assert_eq!(
        state.payment_attempted(),
        attempted_events == 1 || state.paid_by.is_some()
    );
    assert!(state.paid_by.is_none() || state.payment_attempted());
    if let Some(before) = paid_by_before {
        assert_eq!(
            state.paid_by.as_ref(),
            Some(before),
            "the paying payment changed"
        );
    }
    if let Some(paid_by) = &state.paid_by {
        let payment = payments
            .iter()
            .filter_map(|stream| stream.state.as_ref())
            .find(|payment| &payment.payment_id == paid_by)
            .expect("paid by a known payment");
        assert_eq!(payment.status, PaymentStatus::Success);
    }
}

fn run_scenario(order_amount: i64, steps: Vec<Step>) {
    let order_id: OrderId = OrderId::from_random_bytes([9; 16]);
    let mut now = start();
    let mut order = Stream::<OrderAggregate>::new();
    order
        .run(OrderCommand::from(CreateOrder {
            order_id: order_id.clone(),
            merchant_id: merchant_id(),
            amount: Money::new(order_amount, Currency::INR),
            receipt: None,
            notes: None,
            at: now,
        }))
        .expect("a valid order is created");
    let mut payments: Vec<Stream<PaymentAggregate>> = Vec::new();

    for step in steps {
        now += TimeDelta::seconds(7);
        let paid_by_before = order.state.as_ref().and_then(|state| state.paid_by.clone());
        let target = match &step {
            Step::CreatePayment { .. } => None,
            Step::Succeed { payment }
            | Step::Fail { payment }
            | Step::Capture { payment, .. }
            | Step::RequestRefund { payment, .. }
            | Step::ProcessRefund { payment, .. } => Some(*payment),
        };
        // Steps on a payment that does not exist yet are rejected as not found.
        if let Some(index) = target {
            if index >= payments.len() {
                let mut missing = Stream::<PaymentAggregate>::new();
                let error = missing
                    .run(RecordPaymentSuccess { at: now }.into())
                    .unwrap_err();
                assert_eq!(error, DomainError::PaymentNotFound);
                continue;
            }
        }
        let previous = target.and_then(|index| lifecycle(&payments[index].state));
        match step {
            Step::CreatePayment {
                card,
                mark_attempted,
            } => {
                let index = payments.len();
                if index >= 4 {
                    continue;
                }
                let order_paid = order.state.as_ref().is_some_and(|state| state.is_paid());
                let mut stream = Stream::<PaymentAggregate>::new();
                let result = stream.run(PaymentCommand::from(CreatePayment {
                    payment_id: payment_id(index),
                    merchant_id: merchant_id(),
                    order_id: order_id.clone(),
                    amount: Money::new(order_amount, Currency::INR),
                    order_paid,
                    method: method(card),
                    current_year: 2025,
                    current_month: 6,
                    at: now,
                }));
                if order_paid {
                    assert_eq!(result, Err(DomainError::OrderAlreadyPaid));
                } else {
                    result.expect("a payment for an unpaid order is created");
                    if mark_attempted {
                        order
                            .run(
                                MarkOrderAttempted {
                                    payment_id: payment_id(index),
                                    at: now,
                                }
                                .into(),
                            )
                            .expect("marking attempted never fails");
                    }
                    payments.push(stream);
                }
            }
            Step::Succeed { payment } => {
                if payments[payment]
                    .run(RecordPaymentSuccess { at: now }.into())
                    .is_ok()
                {
                    // The service marks the order paid; a second success is refused there.
                    match order.run(
                        MarkOrderPaid {
                            payment_id: payment_id(payment),
                            at: now,
                        }
                        .into(),
                    ) {
                        Ok(_) => {}
                        Err(error) => assert_eq!(error, DomainError::OrderAlreadyPaid),
                    }
                }
            }
            Step::Fail { payment } => {
                let _ = payments[payment].run(
                    RecordPaymentFailure {
                        error_code: "PAYMENT_FAILED".to_owned(),
                        error_description: "declined".to_owned(),
                        at: now,
                    }
                    .into(),
                );
            }
            Step::Capture { payment, amount } => {
                let result = payments[payment].run(CapturePayment { amount, at: now }.into());
                if result.is_ok() {
                    assert_eq!(
                        previous.as_ref().map(|p| (p.status, p.captured)),
                        Some((PaymentStatus::Success, false))
                    );
                }
            }
            Step::RequestRefund {
                payment,
                slot,
                amount,
            } => {
                let available = payments[payment]
                    .state
                    .as_ref()
                    .map_or(0, |state| state.refundable_amount());
                let result = payments[payment].run(
                    RequestRefund {
                        refund_id: refund_id(payment, slot),
                        amount,
                        reason: None,
                        at: now,
                    }
                    .into(),
                );
                match result {
                    Ok(_) => assert!((1..=available).contains(&amount)),
                    Err(DomainError::RefundExceedsAvailable) => assert!(amount > available),
                    Err(_) => {}
                }
            }
            Step::ProcessRefund { payment, slot } => {
                let _ = payments[payment].run(
                    ProcessRefund {
                        refund_id: refund_id(payment, slot),
                        at: now,
                    }
                    .into(),
                );
            }
        }
        for (index, stream) in payments.iter().enumerate() {
            let previous = if Some(index) == target {
                previous.as_ref()
            } else {
                None
            };
            check_payment_invariants(stream, previous);
        }
        check_order_invariants(&order, &payments, paid_by_before.as_ref());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn order_and_payment_invariants_hold((order_amount, steps) in scenario()) {
        run_scenario(order_amount, steps);
    }
}

// ---- webhook deliveries ---------------------------------------------------

#[derive(Debug, Clone)]
enum Delivery {
    Attempt {
        status_code: Option<u16>,
        retry_after_seconds: Option<u32>,
        attempt_offset: i8,
    },
    ManualRetry,
}

fn delivery_step() -> impl Strategy<Value = Delivery> {
    let status = prop_oneof![
        Just(None),
        Just(Some(200)),
        Just(Some(204)),
        Just(Some(301)),
        Just(Some(410)),
        Just(Some(429)),
        Just(Some(500)),
        Just(Some(503)),
    ];
    prop_oneof![
        8 => (
            status,
            prop::option::of(0u32..10_000),
            prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
        )
            .prop_map(|(status_code, retry_after_seconds, attempt_offset)| Delivery::Attempt {
                status_code,
                retry_after_seconds,
                attempt_offset,
            }),
        1 => Just(Delivery::ManualRetry),
    ]
}

proptest! {
    #[test]
    fn webhook_deliveries_follow_their_schedule(
        intervals in prop::collection::vec(0u32..7_200, 1..6),
        steps in prop::collection::vec(delivery_step(), 1..30),
    ) {
        let mut now = start();
        let mut stream = Stream::<WebhookDeliveryAggregate>::new();
        stream
            .run(WebhookCommand::from(ScheduleWebhookDelivery {
                delivery_id: WebhookDeliveryId::from_random_bytes([3; 16]),
                merchant_id: merchant_id(),
                event: "payment.success".to_owned(),
                source_event_id: uuid::Uuid::from_u128(7),
                url: "https://shop.example.com/hooks".to_owned(),
                body: "{}".to_owned(),
                retry_intervals_seconds: intervals.clone(),
                at: now,
            }))
            .unwrap();
        for step in steps {
            now += TimeDelta::seconds(1);
            let before: WebhookDeliveryState = stream.state.clone();
            let delivery = before.as_ref().unwrap();
            match step {
                Delivery::ManualRetry => {
                    stream.run(RetryWebhookDelivery { at: now }.into()).unwrap();
                    let after = stream.state.as_ref().unwrap();
                    prop_assert_eq!(after.attempts, 0);
                    prop_assert_eq!(after.status, WebhookDeliveryStatus::Pending);
                }
                Delivery::Attempt { status_code, retry_after_seconds, attempt_offset } => {
                    let attempt = delivery
                        .attempts
                        .saturating_add(1)
                        .saturating_add_signed(i32::from(attempt_offset));
                    let result = stream.run(
                        RecordWebhookAttempt {
                            attempt,
                            at: now,
                            status_code,
                            response_body_excerpt: String::new(),
                            latency_ms: 5,
                            error: None,
                            retry_after_seconds,
                        }
                        .into(),
                    );
                    let pending = delivery.status == WebhookDeliveryStatus::Pending;
                    prop_assert_eq!(result.is_ok(), pending && attempt_offset == 0 && attempt >= 1);
                    if let Ok(events) = result {
                        prop_assert_eq!(events.len(), 2);
                        let after = stream.state.as_ref().unwrap();
                        prop_assert_eq!(after.attempts, attempt);
                        prop_assert!(after.attempts <= after.max_attempts());
                        match &events[1] {
                            WebhookDeliveryEvent::WebhookDelivered(_) => {
                                prop_assert!(matches!(status_code, Some(200..=299)));
                                prop_assert_eq!(after.status, WebhookDeliveryStatus::Success);
                            }
                            WebhookDeliveryEvent::WebhookDeliveryFailed(failed) => {
                                let gone = status_code == Some(410);
                                prop_assert!(gone || attempt == after.max_attempts());
                                let reason = if gone { "gone" } else { "exhausted" };
                                prop_assert_eq!(failed.reason.as_str(), reason);
                                prop_assert_eq!(after.status, WebhookDeliveryStatus::Failed);
                            }
                            WebhookDeliveryEvent::WebhookRetryScheduled(retry) => {
                                prop_assert!(attempt < after.max_attempts());
                                let interval = intervals[usize::try_from(attempt).unwrap()];
                                let wait = retry.next_attempt_at - now;
                                let retry_after = retry_after_seconds.unwrap_or(0).min(3_600);
                                let expected = i64::from(interval.max(retry_after));
                                prop_assert_eq!(wait, TimeDelta::seconds(expected));
                            }
                            other => prop_assert!(false, "unexpected outcome {:?}", other),
                        }
                    }
                }
            }
            stream.check_replay_and_storage();
        }
    }
}

// ---- value types ----------------------------------------------------------

proptest! {
    #[test]
    fn random_bytes_always_make_valid_ids(bytes in any::<[u8; 16]>()) {
        let id = PaymentId::from_random_bytes(bytes);
        prop_assert_eq!(id.as_str().parse::<PaymentId>().unwrap(), id.clone());
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<PaymentId>(&json).unwrap(), id);
    }

    #[test]
    fn a_luhn_check_digit_makes_any_digit_string_valid(digits in "[0-9]{12,18}") {
        let valid_check_digits = (0..10)
            .filter(|check| luhn_valid(&format!("{digits}{check}")))
            .count();
        prop_assert_eq!(valid_check_digits, 1);
    }

    #[test]
    fn money_addition_never_panics(a in any::<i64>(), b in any::<i64>()) {
        let sum = Money::new(a, Currency::INR).checked_add(Money::new(b, Currency::INR));
        match a.checked_add(b) {
            Some(expected) => prop_assert_eq!(sum, Ok(Money::new(expected, Currency::INR))),
            None => prop_assert_eq!(sum, Err(DomainError::AmountOverflow)),
        }
    }
}
