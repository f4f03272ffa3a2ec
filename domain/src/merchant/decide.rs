use super::command::{
    ConfigureWebhook, DisableWebhookEndpoint, MerchantCommand, RegenerateWebhookSecret,
    RegisterMerchant, RotateApiKeys, SetCheckoutOrigins, SuspendMerchant,
};
use super::event::{
    CheckoutOriginsSet, MerchantApiKeysRotated, MerchantEvent, MerchantReactivated,
    MerchantRegistered, MerchantSuspended, WebhookEndpointConfigured, WebhookEndpointDisabled,
    WebhookSecretRegenerated,
};
use super::state::{Merchant, MerchantState, MerchantStatus};
use super::FEE_BPS_MAX;
use crate::error::DomainError;
use crate::validation::{
    at_most_chars, normalize_checkout_origins, required_text, validate_email, webhook_target,
};
use crate::webhook::is_subscribable_event;

const NAME_MAX_CHARS: usize = 255;
const REASON_MAX_CHARS: usize = 255;
const API_KEY_MAX_CHARS: usize = 255;
const HASH_MAX_CHARS: usize = 1024;
const SECRET_MAX_CHARS: usize = 255;

pub(super) fn decide(
    state: &MerchantState,
    command: MerchantCommand,
) -> Result<Vec<MerchantEvent>, DomainError> {
    match command {
        MerchantCommand::RegisterMerchant(command) => register(state, command),
        MerchantCommand::RotateApiKeys(command) => rotate_api_keys(existing(state)?, command),
        MerchantCommand::SuspendMerchant(command) => suspend(existing(state)?, command),
        MerchantCommand::ReactivateMerchant(_) => reactivate(existing(state)?),
        MerchantCommand::ConfigureWebhook(command) => configure_webhook(existing(state)?, command),
        MerchantCommand::RegenerateWebhookSecret(command) => {
            regenerate_secret(existing(state)?, command)
        }
        MerchantCommand::DisableWebhookEndpoint(command) => {
            disable_endpoint(existing(state)?, command)
        }
        MerchantCommand::SetCheckoutOrigins(command) => {
            set_checkout_origins(existing(state)?, command)
        }
    }
}

fn existing(state: &MerchantState) -> Result<&Merchant, DomainError> {
    state.as_ref().ok_or(DomainError::MerchantNotFound)
}

fn register(
    state: &MerchantState,
    command: RegisterMerchant,
) -> Result<Vec<MerchantEvent>, DomainError> {
    if state.is_some() {
        return Err(DomainError::MerchantAlreadyRegistered);
    }
    required_text("name", &command.name, NAME_MAX_CHARS)?;
    validate_email(&command.email)?;
    if let Some(password_hash) = &command.password_hash {
        required_text("password_hash", password_hash, HASH_MAX_CHARS)?;
    }
    required_text("api_key", &command.api_key, API_KEY_MAX_CHARS)?;
    required_text("api_secret_hash", &command.api_secret_hash, HASH_MAX_CHARS)?;
    required_text("webhook_secret", &command.webhook_secret, SECRET_MAX_CHARS)?;
    if command.fee_bps > FEE_BPS_MAX {
        return Err(DomainError::invalid(
            "fee_bps",
            format!("fee_bps must be at most {FEE_BPS_MAX}"),
        ));
    }
    Ok(vec![MerchantRegistered {
        merchant_id: command.merchant_id,
        name: command.name,
        email: command.email,
        password_hash: command.password_hash,
        api_key: command.api_key,
        api_secret_hash: command.api_secret_hash,
        webhook_secret: command.webhook_secret,
        fee_bps: command.fee_bps,
        registered_at: command.at,
    }
    .into()])
}

