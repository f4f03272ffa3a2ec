//! Given / when / then for every webhook delivery command and rejection.

use uuid::Uuid;

use super::*;
use crate::id::{MerchantId, WebhookDeliveryId};
use crate::testing::{given, time};
use crate::DomainError;

const URL: &str = "https://shop.example.com/webhooks";
const BODY: &str = r#"{"event":"payment.success","timestamp":1748772000,"data":{"payment":{"id":"pay_H8sK3jD9s2L1pQr5"}}}"#;

fn delivery_id() -> WebhookDeliveryId {
    "whd_H8sK3jD9s2L1pQr5".parse().unwrap()
}

fn merchant_id() -> MerchantId {
    "550e8400-e29b-41d4-a716-446655440000".parse().unwrap()
}

fn source_event_id() -> Uuid {
    Uuid::from_u128(0x0190_7c2e_5b1a_7000_8000_0000_0000_0001)
}

fn schedule() -> ScheduleWebhookDelivery {
    ScheduleWebhookDelivery {
        delivery_id: delivery_id(),
        merchant_id: merchant_id(),
        event: "payment.success".to_owned(),
        source_event_id: source_event_id(),
        url: URL.to_owned(),
        body: BODY.to_owned(),
        retry_intervals_seconds: RETRY_INTERVALS_SECONDS.to_vec(),
        at: time(0),
    }
}

fn scheduled() -> WebhookDeliveryEvent {
    WebhookDeliveryScheduled {
        delivery_id: delivery_id(),
        merchant_id: merchant_id(),
        event: "payment.success".to_owned(),
        source_event_id: source_event_id(),
        url: URL.to_owned(),
        body: BODY.to_owned(),
        retry_intervals_seconds: RETRY_INTERVALS_SECONDS.to_vec(),
        scheduled_at: time(0),
        next_attempt_at: time(0),
    }
    .into()
}

fn attempt(number: u32, at: i64, status_code: Option<u16>) -> RecordWebhookAttempt {
    RecordWebhookAttempt {
        attempt: number,
        at: time(at),
        status_code,
        response_body_excerpt: "ok".to_owned(),
        latency_ms: 42,
        error: None,
        retry_after_seconds: None,
    }
}

fn recorded(number: u32, at: i64, status_code: Option<u16>) -> WebhookDeliveryEvent {
    WebhookAttemptRecorded {
        attempt: number,
        attempted_at: time(at),
        status_code,
        response_body_excerpt: "ok".to_owned(),
        latency_ms: 42,
        error: None,
        retry_after_seconds: None,
    }
    .into()
}

fn retry_scheduled(at: i64) -> WebhookDeliveryEvent {
    WebhookRetryScheduled {
        next_attempt_at: time(at),
    }
    .into()
}

fn delivery_failed(reason: &str, at: i64) -> WebhookDeliveryEvent {
    WebhookDeliveryFailed {
        reason: reason.to_owned(),
        failed_at: time(at),
    }
    .into()
}

/// Four failed attempts on the production schedule: 0, +60, +300, +1800.
fn four_failures() -> Vec<WebhookDeliveryEvent> {
    vec![
        scheduled(),
        recorded(1, 0, Some(500)),
        retry_scheduled(60),
        recorded(2, 60, Some(500)),
        retry_scheduled(360),
        recorded(3, 360, Some(500)),
        retry_scheduled(2_160),
        recorded(4, 2_160, Some(500)),
        retry_scheduled(9_360),
    ]
}

// ---- ScheduleWebhookDelivery -----------------------------------------------

#[test]
fn schedule_delivery() {
    let delivery = given::<WebhookDeliveryAggregate>([])
        .when(schedule().into())
        .then([scheduled()])
        .unwrap();
    assert_eq!(delivery.status, WebhookDeliveryStatus::Pending);
    assert_eq!(delivery.attempts, 0);
    assert_eq!(delivery.next_attempt_at, Some(time(0)));
    assert_eq!(delivery.max_attempts(), 5);
    assert!(delivery.is_due(time(0)));
    assert_eq!(delivery.body, BODY);
}

