//! Merchants: registration, API keys, suspension and the webhook endpoint
//! (URL, subscribed events, signing secret with a rotation overlap window),
//! and the origins whose pages may embed the checkout.

mod command;
mod decide;
mod event;
mod evolve;
mod state;
#[cfg(test)]
mod tests;

pub use command::{
    ConfigureWebhook, DisableWebhookEndpoint, MerchantCommand, ReactivateMerchant,
    RegenerateWebhookSecret, RegisterMerchant, RotateApiKeys, SetCheckoutOrigins, SuspendMerchant,
};
pub use event::{
    CheckoutOriginsSet, MerchantApiKeysRotated, MerchantEvent, MerchantReactivated,
    MerchantRegistered, MerchantSuspended, WebhookEndpointConfigured, WebhookEndpointDisabled,
    WebhookSecretRegenerated,
};
pub use state::{Merchant, MerchantState, MerchantStatus, WebhookSettings};

use crate::aggregate::Aggregate;
use crate::error::DomainError;

/// Highest accepted fee: 10 000 basis points = 100 %.
pub const FEE_BPS_MAX: u32 = 10_000;

/// The merchant aggregate (stream `merchant-{uuid}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantAggregate;

impl Aggregate for MerchantAggregate {
    const CATEGORY: &'static str = "merchant";
    type State = MerchantState;
    type Command = MerchantCommand;
    type Event = MerchantEvent;

    fn decide(
        state: &MerchantState,
        command: MerchantCommand,
    ) -> Result<Vec<MerchantEvent>, DomainError> {
        decide::decide(state, command)
    }

    fn evolve(state: MerchantState, event: &MerchantEvent) -> MerchantState {
        evolve::evolve(state, event)
    }
}
