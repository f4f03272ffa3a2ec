use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::domain_events;
use crate::id::{MerchantId, WebhookDeliveryId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeliveryScheduled {
    pub delivery_id: WebhookDeliveryId,
    pub merchant_id: MerchantId,
    pub event: String,
    pub source_event_id: Uuid,
    pub url: String,
    pub body: String,
    pub retry_intervals_seconds: Vec<u32>,
    pub scheduled_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttemptRecorded {
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub response_body_excerpt: String,
    pub latency_ms: u32,
    pub error: Option<String>,
    pub retry_after_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivered {
    pub delivered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRetryScheduled {
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeliveryFailed {
    /// `"gone"` (410) or `"exhausted"` (no attempts left).
    pub reason: String,
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRetryRequested {
    pub requested_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

domain_events! {
    /// Everything that can happen to one webhook delivery.
    pub enum WebhookDeliveryEvent {
        WebhookDeliveryScheduled => [],
        WebhookAttemptRecorded => [],
        WebhookDelivered => [],
        WebhookRetryScheduled => [],
        WebhookDeliveryFailed => [],
        WebhookRetryRequested => [],
    }
}