#[test]
fn schedule_a_test_event_with_a_delayed_first_attempt() {
    let command = ScheduleWebhookDelivery {
        event: WEBHOOK_TEST_EVENT.to_owned(),
        retry_intervals_seconds: vec![5, 10],
        ..schedule()
    };
    let WebhookDeliveryEvent::WebhookDeliveryScheduled(mut expected) = scheduled() else {
        unreachable!()
    };
    expected.event = WEBHOOK_TEST_EVENT.to_owned();
    expected.retry_intervals_seconds = vec![5, 10];
    expected.next_attempt_at = time(5);
    let delivery = given::<WebhookDeliveryAggregate>([])
        .when(command.into())
        .then([expected.into()])
        .unwrap();
    assert!(!delivery.is_due(time(4)));
    assert!(delivery.is_due(time(5)));
}

#[test]
fn schedule_rejections() {
    given::<WebhookDeliveryAggregate>([scheduled()])
        .when(schedule().into())
        .then_error(DomainError::WebhookDeliveryAlreadyScheduled);
    given::<WebhookDeliveryAggregate>([])
        .when(
            ScheduleWebhookDelivery {
                event: "payment.refunded".to_owned(),
                ..schedule()
            }
            .into(),
        )
        .then_error(DomainError::invalid(
            "event",
            "event must be a webhook event name",
        ));
    given::<WebhookDeliveryAggregate>([])
        .when(
            ScheduleWebhookDelivery {
                url: "not a url".to_owned(),
                ..schedule()
            }
            .into(),
        )
        .then_error(DomainError::invalid(
            "url",
            "url must be an absolute http or https URL",
        ));
    let body_error = DomainError::invalid("body", "body must be between 1 byte and 1 MiB");
    given::<WebhookDeliveryAggregate>([])
        .when(
            ScheduleWebhookDelivery {
                body: String::new(),
                ..schedule()
            }
            .into(),
        )
        .then_error(body_error.clone());
    given::<WebhookDeliveryAggregate>([])
        .when(
            ScheduleWebhookDelivery {
                body: "x".repeat((1 << 20) + 1),
                ..schedule()
            }
            .into(),
        )
        .then_error(body_error);
    for intervals in [vec![], vec![0; 33], vec![0, 604_801]] {
        let error = given::<WebhookDeliveryAggregate>([])
            .when(
                ScheduleWebhookDelivery {
                    retry_intervals_seconds: intervals,
                    ..schedule()
                }
                .into(),
            )
            .then_error_code("BAD_REQUEST_ERROR");
        assert_eq!(error.field(), Some("retry_intervals_seconds"));
    }
}

// ---- RecordWebhookAttempt --------------------------------------------------

#[test]
fn a_2xx_delivers() {
    for status in [200, 201, 204, 299] {
        let delivery = given::<WebhookDeliveryAggregate>([scheduled()])
            .when(attempt(1, 1, Some(status)).into())
            .then([
                recorded(1, 1, Some(status)),
                WebhookDelivered {
                    delivered_at: time(1),
                }
                .into(),
            ])
            .unwrap();
        assert_eq!(delivery.status, WebhookDeliveryStatus::Success);
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.last_status_code, Some(status));
        assert_eq!(delivery.delivered_at, Some(time(1)));
        assert_eq!(delivery.next_attempt_at, None);
        assert!(!delivery.is_due(time(100)));
    }
}

#[test]
fn a_failure_schedules_the_next_interval() {
    // 5xx, 4xx, 3xx (redirects count as failures), 1xx and no response at all.
    for status in [Some(500), Some(404), Some(301), Some(302), Some(100), None] {
        let delivery = given::<WebhookDeliveryAggregate>([scheduled()])
            .when(attempt(1, 1, status).into())
            .then([recorded(1, 1, status), retry_scheduled(61)])
            .unwrap();
        assert_eq!(delivery.status, WebhookDeliveryStatus::Pending);
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.next_attempt_at, Some(time(61)));
        assert_eq!(delivery.last_attempt_at, Some(time(1)));
    }
}

