use super::event::MerchantEvent;
use super::state::{Merchant, MerchantState, MerchantStatus, WebhookSettings};

pub(super) fn evolve(state: MerchantState, event: &MerchantEvent) -> MerchantState {
    if let MerchantEvent::MerchantRegistered(registered) = event {
        return Some(Merchant {
            merchant_id: registered.merchant_id,
            name: registered.name.clone(),
            email: registered.email.clone(),
            password_hash: registered.password_hash.clone(),
            api_key: registered.api_key.clone(),
            api_secret_hash: registered.api_secret_hash.clone(),
            status: MerchantStatus::Active,
            suspension_reason: None,
            fee_bps: registered.fee_bps,
            webhook: WebhookSettings {
                url: None,
                events: Vec::new(),
                enabled: false,
                disabled_reason: None,
                secret: registered.webhook_secret.clone(),
                previous_secret: None,
                previous_secret_valid_until: None,
            },
            checkout_origins: Vec::new(),
            registered_at: registered.registered_at,
        });
    }
    // Anything before registration has nothing to apply to.
    let mut merchant = state?;
    match event {
        MerchantEvent::MerchantRegistered(_) => {}
        MerchantEvent::MerchantApiKeysRotated(rotated) => {
            merchant.api_key = rotated.api_key.clone();
            merchant.api_secret_hash = rotated.api_secret_hash.clone();
        }
        MerchantEvent::MerchantSuspended(suspended) => {
            merchant.status = MerchantStatus::Suspended;
            merchant.suspension_reason = Some(suspended.reason.clone());
        }
        MerchantEvent::MerchantReactivated(_) => {
            merchant.status = MerchantStatus::Active;
            merchant.suspension_reason = None;
        }
        MerchantEvent::WebhookEndpointConfigured(configured) => {
            merchant.webhook.url = configured.url.clone();
            merchant.webhook.events = configured.events.clone();
            merchant.webhook.enabled = configured.url.is_some();
            merchant.webhook.disabled_reason = None;
        }
        MerchantEvent::WebhookSecretRegenerated(regenerated) => {
            merchant.webhook.secret = regenerated.secret.clone();
            merchant.webhook.previous_secret = Some(regenerated.previous_secret.clone());
            merchant.webhook.previous_secret_valid_until = Some(regenerated.previous_valid_until);
        }
        MerchantEvent::WebhookEndpointDisabled(disabled) => {
            merchant.webhook.enabled = false;
            merchant.webhook.disabled_reason = Some(disabled.reason.clone());
        }
        MerchantEvent::CheckoutOriginsSet(set) => {
            merchant.checkout_origins = set.origins.clone();
        }
    }
    Some(merchant)
}
