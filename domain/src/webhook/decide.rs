use chrono::{DateTime, TimeDelta, Utc};

use super::command::{
    RecordWebhookAttempt, RetryWebhookDelivery, ScheduleWebhookDelivery, WebhookCommand,
};
use super::event::{
    WebhookAttemptRecorded, WebhookDelivered, WebhookDeliveryEvent, WebhookDeliveryFailed,
    WebhookDeliveryScheduled, WebhookRetryRequested, WebhookRetryScheduled,
};
use super::evolve::evolve;
use super::state::{WebhookDelivery, WebhookDeliveryState, WebhookDeliveryStatus};
use super::{
    is_subscribable_event, FAILURE_REASON_EXHAUSTED, FAILURE_REASON_GONE,
    RESPONSE_EXCERPT_MAX_BYTES, RETRY_AFTER_MAX_SECONDS, WEBHOOK_TEST_EVENT,
};
use crate::error::DomainError;
use crate::validation::{truncate_to_char_boundary, validate_webhook_url};

/// Longest schedule accepted (attempts per round).
const RETRY_INTERVALS_MAX_LEN: usize = 32;
/// Longest single interval: one week.
const RETRY_INTERVAL_MAX_SECONDS: u32 = 7 * 24 * 3_600;
/// Largest body accepted: 1 MiB.
const BODY_MAX_BYTES: usize = 1 << 20;
/// `410 Gone`: the endpoint is gone for good, stop retrying.
const STATUS_GONE: u16 = 410;

pub(super) fn decide(
    state: &WebhookDeliveryState,
    command: WebhookCommand,
) -> Result<Vec<WebhookDeliveryEvent>, DomainError> {
    match command {
        WebhookCommand::ScheduleWebhookDelivery(command) => schedule(state, command),
        WebhookCommand::RecordWebhookAttempt(command) => record_attempt(existing(state)?, command),
        WebhookCommand::RetryWebhookDelivery(command) => retry(existing(state)?, command),
    }
}

fn existing(state: &WebhookDeliveryState) -> Result<&WebhookDelivery, DomainError> {
    state.as_ref().ok_or(DomainError::WebhookDeliveryNotFound)
}

fn after_seconds(at: DateTime<Utc>, seconds: u32) -> DateTime<Utc> {
    at.checked_add_signed(TimeDelta::seconds(i64::from(seconds)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn schedule(
    state: &WebhookDeliveryState,
    command: ScheduleWebhookDelivery,
) -> Result<Vec<WebhookDeliveryEvent>, DomainError> {
    if state.is_some() {
        return Err(DomainError::WebhookDeliveryAlreadyScheduled);
    }
    if !is_subscribable_event(&command.event) && command.event != WEBHOOK_TEST_EVENT {
        return Err(DomainError::invalid(
            "event",
            "event must be a webhook event name",
        ));
    }
    validate_webhook_url(&command.url)?;
    if command.body.is_empty() || command.body.len() > BODY_MAX_BYTES {
        return Err(DomainError::invalid(
            "body",
            "body must be between 1 byte and 1 MiB",
        ));
    }
    let intervals = &command.retry_intervals_seconds;
    if intervals.is_empty()
        || intervals.len() > RETRY_INTERVALS_MAX_LEN
        || intervals
            .iter()
            .any(|&seconds| seconds > RETRY_INTERVAL_MAX_SECONDS)
    {
        return Err(DomainError::invalid(
            "retry_intervals_seconds",
            format!(
                "retry_intervals_seconds must have 1 to {RETRY_INTERVALS_MAX_LEN} entries of at most \
                 {RETRY_INTERVAL_MAX_SECONDS} seconds"
            ),
        ));
    }
    let next_attempt_at = after_seconds(command.at, intervals[0]);
    Ok(vec![WebhookDeliveryScheduled {
        delivery_id: command.delivery_id,
        merchant_id: command.merchant_id,
        event: command.event,
        source_event_id: command.source_event_id,
        url: command.url,
        body: command.body,
        retry_intervals_seconds: command.retry_intervals_seconds,
        scheduled_at: command.at,
        next_attempt_at,
    }
    .into()])
}

fn record_attempt(
    delivery: &WebhookDelivery,
    command: RecordWebhookAttempt,
) -> Result<Vec<WebhookDeliveryEvent>, DomainError> {
    if delivery.status != WebhookDeliveryStatus::Pending {
        return Err(DomainError::WebhookDeliveryNotPending);
    }
    let expected = delivery.attempts.saturating_add(1);
    if command.attempt != expected {
        return Err(DomainError::UnexpectedWebhookAttempt {
            expected,
            actual: command.attempt,
        });
    }
    if command
        .status_code
        .is_some_and(|code| !(100..=599).contains(&code))
    {
        return Err(DomainError::invalid(
            "status_code",
            "status_code must be between 100 and 599",
        ));
    }
    let recorded: WebhookDeliveryEvent = WebhookAttemptRecorded {
        attempt: command.attempt,
        attempted_at: command.at,
        status_code: command.status_code,
        response_body_excerpt: truncate_to_char_boundary(
            &command.response_body_excerpt,
            RESPONSE_EXCERPT_MAX_BYTES,
        )
        .to_owned(),
        latency_ms: command.latency_ms,
        error: command
            .error
            .as_deref()
            .map(|error| truncate_to_char_boundary(error, RESPONSE_EXCERPT_MAX_BYTES).to_owned()),
        retry_after_seconds: command.retry_after_seconds,
    }
    .into();
    // The outcome is decided on the state *after* the attempt is recorded.
    let Some(after) = evolve(Some(delivery.clone()), &recorded) else {
        return Err(DomainError::WebhookDeliveryNotFound);
    };
    let outcome = outcome(&after, &command);
    Ok(vec![recorded, outcome])
}

/// Delivered on 2xx; failed on 410 or when no attempt is left; otherwise the
/// next attempt after the schedule's interval, or after `Retry-After` (capped
/// at one hour) when that is longer.
fn outcome(after: &WebhookDelivery, command: &RecordWebhookAttempt) -> WebhookDeliveryEvent {
    match command.status_code {
        Some(200..=299) => {
            return WebhookDelivered {
                delivered_at: command.at,
            }
            .into()
        }
        Some(STATUS_GONE) => {
            return WebhookDeliveryFailed {
                reason: FAILURE_REASON_GONE.to_owned(),
                failed_at: command.at,
            }
            .into()
        }
        _ => {}
    }
    let next_interval = usize::try_from(after.attempts)
        .ok()
        .and_then(|index| after.retry_intervals_seconds.get(index).copied());
    match next_interval {
        None => WebhookDeliveryFailed {
            reason: FAILURE_REASON_EXHAUSTED.to_owned(),
            failed_at: command.at,
        }
        .into(),
        Some(interval) => {
            let retry_after = command
                .retry_after_seconds
                .unwrap_or(0)
                .min(RETRY_AFTER_MAX_SECONDS);
            WebhookRetryScheduled {
                next_attempt_at: after_seconds(command.at, interval.max(retry_after)),
            }
            .into()
        }
    }
}

fn retry(
    _delivery: &WebhookDelivery,
    command: RetryWebhookDelivery,
) -> Result<Vec<WebhookDeliveryEvent>, DomainError> {
    // Allowed in any status: a failed delivery is re-sent, a delivered one is
    // sent again (receivers de-duplicate by event id), a pending one restarts
    // its schedule now.
    Ok(vec![WebhookRetryRequested {
        requested_at: command.at,
        next_attempt_at: command.at,
    }
    .into()])
}
