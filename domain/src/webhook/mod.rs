//! Webhook deliveries: one aggregate per (event, endpoint) delivery, holding
//! the exact body to send, the retry schedule and every attempt's outcome.
//!
//! A delivery is `pending` until an attempt gets a 2xx (`success`), or the
//! schedule is exhausted or the endpoint answers `410 Gone` (`failed`). A
//! manual retry resets the attempt count and makes it `pending` again.

mod command;
mod decide;
mod event;
mod evolve;
mod state;
#[cfg(test)]
mod tests;

pub use command::{
    RecordWebhookAttempt, RetryWebhookDelivery, ScheduleWebhookDelivery, WebhookCommand,
};
pub use event::{
    WebhookAttemptRecorded, WebhookDelivered, WebhookDeliveryEvent, WebhookDeliveryFailed,
    WebhookDeliveryScheduled, WebhookRetryRequested, WebhookRetryScheduled,
};
pub use state::{WebhookDelivery, WebhookDeliveryState, WebhookDeliveryStatus};

use crate::aggregate::Aggregate;
use crate::error::DomainError;

/// The webhook events a merchant can subscribe to (contract list).
pub const WEBHOOK_EVENTS: [&str; 6] = [
    "payment.created",
    "payment.pending",
    "payment.success",
    "payment.failed",
    "refund.created",
    "refund.processed",
];

/// Sent by "test webhook"; goes to any active endpoint regardless of its event list.
pub const WEBHOOK_TEST_EVENT: &str = "webhook.test";

/// Production schedule: attempt 1 at once, then after 1 min, 5 min, 30 min, 2 h.
pub const RETRY_INTERVALS_SECONDS: [u32; 5] = [0, 60, 300, 1_800, 7_200];

/// `WEBHOOK_RETRY_INTERVALS_TEST=true` schedule: 0, 5, 10, 15, 20 s.
pub const TEST_RETRY_INTERVALS_SECONDS: [u32; 5] = [0, 5, 10, 15, 20];

/// A `Retry-After` longer than this is capped to it.
pub const RETRY_AFTER_MAX_SECONDS: u32 = 3_600;

/// Recorded response bodies are cut to this many bytes (on a char boundary).
pub const RESPONSE_EXCERPT_MAX_BYTES: usize = 1_024;

/// Failure reason when the endpoint answered `410 Gone`.
pub const FAILURE_REASON_GONE: &str = "gone";

/// Failure reason when the last scheduled attempt failed.
pub const FAILURE_REASON_EXHAUSTED: &str = "exhausted";

/// True for the names in [`WEBHOOK_EVENTS`].
pub fn is_subscribable_event(name: &str) -> bool {
    WEBHOOK_EVENTS.contains(&name)
}

/// The webhook delivery aggregate (stream `webhook-whd_…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookDeliveryAggregate;

impl Aggregate for WebhookDeliveryAggregate {
    const CATEGORY: &'static str = "webhook";
    type State = WebhookDeliveryState;
    type Command = WebhookCommand;
    type Event = WebhookDeliveryEvent;

    fn decide(
        state: &WebhookDeliveryState,
        command: WebhookCommand,
    ) -> Result<Vec<WebhookDeliveryEvent>, DomainError> {
        decide::decide(state, command)
    }

    fn evolve(state: WebhookDeliveryState, event: &WebhookDeliveryEvent) -> WebhookDeliveryState {
        evolve::evolve(state, event)
    }
}
