//! The command API's configuration: defaults, overridden by `PAYSTREAM_*`
//! environment variables or flags, validated at start.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::relay::RelayConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Seeds the contract's test merchant and users; allows loopback webhooks.
    Dev,
    /// Seeds nothing.
    Production,
}

/// A value that never prints (connection strings carry passwords).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

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
        env = "PAYSTREAM_COMMAND_API_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub http_addr: SocketAddr,

    /// JetStream stream that carries committed events.
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
}

impl Config {
    pub fn relay(&self) -> RelayConfig {
        RelayConfig {
            stream_name: self.events_stream.clone(),
            subject_prefix: self.events_subject_prefix.clone(),
            batch_size: self.relay_batch_size as usize,
            ..RelayConfig::default()
        }
    }

    /// How long a NATS request may take before the caller gives up.
    pub const NATS_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
}
