//! The projector's configuration: defaults, overridden by `PAYSTREAM_*`
//! environment variables or flags (the shared pieces of `paystream_kit`,
//! and the projector's own).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
pub use paystream_kit::config::{DatabaseArgs, NatsArgs, Profile, RuntimeArgs, Secret};

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub nats: NatsArgs,

    /// `/health` and `/metrics`.
    #[arg(
        long,
        env = "PAYSTREAM_PROJECTOR_ADDR",
        default_value = "127.0.0.1:8083"
    )]
    pub http_addr: SocketAddr,

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
