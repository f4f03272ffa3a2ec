use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::id::{MerchantId, WebhookDeliveryId};

/// Create a delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleWebhookDelivery {
    pub delivery_id: WebhookDeliveryId,
    pub merchant_id: MerchantId,
    /// Webhook event name, e.g. `payment.success` or `webhook.test`.
    pub event: String,
    /// The stored event this delivery announces (for de-duplication).
    pub source_event_id: Uuid,
    pub url: String,
    /// The exact JSON body; every attempt sends (and signs) these bytes.
    pub body: String,
    /// Delay before each attempt, counted from the previous attempt (the first
    /// from scheduling); its length is the maximum number of attempts.
    pub retry_intervals_seconds: Vec<u32>,
    pub at: DateTime<Utc>,
}

/// Record the outcome of attempt number `attempt` (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWebhookAttempt {
    /// Must be the attempts made so far + 1.
    pub attempt: u32,
    pub at: DateTime<Utc>,
    /// `None` when no response arrived (timeout, connection error).
    pub status_code: Option<u16>,
    /// Cut to 1024 bytes by `decide`.
    pub response_body_excerpt: String,
    pub latency_ms: u32,
    /// Transport error, if any (cut to 1024 bytes by `decide`).
    pub error: Option<String>,
    /// The response's `Retry-After`, in seconds, if it had one.
    pub retry_after_seconds: Option<u32>,
}

/// Manual retry: reset the attempts and send again now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryWebhookDelivery {
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookCommand {
    ScheduleWebhookDelivery(ScheduleWebhookDelivery),
    RecordWebhookAttempt(RecordWebhookAttempt),
    RetryWebhookDelivery(RetryWebhookDelivery),
}

impl From<ScheduleWebhookDelivery> for WebhookCommand {
    fn from(command: ScheduleWebhookDelivery) -> Self {
        Self::ScheduleWebhookDelivery(command)
    }
}

impl From<RecordWebhookAttempt> for WebhookCommand {
    fn from(command: RecordWebhookAttempt) -> Self {
        Self::RecordWebhookAttempt(command)
    }
}

impl From<RetryWebhookDelivery> for WebhookCommand {
    fn from(command: RetryWebhookDelivery) -> Self {
        Self::RetryWebhookDelivery(command)
    }
}
