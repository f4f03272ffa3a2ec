//! Paystream's service runtime, shared by every service so that each concept
//! lives in one place:
//!
//! * [`config`]: the pieces each service's clap config flattens (profile,
//!   logging, database, NATS), with one set of names and defaults;
//! * [`telemetry`]: one tracing init, JSON or pretty;
//! * [`nats`]: connecting, and the JetStream context with its bounded waits;
//! * [`consumer`]: opening a durable pull consumer, and supervising its
//!   lives with a bounded back-off;
//! * [`health`]: one `healthy | degraded | unhealthy` vocabulary and one
//!   status-code rule;
//! * [`metrics`]: the Prometheus text format's shared pieces;
//! * [`shutdown`] and [`backoff`];
//! * `http` (feature `http`): the plumbing both APIs share: errors, the JSON
//!   and path extractors, API-key and session authentication, request
//!   metrics and the in-flight bound;
//! * `testing` (feature `testing`, dev-dependencies only).

pub mod config;
pub mod consumer;
pub mod health;
pub mod metrics;
pub mod nats;
pub mod shutdown;
pub mod telemetry;

pub use paystream_store::backoff;

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "testing")]
pub mod testing;
