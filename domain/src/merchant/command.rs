use std::fmt;

use chrono::{DateTime, Utc};

use crate::id::MerchantId;

/// Register a new merchant. Credentials arrive already generated and hashed
/// (the domain has no randomness and never sees the API secret in clear).
#[derive(Clone, PartialEq, Eq)]
pub struct RegisterMerchant {
    pub merchant_id: MerchantId,
    pub name: String,
    pub email: String,
    /// Dashboard login, if the merchant gets one.
    pub password_hash: Option<String>,
    pub api_key: String,
    pub api_secret_hash: String,
    /// The webhook signing secret string (e.g. `whsec_test_abc123`).
    pub webhook_secret: String,
    /// Fee in basis points of each capture (0–10 000).
    pub fee_bps: u32,
    pub at: DateTime<Utc>,
}

/// Replace the API key and secret (staff action).
#[derive(Clone, PartialEq, Eq)]
pub struct RotateApiKeys {
    pub api_key: String,
    pub api_secret_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspendMerchant {
    /// Why (at most 255 characters; may be empty).
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactivateMerchant;

/// Set or clear the webhook endpoint. `url: None` removes it (no deliveries);
/// `events` empty means every event. Re-configuring re-enables an endpoint
/// that was disabled after a `410 Gone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureWebhook {
    pub url: Option<String>,
    pub events: Vec<String>,
}

/// Make `secret` the signing secret; the current one keeps signing until
/// `previous_valid_until` (the overlap window).
#[derive(Clone, PartialEq, Eq)]
pub struct RegenerateWebhookSecret {
    pub secret: String,
    pub previous_valid_until: DateTime<Utc>,
}

/// Replace the origins whose pages may embed the checkout (and receive its
/// result). Empty: no page may; the direct checkout link still works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCheckoutOrigins {
    pub origins: Vec<String>,
}

/// Stop deliveries to the endpoint, e.g. after it answered `410 Gone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisableWebhookEndpoint {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantCommand {
    RegisterMerchant(RegisterMerchant),
    RotateApiKeys(RotateApiKeys),
    SuspendMerchant(SuspendMerchant),
    ReactivateMerchant(ReactivateMerchant),
    ConfigureWebhook(ConfigureWebhook),
    RegenerateWebhookSecret(RegenerateWebhookSecret),
    DisableWebhookEndpoint(DisableWebhookEndpoint),
    SetCheckoutOrigins(SetCheckoutOrigins),
}

macro_rules! into_command {
    ($($variant:ident),+) => {
        $(impl From<$variant> for MerchantCommand {
            fn from(command: $variant) -> Self {
                Self::$variant(command)
            }
        })+
    };
}
into_command!(
    RegisterMerchant,
    RotateApiKeys,
    SuspendMerchant,
    ReactivateMerchant,
    ConfigureWebhook,
    RegenerateWebhookSecret,
    DisableWebhookEndpoint,
    SetCheckoutOrigins
);

pub(crate) const REDACTED: &str = "<redacted>";

impl fmt::Debug for RegisterMerchant {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RegisterMerchant")
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
            .field("at", &self.at)
            .finish()
    }
}

impl fmt::Debug for RotateApiKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RotateApiKeys")
            .field("api_key", &self.api_key)
            .field("api_secret_hash", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for RegenerateWebhookSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RegenerateWebhookSecret")
            .field("secret", &REDACTED)
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}
