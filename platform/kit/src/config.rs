//! Configuration pieces: each service's clap `Config` flattens the ones it
//! needs, so every service reads the same `PAYSTREAM_*` variables with the
//! same defaults.

use std::fmt;
use std::time::Duration;

use clap::{Args, ValueEnum};
use paystream_store::relay::RelayConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Seeds the contract's test merchant and users; allows loopback webhooks.
    Dev,
    /// Seeds nothing.
    Production,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
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

/// Settings every service has.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    #[arg(long, env = "PAYSTREAM_PROFILE", value_enum, default_value = "dev")]
    pub profile: Profile,

    /// Log lines as JSON (for collectors) or pretty (for a terminal).
    #[arg(
        long,
        env = "PAYSTREAM_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
}

impl RuntimeArgs {
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            log_format: LogFormat::Pretty,
        }
    }
}

/// The PostgreSQL database that holds the event store and the read models.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    #[arg(
        long,
        env = "PAYSTREAM_DATABASE_URL",
        default_value = "postgres://paystream:paystream@127.0.0.1:5432/paystream"
    )]
    pub database_url: Secret,

    /// Pool size; a request or a batch holds at most one connection, briefly.
    #[arg(long, env = "PAYSTREAM_DATABASE_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(2..=256))]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    pub fn new(database_url: impl Into<String>, max_connections: u32) -> Self {
        Self {
            database_url: Secret::new(database_url),
            database_max_connections: max_connections,
        }
    }
}

/// NATS, and the JetStream stream that carries committed events.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    #[arg(
        long,
        env = "PAYSTREAM_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// JetStream stream that carries committed events.
    #[arg(
        long,
        env = "PAYSTREAM_EVENTS_STREAM",
        default_value = "PAYSTREAM_EVENTS"
    )]
    pub events_stream: String,

    /// Subjects are `{prefix}.{category}.{event_type}`.
    #[arg(
        long,
        env = "PAYSTREAM_EVENTS_SUBJECT_PREFIX",
        default_value = "paystream.events"
    )]
    pub events_subject_prefix: String,
}

impl NatsArgs {
    /// How long a NATS request (a JetStream API call) may take.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

    pub fn new(nats_url: impl Into<String>, events_stream: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            events_stream: events_stream.into(),
            events_subject_prefix: RelayConfig::default().subject_prefix,
        }
    }

    /// The relay's stream and subjects, with its other settings at default.
    pub fn relay(&self) -> RelayConfig {
        RelayConfig {
            stream_name: self.events_stream.clone(),
            subject_prefix: self.events_subject_prefix.clone(),
            ..RelayConfig::default()
        }
    }
}
