use super::event::WebhookDeliveryEvent;
use super::state::{WebhookDelivery, WebhookDeliveryState, WebhookDeliveryStatus};

pub(super) fn evolve(
    state: WebhookDeliveryState,
    event: &WebhookDeliveryEvent,
) -> WebhookDeliveryState {
    if let WebhookDeliveryEvent::WebhookDeliveryScheduled(scheduled) = event {
        return Some(WebhookDelivery {
            delivery_id: scheduled.delivery_id.clone(),
            merchant_id: scheduled.merchant_id,
            event: scheduled.event.clone(),
            source_event_id: scheduled.source_event_id,
            url: scheduled.url.clone(),
            body: scheduled.body.clone(),
            retry_intervals_seconds: scheduled.retry_intervals_seconds.clone(),
            status: WebhookDeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(scheduled.next_attempt_at),
            last_attempt_at: None,
            last_status_code: None,
            last_error: None,
            delivered_at: None,
            failure_reason: None,
            created_at: scheduled.scheduled_at,
            updated_at: scheduled.scheduled_at,
        });
    }
    let mut delivery = state?;
    match event {
        WebhookDeliveryEvent::WebhookDeliveryScheduled(_) => {}
        WebhookDeliveryEvent::WebhookAttemptRecorded(recorded) => {
            delivery.attempts = recorded.attempt;
            delivery.next_attempt_at = None;
            delivery.last_attempt_at = Some(recorded.attempted_at);
            delivery.last_status_code = recorded.status_code;
            delivery.last_error = recorded.error.clone();
            delivery.updated_at = recorded.attempted_at;
        }
        WebhookDeliveryEvent::WebhookDelivered(delivered) => {
            delivery.status = WebhookDeliveryStatus::Success;
            delivery.delivered_at = Some(delivered.delivered_at);
            delivery.next_attempt_at = None;
            delivery.updated_at = delivered.delivered_at;
        }
        WebhookDeliveryEvent::WebhookRetryScheduled(scheduled) => {
            delivery.next_attempt_at = Some(scheduled.next_attempt_at);
        }
        WebhookDeliveryEvent::WebhookDeliveryFailed(failed) => {
            delivery.status = WebhookDeliveryStatus::Failed;
            delivery.failure_reason = Some(failed.reason.clone());
            delivery.next_attempt_at = None;
            delivery.updated_at = failed.failed_at;
        }
        WebhookDeliveryEvent::WebhookRetryRequested(requested) => {
            delivery.status = WebhookDeliveryStatus::Pending;
            delivery.attempts = 0;
            delivery.next_attempt_at = Some(requested.next_attempt_at);
            delivery.delivered_at = None;
            delivery.failure_reason = None;
            delivery.updated_at = requested.requested_at;
        }
    }
    Some(delivery)
}