#[test]
fn the_schedule_follows_the_intervals_then_fails() {
    let delivery = crate::replay::<WebhookDeliveryAggregate>(&four_failures()).unwrap();
    assert_eq!(delivery.attempts, 4);
    assert_eq!(delivery.next_attempt_at, Some(time(9_360)));
    let delivery = given::<WebhookDeliveryAggregate>(four_failures())
        .when(attempt(5, 9_360, Some(503)).into())
        .then([
            recorded(5, 9_360, Some(503)),
            delivery_failed(FAILURE_REASON_EXHAUSTED, 9_360),
        ])
        .unwrap();
    assert_eq!(delivery.status, WebhookDeliveryStatus::Failed);
    assert_eq!(delivery.failure_reason.as_deref(), Some("exhausted"));
    assert_eq!(delivery.next_attempt_at, None);
}

#[test]
fn the_last_attempt_can_still_succeed() {
    given::<WebhookDeliveryAggregate>(four_failures())
        .when(attempt(5, 9_360, Some(200)).into())
        .then([
            recorded(5, 9_360, Some(200)),
            WebhookDelivered {
                delivered_at: time(9_360),
            }
            .into(),
        ]);
}

#[test]
fn gone_fails_at_once() {
    let delivery = given::<WebhookDeliveryAggregate>([scheduled()])
        .when(attempt(1, 1, Some(410)).into())
        .then([
            recorded(1, 1, Some(410)),
            delivery_failed(FAILURE_REASON_GONE, 1),
        ])
        .unwrap();
    assert_eq!(delivery.failure_reason.as_deref(), Some("gone"));
}

#[test]
fn retry_after_is_honoured_and_capped() {
    let with_retry_after = |seconds| RecordWebhookAttempt {
        retry_after_seconds: Some(seconds),
        ..attempt(1, 0, Some(429))
    };
    let recorded_with = |seconds| {
        let WebhookDeliveryEvent::WebhookAttemptRecorded(mut event) = recorded(1, 0, Some(429))
        else {
            unreachable!()
        };
        event.retry_after_seconds = Some(seconds);
        WebhookDeliveryEvent::from(event)
    };
    // Longer than the interval (60 s): wait for Retry-After.
    given::<WebhookDeliveryAggregate>([scheduled()])
        .when(with_retry_after(600).into())
        .then([recorded_with(600), retry_scheduled(600)]);
    // Shorter than the interval: the interval wins.
    given::<WebhookDeliveryAggregate>([scheduled()])
        .when(with_retry_after(10).into())
        .then([recorded_with(10), retry_scheduled(60)]);
    // Capped at one hour.
    given::<WebhookDeliveryAggregate>([scheduled()])
        .when(with_retry_after(86_400).into())
        .then([recorded_with(86_400), retry_scheduled(3_600)]);
}

#[test]
fn response_excerpt_and_error_are_truncated_on_a_char_boundary() {
    let long = format!("a{}", "é".repeat(600)); // 1 + 1200 bytes
    let command = RecordWebhookAttempt {
        response_body_excerpt: long.clone(),
        error: Some(long.clone()),
        ..attempt(1, 1, Some(500))
    };
    let state = crate::replay::<WebhookDeliveryAggregate>(&[scheduled()]);
    let (events, _) = crate::execute::<WebhookDeliveryAggregate>(&state, command.into()).unwrap();
    let WebhookDeliveryEvent::WebhookAttemptRecorded(recorded) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(recorded.response_body_excerpt.len(), 1_023);
    assert!(long.starts_with(&recorded.response_body_excerpt));
    assert_eq!(
        recorded.error.as_deref(),
        Some(recorded.response_body_excerpt.as_str())
    );
}

