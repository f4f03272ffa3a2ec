//! The query API's configuration: defaults, overridden by `PAYSTREAM_*`
//! environment variables or flags. The database, NATS and stream settings
//! are `paystream_kit`'s pieces, the same variables every service reads.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
// Re-exported: a `Config` can be built from this module alone.
pub use paystream_kit::config::{DatabaseArgs, NatsArgs, Profile, RuntimeArgs, Secret};

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub nats: NatsArgs,

    #[arg(
        long,
        env = "PAYSTREAM_QUERY_API_ADDR",
        default_value = "127.0.0.1:8082"
    )]
    pub http_addr: SocketAddr,

    /// Durable consumer name of the simulated acquirer on `events_stream`.
    #[arg(long, env = "PAYSTREAM_ACQUIRER_CONSUMER", default_value = "acquirer")]
    pub acquirer_consumer: String,

    #[command(flatten)]
    pub rate: paystream_kit::http::limits::RateArgs,
}

impl Config {
    /// How long the job status waits for the acquirer's consumer info before
    /// it reports the worker as unknown, i.e. stopped.
    pub const JOB_STATUS_TIMEOUT: Duration = Duration::from_secs(2);
}
