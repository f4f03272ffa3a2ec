//! Paystream's pure domain model.
//!
//! Everything here is synchronous and side-effect free: no I/O, no clocks, no
//! randomness. The current time, "today" and freshly generated ids arrive
//! inside commands, so the crate builds for `wasm32-unknown-unknown` and the
//! web crate can reuse its types and validation.
//!
//! * [`aggregate`]: the [`Aggregate`] trait (`decide` / `evolve`), [`execute`]
//!   and [`replay`].
//! * [`event`]: the [`DomainEvent`] trait, stored payloads and upcasting.
//! * [`merchant`], [`order`], [`payment`] (refunds live inside the payment)
//!   and [`webhook`] (one delivery per aggregate): commands, events, decisions
//!   and state.
//! * [`id`], [`currency`], [`money`]: value types.
//! * [`validation`]: the contract's input rules (VPA, card, email, URL, text).
//! * [`signature`]: webhook signatures (hex HMAC and Standard Webhooks).
//! * [`ledger`]: double-entry postings for captures, fees and refunds.
//!
//! Money is always integer minor units (`i64`); floating point arithmetic is
//! denied crate-wide.
#![deny(clippy::float_arithmetic)]

pub mod aggregate;
pub mod api;
pub mod currency;
pub mod dev;
pub mod error;
pub mod event;
pub mod id;
pub mod ledger;
pub mod merchant;
pub mod money;
pub mod order;
pub mod payment;
pub mod signature;
pub mod validation;
pub mod webhook;

#[cfg(test)]
mod testing;

pub use aggregate::{execute, replay, stream_id, Aggregate};
pub use currency::Currency;
pub use error::DomainError;
pub use event::{DomainEvent, UpcastError};
pub use id::{MerchantId, OrderId, PaymentId, RefundId, WebhookDeliveryId};
pub use money::Money;
