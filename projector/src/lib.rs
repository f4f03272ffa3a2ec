//! Paystream's projector: folds committed events into PostgreSQL read
//! models, and rebuilds them from the event store.
//!
//! * [`projection`]: the projections (`payments`, `webhooks`, `merchants`,
//!   `ledger`), the tables each owns, and the generic fold of a stream into
//!   a row with the domain's own `evolve`.
//! * [`projections`]: one module per projection.
//! * [`apply`]: a batch's rows and checkpoint in one transaction; poison
//!   events parked.
//! * [`live`]: one durable JetStream consumer for every projection.
//! * [`rebuild`]: `projector rebuild`, from the store, with an atomic swap.
//! * [`metrics`], [`startup`], [`config`].

pub mod apply;
pub mod config;
pub mod live;
pub mod metrics;
pub mod projection;
pub mod projections;
pub mod rebuild;
pub mod startup;

pub use config::Config;
pub use projection::Projection;