#[test]
fn record_attempt_rejections() {
    given::<WebhookDeliveryAggregate>([])
        .when(attempt(1, 1, Some(200)).into())
        .then_error(DomainError::WebhookDeliveryNotFound);
    for number in [0, 2, 7] {
        given::<WebhookDeliveryAggregate>([scheduled()])
            .when(attempt(number, 1, Some(200)).into())
            .then_error(DomainError::UnexpectedWebhookAttempt {
                expected: 1,
                actual: number,
            });
    }
    // A duplicate report of an attempt already recorded.
    given::<WebhookDeliveryAggregate>([
        scheduled(),
        recorded(1, 0, Some(500)),
        retry_scheduled(60),
    ])
    .when(attempt(1, 61, Some(500)).into())
    .then_error(DomainError::UnexpectedWebhookAttempt {
        expected: 2,
        actual: 1,
    });
    let delivered = [
        scheduled(),
        recorded(1, 0, Some(200)),
        WebhookDelivered {
            delivered_at: time(0),
        }
        .into(),
    ];
    given::<WebhookDeliveryAggregate>(delivered)
        .when(attempt(2, 1, Some(200)).into())
        .then_error(DomainError::WebhookDeliveryNotPending);
    let gone = [
        scheduled(),
        recorded(1, 0, Some(410)),
        delivery_failed("gone", 0),
    ];
    given::<WebhookDeliveryAggregate>(gone)
        .when(attempt(2, 1, Some(200)).into())
        .then_error(DomainError::WebhookDeliveryNotPending);
    for status in [99, 600] {
        given::<WebhookDeliveryAggregate>([scheduled()])
            .when(attempt(1, 1, Some(status)).into())
            .then_error(DomainError::invalid(
                "status_code",
                "status_code must be between 100 and 599",
            ));
    }
}

// ---- RetryWebhookDelivery ----------------------------------------------------

fn manual_retry(at: i64) -> WebhookCommand {
    RetryWebhookDelivery { at: time(at) }.into()
}

fn retry_requested(at: i64) -> WebhookDeliveryEvent {
    WebhookRetryRequested {
        requested_at: time(at),
        next_attempt_at: time(at),
    }
    .into()
}

#[test]
fn manual_retry_resets_a_failed_delivery() {
    let mut history = four_failures();
    history.extend([
        recorded(5, 9_360, Some(503)),
        delivery_failed(FAILURE_REASON_EXHAUSTED, 9_360),
    ]);
    let delivery = given::<WebhookDeliveryAggregate>(history.clone())
        .when(manual_retry(20_000))
        .then([retry_requested(20_000)])
        .unwrap();
    assert_eq!(delivery.status, WebhookDeliveryStatus::Pending);
    assert_eq!(delivery.attempts, 0);
    assert_eq!(delivery.next_attempt_at, Some(time(20_000)));
    assert_eq!(delivery.failure_reason, None);
    assert_eq!(delivery.last_status_code, Some(503));
    // The counter restarts at 1 and the schedule from its start.
    history.push(retry_requested(20_000));
    given::<WebhookDeliveryAggregate>(history)
        .when(attempt(1, 20_000, Some(500)).into())
        .then([recorded(1, 20_000, Some(500)), retry_scheduled(20_060)]);
}

#[test]
fn manual_retry_of_a_delivered_or_pending_delivery_sends_again() {
    let delivered = [
        scheduled(),
        recorded(1, 0, Some(200)),
        WebhookDelivered {
            delivered_at: time(0),
        }
        .into(),
    ];
    let delivery = given::<WebhookDeliveryAggregate>(delivered)
        .when(manual_retry(50))
        .then([retry_requested(50)])
        .unwrap();
    assert_eq!(delivery.status, WebhookDeliveryStatus::Pending);
    assert_eq!(delivery.delivered_at, None);
    given::<WebhookDeliveryAggregate>([
        scheduled(),
        recorded(1, 0, Some(500)),
        retry_scheduled(60),
    ])
    .when(manual_retry(30))
    .then([retry_requested(30)]);
}

#[test]
fn manual_retry_rejects_an_unknown_delivery() {
    given::<WebhookDeliveryAggregate>([])
        .when(manual_retry(1))
        .then_error(DomainError::WebhookDeliveryNotFound);
}

#[test]
fn events_before_scheduling_are_ignored() {
    assert_eq!(
        crate::replay::<WebhookDeliveryAggregate>(&[recorded(1, 0, Some(200)), retry_requested(1)]),
        None
    );
}
