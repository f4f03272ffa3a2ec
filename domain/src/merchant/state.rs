use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::command::REDACTED;
use crate::id::MerchantId;
use crate::webhook::WEBHOOK_TEST_EVENT;

/// `None` until the merchant is registered.
pub type MerchantState = Option<Merchant>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MerchantStatus {
    Active,
    Suspended,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub merchant_id: MerchantId,
    pub name: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub api_key: String,
    pub api_secret_hash: String,
    pub status: MerchantStatus,
    /// Set while suspended.
    pub suspension_reason: Option<String>,
    pub fee_bps: u32,
    pub webhook: WebhookSettings,
    /// Origins whose pages may embed the checkout; empty until set.
    #[serde(default)]
    pub checkout_origins: Vec<String>,
    pub registered_at: DateTime<Utc>,
}

impl Merchant {
    pub fn is_active(&self) -> bool {
        self.status == MerchantStatus::Active
    }
}

/// The merchant's webhook endpoint and signing secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// `None`: no endpoint configured, no deliveries.
    pub url: Option<String>,
    /// Subscribed events; empty means all.
    pub events: Vec<String>,
    /// False after the endpoint was disabled (e.g. `410 Gone`) until it is configured again.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The current signing secret.
    pub secret: String,
    /// The secret before the last regeneration, still signing until `previous_secret_valid_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
}

impl WebhookSettings {
    /// The URL to deliver `event` to, if any: the endpoint must be configured
    /// and enabled, and subscribed to `event` (an empty list subscribes to all;
    /// the `webhook.test` event goes to any active endpoint).
    pub fn endpoint_for(&self, event: &str) -> Option<&str> {
        let url = self.url.as_deref().filter(|_| self.enabled)?;
        let subscribed = self.events.is_empty()
            || event == WEBHOOK_TEST_EVENT
            || self.events.iter().any(|name| name == event);
        subscribed.then_some(url)
    }

    /// The secrets to sign with at `now`: the current one, then the previous
    /// one while `now` is before the end of its overlap window.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(valid_until)) =
            (&self.previous_secret, self.previous_secret_valid_until)
        {
            if now < valid_until {
                secrets.push(previous);
            }
        }
        secrets
    }
}

impl fmt::Debug for Merchant {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Merchant")
            .field("merchant_id", &self.merchant_id)
            .field("name", &self.name)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| REDACTED),
            )
            .field("api_key", &self.api_key)
            .field("api_secret_hash", &REDACTED)
            .field("status", &self.status)
            .field("suspension_reason", &self.suspension_reason)
            .field("fee_bps", &self.fee_bps)
            .field("webhook", &self.webhook)
            .field("checkout_origins", &self.checkout_origins)
            .field("registered_at", &self.registered_at)
            .finish()
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .field("secret", &REDACTED)
            .field(
                "previous_secret",
                &self.previous_secret.as_ref().map(|_| REDACTED),
            )
            .field(
                "previous_secret_valid_until",
                &self.previous_secret_valid_until,
            )
            .finish()
    }
}
