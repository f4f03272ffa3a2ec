//! HTTP handlers, one module per resource.

pub mod health;
pub mod merchants;
pub mod metrics;
pub mod openapi;
pub mod orders;
pub mod payments;
pub mod sessions;
pub mod webhooks;

use paystream_domain::MerchantId;
use uuid::Uuid;

use paystream_store::EventMetadata;

/// Metadata of a command a merchant sent with its API credentials.
pub fn merchant_metadata(merchant: MerchantId) -> EventMetadata {
    actor_metadata(merchant, format!("merchant:{merchant}"))
}

/// Metadata of a command on behalf of `merchant`, by `actor`; each request is
/// its own correlation.
pub fn actor_metadata(merchant: MerchantId, actor: String) -> EventMetadata {
    EventMetadata {
        merchant_id: Some(Uuid::from(merchant)),
        causation_id: None,
        correlation_id: Some(Uuid::now_v7()),
        actor,
        idempotency: None,
    }
}
