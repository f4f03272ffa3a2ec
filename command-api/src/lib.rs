//! Paystream's write side.
//!
//! * [`store`]: the event store port and its PostgreSQL adapter.
//! * [`relay`]: publishes committed events, in global order, to NATS JetStream.

pub mod acquirer;
pub mod aggregates;
pub mod backoff;
pub mod config;
pub mod http;
pub mod relay;
pub mod routes;
pub mod seed;
pub mod startup;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
