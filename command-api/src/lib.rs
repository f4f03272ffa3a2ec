//! Paystream's write side.
//!
//! * [`store`]: the event store port and its PostgreSQL adapter.
//! * [`relay`]: publishes committed events, in global order, to NATS JetStream.

pub mod acquirer;
pub mod config;
pub mod http;
pub mod routes;
pub mod seed;
pub mod startup;
