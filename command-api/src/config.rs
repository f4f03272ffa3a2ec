//! The command API's configuration: defaults, overridden by `PAYSTREAM_*`
//! environment variables or flags, validated at start.

use std::net::SocketAddr;

use clap::Args;
pub use paystream_kit::config::{
    DatabaseArgs, NatsArgs, Profile, RuntimeArgs, Secret, SystemPortsArgs,
};

use paystream_store::relay::RelayConfig;

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub nats: NatsArgs,

    /// Ports a webhook URL must not point to on loopback (dev); the API's
    /// own port is added.
    #[command(flatten)]
    pub system_ports: SystemPortsArgs,

    #[arg(
        long,
        env = "PAYSTREAM_COMMAND_API_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub http_addr: SocketAddr,

    /// Run the relay in this process (one leader among replicas is elected).
    #[arg(long, env = "PAYSTREAM_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay: bool,

    /// Run the simulated acquirer in this process (it can also run alone:
    /// `command-api acquirer`).
    #[arg(long, env = "PAYSTREAM_ACQUIRER", default_value_t = true, action = clap::ArgAction::Set)]
    pub acquirer: bool,

    #[arg(long, env = "PAYSTREAM_RELAY_BATCH_SIZE", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub relay_batch_size: u32,

    #[command(flatten)]
    pub browser: BrowserArgs,

    #[command(flatten)]
    pub rate: paystream_kit::http::limits::RateArgs,
}

/// Where the browser pages are served from.
#[derive(Debug, Clone, Args)]
pub struct BrowserArgs {
    /// The dashboard's origins (comma-separated `scheme://host[:port]`): a
    /// command authenticated by the session cookie must come from one of
    /// them (its `Origin`), else it is a 403.
    #[arg(
        long,
        env = "PAYSTREAM_DASHBOARD_ORIGINS",
        value_delimiter = ',',
        default_value = DEFAULT_DASHBOARD_ORIGINS
    )]
    pub dashboard_origins: Vec<String>,

    /// Dev profile only: the seeded merchant's checkout origins (the example
    /// shop's pages, served by the edge), set at start while it has none.
    #[arg(
        long,
        env = "PAYSTREAM_DEV_CHECKOUT_ORIGINS",
        value_delimiter = ',',
        default_value = DEFAULT_DEV_CHECKOUT_ORIGINS
    )]
    pub dev_checkout_origins: Vec<String>,
}

const DEFAULT_DASHBOARD_ORIGINS: &str = "http://localhost:8000,http://127.0.0.1:8000,http://[::1]:8000,http://localhost:3000,http://127.0.0.1:3000";
const DEFAULT_DEV_CHECKOUT_ORIGINS: &str = "http://localhost:8000,http://127.0.0.1:8000";

impl Default for BrowserArgs {
    fn default() -> Self {
        let list = |origins: &str| origins.split(',').map(str::to_owned).collect();
        Self {
            dashboard_origins: list(DEFAULT_DASHBOARD_ORIGINS),
            dev_checkout_origins: list(DEFAULT_DEV_CHECKOUT_ORIGINS),
        }
    }
}

impl Config {
    pub fn relay(&self) -> RelayConfig {
        RelayConfig {
            batch_size: self.relay_batch_size as usize,
            ..self.nats.relay()
        }
    }
}
