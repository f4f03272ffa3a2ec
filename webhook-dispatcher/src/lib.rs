//! Paystream webhook dispatcher: consumes finalized payment and refund events,
//! signs and sends webhooks on a durable retry schedule, and records every
//! attempt as an event.
//!
//! * [`intake`]: a durable JetStream consumer that schedules deliveries
//!   (`WebhookDeliveryScheduled`, id derived from source event, webhook event
//!   and URL) and keeps the durable schedule table in step with every
//!   delivery stream.
//! * [`merchants`]: merchants' webhook settings as of a log position,
//!   invalidated by the merchant events themselves, in log order.
//! * [`recent`]: bounded memories of folded payments and written rows.
//! * [`schedule`]: the `webhook_schedule` table (migration 0005), the only
//!   record of what is due; no timer lives in memory.
//! * [`worker`]: claims due rows with a lease, sends, records the attempt.
//! * [`send`]: signing (both schemes) and the HTTP attempt.
//! * [`ssrf`]: the production guard against private targets.
//! * [`service`]: the binary's wiring, `/health` and `/metrics`.

pub mod config;
pub mod intake;
pub mod merchants;
pub mod metrics;
pub mod recent;
pub mod schedule;
pub mod send;
pub mod service;
pub mod ssrf;
pub mod worker;

pub use config::{Config, Settings};
pub use service::{spawn, Dispatcher};