fn rotate_api_keys(
    merchant: &Merchant,
    command: RotateApiKeys,
) -> Result<Vec<MerchantEvent>, DomainError> {
    required_text("api_key", &command.api_key, API_KEY_MAX_CHARS)?;
    required_text("api_secret_hash", &command.api_secret_hash, HASH_MAX_CHARS)?;
    if command.api_key == merchant.api_key {
        return Err(DomainError::invalid(
            "api_key",
            "api_key must differ from the current key",
        ));
    }
    Ok(vec![MerchantApiKeysRotated {
        api_key: command.api_key,
        api_secret_hash: command.api_secret_hash,
    }
    .into()])
}

fn suspend(
    merchant: &Merchant,
    command: SuspendMerchant,
) -> Result<Vec<MerchantEvent>, DomainError> {
    if merchant.status == MerchantStatus::Suspended {
        return Err(DomainError::MerchantAlreadySuspended);
    }
    at_most_chars("reason", &command.reason, REASON_MAX_CHARS)?;
    Ok(vec![MerchantSuspended {
        reason: command.reason,
    }
    .into()])
}

fn reactivate(merchant: &Merchant) -> Result<Vec<MerchantEvent>, DomainError> {
    if merchant.status != MerchantStatus::Suspended {
        return Err(DomainError::MerchantNotSuspended);
    }
    Ok(vec![MerchantReactivated {}.into()])
}

fn configure_webhook(
    merchant: &Merchant,
    command: ConfigureWebhook,
) -> Result<Vec<MerchantEvent>, DomainError> {
    if let Some(url) = &command.url {
        // The syntax, and no host name an endpoint may never have (a final
        // dot, `.internal`, a single label other than localhost).
        webhook_target(url)?;
    }
    let mut events: Vec<String> = Vec::with_capacity(command.events.len());
    for name in command.events {
        if !is_subscribable_event(&name) {
            return Err(DomainError::invalid(
                "events",
                "events must be webhook event names: payment.created, payment.pending, payment.success, \
                 payment.failed, refund.created, refund.processed",
            ));
        }
        if !events.contains(&name) {
            events.push(name);
        }
    }
    let webhook = &merchant.webhook;
    let unchanged = webhook.url == command.url && webhook.events == events;
    // Saving the same settings again is a no-op, except that it re-enables an
    // endpoint that was disabled.
    if unchanged && (webhook.enabled || webhook.url.is_none()) {
        return Ok(Vec::new());
    }
    Ok(vec![WebhookEndpointConfigured {
        url: command.url,
        events,
    }
    .into()])
}

fn regenerate_secret(
    merchant: &Merchant,
    command: RegenerateWebhookSecret,
) -> Result<Vec<MerchantEvent>, DomainError> {
    required_text("secret", &command.secret, SECRET_MAX_CHARS)?;
    if command.secret == merchant.webhook.secret {
        return Err(DomainError::invalid(
            "secret",
            "secret must differ from the current secret",
        ));
    }
    Ok(vec![WebhookSecretRegenerated {
        secret: command.secret,
        previous_secret: merchant.webhook.secret.clone(),
        previous_valid_until: command.previous_valid_until,
    }
    .into()])
}

fn disable_endpoint(
    merchant: &Merchant,
    command: DisableWebhookEndpoint,
) -> Result<Vec<MerchantEvent>, DomainError> {
    at_most_chars("reason", &command.reason, REASON_MAX_CHARS)?;
    // Several in-flight deliveries may all see the 410: only the first disables.
    if merchant.webhook.url.is_none() || !merchant.webhook.enabled {
        return Ok(Vec::new());
    }
    Ok(vec![WebhookEndpointDisabled {
        reason: command.reason,
    }
    .into()])
}

fn set_checkout_origins(
    merchant: &Merchant,
    command: SetCheckoutOrigins,
) -> Result<Vec<MerchantEvent>, DomainError> {
    let origins = normalize_checkout_origins(&command.origins)?;
    // The same list again is a no-op.
    if origins == merchant.checkout_origins {
        return Ok(Vec::new());
    }
    Ok(vec![CheckoutOriginsSet { origins }.into()])
}
