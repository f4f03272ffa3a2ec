//! The projector's configuration: defaults, overridden by `PAYSTREAM_*`
//! environment variables or flags (the same variables the other services
//! read for the database, NATS and the stream).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
pub use paystream_command_api::config::{Profile, Secret};

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[arg(
        long,
        env = "PAYSTREAM_DATABASE_URL",
        default_value = "postgres://paystream:paystream@127.0.0.1:5432/paystream"
    )]
    pub database_url: Secret,

    /// Pool size: the consumer holds one connection at a time; `/health`
    /// and `/metrics` take others.
    #[arg(long, env = "PAYSTREAM_PROJECTOR_DATABASE_MAX_CONNECTIONS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(2..=64))]
    pub database_max_connections: u32,

    #[arg(
        long,
        env = "PAYSTREAM_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// `/health` and `/metrics`.
    #[arg(
        long,
        env = "PAYSTREAM_PROJECTOR_ADDR",
        default_value = "127.0.0.1:8083"
    )]
    pub http_addr: SocketAddr,

    #[arg(
        long,
        env = "PAYSTREAM_EVENTS_STREAM",
        default_value = "PAYSTREAM_EVENTS"
    )]
    pub events_stream: String,

    #[arg(
        long,
        env = "PAYSTREAM_EVENTS_SUBJECT_PREFIX",
        default_value = "paystream.events"
    )]
    pub events_subject_prefix: String,

    /// The durable JetStream consumer that feeds every projection.
    #[arg(
        long,
        env = "PAYSTREAM_PROJECTOR_CONSUMER",
        default_value = "projector"
    )]
    pub consumer_name: String,

    /// Most events applied in one transaction.
    #[arg(long, env = "PAYSTREAM_PROJECTOR_BATCH_SIZE", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=5_000))]
    pub batch_size: u32,
}

impl Config {
    /// How long a NATS request may take.
    pub const NATS_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    /// Longest back-off between reconnection attempts.
    pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
    /// How long JetStream waits for an ack before redelivering.
    pub const ACK_WAIT: Duration = Duration::from_secs(30);
}
