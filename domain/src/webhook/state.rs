use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{MerchantId, WebhookDeliveryId};

/// `None` until the delivery is scheduled.
pub type WebhookDeliveryState = Option<WebhookDelivery>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookDeliveryStatus {
    Pending,
    Success,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub delivery_id: WebhookDeliveryId,
    pub merchant_id: MerchantId,
    pub event: String,
    pub source_event_id: Uuid,
    pub url: String,
    pub body: String,
    pub retry_intervals_seconds: Vec<u32>,
    pub status: WebhookDeliveryStatus,
    /// Attempts since scheduling or the last manual retry.
    pub attempts: u32,
    /// When the next attempt is due; `None` while an outcome is being decided
    /// or once the delivery is final.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// `"gone"` or `"exhausted"` when failed.
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookDelivery {
    /// Maximum attempts in one round (the schedule's length).
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.retry_intervals_seconds.len()).unwrap_or(u32::MAX)
    }

    /// True when a pending attempt is due at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == WebhookDeliveryStatus::Pending
            && self.next_attempt_at.is_some_and(|due| due <= now)
    }
}
