use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::command::REDACTED;
use crate::event::domain_events;
use crate::id::MerchantId;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantRegistered {
    pub merchant_id: MerchantId,
    pub name: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub api_key: String,
    pub api_secret_hash: String,
    pub webhook_secret: String,
    pub fee_bps: u32,
    pub registered_at: DateTime<Utc>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantApiKeysRotated {
    pub api_key: String,
    pub api_secret_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantSuspended {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantReactivated {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointConfigured {
    pub url: Option<String>,
    /// Subscribed event names, without duplicates; empty means all.
    pub events: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecretRegenerated {
    pub secret: String,
    pub previous_secret: String,
    pub previous_valid_until: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointDisabled {
    pub reason: String,
}

/// The origins whose pages may embed the checkout, normalised
/// (`https://shop.example`), without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutOriginsSet {
    pub origins: Vec<String>,
}

domain_events! {
    /// Everything that can happen to a merchant.
    pub enum MerchantEvent {
        MerchantRegistered => [],
        MerchantApiKeysRotated => [],
        MerchantSuspended => [],
        MerchantReactivated => [],
        WebhookEndpointConfigured => [],
        WebhookSecretRegenerated => [],
        WebhookEndpointDisabled => [],
        CheckoutOriginsSet => [],
    }
}

impl fmt::Debug for MerchantRegistered {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("MerchantRegistered")
            .field("merchant_id", &self.merchant_id)
            .field("name", &self.name)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| REDACTED),
            )
            .field("api_key", &self.api_key)
            .field("api_secret_hash", &REDACTED)
            .field("webhook_secret", &REDACTED)
            .field("fee_bps", &self.fee_bps)
            .field("registered_at", &self.registered_at)
            .finish()
    }
}

impl fmt::Debug for MerchantApiKeysRotated {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("MerchantApiKeysRotated")
            .field("api_key", &self.api_key)
            .field("api_secret_hash", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for WebhookSecretRegenerated {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebhookSecretRegenerated")
            .field("secret", &REDACTED)
            .field("previous_secret", &REDACTED)
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}
