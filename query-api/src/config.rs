//! The query API's configuration: defaults, overridden by `PAYSTREAM_*`
//! environment variables or flags. The database, NATS and stream settings
//! are the same variables the command API reads, so one environment serves
//! both services.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
// Re-exported: a `Config` can be built from this module alone.
pub use paystream_command_api::config::{Profile, Secret};

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[arg(long, env = "PAYSTREAM_PROFILE", value_enum, default_value = "dev")]
    pub profile: Profile,

    #[arg(
        long,
        env = "PAYSTREAM_DATABASE_URL",
        default_value = "postgres://paystream:paystream@127.0.0.1:5432/paystream"
    )]
    pub database_url: Secret,

    /// Pool size; every request holds at most one connection, briefly.
    #[arg(long, env = "PAYSTREAM_DATABASE_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(2..=256))]
    pub database_max_connections: u32,

    #[arg(
        long,
        env = "PAYSTREAM_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    #[arg(
        long,
        env = "PAYSTREAM_QUERY_API_ADDR",
        default_value = "127.0.0.1:8082"
    )]
    pub http_addr: SocketAddr,

    /// JetStream stream that carries committed events (job status reads its
    /// consumers).
    #[arg(
        long,
        env = "PAYSTREAM_EVENTS_STREAM",
        default_value = "PAYSTREAM_EVENTS"
    )]
    pub events_stream: String,

    /// Durable consumer name of the simulated acquirer on `events_stream`.
    #[arg(long, env = "PAYSTREAM_ACQUIRER_CONSUMER", default_value = "acquirer")]
    pub acquirer_consumer: String,
}

impl Config {
    /// How long a NATS request (consumer info) may take before the job status
    /// reports the worker as unknown, i.e. stopped.
    pub const NATS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
}
